"""Claim kind ``ranking``: the levels of an axis rank in a claimed order.

Frame: one row per trial with ``seed``, ``status``, the claim's ``axis``, the
tuned axes, the strata and the columns the ``quantity`` reads. Params:
``axis``, ``order`` (the levels, claimed worst -> best), ``goal`` (higher |
lower: which values of the quantity are better), and the common ``quantity``,
``select``, ``tune``, ``where``, ``confidence``, ``tolerance``.

Per (stratum, level, seed) cell the quantity is taken over the tuned axes.
Statistic: the mean over seeds of each seed's Kendall tau between the claimed
rank and that seed's values (signed by ``goal``, so +1 is exactly the claimed
order). Decision: the within-seed permutation test of level labels against no
order; interval: Student t over the per-seed taus (analysis/inference.py).
Supported when the test shows tau above 0, refuted when below 0, inconclusive
otherwise; fewer than 2 listed levels with values, or fewer than 2 seeds,
cannot decide. The summary prints the observed order and the tau of the
per-level means.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.stats import kendalltau

from claimbench.analysis.quantities import to_wide
from claimbench.analysis.inference import Hypothesis, decide_rank_trend
from claimbench.analysis.stats import seed_mean_ci
from claimbench.claims import arms
from claimbench.claims.base import Claim, ClaimKind, ClaimResult, Design, Param, decided, register
from claimbench.claims.common import quiet

NAME = "ranking"


def evaluate(claim: Claim, frame: pd.DataFrame, design: Design) -> ClaimResult:
    p = claim.params
    if p["goal"] not in ("higher", "lower"):
        raise ValueError(f"goal must be 'higher' or 'lower', got {p['goal']!r}")
    setup = arms.prepare(claim, frame, design, own=[p["axis"]])
    arms.require(setup.frame, [p["axis"], "seed"])
    return arms.per_stratum(claim, design, setup, lambda sub, stratum: _evaluate_one(claim, setup, sub, stratum), NAME)


def _tau(values: np.ndarray, sign: float) -> float:
    with quiet():
        means = sign * np.nanmean(values, axis=0)
    keep = np.isfinite(means)
    if keep.sum() < 2:
        return float("nan")
    if np.ptp(means[keep]) == 0:
        return 0.0
    return float(kendalltau(np.arange(values.shape[1])[keep], means[keep]).statistic)


def _evaluate_one(claim: Claim, setup: arms.Setup, sub: pd.DataFrame, stratum: dict) -> ClaimResult:
    p = claim.params
    axis, q = p["axis"], setup.quantity
    sign = 1.0 if p["goal"] == "higher" else -1.0
    long = arms.quantities(setup, sub, [axis, "seed"], claim)
    levels, left_out = arms.ordered_levels(long[axis], p["order"])
    missing = [v for v in p["order"] if v not in levels]
    wide = to_wide(long, axis, levels)
    caveats = arms.missing_caveats(long[long[axis].isin(levels)], axis, q) \
        + arms.edge_caveats(long, sub, setup.tuned, axis)
    if left_out:
        caveats.append(f"{axis} levels tested but not ranked by the claim: {', '.join(map(str, left_out))}")
    if missing:
        caveats.append(f"{axis} levels the claim ranks but the matrix lacks: {', '.join(map(str, missing))}")
    per_level = seed_mean_ci(wide, p["confidence"])
    per_level.insert(1, "claimed_rank", np.arange(1, len(levels) + 1))
    observed = per_level["mean"].mul(sign).rank(method="min")
    per_level["observed_rank"] = observed.where(observed.notna(), None)
    base = dict(claim_id=claim.id, kind=NAME, statistic=KIND.statistic, method=KIND.method,
                n_seeds=int(wide.shape[0]), n_trials=len(sub), stratum=stratum, caveats=caveats,
                data=arms.records(per_level), estimates=arms.estimates(per_level, arms.mean_method(p), axis),
                selected=arms.level_selected(long, sub, axis, levels, q))
    unit = "Kendall tau"
    if len(levels) < 2:
        return arms.undecided(claim, NAME, f"fewer than 2 of the ranked {axis} levels were tested", **base)
    values = wide.to_numpy(dtype=float)
    of_means = _tau(values, sign)
    if not np.isfinite(of_means):
        return arms.undecided(claim, NAME, f"fewer than 2 {axis} levels have a value of {q.text}", unit=unit, **base)
    h = Hypothesis.greater(0.0)
    decision = decide_rank_trend(np.arange(len(levels), dtype=float), sign * values, h, "kendall", arms.alpha(p))
    if decision.n < 2:
        return arms.undecided(claim, NAME, f"{decision.n} seed(s) with 2 ranked levels with values: no interval",
                              unit=unit, effect=decision.estimate if decision.n else None, **base)
    effect, ci = decision.estimate, decision.ci
    ranked = per_level.dropna(subset=["mean"]).assign(_key=lambda d: sign * d["mean"]).sort_values("_key", kind="stable")
    order_text = " < ".join(f"{lv} ({m:.4g})" for lv, m in zip(ranked["level"], ranked["mean"]))
    summary = (f"mean over seeds of Kendall tau(claimed rank, {q.describe(p['select'])}) = {effect:+.2f} "
               f"({arms.fmt_ci(ci, True)}); tau of the per-level means {of_means:+.2f}; observed order worst to best ({p['goal']} is better): {order_text}; "
               f"claimed: {' < '.join(map(str, levels))}")
    return decided(decision, h, unit, summary=summary, **base)


KIND = register(ClaimKind(
    name=NAME,
    reads="quantity",
    params=arms.params(
        axis=Param(str, doc="the axis whose levels are ranked"),
        order=Param(list, doc="the levels, claimed worst to best"),
        goal=Param(str, "higher", "higher or lower values of the quantity are better", choices=("higher", "lower")),
    ),
    evaluate=evaluate,
    statistic="mean over seeds of the per-seed Kendall tau between the claimed rank and the quantity",
    method="within-seed permutation test of level labels (against no order); interval: Student t over seeds of "
           "the per-seed taus",
))
