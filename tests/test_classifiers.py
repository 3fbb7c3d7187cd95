"""Classifiers: the shipped model, training, safe weights files, odd inputs."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from classifiers import (
    DataError,
    HeuristicClassifier,
    LinearClassifier,
    WeightsError,
    default_classifier,
    iter_rows,
    load,
    train,
)


def user(text: object) -> list[dict]:
    return [{"role": "user", "content": text}]


def test_default_scores_are_probabilities_and_deterministic() -> None:
    clf = default_classifier()
    assert clf is default_classifier()  # loaded once
    prompts = ["hi", "What is the capital of France?", "Prove that there are infinitely many primes. " * 5]
    scores = [clf.score(user(p)) for p in prompts]
    assert all(0.0 <= s <= 1.0 for s in scores)
    assert scores == [clf.score(user(p)) for p in prompts] == clf.score_batch([user(p) for p in prompts])


def test_default_ranks_demanding_requests_above_trivial_ones() -> None:
    clf = default_classifier()
    easy = ["Hi there!", "Thanks, that's all.", "What is the capital of France?",
            "Translate 'good morning' into Spanish.", "Format this as a list: apples, pears, plums."]
    hard = ["Prove that there are infinitely many primes, then derive the density of primes below n and justify each step.",
            ("Design and implement a lock-free concurrent hash map in C++ with resizing; explain the memory-ordering "
             "choices and prove linearizability."),
            "Let f(x) = x^3 - 6x^2 + 11x - 6. Find all real roots, then compute the integral of f from 0 to 3.",
            ("Analyse the trade-offs between optimistic and pessimistic concurrency control in distributed databases "
             "and justify which you would choose for a payments ledger."),
            "Write a Python function that parses nested JSON with comments in constant memory, with property-based tests."]
    e, h = [clf.score(user(t)) for t in easy], [clf.score(user(t)) for t in hard]
    assert sum(h) / len(h) > sum(e) / len(e) + 0.03
    assert e[0] < min(h)  # a greeting is below every demanding request


def test_heuristic_orders_trivial_below_demanding() -> None:
    h = HeuristicClassifier()
    easy = h.score(user("hello!"))
    hard = h.score(user("Prove step by step that f(x) = x^3 - 2x + 1 has exactly one root in [0, 1] and derive $\\int_0^1 f$. " * 3))
    assert 0 <= easy < hard <= 1


@pytest.mark.parametrize("clf", [default_classifier(), HeuristicClassifier()], ids=["linear", "heuristic"])
def test_odd_content_is_handled(clf: object) -> None:
    huge = "word " * 200_000  # 1 MB
    cases = [
        user(""),
        user(huge),
        user([{"type": "image_url", "image_url": {"url": "data:,"}}]),
        [{"role": "assistant", "content": None, "tool_calls": [{"id": "1"}]}, {"role": "tool", "content": "42"}],
        [{"role": "system", "content": "你好，世界"}, {"role": "user", "content": "Привет"}],
    ]
    for messages in cases:
        assert 0.0 <= clf.score(messages) <= 1.0  # type: ignore[attr-defined]


def _write_set(path: Path, n: int = 400, seed: int = 1) -> Path:
    """A tiny labelled set with an obvious pattern: prompts about 'integrals' defeat the weak model."""
    rng = random.Random(seed)
    lines = []
    for i in range(n):
        hard = i % 2 == 0
        topic = "evaluate the integral of" if hard else "say hello to"
        text = f"Please {topic} {rng.choice(['x', 'my friend', 'sin x', 'the team'])} number {rng.randint(0, 99)}"
        split = "dev" if i % 5 == 0 else "train"
        lines.append(json.dumps({"id": f"r{i}", "split": split, "messages": user(text), "outcomes": {
            "weak": {"quality": 0.0 if hard else 1.0}, "strong": {"quality": 1.0}}}))
    lines.append(json.dumps({"id": "t0", "split": "test", "messages": user("never trained on"), "outcomes": {"weak": {"quality": 1}}}))
    path.write_text("\n".join(lines) + "\n")
    return path


def test_training_learns_the_obvious_pattern_and_round_trips(tmp_path: Path) -> None:
    data = _write_set(tmp_path / "set.jsonl")
    clf = train([data], weak="weak", strong="strong", seed=3)
    hard = clf.score(user("Please evaluate the integral of tan x number 7"))
    easy = clf.score(user("Please say hello to my aunt number 7"))
    assert hard > 0.8 and easy < 0.2
    assert "never" not in clf.vocab  # test rows are never trained on
    again = train([data], weak="weak", strong="strong", seed=3)
    assert again.to_dict() == clf.to_dict()  # deterministic given the seed
    path = clf.save(tmp_path / "w.json")
    loaded = load(path)
    assert loaded.to_dict() == clf.to_dict()
    assert loaded.score(user("evaluate the integral")) == clf.score(user("evaluate the integral"))


def test_training_needs_both_classes(tmp_path: Path) -> None:
    path = tmp_path / "one.jsonl"
    path.write_text(json.dumps({"id": "a", "messages": user("x"), "outcomes": {"weak": {"quality": 1}}}) + "\n")
    with pytest.raises(ValueError, match="both classes"):
        train([path], weak="weak")


@pytest.mark.parametrize(
    "content",
    ["", "not json", "[1, 2]", '{"format": "pickle"}', None],
)
def test_bad_weights_files_are_rejected(tmp_path: Path, content: str | None) -> None:
    path = tmp_path / "w.json"
    if content is not None:
        path.write_text(content)
    with pytest.raises(WeightsError):
        load(path)


def test_tampered_weights_are_rejected(tmp_path: Path) -> None:
    good = default_classifier().to_dict()
    for key, value in (("dense_weights", [1.0]), ("bias", "x"), ("version", 99), ("dense_names", ["other"]),
                       ("vocab", {"a": "b"}), ("calibration", [float("nan"), 0.0]), ("dense_scale", [0.0] * 11)):
        data = {**good, key: value}
        with pytest.raises(WeightsError):
            LinearClassifier.from_dict(json.loads(json.dumps(data)))


def test_weights_of_an_older_feature_version_ask_for_retraining() -> None:
    old = {**default_classifier().to_dict(), "version": 1}
    with pytest.raises(WeightsError, match="retrain"):
        LinearClassifier.from_dict(old)


def test_words_are_the_same_on_the_ascii_and_unicode_paths() -> None:
    from classifiers import featurize, words

    text = "Janet's ducks lay 16 eggs; she sells them at $2 (each) -- HOW much?"
    # A non-ASCII character sends the text down the byte path; typographic quotes fold to ASCII.
    assert words(text + " \u00e9t\u00e9") == words(text) + ["\u00e9t\u00e9"]
    assert words("Janet\u2019s \u201cducks\u201d\u2014lay") == ["janet's", "ducks", "lay"]
    assert words("\u6771\u4eac \u00c9COLE x^2") == ["\u6771\u4eac", "\u00e9cole", "x", "2"]  # letters kept, lowered
    # The same prompt with a curly apostrophe is featurised alike, apart from the script share.
    plain, curly = featurize(user(text)), featurize(user(text.replace("'", "\u2019")))
    assert plain[0] == curly[0] and plain[1][:8] == curly[1][:8]


def test_shipped_weights_are_small_and_json(tmp_path: Path) -> None:
    from classifiers import default_weights_path

    path = Path(default_weights_path())
    assert path.stat().st_size < 5_000_000
    assert json.loads(path.read_text())["format"] == "tierwise-linear"


def test_a_rows_sampling_weight_is_read_and_defaults_to_one(tmp_path: Path) -> None:
    path = tmp_path / "s.jsonl"
    path.write_text('{"id": "a", "weight": 2, "messages": [{"role": "user", "content": "x"}], "outcomes": {"m": {"quality": 1}}}\n'
                    '{"id": "b", "messages": [{"role": "user", "content": "x"}], "outcomes": {"m": {"quality": 1}}}\n')
    assert [(r.weight, r.extra) for r in iter_rows(path)] == [(2.0, {}), (1.0, {})]


@pytest.mark.parametrize(
    ("line", "needle"),
    [
        ("not json", "Expecting value"),
        ('{"id": "a", "messages": [], "outcomes": {"m": {"quality": 1}}}', "messages"),
        ('{"id": "a", "messages": [{"role": "user", "content": "x"}], "outcomes": {"m": {"quality": 2}}}', "quality"),
        ('{"id": "a", "messages": [{"role": "user", "content": "x"}], "outcomes": {"m": {}}}', "no quality"),
        ('{"id": "a", "messages": [{"role": "user", "content": "x"}], "outcomes": {"m": {"quality": 1, "cost_usd": -1}}}', "cost_usd"),
        ('{"id": "a", "split": "holdout", "messages": [{"role": "user", "content": "x"}], "outcomes": {"m": {"quality": 1}}}', "split"),
        ('{"id": "a", "weight": 0, "messages": [{"role": "user", "content": "x"}], "outcomes": {"m": {"quality": 1}}}', "weight"),
        ('{"id": "a", "weight": "2", "messages": [{"role": "user", "content": "x"}], "outcomes": {"m": {"quality": 1}}}', "weight"),
    ],
)
def test_malformed_set_lines_name_file_and_line(tmp_path: Path, line: str, needle: str) -> None:
    path = tmp_path / "s.jsonl"
    good = '{"id": "ok", "messages": [{"role": "user", "content": "x"}], "outcomes": {"m": {"quality": 1}}}'
    path.write_text(good + "\n" + line + "\n")
    with pytest.raises(DataError) as info:
        list(iter_rows(path))
    assert f"{path}:2" in str(info.value) and needle in str(info.value)
