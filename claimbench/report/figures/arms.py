"""Figures of the quantity-based kinds: ``monotone_trend``, ``ranking``, ``paired_comparison``, ``equivalence``,
``ratio_in_range``, ``timing_ratio``, ``range_width_comparison``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import matplotlib as mpl
import numpy as np
import pandas as pd
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from claimbench.claims.base import Claim, ClaimResult
from claimbench.report import format as fmt
from claimbench.report.figures.base import RenderedFigure, register_figures
from claimbench.report.figures.style import (BLUE, GREEN, GREY, ORANGE, PANEL_MAX_WIDTH, RED, _legend, _new_figure,
                                             _panels, _rc, _safe, to_svg)
from claimbench.report.figures.panels import (arm_tick, claimed_region, panel_heading, first_region, ratio_axis, wrap, _ci_points, _conf_label, _level_x, _log_y, _no_values, _panel_title,
                                              _parts, _quantity_text, _row_panels)

if TYPE_CHECKING:
    from claimbench.evaluation import Evaluation


def _level_panels(result: ClaimResult, inches_per_level: float) -> tuple[Any, list[tuple[Any, ClaimResult, pd.DataFrame]]]:
    """One panel per part of ``result`` (its strata), titled, as wide as its levels need; the parts
    whose per-level table has means, with their axes (the others say there are no values)."""
    parts = _parts(result)
    frames = [pd.DataFrame(part.estimates or part.data) for part in parts]
    n_levels = max((len(df) for df in frames), default=1)
    fig, axes = _panels(len(parts), max(3.2, inches_per_level * n_levels + 1.4), 3.0)
    drawn = []
    for ax, part, df in zip(axes, parts, frames):
        ax.set_title(_panel_title(part))
        if df.empty or "mean" not in df:
            _no_values(ax)
        else:
            drawn.append((ax, part, df))
    return fig, drawn


# ------------------------------------------------------------------ monotone_trend

@register_figures("monotone_trend")
def trend_figures(claim: Claim, result: ClaimResult, evaluation: "Evaluation") -> list[RenderedFigure]:
    """Per level: the mean over seeds of the quantity with its CI, and the fitted direction."""
    p = claim.params
    axis, direction = p["axis"], p.get("direction", "increasing")
    with mpl.rc_context(_rc()):
        fig, drawn = _level_panels(result, 0.3)
        for ax, part, df in drawn:
            x = np.asarray(_level_x(ax, list(df["level"])), dtype=float)
            _ci_points(ax, x, df, [ORANGE if c else BLUE for c in df.get("censored", pd.Series(0, index=df.index))])
            ok = np.isfinite(df["mean"].to_numpy(dtype=float))
            line = part.figure_data.get("trend_line")
            if line and ok.sum() >= 2:  # the claim's least-squares line over the level positions
                pos = df["position"].to_numpy(dtype=float)[ok]
                slope, icpt = line["slope"], line["intercept"]
                agrees = (slope > 0) == (direction == "increasing")
                ax.plot(x[ok], icpt + slope * pos, linestyle="--", linewidth=1.4,
                        color=GREEN if agrees else RED, zorder=1.5)
            ax.set_xlabel(_safe(axis))
            ax.set_ylabel(_safe(_quantity_text(claim)) if ax.get_subplotspec().is_first_col() else "")
        _legend(fig, [Line2D([], [], marker="o", linestyle="", color=BLUE, label="mean over seeds"),
                      Line2D([], [], marker="o", linestyle="", color=ORANGE, label="some cells censored"),
                      Line2D([], [], color=GREY, linewidth=2.2, label=_conf_label(claim)),
                      Line2D([], [], color=GREEN, linestyle="--", label=f"fitted trend: {direction} as claimed"),
                      Line2D([], [], color=RED, linestyle="--", label="fitted trend: the other way")])
        caption = (f"Per {axis}: the mean over seeds of {_quantity_text(claim)} (per seed, over the tuned axes), "
                   f"with its 95% CI (Student t over seeds). Dashed: a least-squares line over the level order, the direction the "
                   f"data take; the claim is {direction} (judged by the rank correlation, not the line).")
        return [RenderedFigure(title=f"{_quantity_text(claim)} along {axis}", caption=caption,
                               svg=to_svg(fig, f"{claim.id}-trend"))]


# ------------------------------------------------------------------ ranking

@register_figures("ranking")
def ranking_figures(claim: Claim, result: ClaimResult, evaluation: "Evaluation") -> list[RenderedFigure]:
    """Observed per-level means with CIs, levels in the claimed order (worst to best)."""
    p = claim.params
    axis, goal = p["axis"], p.get("goal", "higher")
    with mpl.rc_context(_rc()):
        fig, drawn = _level_panels(result, 0.55)
        for ax, part, df in drawn:
            x = np.arange(len(df), dtype=float)
            ax.set_xticks(x, [_safe(fmt.tick(v)) for v in df["level"]])
            ax.set_xlim(-0.5, len(df) - 0.5)
            in_place = [BLUE if r == c else ORANGE for r, c in zip(df["observed_rank"], df["claimed_rank"])]
            _ci_points(ax, x, df, in_place)
            for xi, (m, r) in enumerate(zip(df["mean"], df["observed_rank"])):
                if np.isfinite(m) and r is not None and np.isfinite(r):
                    ax.annotate(f"#{int(r)}", (xi, m), textcoords="offset points", xytext=(7, 4), fontsize=7.5,
                                color=GREY)
            ax.set_xlabel(_safe(f"{axis} (claimed worst → best)"))
            ax.set_ylabel(_safe(_quantity_text(claim)) if ax.get_subplotspec().is_first_col() else "")
        _legend(fig, [Line2D([], [], marker="o", linestyle="", color=BLUE, label="observed rank = claimed rank"),
                      Line2D([], [], marker="o", linestyle="", color=ORANGE, label="observed rank differs"),
                      Line2D([], [], color=GREY, linewidth=2.2, label=_conf_label(claim))])
        caption = (f"The levels of {axis} in the claimed order, worst to best, each with the mean over seeds of "
                   f"{_quantity_text(claim)} ({goal} is better) and its 95% CI (Student t over seeds); #k is the observed rank "
                   f"(1 = worst). A rising sequence ({goal} is better) is the claimed order.")
        return [RenderedFigure(title=f"{axis} in the claimed order", caption=caption,
                               svg=to_svg(fig, f"{claim.id}-ranking"))]


# ------------------------------------------------------------------ paired_comparison

def _paired_panels(claim: Claim, parts: list[ClaimResult], title: str, ylabel: str, diff_label: str,
                   salt: str, caption: str) -> RenderedFigure:
    """Per part: (left) the two arms' means with CIs and each seed's pair joined; (right) each seed's
    difference, the mean difference with the claim's CI, zero and the margin."""
    fig, axes = _row_panels(len(parts), 2, PANEL_MAX_WIDTH, 2.7)
    for (left, right), part in zip(axes, parts):
        df = pd.DataFrame(part.data)
        label = _panel_title(part).replace("\n", ", ")
        if df.empty or not {"a", "b", "difference"} <= set(df.columns):
            _no_values(left)
            _no_values(right)
            continue
        a_name = str(df["arm_a"].iloc[0]) if "arm_a" in df else "a"
        b_name = str(df["arm_b"].iloc[0]) if "arm_b" in df else "b"
        for _, row in df.iterrows():
            left.plot([0, 1], [row["a"], row["b"]], color="#cfcfcf", linewidth=0.9, zorder=1)
        stats = pd.DataFrame(part.estimates, columns=["side", "mean", "lo", "hi"]).set_index("side") \
            .reindex(["a", "b"])  # each arm's mean and interval, from the claim
        _ci_points(left, [0, 1], stats, [BLUE, ORANGE], line=False)
        left.set_xticks([0, 1], [_safe(arm_tick(a_name)), _safe(arm_tick(b_name))], fontsize=7.5)
        left.set_xlim(-0.5, 1.5)
        left.set_ylabel(_safe(wrap(ylabel, 32)))
        panel_heading(left, label, "arms")
        band = claimed_region(part)  # the verdict's own rule
        d = df["difference"].to_numpy(dtype=float)
        ok = np.isfinite(d)
        jitter = np.linspace(-0.12, 0.12, max(int(ok.sum()), 1))[: int(ok.sum())]
        right.scatter(d[ok], jitter, color=GREY, s=22, zorder=3, label="per seed")
        xs = [0.0, *d[ok]]
        if part.effect is not None and part.ci is not None and np.isfinite(part.effect):
            right.errorbar([part.effect], [0.3], xerr=[[part.effect - part.ci[0]], [part.ci[1] - part.effect]],
                           fmt="o", color=BLUE, capsize=4, linewidth=2, zorder=4)
            xs += [part.effect, *part.ci]
        if band is not None:
            xs += [b for b in band if np.isfinite(b)]
        xs = [x for x in xs if np.isfinite(x)]
        pad = 0.12 * (max(xs) - min(xs)) or 0.01
        right.set_xlim(min(xs) - pad, max(xs) + pad)
        right.xaxis.set_major_locator(mpl.ticker.MaxNLocator(5))  # readable ticks on a narrow panel
        if band is not None:  # the region the CI must lie in, drawn within the visible range
            lo_x, hi_x = right.get_xlim()
            right.axvspan(max(band[0], lo_x), min(band[1], hi_x), color=GREEN, alpha=0.12, linewidth=0, zorder=0)
        right.axvline(0, color="black", linewidth=0.8, zorder=1)
        right.set_ylim(-0.5, 0.6)
        right.set_yticks([])
        right.set_xlabel(_safe(wrap(diff_label, 48)))
        right.set_title(f"{part.verdict}", fontsize=9.5)
    handles = [Line2D([], [], marker="o", linestyle="", color=BLUE, label="a: mean, CI"),
               Line2D([], [], marker="o", linestyle="", color=ORANGE, label="b: mean, CI"),
               Line2D([], [], marker="o", linestyle="", color=GREY, label="difference per seed"),
               Line2D([], [], color=BLUE, marker="o", linewidth=2, label=f"mean difference, {_conf_label(claim)}")]
    if any(claimed_region(part) is not None for part in parts):
        handles.append(Patch(facecolor=GREEN, alpha=0.25, label="claimed: where the CI must lie"))
    _legend(fig, handles)
    return RenderedFigure(title=title, caption=caption, svg=to_svg(fig, salt))


def _claimed_text(parts: list[ClaimResult]) -> str:
    """The decision band of the first part that carries one, as the verdict table writes it."""
    part = next((p for p in parts if p.band), None)
    return fmt.claimed(part.band, part.unit) if part is not None else "none (the claim cannot decide)"


@register_figures("paired_comparison")
def paired_comparison_figures(claim: Claim, result: ClaimResult, evaluation: "Evaluation") -> list[RenderedFigure]:
    p = claim.params
    q, test = _quantity_text(claim), p.get("test", "superiority")
    relative = bool(p.get("relative", False))
    what = f"log({q} a / b)" if relative else f"{q} a − b"
    signed = " (signed: positive favours a)" if p.get("goal", "higher") == "lower" else ""
    parts = _parts(result)
    caption = (f"Left: the mean over seeds of {q} in each arm with its 95% CI (Student t over seeds); grey lines join the two "
               f"arms of one seed (same init and data). Right: each seed's {what}{signed}, their mean with the "
               f"claim's CI, and the shaded region the CI must lie in for {test}: {_claimed_text(parts)}.")
    with mpl.rc_context(_rc()):
        return [_paired_panels(claim, parts, f"{q}: a vs b, paired by seed", q, what + signed,
                               f"{claim.id}-paired", caption)]


# ------------------------------------------------------------------ equivalence

@register_figures("equivalence")
def equivalence_figures(claim: Claim, result: ClaimResult, evaluation: "Evaluation") -> list[RenderedFigure]:
    p = claim.params
    q = _quantity_text(claim)
    best = p.get("b") == "best"
    what = f"{q} a − best {p.get('axis')}" if best else f"{q} a − b"
    parts = _parts(result)
    caption = (f"Left: the mean over seeds of {q} for a and for "
               + (f"the best {p.get('axis')} level (chosen on all seeds)" if best else "b")
               + f", with 95% CIs (Student t over seeds); grey lines join one seed. Right: each seed's {what}, the mean "
               f"difference with the claim's CI"
               + (" (its bounds cover every level, so the choice of the best is accounted for)" if best else "")
               + f", and the band the CI must lie in: {_claimed_text(parts)}.")
    with mpl.rc_context(_rc()):
        return [_paired_panels(claim, parts, f"{q}: a against " + ("the best level" if best else "b"),
                               q, what, f"{claim.id}-equivalence", caption)]


# ------------------------------------------------------------------ ratio_in_range and timing_ratio

def _ratio_figure(claim: Claim, result: ClaimResult, title: str, num: str, den: str) -> RenderedFigure:
    parts = _parts(result)
    region = first_region(parts)  # the verdict's band (undecided results carry it too)
    low, high = region if region is not None else (np.nan, np.nan)
    labelled = any(part.stratum for part in parts)
    fig = _new_figure(max(4.2, 1.3 * len(parts) + 2.0), 3.6)
    ax = fig.subplots()
    ys: list[float] = []
    for i, part in enumerate(parts):
        df = pd.DataFrame(part.data)
        r = df["ratio"].to_numpy(dtype=float) if "ratio" in df else np.array([])
        r = r[np.isfinite(r) & (r > 0)]
        ax.scatter(i + np.linspace(-0.15, 0.15, max(r.size, 1))[: r.size], r, color=GREY, s=20, zorder=3)
        ys += list(r)
        if part.effect is not None and part.ci is not None and np.isfinite(part.effect) and part.effect > 0:
            lo, hi = part.ci
            ax.errorbar([i + 0.3], [part.effect], yerr=[[part.effect - lo], [hi - part.effect]], fmt="o",
                        color=BLUE, capsize=4, linewidth=2, zorder=4)
            ys += [part.effect, lo, hi]
    finite = [y for y in ys + [low, high] if np.isfinite(y) and y > 0]
    if finite:
        ymin, ymax = min(finite) / 1.6, max(finite) * 1.6
    else:
        ymin, ymax = 0.1, 10.0
        _no_values(ax)
    if region is not None:
        ax.axhspan(max(low, ymin / 10), min(high, ymax * 10), color=GREEN, alpha=0.12, linewidth=0, zorder=0)
    ax.axhline(1.0, color="black", linewidth=0.6, zorder=1)
    ratio_axis(ax, ymin, ymax, [v for v in (low, high) if np.isfinite(v) and v > 0])
    if labelled:
        ax.set_xticks(range(len(parts)), [_panel_title(part) for part in parts],
                      fontsize=7.5 if len(parts) > 3 else 8.5)
    else:  # one stratum: nothing to name on x
        ax.set_xticks([])
    ax.set_xlim(-0.6, len(parts) - 0.4)
    ax.set_ylabel("ratio (log scale)")
    ax.set_title(_safe(wrap(f"{num} / {den}", 60)), fontsize=8.5, fontweight="normal")
    high_text = "∞" if not np.isfinite(high) else fmt.tick(high)
    claimed = f"[{fmt.tick(low)}, {high_text}]" if region is not None else "none (the claim cannot decide)"
    _legend(fig, [Line2D([], [], marker="o", linestyle="", color=GREY, label="ratio per seed"),
                  Line2D([], [], color=BLUE, marker="o", linewidth=2, label=f"geometric mean, {_conf_label(claim)}"),
                  Patch(facecolor=GREEN, alpha=0.25, label=f"claimed range {claimed}")])
    caption = (f"Each seed's ratio ({num}) / ({den}), paired by seed, on a log scale; the blue point is the "
               f"geometric mean over seeds with its 95% CI (Student t over seeds), the shaded band the claimed range "
               f"{claimed} (supported when the CI lies inside it).")
    return RenderedFigure(title=title, caption=caption, svg=to_svg(fig, f"{claim.id}-ratio"))


def _side_text(side: Any, default_q: str) -> str:
    side = side if isinstance(side, dict) else {}
    where = side.get("where") or {}
    q = side.get("quantity") or default_q
    return q + (" of " + ", ".join(f"{k}={fmt.parameter(v)}" for k, v in where.items()) if where else "")


@register_figures("ratio_in_range")
def ratio_figures(claim: Claim, result: ClaimResult, evaluation: "Evaluation") -> list[RenderedFigure]:
    p = claim.params
    q = _quantity_text(claim)
    with mpl.rc_context(_rc()):
        return [_ratio_figure(claim, result, "ratio per seed", _side_text(p.get("num"), q),
                              _side_text(p.get("den"), q))]


@register_figures("timing_ratio")
def timing_figures(claim: Claim, result: ClaimResult, evaluation: "Evaluation") -> list[RenderedFigure]:
    p = claim.params
    q = str(p.get("quantity", "mean:time_per_step_s"))
    with mpl.rc_context(_rc()):
        return [_ratio_figure(claim, result, f"{q}: a / b per seed", _side_text({"where": p.get("a")}, q),
                              _side_text({"where": p.get("b")}, q))]


# ------------------------------------------------------------------ range_width_comparison

@register_figures("range_width_comparison")
def range_width_comparison_figures(claim: Claim, result: ClaimResult,
                                   evaluation: "Evaluation") -> list[RenderedFigure]:
    """The good range of the range axis per arm and seed (a bar from its lowest to its highest good value)."""
    p = claim.params
    range_axis = p.get("range_axis", "lr")
    parts = _parts(result)
    with mpl.rc_context(_rc()):
        frames = [pd.DataFrame(part.data) for part in parts]
        n_seeds = max((df["seed"].nunique() for df in frames if "seed" in df), default=1)
        fig, axes = _panels(len(parts), max(3.2, 0.45 * n_seeds + 1.6), 3.0)
        colors = {"a": BLUE, "b": ORANGE}
        for ax, part, df in zip(axes, parts, frames):
            edges = part.figure_data.get("grid")  # the claim's grid of the range axis (its ends censor a range)
            grid = [edges["low"], edges["high"]] if edges else []
            ax.set_title(_panel_title(part))
            if df.empty or not {"lo", "hi", "side"} <= set(df.columns):
                _no_values(ax)
                continue
            seeds = sorted(df["seed"].unique())
            ys = []
            for side, offset in (("a", -0.15), ("b", 0.15)):
                sub = df[(df["side"] == side)].dropna(subset=["lo", "hi"])
                x = np.array([seeds.index(s) for s in sub["seed"]], dtype=float) + offset
                lo, hi = sub["lo"].to_numpy(dtype=float), sub["hi"].to_numpy(dtype=float)
                ax.vlines(x, lo, hi, colors=colors[side], linewidth=5, alpha=0.85, zorder=2)
                ax.scatter(np.r_[x, x], np.r_[lo, hi], color=colors[side], s=30, zorder=3, edgecolors="white",
                           linewidths=0.6)  # a single good value is a dot
                if grid:  # the end that touches the grid: the true range may extend beyond it
                    ax.scatter(x[hi >= grid[-1]], hi[hi >= grid[-1]], marker="^", color=RED, s=26, zorder=4)
                    ax.scatter(x[lo <= grid[0]], lo[lo <= grid[0]], marker="v", color=RED, s=26, zorder=4)
                ys += list(lo) + list(hi)
            ax.set_xticks(range(len(seeds)), [str(s) for s in seeds])
            ax.set_xlim(-0.6, len(seeds) - 0.4)
            ax.set_xlabel("seed")
            ys = [y for y in ys if np.isfinite(y) and y > 0]
            if ys:
                _log_y(ax)
                ax.set_ylim(min(ys) / 10 ** 0.4, max(ys) * 10 ** 0.4)
            ax.set_ylabel(_safe(f"good {range_axis}") if ax.get_subplotspec().is_first_col() else "")
        a_text = ", ".join(f"{k}={fmt.parameter(v)}" for k, v in (p.get("a") or {}).items())
        b_text = ", ".join(f"{k}={fmt.parameter(v)}" for k, v in (p.get("b") or {}).items())
        _legend(fig, [Line2D([], [], color=BLUE, linewidth=5, label=_safe(f"a: {a_text}")),
                      Line2D([], [], color=ORANGE, linewidth=5, label=_safe(f"b: {b_text}")),
                      Line2D([], [], marker="^", linestyle="", color=RED, label="touches the grid edge (censored)")])
        caption = (f"Per seed, the good {range_axis} range of each arm: the {range_axis} values whose best trial "
                   f"reached within {fmt.parameter(p.get('tolerance', 0.01))} of the best "
                   f"{p.get('metric') or p.get('select', 'val_acc')}, drawn from the lowest to the highest good "
                   f"value. The claim compares the widths (log2 units, one grid step added), paired by seed.")
        return [RenderedFigure(title=f"good {range_axis} range per arm and seed", caption=caption,
                               svg=to_svg(fig, f"{claim.id}-widths"))]
