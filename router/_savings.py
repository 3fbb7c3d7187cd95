"""What each lever saved against always-top, one attempt at a time: shared by `tierwise ledger
--savings` (read from the entries) and the gateway's /metrics (counted as answers go out).

- routing: the answer's tokens priced at the top tier's first model, less every attempt's tokens at
  its own model's uncached prices (escalations, failed checks and errors are paid out of it);
- cached input: the provider's discount on cached input tokens (`cached_in` x (input - cached price));
- cache hits: what an answer served from tierwise's response cache cost when it was bought.
"""

from __future__ import annotations

import re
from decimal import Decimal

from router._client import LiteLLMClient, Prices
from router._config import ModelSpec, RouterConfig
from router._errors import TierwiseError
from router._quiet import quiet
from router._types import Route

LEVERS = ("routing_usd", "cached_input_usd", "cache_hits_usd")
_HIT = re.compile(r"^cache hit: saved \$(\d+(?:\.\d+)?)")


class PriceBook:
    """Each model's prices, once: the config's spec, else litellm's map; None when neither knows it."""

    def __init__(self, config: RouterConfig) -> None:
        self._specs = {spec.model: spec for tier in config.tiers for spec in tier.models}
        self._client = LiteLLMClient()
        self._found: dict[str, Prices | None] = {}
        self.top_model = config.tiers[-1].models[0].model

    def __call__(self, model: str) -> Prices | None:
        if model not in self._found:
            try:
                with quiet():  # litellm prints its provider list for a model it does not know
                    self._found[model] = self._client.prices(self._specs.get(model) or ModelSpec(model=model))
            except TierwiseError:
                self._found[model] = None
        return self._found[model]


def cache_hit_saving(reason: str) -> Decimal | None:
    """What a response-cache hit saved, read from its reason; None when it is not a hit."""
    hit = _HIT.match(reason)
    return None if hit is None else Decimal(hit.group(1))


def levers(tokens_in: int, tokens_out: int, cached_in: int, answered: bool, reason: str, prices: Prices | None,
           top: Prices) -> dict[str, Decimal] | None:
    """What one attempt adds to each lever; None when its model has no known price."""
    # A hit is billed no tokens: a check's reason that happens to read like one is not taken for one.
    hit = cache_hit_saving(reason) if tokens_in == tokens_out == 0 else None
    if hit is not None:
        return {"routing_usd": Decimal(0), "cached_input_usd": Decimal(0), "cache_hits_usd": hit}
    if prices is None:
        return None
    own = tokens_in * prices.input + tokens_out * prices.output
    answer = tokens_in * top.input + tokens_out * top.output if answered else Decimal(0)
    cached = min(cached_in, tokens_in) * (prices.input - prices.cache_read)
    return {"routing_usd": answer - own, "cached_input_usd": cached, "cache_hits_usd": Decimal(0)}


def route_levers(route: Route, book: PriceBook, session: bool) -> dict[str, Decimal]:
    """What one answered request saved, by lever (metrics' names, without `_usd`); a session's turn
    counts its cached input as `session`. Empty for a replay of a request id (billed $0 twice is
    not a saving) and when the top tier has no known price; an unpriced attempt is left out."""
    top = book(book.top_model)
    if top is None or route.replayed:
        return {}
    sums = dict.fromkeys(LEVERS, Decimal(0))
    for a in route.attempts:
        found = levers(a.tokens_in, a.tokens_out, a.cached_in, a.outcome == "ok", a.reason, book(a.model), top)
        for lever, amount in (found or {}).items():
            sums[lever] += amount
    cached = sums.pop("cached_input_usd")
    return {"routing": sums["routing_usd"], "cache_hits": sums["cache_hits_usd"],
            "session" if session else "cached_input": cached}
