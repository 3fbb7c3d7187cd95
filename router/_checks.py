"""Quality checks on an answer: small callables that compose with & (all) and | (any)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from router._errors import ConfigError


@dataclass(frozen=True)
class Verdict:
    passed: bool
    reason: str = ""


class QualityCheck:
    """`check(messages, response) -> Verdict`; `a & b` needs both, `a | b` either."""

    def __init__(self, name: str, fn: Callable[[list[dict[str, Any]], Any], Verdict]) -> None:
        self.name = name
        self._fn = fn

    def __call__(self, messages: list[dict[str, Any]], response: Any) -> Verdict:
        return self._fn(messages, response)

    def __and__(self, other: QualityCheck) -> QualityCheck:
        def both(messages: list[dict[str, Any]], response: Any) -> Verdict:
            first = self(messages, response)
            return first if not first.passed else other(messages, response)

        return QualityCheck(f"({self.name} & {other.name})", both)

    def __or__(self, other: QualityCheck) -> QualityCheck:
        def either(messages: list[dict[str, Any]], response: Any) -> Verdict:
            first = self(messages, response)
            if first.passed:
                return first
            second = other(messages, response)
            return second if second.passed else Verdict(False, f"{first.reason}; {second.reason}")

        return QualityCheck(f"({self.name} | {other.name})", either)

    def __repr__(self) -> str:
        return f"QualityCheck({self.name})"


def _first_choice(response: Any) -> Any:
    choices = getattr(response, "choices", None) or []
    return choices[0] if choices else None


def _non_empty(messages: list[dict[str, Any]], response: Any) -> Verdict:
    choice = _first_choice(response)
    message = getattr(choice, "message", None)
    content = getattr(message, "content", None)
    if (isinstance(content, str) and content.strip()) or getattr(message, "tool_calls", None):
        return Verdict(True)
    return Verdict(False, "empty answer")


def _not_truncated(messages: list[dict[str, Any]], response: Any) -> Verdict:
    choice = _first_choice(response)
    if getattr(choice, "finish_reason", None) == "length":
        return Verdict(False, "answer cut off at the output limit")
    return Verdict(True)


non_empty = QualityCheck("non_empty", _non_empty)
not_truncated = QualityCheck("not_truncated", _not_truncated)
BUILTIN: dict[str, QualityCheck] = {"non_empty": non_empty, "not_truncated": not_truncated}


def all_of(checks: Sequence[QualityCheck | str]) -> QualityCheck | None:
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
            resolved.append(QualityCheck(getattr(check, "__name__", "custom"), check))
        else:
            raise ConfigError(f"a check must be a name or a callable, got {type(check).__name__}")
    if not resolved:
        return None
    combined = resolved[0]
    for check in resolved[1:]:
        combined = combined & check
    return combined
