"""`tierwise score`, `train`, `eval` and `calibrate`: the commands that read labelled prompt sets."""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import math
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from router._errors import TierwiseError
from router.cli._args import _tiers


def _load_classifier(weights: str | None):  # type: ignore[no-untyped-def]
    from classifiers import HeuristicClassifier, RandomClassifier, default_classifier, load

    if weights == "heuristic":
        return HeuristicClassifier()
    if weights == "random":
        return RandomClassifier()
    return load(weights) if weights else default_classifier()


def cmd_score(args: argparse.Namespace) -> int:
    from classifiers import iter_prompts

    clf = _load_classifier(args.weights)
    if args.verifier:
        from router.cli._verify import score_lines

        return score_lines(args, clf)
    if args.text is not None:
        print(f"{clf.score([{'role': 'user', 'content': args.text}]):.4f}")
        return 0
    with open(args.out, "w", encoding="utf-8") if args.out else contextlib.nullcontext(sys.stdout) as out:
        for rid, messages in iter_prompts(args.data):
            out.write(json.dumps({"id": rid, "score": round(clf.score(messages), 6)}) + "\n")
    return 0


class _Stages:
    """Training progress: a bar on a terminal (tqdm), else one line a stage on stderr."""

    def __init__(self) -> None:
        self._bar: Any = None
        if sys.stderr.isatty():
            from tqdm import tqdm

            self._bar = tqdm(total=None, unit=" stage", file=sys.stderr, leave=False)

    def __call__(self, stage: str) -> None:
        if self._bar is not None:
            self._bar.set_description(stage)
            self._bar.update(1)
        else:
            print(f"train: {stage}", file=sys.stderr, flush=True)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()


def cmd_train(args: argparse.Namespace) -> int:
    from classifiers import train

    if not args.weak and not args.tiers:
        raise ValueError("name the cheapest model: --weak MODEL (repeatable) or --tiers small=A,flash=B,frontier=C")
    tiers = [m for _, m in _tiers(args.tiers)] if args.tiers else None
    prior = None
    if args.prior:
        from classifiers import default_classifier, load

        prior = default_classifier() if args.prior == "default" else load(args.prior)
    from classifiers import load_rows

    rows = load_rows(args.data)  # read once: counted here, trained on below
    held = 0 if args.include_test else sum(1 for r in rows if r.split == "test")
    if held:  # said, not silent: a benchmark's test rows stay out of training unless asked
        print(f"tierwise train: left out {held} rows marked split: test (--include-test trains on them)", file=sys.stderr)
    if prior is not None and args.select == "cv":
        clf = _select_with_prior(rows, tiers, prior, args)
    else:
        stages = _Stages()
        try:
            clf = train(rows, weak=args.weak, strong=args.strong or (), tiers=tiers, target=args.target, bar=args.bar, prior=prior,
                        length_weight=args.length_weight, seed=args.seed, progress=stages, include_test=args.include_test)
        finally:
            stages.close()
    path = clf.save(args.out)
    print(f"wrote {path} ({path.stat().st_size / 1e6:.2f} MB): {json.dumps(clf.meta)}")
    return 0


def _select_with_prior(rows: list[Any], tiers: list[str] | None, prior: Any, args: argparse.Namespace) -> Any:
    """`train --prior P` (--select cv): the prior, warm starts and a model trained alone, chosen by
    cross-validation on the rows (router.learning's selection, one-standard-error rule)."""
    from router.learning import select

    if not tiers:
        raise ValueError("--prior with --select cv needs --tiers small=A,...,frontier=C (or --select none)")
    usable = [r for r in rows if tiers[0] in r.outcomes and tiers[-1] in r.outcomes and (args.include_test or r.split != "test")]
    sel = select(usable, tiers, None, prior, seed=args.seed)
    for name, (mean, se) in sel.candidates.items():
        print(f"  {name:<12} CV AUC {mean:.4f} ± {se:.4f}", file=sys.stderr)
    print(f"tierwise train: {sel.why}", file=sys.stderr)
    from classifiers import LinearClassifier

    if not isinstance(sel.classifier, LinearClassifier):
        return sel.classifier
    data = sel.classifier.to_dict()  # a copy: the prior itself (which may be chosen) is never changed
    data["meta"] = {**data.get("meta", {}), "selection": {"chosen": sel.chosen, **{k: round(v[0], 4) for k, v in sel.candidates.items()}}}
    return LinearClassifier.from_dict(data)


def _eval_inputs(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    from classifiers import load_rows

    tiers = _tiers(args.tiers)
    rows = [r for r in load_rows(args.data) if (args.split is None or r.split == args.split) and not (args.drop_contaminated and r.contaminated)]
    if not rows:
        raise ValueError(f"no rows{' in split ' + args.split if args.split else ''} in {', '.join(map(str, args.data))}")
    return tiers, rows, _load_classifier(args.weights)


def _progress(done: int, total: int) -> None:
    if sys.stderr.isatty():
        width = 30
        filled = width * done // max(total, 1)
        print(f"\rscoring [{'#' * filled}{'.' * (width - filled)}] {done}/{total}", end="" if done < total else "\n", file=sys.stderr)


def _streams(args: argparse.Namespace) -> bool:
    """JSONL sets are read as a stream (memory independent of their size and of their other models);
    RouterBench's CSV table and replayed checks (which need every recorded answer) are loaded whole."""
    return not getattr(args, "checks", None) and not getattr(args, "verifier", None) and not any(str(d).endswith(".csv") for d in args.data)


def _progress_rows(done: int, _total: int) -> None:
    if sys.stderr.isatty():
        print(f"\rread and scored {done:,} rows", end="", file=sys.stderr)


def cmd_eval(args: argparse.Namespace) -> int:
    from router._config import RouterConfig
    from router.checks import all_of
    from router.evaluate import evaluate, evaluate_file

    thresholds = None
    tiers = _tiers(args.tiers)
    if args.config:
        config = RouterConfig.from_file(args.config)
        if len(config.tiers) == len(tiers):
            thresholds = config.effective_thresholds()
    dataset = ", ".join(Path(d).name for d in args.data)
    models = [m for _, m in tiers]
    if _streams(args):
        report = evaluate_file(args.data, models, _load_classifier(args.weights), thresholds=thresholds, split=args.split,
                               drop_contaminated=args.drop_contaminated, bootstrap=args.bootstrap, progress=_progress_rows, dataset=dataset)
        if sys.stderr.isatty():
            print(file=sys.stderr)
        return write_outputs(report, args)
    _, rows, clf = _eval_inputs(args)
    check = all_of(args.checks.split(",")) if args.checks else None
    report = evaluate(rows, models, clf, thresholds=thresholds, check=check, bootstrap=args.bootstrap, progress=_progress, dataset=dataset)
    code = write_outputs(report, args)
    if args.verifier:
        from router.cli._verify import cascade_text

        print(cascade_text(args, rows, models, clf))
    return code


def write_outputs(result: Any, args: argparse.Namespace) -> int:
    """Print a report's table, then write what --json, --plot and --html ask for."""
    print(result.text())
    if args.json:
        Path(args.json).write_text(json.dumps(result.to_dict(), indent=2))
        print(f"wrote {args.json}")
    if args.plot:
        print(f"wrote {result.plot(args.plot)}")
    if getattr(args, "html", None):
        print(f"wrote {result.html(args.html)}")
    return 0


_TARGETS = {"quality": "a share of top-tier quality in (0, 1], e.g. quality=0.95 or quality=95%",
            "cost": "a mean cost per request in USD, e.g. cost=0.002",
            "frontier_share": "a share of top-tier calls in [0, 1], e.g. frontier_share=0.2"}


def parse_target(text: str) -> tuple[str, float]:
    """`quality=0.95` (or `95%`), `cost=0.002`, `frontier_share=0.2`: a clear error for anything else."""
    name, sep, raw = text.partition("=")
    name, raw = name.strip(), raw.strip()
    if name not in _TARGETS or not sep or not raw:
        raise ValueError(f"--target must be one of: {'; '.join(_TARGETS.values())}; got {text!r}")
    try:
        value = float(raw[:-1]) / 100 if raw.endswith("%") else float(raw)
    except ValueError:
        raise ValueError(f"--target {name}: {raw!r} is not a number; expected {_TARGETS[name]}") from None
    ok = {"quality": 0 < value <= 1, "cost": value > 0, "frontier_share": 0 <= value <= 1}[name]
    if not ok or math.isnan(value):
        raise ValueError(f"--target {name}={raw} is out of range: expected {_TARGETS[name]}")
    return name, value


def _config_text(base: str | None, tiers: list[tuple[str, str]], thresholds: Sequence[float], escalation: dict[str, Any] | None = None) -> str:
    """The config to write: the user's file with its thresholds replaced (comments kept), or new tiers.

    Whatever is written must build a Router: every model needs a price, so the set's model names are
    only written when litellm prices them.
    """
    from ruamel.yaml import YAML

    from router._client import LiteLLMClient
    from router._config import RouterConfig

    yaml = YAML()  # round-trip mode: comments, key order, quoting and flow style survive
    yaml.indent(mapping=2, sequence=4, offset=2)
    yaml.preserve_quotes = True
    data: Any = yaml.load(Path(base).read_text(encoding="utf-8")) if base else None
    if data is None:
        data = {"tiers": [{"name": name, "models": [model]} for name, model in tiers]}
    values = [round(t, 6) for t in thresholds]
    if isinstance(data.get("thresholds"), list):
        data["thresholds"][:] = values  # in place: the list keeps its style and its comment
    else:
        data["thresholds"] = values
    if escalation is not None:  # the cascade's bars and verifier, chosen with the thresholds
        data["escalation"] = {**(data.get("escalation") or {}), **escalation}
    config = RouterConfig.from_dict(data)
    client = LiteLLMClient()
    for tier in config.tiers:
        for spec in tier.models:
            try:
                client.prices(spec)
            except TierwiseError:
                raise ValueError(f"model {spec.model!r} of tier {tier.name!r} has no known price, so a Router could not load "
                                 "the file: pass --config with your tiers (litellm models or priced entries); "
                                 "its thresholds are updated and its comments kept") from None
    out = io.StringIO()
    yaml.dump(data, out)
    return out.getvalue()


def cmd_calibrate(args: argparse.Namespace) -> int:
    from policies import calibrate
    from router.evaluate import matrices
    from router.evaluate._replay import priced
    from router.evaluate._stream import gather

    target, value = parse_target(args.target)
    tiers = _tiers(args.tiers)
    models = [m for _, m in tiers]
    if args.verifier:
        return calibrate_with_verifier(args, tiers, target, value)
    if _streams(args):
        got = gather(args.data, models, _load_classifier(args.weights), split=args.split, drop_contaminated=args.drop_contaminated)
        if not got.scores:
            raise ValueError(f"no rows{' in split ' + args.split if args.split else ''} with outcomes for every tier in "
                             f"{', '.join(map(str, args.data))}")
        scores, quality, (cost, unit) = got.scores, got.quality, priced(got.cost, len(models))
    else:
        _, rows, clf = _eval_inputs(args)
        usable = [r for r in rows if all(m in r.outcomes for m in models)]
        quality, cost, unit, _ = matrices(usable, models, {})
        scores = clf.score_batch([r.messages for r in usable])
    cal = calibrate(scores, quality, cost, target, value)
    Path(args.out).write_text(_config_text(args.config, tiers, cal.thresholds), encoding="utf-8")
    data = {"thresholds": [round(t, 6) for t in cal.thresholds]}
    print(f"thresholds {data['thresholds']} on {len(scores)} rows: quality {cal.quality:.3f}, cost "
          f"{cal.cost:.6g} ({unit}), top-tier share {cal.frontier_share:.1%}; wrote {args.out}")
    return 0


def calibrate_with_verifier(args: argparse.Namespace, tiers: list[tuple[str, str]], target: str, value: float) -> int:
    """`calibrate --verifier FILE`: thresholds and answer bars chosen together on the given rows (a
    dev carve), written into the config with the verifier (a tier left unchecked gets bar 0)."""
    from policies import NEVER, calibrate_cascade
    from router.evaluate import matrices
    from router.verifier import answer_scores, load_verifier

    if target == "frontier_share":
        raise ValueError("calibrate --verifier takes --target quality=... or cost=...")
    verifier = load_verifier(args.verifier)
    models = [m for _, m in tiers]
    _, rows, clf = _eval_inputs(args)
    rows = [r for r in rows if all(m in r.outcomes for m in models)]
    quality, cost, unit, _ = matrices(rows, models, {})
    cal = calibrate_cascade(clf.score_batch([r.messages for r in rows]), answer_scores(verifier, rows, models), quality, cost,
                            target, value)
    bars = {name: (0.0 if bar == NEVER else bar) for (name, _), bar in zip(tiers[:-1], cal.bars, strict=True)}
    text = _config_text(args.config, tiers, cal.thresholds, {"verifier": str(args.verifier), "bars": bars})
    Path(args.out).write_text(text, encoding="utf-8")
    print(f"thresholds {[round(t, 6) for t in cal.thresholds]} and bars {bars} on {len(rows)} rows: quality {cal.quality:.3f}, cost "
          f"{cal.cost:.6g} ({unit}), top-tier share {cal.frontier_share:.1%}; wrote {args.out}")
    return 0
