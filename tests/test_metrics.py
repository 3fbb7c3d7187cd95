from __future__ import annotations

import random

import pytest

from router.evaluate import apgr, cpt, napgr, oracle_scores, strong_share_curve


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


def _three_tier(n: int, seed: int) -> tuple[list[float], list[list[float]], list[list[float]]]:
    """Prompts of hidden difficulty d: harder prompts defeat cheaper tiers more often."""
    rng = random.Random(seed)
    hidden, quality = [], []
    for _ in range(n):
        d = rng.random()
        hidden.append(d)
        quality.append([float(rng.random() > d * 1.2), float(rng.random() > d * 0.8), float(rng.random() > d * 0.3)])
    return hidden, quality, [[0.1, 0.3, 1.0]] * n


def test_napgr_hand_computed_two_tiers() -> None:
    # Strong call share as cost: weak .25, strong .75; a perfect order climbs to .75 at share .5 -> hull
    # (0,.25) (.5,.75) (1,.75): mean .625, normalised (.625 - .25) / .5 = .75. Random: the chord, 0.5.
    q = [[1.0, 1.0], [0.0, 1.0], [0.0, 1.0], [0.0, 0.0]]
    c = [[0.0, 1.0]] * 4
    res = napgr([0.0, 0.9, 0.8, 0.1], q, c, rounds=0)
    assert res.napgr["router"] == pytest.approx(0.75)
    assert res.random == pytest.approx(0.5)
    assert res.oracle == pytest.approx(0.75)
    assert res.gap_closed["router"] == pytest.approx(1.0)


def test_napgr_orders_scorers_and_pairs_their_intervals() -> None:
    hidden, quality, cost = _three_tier(3000, 1)
    rng = random.Random(2)
    noisy = [d + rng.gauss(0, 0.3) for d in hidden]
    blind = [rng.random() for _ in hidden]
    res = napgr({"noisy": noisy, "blind": blind, "oracle-like": hidden}, quality, cost, rounds=200)
    assert res.random < res.napgr["noisy"] < res.napgr["oracle-like"] <= res.oracle + 1e-9
    assert res.gap_closed["blind"] == pytest.approx(0.0, abs=0.05)  # knowing nothing closes nothing
    lo, hi = res.ci95["noisy - blind"]
    assert 0 < lo < res.napgr["noisy"] - res.napgr["blind"] < hi
    assert res.ci95["noisy gap"][0] > 0.05


def test_napgr_refuses_what_it_cannot_measure() -> None:
    with pytest.raises(ValueError, match="not better"):
        napgr([0.1, 0.2], [[1.0, 0.0], [1.0, 1.0]], [[0.0, 1.0]] * 2, rounds=0)
    with pytest.raises(ValueError, match="a score per row"):
        napgr([0.1], [[0.0, 1.0], [0.0, 1.0]], [[0.0, 1.0]] * 2, rounds=0)
    assert oracle_scores([[1.0, 1.0, 1.0], [0.0, 1.0, 1.0], [0.0, 0.0, 1.0]])[0] < 1 <= oracle_scores([[0.0, 1.0, 1.0]])[0] < 2


def test_the_oracle_bounds_every_router_on_graded_quality() -> None:
    """The per-prompt Lagrangian oracle is an upper bound: no scorer, hindsight ones included, beats it."""
    import random

    rng = random.Random(5)
    quality = [[rng.random() * 0.6, rng.random() * 0.8, rng.random()] for _ in range(400)]
    cost = [[0.001 * rng.uniform(0.5, 2), 0.01 * rng.uniform(0.5, 2), 0.1 * rng.uniform(0.5, 2)] for _ in range(400)]
    scorers = {"cheapest-best": oracle_scores(quality), "gain": [q[2] - q[0] for q in quality],
               "gain per cost": [(q[2] - q[0]) / (c[2] - c[0]) for q, c in zip(quality, cost, strict=True)]}
    result = napgr(scorers, quality, cost, rounds=0)
    assert all(result.oracle >= v - 1e-9 for v in result.napgr.values()), (result.oracle, result.napgr)
    assert result.oracle > result.napgr["cheapest-best"] + 0.01  # the old oracle was no bound on graded rows


def test_a_cascade_with_a_perfect_answer_check_reaches_the_oracle_and_shuffled_checks_do_not() -> None:
    import random

    from router.evaluate import cascade_napgr

    rng = random.Random(2)
    small = [float(rng.random() < 0.6) for _ in range(300)]
    quality = [[s, 1.0] for s in small]
    cost = [[0.0, 1.0]] * 300  # RouteLLM's convention: a strong call costs 1
    prompt = [rng.random() for _ in range(300)]  # the prompt tells nothing
    res = cascade_napgr(prompt, [[s, None] for s in small], quality, cost, rounds=50)
    assert res.gap_closed["cascade"] > 0.95  # escalating exactly the wrong small answers is the oracle here
    assert abs(res.gap_closed["prompt"]) < 0.2 and abs(res.gap_closed["shuffled"]) < 0.2
    low, _ = res.ci95["cascade - shuffled"]
    assert low > 0.1  # the paired interval of the difference is well above 0
