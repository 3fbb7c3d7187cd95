"""The shipped prior on requests it never saw: it must order the obvious cases (tests/data/sanity_suite.py)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from classifiers import default_classifier

sys.path.insert(0, str(Path(__file__).parent / "data"))
import sanity_suite as suite


def _scores(items: list[tuple[str, str]]) -> list[float]:
    return default_classifier().score_batch([[{"role": "user", "content": text}] for _, text in items])


def auc(high: list[float], low: list[float]) -> float:
    """The chance a random item of `high` outscores one of `low` (ties count half)."""
    return sum((h > lo) + 0.5 * (h == lo) for h in high for lo in low) / (len(high) * len(low))


def test_the_suite_is_what_the_issue_asks_for() -> None:
    items = suite.TRIVIAL + suite.ORDINARY + suite.DEMANDING + suite.SHORT_DEMANDING + suite.LONG_TRIVIAL
    assert len(items) >= 150 and len(suite.SHORT_DEMANDING) + len(suite.LONG_TRIVIAL) >= 40
    assert {d for d, _ in items} == {"chat", "code", "maths", "writing", "analysis", "data"}
    assert len({t for _, t in items}) == len(items)
    # Length points the wrong way on every matched pair: each short demanding request is shorter than every long trivial one.
    assert max(len(t) for _, t in suite.SHORT_DEMANDING) < min(len(t) for _, t in suite.LONG_TRIVIAL)


def test_trivial_ordinary_and_demanding_are_ordered() -> None:
    trivial = _scores(suite.TRIVIAL + suite.LONG_TRIVIAL)
    ordinary = _scores(suite.ORDINARY)
    demanding = _scores(suite.DEMANDING + suite.SHORT_DEMANDING)
    assert auc(demanding, trivial) >= 0.95
    assert auc(demanding, ordinary) >= 0.8


def test_short_demanding_beats_long_trivial() -> None:
    assert auc(_scores(suite.SHORT_DEMANDING), _scores(suite.LONG_TRIVIAL)) >= 0.85


@pytest.mark.parametrize("hard", ["Prove Fermat's little theorem.", "Design a globally distributed rate limiter: consistency trade-offs, failure modes, pseudo-code."])
def test_the_first_tries_of_a_new_user(hard: str) -> None:
    easy = _scores([("chat", "hi"), ("data", "Please sort these 20 names alphabetically: " + ", ".join(["Ann", "Bo", "Cy", "Di"] * 5))])
    assert min(_scores([("x", hard)])) > max(easy)
