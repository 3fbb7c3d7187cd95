"""Router end to end over litellm's mock_response path: routing, escalation, ledger, streams, async."""

from __future__ import annotations

import asyncio
import threading
from decimal import Decimal
from pathlib import Path

import pytest
from conftest import MOCK_TIERS, KeywordClassifier

from router import (
    AsyncRouter,
    BudgetExceeded,
    EscalationExhausted,
    InvalidMessagesError,
    InvalidRequestError,
    Router,
    RouterConfig,
)
from router.ledger import Entry
from router.testing import ScriptedClient

MSG = [{"role": "user", "content": "What is 2+2?"}]


def make(config: RouterConfig, scripts: dict | None = None, **kw) -> tuple[Router, ScriptedClient]:
    client = ScriptedClient(scripts or {}, retry=config.retry)
    return Router(config, client=client, classifier=KeywordClassifier(), **kw), client


def test_score_picks_the_tier(mock_config: RouterConfig) -> None:
    router, client = make(mock_config)
    for text, tier, model in (("hi #0.1", "small", "gpt-5-nano"), ("hmm #0.5", "flash", "gpt-5-mini"), ("hard #0.9", "frontier", "gpt-5")):
        resp = router.complete([{"role": "user", "content": text}], tenant="acme")
        assert (resp.route.tier, resp.route.model) == (tier, model)
        assert resp.choices[0].message.content == "ok"
    assert client.calls == ["gpt-5-nano", "gpt-5-mini", "gpt-5"]


def test_cost_is_exact_decimal_from_litellm_prices(mock_config: RouterConfig) -> None:
    router, _ = make(mock_config, {"gpt-5-nano": [{"content": "4", "prompt_tokens": 1000, "completion_tokens": 500}]})
    resp = router.complete(MSG, tenant="acme")
    # gpt-5-nano: $0.05 / M input, $0.40 / M output in litellm's map.
    assert resp.route.cost_usd == Decimal("0.00005") * 1 + Decimal("0.0002")
    assert isinstance(resp.route.cost_usd, Decimal)
    assert router.ledger.spent("acme") == resp.route.cost_usd


def test_mock_response_passes_through_to_litellm(mock_config: RouterConfig) -> None:
    router = Router(mock_config, classifier=KeywordClassifier())
    resp = router.complete(MSG, tenant="t", mock_response="four", temperature=1, max_tokens=50, user="u-1")
    assert resp.choices[0].message.content == "four"
    assert resp.__class__.__name__ == "ModelResponse"


def test_empty_answer_escalates_and_every_attempt_is_billed(mock_config: RouterConfig) -> None:
    router, _client = make(mock_config, {"gpt-5-nano": [""], "gpt-5-mini": ["a real answer"]})
    resp = router.complete(MSG, tenant="acme")
    assert resp.choices[0].message.content == "a real answer"
    assert [(a.tier, a.outcome) for a in resp.route.attempts] == [("small", "check_failed"), ("flash", "ok")]
    entries = router.ledger.entries("acme")
    assert [e.outcome for e in entries] == ["check_failed", "ok"]
    assert sum(e.cost_usd for e in entries) == resp.route.cost_usd == router.ledger.spent("acme")


def test_all_tiers_fail_checks_returns_best_or_raises_in_strict_mode(mock_config: RouterConfig) -> None:
    router, _ = make(mock_config, {"gpt-5-nano": ["", ""], "gpt-5-mini": ["", ""], "gpt-5": ["", ""]})
    resp = router.complete(MSG, tenant="acme")
    assert resp.route.escalation_exhausted and len(resp.route.attempts) == 3
    with pytest.raises(EscalationExhausted) as info:
        router.complete(MSG, tenant="acme", strict=True)
    assert len(info.value.attempts) == 3


def test_max_escalations_bounds_the_cascade(ledger_url: str) -> None:
    from conftest import MOCK_TIERS

    config = RouterConfig.from_dict({"tiers": MOCK_TIERS, "ledger": ledger_url, "max_escalations": 1})
    router, client = make(config, {"gpt-5-nano": [""], "gpt-5-mini": [""]})
    resp = router.complete(MSG, tenant="acme")
    assert client.calls == ["gpt-5-nano", "gpt-5-mini"] and resp.route.escalation_exhausted


def test_per_call_checks_override(mock_config: RouterConfig) -> None:
    router, _client = make(mock_config, {"gpt-5-nano": [""]})
    resp = router.complete(MSG, tenant="acme", checks=[])
    assert resp.route.tier == "small" and resp.choices[0].message.content == ""


@pytest.mark.parametrize(
    "bad",
    [None, "hello", [], [{"role": "user"}], [{"role": "robot", "content": "x"}], [{"role": "user", "content": "  "}],
     [{"role": "user", "content": 5}], [{"role": "system", "content": "only a system prompt"}], ["not a dict"],
     [{"role": "user", "content": [{"no_type": 1}]}]],
)
def test_bad_messages_fail_before_any_call(mock_config: RouterConfig, bad: object) -> None:
    router, client = make(mock_config)
    with pytest.raises(InvalidMessagesError) as info:
        router.complete(bad, tenant="acme")  # type: ignore[arg-type]
    assert isinstance(info.value, ValueError) and client.calls == []
    assert router.ledger.entries() == []


def test_bad_arguments_are_typed_errors(mock_config: RouterConfig) -> None:
    router, client = make(mock_config)
    with pytest.raises(InvalidRequestError):
        router.complete(MSG, tenant="")
    with pytest.raises(InvalidRequestError):
        router.complete(MSG, model="gpt-4")
    assert client.calls == []


def test_content_parts_and_tool_call_turns_are_accepted(mock_config: RouterConfig) -> None:
    router, _ = make(mock_config)
    msgs = [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": [{"type": "text", "text": "describe"}, {"type": "image_url", "image_url": {"url": "data:,"}}]},
        {"role": "assistant", "content": None, "tool_calls": [{"id": "1", "type": "function", "function": {"name": "f", "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": "1", "content": "42"},
    ]
    assert router.complete(msgs, tenant="acme").choices[0].message.content == "ok"


def test_budget_exceeded_refuses_with_state(ledger_url: str) -> None:
    from conftest import MOCK_TIERS

    config = RouterConfig.from_dict({"tiers": MOCK_TIERS, "ledger": ledger_url, "tenants": {"acme": {"budget_usd": "0.01", "period": "day"}}})
    router, client = make(config)
    # gpt-5-nano's worst case at max_tokens=10000 is $0.004: two fit, the third does not.
    for _ in range(2):
        router.complete(MSG, tenant="acme", max_tokens=10000)
    router.ledger.settle(None, Entry("x", 1, "acme", "small", "m", 0, 0, Decimal("0.009"), 0.0, "ok"))  # another request's spend
    with pytest.raises(BudgetExceeded) as info:
        router.complete(MSG, tenant="acme", max_tokens=10000)
    state = info.value.state
    assert state.tenant == "acme" and state.cap_usd == Decimal("0.01") and state.spent_usd > Decimal("0.009")
    assert len(client.calls) == 2


def test_stream_passes_through_and_is_billed(mock_config: RouterConfig) -> None:
    router = Router(mock_config, classifier=KeywordClassifier())
    stream = router.complete(MSG, tenant="acme", stream=True, mock_response="one two three")
    text = "".join(c.choices[0].delta.content or "" for c in stream)
    assert text == "one two three"
    assert stream.route.tier == "small" and stream.route.attempts[0].outcome == "ok"
    assert router.ledger.spent("acme") == stream.route.cost_usd > 0


def test_stream_closed_early_still_bills(mock_config: RouterConfig) -> None:
    router = Router(mock_config, classifier=KeywordClassifier())
    stream = router.complete(MSG, tenant="acme", stream=True, mock_response="one two three four five six")
    next(iter(stream))
    stream.close()
    assert stream.route.attempts[0].outcome == "cancelled"
    assert router.ledger.spent("acme") > 0 and len(router.ledger.entries("acme")) == 1


def test_request_id_is_billed_once_under_concurrency(mock_config: RouterConfig) -> None:
    router, client = make(mock_config, {"gpt-5-nano": [{"content": "first", "prompt_tokens": 10, "completion_tokens": 5}]})
    results: list = []

    def go() -> None:
        results.append(router.complete(MSG, tenant="acme", request_id="req-42"))

    threads = [threading.Thread(target=go) for _ in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(client.calls) == 1 and len(router.ledger.entries("acme")) == 1
    assert {r.choices[0].message.content for r in results} == {"first"}
    assert sum(r.route.replayed for r in results) == 9


async def test_async_router_shares_the_core(mock_config: RouterConfig) -> None:
    client = ScriptedClient({"gpt-5-nano": [""], "gpt-5-mini": ["async answer"]})
    router = AsyncRouter(mock_config, client=client, classifier=KeywordClassifier())
    resp = await router.acomplete(MSG, tenant="acme", request_id="req-a")
    assert resp.choices[0].message.content == "async answer"
    assert [a.outcome for a in resp.route.attempts] == ["check_failed", "ok"]
    again = await router.acomplete(MSG, tenant="acme", request_id="req-a")
    assert again.route.replayed and len(router.ledger.entries("acme")) == 2
    many = await asyncio.gather(*(router.acomplete(MSG, tenant="b") for _ in range(5)))
    assert all(r.choices[0].message.content == "ok" for r in many)


async def test_async_stream(mock_config: RouterConfig) -> None:
    router = AsyncRouter(mock_config, classifier=KeywordClassifier())
    stream = await router.acomplete(MSG, tenant="acme", stream=True, mock_response="a b c")
    parts = [c.choices[0].delta.content or "" async for c in stream]
    assert "".join(parts) == "a b c" and router.ledger.spent("acme") == stream.route.cost_usd > 0


def test_dropped_stream_is_still_billed(mock_config: RouterConfig) -> None:
    import gc

    router = Router(mock_config, classifier=KeywordClassifier())
    stream = router.complete(MSG, tenant="acme", stream=True, mock_response="never read")
    del stream
    gc.collect()
    entries = router.ledger.entries("acme")
    assert [e.outcome for e in entries] == ["cancelled"] and entries[0].cost_usd > 0  # its input, at least


def test_request_id_held_by_a_live_caller_times_out_with_a_typed_error(ledger_url: str) -> None:
    from conftest import MOCK_TIERS

    from router import DuplicateRequestError

    config = RouterConfig.from_dict({"tiers": MOCK_TIERS, "ledger": ledger_url, "timeout_s": 0.2})
    router, client = make(config)
    assert router.ledger.claim_request("busy-id", "acme") is None  # another caller is serving it
    with pytest.raises(DuplicateRequestError) as info:
        router.complete(MSG, tenant="acme", request_id="busy-id")
    assert info.value.request_id == "busy-id" and client.calls == []


async def test_routers_close_their_ledger_as_context_managers(mock_config: RouterConfig) -> None:
    closed: list[str] = []
    with Router(mock_config, classifier=KeywordClassifier()) as router:
        router.ledger.close = lambda: closed.append("sync")  # type: ignore[method-assign]
        assert router.complete(MSG, mock_response="ok").choices[0].message.content == "ok"
    async with AsyncRouter(mock_config, classifier=KeywordClassifier()) as arouter:
        arouter.ledger.close = lambda: closed.append("async")  # type: ignore[method-assign]
        assert (await arouter.acomplete(MSG, mock_response="ok")).choices[0].message.content == "ok"
    assert closed == ["sync", "async"]


def test_complete_returns_the_litellm_response_itself_with_its_route(mock_config: RouterConfig) -> None:
    import json

    import litellm

    router, _ = make(mock_config, {"gpt-5-nano": ["four"]})
    resp = router.complete(MSG, tenant="acme")
    assert isinstance(resp, litellm.ModelResponse)
    assert resp["choices"][0]["message"]["content"] == resp.choices[0].message.content == "four"
    assert "route" not in resp.model_dump() and "route" not in resp.model_dump_json()
    data = json.loads(json.dumps(resp.route.to_dict()))
    assert data["tier"] == "small" and data["cost_usd"] == str(resp.route.cost_usd)
    assert data["reason"].startswith("score ")


def test_a_caller_can_pin_a_tier_or_a_configured_model(mock_config: RouterConfig) -> None:
    from router import InvalidRequestError

    router, client = make(mock_config)
    assert router.complete(MSG, tenant="acme", tier="frontier").route.tier == "frontier"
    pinned = router.complete(MSG, tenant="acme", model="gpt-5-mini")
    assert (pinned.route.tier, pinned.route.model) == ("flash", "gpt-5-mini") and "pinned to gpt-5-mini" in pinned.route.reason
    assert client.calls == ["gpt-5", "gpt-5-mini"]
    with pytest.raises(InvalidRequestError, match="not configured"):
        router.complete(MSG, tenant="acme", model="gpt-4o")
    with pytest.raises(InvalidRequestError, match="not configured"):
        router.complete(MSG, tenant="acme", tier="huge")


def test_a_stored_answer_replays_across_versions_of_the_route(tmp_path: Path) -> None:
    """A rolling upgrade shares one ledger: what is stored leaves out fields 0.1.0 cannot read, and a
    stored route with a field this version does not know is still replayed."""
    import json
    import sqlite3

    path = tmp_path / "ledger.db"
    config = RouterConfig.from_dict({"tiers": MOCK_TIERS, "ledger": f"sqlite:///{path}", "thresholds": [0.4, 0.7]})
    router, client = make(config)
    first = router.complete(MSG, tenant="acme", request_id="r1")
    router.ledger.flush()
    with sqlite3.connect(path) as conn:
        (stored,) = conn.execute("SELECT route FROM claims WHERE request_id = 'r1'").fetchone()
        route = json.loads(stored)
        assert "cached_in" in first.route.to_dict()["attempts"][0] and "cached_in" not in route["attempts"][0]
        route["attempts"][0]["added_by_a_later_version"] = 1
        route["added_by_a_later_version"] = True
        conn.execute("UPDATE claims SET route = ? WHERE request_id = 'r1'", (json.dumps(route),))
    again = router.complete(MSG, tenant="acme", request_id="r1")
    assert again.route.replayed and again.id == first.id and len(client.calls) == 1
