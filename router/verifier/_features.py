"""What a learned verifier reads of a (prompt, answer) pair: a few dense answer features (lengths
and their ratio, refusal and hedging, repetition, whether the answer has the form the prompt asks
for, the local signals of `router._signals`) and the hashed words of prompt and answer. Pure
Python and numpy: the same features at training and at run time.
"""

from __future__ import annotations

import itertools
import math
import re
import zlib
from typing import Any

from router._signals import arithmetic, code_parses, final_answer, final_answer_format

DENSE = (
    "answer_chars", "prompt_chars", "length_ratio", "empty", "refusal", "hedges", "repetition", "asks_code", "has_code",
    "asks_choice", "has_final", "ends_number", "arithmetic", "arithmetic_seen", "format", "format_seen", "code_parses",
    "code_seen", "numbers_used", "final_from_work", "final_integer", "equations",
)
_WORD = re.compile(r"[a-z0-9]+")
_HEDGE = re.compile(r"\b(?:i think|probably|might|maybe|perhaps|not sure|possibly|it depends|approximately|i believe|likely)\b",
                    re.IGNORECASE)
_REFUSAL = re.compile(r"\b(?:i (?:can(?:no|')t|cannot|am unable to|won't)|as an ai|i'm sorry|i apologi[sz]e)\b", re.IGNORECASE)
_ASKS_CODE = re.compile(r"\b(?:python|function|code|script|program|implement|def )\b", re.IGNORECASE)
_ASKS_CHOICE = re.compile(r"(?:^|\s)\(?[A-D][).:]\s|\boption\s*[12]\b|\b(?:A|B|C|D)\)\s", re.MULTILINE)
_NUMBER = re.compile(r"(?<![\w.])-?\d[\d,]*(?:\.\d+)?")
_RESULT = re.compile(r"=\s*\$?\s*(-?\d[\d,]*(?:\.\d+)?)")
_PROMPT_CHARS = 4000
_ANSWER_CHARS = 8000


def prompt_text(messages: list[dict[str, Any]]) -> str:
    """The last user message's text (what the answer answers)."""
    for m in reversed(messages):
        if m.get("role") == "user":
            content = m.get("content")
            if isinstance(content, str):
                return content
            if isinstance(content, list):
                return " ".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
    return ""


def _signal(found: tuple[float, str] | None) -> tuple[float, float]:
    return (0.0, 0.0) if found is None else (float(found[0]), 1.0)


def dense(prompt: str, answer: str) -> list[float]:
    """The dense features, in the order of DENSE, each roughly in [0, 1]."""
    p, a = prompt[:_PROMPT_CHARS], answer[:_ANSWER_CHARS]
    lines = [ln.strip() for ln in a.splitlines() if ln.strip()]
    repeated = 1.0 - len(set(lines)) / len(lines) if len(lines) > 1 else 0.0
    arith, arith_seen = _signal(arithmetic(a))
    fmt, fmt_seen = _signal(final_answer_format(p, a))
    code, code_seen = _signal(code_parses(a))
    final = final_answer(a)
    return [
        math.log1p(len(answer)) / 10, math.log1p(len(prompt)) / 10, (math.log1p(len(answer)) - math.log1p(len(prompt))) / 5,
        float(not a.strip()), float(bool(_REFUSAL.search(a[:400]))), min(len(_HEDGE.findall(a)), 5) / 5, repeated,
        float(bool(_ASKS_CODE.search(p))), float("```" in a or "def " in a), float(bool(_ASKS_CHOICE.search(p))),
        float(final is not None), float(bool(re.search(r"\d[\d,.]*\W*$", a.strip()[-40:]))),
        arith, arith_seen, fmt, fmt_seen, code, code_seen, *_numbers(p, a, final),
    ]


def _numbers(prompt: str, answer: str, final: str | None) -> list[float]:
    """How the answer's numbers relate to the prompt's: the share of the prompt's numbers it uses,
    whether its final number is the result of its own working, whether that number is whole, and
    how much working it shows."""
    given = {n.replace(",", "") for n in _NUMBER.findall(prompt)}
    used = {n.replace(",", "") for n in _NUMBER.findall(answer)}
    results = {n.replace(",", "").rstrip(".") for n in _RESULT.findall(answer)}
    whole = final is not None and re.fullmatch(r"-?\d+(?:\.0+)?", final) is not None
    return [len(given & used) / len(given) if given else 0.0, float(final is not None and final in results), float(whole),
            min(len(results), 20) / 20]


def hashed(prompt: str, answer: str, dims: int) -> dict[int, float]:
    """Words of prompt and answer (and answer word pairs) hashed into `dims` buckets, log counts,
    scaled to unit length so long texts weigh as much as short ones."""
    counts: dict[int, float] = {}
    for prefix, text in (("p:", prompt[:_PROMPT_CHARS]), ("a:", answer[:_ANSWER_CHARS])):
        words = _WORD.findall(text.lower())
        grams = words if prefix == "p:" else words + [f"{x}_{y}" for x, y in itertools.pairwise(words)]
        for w in grams:
            k = zlib.crc32((prefix + w).encode()) % dims
            counts[k] = counts.get(k, 0.0) + 1.0
    if not counts:
        return {}
    values = {k: math.log1p(v) for k, v in counts.items()}
    norm = math.sqrt(sum(v * v for v in values.values()))
    return {k: v / norm for k, v in values.items()}
