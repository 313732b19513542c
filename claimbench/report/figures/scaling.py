"""Figures of the batch-size scaling kinds: ``critical_batch`` (B4) and ``linear_scaling`` (B5)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import matplotlib as mpl
import numpy as np
import pandas as pd
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import FixedLocator, FuncFormatter, LogLocator, NullLocator

from claimbench.claims.base import Claim, ClaimResult
from claimbench.claims.common import noise_scale_curve
from claimbench.report import format as fmt
from claimbench.report.figures.base import RenderedFigure, register_figures
from claimbench.report.figures.style import (BLACK_LINE, BLUE, GREEN, GREY, ORANGE, RED, _legend, _new_figure,
                                             _panels, _rc, _safe, to_svg)
from claimbench.report.figures.panels import first_region, _conf_label, _log_x, _log_y, _no_values, _panel_title, _parts

if TYPE_CHECKING:
    from claimbench.evaluation import Evaluation


# ------------------------------------------------------------------ critical_batch (B4) and linear_scaling (B5)

REGIME_COLOURS = {"perfect scaling": GREEN, "diminishing returns": ORANGE, "maximal data parallelism": GREY}


def _level_rows(part: ClaimResult) -> pd.DataFrame:
    df = pd.DataFrame([r for r in part.data if "level" in r])
    return df.sort_values("level").reset_index(drop=True) if not df.empty else df


def _estimates(part: ClaimResult) -> dict[str, tuple[float, float, float]]:
    """The estimate rows of a critical_batch result: name -> (value, lo, hi)."""
    return {r["estimate"]: (r["value"], r["value_lo"], r["value_hi"]) for r in part.data if "estimate" in r}


def _estimate(est: dict, prefix: str) -> tuple[float, float, float]:
    return next((v for k, v in est.items() if k.startswith(prefix)), (np.nan, np.nan, np.nan))


def _shade_regimes(ax, b_crit: float, factor: float, lo: float, hi: float) -> None:
    if not (np.isfinite(b_crit) and b_crit > 0):
        return
    edges = [lo / 10, b_crit / factor, b_crit * factor, hi * 10]
    for (a, b), name in zip(zip(edges, edges[1:]), REGIME_COLOURS):
        ax.axvspan(max(a, lo / 10), b, color=REGIME_COLOURS[name], alpha=0.09, linewidth=0, zorder=0)
    ax.axvline(b_crit, color=RED, linestyle=":", linewidth=1.3, zorder=1)


@register_figures("critical_batch")
def critical_batch_figures(claim: Claim, result: ClaimResult, evaluation: "Evaluation") -> list[RenderedFigure]:
    """Steps (and examples) to target per batch size with the fit and its regimes; the critical-batch
    estimates with CIs; the optimal LR per batch size against the linear and square-root rules; B_simple
    over training."""
    p = claim.params
    axis, lr_col = p.get("axis", "batch_size"), p.get("lr", "lr")
    parts = [part for part in _parts(result) if any("level" in r for r in part.data)]
    if not parts:
        return []
    factor = float(parts[0].figure_data.get("regime_factor", 4.0))  # the factor the claim's regimes used
    out = []
    with mpl.rc_context(_rc()):
        # 1. steps to target and the trade-off
        fig = _new_figure(7.6, 3.4 * len(parts) + 0.5)
        grid = fig.subplots(len(parts), 2, squeeze=False)
        for (ax, ax2), part in zip(grid, parts):
            df, est = _level_rows(part), _estimates(part)
            x = df["level"].to_numpy(dtype=float)
            s = df["steps_to_target"].to_numpy(dtype=float)
            b_crit = _estimate(est, "critical batch")[0]
            s_min, e_min = _estimate(est, "S_min")[0], _estimate(est, "E_min")[0]
            _shade_regimes(ax, b_crit, factor, x.min(), x.max())
            ok = np.isfinite(s)
            ax.vlines(x[ok], df["steps_lo"][ok], df["steps_hi"][ok], colors=BLUE, linewidth=2.2, zorder=2)
            ax.scatter(x[ok], s[ok], color=BLUE, s=40, zorder=3, edgecolors="white", linewidths=0.8)
            cens = df["censored"].to_numpy(dtype=float) > 0
            if cens.any():
                ax.scatter(x[cens & ok], s[cens & ok], marker="s", facecolors="none", edgecolors=ORANGE, s=70,
                           zorder=4)
            xs = np.geomspace(x.min(), x.max(), 100)
            if np.isfinite(s_min) and np.isfinite(e_min):
                ax.plot(xs, s_min + e_min / xs, color=BLUE, linewidth=1.3, zorder=1.5)
                ax.axhline(s_min, color=GREY, linestyle="--", linewidth=1)
            if ok.any():  # perfect scaling through the smallest batch with a value
                i = int(np.argmax(ok))
                ax.plot(xs, s[i] * x[i] / xs, color=BLACK_LINE, linestyle="--", linewidth=1, zorder=1.2)
            _log_x(ax, list(x))
            _log_y(ax)
            ax.set_xlabel(_safe(axis))
            ax.set_ylabel("steps to target")
            ax.set_title(_panel_title(part) or "steps to target")
            # trade-off: examples vs steps, with the fitted hyperbola
            e = df["examples_to_target"].to_numpy(dtype=float)
            ax2.scatter(s[ok], e[ok], c=[REGIME_COLOURS.get(r, BLUE) for r in df["regime"][ok]], s=40, zorder=3,
                        edgecolors="white", linewidths=0.8)
            for xi, si, ei in zip(x[ok], s[ok], e[ok]):
                ax2.annotate(fmt.tick(xi), (si, ei), textcoords="offset points", xytext=(4, 3), fontsize=7)
            if np.isfinite(s_min) and np.isfinite(e_min):
                ss = np.geomspace(s_min * 1.01, max(s[ok].max() * 1.5, s_min * 3), 200)
                ax2.plot(ss, e_min * (1 + 1 / (ss / s_min - 1)), color=BLUE, linewidth=1.3)
                ax2.axvline(s_min, color=GREY, linestyle="--", linewidth=1)
                ax2.axhline(e_min, color=GREY, linestyle="--", linewidth=1)
            ax2.set_xscale("log")
            ax2.set_yscale("log")
            for a in (ax2.xaxis, ax2.yaxis):
                a.set_major_locator(LogLocator(base=10))
                a.set_major_formatter(FuncFormatter(lambda v, _: fmt.tick(v)))
                a.set_minor_locator(NullLocator())
            ax2.set_xlabel("steps to target")
            ax2.set_ylabel("examples to target")
            ax2.set_title("examples vs steps (fitted trade-off)")
        _legend(fig, [Line2D([], [], marker="o", linestyle="", color=BLUE, label="fastest trial (mean over seeds)"),
                      Line2D([], [], color=BLUE, label="fit S = S_min + E_min / B"),
                      Line2D([], [], color=BLACK_LINE, linestyle="--", label="perfect scaling (slope −1)"),
                      Line2D([], [], color=RED, linestyle=":", label="B_crit = E_min / S_min"),
                      Line2D([], [], marker="s", linestyle="", markerfacecolor="none", color=ORANGE,
                             label="a seed did not reach it"),
                      *[Patch(facecolor=c, alpha=0.3, label=n) for n, c in REGIME_COLOURS.items()]])
        out.append(RenderedFigure(
            title=f"steps to target per {axis}",
            caption=(f"Left: per {axis}, the fewest steps at which any trial (over the tuned axes) first reached "
                     f"the validation target, geometric mean over seeds with its 95% CI (Student t over seeds), on log-log axes; the "
                     f"fit S = S_min + E_min / B (solid), the perfect-scaling line through the smallest {axis} "
                     f"(dashed; slope −1: doubling the batch halves the steps) and S_min (grey). Shading: perfect "
                     f"scaling below B_crit / {factor:g}, maximal data parallelism above {factor:g} B_crit, "
                     f"diminishing returns between. Right: examples against steps to target, each point labelled "
                     f"with its {axis}; the curve is the fitted trade-off."),
            svg=to_svg(fig, f"{claim.id}-steps")))

        # 2. critical-batch estimates with CIs
        fig = _new_figure(6.4, 0.9 + 0.9 * len(parts))
        ax = fig.subplots()
        labels, y = [], 0
        xs_all = []
        for part in parts:
            est = _estimates(part)
            df = _level_rows(part)
            for name, colour in (("critical batch", BLUE), ("gradient noise scale", ORANGE)):
                v, lo, hi = _estimate(est, name)
                if np.isfinite(v) and v > 0:
                    ax.errorbar([v], [y], xerr=[[max(v - lo, 0) if np.isfinite(lo) else 0], [max(hi - v, 0) if np.isfinite(hi) else 0]],
                                fmt="o", color=colour, capsize=4, linewidth=2)
                    xs_all += [x for x in (v, lo, hi) if np.isfinite(x) and x > 0]
                labels.append(("B_crit (fit)" if name == "critical batch" else "B_simple (measured)")
                              + (f"  {_panel_title(part)}" if part.stratum else ""))
                y += 1
            if not df.empty:
                ax.axvspan(df["level"].min(), df["level"].max(), ymin=0, ymax=1, color=GREEN, alpha=0.07, linewidth=0)
                xs_all += [float(df["level"].min()), float(df["level"].max())]
        if xs_all:
            ax.set_xscale("log")
            ax.set_xlim(min(xs_all) / 2, max(xs_all) * 2)
            ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: fmt.tick(v)))
        ax.set_yticks(range(len(labels)), [_safe(t) for t in labels])
        ax.set_ylim(-0.7, len(labels) - 0.3)
        ax.invert_yaxis()
        ax.set_xlabel("batch size")
        _legend(fig, [Line2D([], [], color=BLUE, marker="o", linewidth=2, label=f"critical batch from the fit, {_conf_label(claim)}"),
                      Line2D([], [], color=ORANGE, marker="o", linewidth=2, label="gradient noise scale B_simple"),
                      Patch(facecolor=GREEN, alpha=0.2, label=f"tested {axis} range")])
        out.append(RenderedFigure(
            title="critical-batch estimates",
            caption=(f"The critical batch B_crit = E_min / S_min of the steps-vs-batch fit and the gradient noise "
                     f"scale B_simple = tr(Σ) / |G|² measured during training ({p.get('noise') or 'not measured'}, "
                     f"geometric mean over the fastest trials), each with its 95% CI over seeds (Student t). The claim: "
                     f"they agree within {float(p.get('agree_within', 3)):g}x, with B_crit inside the tested range."),
            svg=to_svg(fig, f"{claim.id}-estimates")))

        # 3. optimal LR per batch size
        fig, axes = _panels(len(parts), 3.8, 3.2)
        for ax, part in zip(axes, parts):
            df = _level_rows(part)
            ax.set_title(_panel_title(part))
            lr = df["best_lr"].to_numpy(dtype=float) if "best_lr" in df else np.array([])
            ok = np.isfinite(lr) & (lr > 0)
            if not ok.any():
                _no_values(ax)
                continue
            x = df["level"].to_numpy(dtype=float)
            ax.vlines(x[ok], df["best_lr_lo"][ok], df["best_lr_hi"][ok], colors=BLUE, linewidth=2.2, zorder=2)
            ax.scatter(x[ok], lr[ok], color=BLUE, s=40, zorder=3, edgecolors="white", linewidths=0.8)
            i = int(np.argmax(ok))
            xs = np.geomspace(x.min(), x.max(), 50)
            ax.plot(xs, lr[i] * xs / x[i], color=GREEN, linestyle="--", linewidth=1.3, label="linear rule")
            ax.plot(xs, lr[i] * np.sqrt(xs / x[i]), color=ORANGE, linestyle="--", linewidth=1.3, label="square-root rule")
            for edge in part.figure_data.get("lr_grid") or ():  # the claim's LR grid (after its where)
                ax.axhline(float(edge), color=GREY, linestyle=":", linewidth=1)
            _log_x(ax, list(x))
            _log_y(ax)
            ax.set_xlabel(_safe(axis))
            ax.set_ylabel(_safe(f"optimal {lr_col}") if ax.get_subplotspec().is_first_col() else "")
        _legend(fig, [Line2D([], [], marker="o", linestyle="", color=BLUE, label="LR of the fastest trial, geometric mean"),
                      Line2D([], [], color=GREEN, linestyle="--", label="linear rule: LR ∝ batch"),
                      Line2D([], [], color=ORANGE, linestyle="--", label="square-root rule: LR ∝ √batch"),
                      Line2D([], [], color=GREY, linestyle=":", label="edges of the LR grid")])
        exponent = _estimate(_estimates(parts[0]), "exponent")
        out.append(RenderedFigure(
            title=f"optimal {lr_col} per {axis}",
            caption=(f"Per {axis}, the {lr_col} of the trial that reached the target in the fewest steps (geometric "
                     f"mean over seeds, 95% CI, Student t over seeds), with the linear and square-root scaling rules drawn through "
                     f"the smallest {axis}. Fitted exponent of {lr_col} in {axis}: {fmt.number(exponent[0])} "
                     f"(CI {fmt.number(exponent[1])} to {fmt.number(exponent[2])}); 1 is the linear rule, 0.5 the "
                     f"square-root rule."),
            svg=to_svg(fig, f"{claim.id}-lr")))

        # 4. B_simple over training
        figure = _noise_figure(claim, parts, evaluation, axis)
        if figure is not None:
            out.append(figure)
    return out




def _noise_figure(claim: Claim, parts: list[ClaimResult], evaluation: "Evaluation", axis: str) -> RenderedFigure | None:
    frame = evaluation.frame
    if "noise_curve" not in frame.columns or frame["noise_curve"].isna().all():
        return None
    fig, axes = _panels(len(parts), 6.0, 3.3)
    cmap = mpl.colormaps["viridis"]
    levels_all: list[float] = []
    for ax, part in zip(axes, parts):
        # the fastest trial per level and seed: the trials the claim's fit used (ClaimResult.selected)
        chosen: dict[float, list[str]] = {}
        for s in part.selected:
            chosen.setdefault(float(s["level"]), []).extend(s["trial_ids"])
        levels = sorted(chosen)
        levels_all = levels
        drew = False
        for j, lv in enumerate(levels):
            curve = noise_scale_curve(frame, chosen[lv])  # the claims layer's estimator
            if not curve.empty:
                colour = cmap(j / max(len(levels) - 1, 1))
                ax.plot(curve["step"] * lv, curve["b_simple"], color=colour, linewidth=1.2, marker="o",
                        markersize=2.5)
                drew = True
        est = _estimate(_estimates(part), "critical batch")
        if np.isfinite(est[0]):
            ax.axhline(est[0], color=RED, linestyle=":", linewidth=1.3)
            if np.isfinite(est[1]):
                ax.axhspan(est[1], est[2], color=RED, alpha=0.08, linewidth=0)
        if not drew:
            _no_values(ax)
            continue
        ax.set_xscale("log")
        _log_y(ax)
        ax.set_title(_panel_title(part))
        ax.set_xlabel("examples seen")
        ax.set_ylabel("B_simple" if ax.get_subplotspec().is_first_col() else "")
    handles = [Line2D([], [], color=cmap(j / max(len(levels_all) - 1, 1)), label=f"{axis} {fmt.tick(lv)}")
               for j, lv in enumerate(levels_all)]
    handles.append(Line2D([], [], color=RED, linestyle=":", label="B_crit (fit) and its CI"))
    _legend(fig, handles)
    return RenderedFigure(
        title="gradient noise scale over training",
        caption=(f"B_simple = tr(Σ) / |G|² at each evaluation of the fastest trial per {axis} (McCandlish et al.'s "
                 f"two-batch-size estimator; |G|² and tr(Σ) averaged over seeds before the ratio), against the "
                 f"examples seen. Points where the |G|² estimate is not positive are left out."),
        svg=to_svg(fig, f"{claim.id}-noise"))


@register_figures("linear_scaling")
def linear_scaling_figures(claim: Claim, result: ClaimResult, evaluation: "Evaluation") -> list[RenderedFigure]:
    """Per batch multiplier k: the scaled run minus the baseline with its CI, per arm, against the margin."""
    p = claim.params
    q = str(p["quantity"])
    parts = [part for part in _parts(result) if part.data]
    if not parts:
        return []
    region = first_region(parts)  # the verdict's rule: d > -margin (every result carries it, undecided too)
    margin = -region[0] if region is not None else 0.0
    colours = {"warmup": BLUE, "none": ORANGE, "all trials": BLUE}
    with mpl.rc_context(_rc()):
        fig = _new_figure(7.6, 3.3 * len(parts) + 0.5)
        grid = fig.subplots(len(parts), 2, squeeze=False)
        for (ax, ax2), part in zip(grid, parts):
            df = pd.DataFrame(part.data)
            ks = sorted(df["k"].unique())
            for i, (arm, sub) in enumerate(df.groupby("arm", sort=False)):
                sub = sub.sort_values("k")
                x = sub["k"].to_numpy(dtype=float) * (1.06 if i else 1 / 1.06)
                colour = colours.get(arm, GREY)
                ax.vlines(x, sub["lo"], sub["hi"], colors=colour, linewidth=2.2, zorder=2)
                ax.plot(x, sub["mean"], color=colour, marker="o", linewidth=1.2, markersize=5, zorder=3, label=arm)
                ax2.plot(sub["k"], sub["scaled"], color=colour, marker="o", linewidth=1.2, markersize=5, label=arm)
                broken = sub[sub["breaks"].astype(bool)]
                ax.scatter(broken["k"].to_numpy(dtype=float) * (1.06 if i else 1 / 1.06), broken["mean"], marker="x",
                           color=RED, s=50, zorder=4)
            ax.axhspan(-margin, max(margin, 1e-9) * 50, color=GREEN, alpha=0.08, linewidth=0, zorder=0)
            ax.axhline(0, color="black", linewidth=0.6)
            ax.axhline(-margin, color=GREEN, linestyle="--", linewidth=1)
            ax.axvline(float(p["min_k"]), color=GREY, linestyle=":", linewidth=1)
            lo = np.nanmin(df["lo"].to_numpy(dtype=float)) if df["lo"].notna().any() else -margin
            hi = np.nanmax(df["hi"].to_numpy(dtype=float)) if df["hi"].notna().any() else margin
            ax.set_ylim(min(lo, -2 * margin) - margin, max(hi, margin) + margin)
            base = df["baseline"].dropna()
            if not base.empty:
                ax2.axhline(float(base.iloc[0]), color="black", linewidth=0.8, linestyle="--")
                ax2.axhspan(float(base.iloc[0]) - margin, float(base.iloc[0]) + margin, color=GREEN, alpha=0.1,
                            linewidth=0)
            for a in (ax, ax2):
                a.set_xscale("log", base=2)
                a.xaxis.set_major_locator(FixedLocator(ks))
                a.xaxis.set_major_formatter(FuncFormatter(lambda v, _: fmt.tick(v)))
                a.xaxis.set_minor_locator(NullLocator())
                a.set_xlabel("batch multiplier k (LR × k)")
            ax.set_ylabel(_safe(f"{q}: k minus baseline"))
            ax2.set_ylabel(_safe(f"mean {q}"))
            ax.set_title(_panel_title(part) or "difference from the baseline")
            ax2.set_title("means over seeds")
        _legend(fig, [Line2D([], [], color=BLUE, marker="o", label="linear scaling + warmup"),
                      Line2D([], [], color=ORANGE, marker="o", label="linear scaling, no warmup"),
                      Line2D([], [], marker="x", linestyle="", color=RED, label="breaks (CI below −margin)"),
                      Patch(facecolor=GREEN, alpha=0.25, label=f"kept: within {margin:g} of the baseline"),
                      Line2D([], [], color=GREY, linestyle=":", label=f"claimed up to k = {fmt.tick(p['min_k'])}")])
        caption = (f"Left: per batch multiplier k (batch and LR both × k, epoch budget), the mean over seeds of the "
                   f"paired difference in {q} from the k = 1 baseline, with its 95% CI (Student t over seeds); k holds while the CI "
                   f"stays above −{margin:g}. Right: the mean {q} per k, the baseline dashed.")
        return [RenderedFigure(title="linear scaling rule per batch multiplier", caption=caption,
                               svg=to_svg(fig, f"{claim.id}-linear"))]
