"""The evaluation report: its figures, and their renderings (a terminal table, a PNG, one HTML page)."""

from __future__ import annotations

import base64
import html
import io
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
    cpt50: float | None = None
    cpt80: float | None = None
    ci95: dict[str, tuple[float, float]] = field(default_factory=dict)
    per_task: dict[str, dict[str, float]] = field(default_factory=dict)
    checks: dict[str, float] = field(default_factory=dict)

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
        for key in ("least_cost_share", "quality_at_cost"):
            data[key] = {str(k): v for k, v in data[key].items()}
        return data


def _cost(value: float, unit: str) -> str:
    return f"${value * 1000:.4f}/1k" if unit == "usd" else f"{value:.1%}"


def render_text(report: Report) -> str:
    """The report as a terminal table."""
    unit = report.cost_unit
    lines = [f"{report.used} of {report.rows} rows used" + (f"; missing outcomes: {report.missing}" if report.missing else ""),
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


def render_png(report: Report, path: str | Path | BinaryIO, title: str = "tierwise: quality against cost") -> Path | BinaryIO:
    """A PNG of the router's cost-quality curve, each tier, random routing and the oracle."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure  # no pyplot: no global state touched

    fig = Figure(figsize=(7, 4.5), dpi=120)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    xs, ys = zip(*report.curve)
    ax.plot(xs, ys, "-o", ms=3, label="tierwise router (Pareto front)", color="tab:blue")
    tiers = [(report.baselines[t]["cost"], report.baselines[t]["quality"], t) for t in report.tiers]
    ax.plot([t[0] for t in tiers], [t[1] for t in tiers], "--", color="gray", label="random routing")
    for x, y, name in tiers:
        ax.scatter([x], [y], color="black", zorder=3)
        ax.annotate(name, (x, y), textcoords="offset points", xytext=(4, -10), fontsize=8)
    oracle = report.baselines["oracle"]
    ax.scatter([oracle["cost"]], [oracle["quality"]], marker="*", s=120, color="tab:green", label="oracle", zorder=3)
    ax.scatter([report.router["cost"]], [report.router["quality"]], marker="D", color="tab:red", label="router at its thresholds", zorder=4)
    ax.set_xlabel("mean cost per request (USD)" if report.cost_unit == "usd" else "share of top-tier calls")
    ax.set_ylabel("mean quality")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    out: Path | BinaryIO = Path(path) if isinstance(path, (str, Path)) else path
    fig.savefig(out, format="png")
    return out


def render_html(report: Report, path: str | Path, title: str = "tierwise: quality against cost") -> Path:
    """One self-contained HTML page: the table and the picture (embedded, so the file travels alone)."""
    picture = io.BytesIO()
    render_png(report, picture, title)
    png = base64.b64encode(picture.getvalue()).decode("ascii")
    page = (
        f"<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>{html.escape(title)}</title>"
        "<style>body{font-family:sans-serif;margin:2em}pre{font-size:13px}</style></head><body>\n"
        f"<h1>{html.escape(title)}</h1>\n<pre>{html.escape(render_text(report))}</pre>\n"
        f"<img alt=\"quality against cost\" src=\"data:image/png;base64,{png}\">\n</body></html>\n"
    )
    out = Path(path)
    out.write_text(page, encoding="utf-8")
    return out
