"""Pieces every figure family draws with: strata of a result, axes on log scales with a tick per level,
means with their intervals (from the result's data; nothing here computes a statistic)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable

import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.figure import Figure
from matplotlib.ticker import FixedLocator, FuncFormatter, LogLocator, NullLocator

from claimbench.claims.base import Claim, ClaimResult
from claimbench.report import format as fmt
from claimbench.report.figures.style import BLUE, GREY, _new_figure, _panels, _safe

if TYPE_CHECKING:
    from claimbench.evaluation import Evaluation


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
    """The per-level estimates of a part (``estimates``; a result without them: its ``data``), by level."""
    df = pd.DataFrame(part.estimates or part.data)
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



# ------------------------------------------------------------------ quantity-based kinds: shared pieces



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


def claimed_region(part: ClaimResult) -> tuple[float, float] | None:
    """The values of the effect that support the claim, from the result's decision band (the rule the
    verdict used, in the effect's unit; never re-derived from the claim's parameters): ``(lo, hi)``,
    infinite on an open side, or None when the result carries no band."""
    band = part.band
    if not band:
        return None

    def value(x, default: float) -> float:
        return default if x is None else float(x)

    if band["kind"] == "band":
        return value(band.get("low"), 0.0 if band.get("log") else -np.inf), value(band.get("high"), np.inf)
    if band["kind"] == "greater":
        return value(band.get("support"), -np.inf), np.inf
    return -np.inf if not band.get("log") else 0.0, value(band.get("support"), np.inf)


def first_region(parts: list[ClaimResult]) -> tuple[float, float] | None:
    """The claimed region of the first part that carries one (every stratum of a claim shares its rule)."""
    return next((r for r in (claimed_region(p) for p in parts) if r is not None), None)


def wrap(text: str, width: int, max_lines: int | None = None) -> str:
    """Text broken into lines of at most ``width`` characters (a long label would leave the figure box);
    with ``max_lines``, the lines past it are cut to an ellipsis."""
    import textwrap
    lines = textwrap.wrap(str(text), width)
    if max_lines is not None and len(lines) > max_lines:
        lines = [*lines[:max_lines - 1], lines[max_lines - 1].rstrip() + " …"]
    return "\n".join(lines) or str(text)


def panel_heading(ax, text: str, fallback: str) -> None:
    """A panel's title: a stratum's name, which may be long (several levels), wrapped to the panel's width
    in at most 3 lines and set smaller when it wraps; ``fallback`` when there is none."""
    if not text:
        ax.set_title(fallback, fontsize=9.5)
        return
    ax.set_title(_safe(wrap(text, 56, max_lines=3)), fontsize=9.5 if len(text) <= 56 else 8)


def arm_tick(name: str) -> str:
    """An arm's name as a tick label: an arm of several levels (``a=1,b=2|a=2,b=3``) breaks at its
    separators, in at most 5 lines of 24 characters (the caption and legend carry it whole)."""
    return wrap(str(name).replace("|", " | ").replace(",", ", "), 24, max_lines=5)


def ratio_axis(ax, ymin: float, ymax: float, marks: list[float] = ()) -> None:
    """A log y axis for ratios over [ymin, ymax] with at least 3 readable ticks: 1-2-5 steps (0.5, 1, 2;
    0.01, 0.02, 0.05 ...), decades over a wide range, finer round values over a narrow one; plus
    ``marks`` (a band's ends). Labels are plain numbers (0.25, 1.3, 0.02), never 6.2e-2."""
    ax.set_yscale("log")
    span = np.log10(ymax / ymin)
    decades = range(int(np.floor(np.log10(ymin))), int(np.ceil(np.log10(ymax))) + 1)
    steps = (1,) if span > 4 else (1, 2, 5)
    ticks = [m * 10.0 ** k for k in decades for m in steps if ymin <= m * 10.0 ** k <= ymax]
    if len(ticks) > 8:
        ticks = ticks[::-(-len(ticks) // 7)]
    near = 0.05 * span  # a tick this close (in decades) to a mark is dropped for the mark
    for m in marks:
        if ymin <= m <= ymax:
            ticks = [t for t in ticks if abs(np.log10(t / m)) > near] + [m]
    if len(ticks) < 3:  # a narrow range: round values spread over it
        extra = [float(f"{v:.2g}") for v in np.geomspace(ymin, ymax, 7)[1:-1]]
        ticks += [t for t in extra if all(abs(np.log10(t / u)) > near for u in ticks)]
    ax.yaxis.set_major_locator(FixedLocator(sorted(set(ticks))))
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:.3g}"))
    ax.yaxis.set_minor_locator(NullLocator())
    ax.set_ylim(ymin, ymax)
