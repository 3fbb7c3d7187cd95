"""Local answer signals: cheap checks of an answer that need no model and no label (microseconds to
a millisecond). Each returns (score in [0, 1], reason) or None when the answer gives it nothing to
check ("no signal", never a failure). Code is parsed, never run.
"""

from __future__ import annotations

import ast
import json
import re
from decimal import Decimal, InvalidOperation

Signal = tuple[float, str] | None

_NUM = r"-?\d[\d,]*(?:\.\d+)?"
_EQUATION = re.compile(rf"(?<![\w.])({_NUM})\s*([+\-*/×÷])\s*({_NUM})\s*=\s*({_NUM})(?!\w|\.\d)")
_MAX_EQUATIONS = 200


def _number(text: str) -> Decimal | None:
    try:
        return Decimal(text.replace(",", ""))
    except InvalidOperation:
        return None


def _holds(a: Decimal, op: str, b: Decimal, shown: str) -> bool:
    """Whether `a op b` rounds to `shown` at the precision it is written with."""
    if op in "/÷" and b == 0:
        return False
    value = {"+": a + b, "-": a - b, "*": a * b, "×": a * b, "/": a / b if b else Decimal(0), "÷": a / b if b else Decimal(0)}[op]
    result = _number(shown)
    if result is None:
        return False
    places = len(shown.split(".", 1)[1]) if "." in shown else 0
    return abs(value - result) <= Decimal(5) * Decimal(10) ** -(places + 1) + Decimal("1e-9")


def arithmetic(answer: str) -> Signal:
    """Every `a op b = c` the answer writes, computed again: the share that holds."""
    found = _EQUATION.findall(answer[:100_000])[:_MAX_EQUATIONS]
    if not found:
        return None
    wrong = []
    for a, op, b, c in found:
        x, y = _number(a), _number(b)
        if x is None or y is None or not _holds(x, op, y, c):
            wrong.append(f"{a} {op} {b} = {c}")
    score = 1 - len(wrong) / len(found)
    return score, "" if not wrong else f"arithmetic does not hold: {wrong[0]}" + (f" (+{len(wrong) - 1} more)" if len(wrong) > 1 else "")


_ASKS_NUMBER = re.compile(r"\b(?:how (?:many|much|long|far|old)|what is|calculate|compute|find|total)\b", re.IGNORECASE)
_FINAL_NUMBER = re.compile(rf"({_NUM})\s*\W{{0,3}}\s*$")
_CUES: list[tuple[re.Pattern[str], re.Pattern[str], str]] = [
    (re.compile(r"####"), re.compile(rf"####\s*\$?\s*{_NUM}"), "an answer line '#### <number>'"),
    (re.compile(r"\\boxed"), re.compile(r"\\boxed\{[^}]+\}"), "a \\boxed{...} answer"),
    (re.compile(r"final answer", re.IGNORECASE), re.compile(r"final answer\W{0,5}\s*\S", re.IGNORECASE), "a 'final answer' line"),
    (re.compile(r"\b(?:answer with|reply with|respond with) (?:only )?(?:the )?(?:letter|option)\b", re.IGNORECASE),
     re.compile(r"(?:^|\W)\(?[A-Ja-j]\)?\W*$|^\W*\(?[A-Ja-j]\)?(?:\W|$)"), "a choice letter"),
]


def final_answer_format(prompt: str, answer: str) -> Signal:
    """The answer gives its result in the form the prompt asks for (`####`, `\\boxed{}`, a final
    answer line, a choice letter), or, for a question with numbers that asks for a quantity, ends
    on a number. No cue in the prompt: no signal."""
    for cue, wanted, what in _CUES:
        if cue.search(prompt):
            return (1.0, "") if wanted.search(answer) else (0.0, f"the prompt asks for {what}; the answer has none")
    if re.search(r"\d", prompt) and _ASKS_NUMBER.search(prompt):
        tail = answer.strip()[-200:]
        return (1.0, "") if re.search(_NUM, tail) else (0.0, "a question that asks for a number, and no number ends the answer")
    return None


_FENCE = re.compile(r"```[ \t]*([\w+-]*)[^\n]*\n(.*?)```", re.DOTALL)


def code_parses(answer: str) -> Signal:
    """Fenced Python and JSON blocks parse (with `ast.parse` and `json.loads`; nothing is run): the share that does."""
    blocks = [(lang.lower(), body) for lang, body in _FENCE.findall(answer[:200_000]) if lang.lower() in ("python", "py", "json")]
    if not blocks:
        return None
    bad = []
    for lang, body in blocks:
        try:
            if lang == "json":
                json.loads(body)
            else:
                ast.parse(body)
        except (SyntaxError, ValueError, RecursionError, MemoryError) as exc:
            bad.append(f"{lang}: {type(exc).__name__}")
    score = 1 - len(bad) / len(blocks)
    return score, "" if not bad else f"{len(bad)} of {len(blocks)} code blocks do not parse ({bad[0]})"
