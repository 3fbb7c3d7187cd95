"""A learned verifier: a linear model over `_features`, its weights in JSON (never pickle).

    {"format": "tierwise-verifier", "version": 1, "hash_dims": 4096, "dense": [names],
     "coef_dense": [...], "coef_hash": [...], "intercept": x, "trained": {...}}

`score(messages, answer)` is the chance the answer is good enough (quality >= 0.5 on the sets it
was trained on). A file of another version, a missing or non-finite weight is a ConfigError at
load; a score that comes out NaN is "no signal" (None), never an error in the request path.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from router._errors import ConfigError
from router.verifier._features import DENSE, dense, hashed, prompt_text

FORMAT, VERSION = "tierwise-verifier", 1


class Verifier:
    """A loaded verifier (`load_verifier`); `score(messages, answer_text)` in [0, 1] or None."""

    def __init__(self, coef_dense: list[float], coef_hash: list[float], intercept: float, hash_dims: int,
                 trained: dict[str, Any] | None = None) -> None:
        import numpy as np

        self._dense = np.asarray(coef_dense, dtype=float)
        self._hash = np.asarray(coef_hash, dtype=float)
        self._intercept = float(intercept)
        self.hash_dims = hash_dims
        self.trained: dict[str, Any] = dict(trained or {})

    def score(self, messages: list[dict[str, Any]], answer: str) -> float | None:
        """The chance the answer is good enough; None when it cannot be scored (no text, NaN)."""
        if not isinstance(answer, str):
            return None
        try:
            prompt = prompt_text(messages)
            return self.score_features(dense(prompt, answer), hashed(prompt, answer, self.hash_dims))
        except (ValueError, TypeError, RecursionError, MemoryError, OverflowError):  # text it cannot read: no signal, never a crash
            return None

    def score_features(self, values: list[float], words: dict[int, float]) -> float | None:
        """`score` of an answer's features as `router.verifier` computes them (hashed at this verifier's
        `hash_dims`; words outside it are not read); None when they make no number."""
        z = self._intercept + float(self._dense @ values)
        z += sum(float(self._hash[k]) * v for k, v in words.items() if 0 <= k < self.hash_dims)
        if math.isnan(z):
            return None
        return 1.0 / (1.0 + math.exp(-max(-50.0, min(50.0, z))))

    def to_dict(self) -> dict[str, Any]:
        return {"format": FORMAT, "version": VERSION, "hash_dims": self.hash_dims, "dense": list(DENSE),
                "coef_dense": [float(v) for v in self._dense], "coef_hash": [float(v) for v in self._hash],
                "intercept": self._intercept, "trained": self.trained}

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict()), encoding="utf-8")


def load_verifier(path: str | Path) -> Verifier:
    """A verifier from its JSON file; a ConfigError that names the file for anything wrong in it."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read verifier {str(path)!r}: {exc}") from None
    return from_dict(data, str(path))


def from_dict(data: Any, name: str = "verifier") -> Verifier:
    """A verifier from its parsed JSON, every field checked."""
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise ConfigError(f"{name} is not a tierwise verifier file (format {FORMAT!r} expected)")
    if data.get("version") != VERSION:
        raise ConfigError(f"{name} is verifier version {data.get('version')!r}; this tierwise reads version {VERSION}: train it again "
                          "with `tierwise train-verifier`")
    dims = data.get("hash_dims")
    if not isinstance(dims, int) or isinstance(dims, bool) or not 1 <= dims <= 1 << 20:
        raise ConfigError(f"{name}: hash_dims must be an integer from 1 to {1 << 20}")
    if data.get("dense") != list(DENSE):
        raise ConfigError(f"{name}: its dense features are not this version's ({', '.join(DENSE)})")
    coef_dense, coef_hash = _numbers(data.get("coef_dense"), len(DENSE), name), _numbers(data.get("coef_hash"), dims, name)
    intercept = _numbers([data.get("intercept")], 1, name)[0]
    trained = data.get("trained") if isinstance(data.get("trained"), dict) else {}
    return Verifier(coef_dense, coef_hash, intercept, dims, trained)


def _numbers(values: Any, size: int, name: str) -> list[float]:
    if not isinstance(values, list) or len(values) != size:
        raise ConfigError(f"{name}: a weight list has the wrong length (expected {size})")
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in values):
        raise ConfigError(f"{name}: weights must be finite numbers")
    return [float(v) for v in values]
