"""AsyncRouter's trips to worker threads: an unchecked answer is billed on the loop (its bill only
queued in memory), every step that can block still goes to a thread, and a bill that must be
committed before the answer is given still is."""

from __future__ import annotations

import asyncio
import sqlite3
from decimal import Decimal
from typing import Any

import pytest
from conftest import KeywordClassifier, local_tiers

from router import AsyncRouter, RouterConfig
from router.testing import LocalOpenAIServer

MSG = [{"role": "user", "content": "hello there"}]


def _trips(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The names of tierwise's functions sent to worker threads (the provider SDK sends its own)."""
    seen: list[str] = []
    real = asyncio.to_thread

    async def counting(func: Any, /, *args: Any, **kwargs: Any) -> Any:
        if str(getattr(func, "__module__", "")).startswith("router"):
            seen.append(getattr(func, "__name__", repr(func)))
        return await real(func, *args, **kwargs)

    monkeypatch.setattr(asyncio, "to_thread", counting)
    return seen


def _config(server: LocalOpenAIServer, ledger_url: str, **extra: Any) -> RouterConfig:
    return RouterConfig.from_dict({"tiers": local_tiers(server.url), "ledger": ledger_url, "thresholds": [0.4, 0.7],
                                   "tenants": {"acme": {"budget_usd": "10", "period": "total"}}, **extra})


async def _ask(config: RouterConfig, **kwargs: Any) -> Any:
    async with AsyncRouter(config, classifier=KeywordClassifier()) as router:
        resp = await router.acomplete(MSG, tenant="acme", max_tokens=50, **kwargs)
        return resp, router.ledger.state("acme")


def test_local_checks_bill_on_the_loop_and_any_other_check_on_a_thread(
        server: LocalOpenAIServer, ledger_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    trips = _trips(monkeypatch)
    resp, state = asyncio.run(_ask(_config(server, ledger_url)))  # the default check, non_empty, is local
    assert trips == ["_begin"] and resp.route.cost_usd > 0 and state.spent_usd == resp.route.cost_usd and state.reserved_usd == 0
    trips.clear()
    resp, _ = asyncio.run(_ask(_config(server, ledger_url), checks=["valid_json"]))  # a local check fails: the next hold is a trip
    assert trips == ["_begin", "next_call", "next_call", "next_call", "result"] and [a.outcome for a in resp.route.attempts] == ["check_failed", "check_failed", "check_failed"]
    trips.clear()
    resp, _ = asyncio.run(_ask(_config(server, ledger_url), checks=[lambda _m, _r: True]))  # a custom check may block
    assert trips == ["_begin", "_settle_and_step"] and resp.route.attempts[0].outcome == "ok"
    trips.clear()
    asyncio.run(_ask(_config(server, ledger_url), request_id="r-1"))  # its answer is stored with its bill: a database write
    assert trips == ["_begin", "_settle_and_step"]


def test_with_flush_0_the_bill_is_committed_before_the_answer_is_given(
        server: LocalOpenAIServer, tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "flush0.db"

    async def run() -> list[Decimal]:
        async with AsyncRouter(_config(server, f"sqlite:///{path}", ledger_flush_s=0), classifier=KeywordClassifier()) as router:
            costs = []
            for _ in range(3):
                resp = await router.acomplete(MSG, tenant="acme", max_tokens=50)
                with sqlite3.connect(path) as db:  # another connection: only what is committed
                    billed = db.execute("SELECT count(*) FROM entries WHERE tenant = 'acme'").fetchone()[0]
                costs.append(resp.route.cost_usd)
                assert billed == len(costs)
            return costs

    trips = _trips(monkeypatch)
    assert len(asyncio.run(run())) == 3
    assert trips.count("await_commit") == 3  # the wait for the commit, and only it, went to a thread
