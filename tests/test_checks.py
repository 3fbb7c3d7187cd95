"""Quality checks and the cascade they drive, against the local server with scripted answers."""

from __future__ import annotations

import json

import pytest
from conftest import SECRET, KeywordClassifier, local_tiers
from pydantic import BaseModel

from router import AsyncRouter, EscalationExhausted, LiteLLMClient, ProviderError, Router, RouterConfig
from router.checks import (
    Verdict,
    custom,
    judge,
    matches_schema,
    max_length,
    min_length,
    non_empty,
    not_refusal,
    not_truncated,
    regex,
    valid_json,
)
from router.testing import LocalOpenAIServer, ScriptedClient

MSG = [{"role": "user", "content": "Give me the answer"}]


class Person(BaseModel):
    name: str
    age: int


def reply(text: str, finish: str = "stop"):  # type: ignore[no-untyped-def]
    import litellm

    return litellm.ModelResponse(choices=[{"index": 0, "finish_reason": finish, "message": {"role": "assistant", "content": text}}])


@pytest.mark.parametrize(
    "text",
    ["I'm sorry, but I can't help with that.", "I cannot assist with this request.", "I don't know.",
     "Unfortunately, I am unable to provide that information.", "As an AI, I can't browse the internet.",
     "I do not have enough information to answer."],
)
def test_refusals_are_caught(text: str) -> None:
    assert not not_refusal(MSG, reply(text)).passed


@pytest.mark.parametrize("text", ["The capital is Canberra.", "Sorry for the wait: the answer is 42.", "You cannot divide by zero, so x = 3."])
def test_answers_are_not_refusals(text: str) -> None:
    assert not_refusal(MSG, reply(text)).passed


def test_builtin_checks() -> None:
    assert not non_empty(MSG, reply("  ")).passed and non_empty(MSG, reply("x")).passed
    assert not not_truncated(MSG, reply("abc", "length")).passed
    assert valid_json(MSG, reply('```json\n{"a": 1}\n```')).passed and not valid_json(MSG, reply("{a: 1")).passed
    assert matches_schema(Person)(MSG, reply('{"name": "Ada", "age": 36}')).passed
    assert not matches_schema(Person)(MSG, reply('{"name": "Ada"}')).passed
    assert regex(r"\d+")(MSG, reply("it is 42")).passed and not regex(r"\d+")(MSG, reply("none")).passed
    assert min_length(3)(MSG, reply("abcd")).passed and not max_length(3)(MSG, reply("abcd")).passed
    assert custom(lambda m, r: "42" in r.choices[0].message.content)(MSG, reply("42")).passed


def test_checks_compose() -> None:
    both = non_empty & regex("yes")
    either = regex("yes") | regex("no")
    assert not both(MSG, reply("maybe")).passed and both(MSG, reply("yes")).passed
    assert either(MSG, reply("no")).passed and not either(MSG, reply("maybe")).passed
    assert "no match" in either(MSG, reply("maybe")).reason


def router_on(server: LocalOpenAIServer, ledger_url: str, **cfg: object) -> Router:
    config = RouterConfig.from_dict({"tiers": local_tiers(server.url), "ledger": ledger_url, "thresholds": [0.4, 0.7], **cfg})
    return Router(config, client=LiteLLMClient(config.retry, config.timeout_s, sleep=lambda s: None), classifier=KeywordClassifier())


def test_empty_small_answer_escalates_to_flash(server: LocalOpenAIServer, ledger_url: str) -> None:
    server.scripts["m-small"].append("")
    server.scripts["m-flash"].append("a real answer")
    resp = router_on(server, ledger_url).complete(MSG)
    assert resp.route.tier == "flash" and [a.outcome for a in resp.route.attempts] == ["check_failed", "ok"]


def test_refusal_escalates(server: LocalOpenAIServer, ledger_url: str) -> None:
    server.scripts["m-small"].append("I'm sorry, but I can't help with that.")
    server.scripts["m-flash"].append("Here you go.")
    router = router_on(server, ledger_url, checks=["non_empty", "not_refusal"])
    resp = router.complete(MSG)
    assert resp.choices[0].message.content == "Here you go." and resp.route.attempts[0].reason == "refusal or non-answer"


def test_invalid_json_under_schema_escalates(server: LocalOpenAIServer, ledger_url: str) -> None:
    server.scripts["m-small"].append('{"name": "Ada"}')
    server.scripts["m-flash"].append('{"name": "Ada", "age": 36}')
    router = router_on(server, ledger_url)
    resp = router.complete(MSG, checks=[matches_schema(Person)], response_format={"type": "json_object"})
    assert Person.model_validate_json(resp.choices[0].message.content).age == 36
    assert [e.outcome for e in router.ledger.entries()] == ["check_failed", "ok"]


def test_context_window_error_moves_to_a_larger_window_model(ledger_url: str) -> None:
    import litellm

    overflow = litellm.ContextWindowExceededError("prompt too long", model="gpt-4o-mini", llm_provider="openai")
    tiers = [
        {"name": "small", "models": ["gpt-4o-mini", "gpt-4.1-nano"]},  # 128k window, then 1M
        {"name": "frontier", "models": ["gpt-5"]},
    ]
    config = RouterConfig.from_dict({"tiers": tiers, "ledger": ledger_url})
    client = ScriptedClient({"gpt-4o-mini": [overflow], "gpt-4.1-nano": ["long answer"]})
    resp = Router(config, client=client, classifier=KeywordClassifier()).complete(MSG)
    assert client.calls == ["gpt-4o-mini", "gpt-4.1-nano"] and resp.route.model == "gpt-4.1-nano"


def test_context_window_skips_models_known_to_be_too_small(ledger_url: str) -> None:
    import litellm

    overflow = litellm.ContextWindowExceededError("too long", model="gpt-4.1-nano", llm_provider="openai")
    tiers = [{"name": "small", "models": ["gpt-4.1-nano"]}, {"name": "flash", "models": ["gpt-4o-mini"]}, {"name": "frontier", "models": ["gemini/gemini-2.5-pro"]}]
    config = RouterConfig.from_dict({"tiers": tiers, "ledger": ledger_url})
    client = ScriptedClient({"gpt-4.1-nano": [overflow]})
    Router(config, client=client, classifier=KeywordClassifier()).complete(MSG)
    assert client.calls == ["gpt-4.1-nano", "gemini/gemini-2.5-pro"]  # gpt-4o-mini (128k) is skipped: too small


def test_judge_cost_is_its_own_ledger_entry(server: LocalOpenAIServer, ledger_url: str) -> None:
    server.scripts["m-small"].append("a weak answer")
    server.scripts["m-big"].extend(["FAIL\nnot responsive", "PASS\ngood"])  # the judge's two verdicts
    server.scripts["m-flash"].append("a better answer")
    router = router_on(server, ledger_url)
    resp = router.complete(MSG, checks=[non_empty, judge("openai/m-big")])
    assert resp.choices[0].message.content == "a better answer"
    entries = router.ledger.entries()
    # The judge's call is settled before the answer it judged.
    assert [(e.tier, e.outcome) for e in entries] == [("judge", "judge"), ("small", "check_failed"), ("judge", "judge"), ("flash", "ok")]
    judged = [e for e in entries if e.tier == "judge"]
    assert len(judged) == 2 and all(e.cost_usd > 0 for e in judged)
    assert sum(e.cost_usd for e in entries) == resp.route.cost_usd == router.ledger.spent("default")


async def test_async_judge_does_not_block_the_event_loop(server: LocalOpenAIServer, ledger_url: str) -> None:
    import asyncio

    server.scripts["m-small"].append("an answer")
    server.scripts["m-big"].append({"content": "PASS\nfine", "delay": 0.5})  # a slow judge
    config = router_on(server, ledger_url).config
    router = AsyncRouter(config, client=LiteLLMClient(config.retry, config.timeout_s, sleep=lambda s: None),
                         classifier=KeywordClassifier())
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    task = asyncio.create_task(ticker())
    resp = await router.acomplete(MSG, checks=[judge("openai/m-big")])
    task.cancel()
    assert resp.choices[0].message.content == "an answer"
    assert [e.tier for e in router.ledger.entries()] == ["judge", "small"]
    # While the judge took 0.5 s the loop kept running: a blocked loop would tick about once.
    assert ticks >= 20


async def test_caller_cancelled_during_the_judge_is_billed_and_a_retry_replays(
    server: LocalOpenAIServer, ledger_url: str
) -> None:
    import asyncio

    server.scripts["m-small"].append("an answer")
    server.scripts["m-big"].append({"content": "PASS\nfine", "delay": 0.5})
    config = router_on(server, ledger_url).config
    router = AsyncRouter(config, client=LiteLLMClient(config.retry, config.timeout_s, sleep=lambda s: None),
                         classifier=KeywordClassifier())
    task = asyncio.create_task(router.acomplete(MSG, checks=[judge("openai/m-big")], request_id="gone-1"))
    for _ in range(500):  # wait until the answer is in and the judge is being asked
        if server.count("m-big"):
            break
        await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    for _ in range(100):  # the judge's thread ends about 0.25 s later
        stored = router.ledger.get_request("gone-1")
        if stored is not None and stored.status == "done":
            break
        await asyncio.sleep(0.02)
    assert stored is not None and stored.status == "done"  # the judge passed the answer: it is kept
    assert sorted(e.tier for e in router.ledger.entries()) == ["judge", "small"]  # both calls billed
    again = await router.acomplete(MSG, checks=[judge("openai/m-big")], request_id="gone-1")
    assert again.route.replayed and again.choices[0].message.content == "an answer"
    assert len(router.ledger.entries()) == 2 and server.count("m-small") == 1  # not paid twice


async def test_caller_cancelled_before_the_call_releases_its_hold_and_its_id(server: LocalOpenAIServer, ledger_url: str) -> None:
    """The claim and the first hold are taken in one trip to a worker thread: a caller that goes away
    meanwhile leaves neither behind once the thread is done, and nothing is called or billed."""
    import asyncio
    import time
    from decimal import Decimal

    class Slow(KeywordClassifier):
        def score(self, messages: object) -> float:
            time.sleep(0.3)  # the worker thread is busy here when the caller goes away
            return 0.1

    server.scripts["m-small"].append("an answer")
    config = router_on(server, ledger_url, tenants={"acme": {"budget_usd": "1", "period": "total"}}).config
    router = AsyncRouter(config, client=LiteLLMClient(config.retry, config.timeout_s, sleep=lambda s: None), classifier=Slow())
    task = asyncio.create_task(router.acomplete(MSG, tenant="acme", request_id="early-1"))
    await asyncio.sleep(0.1)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    for _ in range(100):  # the thread ends about 0.2 s later and gives the hold back
        await asyncio.sleep(0.02)
        stored = router.ledger.get_request("early-1", tenant="acme")
        if stored is not None and stored.status != "pending" and router.ledger.state("acme").reserved_usd == 0:
            break
    assert router.ledger.state("acme").reserved_usd == 0 and router.ledger.spent("acme") == Decimal(0)
    assert server.count("m-small") == 0
    again = await router.acomplete(MSG, tenant="acme", request_id="early-1")  # the id was released: served, not refused
    assert again.choices[0].message.content == "an answer" and server.count("m-small") == 1


def test_a_check_that_raises_still_bills_the_answer(server: LocalOpenAIServer, ledger_url: str) -> None:
    server.scripts["m-small"].append("an answer")
    router = router_on(server, ledger_url)

    def buggy(messages: list, response: object) -> bool:
        raise RuntimeError("bug in my check")

    with pytest.raises(RuntimeError, match="bug in my check"):
        router.complete(MSG, checks=[custom(buggy)], request_id="rq-1")
    [entry] = router.ledger.entries()
    assert entry.outcome == "check_failed" and "RuntimeError" in entry.reason and entry.cost_usd > 0
    stored = router.ledger.get_request("rq-1")
    assert stored is not None and stored.status == "failed"  # the id is free for a retry


def test_a_judge_that_fails_is_a_typed_error_and_both_calls_are_billed(server: LocalOpenAIServer, ledger_url: str) -> None:
    server.scripts["m-small"].append("an answer")
    server.scripts["m-big"].append({"status": 400})  # the judge's provider refuses the request
    router = router_on(server, ledger_url)
    with pytest.raises(ProviderError):
        router.complete(MSG, checks=[judge("openai/m-big")])
    assert [(e.tier, e.outcome) for e in router.ledger.entries()] == [("judge", "error"), ("small", "check_failed")]


def test_a_judge_the_budget_cannot_hold_returns_the_paid_answer_flagged(server: LocalOpenAIServer, ledger_url: str) -> None:
    server.scripts["m-small"].append("an answer")
    # The small attempt fits the cap; the judge's worst case (1,024 tokens at frontier prices) does not.
    router = router_on(server, ledger_url, tenants={"acme": {"budget_usd": "0.001", "period": "day"}})
    resp = router.complete(MSG, tenant="acme", max_tokens=500, checks=[judge("openai/m-big")])
    assert resp.choices[0].message.content == "an answer" and resp.route.escalation_exhausted
    assert [(a.outcome, a.reason) for a in resp.route.attempts] == [("check_failed", "judge: the budget cannot hold the judge's call")]
    assert server.count("m-big") == 0 and len(router.ledger.entries("acme")) == 1


def test_judge_verdicts_are_read_through_formatting(server: LocalOpenAIServer, ledger_url: str) -> None:
    router = router_on(server, ledger_url)
    for reply, passed in (("**PASS** - correct", True), ("Verdict: pass", True), ("FAIL\nwrong", False), ("It is fine.", False)):
        server.scripts["m-small"].append("an answer")
        server.scripts["m-big"].append(reply)
        server.scripts["m-flash"].append("flash answer")
        server.scripts["m-big"].append("PASS")  # the flash answer's judge, when there is one
        resp = router.complete(MSG, checks=[judge("openai/m-big")])
        small = next(a for a in resp.route.attempts if a.tier == "small")
        assert (small.outcome == "ok") is passed, reply
        server.scripts["m-big"].clear()
        server.scripts["m-flash"].clear()


def test_cascade_stops_at_the_budget(server: LocalOpenAIServer, ledger_url: str) -> None:
    server.scripts["m-small"].append("")
    # The small attempt fits the cap; the flash attempt's worst case (max_tokens at flash prices) does not.
    router = router_on(server, ledger_url, tenants={"acme": {"budget_usd": "0.001", "period": "day"}})
    resp = router.complete(MSG, tenant="acme", max_tokens=500)
    assert resp.route.escalation_exhausted and [a.tier for a in resp.route.attempts] == ["small"]
    assert len(router.ledger.entries("acme")) == 1 and server.count("m-flash") == 0
    with pytest.raises(EscalationExhausted):
        server.scripts["m-small"].append("")
        router.complete(MSG, tenant="acme", max_tokens=500, strict=True)


def test_streams_pass_unchecked_by_default_and_checked_when_enabled(server: LocalOpenAIServer, ledger_url: str) -> None:
    server.scripts["m-small"].append("I'm sorry, but I can't help with that.")
    plain = router_on(server, ledger_url, checks=["not_refusal"])
    stream = plain.complete(MSG, stream=True)
    assert "sorry" in "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    server.scripts["m-small"].append("I'm sorry, but I can't help with that.")
    server.scripts["m-flash"].append("streamed and checked")
    checked = router_on(server, ledger_url.replace(".db", "2.db"), checks=["not_refusal"], check_streams=True)
    stream = checked.complete(MSG, stream=True)
    assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices) == "streamed and checked"
    assert [a.outcome for a in stream.route.attempts] == ["check_failed", "ok"]
    assert checked.ledger.spent("default") == stream.route.cost_usd


async def test_a_checked_stream_that_breaks_is_billed_and_falls_back(server: LocalOpenAIServer, ledger_url: str) -> None:
    for name in ("sync", "async"):
        server.scripts["m-small"].append({"content": "one two three four five six", "cut_after": 3})
        server.scripts["m-flash"].append(f"whole {name} answer")
        url = ledger_url.replace(".db", f"-{name}.db")
        router = router_on(server, url, checks=["non_empty"], check_streams=True)
        if name == "sync":
            stream = router.complete(MSG, stream=True)
            text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
        else:
            arouter = AsyncRouter(router.config, client=LiteLLMClient(router.config.retry, router.config.timeout_s,
                                                                       sleep=lambda s: None), classifier=KeywordClassifier())
            stream = await arouter.acomplete(MSG, stream=True)
            text = "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])
            arouter.ledger.flush()  # another instance's bills are committed within 50 ms; read them now
        assert text == f"whole {name} answer"
        # The broken stream is billed for what arrived (its input and the first words), then flash answers.
        entries = router.ledger.entries()
        assert [(e.tier, e.outcome) for e in entries] == [("small", "error"), ("flash", "ok")]
        assert entries[0].cost_usd > 0 and entries[0].tokens_out > 0
        assert sum(e.cost_usd for e in entries) == stream.route.cost_usd == router.ledger.spent("default")


async def test_an_unchecked_stream_that_breaks_is_billed_and_raises_a_typed_error(server: LocalOpenAIServer, ledger_url: str) -> None:
    for name in ("sync", "async"):
        server.scripts["m-small"].append({"content": "one two three four five six", "cut_after": 3})
        router = router_on(server, ledger_url.replace(".db", f"-{name}.db"))
        got: list[str] = []
        with pytest.raises(ProviderError) as info:
            if name == "sync":
                for chunk in router.complete(MSG, stream=True, request_id="s1"):
                    got.append(chunk.choices[0].delta.content)
            else:
                arouter = AsyncRouter(router.config, client=LiteLLMClient(router.config.retry, router.config.timeout_s,
                                                                           sleep=lambda s: None), classifier=KeywordClassifier())
                async for chunk in await arouter.acomplete(MSG, stream=True, request_id="s1"):
                    got.append(chunk.choices[0].delta.content)
        assert got == ["one", " two", " three"] and SECRET not in str(info.value)
        if name == "async":
            arouter.ledger.flush()  # another instance's bills are committed within 50 ms; read them now
        [entry] = router.ledger.entries()
        assert entry.outcome == "error" and entry.tokens_out > 0 and entry.cost_usd > 0  # what arrived is billed
        stored = router.ledger.get_request("s1")
        assert stored is not None and stored.status == "failed"


def test_each_attempt_is_one_ledger_entry_with_its_verdict(server: LocalOpenAIServer, ledger_url: str) -> None:
    server.scripts["m-small"].append("")
    server.scripts["m-flash"].append("")
    server.scripts["m-big"].append("finally")
    router = router_on(server, ledger_url)
    resp = router.complete(MSG, request_id="r-9")
    entries = router.ledger.entries()
    assert [(e.request_id, e.attempt, e.tier, e.outcome) for e in entries] == [
        ("r-9", 1, "small", "check_failed"), ("r-9", 2, "flash", "check_failed"), ("r-9", 3, "frontier", "ok")]
    assert [a.reason for a in resp.route.attempts][:2] == ["empty answer", "empty answer"]
    assert json.loads(json.dumps([str(a.cost_usd) for a in resp.route.attempts]))


def test_verdict_type() -> None:
    assert Verdict(True) == Verdict(True, "")
