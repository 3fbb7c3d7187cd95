"""The ledger's records and the helpers both SQL backends share: money in nano-dollars, periods, rows."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass, fields
from datetime import UTC, datetime, timedelta, tzinfo
from decimal import ROUND_CEILING, Decimal
from operator import attrgetter
from typing import Any

from router._config import TenantBudget
from router._errors import ConfigError
from router._types import AttemptOutcome, RequestStatus

NANOS = Decimal(1_000_000_000)
BudgetLookup = Callable[[str], TenantBudget | None]


def to_nanos(usd: Decimal) -> int:
    """USD to integer nano-dollars, rounded up so the ledger never under-bills."""
    return int((usd * NANOS).to_integral_value(rounding=ROUND_CEILING))


MAX_NANOS = 2**53  # about $9M: an attempt billed more (a provider's absurd usage, unheld) is billed this


def bill_nanos(usd: Decimal) -> int:
    """A bill's cost in nano-dollars, rounded up, at most MAX_NANOS: hourly sums of many such bills
    still fit a database's 64-bit integer, so no bill can block the group it is committed with."""
    return max(0, min(to_nanos(usd), MAX_NANOS))


def from_nanos(nanos: int) -> Decimal:
    return Decimal(nanos) / NANOS


def period_start(period: str, now: float, tz: tzinfo = UTC) -> float:
    """Epoch seconds at which the current calendar period began in time zone `tz`."""
    if period == "total":
        return -math.inf
    t = datetime.fromtimestamp(now, tz).replace(hour=0, minute=0, second=0, microsecond=0)
    if period == "week":
        t -= timedelta(days=t.weekday())
    elif period == "month":
        t = t.replace(day=1)
    elif period != "day":
        raise ConfigError(f"unknown budget period {period!r}")
    return t.timestamp()


@dataclass(frozen=True)
class Entry:
    """One attempt as billed."""

    request_id: str
    attempt: int
    tenant: str
    tier: str
    model: str
    tokens_in: int
    tokens_out: int
    cost_usd: Decimal
    latency_s: float
    outcome: AttemptOutcome
    reason: str = ""
    ts: float = 0.0
    cached_in: int = 0  # input tokens the provider served from its prompt cache (billed at its cached price)
    in_session: int = 0  # 1: a turn sent with a session id (its cached input is the session's saving in --savings)


@dataclass(frozen=True)
class Reservation:
    """Money held for one attempt until it is settled (or its holder dies and it expires)."""

    id: str
    tenant: str
    request_id: str
    amount_usd: Decimal


@dataclass(frozen=True)
class StoredRequest:
    """A request id seen before: its status and, once done, the stored response and route."""

    status: RequestStatus
    response: dict[str, Any] | None
    route: dict[str, Any] | None


@dataclass(frozen=True)
class StoredAnswer:
    """The answer of a request id, written in the same transaction as the attempt that paid for it,
    so that a crash after the bill can never lead to paying for the same request id again."""

    response: dict[str, Any]
    route: dict[str, Any]


@dataclass(frozen=True)
class SpendRow:
    """Spend of one tenant on one tier and model in one UTC hour (epoch seconds // 3600)."""

    tenant: str
    hour: int
    tier: str
    model: str
    attempts: int
    requests: int  # requests whose first attempt falls here (so rows add up without counting one twice)
    answers: int  # attempts whose answer passed its checks ("ok")
    tokens_in: int
    tokens_out: int
    answer_tokens_in: int  # tokens of those answers: what an always-frontier router would have paid for
    answer_tokens_out: int
    cost_usd: Decimal


# One GROUP BY for reports, the same on both backends (the hour expression differs).
SPEND_SQL = (
    "SELECT tenant, {hour} AS h, tier, model, COUNT(*), SUM(CASE WHEN attempt = 1 THEN 1 ELSE 0 END),"
    " SUM(CASE WHEN outcome = 'ok' THEN 1 ELSE 0 END), SUM(tokens_in), SUM(tokens_out),"
    " SUM(CASE WHEN outcome = 'ok' THEN tokens_in ELSE 0 END),"
    " SUM(CASE WHEN outcome = 'ok' THEN tokens_out ELSE 0 END), SUM(cost_nanos)"
    " FROM {table} WHERE ts >= {since} AND ts < {until} AND ({tenant} IS NULL OR tenant = {tenant})"
    " GROUP BY tenant, h, tier, model ORDER BY tenant, h, tier, model"
)


# The hourly totals' table (`{t}` the table prefix, `{int}` the dialect's 64-bit integer).
ROLLUP_TABLE = """
CREATE TABLE {t}spend_rollup (
    tenant TEXT NOT NULL, hour {int} NOT NULL, tier TEXT NOT NULL, model TEXT NOT NULL,
    attempts {int} NOT NULL, requests {int} NOT NULL, answers {int} NOT NULL,
    tokens_in {int} NOT NULL, tokens_out {int} NOT NULL, answer_tokens_in {int} NOT NULL,
    answer_tokens_out {int} NOT NULL, nanos {int} NOT NULL,
    PRIMARY KEY (tenant, hour, tier, model)
);
"""

# Whole hours of a report, from the totals the ledger keeps in step with its entries.
ROLLUP_SQL = (
    "SELECT tenant, hour, tier, model, attempts, requests, answers, tokens_in, tokens_out, answer_tokens_in,"
    " answer_tokens_out, nanos FROM {t}spend_rollup WHERE hour >= ? AND hour < ? AND (CAST(? AS TEXT) IS NULL OR tenant = ?)"
)


# Whole hours summed per tenant, day (`{day}`: the hour shifted by the zone's offset, over 24), tier
# and model: what a report shows, grouped where the rows are.
ROLLUP_BY = (
    "SELECT tenant, {day}, tier, model, SUM(attempts), SUM(requests), SUM(answers), SUM(tokens_in), SUM(tokens_out),"
    " SUM(answer_tokens_in), SUM(answer_tokens_out), SUM(nanos) FROM {scan} WHERE hour >= ? AND hour < ?"
    " AND (CAST(? AS TEXT) IS NULL OR tenant = ?) GROUP BY tenant, {day}, tier, model"
)


def add_sums(into: dict[tuple[Any, ...], list[int]], key: tuple[Any, ...], values: Any) -> None:
    """Add a row's sums into a dict of totals by key."""
    sums = into.get(key)
    if sums is None:
        into[key] = [int(v or 0) for v in values]
    else:
        for i, v in enumerate(values):
            sums[i] += int(v or 0)


def _offset_hours(hour: int, tz: tzinfo) -> int:
    offset = datetime.fromtimestamp(hour * 3600, tz).utcoffset() or timedelta(0)
    return math.floor(offset.total_seconds() / 3600)


def local_day(hour: int, tz: tzinfo) -> int:
    """The day (since 1970-01-01) in `tz` that a UTC hour falls in, the hour counted whole."""
    return (hour + _offset_hours(hour, tz)) // 24


def offset_segments(first: int, end: int, tz: tzinfo) -> list[tuple[int, int, int]]:
    """[first, end) in UTC hours cut where `tz`'s offset changes: [(first, end, offset in hours)]."""
    segments: list[tuple[int, int, int]] = []
    start, off = first, _offset_hours(first, tz)
    for hour in range(first + 1, end):
        now = _offset_hours(hour, tz)
        if now != off:
            segments.append((start, hour, off))
            start, off = hour, now
    segments.append((start, end, off))
    return segments


def spend_params(since: float | None, until: float | None, tenant: str | None) -> dict[str, Any]:
    return {"since": -1e18 if since is None else since, "until": 1e18 if until is None else until, "tenant": tenant}


def spend_row(r: Any) -> SpendRow:
    n = [int(v or 0) for v in r[4:12]]
    return SpendRow(str(r[0]), int(r[1]), str(r[2]), str(r[3]), n[0], n[1], n[2], n[3], n[4], n[5], n[6], from_nanos(n[7]))


def dumps(value: dict[str, Any] | None) -> str | None:
    return None if value is None else json.dumps(value, default=str)


def stored(row: Any) -> StoredRequest:
    """A StoredRequest from a (status, updated, response, route, ...) row."""
    return StoredRequest(row[0], json.loads(row[2]) if row[2] else None, json.loads(row[3]) if row[3] else None)


def entry_from_dict(data: dict[str, Any]) -> Entry:
    """An entry as an older journal kept it; keys of a newer version are left out."""
    return Entry(**{k: v for k, v in data.items() if k in _KNOWN and k != "cost_usd"}, cost_usd=Decimal(data["cost_usd"]))


# ---- the Entry codec: every place a bill is written or read goes through these, derived from the
# dataclass's fields (a database row and an outbox line hold them in the same order; money in nanos
# in the database, a decimal string on file).
ENTRY_FIELDS = tuple(f.name for f in fields(Entry))
ENTRY_COLUMNS = ", ".join("cost_nanos" if name == "cost_usd" else name for name in ENTRY_FIELDS)
_KNOWN = frozenset(ENTRY_FIELDS)
_COST = ENTRY_FIELDS.index("cost_usd")
_QUOTE: Callable[[str], str] = json.encoder.encode_basestring_ascii
# One f-string item per field, by its declared type (money as a decimal string, ts the billing time).
_ITEM = {"int": "{int(e.%s)}", "float": "{float(e.%s)!r}", "Decimal": '"{e.%s}"'}


def _json_writer() -> Callable[[Entry, float], str]:
    """entry_json, generated from Entry's fields once (as dataclasses generate their __init__): it runs
    once a bill, where a loop over encoders cost a third of the whole hold-and-bill cycle."""
    items = ["{float(ts)!r}" if f.name == "ts" else _ITEM.get(str(f.type), "{q(str(e.%s))}") % f.name for f in fields(Entry)]
    namespace: dict[str, Any] = {}
    exec(f"def entry_json(e, ts, q=q):\n    return f'{','.join(items)}'\n", {"q": _QUOTE}, namespace)  # noqa: S102 - our own field names only
    writer: Callable[[Entry, float], str] = namespace["entry_json"]
    return writer


def entry_from_row(r: Any) -> Entry:
    """An entry from a database row (ENTRY_COLUMNS)."""
    values = list(r[: len(ENTRY_FIELDS)])
    values[_COST] = from_nanos(int(values[_COST]))
    return Entry(*values)


entry_json = _json_writer()
entry_json.__doc__ = "The entry's fields as JSON list items (money as a decimal string, `ts` as given), for an outbox line."


# A count past this (a trillion tokens) is absurd: stored as this, so that hourly sums of millions of
# such bills still fit a database's 64-bit integer.
MAX_COUNT = 2**40


# Entry's counts, and its floats but `ts` (a line has the billing time, checked by `settle`), each read
# in one C call. `ts` closes the second list so that it is a tuple even with one other float; it is cut off.
_COUNTS = attrgetter(*[f.name for f in fields(Entry) if str(f.type) == "int"])
_FLOATS = attrgetter(*[f.name for f in fields(Entry) if str(f.type) == "float" and f.name != "ts"], "ts")


def unstorable(entry: Entry, items: str) -> bool:
    """Whether `storable` must clean the entry (`items`: its entry_json) first; rare, checked once a bill."""
    return ("\\u0000" in items or "\\ud" in items or not all(map(math.isfinite, _FLOATS(entry)[:-1]))
            or max(map(abs, _COUNTS(entry))) > MAX_COUNT)


def storable(entry: Entry) -> Entry:
    """The entry as every database stores it: in text NUL (which PostgreSQL refuses and SQLite's JSON
    cuts at) becomes U+FFFD and a lone surrogate "?" (a character past U+FFFF is kept), a float that
    is no number (not JSON) 0, a count past MAX_COUNT that bound, so that no bill (a provider's absurd
    usage, say) can block the group committed with it."""
    def clean(v: Any) -> Any:
        if isinstance(v, float):
            return v if math.isfinite(v) else 0.0
        if isinstance(v, int):
            return max(-MAX_COUNT, min(v, MAX_COUNT))
        return v.replace("\x00", "\ufffd").encode("utf-8", "replace").decode("utf-8") if isinstance(v, str) else v

    return Entry(*[clean(getattr(entry, name)) for name in ENTRY_FIELDS])


def entry_select(cast: dict[str, str]) -> str:
    """The SELECT list of ENTRY_COLUMNS read from one element of a batch: a JSON array of
    `entry_json`'s items with the cost in nanos appended. `cast` maps a field's kind ("str", "int",
    "float") to the dialect's expression of element `{i}`; the database parses the batch, not Python."""
    kinds = {"int": "int", "float": "float"}
    items = [cast["int"].format(i=len(ENTRY_FIELDS)) if f.name == "cost_usd" else cast[kinds.get(str(f.type), "str")].format(i=i)
             for i, f in enumerate(fields(Entry))]
    return ", ".join(items)


def entry_from_json(values: list[Any]) -> Entry:
    """An entry from the list items `entry_json` wrote."""
    values = values[: len(ENTRY_FIELDS)]
    values[_COST] = Decimal(values[_COST])
    return Entry(*values)
