"""The report's summary figure: a forest plot of every claim's effect relative to its claim.

Each row is a claim (or a stratum of one) with an interval: its effect and 95% CI placed on a common
scale where the claim's own decision boundaries sit at fixed places (``relative``):

- a band ``[low, high]`` (equivalence, a ratio in a range): low at 0, high at 1 — inside [0, 1] is the
  claim; a band open on one side puts its finite end at 0 (or 1) and is scaled by the design's detectable
  effect;
- a one-sided claim ``> support`` refuted ``< refute``: refute at 0, support at 1; with no margin
  (support = refute) the boundary is at 0 and one unit is the detectable effect (``mde``, the distance the
  truth must lie beyond the boundary to decide with 80% power; else the CI's half-width);
- ``<`` claims are mirrored, so that right is always the claim's side.

Ratios are placed on their log scale. The rows are grouped by FAQ section and coloured by verdict.
Everything drawn comes from the results (effect, ci, band, mde): nothing is re-decided here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import matplotlib as mpl
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from claimbench.claims.base import ClaimResult
from claimbench.report import format as fmt
from claimbench.report.figures.base import RenderedFigure
from claimbench.report.figures.panels import wrap
from claimbench.report.figures.style import GREEN, RED, VERDICT_COLOURS, _legend, _new_figure, _rc, _safe, to_svg

#: The visible range of the common scale; rows beyond it are drawn to the edge with an arrow.
LIMITS = (-2.5, 3.5)
#: Row labels longer than this are cut (the verdict table beside the figure has them in full).
LABEL_MAX = 34


@dataclass
class Placed:
    """One row: the effect and CI on the common scale, the claimed and refuted regions, how it was scaled."""

    point: float
    lo: float
    hi: float
    claimed: tuple[float, float]
    refuted: list[tuple[float, float]]
    scaled_by_mde: bool


def relative(result: ClaimResult) -> Placed | None:
    """The result on the common scale (see the module docstring), or None without effect, CI or band."""
    band = result.band
    if not band or result.effect is None or result.ci is None:
        return None
    log = bool(band.get("log"))

    def s(x: float | None, default: float) -> float:
        if x is None:
            return default
        if log:
            return math.log(x) if x > 0 else -math.inf
        return float(x)

    values = [s(v, math.nan) for v in (result.effect, *result.ci)]
    if not all(math.isfinite(v) for v in values):
        return None
    x, lo, hi = values
    half = (hi - lo) / 2
    unit = result.mde if result.mde is not None and math.isfinite(result.mde) and result.mde > 0 else half
    unit = unit if unit > 0 else 1.0
    inf = math.inf
    if band["kind"] == "band":
        low, high = s(band.get("low"), -inf), s(band.get("high"), inf)
        if math.isfinite(low) and math.isfinite(high) and high > low:
            f = lambda v: (v - low) / (high - low)  # noqa: E731
            return Placed(f(x), f(lo), f(hi), (0.0, 1.0), [(-inf, 0.0), (1.0, inf)], False)
        if math.isfinite(low):
            f = lambda v: (v - low) / unit  # noqa: E731
            return Placed(f(x), f(lo), f(hi), (0.0, inf), [(-inf, 0.0)], True)
        if math.isfinite(high):
            f = lambda v: 1 + (v - high) / unit  # noqa: E731
            return Placed(f(x), f(lo), f(hi), (-inf, 1.0), [(1.0, inf)], True)
        return None
    sign = 1.0 if band["kind"] == "greater" else -1.0
    support, refute = sign * s(band.get("support"), 0.0), sign * s(band.get("refute"), 0.0)
    x, lo, hi = sign * x, *sorted((sign * lo, sign * hi))
    if support > refute:
        f = lambda v: (v - refute) / (support - refute)  # noqa: E731
        return Placed(f(x), f(lo), f(hi), (1.0, inf), [(-inf, 0.0)], False)
    f = lambda v: (v - support) / unit  # noqa: E731
    return Placed(f(x), f(lo), f(hi), (0.0, inf), [(-inf, 0.0)], True)


def summary_figure(rows: list[tuple[str, str, ClaimResult]]) -> RenderedFigure | None:
    """``rows``: (section label, row label, result) in report order. None when no row has an interval."""
    placed = [(sec, label, r, relative(r)) for sec, label, r in rows]
    placed = [row for row in placed if row[3] is not None]
    if not placed:
        return None
    sections = list(dict.fromkeys(sec for sec, *_ in placed))
    n_lines = len(placed) + len(sections)
    with mpl.rc_context(_rc()):
        fig = _new_figure(7.2, 0.8 + 0.21 * n_lines)
        ax = fig.subplots()
        y, ticks, labels = 0.0, [], []
        lo_lim, hi_lim = LIMITS
        for sec in sections:
            ax.text(lo_lim, y, _safe(wrap(sec, 60)), fontsize=8, fontweight="bold", va="center", ha="left",
                    transform=ax.transData, clip_on=False)
            y += 1
            for _, label, result, p in (row for row in placed if row[0] == sec):
                c0, c1 = (max(v, lo_lim) if math.isfinite(v) else (lo_lim if v < 0 else hi_lim) for v in p.claimed)
                ax.plot([c0, c1], [y, y], color=GREEN, alpha=0.18, linewidth=7, solid_capstyle="butt", zorder=1)
                for r0, r1 in p.refuted:
                    r0 = lo_lim if not math.isfinite(r0) else max(r0, lo_lim)
                    r1 = hi_lim if not math.isfinite(r1) else min(r1, hi_lim)
                    if r1 > r0:
                        ax.plot([r0, r1], [y, y], color=RED, alpha=0.07, linewidth=7, solid_capstyle="butt",
                                zorder=1)
                colour = VERDICT_COLOURS.get(result.verdict, "#555555")
                lo, hi = max(p.lo, lo_lim), min(p.hi, hi_lim)
                ax.plot([lo, hi], [y, y], color=colour, linewidth=1.8, zorder=3)
                for end, edge, marker in ((p.lo, lo_lim, "<"), (p.hi, hi_lim, ">")):
                    if (end < edge) if marker == "<" else (end > edge):
                        ax.plot([edge], [y], marker=marker, color=colour, markersize=4, zorder=4)
                point = min(max(p.point, lo_lim), hi_lim)
                ax.plot([point], [y], marker="o" if not p.scaled_by_mde else "D", color=colour, markersize=4.5,
                        markeredgecolor="white", markeredgewidth=0.6, zorder=5)
                ticks.append(y)
                labels.append(_safe(label if len(label) <= LABEL_MAX else label[:LABEL_MAX - 1] + "…"))
                y += 1
        for v in (0.0, 1.0):
            ax.axvline(v, color="#333333", linewidth=0.7, linestyle="-" if v == 0 else ":", zorder=2)
        ax.set_yticks(ticks, labels, fontsize=7.5)
        ax.set_ylim(y - 0.4, -0.6)
        ax.set_xlim(lo_lim, hi_lim)
        ax.set_xticks([-2, -1, 0, 1, 2, 3])
        ax.set_xlabel("effect relative to its claim\n(0 and 1: the decision boundaries; right: the claim's side)",
                      fontsize=8)
        ax.grid(axis="y", visible=False)
        handles = [Line2D([], [], color=VERDICT_COLOURS[v], marker="o", linewidth=1.8, label=v)
                   for v in ("supported", "refuted", "inconclusive")]
        handles += [Patch(facecolor=GREEN, alpha=0.3, label="claimed region"),
                    Line2D([], [], color="#555555", marker="D", linestyle="", label="scaled by the detectable effect")]
        _legend(fig, handles)
    caption = ("Every claim (and stratum) with an interval, its effect and 95% CI placed relative to its own decision "
               "rule: a band [low, high] runs from 0 to 1; a one-sided claim has its refuting boundary at 0 and its "
               "supporting one at 1 (right is always the claimed side); with no margin (one boundary, at 0) or a band "
               "open on one side, one unit is the design's detectable effect (diamonds). Ratios are placed on their "
               "log scale. Colour: the verdict before multiplicity adjustment; arrows: the interval runs beyond the "
               f"plot ({fmt.tick(LIMITS[0])} to {fmt.tick(LIMITS[1])}).")
    return RenderedFigure(title="every claim against its decision rule", caption=caption,
                          svg=to_svg(fig, "summary-forest"))
