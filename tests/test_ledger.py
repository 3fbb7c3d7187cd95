"""The SQLite ledger: exact money, atomic reservations, periods, idempotency, concurrency."""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from router import AlreadyBilled, BudgetExceeded, ConfigError, LedgerUnavailable, RouterConfig
from router.ledger import Entry, StoredAnswer, from_nanos, open_ledger, period_start, to_nanos

_opened: list = []


@pytest.fixture
def url(any_ledger_url: str) -> Iterator[str]:
    yield any_ledger_url
    # Close what the test opened, before its database is dropped: an unclosed PostgreSQL pool left
    # to the garbage collector may be finalised on its own worker thread, which psycopg_pool reports.
    while _opened:
        _opened.pop().close()


def ledger_for(url: str, tenants: dict | None = None, **kw):  # type: ignore[no-untyped-def]
    config = RouterConfig.from_dict({"tenants": tenants or {}})
    ledger = open_ledger(url, config.budget_for, **kw)
    _opened.append(ledger)
    return ledger


def entry(tenant: str, cost: str, rid: str = "r", attempt: int = 1, ts: float = 0.0) -> Entry:
    return Entry(rid, attempt, tenant, "small", "m", 10, 5, Decimal(cost), 0.1, "ok", "", ts)


def test_nanos_round_up_never_under_bill() -> None:
    assert to_nanos(Decimal("0.0000000001")) == 1
    assert to_nanos(Decimal("1.5E-7")) == 150
    assert from_nanos(to_nanos(Decimal("0.123456789"))) == Decimal("0.123456789")


def test_sums_are_exact(url: str) -> None:
    ledger = ledger_for(url)
    for i in range(1000):
        ledger.settle(None, entry("acme", "0.0000001", rid=f"r{i}"))
    assert ledger.spent("acme") == Decimal("0.0001")  # 1000 x 1e-7, no float drift


def test_reserve_then_settle_releases(url: str) -> None:
    ledger = ledger_for(url, {"acme": {"budget_usd": "1.00", "period": "total"}})
    res = ledger.reserve("acme", "r1", Decimal("0.6"))
    assert ledger.state("acme").reserved_usd == Decimal("0.6")
    with pytest.raises(BudgetExceeded) as info:
        ledger.reserve("acme", "r2", Decimal("0.5"))
    assert info.value.state.remaining_usd == Decimal("0.4")
    ledger.settle(res, entry("acme", "0.1", rid="r1"))
    state = ledger.state("acme")
    assert (state.spent_usd, state.reserved_usd, state.remaining_usd) == (Decimal("0.1"), Decimal(0), Decimal("0.9"))


def test_an_owners_hold_counts_past_its_ttl_and_frees_when_given_back(url: str) -> None:
    now = [1000.0]
    ledger = ledger_for(url, {"acme": {"budget_usd": "1", "period": "total"}}, clock=lambda: now[0])
    held = ledger.reserve("acme", "slow-call", Decimal(1))
    with pytest.raises(BudgetExceeded):
        ledger.reserve("acme", "r2", Decimal("0.5"))
    now[0] += 601  # past the reservation TTL: a call still in flight is still money that may be spent
    with pytest.raises(BudgetExceeded):
        ledger.reserve("acme", "r2", Decimal("0.5"))
    ledger.settle(held, entry("acme", "0.2", rid="slow-call"))
    ledger.reserve("acme", "r2", Decimal("0.5"))


def test_periods_start_on_calendar_boundaries() -> None:
    t = datetime(2026, 11, 19, 15, 30, tzinfo=UTC).timestamp()  # a Thursday
    assert datetime.fromtimestamp(period_start("day", t), UTC) == datetime(2026, 11, 19, tzinfo=UTC)
    assert datetime.fromtimestamp(period_start("week", t), UTC) == datetime(2026, 11, 16, tzinfo=UTC)
    assert datetime.fromtimestamp(period_start("month", t), UTC) == datetime(2026, 11, 1, tzinfo=UTC)
    assert period_start("total", t) == float("-inf")
    with pytest.raises(ConfigError):
        period_start("fortnight", t)


def test_spent_counts_only_the_current_period(url: str) -> None:
    now = datetime(2026, 11, 19, 12, tzinfo=UTC).timestamp()
    ledger = ledger_for(url, {"acme": {"budget_usd": "5", "period": "day"}}, clock=lambda: now)
    ledger.settle(None, entry("acme", "1", rid="old", ts=now - 86400))
    ledger.settle(None, entry("acme", "2", rid="new", ts=now))
    assert ledger.spent("acme") == Decimal(2)


def test_an_attempt_is_billed_once(url: str) -> None:
    ledger = ledger_for(url)
    ledger.settle(None, entry("acme", "1", rid="same"))
    with pytest.raises(AlreadyBilled, match="already billed"):
        ledger.settle(None, entry("acme", "1", rid="same"))
    ledger.settle(None, entry("globex", "1", rid="same"))  # another tenant's id is another request
    assert ledger.spent("acme") == Decimal(1)


def test_tenant_names_are_data_not_sql(url: str) -> None:
    evil = "acme'; DROP TABLE entries; --"
    ledger = ledger_for(url, {evil: {"budget_usd": "1", "period": "total"}})
    ledger.settle(ledger.reserve(evil, "r", Decimal("0.5")), entry(evil, "0.25"))
    assert ledger.spent(evil) == Decimal("0.25") and ledger.entries(evil)[0].tenant == evil


def test_a_group_of_bills_goes_in_exactly_as_billed(url: str) -> None:
    """The group's entries travel as one JSON parameter that the database parses: quotes,
    backslashes, control characters, non-ASCII text and extreme numbers come back unchanged, and the
    hourly totals add exactly the rows that went in (an attempt billed again by another instance adds
    nothing). NUL and a lone surrogate, which a database cannot store, are replaced, never left to
    block the group."""
    odd = 'a"b\\c\n\td\x01é漢😀\u2028'
    billed = [Entry(f"{odd}-{i}", i + 1, f"t{odd}", "small", "m\\odel", 2**39 + i, 0, Decimal("0.000000001") * (i + 1),
                    1e-9 * (i + 1), "ok" if i % 2 else "check_failed", odd, 1_700_000_000.123456 + i, i) for i in range(5)]
    hostile = replace(billed[4], request_id="x", reason="judge said \x00 and \ud800")
    ledger = ledger_for(url)
    for e in [*billed, hostile]:
        ledger.settle_later(None, e)
    ledger.flush()
    assert sorted(ledger.entries(f"t{odd}"), key=lambda e: (e.attempt, e.request_id)) == [
        *billed, replace(hostile, reason="judge said \ufffd and ?")]
    other = ledger_for(url)  # another instance bills one of them again in a group with a new one: only the new one goes in
    other.settle_later(None, billed[0])
    other.settle_later(None, replace(billed[0], request_id="new"))
    other.flush()
    spend = ledger.spend(tenant=f"t{odd}")
    assert sum(r.attempts for r in spend) == 7 and sum(r.answers for r in spend) == 2
    assert sum(r.cost_usd for r in spend) == Decimal("0.000000021") and sum(r.tokens_in for r in spend) == 7 * 2**39 + 14


def test_a_group_writes_its_answers_and_shrinks_its_slices_with_its_entries(url: str) -> None:
    """Bills that carry request ids' answers, and bills out of a slice, in one group: each answer
    lands on its own tenant's claim (another tenant's claim of the same id is left pending), text
    that JSON must escape comes back unchanged, and the slice's row ends at what is still held."""
    tenants = {"acme": {"budget_usd": "1000", "period": "total"}}
    ledger = ledger_for(url, tenants)
    odd = 'say "hi" \\ \n é 😀 \u0000 as text'
    for tenant in ("acme", "globex"):
        assert ledger.claim_request("same", tenant) is None
    held = [ledger.reserve("acme", f"r{i}", Decimal("0.01")) for i in range(3)]
    ledger.settle_later(held[0], entry("acme", "0.004", rid="same"), StoredAnswer({"text": odd, "n": [1, None]}, {"tier": "small"}))
    ledger.settle_later(held[1], entry("acme", "0.003", rid="r1"))
    ledger.settle_later(None, entry("acme", "0.002", rid="r2"), StoredAnswer({"text": "no claim"}, {}))  # no claim: nothing to mark
    ledger.flush()
    done = ledger.get_request("same", "acme")
    assert done is not None and done.status == "done" and done.response == {"text": odd, "n": [1, None]} and done.route == {"tier": "small"}
    pending = ledger.get_request("same", "globex")
    assert pending is not None and pending.status == "pending" and pending.response is None
    # Another instance: the slice's row (33 holds' worth) shrank by what it billed and, tight since a
    # bill came without a hold, by its unused part: the open hold is all that is left held.
    state = ledger_for(url, tenants).state("acme")
    assert state.spent_usd == Decimal("0.009") and state.reserved_usd == Decimal("0.01")
    ledger.settle(held[2], entry("acme", "0.001", rid="r3"))
    ledger.flush()
    assert ledger.state("acme").spent_usd == Decimal("0.010") and ledger.state("acme").reserved_usd >= 0


def test_a_group_retried_after_a_commit_whose_answer_was_lost_shrinks_its_slice_once(url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The database committed the group but the answer never came (the connection died): the group
    is retried, its entries are skipped as billed, and its slice must not shrink a second time (its
    row would then hold less than this instance uses, and other instances could pass the cap by as much)."""
    tenants = {"acme": {"budget_usd": "1000", "period": "total"}}
    ledger = ledger_for(url, tenants)
    store = ledger._books._store  # the fault goes between the database and its answer
    write = store.write_batch
    lost = [True]

    def committed_but_unanswered(*args: object) -> None:
        write(*args)
        if lost.pop() if lost else False:
            raise LedgerUnavailable("the connection died before the commit's answer")

    monkeypatch.setattr(store, "write_batch", committed_but_unanswered)
    ledger.settle_later(ledger.reserve("acme", "r1", Decimal("0.01")), entry("acme", "0.004", rid="r1"))
    with pytest.raises(LedgerUnavailable):
        ledger.flush()
    ledger.flush()  # the same group again
    state = ledger_for(url, tenants).state("acme")  # another instance: a slice of 33 holds' worth, less what it billed, once
    assert state.spent_usd == Decimal("0.004") and state.reserved_usd == Decimal("0.33") - Decimal("0.004")
    assert len(ledger.entries("acme")) == 1


def test_a_bill_whose_numbers_are_no_numbers_goes_in_with_its_group(url: str) -> None:
    """A latency or time that is NaN or infinite (JSON has no such number), or a token count past 64
    bits (a provider's absurd usage), cannot block the group: the latency is stored as 0, the bill is
    timed when it was billed, the count as 2**40 (a trillion tokens; hourly sums still fit). A cost
    past 2**53 nano-dollars is billed as that; a negative or NaN cost is refused with a ValueError."""
    ledger = ledger_for(url)
    ledger.settle_later(None, replace(entry("acme", "0.5", rid="nan"), latency_s=float("nan"), ts=float("inf"), tokens_in=10**30))
    ledger.settle_later(None, entry("acme", "0.25", rid="fine"))
    ledger.flush()
    stored = {e.request_id: e for e in ledger.entries("acme")}
    assert stored["nan"].latency_s == 0.0 and 0 < stored["nan"].ts < 1e12 and stored["nan"].tokens_in == 2**40
    assert ledger.spent("acme") == Decimal("0.75")
    ledger.settle(None, entry("acme", "1e30", rid="absurd"))  # no hold bounded it: billed about $9M, which every sum holds
    assert ledger.spent("acme") == Decimal("0.75") + Decimal(2**53) / 10**9
    for bad in ("-0.01", "NaN", "Infinity"):  # the caller's mistake: refused, nothing queued
        with pytest.raises(ValueError, match="finite amount of at least"):
            ledger.settle(None, entry("acme", bad, rid=f"bad {bad}"))
    assert ledger.spent("acme") == Decimal("0.75") + Decimal(2**53) / 10**9


def test_concurrent_reservations_never_overspend(url: str) -> None:
    ledger = ledger_for(url, {"acme": {"budget_usd": "1.00", "period": "total"}})
    granted: list[int] = []

    def worker(i: int) -> None:
        try:
            res = ledger.reserve("acme", f"r{i}", Decimal("0.05"))
        except BudgetExceeded:
            return
        ledger.settle(res, entry("acme", "0.05", rid=f"r{i}"))
        granted.append(i)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(60)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert ledger.spent("acme") <= Decimal("1.00")
    assert len(granted) == 20 and ledger.spent("acme") == Decimal("0.05") * len(granted)



def test_the_report_reads_hourly_totals_and_cuts_only_the_edge_hours(url: str) -> None:
    ledger = ledger_for(url)
    base = 1_800_000_000.0  # on an hour boundary
    rng = [(i, base + i * 97.0) for i in range(200)]  # 200 attempts over 5.4 hours
    for i, ts in rng:
        outcome = "ok" if i % 3 else "error"
        ledger.settle(None, Entry(f"q{i // 2}", 1 + i % 2, f"t{i % 2}", "small" if i % 4 else "frontier", "m", 10 + i, 5, Decimal(i) / 1000,
                                  0.1, outcome, "", ts))
    for since, until in [(None, None), (base + 1800, base + 4 * 3600 + 600), (base + 100, base + 200), (base + 3600, None)]:
        got = {(r.tenant, r.hour, r.tier): (r.attempts, r.requests, r.answers, r.tokens_in, r.answer_tokens_in, r.cost_usd)
               for r in ledger.spend(since, until)}
        want: dict[tuple[str, int, str], list] = {}
        for e in ledger.entries():
            if (since is None or e.ts >= since) and (until is None or e.ts < until):
                w = want.setdefault((e.tenant, int(e.ts // 3600), e.tier), [0, 0, 0, 0, 0, Decimal(0)])
                ok = e.outcome == "ok"
                w[0] += 1
                w[1] += e.attempt == 1
                w[2] += ok
                w[3] += e.tokens_in
                w[4] += e.tokens_in if ok else 0
                w[5] += e.cost_usd
        assert got == {k: tuple(v) for k, v in want.items()}, (since, until)


def test_instances_share_a_cap_through_slices_and_exact_holds_near_it(url: str) -> None:
    tenants = {"acme": {"budget_usd": "1.00", "period": "total"}}
    a, b = ledger_for(url, tenants), ledger_for(url, tenants)
    held = a.reserve("acme", "r1", Decimal("0.6"))
    b.settle(b.reserve("acme", "r2", Decimal("0.4")), entry("acme", "0.4", rid="r2"))  # near the cap, holds are exact
    with pytest.raises(BudgetExceeded):
        b.reserve("acme", "r3", Decimal("0.000000001"))
    a.settle(held, entry("acme", "0.5", rid="r1"))
    assert a.state("acme").remaining_usd == Decimal("0.1") == b.state("acme").remaining_usd  # a commits as it settles near the cap
    b.settle(b.reserve("acme", "r4", Decimal("0.1")), entry("acme", "0.1", rid="r4"))
    assert a.spent("acme") == Decimal(1) and len(a.entries("acme")) == 3


def test_a_slice_far_from_the_cap_holds_many_requests_with_one_write(url: str) -> None:
    ledger = ledger_for(url, {"acme": {"budget_usd": "1000", "period": "total"}})
    for i in range(100):
        ledger.settle(ledger.reserve("acme", f"r{i}", Decimal("0.01")), entry("acme", "0.001", rid=f"r{i}"))
    other = ledger_for(url, {"acme": {"budget_usd": "1000", "period": "total"}})
    state = other.state("acme")
    # The other instance sees the first instance's slice as held until its bills are committed.
    assert state.spent_usd + state.reserved_usd >= Decimal("0.1")
    ledger.flush()
    assert other.spent("acme") == Decimal("0.1") and ledger.state("acme").reserved_usd == 0


def test_an_older_ledger_gets_its_hourly_totals_from_its_entries(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    with sqlite3.connect(path) as conn:  # the entries table as versions before the rollup made it, with two bills
        conn.execute("CREATE TABLE entries (id INTEGER PRIMARY KEY, request_id TEXT NOT NULL, attempt INTEGER NOT NULL, tenant TEXT NOT NULL,"
                     " tier TEXT NOT NULL, model TEXT NOT NULL, tokens_in INTEGER NOT NULL, tokens_out INTEGER NOT NULL,"
                     " cost_nanos INTEGER NOT NULL, latency_s REAL NOT NULL, outcome TEXT NOT NULL, reason TEXT NOT NULL, ts REAL NOT NULL,"
                     " reservation TEXT, UNIQUE (request_id, attempt))")
        conn.executemany("INSERT INTO entries (request_id, attempt, tenant, tier, model, tokens_in, tokens_out, cost_nanos, latency_s,"
                         " outcome, reason, ts) VALUES (?, 1, 'acme', 'small', 'm', 1, 1, ?, 0.1, 'ok', '', ?)",
                         [("a", 250_000_000, 1_800_000_000.0), ("b", 500_000_000, 1_800_003_600.0)])
    ledger = ledger_for(f"sqlite:///{path}", {"acme": {"budget_usd": "1", "period": "total"}})
    assert ledger.spent("acme") == Decimal("0.75") and sum(r.cost_usd for r in ledger.spend()) == Decimal("0.75")
    with pytest.raises(BudgetExceeded):
        ledger.reserve("acme", "c", Decimal("0.3"))


def test_a_journal_left_by_an_older_version_is_replayed_once_on_open(tmp_path: Path) -> None:
    path = tmp_path / "l.db"
    line = {"reservation": None, "answer": None, "entry": {"request_id": "old-1", "attempt": 1, "tenant": "acme", "tier": "small",
            "model": "m", "tokens_in": 3, "tokens_out": 4, "cost_usd": "0.25", "latency_s": 0.1, "outcome": "ok", "reason": "", "ts": 1.8e9}}
    (tmp_path / "l.db.journal").write_text(json.dumps(line) + "\n")
    for _ in range(2):  # the second opening finds it replayed: billed once
        ledger = ledger_for(f"sqlite:///{path}")
        assert [e.request_id for e in ledger.entries()] == ["old-1"] and ledger.spent("acme") == Decimal("0.25")
        ledger.close()
    assert (tmp_path / "l.db.journal").read_text() == ""


def test_outboxes_left_by_versions_before_cached_tokens_and_session_flags_are_committed(tmp_path: Path) -> None:
    path = tmp_path / "l.db"
    old = [1, "old-2", 1, "acme", "small", "m", 3, 4, "0.5", 0.1, "ok", "", 1.8e9, None, "hold-1"]  # 12 fields, answer, hold
    (tmp_path / "l.db.journal-deadbeef.jsonl").write_text(json.dumps(old) + "\n")
    cached = [1, "old-3", 1, "acme", "small", "m", 3, 4, "0.25", 0.1, "ok", "", 1.8e9, 2, None, "hold-2"]  # 13: cached_in, no in_session
    (tmp_path / "l.db.journal-deadbee0.jsonl").write_text(json.dumps(cached) + "\n")
    ledger = ledger_for(f"sqlite:///{path}")
    found = {e.request_id: e for e in ledger.entries()}
    assert (found["old-2"].cost_usd, found["old-2"].cached_in, found["old-2"].tokens_out, found["old-2"].in_session) == (Decimal("0.5"), 0, 4, 0)
    assert (found["old-3"].cost_usd, found["old-3"].cached_in, found["old-3"].in_session) == (Decimal("0.25"), 2, 0)
    assert ledger.spent("acme") == Decimal("0.75")
    ledger.close()


def test_an_outbox_and_a_journal_of_a_newer_version_are_committed_with_the_fields_this_one_knows(tmp_path: Path) -> None:
    """A rolling upgrade on one host: this version replays what a newer one left, whose entries have
    a field more (here a 15th, after in_session) in the outbox line and in the older journal's dict."""
    path = tmp_path / "l.db"
    newer = [1, "new-1", 1, "acme", "small", "m", 3, 4, "0.5", 0.1, "ok", "", 1.8e9, 7, 1, "a later field", None, "hold-1"]
    (tmp_path / "l.db.journal-feedbeef.jsonl").write_text(json.dumps(newer) + "\n")
    line = {"reservation": None, "answer": None, "entry": {"request_id": "new-2", "attempt": 1, "tenant": "acme", "tier": "small",
            "model": "m", "tokens_in": 3, "tokens_out": 4, "cost_usd": "0.25", "latency_s": 0.1, "outcome": "ok", "reason": "",
            "ts": 1.8e9, "cached_in": 2, "in_session": 1, "a_later_field": 1}}
    (tmp_path / "l.db.journal").write_text(json.dumps(line) + "\n")
    ledger = ledger_for(f"sqlite:///{path}")
    found = {e.request_id: e for e in ledger.entries()}
    assert (found["new-1"].cost_usd, found["new-1"].cached_in, found["new-1"].in_session, found["new-1"].reason) == (Decimal("0.5"), 7, 1, "")
    assert (found["new-2"].cost_usd, found["new-2"].cached_in, found["new-2"].in_session) == (Decimal("0.25"), 2, 1)
    assert ledger.spent("acme") == Decimal("0.75")
    ledger.close()


def test_a_sqlite_without_json_functions_is_a_config_error_at_open(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Groups of bills go in through SQLite's JSON functions: a build without them is refused when
    the ledger opens, with the version, not on the first commit."""
    real = sqlite3.connect

    def without_json(*args, **kwargs):  # type: ignore[no-untyped-def]
        conn = real(*args, **kwargs)
        conn.create_function("json_extract", 2, lambda *_: 1 / 0)  # as good as missing: every call fails
        return conn

    monkeypatch.setattr(sqlite3, "connect", without_json)
    with pytest.raises(ConfigError, match="JSON functions"):
        open_ledger(f"sqlite:///{tmp_path / 'l.db'}", RouterConfig.from_dict({}).budget_for)
