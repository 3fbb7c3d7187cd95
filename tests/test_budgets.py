"""Budgets that hold under concurrency (threads, processes, both backends), crashes and bad input."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from decimal import Decimal
from pathlib import Path

import pytest

from classifiers import HeuristicClassifier
from router import BudgetExceeded, ConfigError, Router, RouterConfig
from router.ledger import Entry, open_ledger
from router.testing import ScriptedClient

HELPERS = Path(__file__).parent / "helpers"
# gpt-5-nano with litellm's mock usage (10 tokens in, 20 out): $0.0000085 a request.
COST = Decimal("0.0000085")
CAP = str(COST * 40)  # fits about 40 requests


class Hard:
    """Scores every request 0.9: it plans for the top tier."""

    def score(self, m: object) -> float:
        return 0.9

    def score_batch(self, b: list) -> list[float]:
        return [0.9] * len(b)


def check_books(url: str, served: int) -> None:
    config = RouterConfig.from_dict({"tenants": {"acme": {"budget_usd": CAP, "period": "total"}}})
    ledger = open_ledger(url, config.budget_for)
    entries = ledger.entries("acme")
    spent = ledger.spent("acme")
    assert spent <= Decimal(CAP), f"overspent: {spent} > {CAP}"
    assert len([e for e in entries if e.outcome == "ok"]) == served
    assert sum(e.cost_usd for e in entries) == spent
    assert ledger.state("acme").reserved_usd == 0
    ledger.close()


def test_200_threads_never_overspend_and_most_that_fit_are_served(any_ledger_url: str) -> None:
    sys.path.insert(0, str(HELPERS))
    from spender import run

    counts = run(any_ledger_url, CAP, 200)
    assert counts["ok"] + counts["refused"] == 200
    assert 30 <= counts["ok"] <= 40
    check_books(any_ledger_url, counts["ok"])


def test_4_processes_share_one_budget(any_ledger_url: str) -> None:
    procs = [
        subprocess.Popen([sys.executable, str(HELPERS / "spender.py"), any_ledger_url, CAP, "50"], stdout=subprocess.PIPE, text=True)
        for _ in range(4)
    ]
    results = [json.loads(p.communicate(timeout=240)[0]) for p in procs]
    served = sum(r["ok"] for r in results)
    assert sum(r["ok"] + r["refused"] for r in results) == 200
    # Only settled money refuses, however slow the machine: what is left is less than one more request's hold.
    assert served <= 40 and Decimal(CAP) - COST * served < 3 * COST
    check_books(any_ledger_url, served)


def test_same_request_id_10_times_concurrently_is_one_bill(any_ledger_url: str) -> None:
    config = RouterConfig.from_dict({"tiers": [{"name": "small", "models": ["gpt-5-nano"]}], "ledger": any_ledger_url})
    client = ScriptedClient({"gpt-5-nano": ["the one answer"]})
    router = Router(config, client=client, classifier=HeuristicClassifier())
    out: list[str] = []

    def go() -> None:
        out.append(router.complete([{"role": "user", "content": "hi"}], request_id="same-id", mock_delay=0.1).choices[0].message.content)

    threads = [threading.Thread(target=go) for _ in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert out == ["the one answer"] * 10 and client.calls == ["gpt-5-nano"]
    assert len(router.ledger.entries()) == 1
    router.close()


def test_waits_for_pending_holds_instead_of_refusing(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'l.db'}"
    config = RouterConfig.from_dict({"tiers": [{"name": "small", "models": ["gpt-5-nano"]}], "ledger": url,
                                     "tenants": {"acme": {"budget_usd": "0.00003", "period": "total"}}})
    sleeps: list[float] = []

    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        time.sleep(seconds)

    router = Router(config, client=ScriptedClient(), classifier=HeuristicClassifier(), sleep=sleep)
    held = router.ledger.reserve("acme", "other", Decimal("0.00002"))  # another request in flight
    other = Entry("other", 1, "acme", "small", "gpt-5-nano", 10, 20, COST, 0.1, "ok")
    threading.Timer(0.3, lambda: router.ledger.settle(held, other)).start()
    resp = router.complete([{"role": "user", "content": "hi"}], tenant="acme", max_tokens=40)
    assert resp.choices[0].message.content == "ok" and sleeps  # it waited, then was served


def test_takes_a_cheaper_tier_when_the_planned_one_does_not_fit(tmp_path: Path) -> None:
    config = RouterConfig.from_dict({
        "tiers": [{"name": "small", "models": ["gpt-5-nano"]}, {"name": "frontier", "models": ["gpt-5"]}],
        "ledger": f"sqlite:///{tmp_path / 'l.db'}", "thresholds": [0.5], "budget_wait_s": 0,
        "tenants": {"acme": {"budget_usd": "0.0002", "period": "day"}},
    })

    client = ScriptedClient()
    resp = Router(config, client=client, classifier=Hard()).complete([{"role": "user", "content": "hi"}], tenant="acme", max_tokens=100)
    # gpt-5's worst case at 100 output tokens is $0.001 > cap; gpt-5-nano's fits.
    assert client.calls == ["gpt-5-nano"] and resp.route.tier == "small"
    # The change of plan says why, and what to change: the worst case is bounded by max_tokens.
    assert "the budget cannot hold frontier (gpt-5's worst case $" in resp.route.reason
    assert "with 100 output tokens" in resp.route.reason and "stepped down to small" in resp.route.reason


def test_low_budget_downgrades_before_refusing(tmp_path: Path) -> None:
    config = RouterConfig.from_dict({
        "tiers": [{"name": "small", "models": ["gpt-5-nano"]}, {"name": "frontier", "models": ["gpt-5"]}],
        "ledger": f"sqlite:///{tmp_path / 'l.db'}", "thresholds": [0.5], "downgrade": {0.5: 1},
        "tenants": {"acme": {"budget_usd": "1", "period": "day"}},
    })
    client = ScriptedClient()
    router = Router(config, client=client, classifier=Hard())
    router.complete([{"role": "user", "content": "hi"}], tenant="acme", max_tokens=1000)
    router.ledger.settle(None, Entry("spent", 1, "acme", "frontier", "gpt-5", 0, 0, Decimal("0.6"), 0.0, "ok"))
    resp = router.complete([{"role": "user", "content": "hi"}], tenant="acme", max_tokens=1000)
    assert client.calls == ["gpt-5", "gpt-5-nano"] and resp.route.tier == "small"
    router.ledger.settle(None, Entry("spent", 2, "acme", "frontier", "gpt-5", 0, 0, Decimal("0.4"), 0.0, "ok"))
    with pytest.raises(BudgetExceeded) as info:
        router.complete([{"role": "user", "content": "hi"}], tenant="acme", max_tokens=1000)
    assert info.value.state.remaining_usd == 0


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_sigkill_mid_write_loses_nothing_and_bills_the_holds_in_flight(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    url = f"sqlite:///{tmp_path / 'l.db'}" if backend == "sqlite" else request.getfixturevalue("pg_url")
    rounds = 12 if backend == "sqlite" else 8
    rng = random.Random(7)
    committed: set[str] = set()
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    for r in range(rounds):
        proc = subprocess.Popen([sys.executable, str(HELPERS / "killed_writer.py"), url, f"run{r}"], stdout=subprocess.PIPE, text=True, env=env)
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        time.sleep(rng.uniform(0.0, 0.15))
        proc.send_signal(signal.SIGKILL)
        out = proc.communicate()[0]
        committed.update(f"run{r}-{line}" for line in out.split() if line.isdigit())
    config = RouterConfig.from_dict({"tenants": {"acme": {"budget_usd": "1000000", "period": "total"}}})
    later = [time.time() + 601]
    ledger = open_ledger(url, config.budget_for, clock=lambda: later[0])
    billed = {e.request_id for e in ledger.entries("acme")}
    assert committed <= billed, f"lost committed entries: {sorted(committed - billed)[:5]}"
    bills = [e for e in ledger.entries("acme") if e.outcome != "presumed"]
    assert all(e.cost_usd == Decimal("0.001") and e.tokens_out == 20 for e in bills)  # none half-written
    # Each hold a dead process had in flight (the "-open" ones, and a hold killed before its bill) is billed at its amount.
    presumed = [e for e in ledger.entries("acme") if e.outcome == "presumed"]
    assert presumed and all(e.cost_usd in (Decimal("0.002"), Decimal("0.003")) for e in presumed)
    assert all(e.request_id.endswith("-open") for e in presumed if e.cost_usd == Decimal("0.003"))
    assert ledger.spent("acme") == Decimal("0.001") * len(bills) + sum(e.cost_usd for e in presumed)
    assert ledger.state("acme").reserved_usd == 0  # once their outboxes are in the books, the dead processes' rows are gone
    ledger.close()


def test_unreachable_postgres_is_a_clear_error() -> None:
    with pytest.raises(ConfigError, match="cannot connect to the PostgreSQL ledger") as info:
        open_ledger("postgresql://nobody:s3cret-pw@127.0.0.1:1/none", lambda t: None)
    assert "s3cret-pw" not in str(info.value)


def test_time_zone_sets_the_day_boundary(tmp_path: Path) -> None:
    from datetime import datetime
    from zoneinfo import ZoneInfo

    tz = ZoneInfo("America/New_York")
    now = datetime(2026, 11, 19, 1, 0, tzinfo=tz).timestamp()  # 06:00 UTC
    config = RouterConfig.from_dict({"tenants": {"acme": {"budget_usd": "5", "period": "day"}}, "timezone": "America/New_York"})
    ledger = open_ledger(f"sqlite:///{tmp_path / 'l.db'}", config.budget_for, clock=lambda: now, tz=tz)
    ledger.settle(None, Entry("a", 1, "acme", "s", "m", 0, 0, Decimal(1), 0.0, "ok", ts=now - 2 * 3600))  # 23:00 the day before
    ledger.settle(None, Entry("b", 1, "acme", "s", "m", 0, 0, Decimal(2), 0.0, "ok", ts=now - 600))
    assert ledger.spent("acme") == Decimal(2)
    with pytest.raises(ConfigError):
        RouterConfig.from_dict({"timezone": "Mars/Olympus"})


class CountingClient(ScriptedClient):
    """Counts the tokenizer's uses: the hot path should not need it."""

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.counted = 0

    def count_tokens(self, spec: object, messages: object, tools: object = None) -> int:
        self.counted += 1
        return super().count_tokens(spec, messages, tools)  # type: ignore[arg-type]


def _one_tier(tmp_path: Path, budget: str) -> RouterConfig:
    return RouterConfig.from_dict({"tiers": [{"name": "small", "models": ["gpt-5-nano"]}], "ledger": f"sqlite:///{tmp_path / 'l.db'}",
                                   "budget_wait_s": 0, "tenants": {"acme": {"budget_usd": budget, "period": "day"}}})


def test_a_large_budgeted_prompt_is_held_on_its_bytes_without_the_tokenizer(tmp_path: Path) -> None:
    client = CountingClient()
    router = Router(_one_tier(tmp_path, "10"), client=client, classifier=HeuristicClassifier())
    big = "word " * 200_000  # 1 MB
    resp = router.complete([{"role": "user", "content": big}], tenant="acme", max_tokens=10,
                           mock_response={"content": "ok", "prompt_tokens": 200_000, "completion_tokens": 1})
    assert resp.route.tier == "small" and client.counted == 0
    # 10,000 turns: the classifier reads a window of them, the hold their bytes.
    turns = [{"role": "user" if i % 2 == 0 else "assistant", "content": f"turn {i}"} for i in range(10_000)]
    router.complete(turns, tenant="acme", max_tokens=10)
    assert client.counted == 0


def test_near_the_cap_the_tokens_are_counted_and_the_request_still_fits(tmp_path: Path) -> None:
    # The byte bound of this prompt (50,000 tokens' worth) does not fit the cap; its count (10,000) does.
    client = CountingClient()
    router = Router(_one_tier(tmp_path, "0.0008"), client=client, classifier=HeuristicClassifier())
    resp = router.complete([{"role": "user", "content": "word " * 10_000}], tenant="acme", max_tokens=10)
    assert resp.route.tier == "small" and client.counted >= 1
    assert router.ledger.spent("acme") <= Decimal("0.0008")


def test_without_downgrade_rules_a_budgeted_request_reads_no_budget_state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    router = Router(_one_tier(tmp_path, "10"), client=ScriptedClient(), classifier=HeuristicClassifier())
    reads = []
    real = router.ledger.state
    monkeypatch.setattr(router.ledger, "state", lambda tenant: reads.append(tenant) or real(tenant))
    router.complete([{"role": "user", "content": "hi"}], tenant="acme", max_tokens=10)
    assert reads == []  # the hold itself checks the budget: one trip fewer on the hot path
    assert router.ledger.spent("acme") > 0
