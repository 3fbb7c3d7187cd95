"""Quality checks on an answer: small callables that compose with & (all) and | (any).

    from router.checks import not_refusal, matches_schema, judge
    router.complete(messages, checks=[not_refusal, matches_schema(MyModel)])

A check is `check(messages, response, ctx) -> Verdict`. `ctx` lets a check call a model through
the router's own client (the LLM judge); what such a call costs is billed as its own ledger entry.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from router._errors import BudgetExceeded, ConfigError
from router._signals import Signal, agreement
from router._signals import arithmetic as arithmetic_signal
from router._signals import code_parses as code_signal
from router._signals import final_answer_format as format_signal
from router._signals import uncertainty as uncertainty_signal


@dataclass(frozen=True)
class Verdict:
    passed: bool
    reason: str = ""
    score: float | None = None  # how good the answer looks, in [0, 1], for checks that measure; None: no signal


class CheckContext(Protocol):
    """What the router offers a check: billed model calls."""

    def ask(self, model: str, messages: list[dict[str, Any]]) -> str: ...

    def sample(self, messages: list[dict[str, Any]], n: int) -> list[str]: ...


CheckFn = Callable[[list[dict[str, Any]], Any, "CheckContext | None"], Verdict]


class QualityCheck:
    """A named check; `a & b` needs both, `a | b` either.

    `calls_model` marks a check that makes a model call (the judge). `local` marks one that only
    computes (no I/O, at most about a millisecond): AsyncRouter bills an answer whose checks are all
    local on the event loop, and runs any other check on a worker thread.
    """

    def __init__(self, name: str, fn: CheckFn, *, calls_model: bool = False, local: bool = False) -> None:
        self.name = name
        self._fn = fn
        self.calls_model = calls_model
        self.local = local and not calls_model

    def __call__(self, messages: list[dict[str, Any]], response: Any, ctx: CheckContext | None = None) -> Verdict:
        return self._fn(messages, response, ctx)

    def __and__(self, other: QualityCheck) -> QualityCheck:
        def both(messages: list[dict[str, Any]], response: Any, ctx: CheckContext | None) -> Verdict:
            first = self(messages, response, ctx)
            if not first.passed and first.score is None:
                return first  # a hard failure: nothing after it can save the answer
            # A scored one is measured with the rest: a tier's bar (escalation.bars) may still let it pass.
            second = other(messages, response, ctx)
            scores = [v.score for v in (first, second) if v.score is not None]
            failed = next((v for v in (first, second) if not v.passed), None)
            if failed is not None and failed.score is None:
                return failed
            return Verdict(failed is None, failed.reason if failed else second.reason, min(scores) if scores else None)

        return QualityCheck(f"({self.name} & {other.name})", both, calls_model=self.calls_model or other.calls_model,
                            local=self.local and other.local)

    def __or__(self, other: QualityCheck) -> QualityCheck:
        def either(messages: list[dict[str, Any]], response: Any, ctx: CheckContext | None) -> Verdict:
            first = self(messages, response, ctx)
            if first.passed:
                return first
            second = other(messages, response, ctx)
            return second if second.passed else Verdict(False, f"{first.reason}; {second.reason}")

        return QualityCheck(f"({self.name} | {other.name})", either, calls_model=self.calls_model or other.calls_model,
                            local=self.local and other.local)

    def __repr__(self) -> str:
        return f"QualityCheck({self.name})"


def barred(bar: float | None, tier: str, verdict: Verdict) -> Verdict:
    """With a bar for the tier (escalation.bars), a scored answer passes only at or above it."""
    if bar is None or verdict.score is None:
        return verdict
    if verdict.score >= bar:
        return Verdict(True, verdict.reason, verdict.score)
    why = f"answer score {verdict.score:.2f} under {tier}'s bar {bar:.2f}"
    return Verdict(False, f"{why} ({verdict.reason})" if verdict.reason else why, verdict.score)


def verified(model: Any, bar: float | None, tier: str, messages: list[dict[str, Any]], response: Any, verdict: Verdict,
             above: bool) -> Verdict:
    """The escalation verifier's say on an answer that passed its checks (`model` a Verifier or
    None): under the tier's bar (0.5 unless escalation.bars names one) it escalates. The top tier's
    answer (`above` False) is not scored: nothing is above it. No score is no signal."""
    if model is None or not above or not verdict.passed:
        return verdict
    score = model.score(messages, answer_text(response))
    if score is None:
        return verdict
    bar = 0.5 if bar is None else bar
    if score >= bar:
        return Verdict(True, verdict.reason, score if verdict.score is None else min(score, verdict.score))
    return Verdict(False, f"verifier score {score:.2f} under {tier}'s bar {bar:.2f}", score)


def answer_text(response: Any) -> str:
    """The first choice's text ('' when there is none)."""
    choices = getattr(response, "choices", None) or []
    message = getattr(choices[0], "message", None) if choices else None
    content = getattr(message, "content", None)
    return content if isinstance(content, str) else ""


def _text_check(name: str, test: Callable[[str], str | None]) -> QualityCheck:
    """A check on the answer's text; `test` returns a failure reason or None."""

    def fn(messages: list[dict[str, Any]], response: Any, ctx: CheckContext | None) -> Verdict:
        reason = test(answer_text(response))
        return Verdict(reason is None, reason or "")

    return QualityCheck(name, fn, local=True)


def _non_empty(messages: list[dict[str, Any]], response: Any, ctx: CheckContext | None) -> Verdict:
    choices = getattr(response, "choices", None) or []
    message = getattr(choices[0], "message", None) if choices else None
    if answer_text(response).strip() or getattr(message, "tool_calls", None):
        return Verdict(True)
    return Verdict(False, "empty answer")


def _not_truncated(messages: list[dict[str, Any]], response: Any, ctx: CheckContext | None) -> Verdict:
    choices = getattr(response, "choices", None) or []
    if choices and getattr(choices[0], "finish_reason", None) == "length":
        return Verdict(False, "answer cut off at the output limit")
    return Verdict(True)


_REFUSAL = re.compile(
    r"^\W*(?:i['’]?m sorry|sorry|unfortunately|as an ai)\b.{0,80}\b(?:can(?:no|')t|cannot|unable|not able|won['’]?t)\b"
    r"|\b(?:i|we) (?:can(?:no|['’])t|cannot|am unable to|'m unable to|am not able to|won['’]?t be able to) "
    r"(?:help|assist|answer|provide|comply|do that|fulfil+|complete)"
    r"|\bi (?:do not|don['’]t) (?:know|have (?:enough )?information)"
    r"|\bi['’]?m not (?:sure|certain)\b.{0,40}\b(?:answer|know)\b"
    r"|\bbeyond my (?:knowledge|capabilities)\b",
    re.IGNORECASE | re.DOTALL,
)


def _refusal(text: str) -> str | None:
    head = text.strip()[:400]  # refusals open the answer; a long answer quoting one is not one
    return "refusal or non-answer" if head and _REFUSAL.search(head) else None


def _json_body(text: str) -> str:
    body = text.strip()
    if body.startswith("```"):
        body = body.split("\n", 1)[1] if "\n" in body else ""
        body = body.rsplit("```", 1)[0]
    return body


def _valid_json(text: str) -> str | None:
    try:
        json.loads(_json_body(text))
    except ValueError as exc:
        return f"invalid JSON: {exc}"
    return None


def _signal_check(name: str, signal: Callable[[str, str], Signal], bar: float = 1.0) -> QualityCheck:
    """A check from a local answer signal: passes when the score reaches `bar`, or when there is no signal."""

    def fn(messages: list[dict[str, Any]], response: Any, ctx: CheckContext | None) -> Verdict:
        prompt = next((m["content"] for m in reversed(messages) if m.get("role") == "user" and isinstance(m.get("content"), str)), "")
        found = signal(prompt, answer_text(response))
        if found is None:
            return Verdict(True)
        score, reason = found
        return Verdict(score >= bar, reason, score)

    return QualityCheck(name, fn, local=True)


non_empty = QualityCheck("non_empty", _non_empty, local=True)
not_truncated = QualityCheck("not_truncated", _not_truncated, local=True)
not_refusal = _text_check("not_refusal", _refusal)
valid_json = _text_check("valid_json", _valid_json)
def _uncertainty(messages: list[dict[str, Any]], response: Any, ctx: CheckContext | None) -> Verdict:
    choices = getattr(response, "choices", None) or []
    found = uncertainty_signal(getattr(choices[0], "logprobs", None) if choices else None)
    if found is None:
        return Verdict(True)  # the provider sent none (set logprobs: true on the model entry): no signal
    return Verdict(found[0] >= 0.5, found[1], found[0])


arithmetic = _signal_check("arithmetic", lambda _prompt, answer: arithmetic_signal(answer))
uncertainty = QualityCheck("uncertainty", _uncertainty, local=True)
final_answer_format = _signal_check("final_answer_format", format_signal)
code_parses = _signal_check("code_parses", lambda _prompt, answer: code_signal(answer))


def verifier(model: Any, bar: float = 0.5) -> QualityCheck:
    """A learned verifier (a `router.verifier.Verifier` or the path of its JSON file) scoring the
    answer: passes at or above `bar` (a tier's escalation.bars replaces it). An answer it cannot
    score is "no signal" and passes."""
    from router.verifier import Verifier, load_verifier

    found: Verifier = model if isinstance(model, Verifier) else load_verifier(model)

    def fn(messages: list[dict[str, Any]], response: Any, ctx: CheckContext | None) -> Verdict:
        score = found.score(messages, answer_text(response))
        if score is None:
            return Verdict(True)
        return Verdict(score >= bar, "" if score >= bar else f"the verifier gives the answer {score:.2f}", score)

    return QualityCheck("verifier", fn)


def matches_schema(model: Any) -> QualityCheck:
    """The answer is JSON that validates against a pydantic model."""

    def test(text: str) -> str | None:
        try:
            model.model_validate_json(_json_body(text))
        except ValueError as exc:  # pydantic.ValidationError is a ValueError
            return f"does not match {model.__name__}: {str(exc).splitlines()[0]}"
        return None

    return _text_check(f"matches_schema({model.__name__})", test)


def regex(pattern: str, flags: int = 0) -> QualityCheck:
    """The answer contains a match of `pattern`."""
    compiled = re.compile(pattern, flags)
    return _text_check(f"regex({pattern!r})", lambda t: None if compiled.search(t) else f"no match for {pattern!r}")


def min_length(chars: int) -> QualityCheck:
    return _text_check(f"min_length({chars})", lambda t: None if len(t.strip()) >= chars else f"shorter than {chars} characters")


def max_length(chars: int) -> QualityCheck:
    return _text_check(f"max_length({chars})", lambda t: None if len(t.strip()) <= chars else f"longer than {chars} characters")


def custom(fn: Callable[[list[dict[str, Any]], Any], bool | Verdict], name: str | None = None) -> QualityCheck:
    """Wrap `fn(messages, response) -> bool | Verdict`."""

    def run(messages: list[dict[str, Any]], response: Any, ctx: CheckContext | None) -> Verdict:
        out = fn(messages, response)
        return out if isinstance(out, Verdict) else Verdict(bool(out), "" if out else f"{name or fn.__name__} failed")

    return QualityCheck(name or str(getattr(fn, "__name__", "custom")), run)


def _agreement_check(name: str, bar: float, others: Callable[[CheckContext, list[dict[str, Any]]], list[str]], cost: str,
                     low: str) -> QualityCheck:
    """A check that buys other answers to the same messages (`others`, through the router: budgeted
    and billed) and scores the mean agreement of the answer with them."""

    def run(messages: list[dict[str, Any]], response: Any, ctx: CheckContext | None) -> Verdict:
        if ctx is None:
            raise ConfigError(f"the {name.split('(')[0]} check needs the router's context; run it inside Router.complete")
        try:
            found = others(ctx, messages)
        except BudgetExceeded:
            return Verdict(False, f"{name.split('(')[0]}: the budget cannot hold {cost}")
        if not found:
            return Verdict(True)  # the provider sent none: no signal
        score = sum(agreement(answer_text(response), other) for other in found) / len(found)
        return Verdict(score >= bar, "" if score >= bar else f"{low} (agreement {score:.2f})", score)

    return QualityCheck(name, run, calls_model=True)


def agrees(model: str, bar: float = 1.0) -> QualityCheck:
    """The answer agrees with a second answer to the same messages from `model` (cheaper or equal:
    a configured model, called through the router, budgeted and billed as its own entry): their final
    answers (a choice letter, a number) match, or their texts are similar. The score is the agreement."""
    return _agreement_check(f"agrees({model})", bar, lambda ctx, messages: [ctx.ask(model, messages)], f"{model}'s answer",
                            f"disagrees with {model}'s answer")


def self_consistent(n: int = 3, bar: float = 0.5) -> QualityCheck:
    """The answer agrees with `n` more samples of the model that gave it (one call with `n=`, so the
    prompt is paid once; budgeted and billed as its own entry): the score is the share that agree
    (`agreement`: final choice letter or number, else text similarity). Passes at or above `bar`."""
    if not 1 <= n <= 16:
        raise ConfigError(f"self_consistent: n must be from 1 to 16, not {n}")
    return _agreement_check(f"self_consistent({n})", bar, lambda ctx, messages: ctx.sample(messages, n), f"{n} more samples",
                            "the model's own samples disagree with its answer")


_VERDICT = re.compile(r"\b(PASS|FAIL)(?:ED|ES)?\b", re.IGNORECASE)
_JUDGE_PROMPT = (
    "You grade an assistant's answer. Rubric: {rubric}\n\nConversation:\n{question}\n\nAnswer:\n{answer}\n\n"
    "Reply with PASS or FAIL on the first line, then one short reason."
)


def judge(model: str, rubric: str = "The answer is correct, complete and responsive to the last user message.") -> QualityCheck:
    """An LLM judge called through the router's client; its cost is a ledger entry of its own."""

    def run(messages: list[dict[str, Any]], response: Any, ctx: CheckContext | None) -> Verdict:
        if ctx is None:
            raise ConfigError("the judge check needs the router's context; run it inside Router.complete")
        question = "\n".join(f"{m.get('role')}: {m.get('content')}" for m in messages if isinstance(m.get("content"), str))
        prompt = _JUDGE_PROMPT.format(rubric=rubric, question=question[-6000:], answer=answer_text(response)[:6000])
        try:
            reply = ctx.ask(model, [{"role": "user", "content": prompt}]).strip()
        except BudgetExceeded:
            # The answer is already paid for: the cascade, not an error, decides what comes next
            # (a stronger tier if the budget holds it, else this answer, flagged as unchecked).
            return Verdict(False, "judge: the budget cannot hold the judge's call")
        # Judges dress their verdict ("**PASS**", "Verdict: pass"): read the first PASS or FAIL
        # word of the first line; a reply with neither counts as a fail, so quality is never assumed.
        found = _VERDICT.search(reply.split("\n", 1)[0])
        passed = found is not None and found.group(1).upper() == "PASS"
        return Verdict(passed, "" if passed else f"judge: {reply[:200]}")

    return QualityCheck(f"judge({model})", run, calls_model=True)


__all__ = [
    "CheckContext",
    "QualityCheck",
    "Verdict",
    "agreement",
    "agrees",
    "arithmetic",
    "code_parses",
    "custom",
    "final_answer_format",
    "judge",
    "matches_schema",
    "max_length",
    "min_length",
    "non_empty",
    "not_refusal",
    "not_truncated",
    "regex",
    "self_consistent",
    "uncertainty",
    "valid_json",
    "verifier",
]
BUILTIN: dict[str, QualityCheck] = {c.name: c for c in (non_empty, not_truncated, not_refusal, valid_json, arithmetic,
                                                         final_answer_format, code_parses, uncertainty)}


def all_of(checks: Sequence[QualityCheck | str | Callable[..., Any]]) -> QualityCheck | None:
    """One check that needs every given check (names of built-ins allowed); None for no checks."""
    resolved: list[QualityCheck] = []
    for check in checks:
        if isinstance(check, str):
            if check not in BUILTIN:
                raise ConfigError(f"unknown check {check!r}; built-in checks: {sorted(BUILTIN)}")
            resolved.append(BUILTIN[check])
        elif isinstance(check, QualityCheck):
            resolved.append(check)
        elif callable(check):
            resolved.append(custom(check))
        else:
            raise ConfigError(f"a check must be a name or a callable, got {type(check).__name__}")
    if not resolved:
        return None
    combined = resolved[0]
    for check in resolved[1:]:
        combined = combined & check
    return combined
