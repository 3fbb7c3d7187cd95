"""Feature extraction: words of the request plus a few structural signals of difficulty.

Everything here is plain Python and `re` (C speed), so a request is featurised in microseconds.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

from classifiers._text import split_turns

# Every ASCII character that is not a letter, digit or apostrophe splits words; str.translate
# and str.split run in C, several times faster than a findall over the text.
_SPLIT = str.maketrans({c: " " for c in map(chr, range(128)) if not (c.isalnum() or c == "'")})
_ARITH = re.compile(r"\d\s*[-+*/=<>^]\s*\d")
_CHOICE = re.compile(r"^\s*(?:\(?[A-Da-d][).:]|[A-D]\s*-)\s+\S", re.M)
# Substring counts (str.count runs in C) stand in for slower alternation regexes.
# Marks that are words are found in the word set (one C-level intersection), the rest by str.count.
_CODE_MARKS = ("```", "{", "}", "=>", ";\n", "()")
_CODE_WORDS = frozenset({"def", "class", "return", "import", "function", "include", "const", "elif", "println"})
_MATH_MARKS = ("^", "$")
_LATEX_MARKS = ("\\frac", "\\sum", "\\int", "\\sqrt")
_MATH_WORDS = frozenset({"sqrt", "integral", "derivative", "prove", "equation", "theorem", "polynomial"})
_CONSTRAINT_WORDS = frozenset(
    "must should exactly explain justify prove derive analyze analyse compare design implement optimize optimise why "
    "at_least at_most step_by no_more".split()
)

_WINDOW = 6000  # characters of the last turn whose words are features

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
    "open_log_words",
    "open_numbers",
)


def words(text: str) -> list[str]:
    """Lower-cased word tokens."""
    return text.lower().translate(_SPLIT).split()


def dense(last: str, ws: list[str], word_set: set[str], context_chars: int, n_user: int, has_system: bool) -> list[float]:
    """Structural features of the last user turn (see DENSE_NAMES), from its text and words."""
    n_words = last.count(" ") + 1 if last else 0
    head = last[:2000]
    non_ascii = 0.0 if head.isascii() else (len(head.encode()) - len(head)) / (2 * max(len(head), 1))
    code = sum(map(head.count, _CODE_MARKS)) + len(_CODE_WORDS.intersection(word_set))
    digits = sum(map(str.isdigit, ws))
    maths = sum(map(head.count, _MATH_MARKS)) + len(_MATH_WORDS.intersection(word_set))
    if "\\" in head:
        maths += sum(map(head.count, _LATEX_MARKS))
    if digits > 1:  # the arithmetic pattern needs two numbers: skip the scan otherwise
        maths += len(_ARITH.findall(head))
    constraints = len(_CONSTRAINT_WORDS.intersection(word_set))
    choices = 1.0 if "\n" in head and len(_CHOICE.findall(head)) >= 3 else 0.0
    numbers = min(digits, 50) / 10.0
    open_ended = 1.0 - choices  # length and numbers mean other things in open questions than in quizzes
    return [
        math.log1p(n_words),
        math.log1p(context_chars),
        min(code, 20) / 5.0,
        min(maths, 20) / 5.0,
        numbers,
        min(last.count("?"), 10) / 2.0,
        min(constraints, 10) / 2.0,
        choices,
        non_ascii,
        math.log1p(max(n_user - 1, 0)),
        1.0 if has_system else 0.0,
        open_ended * math.log1p(n_words),
        open_ended * numbers,
    ]


def featurize(messages: Sequence[Mapping[str, Any]]) -> tuple[set[str], list[float]]:
    """(set of word features, dense features) of one request.

    The last user turn carries most weight: its words are features as they are; words of the
    system prompt and earlier turns get a prefix so the model can weigh them separately.
    """
    last, earlier, system, n_user = split_turns(messages)
    # Long turns are read at their start and end (where a few-shot prompt puts its question):
    # the cost per request stays bounded whatever the size of the request.
    ws = words(last if len(last) <= _WINDOW else f"{last[:1000]} {last[-(_WINDOW - 1000):]}")
    toks = set(map("_".join, zip(ws, ws[1:])))  # bigrams: "prove_that", "how_many", "step_by"
    toks.update(ws)
    if earlier:
        toks.update("~" + w for w in words(earlier[-2000:]))
    if system:
        toks.update("^" + w for w in words(system[:2000]))
    context_chars = len(last) + len(earlier) + len(system)
    return toks, dense(last, ws, toks, context_chars, n_user, bool(system))  # prefixed words match no mark
