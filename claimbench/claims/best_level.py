"""Claim kind ``best_level_in_range``: the best level of a scientific axis lies in [low, high].

Frame: one row per trial with columns ``seed``, ``status``, the claim's axis,
the nuisance axes, the strata (fixed and other scientific axes), ``select``
(default ``val_acc``) and ``metric`` (default ``test_acc``).

Statistic: D = (best mean metric over the levels inside [low, high]) − (best
mean metric over the levels outside), means over seeds of the best-over-nuisance
trial (selected on ``select``, reported on ``metric``); equivalently
max over inside levels i of min over outside levels j of (mean_i − mean_j).
CI and p-values: paired Student t bounds per pair of levels (paired by seed),
the lower bound Bonferroni-corrected over the inside levels and the upper over
the outside ones, so that the interval holds whichever levels truly win
(analysis/inference.py, ``decide_max_min``; conservative). Supported when the
CI lies above ``margin``, refuted when it lies below it (a level outside the
range is better), inconclusive otherwise.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from claimbench.analysis.isolation import isolate
from claimbench.analysis.inference import Hypothesis, decide_max_min
from claimbench.analysis.quantities import column_unit
from claimbench.analysis.stats import seed_mean_ci
from claimbench.claims.arms import alpha
from claimbench.claims.base import Claim, ClaimKind, ClaimResult, Design, Param, decided, register
from claimbench.claims.common import by_stratum, grid_edge_caveats, quiet


def evaluate(claim: Claim, frame: pd.DataFrame, design: Design) -> ClaimResult:
    p = claim.params
    return by_stratum(claim, frame, design, p["axis"], lambda sub, stratum: _evaluate_one(claim, sub, design, stratum))


def _evaluate_one(claim: Claim, frame: pd.DataFrame, design: Design, stratum: dict) -> ClaimResult:
    p = claim.params
    axis, lo_bound, hi_bound = p["axis"], p["low"], p["high"]
    iso = isolate(frame, axis, design, select=p["select"], report=p["metric"])
    wide = iso.pivot_table(index="seed", columns=axis, values="value", aggfunc="first", dropna=False)
    wide = wide.reindex(columns=sorted(wide.columns))
    levels = np.array(wide.columns, dtype=float)
    inside = (levels >= lo_bound) & (levels <= hi_bound)
    per_level = seed_mean_ci(wide, p["confidence"])
    per_level["inside"] = inside
    unit = column_unit(p["metric"])
    base = dict(claim_id=claim.id, kind=KIND.name, statistic=KIND.statistic, method=KIND.method, unit=unit,
                n_seeds=int(wide.shape[0]), n_trials=len(frame), stratum=stratum,
                caveats=grid_edge_caveats(iso, frame, design, axis), data=per_level.to_dict("records"),
                selected=[{"group": f"{axis}={lv:g}", "level": float(lv), "seed": int(seed), "trial_ids": [str(tid)]}
                          for lv, seed, tid in zip(iso[axis], iso["seed"], iso["trial_id"]) if tid is not None])

    if inside.all() or not inside.any():
        where = "inside" if inside.all() else "outside"
        return ClaimResult(verdict="inconclusive", effect=None, ci=None, **base,
                           summary=f"every tested {axis} level lies {where} [{lo_bound:g}, {hi_bound:g}]: the matrix cannot decide")

    def best_level(values: np.ndarray) -> float:
        with quiet():
            means = np.nanmean(values, axis=0)
        return float(levels[np.nanargmax(means)]) if np.isfinite(means).any() else float("nan")

    values = wide.to_numpy(dtype=float)
    h = Hypothesis.greater(p["margin"])
    decision = decide_max_min(values[:, inside], values[:, ~inside], h, alpha(p))
    effect, ci = decision.estimate, decision.ci
    best = best_level(values)
    per_seed_best = [best_level(row[None, :]) for row in values]
    share = float(np.mean([lo_bound <= b <= hi_bound for b in per_seed_best if np.isfinite(b)] or [np.nan]))
    summary = (f"best {axis} = {best:g}; best inside [{lo_bound:g}, {hi_bound:g}] minus best outside: "
               f"{effect:+.4f} {p['metric']} (CI {ci[0]:+.4f} to {ci[1]:+.4f}); "
               f"the best level lies inside the range on {share:.0%} of seeds")
    base.pop("unit")
    return decided(decision, h, unit, summary=summary, **base)


KIND = register(ClaimKind(
    name="best_level_in_range",
    params={
        "axis": Param(str, doc="the scientific axis"),
        "low": Param(float, doc="lower end of the claimed range (inclusive)"),
        "high": Param(float, doc="upper end of the claimed range (inclusive)"),
        "metric": Param(str, "test_acc", "reported metric (higher is better)"),
        "select": Param(str, "val_acc", "metric that selects the best nuisance setting"),
        "margin": Param(float, 0.0, "how much better the range must be"),
        "confidence": Param(float, 0.95, "two-sided confidence of the interval"),
    },
    evaluate=evaluate,
    statistic="best mean metric inside the range minus best mean metric outside it",
    method="paired Student t bounds per pair of levels (inside vs outside), Bonferroni over the levels that could "
           "win; on the best-over-nuisance trial (selected on validation, reported on test)",
))
