"""Feature extraction: words of the request plus a few structural signals of difficulty.

Everything here is plain Python and `re` (C speed), so a request is featurised in microseconds.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

from classifiers._text import split_turns

_WORD = re.compile(r"[a-z][a-z0-9']*|\d+")
_CODE = re.compile(r"```|\bdef |\bclass |\breturn\b|\bimport |;\s*$|\{|\}|=>|\bfunction\b|#include", re.M)
_MATH = re.compile(r"\\frac|\\sum|\\int|\^|\$|\bsqrt\b|\d\s*[-+*/=<>]\s*\d|\bintegral\b|\bderivative\b|\bprove\b")
_NUMBER = re.compile(r"\d+(?:\.\d+)?")
_CHOICE = re.compile(r"^\s*(?:\(?[A-Da-d][).:]|[A-D]\s*-)\s+\S", re.M)
_CONSTRAINT = re.compile(
    r"\b(?:must|should|exactly|at least|at most|no more than|step by step|explain|justify|prove|"
    r"derive|analy[sz]e|compare|design|implement|optimi[sz]e|why)\b"
)

# Names of the dense features, in the order dense() returns them; saved with the weights.
DENSE_NAMES = (
    "log_words_last",
    "log_chars_context",
    "code",
    "math",
    "numbers",
    "questions",
    "constraints",
    "choices",
    "non_ascii",
    "turns",
    "has_system",
)


def words(text: str) -> list[str]:
    """Lower-cased word tokens."""
    return _WORD.findall(text.lower())


def dense(last: str, context_chars: int, n_user: int, has_system: bool) -> list[float]:
    """Structural features of the last user turn (see DENSE_NAMES)."""
    n_words = last.count(" ") + 1 if last else 0
    n_chars = max(len(last), 1)
    non_ascii = sum(1 for ch in last[:2000] if ord(ch) > 127) / min(n_chars, 2000)
    return [
        math.log1p(n_words),
        math.log1p(context_chars),
        min(len(_CODE.findall(last)), 20) / 5.0,
        min(len(_MATH.findall(last)), 20) / 5.0,
        min(len(_NUMBER.findall(last)), 50) / 10.0,
        min(last.count("?"), 10) / 2.0,
        min(len(_CONSTRAINT.findall(last.lower())), 10) / 2.0,
        1.0 if len(_CHOICE.findall(last)) >= 3 else 0.0,
        non_ascii,
        math.log1p(max(n_user - 1, 0)),
        1.0 if has_system else 0.0,
    ]


def featurize(messages: Sequence[Mapping[str, Any]]) -> tuple[set[str], list[float]]:
    """(set of word features, dense features) of one request.

    The last user turn carries most weight: its words are features as they are; words of the
    system prompt and earlier turns get a prefix so the model can weigh them separately.
    """
    last, earlier, system, n_user = split_turns(messages)
    toks = set(words(last))
    if earlier:
        toks.update("~" + w for w in words(earlier[-2000:]))
    if system:
        toks.update("^" + w for w in words(system[:2000]))
    context_chars = len(last) + len(earlier) + len(system)
    return toks, dense(last, context_chars, n_user, bool(system))
