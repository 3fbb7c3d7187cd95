"""Local answer signals: arithmetic re-checked, the final answer's format, code that parses (never
run); each a check with a score, "no signal" when the answer gives it nothing, and an escalation
when it fails."""

from __future__ import annotations

from typing import Any

import pytest
from conftest import KeywordClassifier, local_tiers

from router import LiteLLMClient, Router, RouterConfig
from router.checks import Verdict, arithmetic, code_parses, final_answer_format
from router.testing import LocalOpenAIServer


class _Reply:
    def __init__(self, text: str) -> None:
        self.choices = [type("C", (), {"message": type("M", (), {"content": text, "tool_calls": None})(), "finish_reason": "stop"})()]


def verdict(check: Any, answer: str, prompt: str = "Compute it.") -> Verdict:
    result: Verdict = check([{"role": "user", "content": prompt}], _Reply(answer))
    return result


@pytest.mark.parametrize(("answer", "passed", "score"), [
    ("12 * 4 = 48, then 48 + 2 = 50.", True, 1.0),
    ("Then 7 * 8 = 54.", False, 0.0),
    ("1,000 / 8 = 125 and 3 - 5 = -1", False, 0.5),
    ("1/3 = 0.33", True, 1.0),
    ("No sums at all, on 2024-01-01.", True, None),
])
def test_arithmetic_recomputes_what_the_answer_writes(answer: str, passed: bool, score: float | None) -> None:
    v = verdict(arithmetic, answer)
    assert (v.passed, v.score) == (passed, score)


def test_the_final_answer_format_follows_the_prompts_cue() -> None:
    assert verdict(final_answer_format, "so #### 72", "Reason, then give #### and the number.").passed
    assert not verdict(final_answer_format, "It is 72.", "Reason, then give #### and the number.").passed
    assert not verdict(final_answer_format, "I am not sure.", "Tom has 3 apples and buys 4. How many does he have?").passed
    assert verdict(final_answer_format, "He has 7.", "Tom has 3 apples and buys 4. How many does he have?").score == 1.0
    assert verdict(final_answer_format, "Hello!", "Hi there").score is None  # no cue: no signal


def test_code_blocks_are_parsed_never_run(tmp_path: Any) -> None:
    marker = tmp_path / "ran"
    evil = f"```python\nopen({str(marker)!r}, 'w').write('x')\n```"
    assert verdict(code_parses, evil).passed and not marker.exists()
    assert not verdict(code_parses, "```python\ndef f(:\n    pass\n```").passed
    assert verdict(code_parses, '```json\n{"a": 1}\n```\n```python\nx = 1\n```').score == 1.0
    assert verdict(code_parses, "```json\n{bad}\n```\n```python\nx = 1\n```").score == 0.5
    assert verdict(code_parses, "plain prose").score is None


def test_a_failed_signal_escalates_and_both_calls_are_billed(server: LocalOpenAIServer, ledger_url: str) -> None:
    server.scripts["m-small"].append("First 6 * 7 = 48, so the answer is 48.")
    server.scripts["m-flash"].append("6 * 7 = 42, so the answer is 42.")
    config = RouterConfig.from_dict({"tiers": local_tiers(server.url), "ledger": ledger_url, "thresholds": [0.4, 0.7],
                                     "checks": ["non_empty", "arithmetic"]})
    with Router(config, client=LiteLLMClient(config.retry, config.timeout_s), classifier=KeywordClassifier()) as router:
        resp = router.complete([{"role": "user", "content": "What is 6 times 7?"}])
        assert resp.choices[0].message.content.startswith("6 * 7 = 42") and resp.route.tier == "flash"
        assert "arithmetic does not hold: 6 * 7 = 48" in resp.route.reason
        assert [a.outcome for a in resp.route.attempts] == ["check_failed", "ok"]
        assert len(router.ledger.entries()) == 2


def test_agreement_compares_final_answers_else_texts() -> None:
    from router.checks import agreement

    assert agreement("The answer is (B).", "I'd say the answer is B") == 1.0
    assert agreement("Answer: A", "Answer: C") == 0.0
    assert agreement("So she makes $18 a day.", "Total: 18") == 1.0
    assert 0.5 < agreement("def f(x): return x+1", "def f(x):\n    return x + 2") < 1.0  # code: its text, not its numbers


def test_agrees_asks_a_second_model_bills_it_and_escalates_on_disagreement(server: LocalOpenAIServer, ledger_url: str) -> None:
    from router.checks import agrees

    server.scripts["m-small"].append("The answer is B.")
    # m-flash answers the small tier's check, then as its own tier, then its own tier's check (which agrees).
    server.scripts["m-flash"].extend(["The answer is C.", "The answer is C, because the others fail.", "The answer is C."])
    config = RouterConfig.from_dict({"tiers": local_tiers(server.url), "ledger": ledger_url, "thresholds": [0.4, 0.7],
                                     "tenants": {"acme": {"budget_usd": "1", "period": "total"}}})
    with Router(config, client=LiteLLMClient(config.retry, config.timeout_s), classifier=KeywordClassifier()) as router:
        resp = router.complete([{"role": "user", "content": "Which one? A, B or C"}], tenant="acme", max_tokens=50,
                               checks=[agrees("openai/m-flash")])
        assert resp.route.tier == "flash" and "disagrees with openai/m-flash's answer (agreement 0.00)" in resp.route.reason
        assert [a.outcome for a in resp.route.attempts] == ["judge", "check_failed", "judge", "ok"]  # the second answers are billed too
        assert router.ledger.spent("acme") == resp.route.cost_usd > 0


def test_a_tiers_bar_decides_on_the_answer_score_and_the_reason_names_it(server: LocalOpenAIServer, ledger_url: str) -> None:
    server.scripts["m-small"].extend(["1 + 1 = 2 and 2 + 2 = 5.", "1 + 1 = 2, 2 + 2 = 4, 3 + 3 = 7, 4 + 4 = 8."])
    config = RouterConfig.from_dict({"tiers": local_tiers(server.url), "ledger": ledger_url, "thresholds": [0.4, 0.7],
                                     "checks": ["non_empty", "arithmetic"], "escalation": {"bars": {"small": 0.7}}})
    with Router(config, client=LiteLLMClient(config.retry, config.timeout_s), classifier=KeywordClassifier()) as router:
        half = router.complete([{"role": "user", "content": "sums"}])  # 1 of 2 hold: 0.5, under small's bar
        assert half.route.tier == "flash" and "answer score 0.50 under small's bar 0.70" in half.route.reason
        most = router.complete([{"role": "user", "content": "sums"}])  # 3 of 4 hold: 0.75, at or above the bar: kept
        assert most.route.tier == "small" and [a.outcome for a in most.route.attempts] == ["ok"]
    with pytest.raises(Exception, match="not tiers"):
        RouterConfig.from_dict({"tiers": local_tiers(server.url), "escalation": {"bars": {"tiny": 0.5}}})


def test_uncertainty_reads_log_probabilities_and_missing_or_malformed_ones_are_no_signal(server: LocalOpenAIServer, ledger_url: str) -> None:
    tiers = local_tiers(server.url)
    tiers[0]["models"][0]["logprobs"] = True  # the model entry asks its provider for token log-probabilities
    server.scripts["m-small"].extend([
        {"content": "Paris.", "logprobs": [-0.01, -0.02, -0.05]},  # sure of itself: kept
        {"content": "Maybe Lyon?", "logprobs": [-3.5, -4.0, -2.9, -0.3]},  # unsure: escalates
        {"content": "Paris.", "logprobs": {"content": "not a list"}},  # malformed: no signal
        {"content": "Paris.", "logprobs": [float("-inf")]},  # unreadable figures: no signal
    ])
    config = RouterConfig.from_dict({"tiers": tiers, "ledger": ledger_url, "thresholds": [0.4, 0.7], "checks": ["non_empty", "uncertainty"]})
    with Router(config, client=LiteLLMClient(config.retry, config.timeout_s), classifier=KeywordClassifier()) as router:
        ask = [{"role": "user", "content": "Capital of France?"}]
        assert router.complete(ask).route.tier == "small"
        unsure = router.complete(ask)
        assert unsure.route.tier == "flash" and "unsure" in unsure.route.reason
        assert router.complete(ask).route.tier == "small"
        assert router.complete(ask).route.tier == "small"
        assert server.requests[0]["body"].get("logprobs") is True


def test_self_consistent_samples_the_same_model_once_bills_it_and_escalates_on_disagreement(
        server: LocalOpenAIServer, ledger_url: str) -> None:
    from router.checks import self_consistent

    # small answers 42, then its 3 samples come back in one call (n=3): one agrees, so 1/3 < the bar of 0.5
    server.scripts["m-small"].extend(["6 * 7 = 42", {"choices": ["It is 42", "It is 41", "It is 48"]}])
    server.scripts["m-flash"].extend(["6 * 7 = 42, checked twice.", {"content": "It is 42"}])  # n=3: the content thrice
    config = RouterConfig.from_dict({"tiers": local_tiers(server.url), "ledger": ledger_url, "thresholds": [0.4, 0.7],
                                     "tenants": {"acme": {"budget_usd": "1", "period": "total"}}})
    with Router(config, client=LiteLLMClient(config.retry, config.timeout_s), classifier=KeywordClassifier()) as router:
        resp = router.complete([{"role": "user", "content": "What is 6 times 7?"}], tenant="acme", max_tokens=50,
                               checks=[self_consistent(n=3)])
        assert "own samples disagree with its answer (agreement 0.33)" in resp.route.reason
        outcomes = [(a.tier, a.outcome) for a in resp.route.attempts]
        assert outcomes == [("judge", "judge"), ("small", "check_failed"), ("judge", "judge"), ("flash", "ok")]
        assert server.count("m-small") == 2  # the answer and one call for all three samples
        assert router.ledger.spent("acme") == resp.route.cost_usd > 0
    with pytest.raises(Exception, match="n must be from 1 to 16"):
        self_consistent(n=0)
