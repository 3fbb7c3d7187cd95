"""`tierwise ledger`: spend by tenant, day, tier and model, each tenant's budget, and what an
always-frontier router would have cost; as a table or JSON, aggregated in SQL."""

from __future__ import annotations

import argparse
import csv
import json
import math
import re
import time
from collections import defaultdict
from dataclasses import fields
from datetime import date, datetime, timedelta, tzinfo
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from router._config import RouterConfig
from router._savings import PriceBook
from router.cli._savings import render_savings, savings, usd
from router.ledger import Entry, Ledger, from_nanos, open_ledger, period_start
from router.ledger._records import add_sums

_CSV_COLUMNS = [f.name for f in fields(Entry)]  # the Entry's own fields, in its order (cached_in, in_session last)


def mask_url(url: str) -> str:
    """A ledger URL fit to print: the password of `user:password@host` masked."""
    return re.sub(r"(//[^:/@]+:)[^@]*@", r"\1***@", url)


def parse_when(text: str | None, tz: tzinfo) -> float | None:
    """An ISO date or time as epoch seconds; a naive one is read in the config's time zone."""
    if text is None:
        return None
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{text!r} is not an ISO date or time (e.g. 2026-11-01 or 2026-11-01T09:00+01:00)") from None
    return (when if when.tzinfo else when.replace(tzinfo=tz)).timestamp()


def _frontier_prices(config: RouterConfig) -> tuple[Decimal, Decimal] | None:
    book = PriceBook(config)
    prices = book(book.top_model)  # None: no price known, the comparison is left out
    return None if prices is None else (prices.input, prices.output)


# Columns of a `spend_by` row after its keys: attempts, requests, answers, tokens in and out, answer tokens in and out, nanos.
_ATTEMPTS, _REQUESTS, _TOK_IN, _TOK_OUT, _ANS_IN, _ANS_OUT, _NANOS = 0, 1, 3, 4, 5, 6, 7


def _totals(sums: list[int]) -> dict[str, Any]:
    return {"requests": sums[_REQUESTS], "attempts": sums[_ATTEMPTS], "tokens_in": sums[_TOK_IN], "tokens_out": sums[_TOK_OUT],
            "cost_usd": usd(from_nanos(sums[_NANOS]))}


def _grouped(ledger: Ledger, since: float | None, until: float | None, tenant: str | None, tz: tzinfo) -> dict[str, Any]:
    """Per tenant: totals by day of the zone and by tier and model, from one grouped scan."""
    days: dict[str, dict[tuple[Any, ...], list[int]]] = defaultdict(dict)
    models: dict[str, dict[tuple[Any, ...], list[int]]] = defaultdict(dict)
    names: dict[int, str] = {}
    for row in ledger.spend_days(since, until, tenant, tz):
        day = names.get(row[1]) or names.setdefault(row[1], (date(1970, 1, 1) + timedelta(days=int(row[1]))).isoformat())
        add_sums(days[row[0]], (day,), row[4:])
        add_sums(models[row[0]], (row[2], row[3]), row[4:])
    return {name: ({d[0]: s for d, s in days[name].items()}, models[name]) for name in days}


def _spent_in_periods(ledger: Ledger, grouped: dict[str, Any], tz: tzinfo, whole: bool) -> dict[str, tuple[Any, str, Decimal]]:
    """(budget, period, spent in the current period) per tenant. When the report covers all time
    (`whole`) in a zone whose days start on the hour, its own days hold the answer; else one grouped
    scan per distinct period start, not one query per tenant."""
    now, found = time.time(), {}
    by_start: dict[int, list[str]] = defaultdict(list)
    spent: dict[str, Decimal] = {}
    for name in grouped:
        budget = ledger.budget_for(name)
        period = budget.period if budget else "total"
        since = period_start(period, now, tz)
        found[name] = (budget, period)
        if whole and (since == -math.inf or _on_the_hour(since, tz)):
            first = "" if since == -math.inf else datetime.fromtimestamp(since, tz).date().isoformat()
            spent[name] = from_nanos(sum(sums[_NANOS] for day, sums in grouped[name][0].items() if day >= first))
        else:
            by_start[-(2**62) if since == -math.inf else int(since // 3600)].append(name)
    for hour, names in by_start.items():
        sums = ledger.spent_since(hour)
        spent |= {name: from_nanos(sums.get(name, 0)) for name in names}
    return {name: (budget, period, spent[name]) for name, (budget, period) in found.items()}


def _on_the_hour(since: float, tz: tzinfo) -> bool:
    """Whether `tz`'s offset is whole hours at `since` and now (zones keep whole or part hours through
    their changes): then a report's day (its hours counted whole) starts where the period does."""
    offsets = {datetime.fromtimestamp(t, tz).utcoffset() for t in (since, time.time())}
    return all(o is not None and o.total_seconds() % 3600 == 0 for o in offsets)


def _tenant_report(tenant: str, days: dict[str, list[int]], models: dict[tuple[str, str], list[int]],
                   period: tuple[Any, str, Decimal], frontier: tuple[Decimal, Decimal] | None) -> dict[str, Any]:
    budget, name, spent = period
    whole = [sum(column) for column in zip(*models.values(), strict=True)] if models else [0] * 8
    always = None
    if frontier is not None:
        always = usd(sum((s[_ANS_IN] * frontier[0] + s[_ANS_OUT] * frontier[1] for s in models.values()), Decimal(0)))
    return {
        "tenant": tenant, "budget_usd": None if budget is None else usd(budget.budget_usd), "period": name,
        "spent_in_period_usd": usd(spent), **_totals(whole), "always_frontier_usd": always,
        "days": [{"day": day, **_totals(sums)} for day, sums in sorted(days.items())],
        "models": [{"tier": tier, "model": model, **_totals(sums)} for (tier, model), sums in sorted(models.items())],
    }


def build_report(ledger: Ledger, config: RouterConfig, url: str, since: float | None, until: float | None, tenant: str | None) -> dict[str, Any]:
    """The whole report as JSON-ready data (money as decimal strings, times in ISO 8601)."""
    tz = ZoneInfo(config.timezone)
    frontier = _frontier_prices(config)
    grouped = _grouped(ledger, since, until, tenant, tz)
    periods = _spent_in_periods(ledger, grouped, tz, whole=since is None and until is None)
    tenants = [_tenant_report(name, days, models, periods[name], frontier) for name, (days, models) in sorted(grouped.items())]
    total_cost = sum((Decimal(t["cost_usd"]) for t in tenants), Decimal(0))
    always = None if frontier is None else usd(sum((Decimal(t["always_frontier_usd"]) for t in tenants), Decimal(0)))
    return {
        "ledger": mask_url(url), "timezone": config.timezone, "since": _iso(since, tz), "until": _iso(until, tz),
        "frontier_model": config.tiers[-1].models[0].model, "tenants": tenants,
        "total": {"requests": sum(t["requests"] for t in tenants), "attempts": sum(t["attempts"] for t in tenants),
                  "cost_usd": usd(total_cost), "always_frontier_usd": always},
    }


def _iso(when: float | None, tz: tzinfo) -> str | None:
    return None if when is None else datetime.fromtimestamp(when, tz).isoformat()


def render(report: dict[str, Any]) -> str:
    """The report as terminal tables: tenants, then each tenant by day and by tier and model."""
    span = f"{report['since'] or 'the start'} to {report['until'] or 'now'}"
    lines = [f"ledger {report['ledger']}, {span} ({report['timezone']})", "",
             (f"{'tenant':<20} {'budget $':>10} {'period':>7} {'spent in period $':>18} {'requests':>8} {'attempts':>8} "
              f"{'cost $':>14} {'always-frontier $':>18}")]
    for t in report["tenants"]:
        lines.append(f"{t['tenant'][:20]:<20} {t['budget_usd'] or '-':>10} {t['period']:>7} {t['spent_in_period_usd']:>18} "
                     f"{t['requests']:>8} {t['attempts']:>8} {t['cost_usd']:>14} {t['always_frontier_usd'] or '-':>18}")
    total = report["total"]
    lines.append(f"{'all':<20} {'':>10} {'':>7} {'':>18} {total['requests']:>8} {total['attempts']:>8} {total['cost_usd']:>14} "
                 f"{total['always_frontier_usd'] or '-':>18}")
    for t in report["tenants"]:
        lines += ["", f"{t['tenant']} by day", f"  {'day':<12} {'requests':>8} {'attempts':>8} {'cost $':>14}"]
        lines += [f"  {d['day']:<12} {d['requests']:>8} {d['attempts']:>8} {d['cost_usd']:>14}" for d in t["days"]]
        lines += [f"{t['tenant']} by tier and model", f"  {'tier':<10} {'model':<28} {'attempts':>8} {'tokens in':>10} {'tokens out':>10} {'cost $':>14}"]
        lines += [f"  {m['tier'][:10]:<10} {m['model'][:28]:<28} {m['attempts']:>8} {m['tokens_in']:>10} {m['tokens_out']:>10} {m['cost_usd']:>14}"
                  for m in t["models"]]
    if report["total"]["always_frontier_usd"] is not None:
        lines += ["", f"always-frontier: the answers' tokens priced as {report['frontier_model']} (an estimate: its answers would differ)"]
    return "\n".join(lines)


def _export_csv(ledger: Ledger, path: str, tenant: str | None) -> int:
    entries = ledger.entries(tenant)
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(_CSV_COLUMNS)
        for e in entries:
            writer.writerow([getattr(e, name) for name in _CSV_COLUMNS])
    return len(entries)


def cmd_reconcile(ledger: Ledger, outboxes: list[Path], release: bool) -> int:
    """Commit the outboxes given, then show (or, with release, drop) the holds dead instances left."""
    for path in outboxes:
        if not path.is_file():
            raise ValueError(f"no outbox file at {path}")
        done = ledger.replay_outbox(path)
        print(f"{path}: " + ("its instance still runs (the file is locked): left alone" if done is None else f"committed {done} bills"))
    held = ledger.presumed_holds()
    if not held:
        print("no presumed spend: every instance that held money is alive or has its bills in the books")
        return 0
    print(f"{'tenant':<20} {'instance':<34} {'presumed $':>14} {'last beat':>12}")
    for owner, tenant, amount, age in held:
        print(f"{tenant[:20]:<20} {owner:<34} {usd(amount):>14} {'never' if age is None else f'{age:.0f} s ago':>12}")
    if release:
        print(f"released {ledger.release_presumed()} holds: their tenants' money is free again")
    else:
        print("these count as spent until the instance's outbox is committed (--outbox FILE, from its host's data directory,"
              " named <ledger journal>-<instance>.jsonl) or released (--release)")
    return 0


def cmd_ledger(args: argparse.Namespace) -> int:
    config = RouterConfig.from_file(args.config) if args.config else RouterConfig.from_env()
    if args.action == "reconcile":
        ledger = open_ledger(args.url or config.ledger_url(), config.budget_for, must_exist=True)
        try:
            return cmd_reconcile(ledger, args.outbox, args.release)
        finally:
            ledger.close()
    tz = ZoneInfo(config.timezone)
    since, until = parse_when(args.since, tz), parse_when(args.until, tz)
    url = args.url or config.ledger_url()
    ledger = open_ledger(url, config.budget_for, tz=tz, must_exist=True)
    try:
        if args.csv:
            print(f"wrote {_export_csv(ledger, args.csv, args.tenant)} entries to {args.csv}")
        report = build_report(ledger, config, url, since, until, args.tenant)
        saved = savings(ledger, config, tz, since, until, args.tenant) if args.savings else None
    finally:
        ledger.close()
    if args.savings:
        report["savings"] = saved
    print(json.dumps(report, indent=2) if args.json else render(report) + ("\n\n" + render_savings(saved) if args.savings else ""))
    return 0
