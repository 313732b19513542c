"""Figures of the per-level kinds over a tuned grid: ``best_level_in_range`` (heatmap, best level per level)
and ``range_width_trend`` (good ranges, their widths)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import matplotlib as mpl
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.lines import Line2D
from matplotlib.patches import Patch, Rectangle

from claimbench.claims.base import Claim, ClaimResult
from claimbench.report import format as fmt
from dataclasses import dataclass
from claimbench.report.figures.base import RenderedFigure, register_figures
from claimbench.report.figures.style import (BLUE, GREY, HEATMAP_CMAP, ORANGE, RED, _legend, _new_figure, _panels,
                                             _rc, _safe, to_svg)
from claimbench.report.figures.panels import (_grid, _level_frame, _log_x, _log_y, _mean_ci_figure,
                                              _numeric_positive, _panel_title, _parts, _subframe)

if TYPE_CHECKING:
    from claimbench.evaluation import Evaluation


# ------------------------------------------------------------------ best_level_in_range (B2)

@dataclass
class _Heat:
    mean: pd.DataFrame  # rows: nuisance values (descending), columns: levels
    outlined: pd.DataFrame  # True at the nuisance value the claim outlines per level
    n: pd.DataFrame  # trials with a record
    diverged: pd.DataFrame


def _heat(heatmap: dict[str, Any] | None, levels: list[Any], values: list[Any]) -> _Heat:
    """The claim's heatmap cells (``ClaimResult.figure_data["heatmap"]``) shaped as nuisance values
    (descending) x levels on the tested grid; a cell the claim has no record of is NaN / 0."""
    names = heatmap or {}
    index, columns = pd.Index(values[::-1], name=names.get("nuisance")), pd.Index(levels, name=names.get("axis"))
    cells = pd.DataFrame((heatmap or {}).get("cells") or [], columns=["level", "value", "n", "diverged", "mean"])

    def shaped(column: str, fill) -> pd.DataFrame:
        if cells.empty:
            return pd.DataFrame(fill, index=index, columns=columns)
        table = cells.pivot_table(index="value", columns="level", values=column, aggfunc="first", dropna=False)
        return table.reindex(index=index, columns=columns).fillna(fill)

    outlined = pd.DataFrame(False, index=index, columns=columns)
    for o in (heatmap or {}).get("outlined") or []:
        if o["value"] in index and o["level"] in columns:
            outlined.loc[o["value"], o["level"]] = True
    return _Heat(mean=shaped("mean", np.nan).astype(float), outlined=outlined,
                 n=shaped("n", 0).astype(int), diverged=shaped("diverged", 0).astype(int))


def _draw_heat(ax, heat: _Heat, vmin: float, vmax: float, axis: str, nuisance: str) -> None:
    n_rows, n_cols = heat.mean.shape
    small = n_cols > 8 or n_rows > 10
    annot = np.full(heat.mean.shape, "", dtype=object)
    for i in range(n_rows):
        for j in range(n_cols):
            value, n, div = heat.mean.iat[i, j], heat.n.iat[i, j], heat.diverged.iat[i, j]
            if np.isfinite(value):
                annot[i, j] = f"{value:.2f}" if small else f"{value:.3f}"
                if div:
                    annot[i, j] += f"\n{div}/{n}×"
    ax.set_facecolor("#f4f4f4")
    sns.heatmap(heat.mean, ax=ax, cmap=HEATMAP_CMAP, vmin=vmin, vmax=vmax, cbar=False, annot=annot, fmt="",
                annot_kws={"fontsize": 6.5 if small else 7.5}, linewidths=1.0, linecolor="white", square=False,
                xticklabels=[_safe(fmt.tick(v)) for v in heat.mean.columns],
                yticklabels=[_safe(fmt.tick(v)) for v in heat.mean.index])
    for i in range(n_rows):
        for j in range(n_cols):
            if np.isfinite(heat.mean.iat[i, j]):
                continue
            n, div = heat.n.iat[i, j], heat.diverged.iat[i, j]
            if n and div == n:  # every trial of the cell diverged
                ax.add_patch(Rectangle((j, i), 1, 1, facecolor="#fbe3d6", edgecolor="white", linewidth=1.0,
                                       hatch="////", zorder=2))
                ax.text(j + 0.5, i + 0.5, "×", ha="center", va="center", fontsize=13, color=RED, zorder=3,
                        fontweight="bold")
            else:  # no record yet, or failed
                ax.text(j + 0.5, i + 0.5, "n/a" if n == 0 else "failed", ha="center", va="center",
                        fontsize=6.5, color=GREY, zorder=3)
    # outline the nuisance value the claim names per level (its best mean selection metric)
    for j in range(n_cols):
        for i in range(n_rows):
            if heat.outlined.iat[i, j]:
                ax.add_patch(Rectangle((j + 0.04, i + 0.04), 0.92, 0.92, fill=False, edgecolor="black",
                                       linewidth=1.6, zorder=4))
    ax.set_xlabel(_safe(axis))
    ax.set_ylabel(_safe(nuisance))
    ax.tick_params(axis="y", rotation=0)
    ax.tick_params(axis="x", rotation=0)
    ax.grid(False)


@register_figures("best_level_in_range")
def best_level_figures(claim: Claim, result: ClaimResult, evaluation: "Evaluation") -> list[RenderedFigure]:
    """(a) heatmap level x nuisance of the mean test metric, diverged cells marked, one panel per
    stratum; (b) the best metric per level with its CI, the claimed range shaded."""
    p = claim.params
    axis, metric = p["axis"], p.get("metric", "test_acc")
    parts = _parts(result)
    heatmap = next((part.figure_data["heatmap"] for part in parts if part.figure_data.get("heatmap")), None)
    out = []
    with mpl.rc_context(_rc()):
        if heatmap is not None:
            out.append(_heatmap_figure(claim, parts, evaluation, heatmap))
        out.append(_best_level_figure(claim, parts, axis, metric, heatmap["nuisance"] if heatmap else None))
    return out


def _heatmap_figure(claim: Claim, parts: list[ClaimResult], evaluation: "Evaluation",
                    first: dict[str, Any]) -> RenderedFigure:
    frame = evaluation.frame
    axis, nuisance, metric, select = first["axis"], first["nuisance"], first["metric"], first["select"]
    levels, values = _grid(evaluation, axis, frame), _grid(evaluation, nuisance, frame)
    heats = [_heat(part.figure_data.get("heatmap"), levels, values) for part in parts]
    finite = np.concatenate([h.mean.to_numpy(dtype=float).ravel() for h in heats])
    finite = finite[np.isfinite(finite)]
    vmin, vmax = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
    if vmin == vmax:
        vmin, vmax = vmin - 0.01, vmax + 0.01
    panel_w = max(2.6, 0.3 * len(levels) + 1.0)
    height = max(2.6, 0.34 * len(values) + 1.3)
    fig, axes = _panels(len(parts), panel_w, height, extra_w=0.9)
    for ax, part, heat in zip(axes, parts, heats):
        _draw_heat(ax, heat, vmin, vmax, axis, nuisance)
        ax.set_title(_panel_title(part))
        if not ax.get_subplotspec().is_first_col():
            ax.set_ylabel("")
            ax.tick_params(axis="y", left=False)
    mappable = axes[0].collections[0]
    rows = len({ax.get_subplotspec().rowspan.start for ax in axes})
    fig.colorbar(mappable, ax=list(axes), label=_safe(f"mean {metric}"), shrink=0.9 if rows == 1 else 0.45,
                 pad=0.02, aspect=25)
    caption = (f"Mean {metric} over seeds for each {axis} × {nuisance} cell"
               + (" (best over the other nuisance axes per seed, chosen on " + select + ")"
                  if first.get("other_nuisance") else "")
               + f". Outlined: the {nuisance} with the best mean {select} at each {axis} (what isolation picks"
               f" most often). × on hatching: every trial of the cell diverged; k/n×: k of its n trials"
               f" diverged (the mean is over the rest); n/a: no record yet; failed: no usable trial.")
    return RenderedFigure(title=f"{metric} by {axis} and {nuisance}", caption=caption,
                          svg=to_svg(fig, f"{claim.id}-heatmap"))


def _best_level_figure(claim: Claim, parts: list[ClaimResult], axis: str, metric: str,
                       nuisance: str | None) -> RenderedFigure:
    p = claim.params
    low, high = next((part.figure_data["claimed_levels"] for part in parts if part.figure_data.get("claimed_levels")),
                     (np.nan, np.nan))  # the levels the claim calls inside, as the claim used them

    def shade_range(ax, log_x: bool) -> None:
        if log_x:
            ax.axvspan(max(low, 1e-300), high, color=BLUE, alpha=0.09, zorder=0, linewidth=0)

    fig = _mean_ci_figure(parts, 3.0, axis, f"{metric} (best {nuisance})" if nuisance else metric,
                          hue_of=lambda df: np.where(df["inside"].astype(bool), "inside", "outside"),
                          palette={"inside": BLUE, "outside": ORANGE}, before=shade_range)
    handles = [Patch(facecolor=BLUE, alpha=0.15, label=f"claimed range [{fmt.tick(low)}, {fmt.tick(high)}]"),
               Line2D([], [], marker="o", linestyle="", color=BLUE, label="level inside the range"),
               Line2D([], [], marker="o", linestyle="", color=ORANGE, label="level outside the range"),
               Line2D([], [], color=GREY, linewidth=2.2, label=f"{fmt.tick(p.get('confidence', 0.95) * 100)}% CI over seeds")]
    _legend(fig, handles)
    caption = (f"Per {axis}: the mean over seeds of {metric} of the best trial over the nuisance axes "
               f"(chosen per seed on {p.get('select', 'val_acc')}), with its 95% CI (Student t over seeds); "
               f"the shaded band is the claimed range.")
    return RenderedFigure(title=f"best {metric} per {axis}", caption=caption, svg=to_svg(fig, f"{claim.id}-levels"))


# ------------------------------------------------------------------ range_width_trend (B3)

@register_figures("range_width_trend")
def range_width_figures(claim: Claim, result: ClaimResult, evaluation: "Evaluation") -> list[RenderedFigure]:
    """(a) the good range of the nuisance axis per level, raw and divided by the level, diverged
    grid points marked, one row per stratum; (b) the mean width of that range per level with its CI."""
    p = claim.params
    axis, range_axis = p["axis"], p.get("range_axis", "lr")
    parts = _parts(result)
    with mpl.rc_context(_rc()):
        return [_range_figure(claim, parts, evaluation, axis, range_axis),
                _width_figure(claim, parts, axis, range_axis)]


def _range_figure(claim: Claim, parts: list[ClaimResult], evaluation: "Evaluation", axis: str,
                  range_axis: str) -> RenderedFigure:
    frame = evaluation.frame
    levels = _grid(evaluation, axis, frame)
    log_x = _numeric_positive(levels)
    fig = _new_figure(2 * max(3.6, 0.42 * len(levels) + 2.0), 3.1 * len(parts) + 0.4)
    rows = fig.subfigures(len(parts), 1, squeeze=False)[:, 0]  # one row per stratum, titled by it
    for subfig, part in zip(rows, parts):
        df = _level_frame(part)
        sub = _subframe(frame, part.stratum)
        if part.stratum:
            subfig.suptitle(_panel_title(part).replace("\n", ", "), fontweight="bold", fontsize=10.5)
        for ax, per_level in zip(subfig.subplots(1, 2), (False, True)):
            _draw_ranges(ax, df, sub, axis, range_axis, per_level)
            if log_x:
                _log_x(ax, levels)
            name = _safe(f"{range_axis} / {axis}" if per_level else range_axis)
            ax.set_title(name, fontweight="normal", fontsize=9.5)
            ax.set_xlabel(_safe(axis))
            ax.set_ylabel(name)
    handles = [Line2D([], [], color=BLUE, linewidth=5, label=f"good {range_axis} range (median over seeds)"),
               Line2D([], [], color=ORANGE, linewidth=5, label="censored: touches the grid edge"),
               Line2D([], [], marker="o", linestyle="", color="#bdbdbd", markersize=4, label="tested"),
               Line2D([], [], marker="X", linestyle="", color=RED, label="diverged (all seeds)"),
               Line2D([], [], marker="X", linestyle="", color=RED, alpha=0.35, label="diverged (some seeds)")]
    _legend(fig, handles)
    caption = (f"For each {axis}, the range of {range_axis} values that trained stably and reached within "
               f"{fmt.parameter(claim.params.get('tolerance', 0.01))} of the best {claim.params.get('metric', 'val_acc')} "
               f"(bar from the median lowest to the median highest good value over seeds). Right: the same range "
               f"divided by {axis}, where a linear-scaling rule would make the bars line up. "
               f"× marks grid points that diverged.")
    return RenderedFigure(title=f"good {range_axis} range per {axis}", caption=caption,
                          svg=to_svg(fig, f"{claim.id}-ranges"))


def _draw_ranges(ax, df: pd.DataFrame, sub: pd.DataFrame, axis: str, range_axis: str, per_level: bool) -> None:
    scale = (lambda lv: float(lv)) if per_level else (lambda lv: 1.0)
    # the tested grid, diverged points marked
    if not sub.empty and {axis, range_axis} <= set(sub.columns):
        cells = (sub.assign(_div=sub["status"].eq("diverged"))
                 .groupby([axis, range_axis])["_div"].agg(["sum", "size"]).reset_index())
        cells["y"] = cells[range_axis].astype(float) / cells[axis].map(scale)
        cells["x"] = cells[axis].astype(float)
        sns.scatterplot(data=cells[cells["sum"] == 0], x="x", y="y", ax=ax, color="#bdbdbd", s=14,
                        linewidth=0, zorder=1, legend=False)
        some = cells[(cells["sum"] > 0) & (cells["sum"] < cells["size"])]
        every = cells[(cells["sum"] > 0) & (cells["sum"] == cells["size"])]
        if not some.empty:
            sns.scatterplot(data=some, x="x", y="y", ax=ax, color=RED, alpha=0.35, marker="X", s=40,
                            linewidth=0, zorder=2, legend=False)
        if not every.empty:
            sns.scatterplot(data=every, x="x", y="y", ax=ax, color=RED, marker="X", s=40, linewidth=0,
                            zorder=2, legend=False)
    ys = list(cells["y"]) if not sub.empty and {axis, range_axis} <= set(sub.columns) else []
    lo_key, hi_key = ("range_lo_per_level", "range_hi_per_level") if per_level else ("range_lo", "range_hi")
    if not df.empty and {lo_key, hi_key} <= set(df.columns):
        ok = df.dropna(subset=[lo_key, hi_key])
        colors = [ORANGE if bool(c) else BLUE for c in ok.get("censored", pd.Series(False, index=ok.index))]
        ax.vlines(ok["level"].astype(float), ok[lo_key], ok[hi_key], colors=colors, linewidth=6,
                  alpha=0.85, zorder=3, capstyle="round")
        ax.scatter(np.r_[ok["level"], ok["level"]].astype(float), np.r_[ok[lo_key], ok[hi_key]],
                   c=colors + colors, s=36, zorder=4, edgecolors="white", linewidths=0.6)
        for lv in df.loc[df[lo_key].isna(), "level"]:
            ax.annotate("none good", (float(lv), 0.03), xycoords=("data", "axes fraction"), ha="center",
                        fontsize=7, color=RED)
        ys += list(ok[lo_key]) + list(ok[hi_key])
    _log_y(ax)
    ys = [y for y in ys if np.isfinite(y) and y > 0]
    if ys:  # a half-decade of room around the grid, so that points on its edge are not cut
        ax.set_ylim(min(ys) / 10 ** 0.4, max(ys) * 10 ** 0.4)


def _width_figure(claim: Claim, parts: list[ClaimResult], axis: str, range_axis: str) -> RenderedFigure:
    def censored(df: pd.DataFrame):
        flags = df["censored"].fillna(False).astype(bool) if "censored" in df else pd.Series(False, index=df.index)
        return np.where(flags, "censored", "inside the grid")

    fig = _mean_ci_figure(parts, 2.9, axis, f"width of good {range_axis} range (log2)", hue_of=censored,
                          palette={"censored": ORANGE, "inside the grid": BLUE})
    conf = claim.params.get("confidence", 0.95)
    handles = [Line2D([], [], marker="o", linestyle="", color=BLUE, label="mean width over seeds"),
               Line2D([], [], marker="o", linestyle="", color=ORANGE, label="censored (true width may be larger)"),
               Line2D([], [], color=GREY, linewidth=2.2, label=f"{fmt.tick(conf * 100)}% CI over seeds")]
    _legend(fig, handles)
    caption = (f"Mean width over seeds of the good {range_axis} range, in log2 units (one grid step for a "
               f"single good value), with its 95% CI (Student t over seeds). The claim concerns the trend across {axis}.")
    return RenderedFigure(title=f"width of the good {range_axis} range per {axis}", caption=caption,
                          svg=to_svg(fig, f"{claim.id}-widths"))
