"""Claim kind ``monotone_trend``: a quantity rises (or falls) monotonically along an axis.

Frame: one row per trial with ``seed``, ``status``, the claim's ``axis``, the
tuned axes, the strata and the columns the ``quantity`` reads (see
analysis/quantities.py). Params: ``axis``, ``direction`` (increasing |
decreasing), ``order`` (the levels in order, for a non-numeric axis), ``margin``
(on rho, default 0), and the common ``quantity``, ``select``, ``tune``,
``where``, ``confidence``, ``tolerance``.

Per (stratum, level, seed) cell the quantity is taken over the tuned axes.
Statistic: the mean over seeds of each seed's Spearman rho between the level's
position (numeric order, or the listed ``order``) and that seed's values. A
per-seed statistic makes the seeds independent replicates, so the Student t
interval over seeds holds at small seed counts (analysis/inference.py; the rho
of the per-level means, also printed, has no such interval); against no
trend (margin 0) the within-seed permutation test of level labels decides.
Verdict:
supported when the CI lies beyond ``margin`` on the claimed side (above it
for increasing, below −margin for decreasing), refuted when it lies wholly on
the other side of it, inconclusive otherwise; fewer than 3 levels or 2 seeds
cannot decide.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.stats import spearmanr

from claimbench.analysis.quantities import to_wide
from claimbench.analysis.inference import Hypothesis, decide_rank_trend
from claimbench.analysis.stats import seed_mean_ci
from claimbench.claims import arms
from claimbench.claims.base import Claim, ClaimKind, ClaimResult, Design, Param, decided, register
from claimbench.claims.common import quiet

NAME = "monotone_trend"
UNIT = "Spearman rho"


def evaluate(claim: Claim, frame: pd.DataFrame, design: Design) -> ClaimResult:
    p = claim.params
    if p["direction"] not in ("increasing", "decreasing"):
        raise ValueError(f"direction must be 'increasing' or 'decreasing', got {p['direction']!r}")
    setup = arms.prepare(claim, frame, design, own=[p["axis"]])
    arms.require(setup.frame, [p["axis"], "seed"])
    return arms.per_stratum(claim, design, setup, lambda sub, stratum: _evaluate_one(claim, setup, sub, stratum), NAME)


def rank_correlation(x: np.ndarray, values: np.ndarray) -> float:
    """Spearman rho between ``x`` and the column means of ``values`` (NaN with under 3 finite means)."""
    with quiet():
        means = np.nanmean(values, axis=0)
    keep = np.isfinite(means)
    if keep.sum() < 3:
        return float("nan")
    if np.ptp(means[keep]) == 0:
        return 0.0
    return float(spearmanr(x[keep], means[keep]).statistic)


def trend_line(per_level: pd.DataFrame) -> dict | None:
    """The least-squares line of the per-level means over the level positions (``slope``, ``intercept``),
    the direction the data take, drawn beside the verdict (which the rank correlation decides); None with
    fewer than 2 means."""
    mean = per_level["mean"].to_numpy(dtype=float)
    ok = np.isfinite(mean)
    if ok.sum() < 2:
        return None
    slope, intercept = np.polyfit(per_level["position"].to_numpy(dtype=float)[ok], mean[ok], 1)
    return {"slope": float(slope), "intercept": float(intercept), "over": "position"}


def _evaluate_one(claim: Claim, setup: arms.Setup, sub: pd.DataFrame, stratum: dict) -> ClaimResult:
    p = claim.params
    axis, q = p["axis"], setup.quantity
    long = arms.quantities(setup, sub, [axis, "seed"], claim)
    levels, left_out = arms.ordered_levels(long[axis], p.get("order"))
    wide = to_wide(long, axis, levels)
    caveats = arms.missing_caveats(long, axis, q) + arms.edge_caveats(long, sub, setup.tuned, axis)
    if left_out:
        caveats.append(f"levels not in the claimed order are left out: {', '.join(map(str, left_out))}")
    base = dict(claim_id=claim.id, kind=NAME, statistic=KIND.statistic, method=KIND.method, unit=UNIT,
                n_seeds=int(wide.shape[0]), n_trials=len(sub), stratum=stratum, caveats=caveats)
    numeric = all(isinstance(v, (int, float, bool, np.number)) for v in levels)
    if not numeric and not p.get("order"):
        return arms.undecided(claim, NAME, f"{axis} is not numeric: give its levels in order with order = [...]", **base)
    per_level = seed_mean_ci(wide, p["confidence"])
    per_level.insert(1, "position", np.arange(len(levels)))
    per_level["censored"] = [int(long.loc[long[axis] == lv, "censored"].astype(bool).sum()) for lv in levels]
    base["data"] = arms.records(per_level)
    base["estimates"] = arms.estimates(per_level, arms.mean_method(p), axis)
    base["selected"] = arms.level_selected(long, sub, axis, levels, q)
    base["figure_data"] = {"trend_line": trend_line(per_level)}
    if len(levels) < 3:
        return arms.undecided(claim, NAME, f"only {len(levels)} {axis} level(s): a rank correlation needs 3", **base)
    x = np.arange(len(levels), dtype=float)
    values = wide.to_numpy(dtype=float)
    of_means = rank_correlation(x, values)
    h = Hypothesis.greater(p["margin"]) if p["direction"] == "increasing" else Hypothesis.less(-p["margin"])
    decision = decide_rank_trend(x, values, h, "spearman", arms.alpha(p))
    if decision.n < 2:
        return arms.undecided(claim, NAME, f"{decision.n} seed(s) with 3 {axis} levels with a value of {q.text}: "
                              f"no interval", effect=decision.estimate if decision.n else None, **base)
    effect, ci = decision.estimate, decision.ci
    ends = per_level.dropna(subset=["mean"])
    summary = (f"mean over seeds of Spearman rho({axis}, {q.describe(p['select'])}) = {effect:+.2f} "
               f"({arms.fmt_ci(ci, True)}); rho of the per-level means {of_means:+.2f}; claimed {p['direction']}"
               + (f" beyond {p['margin']:g}" if p["margin"] else "")
               + (f"; mean {arms.fmt_num(ends['mean'].iloc[0])} at {axis}={ends['level'].iloc[0]}, "
                  f"{arms.fmt_num(ends['mean'].iloc[-1])} at {ends['level'].iloc[-1]}" if len(ends) else ""))
    base.pop("unit")
    return decided(decision, h, UNIT, summary=summary, **base)


KIND = register(ClaimKind(
    name=NAME,
    reads="quantity",
    params=arms.params(
        axis=Param(str, doc="the axis along which the quantity trends"),
        direction=Param(str, "increasing", "claimed direction: increasing or decreasing",
                        choices=("increasing", "decreasing")),
        order=Param(list, None, "the levels in order (needed for a non-numeric axis)"),
        margin=Param(float, 0.0, "how far beyond 0 rho must lie", ge=0.0, lt=1.0),
    ),
    evaluate=evaluate,
    statistic="mean over seeds of the per-seed Spearman rho between the level and the quantity",
    method="within-seed permutation test of level labels (against no trend); interval: Student t over seeds of "
           "the per-seed rank correlations",
))
