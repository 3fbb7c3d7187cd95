"""Money and security under faults: each item of the attack list, through the public API, on both
backends where a ledger is involved."""

from __future__ import annotations

import json
import logging
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import traceback
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from conftest import SECRET, KeywordClassifier, local_tiers

from router import (
    ConfigError,
    InvalidRequestError,
    LiteLLMClient,
    ProviderError,
    RequestIdConflict,
    Router,
    RouterConfig,
)
from router.ledger import open_ledger
from router.testing import LocalOpenAIServer, ScriptedClient

HELPERS = Path(__file__).parent / "helpers"
MSG = [{"role": "user", "content": "hello there"}]
ENV = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}


def make(server: LocalOpenAIServer, url: str, **cfg: Any) -> Router:
    config = RouterConfig.from_dict({"tiers": local_tiers(server.url), "ledger": url, "thresholds": [0.4, 0.7], **cfg})
    return Router(config, client=LiteLLMClient(config.retry, config.timeout_s, sleep=lambda _s: None), classifier=KeywordClassifier())


# 1. Bills are bounded by the hold; tools are counted in it.
def test_a_lying_usage_report_is_billed_the_hold_not_the_claim(server: LocalOpenAIServer, any_ledger_url: str) -> None:
    server.scripts["m-small"].append({"content": "fine", "completion_tokens": 10**9})
    with make(server, any_ledger_url, tenants={"acme": {"budget_usd": "0.01", "period": "total"}}) as router:
        resp = router.complete(MSG, tenant="acme", max_tokens=50)
        attempt = resp.route.attempts[0]
        assert attempt.tokens_out == 10**9 and attempt.cost_usd < Decimal("0.0001")  # not $400
        assert "billed the hold" in attempt.reason and router.ledger.spent("acme") == attempt.cost_usd


def test_tool_schemas_are_held_for(server: LocalOpenAIServer, any_ledger_url: str) -> None:
    tools = [{"type": "function", "function": {"name": f"f{i}", "description": "does a thing " * 20,
                                               "parameters": {"type": "object", "properties": {"x": {"type": "string"}}}}} for i in range(20)]
    server.scripts["m-small"].append({"content": "fine", "prompt_tokens": 1700, "completion_tokens": 5})  # litellm counts 1,570
    with make(server, any_ledger_url, tenants={"acme": {"budget_usd": "1", "period": "total"}}) as router:
        attempt = router.complete(MSG, tenant="acme", tools=tools, max_tokens=50).route.attempts[0]
    # The provider's count (with the schemas) fits under the hold: billed as reported, not clamped.
    assert "billed the hold" not in attempt.reason
    assert attempt.cost_usd == Decimal("0.0000001") * 1700 + Decimal("0.0000004") * 5


# 2. A bad max_tokens is refused before anything is held or called.
@pytest.mark.parametrize("bad", [-1, -10**9, 0, 1e30, float("inf"), "abc", True, 10**8])
def test_bad_max_tokens_is_a_typed_error_before_any_call(mock_config: RouterConfig, bad: Any) -> None:
    client = ScriptedClient()
    with Router(mock_config, client=client, classifier=KeywordClassifier()) as router, pytest.raises(InvalidRequestError, match="max_tokens"):
        router.complete(MSG, tenant="acme", max_tokens=bad)
    assert client.calls == []


@pytest.mark.parametrize("tenant", ["a\x00b", "bad\ud800", "x" * 300, ""])
def test_a_tenant_a_database_cannot_store_is_refused_before_the_call(mock_config: RouterConfig, tenant: str) -> None:
    client = ScriptedClient()
    with Router(mock_config, client=client, classifier=KeywordClassifier()) as router, pytest.raises(InvalidRequestError, match="tenant"):
        router.complete(MSG, tenant=tenant)
    assert client.calls == []


# 3. Request ids belong to a tenant and to the request they were first sent with.
def test_request_ids_are_per_tenant_and_bound_to_their_request(server: LocalOpenAIServer, any_ledger_url: str) -> None:
    server.scripts["m-small"].extend(["for acme", "for globex"])
    with make(server, any_ledger_url) as router:
        assert router.complete(MSG, tenant="acme", request_id="req-1").choices[0].message.content == "for acme"
        globex = router.complete(MSG, tenant="globex", request_id="req-1")
        assert globex.choices[0].message.content == "for globex" and not globex.route.replayed
        again = router.complete(MSG, tenant="acme", request_id="req-1")
        assert again.route.replayed and again.choices[0].message.content == "for acme"
        with pytest.raises(RequestIdConflict):
            router.complete([{"role": "user", "content": "something else"}], tenant="acme", request_id="req-1")
        with pytest.raises(RequestIdConflict):
            router.complete(MSG, tenant="acme", request_id="req-1", temperature=0.9)
        assert server.count("m-small") == 2


# 4. Waiting while the books move, not a fixed window.
def test_waits_past_the_window_while_other_holds_keep_settling(any_ledger_url: str) -> None:
    url = any_ledger_url
    config = RouterConfig.from_dict({"tiers": [{"name": "small", "models": ["gpt-5-nano"]}], "ledger": url, "budget_wait_s": 0.2,
                                     "tenants": {"acme": {"budget_usd": "0.001", "period": "total"}}})
    other = open_ledger(url, config.budget_for)
    ready = threading.Event()

    def churn() -> None:
        """Another instance's requests for 0.8 s: overlapping holds of $0.0004, never less than one held."""
        held = other.reserve("acme", "other", Decimal("0.0004"))
        ready.set()
        end = time.monotonic() + 0.8
        while time.monotonic() < end:
            taken = other.reserve("acme", "other", Decimal("0.0004"))
            time.sleep(0.05)
            other.settle(held, _entry("other", 0, "0.00000001"))  # each answer bills a little: the books move
            held = taken
        other.settle(held, _entry("other", 0, "0.00000001"))

    with Router(config, client=ScriptedClient(), classifier=KeywordClassifier()) as router:  # built first: it imports litellm
        thread = threading.Thread(target=churn)
        thread.start()
        ready.wait(5)
        started = time.monotonic()
        # Its worst case ($0.00068 at 1,700 output tokens) fits the cap alone, never beside a hold.
        resp = router.complete(MSG, tenant="acme", max_tokens=1700)
        waited = time.monotonic() - started
    thread.join()
    other.close()
    assert resp.route.tier == "small" and waited > 0.5, waited  # served once the churn ended, not refused at 0.2 s


def _entry(rid: str, attempt: int, cost: str = "0") -> Any:
    from router.ledger import Entry

    return Entry(f"{rid}-{time.monotonic_ns()}", attempt + 1, "acme", "small", "gpt-5-nano", 1, 1, Decimal(cost), 0.01, "ok")


# 5. A ledger that fails after the provider call keeps the bill.
def test_a_locked_sqlite_ledger_journals_the_bill_and_replays_it(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'l.db'}"
    config = RouterConfig.from_dict({"tiers": [{"name": "small", "models": ["gpt-5-nano"]}], "ledger": url})
    ledger = open_ledger(url, config.budget_for, lock_timeout_s=0.1)
    with Router(config, client=ScriptedClient(), classifier=KeywordClassifier(), ledger=ledger) as router:
        blocker = sqlite3.connect(tmp_path / "l.db", isolation_level=None)
        blocker.execute("BEGIN EXCLUSIVE")  # another process holds the write lock
        resp = router.complete(MSG, tenant="acme")  # the answer still comes back
        (outbox,) = tmp_path.glob("l.db.journal-*.jsonl")  # this instance's bills not yet committed
        time.sleep(0.3)  # commits keep failing while the lock is held: the bill stays
        assert outbox.read_text().count("\n") == 1 and resp.route.request_id in outbox.read_text()
        blocker.execute("ROLLBACK")
        blocker.close()
        router.complete(MSG, tenant="acme")  # the next bill that goes in brings the journalled one with it
        entries = router.ledger.entries("acme")
    assert resp.route.request_id in {e.request_id for e in entries} and len(entries) == 2
    assert not outbox.exists()  # all committed: closing removed it


def test_a_read_only_ledger_is_refused_when_the_router_is_built(tmp_path: Path) -> None:
    path = tmp_path / "l.db"
    open_ledger(f"sqlite:///{path}", RouterConfig().budget_for).close()
    path.chmod(0o444)
    if os.access(path, os.W_OK):
        pytest.skip("running as a user that writes read-only files (root)")
    with pytest.raises(ConfigError, match="writable"):
        Router(RouterConfig.from_dict({"ledger": f"sqlite:///{path}"}))


# 6 and 7. A crash after the bill never pays twice; a dead process frees its holds and its ids.
def test_an_id_billed_before_a_crash_is_replayed_not_rerun(any_ledger_url: str) -> None:
    proc = subprocess.run([sys.executable, str(HELPERS / "crash_after_bill.py"), any_ledger_url], env=ENV, capture_output=True, text=True,
                          timeout=120, check=False)
    assert proc.returncode == 9, proc.stderr[-2000:]  # died right after the bill was written
    config = RouterConfig.from_dict({"tiers": [{"name": "small", "models": ["gpt-5-nano"]}], "ledger": any_ledger_url})
    client = ScriptedClient()
    with Router(config, client=client, classifier=KeywordClassifier()) as router:
        resp = router.complete(MSG, tenant="acme", request_id="crash-1")
        assert resp.route.replayed and resp.choices[0].message.content == "paid for once"
        assert client.calls == [] and len(router.ledger.entries("acme")) == 1


def test_a_dead_process_frees_its_ids_and_its_hold_in_flight_is_billed(any_ledger_url: str) -> None:
    proc = subprocess.Popen([sys.executable, str(HELPERS / "hold_and_hang.py"), any_ledger_url], env=ENV, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    config = RouterConfig.from_dict({"tiers": [{"name": "small", "models": ["gpt-5-nano"]}], "ledger": any_ledger_url, "budget_wait_s": 5,
                                     "tenants": {"acme": {"budget_usd": "0.001", "period": "total"}}})
    ledger = open_ledger(any_ledger_url, config.budget_for, owner_timeout_s=1.0)
    with Router(config, client=ScriptedClient(), classifier=KeywordClassifier(), ledger=ledger) as router:
        started = time.monotonic()
        resp = router.complete(MSG, tenant="acme", request_id="hung-1", max_tokens=20)
        assert resp.choices[0].message.content == "ok" and time.monotonic() - started < 4  # not 600 s
        # Its call may have been answered and charged: the hold it had in flight is billed, not forgotten.
        (presumed,) = [e for e in router.ledger.entries("acme") if e.outcome == "presumed"]
        assert presumed.cost_usd == Decimal("0.00099") and presumed.request_id == "hung-1"
        assert router.ledger.state("acme").spent_usd <= Decimal("0.001")


# 8. Replies without usage, and malformed replies.
def test_a_reply_without_usage_is_billed_on_an_estimate(server: LocalOpenAIServer, any_ledger_url: str) -> None:
    body = {"id": "x", "object": "chat.completion", "created": 1, "model": "m-small",
            "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": "a reasonably long answer " * 8}}]}
    server.scripts["m-small"].append({"body": json.dumps(body)})
    with make(server, any_ledger_url) as router:
        attempt = router.complete(MSG).route.attempts[0]
    assert attempt.tokens_in > 0 and attempt.tokens_out > 20 and attempt.cost_usd > 0 and "estimated" in attempt.reason


def test_a_malformed_reply_is_billed_its_input_and_not_retried(server: LocalOpenAIServer, any_ledger_url: str) -> None:
    server.scripts["m-small"].append({"body": "{not json"})
    with make(server, any_ledger_url) as router:
        resp = router.complete(MSG)
    first = resp.route.attempts[0]
    assert server.count("m-small") == 1 and resp.route.tier == "flash"
    assert first.outcome == "error" and first.cost_usd > 0 and "malformed" in first.reason


# 9. Keys never leak; a mistyped model key is caught.
def test_an_environment_key_echoed_by_the_provider_leaks_nowhere(
    server: LocalOpenAIServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    env_key = "sk-envkey-0123456789abcdefghij"
    monkeypatch.setenv("OPENAI_API_KEY", env_key)
    server.scripts["m-small"].append({"status": 400, "body": json.dumps({"error": {"message": f"bad key {env_key} and {SECRET}"}})})
    caplog.set_level(logging.DEBUG, logger="tierwise")
    url = f"sqlite:///{tmp_path / 'l.db'}"
    with make(server, url) as router, pytest.raises(ProviderError) as info:
        router.complete(MSG)
    text = "".join(traceback.format_exception(info.value))
    places = {"error": str(info.value), "traceback": text, "attempts": repr(info.value.attempts), "logs": caplog.text}
    for name, place in places.items():
        assert env_key not in place and SECRET not in place, name
    from router.cli import main

    assert main(["ledger", "--url", url, "--csv", str(tmp_path / "all.csv")]) == 0
    assert env_key not in (tmp_path / "all.csv").read_text()
    db = b"".join(p.read_bytes() for p in tmp_path.glob("l.db*"))
    assert env_key.encode() not in db and SECRET.encode() not in db


def test_config_dumps_carry_no_key_and_a_typo_in_a_model_entry_is_caught(server: LocalOpenAIServer) -> None:
    config = RouterConfig.from_dict({"tiers": local_tiers(server.url)})
    assert SECRET not in config.model_dump_json() and SECRET not in str(config.model_dump())
    entry = {"model": "openai/m", "api_bsae": "http://127.0.0.1:18080/v1", "api_key": SECRET}
    with pytest.raises(ConfigError, match="did you mean 'api_base'") as info:
        RouterConfig.from_dict({"tiers": [{"name": "small", "models": [entry]}]})
    assert SECRET not in str(info.value)


# 10. Smaller faults, one each.
def test_an_unparsable_retry_after_is_ignored(server: LocalOpenAIServer, ledger_url: str) -> None:
    server.scripts["m-small"].extend([{"status": 429, "headers": {"Retry-After": "soon, maybe"}}, "fine"])
    with make(server, ledger_url) as router:
        assert router.complete(MSG).choices[0].message.content == "fine"


def test_a_memory_ledger_works_under_threads(mock_config: RouterConfig) -> None:
    config = mock_config.model_copy(update={"ledger": "sqlite://:memory:"})
    errors: list[BaseException] = []
    with Router(config, client=ScriptedClient(), classifier=KeywordClassifier()) as router:
        def work() -> None:
            try:
                for _ in range(10):
                    router.complete(MSG, tenant="acme")
            except BaseException as exc:  # noqa: BLE001 - collected and asserted below
                errors.append(exc)

        threads = [threading.Thread(target=work) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == [] and len(router.ledger.entries("acme")) == 80


def test_negative_usage_is_billed_as_zero(server: LocalOpenAIServer, any_ledger_url: str) -> None:
    server.scripts["m-small"].append({"content": "fine", "prompt_tokens": -50, "completion_tokens": -7})
    with make(server, any_ledger_url, tenants={"default": {"budget_usd": "1", "period": "total"}}) as router:
        attempt = router.complete(MSG).route.attempts[0]
        assert attempt.cost_usd >= 0 and "negative usage" in attempt.reason
        assert router.ledger.state("default").reserved_usd == 0  # the hold was released, not kept


@pytest.mark.parametrize("cfg", [{"tenants": {"a": {"budget_usd": "1e30"}}}, {"default_budget": {"budget_usd": 10**19}},
                                 {"tiers": [{"name": "s", "models": [{"model": "x", "input_cost_per_token": 1e12, "output_cost_per_token": 0}]}]}])
def test_amounts_past_the_ledger_range_are_config_errors(cfg: dict[str, Any]) -> None:
    with pytest.raises(ConfigError):
        RouterConfig.from_dict(cfg)


def test_weights_with_huge_integers_are_refused(tmp_path: Path) -> None:
    from classifiers import WeightsError, default_classifier, load

    data = default_classifier().to_dict()
    data["bias"] = 10**400
    path = tmp_path / "w.json"
    path.write_text(json.dumps(data))
    with pytest.raises(WeightsError, match="bias"):
        load(path)


def test_a_latin1_config_and_an_alias_bomb_are_config_errors(tmp_path: Path) -> None:
    latin = tmp_path / "c.yaml"
    latin.write_bytes("tenants:\n  caf\xe9: {budget_usd: '1'}\n".encode("latin-1"))
    with pytest.raises(ConfigError, match="UTF-8"):
        RouterConfig.from_file(latin)
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x]"] + [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 9)]
    bomb = tmp_path / "bomb.yaml"
    bomb.write_text("\n".join(lines) + "\ntiers:\n  - name: s\n    models:\n      - model: gpt-5\n        params: {x: *a8}\n")
    started = time.monotonic()
    with pytest.raises(ConfigError, match="100,000 values"):
        RouterConfig.from_file(bomb)
    assert time.monotonic() - started < 2


def test_killing_database_sessions_under_load_bills_every_answer_exactly_once(pg_url: str) -> None:
    import psycopg

    from router import LedgerError, TierwiseError

    config = RouterConfig.from_dict({"tiers": [{"name": "small", "models": ["gpt-5-nano"]}], "ledger": pg_url,
                                     "tenants": {"acme": {"budget_usd": "100", "period": "total"}}})
    db = pg_url.rsplit("/", 1)[1]
    stop = threading.Event()
    kills = [0]

    def killer() -> None:
        with psycopg.connect(pg_url, autocommit=True) as admin:
            while not stop.wait(0.05):  # one session at a time, whichever it is: a reserve, a settle, a claim
                rows = admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s"
                                     " AND pid <> pg_backend_pid() ORDER BY random() LIMIT 1", (db,)).fetchall()
                kills[0] += len(rows)

    answered: list[str] = []
    failures: list[BaseException] = []
    with Router(config, client=ScriptedClient(), classifier=KeywordClassifier()) as router:
        def worker(w: int) -> None:
            for i in range(25):
                rid = f"k-{w}-{i}"
                try:
                    router.complete(MSG, tenant="acme", request_id=rid)
                    answered.append(rid)
                except TierwiseError as exc:  # typed: a refused or failed ledger call before any answer
                    failures.append(exc)

        thread = threading.Thread(target=killer)
        thread.start()
        workers = [threading.Thread(target=worker, args=(w,)) for w in range(8)]
        for t in workers:
            t.start()
        for t in workers:
            t.join()
        stop.set()
        thread.join()
    assert kills[0] > 5 and len(answered) > 100
    assert all(isinstance(f, LedgerError) for f in failures)  # a refused ledger call, before any answer: nothing to bill
    ledger = open_ledger(pg_url, config.budget_for)  # opening replays what was journalled
    ok = [e.request_id for e in ledger.entries("acme") if e.outcome == "ok"]
    ledger.close()
    assert sorted(ok) == sorted(set(ok)), "an answer was billed twice"
    assert set(answered) <= set(ok), f"answered but never billed: {sorted(set(answered) - set(ok))[:5]}"


def test_a_pooled_session_ended_while_idle_is_replaced_before_it_is_lent(pg_url: str, caplog: pytest.LogCaptureFixture) -> None:
    """A connection is lent without a round trip of checking while its socket is quiet; a session the
    server ended as it sat in the pool (killed, restarted, timed out) is found by its socket and
    replaced: no call fails and no write is retried."""
    import psycopg

    from router.ledger import Entry

    config = RouterConfig.from_dict({"tenants": {"acme": {"budget_usd": "1", "period": "total"}}})
    # A busy gateway's descriptors pass 1,024 (which select() cannot watch): the pool's sockets are put past it here.
    crowd = [os.open(os.devnull, os.O_RDONLY) for _ in range(1100)]
    ledger = open_ledger(pg_url, config.budget_for, flush_s=0)
    try:
        ledger.settle(ledger.reserve("acme", "r0", Decimal("0.1")), Entry("r0", 1, "acme", "small", "m", 1, 1, Decimal("0.01"), 0.1, "ok"))
        with psycopg.connect(pg_url, autocommit=True) as admin:
            ended = admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
                                  (pg_url.rsplit("/", 1)[1],)).fetchall()
        assert ended, "the ledger's pooled sessions were ended"
        time.sleep(0.2)  # the server's goodbye reaches the idle sockets
        with caplog.at_level(logging.INFO, logger="tierwise"):
            for i in range(1, 4):  # a grant, a group written, a state read: each on a replaced connection
                ledger.settle(ledger.reserve("acme", f"r{i}", Decimal("0.2")), Entry(f"r{i}", 1, "acme", "small", "m", 1, 1, Decimal("0.01"),
                                                                                     0.1, "ok"))
            assert ledger.state("acme").spent_usd == Decimal("0.04")
        assert not [r for r in caplog.records if r.levelno >= logging.WARNING], [r.getMessage() for r in caplog.records]
    finally:
        ledger.close()
        for fd in crowd:
            os.close(fd)
