from __future__ import annotations

import random

import pytest

from router.evaluate import apgr, cpt, strong_share_curve


def test_hand_computed_apgr() -> None:
    # weak right on 0 and 1, strong right on 1 and 2: only prompt 2 gains from the strong model.
    q_weak, q_strong = [1, 1, 0, 0], [0, 1, 1, 0]
    perfect = [0.1, 0.2, 0.9, 0.3]
    # Curve: (0, .5) (.25, .75) (.5, .75) (.75, .75) (1, .5); PGR relative to weak .5, strong .5 -> undefined
    with pytest.raises(ValueError):
        apgr(perfect, q_weak, q_strong)
    q_weak, q_strong = [1, 0, 0, 0], [1, 1, 1, 0]
    scores = [0.0, 0.9, 0.8, 0.1]
    # quality at 0/4 .. 4/4 strong calls: .25 .5 .75 .75 .75, weak .25 strong .75 -> PGR 0 .5 1 1 1
    assert strong_share_curve(scores, q_weak, q_strong)[2] == (0.5, 0.75)
    assert apgr(scores, q_weak, q_strong) == pytest.approx((0.25 + 0.75 + 1 + 1) / 4)
    assert cpt(scores, q_weak, q_strong, 0.5) == pytest.approx(0.25)


def test_ties_and_random_give_half() -> None:
    rng = random.Random(0)
    q_weak = [rng.random() < 0.5 for _ in range(4000)]
    q_strong = [rng.random() < 0.8 for _ in range(4000)]
    assert apgr([0.5] * 4000, q_weak, q_strong) == pytest.approx(0.5)
    assert apgr([rng.random() for _ in range(4000)], q_weak, q_strong) == pytest.approx(0.5, abs=0.05)
    assert cpt([0.5] * 4000, q_weak, q_strong, 0.5) == pytest.approx(0.5)
