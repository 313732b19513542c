"""Claim kind ``range_width_trend``: the width of the good range of a nuisance axis
(e.g. the learning rate) changes monotonically with a scientific axis (e.g. batch size).

Frame: one row per trial with columns ``seed``, ``status``, the claim's
``axis``, its ``range_axis`` (a swept, positive, numeric nuisance axis), the
strata, and ``metric`` (default ``val_acc``).

Per (level, seed), the good set is the ``range_axis`` values whose trial did not
diverge and reached within ``tolerance`` of the best ``metric`` at that level
and seed (the best over any other nuisance axes is taken per value first). Its
width is log2(max / min) plus one grid step (a single good value has the width
of one grid cell). Width in log2 units is the same whether measured on the raw
value or on value / axis level (e.g. LR / batch): dividing by the level shifts
the range without changing its width; the figure shows both coordinates.

Statistic: the mean over seeds of each seed's Spearman rho between log2(level)
and its widths. Decision: the within-seed permutation test of level labels
against no trend; interval: Student t over the per-seed rhos
(analysis/inference.py). ``direction = "decreasing"``: supported when the test
shows rho below 0, refuted when above, else inconclusive.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from claimbench.analysis.quantities import good_range
from claimbench.analysis.inference import Hypothesis, decide_rank_trend
from claimbench.analysis.stats import seed_mean_ci
from claimbench.claims.arms import alpha, mean_method
from claimbench.claims.base import Claim, ClaimKind, ClaimResult, Design, Param, decided, register
from claimbench.claims.common import by_stratum
from claimbench.claims.trend import rank_correlation


def good_ranges(frame: pd.DataFrame, axis: str, range_axis: str, metric: str, tolerance: float) -> pd.DataFrame:
    """One row per (axis level, seed): lo, hi (of the good set), width (log2 units), n_good,
    n_stable (values that did not diverge), censored (the good set touches the grid edge)."""
    grid = np.array(sorted(frame[range_axis].unique()), dtype=float)
    rows = []
    for (level, seed), cell in frame.groupby([axis, "seed"], sort=True):
        ok = cell["status"].eq("completed") & cell[metric].notna()
        lo, hi, width, n_good, censored = good_range(cell, range_axis, metric, tolerance, grid)
        rows.append({axis: level, "seed": seed, "n_stable": int(cell.loc[ok, range_axis].nunique()),
                     "lo": lo, "hi": hi, "width": width, "n_good": n_good, "censored": censored})
    return pd.DataFrame(rows)


def evaluate(claim: Claim, frame: pd.DataFrame, design: Design) -> ClaimResult:
    return by_stratum(claim, frame, design, claim.params["axis"],
                      lambda sub, stratum: _evaluate_one(claim, sub, stratum))


def _evaluate_one(claim: Claim, frame: pd.DataFrame, stratum: dict) -> ClaimResult:
    p = claim.params
    axis, range_axis = p["axis"], p["range_axis"]
    ranges = good_ranges(frame, axis, range_axis, p["metric"], p["tolerance"])
    wide = ranges.pivot_table(index="seed", columns=axis, values="width", aggfunc="first")
    wide = wide.reindex(columns=sorted(wide.columns))
    x = np.log2(np.array(wide.columns, dtype=float))

    values = wide.to_numpy(dtype=float)
    of_means = rank_correlation(x, values)
    h = Hypothesis.less(0.0) if p["direction"] == "decreasing" else Hypothesis.greater(0.0)
    decision = decide_rank_trend(x, values, h, "spearman", alpha(p))
    effect, ci = decision.estimate, decision.ci
    widths = seed_mean_ci(wide, p["confidence"])
    # ``lo``/``hi``: CI of the mean width; ``range_lo``/``range_hi``: median ends of the good range
    spans = ranges.groupby(axis).agg(range_lo=("lo", "median"), range_hi=("hi", "median"),
                                     censored=("censored", "any"))
    data = widths.merge(spans, left_on="level", right_index=True, how="left")
    data["range_lo_per_level"] = data["range_lo"] / data["level"]
    data["range_hi_per_level"] = data["range_hi"] / data["level"]
    caveats = []
    censored = [f"{lv:g}" for lv, c in spans["censored"].items() if c]
    if censored:
        caveats.append(f"the good {range_axis} range touches the edge of the grid at {axis} = "
                       f"{', '.join(censored)}: its true width may be larger")
    single = ranges.groupby(axis)["n_good"].median()
    if (single <= 1).mean() > 0.5:
        grid = np.sort(frame[range_axis].unique())
        step = float(np.median(np.diff(np.log2(grid)))) if grid.size > 1 else float("nan")
        caveats.append(f"the good {range_axis} range is a single grid value at most {axis} levels: the grid "
                       f"({step:.2g} log2 units between values) is too coarse to resolve its width, so the "
                       f"widths are mostly ties")
    if len(wide.columns) < 3:
        caveats.append(f"fewer than 3 {axis} levels: a rank correlation cannot be decided")
    summary = (f"mean over seeds of Spearman rho(log2 {axis}, width of the good {range_axis} range) = "
               f"{effect:+.2f} (CI {ci[0]:+.2f} to {ci[1]:+.2f}); rho of the mean widths {of_means:+.2f}; mean width {widths['mean'].iloc[0]:.1f} log2 units at "
               f"{axis}={widths['level'].iloc[0]:g}, {widths['mean'].iloc[-1]:.1f} at {widths['level'].iloc[-1]:g}")
    return decided(decision, h, "Spearman rho", claim_id=claim.id, kind=KIND.name, statistic=KIND.statistic,
                   n_seeds=int(wide.shape[0]), n_trials=len(frame), method=KIND.method, summary=summary,
                   stratum=stratum, caveats=caveats, data=data.to_dict("records"),
                   estimates=[{"group": f"{axis}={r['level']:g}", **r, "method": mean_method(p)}
                              for r in data.to_dict("records")])


KIND = register(ClaimKind(
    name="range_width_trend",
    params={
        "axis": Param(str, doc="the scientific axis (e.g. batch_size)"),
        "range_axis": Param(str, "lr", "the nuisance axis whose good range is measured"),
        "metric": Param(str, "val_acc", "metric that defines 'good' (higher is better)", metric=True),
        "tolerance": Param(float, 0.01, "good: within this of the best at that level and seed (0.01 = 1 point)",
                           ge=0.0),
        "direction": Param(str, "decreasing", "claimed trend: decreasing or increasing",
                           choices=("decreasing", "increasing")),
        "confidence": Param(float, 0.95, "two-sided confidence of the interval", gt=0.0, lt=1.0),
    },
    evaluate=evaluate,
    statistic="mean over seeds of the per-seed Spearman rho between log2(level) and the width (log2 units) of the "
              "good range",
    method="within-seed permutation test of level labels (against no trend); interval: Student t over seeds of "
           "the per-seed rhos",
    axis_params=("axis", "range_axis"),
))
