"""Local complexity classifiers: score a request with the chance the cheapest tier fails it.

    from classifiers import default_classifier, train, load
    default_classifier().score(messages) -> float in [0, 1]
"""

from __future__ import annotations

from functools import lru_cache
from importlib import resources
from typing import TYPE_CHECKING, Any

from classifiers._data import DataError, Outcome, Row, iter_lines, iter_prompts, iter_rows, iter_wide_rows, load_rows, parse_row
from classifiers._features import featurize, words
from classifiers._model import Classifier, HeuristicClassifier, LinearClassifier, RandomClassifier, WeightsError, load

if TYPE_CHECKING:
    from classifiers._train import train as _train_fn

__all__ = [
    "Classifier",
    "DataError",
    "HeuristicClassifier",
    "LinearClassifier",
    "Outcome",
    "RandomClassifier",
    "Row",
    "WeightsError",
    "default_classifier",
    "default_weights_path",
    "featurize",
    "iter_lines",
    "iter_prompts",
    "iter_rows",
    "iter_wide_rows",
    "load",
    "load_rows",
    "parse_row",
    "row_features",
    "train",
    "words",
]


def default_weights_path() -> str:
    """Path of the weights that ship inside the package."""
    return str(resources.files("classifiers") / "weights" / "default.json")


@lru_cache(maxsize=1)
def default_classifier() -> LinearClassifier:
    """The shipped classifier, loaded once per process."""
    return load(default_weights_path())


def row_features(row: Row) -> tuple[set[str], list[float]]:
    """A labelled row's features: those stored with it (a label kept without its prompt), else its messages'."""
    from classifiers._train import row_features as _row_features

    return _row_features(row)


def train(*args: Any, **kwargs: Any) -> LinearClassifier:
    """Train on labelled prompt sets; see classifiers._train.train (imports scikit-learn lazily)."""
    from classifiers._train import train as _train

    return _train(*args, **kwargs)


if TYPE_CHECKING:
    train = _train_fn
