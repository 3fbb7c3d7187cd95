"""Loader for labelled prompt sets (JSONL v1): one prompt and the outcomes of several models a line."""

from __future__ import annotations

import ast
import json
import math
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


class DataError(ValueError):
    """A labelled set is malformed; the message names the file and line."""


@dataclass(frozen=True)
class Outcome:
    """What one model did on one prompt."""

    quality: float
    cost_usd: float | None = None
    tokens_in: int | None = None
    tokens_out: int | None = None
    response: str | None = None
    latency_s: float | None = None


@dataclass(frozen=True)
class Row:
    """One labelled prompt."""

    id: str
    messages: list[dict[str, Any]]
    outcomes: dict[str, Outcome]
    source: str = ""
    task: str = ""
    split: str | None = None
    contaminated: bool = False
    extra: dict[str, Any] = field(default_factory=dict, repr=False)
    weight: float = 1.0  # a sampling weight: a row bought at half the rate of the others stands for two


def _number(value: Any, name: str, *, integer: bool = False) -> Any:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if not ok or value < 0 or (integer and int(value) != value):
        raise ValueError(f"{name} must be a non-negative {'integer' if integer else 'number'}, got {value!r}")
    return int(value) if integer else float(value)


def _outcome(model: str, raw: Any, listed: bool = False) -> Outcome:
    if not isinstance(raw, dict):
        raise ValueError(f"outcome of {model!r} must be an object")
    if "quality" not in raw:
        raise ValueError(f"outcome of {model!r} has no quality")
    quality = _number(raw["quality"], f"{model}.quality")
    if quality > 1:
        raise ValueError(f"{model}.quality must be in [0, 1], got {quality}")
    opt = {k: _number(raw[k], f"{model}.{k}") for k in ("cost_usd", "latency_s") if raw.get(k) is not None}
    for k in ("tokens_in", "tokens_out"):
        if raw.get(k) is not None:
            opt[k] = _number(raw[k], f"{model}.{k}", integer=True)
    response = raw.get("response")
    if response is not None and not isinstance(response, str):
        raise ValueError(f"{model}.response must be a string")
    return Outcome(quality=quality, response=_unlisted(response) if listed and response else response, **opt)


def _unlisted(text: str) -> str:
    """RouterBench records each answer as the repr of a list of its turns (`['C\\n']`): the answer
    as the model gave it (turns joined by a blank line), or the text as it is when it is not such a list."""
    if not (text.startswith("[") and text.endswith("]")):
        return text
    try:
        turns = ast.literal_eval(text)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        return text
    return "\n\n".join(turns) if isinstance(turns, list) and turns and all(isinstance(t, str) for t in turns) else text


def parse_row(obj: Any) -> Row:
    """Validate one decoded line; raises ValueError saying what is wrong."""
    if not isinstance(obj, dict):
        raise ValueError("a line must be a JSON object")
    rid = obj.get("id")
    if not isinstance(rid, str) or not rid:
        raise ValueError("id must be a non-empty string")
    messages = _messages(obj.get("messages"))
    outcomes = obj.get("outcomes")
    if not isinstance(outcomes, dict) or not outcomes:
        raise ValueError("outcomes must be a non-empty object")
    split = obj.get("split")
    if split is not None and split not in ("train", "dev", "test"):
        raise ValueError(f"split must be train, dev or test, got {split!r}")
    weight = _number(obj.get("weight", 1.0), "weight")  # optional: labels exported with their sampling weight
    if weight <= 0:
        raise ValueError(f"weight must be above 0, got {weight!r}")
    known = {"id", "messages", "outcomes", "source", "task", "split", "contaminated", "weight"}
    return Row(
        id=rid,
        messages=messages,
        outcomes={str(k): _outcome(str(k), v, listed=obj.get("source") == "routerbench") for k, v in outcomes.items()},
        source=str(obj.get("source") or ""),
        task=str(obj.get("task") or ""),
        split=split,
        contaminated=bool(obj.get("contaminated", False)),
        extra={k: v for k, v in obj.items() if k not in known},
        weight=weight,
    )


def iter_rows(path: str | os.PathLike[str]) -> Iterator[Row]:
    """Rows of one JSONL file; a malformed line raises DataError naming file and line."""
    seen: set[str] = set()
    for lineno, line in iter_lines(path):
        try:
            row = parse_row(json.loads(line))
        except ValueError as exc:  # json.JSONDecodeError is a ValueError too
            raise DataError(f"{path}:{lineno}: {exc}") from None
        if row.id in seen:
            raise DataError(f"{path}:{lineno}: duplicate id {row.id!r}")
        seen.add(row.id)
        yield row


def iter_lines(path: str | os.PathLike[str]) -> Iterator[tuple[int, str]]:
    """(line number, text) of each non-blank line of a set; a file that cannot be read raises DataError."""
    p = Path(path)
    try:
        fh = p.open(encoding="utf-8")
    except OSError as exc:
        raise DataError(f"cannot read {p}: {exc.strerror}") from None
    with fh:
        for lineno, line in enumerate(fh, 1):
            if line.strip():
                yield lineno, line


def iter_prompts(path: str | os.PathLike[str]) -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """(id, messages) of each line of a prompt set; outcomes are optional, an id defaults to the line number."""
    for lineno, line in iter_lines(path):
        try:
            obj = json.loads(line)
            if not isinstance(obj, dict):
                raise ValueError("a line must be a JSON object")
            messages = _messages(obj.get("messages"))
        except ValueError as exc:
            raise DataError(f"{path}:{lineno}: {exc}") from None
        yield str(obj.get("id") or lineno), messages


def _messages(messages: Any) -> list[dict[str, Any]]:
    if not isinstance(messages, list) or not messages or not all(isinstance(m, dict) for m in messages):
        raise ValueError("messages must be a non-empty list of objects")
    for i, m in enumerate(messages):
        if not isinstance(m.get("role"), str) or not isinstance(m.get("content"), (str, list)):
            raise ValueError(f"messages[{i}] needs a string role and string or list content")
    return messages


def iter_wide_rows(path: str | os.PathLike[str]) -> Iterator[Row]:
    """Rows of RouterBench's wide table (CSV): one column per model with its quality, plus
    `MODEL|total_cost` and `MODEL|model_response` columns, `prompt`, `eval_name`, `sample_id`."""
    import csv

    p = Path(path)
    try:
        fh = p.open(encoding="utf-8", newline="")
    except OSError as exc:
        raise DataError(f"cannot read {p}: {exc.strerror}") from None
    with fh:
        reader = csv.DictReader(fh)
        columns = reader.fieldnames or []
        models = [c for c in columns if f"{c}|total_cost" in columns]
        if "prompt" not in columns or not models:
            raise DataError(f"{p}:1: a RouterBench table needs a prompt column and MODEL, MODEL|total_cost columns")
        for lineno, rec in enumerate(reader, 2):
            try:
                outcomes = {}
                for m in models:
                    if rec.get(m) in (None, ""):
                        continue  # no outcome recorded: unknown, not 0
                    outcomes[m] = _outcome(m, {"quality": float(rec[m]), "cost_usd": float(rec[f"{m}|total_cost"] or 0),
                                               "response": rec.get(f"{m}|model_response")}, listed=True)
                if not outcomes or not rec["prompt"]:
                    raise ValueError("no prompt or no outcome")
            except ValueError as exc:
                raise DataError(f"{p}:{lineno}: {exc}") from None
            yield Row(id=rec.get("sample_id") or f"{p.stem}-{lineno}", messages=[{"role": "user", "content": rec["prompt"]}],
                      outcomes=outcomes, source="routerbench", task=rec.get("eval_name") or "")


def load_rows(paths: str | os.PathLike[str] | list[str | os.PathLike[str]]) -> list[Row]:
    """All rows of one or more labelled sets: JSONL v1, or RouterBench's wide table as .csv."""
    items = [paths] if isinstance(paths, (str, os.PathLike)) else list(paths)
    return [row for p in items for row in (iter_wide_rows(p) if str(p).endswith(".csv") else iter_rows(p))]
