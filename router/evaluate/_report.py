"""The evaluation report: its figures, and their renderings (a terminal table, a PNG, one HTML page)."""

from __future__ import annotations

import base64
import html
import io
import itertools
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, BinaryIO


@dataclass
class Report:
    """Cost (mean USD per request, or share of top-tier calls when the set has no costs) against quality."""

    tiers: list[str]
    rows: int
    used: int
    missing: dict[str, int]
    cost_unit: str
    thresholds: list[float]
    router: dict[str, float]
    baselines: dict[str, dict[str, float]]
    curve: list[tuple[float, float]]
    least_cost_share: dict[float, float | None]
    quality_at_cost: dict[float, float]
    aiq: float
    apgr: float | None = None
    napgr: float | None = None  # three-tier APGR against expected random routing (see router.evaluate.napgr)
    gap_closed: float | None = None  # share of the random-to-oracle nAPGR gap the router closes
    napgr_random: float | None = None
    napgr_oracle: float | None = None
    cpt50: float | None = None
    cpt80: float | None = None
    ci95: dict[str, tuple[float, float]] = field(default_factory=dict)
    per_task: dict[str, dict[str, float]] = field(default_factory=dict)
    checks: dict[str, float] = field(default_factory=dict)
    dataset: str = ""  # the set's name (its files), shown on the page and the picture

    @property
    def free_middle(self) -> str:
        """A warning when the set has no costs and more than two tiers: every tier below the top
        counts as free, so the router can look cheaper than a middle tier it pays for."""
        if self.cost_unit == "usd" or len(self.tiers) <= 2:
            return ""
        return (f"this set has no costs: cost is the share of top-tier calls, so {', '.join(self.tiers[:-1])} count as free "
                "and the cost figures cannot tell the cheaper tiers apart; add cost_usd to the rows (or evaluate two tiers)")

    @property
    def beats_random(self) -> bool:
        """Whether the router's quality is above random routing's at the same cost."""
        return self.router["quality"] > self.baselines["random"]["quality"] + 1e-9

    def text(self) -> str:
        """The report as a terminal table."""
        return render_text(self)

    def plot(self, path: str | Any, title: str = "tierwise: quality against cost") -> Any:
        """Write the cost-quality picture as a PNG; returns its path."""
        return render_png(self, path, title)

    def html(self, path: str | Any, title: str = "tierwise: quality against cost") -> Any:
        """Write one self-contained HTML page (the table and the picture); returns its path."""
        return render_html(self, path, title)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["warnings"] = [self.free_middle] if self.free_middle else []
        for key in ("least_cost_share", "quality_at_cost"):
            data[key] = {str(k): v for k, v in data[key].items()}
        return data


def _cost(value: float, unit: str) -> str:
    return f"${value * 1000:.4f}/1k" if unit == "usd" else f"{value:.1%}"


def render_text(report: Report) -> str:
    """The report as a terminal table."""
    unit = report.cost_unit
    lines = [f"{report.used} of {report.rows} rows used" + (f"; missing outcomes: {report.missing}" if report.missing else ""),
             *([f"WARNING: {report.free_middle}"] if report.free_middle else []),
             f"cost unit: {'USD per 1,000 requests' if unit == 'usd' else 'share of top-tier calls'}",
             "", f"{'route':<44} {'quality':>8} {'cost':>14}"]
    rows = [(f"router (thresholds {', '.join(f'{t:.3f}' for t in report.thresholds)})", report.router)]
    rows += [(f"always {name}" if name in report.tiers else name if name == "oracle" else "random routing at the same cost", b)
             for name, b in report.baselines.items()]
    for name, b in rows:
        lines.append(f"{name[:44]:<44} {b['quality']:8.3f} {_cost(b['cost'], unit):>14}")
    lines.append("")
    for share, value in report.least_cost_share.items():
        ci = report.ci95.get("least_cost_share_95") if share == 0.95 else None
        extra = f"  (95% CI {ci[0]:.1%} to {ci[1]:.1%})" if ci else ""
        lines.append(f"least cost reaching {share:.0%} of top-tier quality: " + ("not reached" if value is None else f"{value:.1%} of top-tier cost") + extra)
    for frac, q in report.quality_at_cost.items():
        lines.append(f"best quality at {frac:.0%} of top-tier cost: {q:.3f}")
    lines.append(f"AIQ: {report.aiq:.4f}")
    if report.napgr is not None:
        ci, gci = report.ci95.get("napgr"), report.ci95.get("gap_closed")
        lines.append(f"nAPGR {report.napgr:.3f}" + (f" (95% CI {ci[0]:.3f} to {ci[1]:.3f})" if ci else "")
                     + f"; random {report.napgr_random:.3f}, oracle {report.napgr_oracle:.3f}; gap closed {report.gap_closed:.1%}"
                     + (f" (95% CI {gci[0]:.1%} to {gci[1]:.1%})" if gci else ""))
    if report.apgr is not None:
        ci = report.ci95.get("apgr")
        lines.append(f"APGR {report.apgr:.3f}" + (f" (95% CI {ci[0]:.3f} to {ci[1]:.3f})" if ci else "")
                     + f", CPT(50%) {report.cpt50:.1%}, CPT(80%) {report.cpt80:.1%}")
    if report.checks:
        c = report.checks
        lines.append(f"checks: {c['failed_checks_share']:.1%} of lower-tier answers failed; small-tier start gains "
                     f"{c['quality_gain_small_tier']:+.3f} quality for {_cost(c['cost_added_small_tier'], unit)} more")
    if len(report.per_task) > 1:
        lines += ["", f"{'task':<32} {'rows':>6} {'quality':>8} {'top q':>7} {'cost':>14} {'top cost':>14}"]
        for task, t in report.per_task.items():
            lines.append(f"{task[:32]:<32} {t['rows']:>6.0f} {t['quality']:8.3f} {t['top_quality']:7.3f} "
                         f"{_cost(t['cost'], unit):>14} {_cost(t['top_cost'], unit):>14}")
    return "\n".join(lines)


def _mixtures(points: list[tuple[float, float]], dense: bool) -> list[tuple[float, float]]:
    """Points along straight segments (mixing two routes is linear in cost), densified so that a log
    axis draws them as the curves they are."""
    if not dense:
        return list(points)
    out = [points[0]]
    for (x0, y0), (x1, y1) in itertools.pairwise(points):
        out += [(x0 + (x1 - x0) * k / 40, y0 + (y1 - y0) * k / 40) for k in range(1, 41)]
    return out


def new_figure(what: str, size: tuple[float, float]) -> Any:
    """A matplotlib Figure with its own canvas (no pyplot: no global state touched); a clear error without matplotlib."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        raise ImportError(f"{what} needs matplotlib: pip install 'tierwise[plot]'") from None
    fig = Figure(figsize=size, dpi=120)
    FigureCanvasAgg(fig)
    return fig


def render_png(report: Report, path: str | Path | BinaryIO, title: str = "tierwise: quality against cost") -> Path | BinaryIO:
    """A PNG of the router's cost-quality curve, each tier, random routing and the oracle."""
    fig = new_figure("the cost-quality picture", (7, 4.5))
    ax = fig.add_subplot()
    tiers = [(report.baselines[t]["cost"], report.baselines[t]["quality"], t) for t in report.tiers]
    oracle = report.baselines["oracle"]
    costs = [x for x, _ in report.curve] + [t[0] for t in tiers] + [oracle["cost"], report.router["cost"]]
    log = report.cost_unit == "usd" and min(costs) > 0
    if log:
        ax.set_xscale("log")  # tier prices differ by orders of magnitude: a linear axis hides the cheap end
    xs, ys = zip(*_mixtures(report.curve, log))
    ax.plot(xs, ys, "-", label="tierwise router (Pareto front)", color="tab:blue")
    ax.plot(*zip(*report.curve), "o", ms=3, color="tab:blue")
    ax.plot(*zip(*_mixtures([(t[0], t[1]) for t in tiers], log)), "--", color="gray", label="random routing")
    for x, y, name in tiers:
        ax.scatter([x], [y], color="black", zorder=3)
        ax.annotate(name, (x, y), textcoords="offset points", xytext=(4, -10), fontsize=8)
    ax.scatter([oracle["cost"]], [oracle["quality"]], marker="*", s=120, color="tab:green", label="oracle", zorder=3)
    ax.scatter([report.router["cost"]], [report.router["quality"]], marker="D", color="tab:red", label="router at its thresholds", zorder=4)
    ax.set_xlabel("mean cost per request (USD)" if report.cost_unit == "usd" else "share of top-tier calls")
    ax.set_ylabel("mean quality")
    ax.set_title(f"{title}\n{report.dataset + ', ' if report.dataset else ''}{report.used} rows", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    out: Path | BinaryIO = Path(path) if isinstance(path, (str, Path)) else path
    fig.savefig(out, format="png")
    return out


_CSS = ("body{font-family:system-ui,sans-serif;margin:2em auto;max-width:60em;color:#222}"
        "table{border-collapse:collapse;margin:.5em 0 1.5em}th,td{padding:.25em .8em;border-bottom:1px solid #ddd}"
        "td.n{text-align:right;font-variant-numeric:tabular-nums}th{text-align:left;background:#f4f4f4}"
        ".warn{background:#fff3cd;border:1px solid #e0c36a;padding:.8em;margin:1em 0}.meta{color:#555}"
        "img{max-width:100%}dt{font-weight:bold;margin-top:.6em}")
_MEANINGS = (
    ("quality", "the mean of the recorded outcome (1 = correct or fully adequate) of the tier each prompt was sent to"),
    ("cost", "the mean cost per request, escalations included (USD; or the share of top-tier calls when the set has no costs)"),
    ("random routing at the same cost", ("the expected quality of sending each prompt to a tier at random, in shares "
     "that cost what the router costs: a router worth having is above it")),
    ("oracle", "the cheapest tier as good as the best on each prompt: the ceiling no router on the prompt alone reaches"),
    ("least cost reaching X% of top-tier quality", ("the cheapest thresholds whose quality is at least X% of always-top-tier's, "
     "as a share of always-top-tier's cost (lower is better)")),
    ("AIQ", "RouterBench's average quality over the cost range of the tiers, on the router's convex hull (higher is better)"),
    ("APGR", "RouteLLM's average performance gap recovered over all shares of strong calls (two tiers; random = 0.5)"),
)


def _table(head: list[str], rows: list[list[str]], numeric_from: int = 1) -> str:
    cells = "".join(f"<th>{html.escape(h)}</th>" for h in head)
    body = "".join(
        "<tr>" + "".join(f"<td{' class=n' if i >= numeric_from else ''}>{html.escape(c)}</td>" for i, c in enumerate(row)) + "</tr>"
        for row in rows
    )
    return f"<table><thead><tr>{cells}</tr></thead><tbody>{body}</tbody></table>\n"


def _figures(report: Report) -> list[list[str]]:
    rows = []
    for share, value in report.least_cost_share.items():
        ci = report.ci95.get("least_cost_share_95") if share == 0.95 else None
        text = "not reached" if value is None else f"{value:.1%} of top-tier cost"
        rows.append([f"least cost reaching {share:.0%} of top-tier quality", text + (f" (95% CI {ci[0]:.1%} to {ci[1]:.1%})" if ci else "")])
    rows += [[f"best quality at {frac:.0%} of top-tier cost", f"{q:.3f}"] for frac, q in report.quality_at_cost.items()]
    rows.append(["AIQ", f"{report.aiq:.4f}"])
    if report.apgr is not None:
        ci = report.ci95.get("apgr")
        rows.append(["APGR", f"{report.apgr:.3f}" + (f" (95% CI {ci[0]:.3f} to {ci[1]:.3f})" if ci else "")])
        rows.append(["CPT(50%), CPT(80%)", f"{report.cpt50:.1%}, {report.cpt80:.1%}"])
    return rows


def render_html(report: Report, path: str | Path, title: str = "tierwise: quality against cost") -> Path:
    """One self-contained HTML page: tables, the picture (embedded, so the file travels alone), what
    each figure means, and a warning when the router is no better than random routing at its cost."""
    picture = io.BytesIO()
    render_png(report, picture, title)
    png = base64.b64encode(picture.getvalue()).decode("ascii")
    unit = report.cost_unit
    name = f"router (thresholds {', '.join(f'{t:.3f}' for t in report.thresholds)})"
    routes = [[name, f"{report.router['quality']:.3f}", _cost(report.router["cost"], unit)]]
    routes += [[f"always {n}" if n in report.tiers else n if n == "oracle" else "random routing at the same cost", f"{b['quality']:.3f}",
                _cost(b["cost"], unit)] for n, b in report.baselines.items()]
    parts = [f"<h1>{html.escape(title)}</h1>\n",
             f"<p class=meta>Data: {html.escape(report.dataset or 'a labelled prompt set')}, {report.used} of {report.rows} rows used"
             + (f" (missing outcomes: {html.escape(str(report.missing))})" if report.missing else "")
             + f". Tiers, cheapest first: {html.escape(', '.join(report.tiers))}.</p>\n"]
    if report.free_middle:
        parts.append(f"<div class=warn><strong>Warning:</strong> {html.escape(report.free_middle)}.</div>\n")
    if not report.beats_random:
        parts.append("<div class=warn><strong>Warning:</strong> at its thresholds the router is not better than random routing "
                     "at the same cost on this set. Retrain the classifier on labels like this traffic, or calibrate the "
                     "thresholds for a target.</div>\n")
    parts += ["<h2>Routes</h2>\n", _table(["route", "quality", "cost"], routes),
              "<h2>Figures</h2>\n", _table(["figure", "value"], _figures(report)),
              "<h2>Quality against cost</h2>\n", f"<img alt=\"quality against cost\" src=\"data:image/png;base64,{png}\">\n"]
    if len(report.per_task) > 1:
        tasks = [[task, f"{t['rows']:.0f}", f"{t['quality']:.3f}", f"{t['top_quality']:.3f}", _cost(t["cost"], unit),
                  _cost(t["top_cost"], unit)] for task, t in report.per_task.items()]
        parts += ["<h2>By task</h2>\n", _table(["task", "rows", "quality", "top-tier quality", "cost", "top-tier cost"], tasks)]
    parts.append("<h2>What the figures mean</h2>\n<dl>" + "".join(
        f"<dt>{html.escape(term)}</dt><dd>{html.escape(text)}</dd>" for term, text in _MEANINGS) + "</dl>\n")
    page = (f"<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{html.escape(title)}</title>"
            f"<style>{_CSS}</style></head><body>\n{''.join(parts)}</body></html>\n")
    out = Path(path)
    out.write_text(page, encoding="utf-8")
    return out
