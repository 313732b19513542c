"""Figures for the HTML report: seaborn/matplotlib drawn to inline SVG strings.

One function per claim kind, registered in ``FIGURES`` under the kind's name;
a kind with no entry gets no figure (its section still renders). A figure
function takes the claim, its ``ClaimResult`` and the ``Evaluation`` (suite and
trial frame) and returns a list of ``RenderedFigure``.

Figures are built on ``matplotlib.figure.Figure`` objects (no pyplot, no global
state); style settings apply only inside ``rc_context`` while a figure is drawn
and saved. The SVG keeps text as text (``svg.fonttype = "none"``) and references
nothing outside itself.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable

import matplotlib as mpl
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch, Rectangle
from matplotlib.ticker import FixedLocator, FuncFormatter, LogLocator, NullLocator

from claimbench.analysis.stats import seed_mean_ci
from claimbench.claims.base import Claim, ClaimResult
from claimbench.report import format as fmt

if TYPE_CHECKING:
    from claimbench.api import Evaluation


@dataclass(frozen=True)
class RenderedFigure:
    """One figure of a claim section: a title, a caption (plain text) and an inline ``<svg>`` element."""

    title: str
    caption: str
    svg: str


FigureFn = Callable[[Claim, ClaimResult, "Evaluation"], list[RenderedFigure]]

#: Figure functions by claim kind name. A new claim kind adds its own with ``register_figures``.
FIGURES: dict[str, FigureFn] = {}


def register_figures(kind: str) -> Callable[[FigureFn], FigureFn]:
    def add(fn: FigureFn) -> FigureFn:
        FIGURES[kind] = fn
        return fn
    return add


def figures_for(claim: Claim, result: ClaimResult, evaluation: "Evaluation") -> list[RenderedFigure]:
    """The figures of one claim; none for a kind without a figure function or a run without trials."""
    fn = FIGURES.get(result.kind)
    if fn is None or evaluation.frame.empty:
        return []
    return fn(claim, result, evaluation)


# ------------------------------------------------------------------ style and SVG output

#: Colours (colour-blind safe: Okabe-Ito).
BLUE, ORANGE, RED, GREY = "#0072B2", "#E69F00", "#D55E00", "#8c8c8c"
HEATMAP_CMAP = "viridis"
PANEL_MAX_WIDTH = 7.8  # inches: drawn at DISPLAY_SCALE, the page's content width
DISPLAY_SCALE = 1.3  # figures are drawn small and shown larger: 9 pt labels read as 12 pt


def _rc() -> dict[str, Any]:
    rc = dict(sns.axes_style("whitegrid"))
    rc.update(sns.plotting_context("notebook", font_scale=0.85))
    rc.update({
        "font.sans-serif": ["DejaVu Sans", "Bitstream Vera Sans", "Arial", "Helvetica", "sans-serif"],
        "axes.titleweight": "bold",
        "axes.titlesize": 10.5,
        "svg.fonttype": "none",  # text stays text: searchable, selectable, small
        "xtick.bottom": True,
        "ytick.left": True,
        "xtick.major.size": 3,
        "ytick.major.size": 3,
        "xtick.minor.size": 2,
        "ytick.minor.size": 2,
        "legend.frameon": False,
    })
    return rc


def _new_figure(width: float, height: float) -> Figure:
    return Figure(figsize=(min(width, PANEL_MAX_WIDTH), height), layout="constrained")


def _panels(n: int, panel_w: float, panel_h: float, extra_w: float = 0.0) -> tuple[Figure, list]:
    """A figure of ``n`` panels sharing the y axis, wrapped into rows when they would not fit the page."""
    cols = max(1, min(n, int((PANEL_MAX_WIDTH - extra_w) // panel_w)))
    rows = -(-n // cols)
    fig = _new_figure(panel_w * cols + extra_w, panel_h * rows + (0.4 if rows > 1 else 0.0))
    grid = fig.subplots(rows, cols, squeeze=False, sharey=True)
    axes = list(grid.ravel())
    for ax in axes[n:]:
        ax.set_visible(False)
    for i, ax in enumerate(axes[:n]):
        if i % cols:  # the y axis is labelled in the first column only
            ax.tick_params(axis="y", left=False)
    return fig, axes[:n]


_REF = re.compile(r'(?:url\(#|href="#)([^)"]+)')
_ID = re.compile(r'\sid="([^"]*)"')
_SIZE = re.compile(r'<svg([^>]*?)\swidth="([\d.]+)pt"\sheight="([\d.]+)pt"')


def to_svg(fig: Figure, salt: str) -> str:
    """The figure as an ``<svg>`` element to inline in HTML: no XML prolog, no DOCTYPE, no metadata.

    ``salt`` makes the element ids (clip paths, markers) unique within the page
    and the output deterministic. The element scales down with the page and is
    never drawn larger than ``DISPLAY_SCALE`` times its natural size.
    """
    buf = io.StringIO()
    with mpl.rc_context({**_rc(), "svg.hashsalt": salt}):
        fig.savefig(buf, format="svg",
                    metadata={"Date": None, "Creator": None, "Format": None, "Type": None})
    svg = buf.getvalue()
    svg = svg[svg.index("<svg"):]
    # matplotlib names every group (figure_1, axes_1, ...): drop the ids nothing refers to, so that
    # several figures on a page share no id and none can shadow a claim's anchor
    refs = set(_REF.findall(svg))
    svg = _ID.sub(lambda m: m.group(0) if m.group(1) in refs else "", svg)
    return _SIZE.sub(lambda m: f'<svg{m.group(1)} width="100%" style="max-width: '
                               f'{float(m.group(2)) * DISPLAY_SCALE:.0f}pt; height: auto"', svg, count=1).strip()


def _legend(fig: Figure, handles: list) -> None:
    """One legend under the panels, in as many columns as fit the figure's width."""
    widths = [0.45 + 0.068 * len(h.get_label()) for h in handles]  # inches at 8.5 pt, marker included
    cols = len(handles)
    while cols > 1 and max(sum(widths[i:i + cols]) for i in range(0, len(widths), cols)) > fig.get_figwidth():
        cols -= 1
    rows = -(-len(handles) // cols)
    cols = -(-len(handles) // rows)  # balanced rows: 2 + 2 rather than 3 + 1
    fig.legend(handles=handles, loc="outside lower center", ncols=cols, fontsize=8.5)


def _safe(text: Any) -> str:
    """Suite text for a figure: ``$`` would switch matplotlib to mathtext."""
    return str(text).replace("$", r"\$")


# ------------------------------------------------------------------ shared pieces

def _parts(result: ClaimResult) -> list[ClaimResult]:
    """The per-stratum results, or the result itself when the claim has one stratum."""
    return list(result.strata) or [result]


def _subframe(frame: pd.DataFrame, stratum: dict[str, Any]) -> pd.DataFrame:
    mask = pd.Series(True, index=frame.index)
    for key, value in stratum.items():
        if key in frame.columns:
            mask &= frame[key] == value
    return frame[mask]


def _panel_title(part: ClaimResult) -> str:
    """The stratum of a panel, one ``key = value`` per line."""
    return "\n".join(_safe(fmt.stratum({k: v})) for k, v in part.stratum.items())


def _grid(evaluation: "Evaluation", name: str, frame: pd.DataFrame) -> list[Any]:
    """The tested values of an axis: the suite's grid, plus any value the frame has beyond it."""
    values = set(frame[name].dropna().unique()) if name in frame.columns else set()
    try:
        values |= {v for v in evaluation.suite.axis(name).values if not isinstance(v, dict)}
    except StopIteration:
        pass
    try:
        return sorted(values, key=float)
    except (TypeError, ValueError):
        return sorted(values, key=str)


def _numeric_positive(values: list[Any]) -> bool:
    return bool(values) and all(fmt.is_numeric(v) and float(v) > 0 for v in values)


def _log_x(ax, levels: list[Any], base: int = 2) -> None:
    """Log x axis with a tick at each tested level, labelled 2, 4, 8 ..."""
    lv = [float(v) for v in levels]
    ax.set_xscale("log", base=base)
    ax.xaxis.set_major_locator(FixedLocator(lv))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: fmt.tick(v)))
    ax.xaxis.set_minor_locator(NullLocator())
    lo, hi = min(lv), max(lv)
    pad = (hi / lo) ** 0.06 if hi > lo else 2.0
    ax.set_xlim(lo / pad, hi * pad)


def _log_y(ax) -> None:
    """Log y axis with decade ticks labelled 1e-3, 1e-2, 0.1, 1 ..."""
    ax.set_yscale("log")
    ax.yaxis.set_major_locator(LogLocator(base=10))
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: fmt.tick(v)))
    ax.yaxis.set_minor_locator(NullLocator())


def _level_frame(part: ClaimResult) -> pd.DataFrame:
    df = pd.DataFrame(part.data)
    if df.empty or "level" not in df.columns:
        return df
    return df.sort_values("level").reset_index(drop=True)


def _mean_ci_panel(ax, df: pd.DataFrame, *, log_x: bool, hue: pd.Series | None = None,
                   palette: dict[str, str] | None = None) -> None:
    """Mean per level (points joined by a line) with its CI as a vertical bar."""
    ok = df.dropna(subset=["mean"])
    if ok.empty:
        ax.text(0.5, 0.5, "no values", transform=ax.transAxes, ha="center", va="center", color=GREY)
        return
    sns.lineplot(data=ok, x="level", y="mean", ax=ax, color=GREY, linewidth=1.2, errorbar=None,
                 sort=True, zorder=1)
    ax.vlines(ok["level"], ok["lo"], ok["hi"], colors=GREY if hue is None else [palette[h] for h in hue[ok.index]],
              linewidth=2.2, zorder=2)
    if hue is None:
        sns.scatterplot(data=ok, x="level", y="mean", ax=ax, color=BLUE, s=45, zorder=3, legend=False,
                        edgecolor="white", linewidth=0.8)
    else:
        sns.scatterplot(data=ok.assign(_hue=hue[ok.index]), x="level", y="mean", hue="_hue", palette=palette,
                        ax=ax, s=45, zorder=3, legend=False, edgecolor="white", linewidth=0.8)
    if log_x:
        _log_x(ax, list(df["level"]))


def _mean_ci_figure(parts: list[ClaimResult], height: float, axis: str, ylabel: str,
                    hue_of: Callable[[pd.DataFrame], Any], palette: dict[str, str],
                    before: Callable[[Any, bool], None] | None = None) -> Figure:
    """One panel per stratum of mean-with-CI per level (``part.data``), points coloured by ``hue_of``."""
    frames = [_level_frame(part) for part in parts]
    levels = sorted({lv for df in frames if "level" in df for lv in df["level"]}, key=float)
    log_x = _numeric_positive(levels)
    fig, axes = _panels(len(parts), max(3.2, 0.3 * len(levels) + 1.4), height)
    for ax, part, df in zip(axes, parts, frames):
        if df.empty:
            ax.text(0.5, 0.5, "no values", transform=ax.transAxes, ha="center", va="center", color=GREY)
            continue
        if before is not None:
            before(ax, log_x)
        hue = pd.Series(hue_of(df), index=df.index)
        _mean_ci_panel(ax, df, log_x=log_x, hue=hue, palette=palette)
        if log_x:
            _log_x(ax, levels)
        ax.set_title(_panel_title(part))
        ax.set_xlabel(_safe(axis))
        ax.set_ylabel(_safe(ylabel) if ax.get_subplotspec().is_first_col() else "")
    return fig


# ------------------------------------------------------------------ best_level_in_range (B2)

@dataclass
class _Heat:
    mean: pd.DataFrame  # rows: nuisance values (descending), columns: levels
    select_mean: pd.DataFrame
    n: pd.DataFrame  # trials with a record
    diverged: pd.DataFrame


def _heat(frame: pd.DataFrame, axis: str, nuisance: str, metric: str, select: str,
          levels: list[Any], values: list[Any]) -> _Heat:
    """Per (nuisance value, level): mean over seeds of ``metric`` of the best trial over any other
    nuisance axes (chosen on ``select``), and the counts of trials and of diverged trials."""
    index = pd.Index(values[::-1], name=nuisance)
    columns = pd.Index(levels, name=axis)

    def shaped(series: pd.Series, fill=np.nan) -> pd.DataFrame:
        if series.empty:
            return pd.DataFrame(fill, index=index, columns=columns)
        return series.unstack(axis, fill_value=fill).reindex(index=index, columns=columns, fill_value=fill)

    ok = frame[(frame["status"] == "completed") & frame[select].notna() & frame[metric].notna()]
    if ok.empty:
        mean = shaped(pd.Series(dtype=float))
        select_mean = shaped(pd.Series(dtype=float))
    else:
        per_seed = ok.loc[ok.groupby([axis, nuisance, "seed"])[select].idxmax()]
        mean = shaped(per_seed.groupby([axis, nuisance])[metric].mean())
        select_mean = shaped(per_seed.groupby([axis, nuisance])[select].mean())
    counts = frame.groupby([axis, nuisance]).size()
    diverged = frame[frame["status"] == "diverged"].groupby([axis, nuisance]).size()
    return _Heat(mean=mean.astype(float), select_mean=select_mean.astype(float),
                 n=shaped(counts, 0).astype(int), diverged=shaped(diverged, 0).astype(int))


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
    # outline the nuisance value with the best mean selection metric per level
    sel = heat.select_mean
    for j in range(n_cols):
        col = sel.iloc[:, j].to_numpy(dtype=float)
        if np.isfinite(col).any():
            i = int(np.nanargmax(col))
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
    axis, metric, select = p["axis"], p.get("metric", "test_acc"), p.get("select", "val_acc")
    parts = _parts(result)
    frame = evaluation.frame
    nuisance = next(iter(evaluation.suite.design().nuisance), None)
    out = []
    with mpl.rc_context(_rc()):
        if nuisance is not None and {axis, nuisance, metric, select} <= set(frame.columns):
            out.append(_heatmap_figure(claim, parts, evaluation, axis, nuisance, metric, select))
        out.append(_best_level_figure(claim, parts, axis, metric, nuisance))
    return out


def _heatmap_figure(claim: Claim, parts: list[ClaimResult], evaluation: "Evaluation", axis: str,
                    nuisance: str, metric: str, select: str) -> RenderedFigure:
    frame = evaluation.frame
    levels, values = _grid(evaluation, axis, frame), _grid(evaluation, nuisance, frame)
    heats = [_heat(_subframe(frame, part.stratum), axis, nuisance, metric, select, levels, values)
             for part in parts]
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
                  if len(evaluation.suite.design().nuisance) > 1 else "")
               + f". Outlined: the {nuisance} with the best mean {select} at each {axis} (what isolation picks"
               f" most often). × on hatching: every trial of the cell diverged; k/n×: k of its n trials"
               f" diverged (the mean is over the rest); n/a: no record yet; failed: no usable trial.")
    return RenderedFigure(title=f"{metric} by {axis} and {nuisance}", caption=caption,
                          svg=to_svg(fig, f"{claim.id}-heatmap"))


def _best_level_figure(claim: Claim, parts: list[ClaimResult], axis: str, metric: str,
                       nuisance: str | None) -> RenderedFigure:
    p = claim.params
    low, high = float(p["low"]), float(p["high"])

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


# ------------------------------------------------------------------ quantity-based kinds: shared pieces

GREEN = "#009E73"


def _conf_label(claim: Claim) -> str:
    return f"{fmt.tick(claim.params.get('confidence', 0.95) * 100)}% CI over seeds"


def _quantity_text(claim: Claim) -> str:
    return str(claim.params.get("quantity", "test_acc"))


def _no_values(ax, text: str = "no values") -> None:
    ax.text(0.5, 0.5, text, transform=ax.transAxes, ha="center", va="center", color=GREY)


def _level_x(ax, levels: list[Any]) -> list[float]:
    """x positions of the levels: the values on a log axis when all are positive numbers, else 0, 1, 2 ..."""
    if _numeric_positive(levels):
        _log_x(ax, levels)
        return [float(v) for v in levels]
    ax.set_xticks(range(len(levels)), [_safe(fmt.tick(v)) for v in levels])
    ax.set_xlim(-0.5, len(levels) - 0.5)
    return [float(i) for i in range(len(levels))]


def _ci_points(ax, x, df: pd.DataFrame, color: str | list[str] = BLUE, line: bool = True) -> None:
    """Means (points) with CI bars; joined by a grey line."""
    x = np.asarray(x, dtype=float)
    mean, lo, hi = (df[c].to_numpy(dtype=float) for c in ("mean", "lo", "hi"))
    ok = np.isfinite(mean)
    if not ok.any():
        _no_values(ax)
        return
    if line:
        ax.plot(x[ok], mean[ok], color=GREY, linewidth=1.2, zorder=1)
    colors = np.array(color if isinstance(color, list) else [color] * len(x), dtype=object)
    ax.vlines(x[ok], lo[ok], hi[ok], colors=list(colors[ok]), linewidth=2.2, zorder=2)
    ax.scatter(x[ok], mean[ok], c=list(colors[ok]), s=45, zorder=3, edgecolors="white", linewidths=0.8)


def _row_panels(n: int, cols: int, width: float, height: float) -> tuple[Figure, np.ndarray]:
    fig = _new_figure(width, height * n + 0.5)
    axes = fig.subplots(n, cols, squeeze=False)
    return fig, axes


# ------------------------------------------------------------------ monotone_trend

@register_figures("monotone_trend")
def trend_figures(claim: Claim, result: ClaimResult, evaluation: "Evaluation") -> list[RenderedFigure]:
    """Per level: the mean over seeds of the quantity with its CI, and the fitted direction."""
    p = claim.params
    axis, direction = p["axis"], p.get("direction", "increasing")
    parts = _parts(result)
    with mpl.rc_context(_rc()):
        frames = [pd.DataFrame(part.data) for part in parts]
        n_levels = max((len(df) for df in frames), default=1)
        fig, axes = _panels(len(parts), max(3.2, 0.3 * n_levels + 1.4), 3.0)
        for ax, part, df in zip(axes, parts, frames):
            ax.set_title(_panel_title(part))
            if df.empty or "mean" not in df:
                _no_values(ax)
                continue
            x = np.asarray(_level_x(ax, list(df["level"])), dtype=float)
            _ci_points(ax, x, df, [ORANGE if c else BLUE for c in df.get("censored", pd.Series(0, index=df.index))])
            ok = np.isfinite(df["mean"].to_numpy(dtype=float))
            if ok.sum() >= 2:  # least-squares line over the level positions: the fitted direction
                pos = df["position"].to_numpy(dtype=float)[ok]
                slope, icpt = np.polyfit(pos, df["mean"].to_numpy(dtype=float)[ok], 1)
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
    parts = _parts(result)
    with mpl.rc_context(_rc()):
        frames = [pd.DataFrame(part.data) for part in parts]
        n_levels = max((len(df) for df in frames), default=1)
        fig, axes = _panels(len(parts), max(3.2, 0.55 * n_levels + 1.4), 3.0)
        for ax, part, df in zip(axes, parts, frames):
            ax.set_title(_panel_title(part))
            if df.empty or "mean" not in df:
                _no_values(ax)
                continue
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
                   band: tuple[float, float] | None, salt: str, caption: str) -> RenderedFigure:
    """Per part: (left) the two arms' means with CIs and each seed's pair joined; (right) each seed's
    difference, the mean difference with the claim's CI, zero and the margin."""
    conf = claim.params.get("confidence", 0.95)
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
        stats = seed_mean_ci(df[["a", "b"]].astype(float), conf)
        _ci_points(left, [0, 1], stats, [BLUE, ORANGE], line=False)
        left.set_xticks([0, 1], [_safe(a_name), _safe(b_name)])
        left.set_xlim(-0.5, 1.5)
        left.set_ylabel(_safe(ylabel))
        left.set_title(_safe(label) if label else "arms", fontsize=9.5)
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
        if band is not None:  # the region the CI must lie in, drawn within the visible range
            lo_x, hi_x = right.get_xlim()
            right.axvspan(max(band[0], lo_x), min(band[1], hi_x), color=GREEN, alpha=0.12, linewidth=0, zorder=0)
        right.axvline(0, color="black", linewidth=0.8, zorder=1)
        right.set_ylim(-0.5, 0.6)
        right.set_yticks([])
        right.set_xlabel(_safe(diff_label))
        right.set_title(f"{part.verdict}", fontsize=9.5)
    handles = [Line2D([], [], marker="o", linestyle="", color=BLUE, label="a: mean, CI"),
               Line2D([], [], marker="o", linestyle="", color=ORANGE, label="b: mean, CI"),
               Line2D([], [], marker="o", linestyle="", color=GREY, label="difference per seed"),
               Line2D([], [], color=BLUE, marker="o", linewidth=2, label=f"mean difference, {_conf_label(claim)}")]
    if band is not None:
        handles.append(Patch(facecolor=GREEN, alpha=0.25, label="margin band"))
    _legend(fig, handles)
    return RenderedFigure(title=title, caption=caption, svg=to_svg(fig, salt))


@register_figures("paired_comparison")
def paired_comparison_figures(claim: Claim, result: ClaimResult, evaluation: "Evaluation") -> list[RenderedFigure]:
    p = claim.params
    q, margin, test = _quantity_text(claim), float(p.get("margin", 0.0)), p.get("test", "superiority")
    relative = bool(p.get("relative", False))
    m = float(np.log1p(margin)) if relative else margin
    band = (m, np.inf) if test == "superiority" else (-m, np.inf)
    what = f"log({q} a / b)" if relative else f"{q} a − b"
    signed = " (signed: positive favours a)" if p.get("goal", "higher") == "lower" else ""
    caption = (f"Left: the mean over seeds of {q} in each arm with its 95% CI (Student t over seeds); grey lines join the two "
               f"arms of one seed (same init and data). Right: each seed's {what}{signed}, their mean with the "
               f"claim's CI, and the shaded region the CI must lie in for {test}"
               + (f" (margin {margin:g}" + (", relative)" if relative else ")") if margin else "") + ".")
    with mpl.rc_context(_rc()):
        return [_paired_panels(claim, _parts(result), f"{q}: a vs b, paired by seed", q, what + signed,
                               band, f"{claim.id}-paired", caption)]


# ------------------------------------------------------------------ equivalence

@register_figures("equivalence")
def equivalence_figures(claim: Claim, result: ClaimResult, evaluation: "Evaluation") -> list[RenderedFigure]:
    p = claim.params
    q, m = _quantity_text(claim), float(p.get("margin", 0.0))
    best = p.get("b") == "best"
    band = (-m, np.inf) if best else (-m, m)
    what = f"{q} a − best {p.get('axis')}" if best else f"{q} a − b"
    caption = (f"Left: the mean over seeds of {q} for a and for "
               + (f"the best {p.get('axis')} level (chosen on all seeds)" if best else "b")
               + f", with 95% CIs (Student t over seeds); grey lines join one seed. Right: each seed's {what}, the mean "
               f"difference with the claim's CI"
               + (" (the best level re-chosen in each resample)" if best else "")
               + f", and the band the CI must lie in: " + (f"above −{m:g}." if best else f"±{m:g}."))
    with mpl.rc_context(_rc()):
        return [_paired_panels(claim, _parts(result), f"{q}: a against " + ("the best level" if best else "b"),
                               q, what, band, f"{claim.id}-equivalence", caption)]


# ------------------------------------------------------------------ ratio_in_range and timing_ratio

def _ratio_figure(claim: Claim, result: ClaimResult, title: str, num: str, den: str) -> RenderedFigure:
    p = claim.params
    low, high = float(p["low"]), float(p["high"])
    parts = _parts(result)
    fig = _new_figure(max(3.6, 1.3 * len(parts) + 1.6), 3.4)
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
        ymin, ymax = min(finite) / 2, max(finite) * 2
    else:
        ymin, ymax = 0.1, 10.0
        _no_values(ax)
    ax.axhspan(max(low, ymin / 10), min(high, ymax * 10), color=GREEN, alpha=0.12, linewidth=0, zorder=0)
    ax.axhline(1.0, color="black", linewidth=0.6, zorder=1)
    _log_y(ax)
    ax.set_ylim(ymin, ymax)
    ax.set_xticks(range(len(parts)), [_panel_title(part) or "all trials" for part in parts],
                  fontsize=7.5 if len(parts) > 3 else 8.5)
    ax.set_xlim(-0.6, len(parts) - 0.4)
    ax.set_ylabel(_safe(f"{num} / {den}"))
    _legend(fig, [Line2D([], [], marker="o", linestyle="", color=GREY, label="ratio per seed"),
                  Line2D([], [], color=BLUE, marker="o", linewidth=2, label=f"geometric mean, {_conf_label(claim)}"),
                  Patch(facecolor=GREEN, alpha=0.25,
                        label=f"claimed range [{fmt.tick(low)}, {'∞' if not np.isfinite(high) else fmt.tick(high)}]")])
    caption = (f"Each seed's ratio ({num}) / ({den}), paired by seed, on a log scale; the blue point is the "
               f"geometric mean over seeds with its 95% CI (Student t over seeds), the shaded band the claimed range "
               f"(supported when the CI lies inside it).")
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
        frame = evaluation.frame
        grid = sorted(float(v) for v in frame[range_axis].dropna().unique()) if range_axis in frame else []
        for ax, part, df in zip(axes, parts, frames):
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


def _critical_subframe(claim: Claim, part: ClaimResult, evaluation: "Evaluation") -> pd.DataFrame:
    from claimbench.analysis.quantities import restrict
    return restrict(_subframe(evaluation.frame, part.stratum), claim.params.get("where"))


@register_figures("critical_batch")
def critical_batch_figures(claim: Claim, result: ClaimResult, evaluation: "Evaluation") -> list[RenderedFigure]:
    """Steps (and examples) to target per batch size with the fit and its regimes; the critical-batch
    estimates with CIs; the optimal LR per batch size against the linear and square-root rules; B_simple
    over training."""
    p = claim.params
    axis, lr_col = p.get("axis", "batch_size"), p.get("lr", "lr")
    factor = float(p.get("regime_factor", 4.0))
    parts = [part for part in _parts(result) if any("level" in r for r in part.data)]
    if not parts:
        return []
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
                    ax.errorbar([v], [y], xerr=[[v - lo if np.isfinite(lo) else 0], [hi - v if np.isfinite(hi) else 0]],
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
            sub = _critical_subframe(claim, part, evaluation)
            if lr_col in sub.columns:
                grid_lr = sorted(float(v) for v in sub[lr_col].dropna().unique())
                for edge in (grid_lr[0], grid_lr[-1]):
                    ax.axhline(edge, color=GREY, linestyle=":", linewidth=1)
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


BLACK_LINE = "#333333"


def _noise_figure(claim: Claim, parts: list[ClaimResult], evaluation: "Evaluation", axis: str) -> RenderedFigure | None:
    from claimbench.analysis.scaling import fastest_trials
    frame = evaluation.frame
    if "noise_curve" not in frame.columns or frame["noise_curve"].isna().all():
        return None
    p = claim.params
    tune = p.get("tune") or list(evaluation.suite.design().nuisance)
    fig, axes = _panels(len(parts), 6.0, 3.3)
    cmap = mpl.colormaps["viridis"]
    levels_all: list[float] = []
    for ax, part in zip(axes, parts):
        sub = _critical_subframe(claim, part, evaluation)
        cells = fastest_trials(sub, [axis, "seed"], [t for t in tune if t in sub.columns])
        levels = sorted(float(v) for v in cells[axis].unique())
        levels_all = levels
        by_id = sub.set_index("trial_id")
        drew = False
        for j, lv in enumerate(levels):
            ids = [t for t in cells.loc[cells[axis] == lv, "trial_id"] if t is not None]
            curves = [pd.DataFrame(list(by_id.loc[t, "noise_curve"]), columns=["step", "g2", "trace"])
                      for t in ids if by_id.loc[t, "noise_curve"] is not None]
            if not curves:
                continue
            joined = pd.concat(curves).groupby("step").mean()  # means over seeds before the ratio
            joined = joined[joined.index > 0]
            ratio = joined["trace"] / joined["g2"].where(joined["g2"] > 0)
            ok = ratio.notna() & (ratio > 0)
            if ok.any():
                colour = cmap(j / max(len(levels) - 1, 1))
                ax.plot(joined.index[ok] * lv, ratio[ok], color=colour, linewidth=1.2, marker="o", markersize=2.5)
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
    margin = float(p.get("margin", 0.01))
    q = str(p.get("quantity", "test_acc"))
    parts = [part for part in _parts(result) if part.data]
    if not parts:
        return []
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
            ax.axvline(float(p.get("min_k", 8)), color=GREY, linestyle=":", linewidth=1)
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
                      Patch(facecolor=GREEN, alpha=0.25, label=f"kept: within {fmt.tick(margin)} of the baseline"),
                      Line2D([], [], color=GREY, linestyle=":", label=f"claimed up to k = {fmt.tick(p.get('min_k', 8))}")])
        caption = (f"Left: per batch multiplier k (batch and LR both × k, epoch budget), the mean over seeds of the "
                   f"paired difference in {q} from the k = 1 baseline, with its 95% CI (Student t over seeds); k holds while the CI "
                   f"stays above −{fmt.tick(margin)}. Right: the mean {q} per k, the baseline dashed.")
        return [RenderedFigure(title="linear scaling rule per batch multiplier", caption=caption,
                               svg=to_svg(fig, f"{claim.id}-linear"))]
