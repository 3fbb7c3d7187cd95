"""Feature extraction: words of the request plus a few structural signals of difficulty.

Everything here is plain Python over C-level string operations (translate, split, count, set
algebra), so a request is featurised in tens of microseconds, with no Python loop over its words.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from functools import lru_cache
from itertools import pairwise
from typing import Any

from classifiers._text import split_turns

# Every ASCII character that is not a letter, digit or apostrophe splits words. The byte table
# serves text that is not pure ASCII: str.translate leaves its fast path on the first non-ASCII
# character (about 6x slower), bytes.translate never does, and in UTF-8 a byte under 128 is
# always a whole ASCII character, so multi-byte letters pass through untouched.
# The ASCII table lower-cases too, which saves a pass over the text.
_SPLIT = str.maketrans({c: c.lower() if c.isalnum() or c == "'" else " " for c in map(chr, range(128))})
_BSPLIT = bytes(b if (chr(b).isalnum() or b == ord("'") or b >= 128) else 32 for b in range(256))
# Typographic marks that would otherwise stick to words ("“hello”", "it’s").
_TYPOGRAPHIC = (("\u2019", "'"), ("\u2018", "'"), ("\u201c", " "), ("\u201d", " "), ("\u2014", " "), ("\u2013", " "))
# Structural marks are counted on the request's punctuation alone: deleting letters, spaces and
# non-ASCII bytes leaves a short byte string, so each count below costs next to nothing.
_DROP = bytes(b for b in range(256) if chr(b).isalpha() or b in b" \t\r" or b >= 128)
_DIGITS = b"0123456789"
_ARITH = re.compile(rb"\d[-+*/=<>^]\d")  # "3+4", "x^2=9" once letters and spaces are gone
_CHOICE = re.compile(r"^\s*(?:\(?[A-Da-d][).:]|[A-D]\s*-)\s+\S", re.MULTILINE)
_CODE_MARKS = (b"```", b"{", b"}", b"=>", b";\n", b"()")
_CODE_WORDS = frozenset({"def", "class", "return", "import", "function", "include", "const", "elif", "println"})
_MATH_MARKS = (b"^", b"$", b"\\")
_MATH_WORDS = frozenset({"sqrt", "integral", "derivative", "prove", "equation", "theorem", "polynomial", "frac"})
_CONSTRAINT_WORDS = frozenset(
    ["must", "should", "exactly", "explain", "justify", "prove", "derive", "analyze", "analyse", "compare", "design", "implement", "optimize", "optimise", "why", "at_least", "at_most", "step_by", "no_more"]
)
# Words that, among the instruction's first or last words, mark a mechanical request (reorder, reformat,
# translate, greet, thank): its length is the material to transform, not a sign of difficulty.
_TRANSFORM_WORDS = frozenset(
    ["sort", "sorted", "alphabetically", "alphabetical", "translate", "format", "reformat", "convert", "uppercase", "lowercase", "capitalise", "capitalize", "capitalisation", "capitalization", "rename", "indent", "duplicate", "duplicates", "bullet", "bulleted", "bullets", "spell", "typo", "typos", "punctuation", "thanks", "thank", "hello", "hi", "hey", "bye", "cheers"]
)
# Words that, among the instruction's first or last words, ask for real reasoning however short the
# request is ("Prove Fermat's little theorem."): such a request counts as long for the length signal.
_DEMANDING_WORDS = frozenset(
    ["prove", "proof", "derive", "derivation", "implement", "design", "analyse", "analyze", "optimise", "optimize", "theorem", "rigorous", "rigorously", "formally", "architect", "architecture"]
)
_LONG = math.log1p(200)  # the length a demanding request counts as, at least

_WINDOW = 6000  # characters of the last turn whose words are features
_EDGE = 24  # word pairs are taken from the first and last this many words, where instructions sit

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
    "transform",
    "demanding",
    "plain_log_words",
)


def words(text: str) -> list[str]:
    """Lower-cased word tokens."""
    if text.isascii():
        return text.translate(_SPLIT).split()
    low = text.lower()
    for mark, plain in _TYPOGRAPHIC:
        if mark in low:
            low = low.replace(mark, plain)
    return low.encode("utf-8", "replace").translate(_BSPLIT).decode("utf-8", "replace").split()


def dense(last: str, ws: list[str], word_set: set[str], context_chars: int, n_user: int, has_system: bool, cue: int = 0) -> list[float]:
    """Structural features of the last user turn (see DENSE_NAMES), from its text and words."""
    n_words = len(ws)
    head = last[:2000]
    ascii_head = head.isascii()
    raw = head.encode("utf-8", "replace")
    non_ascii = 0.0 if ascii_head else (len(raw) - len(head)) / (2 * max(len(head), 1))
    marks = raw.translate(None, _DROP)
    code = sum(map(marks.count, _CODE_MARKS)) + len(_CODE_WORDS.intersection(word_set))
    # Distinct numbers (a set is shorter than the word list), looked for only when a digit is there.
    digits = sum(map(str.isdigit, word_set)) if len(marks.translate(None, _DIGITS)) < len(marks) else 0
    maths = sum(map(marks.count, _MATH_MARKS)) + len(_MATH_WORDS.intersection(word_set))
    if digits > 1:  # arithmetic needs two numbers: skip the scan otherwise
        maths += len(_ARITH.findall(marks))
    constraints = len(_CONSTRAINT_WORDS.intersection(word_set))
    choices = 1.0 if b"\n" in marks and len(_CHOICE.findall(head)) >= 3 else 0.0
    numbers = min(digits, 50) / 10.0
    open_ended = 1.0 - choices  # length and numbers mean other things in open questions than in quizzes
    log_words = math.log1p(n_words)
    return [
        log_words,
        math.log1p(context_chars),
        min(code, 20) / 5.0,
        min(maths, 20) / 5.0,
        numbers,
        min(marks.count(b"?"), 10) / 2.0,
        min(constraints, 10) / 2.0,
        choices,
        non_ascii,
        math.log1p(max(n_user - 1, 0)),
        1.0 if has_system else 0.0,
        open_ended * log_words,
        open_ended * numbers,
        1.0 if cue < 0 else 0.0,
        1.0 if cue > 0 else 0.0,
        # Length where length means difficulty: not for mechanical requests, at least "long" for demanding ones.
        0.0 if cue < 0 else max(log_words, _LONG) if cue > 0 else log_words,
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
    toks = set(ws)
    # Word pairs ("prove_that", "how_many", "step_by") from the two ends only: measured on RouteLLM,
    # pairs from the middle of long prompts added nothing and cost most of the time.
    head, tail = ws[:_EDGE], ws[-_EDGE:] if len(ws) > 2 * _EDGE else ws[_EDGE:]
    toks.update(map("_".join, pairwise(head)))
    toks.update(map("_".join, pairwise(tail)))
    dense_feats = dense(last, ws, toks, len(last) + len(earlier) + len(system), n_user, bool(system), _cue(head, tail))
    if earlier:  # prefixed words are added after dense(): they must match no mark
        toks.update("~" + w for w in words(earlier[-2000:]))
    if system:
        toks.update(_system_words(system[:2000]))
    return toks, dense_feats


def _cue(head: list[str], tail: list[str]) -> int:
    """+1: the instruction asks for reasoning; -1: for a mechanical change; 0: neither (reasoning wins a tie)."""
    if not _DEMANDING_WORDS.isdisjoint(head) or not _DEMANDING_WORDS.isdisjoint(tail):
        return 1
    return -1 if not _TRANSFORM_WORDS.isdisjoint(head) or not _TRANSFORM_WORDS.isdisjoint(tail) else 0


@lru_cache(maxsize=256)
def _system_words(system: str) -> frozenset[str]:
    # An app sends the same system prompt with every request: its words are worked out once.
    return frozenset("^" + w for w in words(system))
