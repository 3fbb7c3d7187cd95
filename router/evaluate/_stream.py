"""Labelled sets read as a stream: each line is parsed, scored and reduced to the tiers asked for, so
memory holds a few numbers a row, whatever the number of models in the file (and rows are parsed
and scored on every core)."""

from __future__ import annotations

import json
import os
import signal
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from classifiers import Classifier, DataError, iter_lines, parse_row

CHUNK = 4000  # lines a worker parses and scores at a time
Prices = Mapping[str, tuple[Decimal, Decimal]]


@dataclass
class Gathered:
    """What evaluation needs of a set: per usable row its score, per-tier quality and cost, and task."""

    tiers: list[str]
    scores: list[float] = field(default_factory=list)
    quality: list[list[float]] = field(default_factory=list)
    cost: list[list[float | None]] = field(default_factory=list)
    tasks: list[str] = field(default_factory=list)
    rows: int = 0
    missing: Counter[str] = field(default_factory=Counter)


def _chars(messages: Any) -> int:
    return sum(len(str(m.get("content", ""))) for m in messages if isinstance(m, dict))


def _cost(out: Mapping[str, Any], model: str, chars: int, prices: Prices) -> float | None:
    """cost_usd, else tokens x price, else text length (4 characters a token) x price; None if unpriced."""
    if out.get("cost_usd") is not None:
        return float(out["cost_usd"])
    if model not in prices:
        return None
    p_in, p_out = prices[model]
    t_in = out["tokens_in"] if out.get("tokens_in") is not None else chars // 4
    t_out = out["tokens_out"] if out.get("tokens_out") is not None else len(out.get("response") or "") // 4
    return float(p_in * t_in + p_out * t_out)


_JOB: tuple[Classifier, list[str], Prices, str | None, bool] | None = None  # what forked workers inherit


def _chunk(lines: list[tuple[str, int, str]]) -> Gathered:
    """Parse, check and score one chunk of (file, line number, text)."""
    assert _JOB is not None
    classifier, tiers, prices, split, drop_contaminated = _JOB
    out = Gathered(list(tiers))
    batch = []
    for path, lineno, text in lines:
        try:
            obj = json.loads(text)
            if not isinstance(obj, dict):
                raise ValueError("a line must be a JSON object")
            row = parse_row({**obj, "outcomes": {k: v for k, v in (obj.get("outcomes") or {}).items() if k in tiers} or obj.get("outcomes")})
        except ValueError as exc:
            raise DataError(f"{path}:{lineno}: {exc}") from None
        if (split is not None and row.split != split) or (drop_contaminated and row.contaminated):
            continue
        out.rows += 1
        absent = [t for t in tiers if t not in row.outcomes]
        if absent:
            out.missing.update(absent)
            continue
        raw = obj["outcomes"]
        chars = _chars(row.messages)
        out.quality.append([row.outcomes[t].quality for t in tiers])
        out.cost.append([_cost(raw[t], t, chars, prices) for t in tiers])
        out.tasks.append(row.task or "(none)")
        batch.append(row.messages)
    out.scores = list(classifier.score_batch(batch))
    return out


def _lines(paths: Sequence[str | os.PathLike[str]]) -> Iterator[list[tuple[str, int, str]]]:
    chunk: list[tuple[str, int, str]] = []
    for p in paths:
        for lineno, line in iter_lines(p):
            chunk.append((str(p), lineno, line))
            if len(chunk) >= CHUNK:
                yield chunk
                chunk = []
    if chunk:
        yield chunk


def gather(
    paths: Sequence[str | os.PathLike[str]], tiers: Sequence[str], classifier: Classifier, *, prices: Prices | None = None,
    split: str | None = None, drop_contaminated: bool = False, progress: Callable[[int, int], None] | None = None,
) -> Gathered:
    """Stream JSONL labelled sets: scores, quality and cost of the rows that have every tier."""
    import multiprocessing

    global _JOB
    _JOB = (classifier, list(tiers), prices or {}, split, drop_contaminated)
    total = Gathered(list(tiers))
    workers = min(os.cpu_count() or 1, 8)
    parallel = workers > 1 and "fork" in multiprocessing.get_all_start_methods() and sum(os.path.getsize(p) for p in paths) > 20_000_000
    try:
        if parallel:
            # Workers ignore Ctrl-C: the parent stops them (the pool's exit terminates them), one message, no tracebacks.
            # Ctrl-C is held back while they fork and while the pool is torn down: one landing in a fork hook
            # or in the teardown would be swallowed ("Exception ignored") or leave workers behind.
            held = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
            try:
                with multiprocessing.get_context("fork").Pool(workers, initializer=signal.signal, initargs=(signal.SIGINT, signal.SIG_IGN)) as pool:
                    signal.pthread_sigmask(signal.SIG_SETMASK, held)  # a Ctrl-C that came meanwhile is raised here: inside
                    try:
                        for part in pool.imap(_chunk, _lines(paths)):
                            _add(total, part, progress)
                    finally:
                        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
            finally:
                signal.pthread_sigmask(signal.SIG_SETMASK, held)  # one that came during the teardown is raised now: after it
        else:
            for chunk in _lines(paths):
                _add(total, _chunk(chunk), progress)
    finally:
        _JOB = None
    return total


def _add(total: Gathered, part: Gathered, progress: Callable[[int, int], None] | None) -> None:
    total.scores += part.scores
    total.quality += part.quality
    total.cost += part.cost
    total.tasks += part.tasks
    total.rows += part.rows
    total.missing.update(part.missing)
    if progress:
        progress(total.rows, 0)
