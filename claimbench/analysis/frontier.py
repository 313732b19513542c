"""Statistics of the frontier claims (B6-B9, W1): per-seed slopes of a tuned value against a scientific axis,
the optimal-LR surge, the growth of the gradient noise scale during training, and Zhang et al.'s critical batch.

Every statistic here is one value per seed (or per trial, then averaged within a seed), so that the seeds are
the replicates and ``analysis/inference.py`` decides on them; nothing here decides.

- :func:`argbest_table` — seeds x levels of the tuned axis's best value (selected on validation) per level,
  interpolated between its grid neighbours (:func:`interpolate_argbest`).
- :func:`interpolate_argbest` — per cell, the vertex of the parabola through the selection metric at the selected
  grid value and its two neighbours, over log(tuned value): a tuned value between grid points, so that a grid
  shared by every seed does not round every seed's value the same way.
- :func:`seed_slopes` — per seed, the log-log least-squares slope of a seeds x levels table against the levels
  (``analysis/scaling.py`` ``power_law_exponent``), optionally over the levels inside ``[low, high]`` only.
- :func:`peak_levels` — per seed, the level at which a row peaks (ties: the geometric mean of the tied levels).
- :func:`noise_points` / :func:`noise_growth` — a trial's gradient noise scale B_simple = tr(Σ) / |G|² at each
  evaluation (``trial_frame``'s ``noise_curve``: [step, |G|², tr(Σ)]; points with |G|² <= 0 left out) and the
  Spearman rho of B_simple against the step.
- :func:`zhang_critical_batch` — the batch at which the examples to target exceed perfect scaling from the
  smallest batch by ``excess`` (Zhang et al. 2024: 20%), log-interpolated between tested batches.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np
import pandas as pd
from scipy import stats as sps

from claimbench.analysis.quantities import cell_quantities, to_wide
from claimbench.analysis.selection import direction
from claimbench.analysis.scaling import power_law_exponent

#: Zhang et al. (2024): the critical batch is where the steps exceed perfect (linear) scaling by 20%.
ZHANG_EXCESS = 0.2


def argbest_table(frame: pd.DataFrame, axis: str, of: str, select: str = "val_acc",
                  tuned: Sequence[str] = ()) -> tuple[list[float], pd.DataFrame, pd.DataFrame]:
    """(levels, seeds x levels of the best ``of`` per (level, seed) cell, the long cell table).

    The cell's selected trial is the one rule's (``argbest:<of>`` of analysis/quantities.py, through
    ``analysis/selection.py``); NaN where no trial completed. Its ``of`` is then interpolated between its grid
    neighbours (:func:`interpolate_argbest`): the table and the long table's ``value`` hold the interpolated
    value, the long table's ``of`` column the selected trial's grid value (what grid-edge checks read).
    ``tuned``: further axes tuned within the cell (they take no part in the slope)."""
    long = cell_quantities(frame, [axis, "seed"], f"argbest:{of}", select=select, tuned=list(dict.fromkeys([of, *tuned])))
    if not long.empty:
        long = long.assign(value=interpolate_argbest(frame, long, [axis, "seed"], of, select))
    levels = sorted({float(v) for v in long[axis].dropna()}) if not long.empty else []
    wide = to_wide(long, axis, levels) if not long.empty else pd.DataFrame()
    return levels, wide, long


def interpolate_argbest(frame: pd.DataFrame, long: pd.DataFrame, keys: Sequence[str], of: str,
                        select: str) -> np.ndarray:
    """Per row of ``long`` (one cell of ``keys`` with the selected trial's ``of`` in ``value``), the tuned value
    interpolated from a local quadratic fit: the vertex of the parabola through the cell's profile of ``select``
    (the best completed trial at each grid value of ``of``, in the metric's direction) at the selected value and
    its two grid neighbours, over log(``of``) (a standard refinement of a grid search; the vertex lies within half
    a grid step of the selected value, and two tied neighbours give their midpoint whichever the tie rule chose).

    A grid shared by every seed rounds every seed's optimum to the same grid value; a slope over those values
    is then biased by the grid's position, identically on every seed, and no interval over seeds can see it
    (``reports/calibration.md``, the fixed-grid rows). The interpolated value moves with the metric instead.

    The selected grid value is kept, not interpolated, when it is the cell's lowest or highest tested value (a
    grid edge: the optimum may lie outside), when a neighbour has no completed trial with a finite ``select``,
    when the three profile values are equal (no curvature), or when ``of`` is not a positive number."""
    sign = direction(select)
    values = pd.to_numeric(long["value"], errors="coerce").to_numpy(dtype=float).copy()
    if frame.empty or long.empty:
        return values
    x = pd.to_numeric(frame[of], errors="coerce").to_numpy(dtype=float)
    y = sign * pd.to_numeric(frame[select], errors="coerce").to_numpy(dtype=float)
    done = (frame["status"] == "completed").to_numpy()
    grids: dict[tuple, set] = {}
    profile: dict[tuple, float] = {}
    for key, xi, yi, ok in zip(zip(*(frame[k].to_numpy() for k in keys)), x, y, done):
        if not (math.isfinite(xi) and xi > 0):
            continue
        grids.setdefault(key, set()).add(xi)
        if ok and math.isfinite(yi) and yi > profile.get((*key, xi), -math.inf):
            profile[(*key, xi)] = yi
    for i, key in enumerate(zip(*(long[k].to_numpy() for k in keys))):
        x1 = values[i]
        grid = sorted(grids.get(key, ()))
        if not (math.isfinite(x1) and x1 > 0) or x1 not in grid:
            continue
        j = grid.index(x1)
        if j == 0 or j == len(grid) - 1:
            continue
        x0, x2 = grid[j - 1], grid[j + 1]
        y0, y1, y2 = (profile.get((*key, v)) for v in (x0, x1, x2))
        if y0 is None or y1 is None or y2 is None:
            continue
        values[i] = _vertex(x0, x1, x2, y0, y1, y2)
    return values


def _vertex(x0: float, x1: float, x2: float, y0: float, y1: float, y2: float) -> float:
    """The vertex of the parabola through (log x, y) at x0 < x1 < x2 with y1 the largest; x1 itself when the
    three are equal or the neighbours balance exactly (so equal cells give bit-equal values)."""
    a, b = math.log(x1) - math.log(x0), math.log(x2) - math.log(x1)
    d0, d2 = y1 - y0, y1 - y2  # both >= 0: x1 is the best
    q = -(d0 / a + d2 / b) / (a + b)  # the curvature (<= 0)
    if not q < 0:
        return x1
    p = -d2 / b - q * b  # the slope at x1
    t = min(max(-p / (2 * q), -a / 2), b / 2)
    return x1 if t == 0 else float(math.exp(math.log(x1) + t))


def seed_slopes(levels: Sequence[float], table: np.ndarray, low: float = -math.inf, high: float = math.inf,
                min_levels: int = 3) -> np.ndarray:
    """Per row (seed) of ``table`` (seeds x levels), the slope of log value on log level over the levels in
    [low, high] with a finite positive value; NaN with fewer than ``min_levels`` of them."""
    x = np.asarray(levels, dtype=float)
    keep = (x >= low) & (x <= high)
    out = []
    for row in np.atleast_2d(np.asarray(table, dtype=float)):
        ok = keep & np.isfinite(row) & (row > 0)
        out.append(power_law_exponent(x[ok], row[ok]) if ok.sum() >= min_levels else float("nan"))
    return np.array(out, dtype=float)


def peak_levels(levels: Sequence[float], table: np.ndarray) -> np.ndarray:
    """Per row, the level where the row is largest (ties: geometric mean of the tied levels); NaN without values."""
    x = np.asarray(levels, dtype=float)
    out = []
    for row in np.atleast_2d(np.asarray(table, dtype=float)):
        ok = np.isfinite(row)
        if not ok.any():
            out.append(float("nan"))
            continue
        top = np.isclose(row, np.nanmax(row), rtol=1e-9, atol=0.0) & ok
        out.append(float(np.exp(np.log(x[top]).mean())))
    return np.array(out, dtype=float)


def noise_points(curve: Any) -> tuple[np.ndarray, np.ndarray]:
    """(steps, B_simple) of a trial's noise curve, steps > 0 with a positive |G|² estimate and tr(Σ)."""
    if curve is None or (isinstance(curve, float) and math.isnan(curve)):
        return np.array([]), np.array([])
    arr = np.asarray([list(p) for p in curve], dtype=float).reshape(-1, 3)
    ok = (arr[:, 0] > 0) & (arr[:, 1] > 0) & (arr[:, 2] > 0) & np.isfinite(arr).all(axis=1)
    return arr[ok, 0], arr[ok, 2] / arr[ok, 1]


def noise_growth(curve: Any, min_points: int = 3) -> float:
    """Spearman rho of B_simple against the step over one trial's training; NaN with fewer than
    ``min_points`` usable evaluations, 0 when B_simple does not vary."""
    steps, b = noise_points(curve)
    if steps.size < min_points or np.unique(steps).size < min_points:
        return float("nan")
    if np.ptp(b) == 0:
        return 0.0
    return float(sps.spearmanr(steps, b).statistic)


def zhang_critical_batch(levels: Sequence[float], steps: Sequence[float], excess: float = ZHANG_EXCESS) -> float:
    """The batch where E(B) / E(B0) first exceeds 1 + ``excess`` (B0: the smallest batch with a value; E = B x S,
    so perfect scaling keeps the ratio at 1), log-log interpolated between the tested batches around the
    crossing. NaN with under 2 values, or when no tested batch crosses (the critical batch lies beyond the grid)."""
    x, s = np.asarray(levels, dtype=float), np.asarray(steps, dtype=float)
    ok = np.isfinite(x) & np.isfinite(s) & (x > 0) & (s > 0)
    x, s = x[ok], s[ok]
    if x.size < 2:
        return float("nan")
    order = np.argsort(x)
    x, s = x[order], s[order]
    ratio = (x * s) / (x[0] * s[0])
    target = 1.0 + excess
    for i in range(1, x.size):
        if ratio[i] > target:
            r0, r1 = math.log(max(ratio[i - 1], 1e-300)), math.log(ratio[i])
            if r1 == r0:
                return float(x[i])
            f = min(max((math.log(target) - r0) / (r1 - r0), 0.0), 1.0)
            return float(math.exp(math.log(x[i - 1]) + f * (math.log(x[i]) - math.log(x[i - 1]))))
    return float("nan")


def log_values(values: Sequence[float]) -> np.ndarray:
    """Natural logs of the positive finite values, NaN elsewhere (for t intervals of geometric means)."""
    v = np.asarray(values, dtype=float)
    with np.errstate(all="ignore"):
        return np.where(np.isfinite(v) & (v > 0), np.log(np.where(v > 0, v, 1.0)), np.nan)
