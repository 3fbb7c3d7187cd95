"""Arguments several commands read the same way."""

from __future__ import annotations


def _tiers(text: str) -> list[tuple[str, str]]:
    pairs = [part.split("=", 1) for part in text.split(",") if part.strip()]
    if not pairs or any(len(p) != 2 or not p[0].strip() or not p[1].strip() for p in pairs):
        raise ValueError(f"--tiers must look like small=MODEL_A,flash=MODEL_B,frontier=MODEL_C, got {text!r}")
    return [(a.strip(), b.strip()) for a, b in pairs]
