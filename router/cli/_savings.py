"""`tierwise ledger --savings`: what each lever saved against always-top, per tenant and day.

Read from the entries themselves (every attempt, so it scans them all; the main report reads the
hourly totals). The levers are `router._savings`'s, priced from the config (else litellm's price
map). A turn sent with a session id (`Entry.in_session`) counts its cached input as the session's
saving, as /metrics does; entries billed by versions before that flag count it under cached input.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, tzinfo
from decimal import Decimal
from typing import Any

from router._config import RouterConfig
from router._savings import LEVERS, PriceBook, levers
from router.ledger import Ledger

_LEVERS = (*LEVERS, "session_usd")  # a session's cached input apart from the rest


def savings(ledger: Ledger, config: RouterConfig, tz: tzinfo, since: float | None, until: float | None,
            tenant: str | None) -> dict[str, Any] | None:
    """Per tenant and day (of `tz`): each lever's saving; None when the top tier has no known price."""
    book = PriceBook(config)
    top = book(book.top_model)
    if top is None:
        return None
    days: dict[str, dict[str, dict[str, Decimal]]] = defaultdict(lambda: defaultdict(lambda: dict.fromkeys(_LEVERS, Decimal(0))))
    unpriced: set[str] = set()
    for entry in ledger.entries(tenant):
        if (since is not None and entry.ts < since) or (until is not None and entry.ts >= until):
            continue
        found = levers(entry.tokens_in, entry.tokens_out, entry.cached_in, entry.outcome == "ok", entry.reason, book(entry.model), top)
        if found is None:
            unpriced.add(entry.model)
            continue
        if entry.in_session:
            found = {**found, "session_usd": found["cached_input_usd"], "cached_input_usd": Decimal(0)}
        day = days[entry.tenant][datetime.fromtimestamp(entry.ts, tz).date().isoformat()]
        for lever, amount in found.items():
            day[lever] += amount
    tenants = [{"tenant": name, **_sum(list(by_day.values())),
                "days": [{"day": day, **_text(sums)} for day, sums in sorted(by_day.items())]} for name, by_day in sorted(days.items())]
    return {"top_model": book.top_model, "tenants": tenants, "unpriced_models": sorted(unpriced)}


def _sum(rows: list[dict[str, Decimal]]) -> dict[str, str]:
    return _text({lever: sum((r[lever] for r in rows), Decimal(0)) for lever in _LEVERS})


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
             f"  {'tenant / day':<22} {'routing $':>14} {'cached input $':>15} {'session $':>12} {'cache hits $':>13} {'saved $':>14}"]
    for t in found["tenants"]:
        for label, row in [(t["tenant"], t), *((f"  {d['day']}", d) for d in t["days"])]:
            lines.append(f"  {label[:22]:<22} {row['routing_usd']:>14} {row['cached_input_usd']:>15} {row['session_usd']:>12} {row['cache_hits_usd']:>13} "
                         f"{row['saved_usd']:>14}")
    if found["unpriced_models"]:
        lines.append(f"  left out (no known price): {', '.join(found['unpriced_models'])}")
    return "\n".join(lines)
