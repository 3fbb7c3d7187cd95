"""Classifiers behind one protocol: a trained linear model (plain-Python inference) and a heuristic."""

from __future__ import annotations

import json
import math
import os
import zlib
from collections.abc import Mapping, Sequence
from itertools import repeat
from operator import mul
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from classifiers._features import DENSE_NAMES, featurize

Messages = Sequence[Mapping[str, Any]]
FORMAT = "tierwise-linear"
VERSION = 3  # 3: mechanical-request cue and length outside it; 2: word pairs from the ends of the turn only


class WeightsError(ValueError):
    """A weights file is missing, corrupt, or does not match this version of the features."""


@runtime_checkable
class Classifier(Protocol):
    """Scores a request with the chance that the cheapest tier's answer is inadequate."""

    def score(self, messages: Messages) -> float: ...

    def score_batch(self, batch: Sequence[Messages]) -> list[float]: ...


def _sigmoid(x: float) -> float:
    if x >= 0:
        return 1.0 / (1.0 + math.exp(-x))
    e = math.exp(x)
    return e / (1.0 + e)


class HeuristicClassifier:
    """Zero-training fallback: longer, code-, maths- and constraint-heavy requests score higher."""

    # Weights on DENSE_NAMES chosen by hand; they need no data, only a sensible order.
    _WEIGHTS = (0.3, 0.05, 0.5, 0.6, 0.1, 0.15, 0.45, -0.2, 0.3, 0.2, 0.1, 0.0, 0.0, -1.0, 1.0, 0.25)
    _BIAS = -2.6

    def score(self, messages: Messages) -> float:
        _, feats = featurize(messages)
        return _sigmoid(self._BIAS + sum(w * f for w, f in zip(self._WEIGHTS, feats)))

    def score_batch(self, batch: Sequence[Messages]) -> list[float]:
        return [self.score(m) for m in batch]


class RandomClassifier:
    """A baseline that knows nothing: a uniform score from a hash of the request (same request, same score)."""

    def __init__(self, seed: int = 0) -> None:
        self.seed = seed

    def score(self, messages: Messages) -> float:
        text = json.dumps([m.get("content") for m in messages], sort_keys=True, default=str)
        return zlib.crc32(text.encode(), self.seed) / 2**32

    def score_batch(self, batch: Sequence[Messages]) -> list[float]:
        return [self.score(m) for m in batch]


class LinearClassifier:
    """Logistic regression over word and structural features, applied without scikit-learn."""

    def __init__(
        self,
        vocab: dict[str, float],
        dense_weights: Sequence[float],
        dense_mean: Sequence[float],
        dense_scale: Sequence[float],
        bias: float,
        calibration: tuple[float, float] = (1.0, 0.0),
        meta: Mapping[str, Any] | None = None,
    ) -> None:
        self.vocab = vocab
        self.dense_weights = list(dense_weights)
        self.dense_mean = list(dense_mean)
        self.dense_scale = list(dense_scale)
        self.bias = float(bias)
        self.calibration = (float(calibration[0]), float(calibration[1]))
        self.meta = dict(meta or {})
        # Folding the standardisation into the weights keeps the hot path to one dot product.
        self._dw = [w / s for w, s in zip(self.dense_weights, self.dense_scale)]
        self._b = self.bias - sum(w * m / s for w, m, s in zip(self.dense_weights, self.dense_mean, self.dense_scale))

    def logit(self, messages: Messages) -> float:
        return self.logit_features(*featurize(messages))

    def logit_features(self, toks: set[str], feats: Sequence[float]) -> float:
        """The logit of featurised input (see classifiers.featurize)."""
        # map() and sum() run in C: no Python loop over the request's words.
        words: float = sum(map(self.vocab.get, toks, repeat(0.0))) / math.sqrt(len(toks)) if toks else 0.0
        dense: float = sum(map(mul, self._dw, feats))
        return self._b + words + dense

    def score(self, messages: Messages) -> float:
        a, b = self.calibration
        return _sigmoid(a * self.logit(messages) + b)

    def score_features(self, toks: set[str], feats: Sequence[float]) -> float:
        """The score of featurised input: what a refit uses on labels stored without their prompt."""
        a, b = self.calibration
        return _sigmoid(a * self.logit_features(toks, feats) + b)

    def score_batch(self, batch: Sequence[Messages]) -> list[float]:
        return [self.score(m) for m in batch]

    # ---- persistence: JSON only, so loading a file can never execute code --------------------
    def to_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "version": VERSION,
            "dense_names": list(DENSE_NAMES),
            "dense_weights": self.dense_weights,
            "dense_mean": self.dense_mean,
            "dense_scale": self.dense_scale,
            "bias": self.bias,
            "calibration": list(self.calibration),
            "meta": self.meta,
            "vocab": self.vocab,
        }

    def save(self, path: str | os.PathLike[str]) -> Path:
        p = Path(path)
        p.write_text(json.dumps(self.to_dict(), separators=(",", ":"), sort_keys=False), encoding="utf-8")
        return p

    @classmethod
    def from_dict(cls, data: Any, source: str = "weights") -> LinearClassifier:
        def bad(why: str) -> WeightsError:
            return WeightsError(f"{source}: {why}")

        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise bad(f"not a tierwise weights file (format must be {FORMAT!r})")
        if data.get("version") != VERSION:
            raise bad(
                f"weights version {data.get('version')!r} is not supported (expected {VERSION}): "
                "retrain them with this version (`tierwise train`)"
            )
        if data.get("dense_names") != list(DENSE_NAMES):
            raise bad("the weights were trained on other features than this version computes")
        n = len(DENSE_NAMES)
        arrays: dict[str, list[float]] = {}
        for key in ("dense_weights", "dense_mean", "dense_scale"):
            arr = data.get(key)
            if not isinstance(arr, list) or len(arr) != n or not all(_finite(x) for x in arr):
                raise bad(f"{key} must be a list of {n} finite numbers")
            arrays[key] = [float(x) for x in arr]
        if any(x <= 0 for x in arrays["dense_scale"]):
            raise bad("dense_scale must be positive")
        cal = data.get("calibration")
        if not isinstance(cal, list) or len(cal) != 2 or not all(_finite(x) for x in cal):
            raise bad("calibration must be two finite numbers")
        if not _finite(data.get("bias")):
            raise bad("bias must be a finite number")
        vocab = data.get("vocab")
        if not isinstance(vocab, dict) or not all(isinstance(k, str) and _finite(v) for k, v in vocab.items()):
            raise bad("vocab must map words to finite numbers")
        meta = data.get("meta", {})
        return cls(
            {k: float(v) for k, v in vocab.items()},
            arrays["dense_weights"],
            arrays["dense_mean"],
            arrays["dense_scale"],
            bias=float(data["bias"]),
            calibration=(float(cal[0]), float(cal[1])),
            meta=meta if isinstance(meta, dict) else {},
        )


def _finite(x: Any) -> bool:
    """A finite number a float can hold (an integer of 400 digits is not)."""
    if not isinstance(x, (int, float)) or isinstance(x, bool):
        return False
    try:
        return math.isfinite(x) and abs(float(x)) < 1e300
    except OverflowError:
        return False


def load(path: str | os.PathLike[str]) -> LinearClassifier:
    """Load weights saved by `save()`; a missing, corrupt or mismatched file raises WeightsError."""
    p = Path(path)
    try:
        raw = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise WeightsError(f"cannot read weights file {p}: {exc}") from None
    try:
        data = json.loads(raw)
    except ValueError as exc:
        raise WeightsError(f"{p}: not valid JSON ({exc})") from None
    return LinearClassifier.from_dict(data, source=str(p))
