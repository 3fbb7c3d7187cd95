"""`tierwise ledger --savings`: what each lever saved against always-top, per tenant and day.

Read from the entries themselves (every attempt, so it scans them all; the main report reads the
hourly totals). Three levers, each priced from the config (else litellm's price map):
- routing: the answers' tokens priced at the top tier's first model, less every attempt's tokens
  at its own model's uncached prices (escalations, failed checks and errors are paid out of it);
- cached input: the provider's discount on cached input tokens (`cached_in` x (input - cached
  price)); a session's turns count here, as their point is to keep the provider's cache;
- cache hits: what the answers served from tierwise's response cache cost when they were bought.
"""

from __future__ import annotations

import re
from collections import defaultdict
from datetime import datetime, tzinfo
from decimal import Decimal
from typing import Any

from router._client import LiteLLMClient, Prices
from router._config import ModelSpec, RouterConfig
from router._errors import TierwiseError
from router._quiet import quiet
from router.ledger import Entry, Ledger

_HIT = re.compile(r"^cache hit: saved \$(\d+(?:\.\d+)?)")
LEVERS = ("routing_usd", "cached_input_usd", "cache_hits_usd")


class PriceBook:
    """Each model's prices, once: the config's spec, else litellm's map; None when neither knows it."""

    def __init__(self, config: RouterConfig) -> None:
        self._specs = {spec.model: spec for tier in config.tiers for spec in tier.models}
        self._client = LiteLLMClient()
        self._found: dict[str, Prices | None] = {}

    def __call__(self, model: str) -> Prices | None:
        if model not in self._found:
            try:
                with quiet():  # litellm prints its provider list for a model it does not know
                    self._found[model] = self._client.prices(self._specs.get(model) or ModelSpec(model=model))
            except TierwiseError:
                self._found[model] = None
        return self._found[model]


def _levers(entry: Entry, prices: Prices | None, top: Prices) -> dict[str, Decimal] | None:
    """What this attempt adds to each lever; None when its model has no known price."""
    hit = _HIT.match(entry.reason)
    if hit is not None:
        return {"routing_usd": Decimal(0), "cached_input_usd": Decimal(0), "cache_hits_usd": Decimal(hit.group(1))}
    if prices is None:
        return None
    own = entry.tokens_in * prices.input + entry.tokens_out * prices.output
    answer = entry.tokens_in * top.input + entry.tokens_out * top.output if entry.outcome == "ok" else Decimal(0)
    cached = min(entry.cached_in, entry.tokens_in) * (prices.input - prices.cache_read)
    return {"routing_usd": answer - own, "cached_input_usd": cached, "cache_hits_usd": Decimal(0)}


def savings(ledger: Ledger, config: RouterConfig, tz: tzinfo, since: float | None, until: float | None,
            tenant: str | None) -> dict[str, Any] | None:
    """Per tenant and day (of `tz`): each lever's saving; None when the top tier has no known price."""
    book = PriceBook(config)
    top = book(config.tiers[-1].models[0].model)
    if top is None:
        return None
    days: dict[str, dict[str, dict[str, Decimal]]] = defaultdict(lambda: defaultdict(lambda: dict.fromkeys(LEVERS, Decimal(0))))
    unpriced: set[str] = set()
    for entry in ledger.entries(tenant):
        if (since is not None and entry.ts < since) or (until is not None and entry.ts >= until):
            continue
        found = _levers(entry, book(entry.model), top)
        if found is None:
            unpriced.add(entry.model)
            continue
        day = days[entry.tenant][datetime.fromtimestamp(entry.ts, tz).date().isoformat()]
        for lever, amount in found.items():
            day[lever] += amount
    tenants = [{"tenant": name, **_sum(list(by_day.values())),
                "days": [{"day": day, **_text(sums)} for day, sums in sorted(by_day.items())]} for name, by_day in sorted(days.items())]
    return {"top_model": config.tiers[-1].models[0].model, "tenants": tenants, "unpriced_models": sorted(unpriced)}


def _sum(rows: list[dict[str, Decimal]]) -> dict[str, str]:
    return _text({lever: sum((r[lever] for r in rows), Decimal(0)) for lever in LEVERS})


def _text(sums: dict[str, Decimal]) -> dict[str, str]:
    total = sum(sums.values(), Decimal(0))
    return {**{k: usd(v) for k, v in sums.items()}, "saved_usd": usd(total)}


def usd(amount: Decimal) -> str:
    """Money as plain decimal text (never 6E-7): exact, and what a finance user can paste."""
    text = format(amount, "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def render_savings(found: dict[str, Any] | None) -> str:
    """The levers as a table: per tenant, then per day."""
    if found is None:
        return "savings: the top tier's model has no known price (set its input_cost_per_token and output_cost_per_token)"
    lines = [f"saved against always-{found['top_model']}, by lever",
             f"  {'tenant / day':<22} {'routing $':>14} {'cached input $':>15} {'cache hits $':>13} {'saved $':>14}"]
    for t in found["tenants"]:
        for label, row in [(t["tenant"], t), *((f"  {d['day']}", d) for d in t["days"])]:
            lines.append(f"  {label[:22]:<22} {row['routing_usd']:>14} {row['cached_input_usd']:>15} {row['cache_hits_usd']:>13} "
                         f"{row['saved_usd']:>14}")
    if found["unpriced_models"]:
        lines.append(f"  left out (no known price): {', '.join(found['unpriced_models'])}")
    return "\n".join(lines)
