"""The attack findings of the money path, on both backends where a ledger is involved: a dead host's
money stays inside the cap, a skewed clock frees nothing, one tenant's request id never blocks
another's bill, holds cover every choice, and a budget bounds the output instead of refusing."""

from __future__ import annotations

import logging
import os
import signal
import stat
import subprocess
import sys
import threading
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from conftest import KeywordClassifier, local_tiers

from router import BudgetExceeded, InvalidRequestError, LiteLLMClient, Router, RouterConfig
from router.cli import main
from router.ledger import open_ledger
from router.testing import LocalOpenAIServer, ScriptedClient

HELPERS = Path(__file__).parent / "helpers"
MSG = [{"role": "user", "content": "hello there"}]
CAP = {"acme": {"budget_usd": "1", "period": "total"}}


def budgets(tenants: dict[str, Any] = CAP) -> Any:
    return RouterConfig.from_dict({"tenants": tenants}).budget_for


def test_a_host_that_dies_for_good_keeps_its_money_inside_the_cap(pg_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    home = tmp_path / "host1"
    env = {**os.environ, "TIERWISE_HOME": str(home), "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    proc = subprocess.Popen([sys.executable, str(HELPERS / "host_writer.py"), pg_url], env=env, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "done"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    cap = {"acme": {"budget_usd": "100", "period": "total"}}
    ledger = open_ledger(pg_url, budgets(cap), owner_timeout_s=0.5)  # host 0: its own home, it cannot read host 1's outbox
    time.sleep(1.0)  # host 1 stops beating: by the server's clock it is dead
    state = ledger.state("acme")
    # Five bills sit in host 1's outbox and one call was in flight: none is in the books, and its whole
    # slice (those $0.25 and $0.08 of slack) is presumed spent.
    assert state.spent_usd == 0 and state.presumed_usd == Decimal("0.33") and state.reserved_usd == Decimal("0.33")
    with pytest.raises(BudgetExceeded):
        ledger.reserve("acme", "x", Decimal("99.68"))
    assert main(["ledger", "reconcile", "--url", pg_url]) == 0
    assert "presumed" in capsys.readouterr().out
    (outbox,) = home.glob("journal-*-*.jsonl")  # copied from host 1's data directory
    assert main(["ledger", "reconcile", "--url", pg_url, "--outbox", str(outbox)]) == 0
    assert "committed 6 bills" in capsys.readouterr().out
    state = ledger.state("acme")
    assert state.presumed_usd == 0 and state.reserved_usd == 0 and state.spent_usd == Decimal("0.25")  # five bills and the hold in flight at its worst case
    presumed = [e for e in ledger.entries("acme") if e.outcome == "presumed"]
    assert [(e.request_id, e.cost_usd) for e in presumed] == [("h1-open", Decimal("0.2"))]
    ledger.close()


def test_release_drops_presumed_holds_whose_outbox_is_lost(pg_url: str, tmp_path: Path) -> None:
    env = {**os.environ, "TIERWISE_HOME": str(tmp_path / "gone"), "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    proc = subprocess.Popen([sys.executable, str(HELPERS / "host_writer.py"), pg_url], env=env, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "done"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    ledger = open_ledger(pg_url, budgets(), owner_timeout_s=0.5)
    time.sleep(1.0)
    assert len(ledger.presumed_holds()) == 1 and ledger.release_presumed() == 1
    assert ledger.state("acme").reserved_usd == 0
    ledger.close()


def test_a_skewed_clock_never_frees_live_holds(any_ledger_url: str) -> None:
    behind = open_ledger(any_ledger_url, budgets(), clock=lambda: time.time() - 30)  # 30 s behind: older than the owner timeout
    other = open_ledger(any_ledger_url, budgets())
    held = behind.reserve("acme", "slow", Decimal("0.8"))
    time.sleep(0.3)
    with pytest.raises(BudgetExceeded):
        other.reserve("acme", "b", Decimal("0.5"))
    state = other.state("acme")
    assert state.reserved_usd == Decimal("0.8") and state.presumed_usd == 0  # alive by the database's clock
    behind.settle(held, _entry("slow", "0.1"))
    behind.close()
    other.settle(other.reserve("acme", "b", Decimal("0.5")), _entry("b", "0.5"))
    assert other.state("acme").spent_usd == Decimal("0.6")
    other.close()


def test_a_host_clock_a_day_ahead_cannot_open_tomorrows_budget_today(pg_url: str, monkeypatch: pytest.MonkeyPatch,
                                                                      caplog: pytest.LogCaptureFixture) -> None:
    """Hosts sharing a PostgreSQL ledger keep its server's time: a host whose clock ran a day ahead
    found its budget periods and dated its bills on its own clock, so it could spend a daily cap
    again that the others had spent today."""
    daily = budgets({"acme": {"budget_usd": "1", "period": "day"}})
    synced = open_ledger(pg_url, daily)
    synced.settle(synced.reserve("acme", "a", Decimal("0.9")), _entry("a", "0.9"))
    synced.close()
    real = time.time
    monkeypatch.setattr(time, "time", lambda: real() + 86_400)
    with caplog.at_level(logging.WARNING, logger="tierwise"):
        ahead = open_ledger(pg_url, daily)
    try:
        assert "clock is" in caplog.text and "off the ledger server's" in caplog.text
        with pytest.raises(BudgetExceeded):
            ahead.reserve("acme", "b", Decimal("0.5"))
        assert ahead.spent("acme") == Decimal("0.9")
        ahead.settle(ahead.reserve("acme", "c", Decimal("0.05")), _entry("c", "0.05"))
        ahead.flush()
        stamped = {e.request_id: e.ts for e in ahead.entries("acme")}
        assert abs(stamped["c"] - real()) < 60  # dated by the server's clock, not the host's
    finally:
        ahead.close()


def test_one_request_id_from_four_tenants_at_once_is_four_paid_answers(server: LocalOpenAIServer, any_ledger_url: str) -> None:
    server.responder = lambda _m, msgs: f"for {msgs[-1]['content']}"
    config = RouterConfig.from_dict({"tiers": local_tiers(server.url), "ledger": any_ledger_url, "thresholds": [0.4, 0.7]})
    tenants = ["t1", "t2", "t3", "t4"]
    got: dict[str, Any] = {}
    with Router(config, client=LiteLLMClient(config.retry, config.timeout_s), classifier=KeywordClassifier()) as router:
        barrier = threading.Barrier(4)

        def ask(tenant: str) -> None:
            barrier.wait()
            try:
                got[tenant] = router.complete([{"role": "user", "content": tenant}], tenant=tenant, request_id="shared-1")
            except Exception as exc:  # noqa: BLE001 - collected and asserted on below
                got[tenant] = exc

        threads = [threading.Thread(target=ask, args=(t,)) for t in tenants]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert {t: getattr(got[t], "choices", [None])[0].message.content for t in tenants} == {t: f"for {t}" for t in tenants}, got
        assert sorted(e.tenant for e in router.ledger.entries() if e.request_id == "shared-1") == tenants


def test_holds_count_every_choice(server: LocalOpenAIServer, any_ledger_url: str) -> None:
    # small: $4e-7 an output token. 100 tokens x 5 choices = $0.0002 of output: over a $0.0001 cap; one choice fits.
    config = RouterConfig.from_dict({"tiers": local_tiers(server.url), "ledger": any_ledger_url, "thresholds": [0.4, 0.7],
                                     "tenants": {"acme": {"budget_usd": "0.0001", "period": "total"}}})
    with Router(config, client=LiteLLMClient(config.retry, config.timeout_s), classifier=KeywordClassifier()) as router:
        with pytest.raises(BudgetExceeded):
            router.complete(MSG, tenant="acme", n=5, max_tokens=100, tier="small")
        assert server.requests == []
        router.complete(MSG, tenant="acme", n=1, max_tokens=100, tier="small")


def test_without_max_tokens_the_output_is_bounded_by_the_room_not_refused(server: LocalOpenAIServer, any_ledger_url: str) -> None:
    # frontier: $4e-5 an output token; its 4,096-token limit ($0.16) is over the $0.001 cap, 20 tokens are not.
    config = RouterConfig.from_dict({"tiers": local_tiers(server.url), "ledger": any_ledger_url, "thresholds": [0.4, 0.7],
                                     "tenants": {"acme": {"budget_usd": "0.001", "period": "total"}}})
    with Router(config, client=LiteLLMClient(config.retry, config.timeout_s), classifier=KeywordClassifier()) as router:
        resp = router.complete(MSG, tenant="acme", tier="frontier")
        sent = server.requests[-1]["body"]["max_tokens"]
        assert 16 <= sent < 25 and f"max_tokens set to {sent}" in resp.route.reason
        assert router.ledger.spent("acme") <= Decimal("0.001")


def test_a_request_waits_for_live_holds_past_any_window(pg_url: str) -> None:
    """Held by a live instance for 5.5 s (past the old 5 s window): waited for, then served (the wait
    reads the books the same way on both backends; PostgreSQL is the one instances on several hosts share)."""
    any_ledger_url = pg_url
    config = RouterConfig.from_dict({"tiers": [{"name": "small", "models": ["gpt-5-nano"]}], "ledger": any_ledger_url,
                                     "tenants": {"acme": {"budget_usd": "0.001", "period": "total"}}})
    other = open_ledger(any_ledger_url, config.budget_for)
    held = other.reserve("acme", "slow", Decimal("0.00099"))
    threading.Timer(5.5, lambda: other.settle(held, _entry("slow", "0.00001"))).start()
    with Router(config, client=ScriptedClient(), classifier=KeywordClassifier()) as router:
        started = time.monotonic()
        resp = router.complete(MSG, tenant="acme", max_tokens=100)
        assert resp.route.tier == "small" and time.monotonic() - started > 5
        dead = open_ledger(any_ledger_url, config.budget_for)
        assert router.ledger.state("acme").presumed_usd == 0
    dead.close()
    other.close()


def test_ledger_files_are_private(tmp_path: Path) -> None:
    config = RouterConfig.from_dict({"tiers": [{"name": "small", "models": ["gpt-5-nano"]}], "ledger": f"sqlite:///{tmp_path / 'l.db'}",
                                     "tenants": CAP})
    with Router(config, client=ScriptedClient(), classifier=KeywordClassifier()) as router:
        router.complete(MSG, tenant="acme", request_id="r1")
        files = [p for p in tmp_path.iterdir() if p.name.startswith("l.db")]
        assert {p.name for p in files} >= {"l.db", "l.db-wal"}
        assert all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in files), {p.name: oct(p.stat().st_mode) for p in files}


def test_labels_keep_no_prompt_words_without_store_prompts(server: LocalOpenAIServer, ledger_url: str) -> None:
    config = RouterConfig.from_dict({"tiers": local_tiers(server.url), "ledger": ledger_url, "thresholds": [0.9, 0.95],
                                     "learning": {"refit_every": 0}})
    with Router(config, client=LiteLLMClient(config.retry, config.timeout_s)) as router:
        resp = router.complete([{"role": "user", "content": "my bank password and login please"}])
        router.feedback(resp.route.request_id, 0.0)
        (label,) = router.ledger.labels()
    assert label.features["w"] == [] and label.messages is None


def _entry(rid: str, cost: str) -> Any:
    from router.ledger import Entry

    return Entry(rid, 1, "acme", "small", "m", 1, 1, Decimal(cost), 0.01, "ok")


def test_without_a_learning_section_nothing_is_learned_or_kept(server: LocalOpenAIServer, ledger_url: str) -> None:
    server.scripts["m-small"].append("")  # an empty answer fails non_empty: once a label, now only an escalation
    config = RouterConfig.from_dict({"tiers": local_tiers(server.url), "ledger": ledger_url, "thresholds": [0.4, 0.7]})
    with Router(config, client=LiteLLMClient(config.retry, config.timeout_s), classifier=KeywordClassifier()) as router:
        resp = router.complete([{"role": "user", "content": "my bank password is hunter2"}])
        assert [a.outcome for a in resp.route.attempts] == ["check_failed", "ok"]
        with pytest.raises(InvalidRequestError, match="learning"):
            router.feedback(resp.route.request_id, 0.0)
        assert router.ledger.labels() == [] and router.learning._pool is None  # no label, no thread


def test_a_configured_cache_price_bills_the_providers_cached_split_exactly(server: LocalOpenAIServer, any_ledger_url: str) -> None:
    tiers = local_tiers(server.url)
    small = tiers[0]["models"][0]
    small["cache_read_input_cost_per_token"] = "0.00000001"  # a tenth of its input price
    small["cache_creation_input_cost_per_token"] = "0.000000125"
    server.scripts["m-small"].append({"content": "ok", "prompt_tokens": 1000, "completion_tokens": 10, "cached_tokens": 900})
    server.scripts["m-small"].append({"content": "ok", "prompt_tokens": 1000, "completion_tokens": 10, "cache_creation_input_tokens": 800})
    config = RouterConfig.from_dict({"tiers": tiers, "ledger": any_ledger_url, "thresholds": [0.4, 0.7],
                                     "tenants": {"acme": {"budget_usd": "1", "period": "total"}}})
    long = [{"role": "user", "content": "the same long shared context " * 180}]  # about 1,000 tokens: the usage is plausible
    with Router(config, client=LiteLLMClient(config.retry, config.timeout_s), classifier=KeywordClassifier()) as router:
        read = router.complete(long, tenant="acme", tier="small", max_tokens=20).route
        written = router.complete(long, tenant="acme", tier="small", max_tokens=20).route
        assert [e.cached_in for e in router.ledger.entries("acme")] == [900, 0]  # the provider's cached tokens, kept per entry
    assert "billed the hold" not in read.reason + written.reason
    read, written = read.cost_usd, written.cost_usd
    p_in, p_out = Decimal("0.0000001"), Decimal("0.0000004")
    assert read == 100 * p_in + 900 * Decimal("0.00000001") + 10 * p_out  # not 1,000 tokens at the full input price
    assert written == 200 * p_in + 800 * Decimal("0.000000125") + 10 * p_out  # a cache write costs what the provider charges
