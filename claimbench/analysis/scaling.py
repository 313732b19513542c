"""Batch-size scaling science: steps to target per batch size, the steps-vs-batch fit, its regimes.

Shallue et al. (2018) measure, for each batch size B, the *steps to result*
S(B): the fewest steps at which any trial of the study (over the tuned
metaparameters) first reaches the target on validation; E(B) = B * S(B) are
the examples to result. McCandlish et al. (2018) model the trade-off as

    (S / S_min - 1) (E / E_min - 1) = 1,   i.e.   S(B) = S_min + E_min / B,

so that B_crit = E_min / S_min is the batch size at which training takes twice
the minimum steps and twice the minimum examples. The local slope of log S in
log B is -B_crit / (B + B_crit): about -1 (perfect scaling: doubling the batch
halves the steps) well below B_crit, about 0 (maximal data parallelism) well
above it. The regimes here: *perfect scaling* where the slope is below -0.8
(B <= B_crit / 4), *maximal data parallelism* where it is above -0.2
(B >= 4 B_crit), *diminishing returns* between.

The fit minimizes the squared error of log S over (S_min, B_crit) (each cell's
geometric mean over seeds): for each B_crit on a fine log grid, the best
log S_min is closed-form, so the fit is a vectorized grid search without local
minima. A fit whose B_crit lies on the grid's edge (100x beyond the tested
batch sizes) is flagged ``edge``: the data show only one regime.

Frames: the trial frame (one row per trial: ``seed``, ``status``,
``steps_to_target``, ``examples_to_target``, ``steps_done``, the batch column,
the tuned columns), or one imported from published data (importers/shallue.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import pandas as pd

from claimbench.analysis.selection import best_index

REGIMES = ("perfect scaling", "diminishing returns", "maximal data parallelism")
REGIME_FACTOR = 4.0  # slope -0.8 at B_crit / 4, -0.2 at 4 B_crit
GRID_SPAN = 100.0  # B_crit is searched from min(B) / 100 to 100 max(B)
GRID_POINTS = 600


@dataclass(frozen=True)
class ScalingFit:
    """S(B) = s_min + e_min / B fitted in log space; ``edge``: B_crit at the search grid's edge."""

    s_min: float
    e_min: float
    b_crit: float
    rmse_log: float  # root mean squared error of log S (natural log)
    n: int
    edge: bool = False

    def steps(self, batch: Any) -> np.ndarray:
        return self.s_min + self.e_min / np.asarray(batch, dtype=float)

    def slope(self, batch: Any) -> np.ndarray:
        """d log S / d log B at ``batch``."""
        b = np.asarray(batch, dtype=float)
        return -self.b_crit / (b + self.b_crit)


NO_FIT = ScalingFit(float("nan"), float("nan"), float("nan"), float("nan"), 0)


def fit_steps_vs_batch(batch: Sequence[float], steps: Sequence[float]) -> ScalingFit:
    """Least-squares fit of log S = log S_min + log(1 + B_crit / B) over the finite, positive points.

    Needs 3 points with at least 2 distinct batch sizes; else ``NO_FIT`` (NaN fields)."""
    b = np.asarray(batch, dtype=float)
    s = np.asarray(steps, dtype=float)
    ok = np.isfinite(b) & np.isfinite(s) & (b > 0) & (s > 0)
    b, s = b[ok], s[ok]
    if b.size < 3 or np.unique(b).size < 2:
        return NO_FIT
    grid = np.geomspace(b.min() / GRID_SPAN, b.max() * GRID_SPAN, GRID_POINTS)
    shape = np.log1p(grid[:, None] / b[None, :])  # (grid, points)
    log_s = np.log(s)
    log_smin = (log_s[None, :] - shape).mean(axis=1)  # closed-form best intercept per candidate
    sse = ((log_s[None, :] - shape - log_smin[:, None]) ** 2).sum(axis=1)
    i = int(np.argmin(sse))
    s_min = float(np.exp(log_smin[i]))
    b_crit = float(grid[i])
    return ScalingFit(s_min=s_min, e_min=s_min * b_crit, b_crit=b_crit, rmse_log=float(np.sqrt(sse[i] / b.size)),
                      n=int(b.size), edge=i in (0, GRID_POINTS - 1))


def regime(batch: float, b_crit: float, factor: float = REGIME_FACTOR) -> str:
    """The scaling regime of ``batch`` given ``b_crit`` (see the module docstring); "" without a fit."""
    if not (np.isfinite(b_crit) and b_crit > 0):
        return ""
    if batch <= b_crit / factor:
        return REGIMES[0]
    if batch >= b_crit * factor:
        return REGIMES[2]
    return REGIMES[1]


def tradeoff(steps: Any, examples: Any, fit: ScalingFit) -> np.ndarray:
    """(S / S_min - 1)(E / E_min - 1) for each point: 1 on the fitted curve."""
    return (np.asarray(steps, dtype=float) / fit.s_min - 1) * (np.asarray(examples, dtype=float) / fit.e_min - 1)


def fastest_trials(frame: pd.DataFrame, keys: Sequence[str], tuned: Sequence[str] = (),
                   extra: Sequence[str] = (), select: str = "val_acc") -> pd.DataFrame:
    """Per cell (a group of ``keys``), the trial that reached the target in the fewest steps.

    Columns: the keys, ``steps`` (its steps_to_target; when no completed trial of the cell reached the
    target: the largest ``steps_done`` of the cell, a lower bound, with ``censored`` true), ``examples``
    (examples_to_target, or the same bound in examples), ``censored``, ``trial_id`` and the ``tuned``
    and ``extra`` columns of that trial (None when censored), ``n_trials``, ``n_diverged``. The fastest trial
    is selected by the one rule (``analysis/selection.py``), ties going to the better ``select``. A diverged trial that reached the target before it diverged
    counts (Shallue et al. count the first measurement that reaches it)."""
    keys = list(keys)
    rows = []
    for key, cell in frame.groupby(keys, sort=True, dropna=False):
        key = key if isinstance(key, tuple) else (key,)
        row: dict[str, Any] = {k: _plain(v) for k, v in zip(keys, key)}
        row["n_trials"] = int(len(cell))
        row["n_diverged"] = int((cell["status"] == "diverged").sum())
        i = best_index(cell, "steps_to_target", tuned, then=select, statuses=("completed", "diverged"))
        if i is None:
            done = pd.to_numeric(cell.get("steps_done", pd.Series(dtype=float)), errors="coerce")
            bound = float(done.max()) if done.notna().any() and done.max() > 0 else float("nan")
            batch = pd.to_numeric(cell["batch_size"], errors="coerce").max() if "batch_size" in cell else np.nan
            row.update(steps=bound, examples=bound * float(batch), censored=True, trial_id=None,
                       **{c: None for c in (*tuned, *extra) if c in cell.columns})
        else:
            best = cell.loc[i]
            examples = best.get("examples_to_target")
            if examples is None or not np.isfinite(float(examples)):
                examples = float(best["steps_to_target"]) * float(best["batch_size"])
            row.update(steps=float(best["steps_to_target"]), examples=float(examples), censored=False,
                       trial_id=best.get("trial_id"),
                       **{c: _plain(best[c]) for c in (*tuned, *extra) if c in cell.columns})
        rows.append(row)
    return pd.DataFrame(rows)


def geometric_mean(values: np.ndarray, axis: int = 0) -> np.ndarray:
    """Geometric mean ignoring NaN and non-positive values (NaN where none is left)."""
    v = np.asarray(values, dtype=float)
    with np.errstate(all="ignore"):
        logs = np.where(np.isfinite(v) & (v > 0), np.log(np.where(v > 0, v, 1.0)), np.nan)
        count = np.isfinite(logs).sum(axis=axis)
        total = np.nansum(logs, axis=axis)
        return np.where(count > 0, np.exp(total / np.maximum(count, 1)), np.nan)


def power_law_exponent(x: Sequence[float], y: Sequence[float]) -> float:
    """Slope of log y on log x by least squares over finite positive pairs (NaN with under 2 distinct x)."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    ok = np.isfinite(x) & np.isfinite(y) & (x > 0) & (y > 0)
    if np.unique(x[ok]).size < 2:
        return float("nan")
    return float(np.polyfit(np.log(x[ok]), np.log(y[ok]), 1)[0])


def _plain(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else value
