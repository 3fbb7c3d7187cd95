"""Local answer signals: cheap checks of an answer that need no model and no label (microseconds to
a millisecond). Each returns (score in [0, 1], reason) or None when the answer gives it nothing to
check ("no signal", never a failure). Code is parsed, never run.
"""

from __future__ import annotations

import ast
import json
import math
import re
from fractions import Fraction
from typing import Any

Signal = tuple[float, str] | None

_NUM = r"-?\d[\d,]*(?:\.\d+)?"
_OP = r"[+\-*/×÷]"
# A chain `a op b op c = d` (no parentheses), money signs allowed; not inside a longer expression.
_EQUATION = re.compile(rf"(?<![\w.)*/+×÷=^-])((?:\$?\s*{_NUM}\s*{_OP}\s*)+\$?\s*{_NUM})\s*=\s*\$?\s*({_NUM})(?!\w|\.\d|\s*{_OP}\s*\d)")
_MAX_EQUATIONS = 200
_OPS: dict[type, Any] = {ast.Add: lambda x, y: x + y, ast.Sub: lambda x, y: x - y, ast.Mult: lambda x, y: x * y,
                         ast.Div: lambda x, y: x / y}


def _value(node: ast.AST) -> Fraction:
    """An arithmetic expression's exact value: numbers and + - * / only (never eval)."""
    if isinstance(node, ast.Expression):
        return _value(node.body)
    if isinstance(node, ast.BinOp) and type(node.op) in _OPS:
        return Fraction(_OPS[type(node.op)](_value(node.left), _value(node.right)))
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        return -_value(node.operand)
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)) and not isinstance(node.value, bool):
        return Fraction(str(node.value))
    raise ValueError("not arithmetic")


def _holds(expr: str, shown: str) -> bool | None:
    """Whether `expr` rounds to `shown` at the precision it is written with; None when it cannot be read."""
    text = expr.replace("$", "").replace(",", "").replace("×", "*").replace("÷", "/")
    try:
        value = _value(ast.parse(text, mode="eval"))
        result = Fraction(shown.replace(",", ""))
    except (ValueError, SyntaxError, ZeroDivisionError, RecursionError):
        return None
    places = len(shown.split(".", 1)[1]) if "." in shown else 0
    return abs(value - result) <= Fraction(5, 10 ** (places + 1)) + Fraction(1, 10**9)


def arithmetic(answer: str) -> Signal:
    """Every `a op b (op c ...) = d` the answer writes, computed again: the share that holds."""
    checked = [(expr, shown, _holds(expr, shown)) for expr, shown in _EQUATION.findall(answer[:100_000])[:_MAX_EQUATIONS]]
    found = [(e, s, ok) for e, s, ok in checked if ok is not None]
    if not found:
        return None
    wrong = [f"{' '.join(e.split())} = {s}" for e, s, ok in found if not ok]
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


_CHOICE = [re.compile(p, re.IGNORECASE | re.MULTILINE) for p in (
    r"\b(?:answer|option|choice)\s*(?:is|:)?\s*\(?([A-J1-9])\)?(?![\w])",  # "the answer is (B)", "Answer: 2"
    r"^\s*\(?([A-J])[).:](?:\s|$)",  # a line that opens with "B." or "(B)"
    r"^\s*\(?([A-J1-9])\)?\s*$",  # a line that is only the letter
)]


def final_answer(text: str) -> str | None:
    """What an answer settles on, for comparing two answers: a choice letter, else its last number."""
    for pattern in _CHOICE:
        found = pattern.findall(text[-4000:])
        if found:
            return str(found[-1]).upper()
    if "```" in text or re.search(r"^\s*(?:def|class|import|return)\b", text, re.MULTILINE):
        return None  # code: its numbers settle nothing, its text is compared
    numbers = re.findall(_NUM, text[-60:])
    return numbers[-1].replace(",", "").rstrip(".") if numbers else None


def agreement(first: str, second: str) -> float:
    """How much two answers to one request agree, in [0, 1]: their final answers (a choice letter or
    a number) when both have one, else the similarity of their normalised texts."""
    a, b = final_answer(first), final_answer(second)
    if a is not None and b is not None:
        return 1.0 if a == b else 0.0
    from difflib import SequenceMatcher

    norm = [" ".join(re.findall(r"\w+", t.lower()))[:2000] for t in (first, second)]
    return SequenceMatcher(None, norm[0], norm[1], autojunk=False).ratio() if any(norm) else 1.0


LOW_LOGPROB = -2.3  # a token the model gave under a 10% chance


def uncertainty(logprobs: Any) -> Signal:
    """The answer's confidence from its token log-probabilities (the provider's `logprobs.content`):
    the share of tokens the model gave at least a 10% chance, lowered by the mean and the 10th
    percentile. Absent or malformed log-probabilities: no signal, never a failure."""
    content = getattr(logprobs, "content", None) if not isinstance(logprobs, dict) else logprobs.get("content")
    if not isinstance(content, list) or not content:
        return None
    values = []
    for token in content[:20_000]:
        value = token.get("logprob") if isinstance(token, dict) else getattr(token, "logprob", None)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value) or value > 0 or value < -1e4:
            return None  # NaN, positive or absurd: the provider's figures cannot be read
        values.append(float(value))
    values.sort()
    confident = sum(v >= LOW_LOGPROB for v in values) / len(values)
    mean = sum(values) / len(values)
    low = values[len(values) // 10]
    score = max(0.0, min(1.0, confident * math.exp(max(mean, -5.0) / 2) ** 0.5 * (1.0 if low >= 2 * LOW_LOGPROB else 0.8)))
    return score, "" if score >= 0.5 else f"the model was unsure of its answer ({1 - confident:.0%} of tokens under a 10% chance)"
