"""Figures of the frontier kinds: ``power_law_slope`` and ``lr_surge`` (the tuned value per level on log-log
axes with the fitted slope) and ``noise_scale_growth`` (B_simple over training per batch size, and the
per-level rank correlations). Every number drawn comes from the result's ``data`` or, for the noise curves,
from the trials the result selected."""

from __future__ import annotations

from typing import TYPE_CHECKING

import matplotlib as mpl
import numpy as np
import pandas as pd
from matplotlib.lines import Line2D

from claimbench.claims.base import Claim, ClaimResult
from claimbench.claims.common import noise_scale_curve
from claimbench.report import format as fmt
from claimbench.report.figures.base import RenderedFigure, register_figures
from claimbench.report.figures.panels import _log_y, _no_values, _panel_title, _parts
from claimbench.report.figures.style import BLUE, GREEN, GREY, ORANGE, RED, _legend, _new_figure, _panels, _rc, _safe, to_svg

if TYPE_CHECKING:
    from claimbench.evaluation import Evaluation


def _levels(part: ClaimResult) -> pd.DataFrame:
    df = pd.DataFrame([r for r in part.data if "level" in r])
    return df.sort_values("level").reset_index(drop=True) if not df.empty else df


def _estimate(part: ClaimResult, prefix: str) -> float:
    return next((float(r["value"]) for r in part.data if str(r.get("estimate", "")).startswith(prefix)), np.nan)


def _log2_x(ax, levels) -> None:
    ax.set_xscale("log", base=2)
    ax.set_xticks(list(levels))
    ax.xaxis.set_major_formatter(mpl.ticker.FuncFormatter(lambda v, _: fmt.tick(v)))
    ax.xaxis.set_minor_locator(mpl.ticker.NullLocator())


def _tuned_figure(claim: Claim, result: ClaimResult, surge: bool) -> list[RenderedFigure]:
    p = claim.params
    axis, of = p.get("axis", "batch_size"), p.get("of", "lr")
    parts = [part for part in _parts(result) if any("level" in r for r in part.data)]
    if not parts:
        return []
    with mpl.rc_context(_rc()):
        fig, axes = _panels(len(parts), 4.2, 3.4)
        for ax, part in zip(axes, parts):
            df = _levels(part)
            ok = df["best"].notna() & (df["best"] > 0)
            if not ok.any():
                _no_values(ax)
                continue
            d = df[ok]
            x = d["level"].to_numpy(dtype=float)
            lo = (d["best"] - d["best_lo"]).clip(lower=0).fillna(0)
            hi = (d["best_hi"] - d["best"]).clip(lower=0).fillna(0)
            ax.errorbar(x, d["best"], yerr=[lo, hi], color=BLUE, marker="o", linestyle="", capsize=3, zorder=3)
            fit = d[d["fitted"].notna()]
            ax.plot(fit["level"], fit["fitted"], color=ORANGE, linestyle="--", linewidth=1.3, zorder=2)
            if surge:
                split = _estimate(part, "split")
                peak = _estimate(part, "peak")
                noise = _estimate(part, "gradient noise scale")
                if np.isfinite(split):
                    ax.axvline(split, color=GREY, linestyle=":", linewidth=1.2)
                if np.isfinite(peak):
                    ax.axvline(peak, color=RED, linestyle="-", linewidth=1.0, alpha=0.7)
                if np.isfinite(noise):
                    ax.axvline(noise, color=GREEN, linestyle="-.", linewidth=1.2)
            _log2_x(ax, df["level"].to_numpy(dtype=float))
            _log_y(ax)
            ax.set_xlabel(_safe(axis))
            ax.set_ylabel(_safe(f"best {of}") if ax.get_subplotspec().is_first_col() else "")
            ax.set_title(_panel_title(part) or _safe(f"best {of} per {axis}"))
        handles = [Line2D([], [], color=BLUE, marker="o", linestyle="", label=f"best {of}, geometric mean over seeds (95% CI)"),
                   Line2D([], [], color=ORANGE, linestyle="--", label="mean per-seed slope" + (" (every level)" if surge else ""))]
        if surge:
            handles += [Line2D([], [], color=GREY, linestyle=":", label="split (pre-registered)"),
                        Line2D([], [], color=RED, label="peak (geometric mean over seeds)"),
                        Line2D([], [], color=GREEN, linestyle="-.", label="B_simple of the selected trials")]
        _legend(fig, handles)
        effect = result.effect if result.effect is not None else float("nan")
        caption = (f"Per {axis}, the {of} of the trial best on {p.get('select', 'val_acc')} (geometric mean over seeds, "
                   f"95% CI: Student t on the logs), on log-log axes. ")
        if surge:
            caption += (f"A surge is a rise up to the split and a fall from it; the fall's mean per-seed slope is "
                        f"{fmt.number(effect)}.")
        else:
            caption += f"The dashed line has the mean per-seed slope, {fmt.number(effect)}."
        return [RenderedFigure(title=f"best {of} per {axis}", caption=caption,
                               svg=to_svg(fig, f"{claim.id}-{'surge' if surge else 'slope'}"))]


@register_figures("power_law_slope")
def power_law_slope_figures(claim: Claim, result: ClaimResult, evaluation: "Evaluation") -> list[RenderedFigure]:
    """The tuned value per level on log-log axes with the line of the mean per-seed slope."""
    return _tuned_figure(claim, result, surge=False)


@register_figures("lr_surge")
def lr_surge_figures(claim: Claim, result: ClaimResult, evaluation: "Evaluation") -> list[RenderedFigure]:
    """The best LR per batch on log-log axes, the split, the peak and B_simple."""
    return _tuned_figure(claim, result, surge=True)


@register_figures("noise_scale_growth")
def noise_scale_growth_figures(claim: Claim, result: ClaimResult, evaluation: "Evaluation") -> list[RenderedFigure]:
    """B_simple over training of the selected trials per batch size; the per-level Spearman rho with its CI."""
    axis = claim.params.get("axis", "batch_size")
    parts = [part for part in _parts(result) if any("level" in r for r in part.data)]
    frame = evaluation.frame
    if not parts or "noise_curve" not in frame.columns:
        return []
    cmap = mpl.colormaps["viridis"]
    with mpl.rc_context(_rc()):
        fig = _new_figure(7.6, 3.3 * len(parts) + 0.5)
        grid = fig.subplots(len(parts), 2, squeeze=False)  # own y axes: B_simple (log) and rho
        for (ax, ax2), part in zip(grid, parts):
            chosen: dict[float, list[str]] = {}
            for s in part.selected:
                chosen.setdefault(float(s["level"]), []).extend(s["trial_ids"])
            levels = sorted(chosen)
            drew = False
            for j, lv in enumerate(levels):
                curve = noise_scale_curve(frame, chosen[lv])  # the claims layer's estimator (means before the ratio)
                if not curve.empty:
                    ax.plot(curve["step"], curve["b_simple"], color=cmap(j / max(len(levels) - 1, 1)), marker="o",
                            markersize=2.5, linewidth=1.2, label=f"{axis} {fmt.tick(lv)}")
                    drew = True
            if drew:
                ax.set_xscale("log")
                _log_y(ax)
                ax.legend(fontsize=7)
            else:
                _no_values(ax)
            ax.set_xlabel("step")
            ax.set_ylabel("B_simple")
            ax.set_title(_panel_title(part) or "B_simple over training")
            df = _levels(part)
            ok = df["rho"].notna() if "rho" in df else pd.Series(dtype=bool)
            if ok.any():
                d = df[ok]
                x = np.arange(len(d))
                lo = (d["rho"] - d["rho_lo"]).fillna(0).clip(lower=0)
                hi = (d["rho_hi"] - d["rho"]).fillna(0).clip(lower=0)
                ax2.errorbar(x, d["rho"], yerr=[lo, hi], color=BLUE, marker="o", linestyle="", capsize=3)
                ax2.set_xticks(x, [fmt.tick(v) for v in d["level"]])
                ax2.axhline(0, color="black", linewidth=0.7)
                if result.effect is not None and part is parts[0] and len(parts) == 1:
                    ax2.axhline(result.effect, color=GREEN, linestyle="--", linewidth=1.1)
                ax2.set_ylim(-1.05, 1.05)
            else:
                _no_values(ax2)
            ax2.set_xlabel(_safe(axis))
            ax2.set_ylabel("Spearman rho (B_simple, step)")
            ax2.set_title("per batch size (95% CI over seeds)")
        _legend(fig, [Line2D([], [], color=BLUE, marker="o", linestyle="", label="mean rho over seeds per batch size"),
                      Line2D([], [], color=GREEN, linestyle="--", label="the claim's statistic (mean over seeds)")])
        caption = (f"Left: B_simple = tr(Σ) / |G|² at each evaluation of the trial best on validation per {axis} (|G|² "
                   f"and tr(Σ) averaged over seeds before the ratio; points with a non-positive |G|² estimate left "
                   f"out). Right: per {axis}, the mean over seeds of each trial's Spearman rho of B_simple against the "
                   f"step, with its 95% CI (Student t over seeds); the claim is that the mean over batch sizes is above 0.")
        return [RenderedFigure(title="gradient noise scale over training", caption=caption,
                               svg=to_svg(fig, f"{claim.id}-growth"))]
