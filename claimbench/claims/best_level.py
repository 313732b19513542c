"""Claim kind ``best_level_in_range``: the best level of a scientific axis lies in [low, high].

Frame: one row per trial with columns ``seed``, ``status``, the claim's axis,
the nuisance axes, the strata (fixed and other scientific axes), ``select``
(default ``val_acc``) and ``metric`` (default ``test_acc``).

Statistic: D = (best mean metric over the levels inside [low, high]) − (best
mean metric over the levels outside), means over seeds of the best-over-nuisance
trial (selected on ``select``, reported on ``metric``). CI: paired percentile
bootstrap over seeds. Supported when the CI lies above ``margin``, refuted when
it lies below it (a level outside the range is better), inconclusive otherwise.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from claimbench.analysis.isolation import isolate
from claimbench.analysis.stats import bootstrap, percentile_ci, seed_mean_ci, verdict_from_ci
from claimbench.claims.base import Claim, ClaimKind, ClaimResult, Design, Param, register
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
    per_level = seed_mean_ci(wide, p["confidence"], p["n_boot"])
    per_level["inside"] = inside
    base = dict(claim_id=claim.id, kind=KIND.name, statistic=KIND.statistic, method=KIND.method,
                n_seeds=int(wide.shape[0]), n_trials=len(frame), stratum=stratum,
                caveats=grid_edge_caveats(iso, frame, design, axis), data=per_level.to_dict("records"))

    if inside.all() or not inside.any():
        where = "inside" if inside.all() else "outside"
        return ClaimResult(verdict="inconclusive", effect=None, ci=None, **base,
                           summary=f"every tested {axis} level lies {where} [{lo_bound:g}, {hi_bound:g}]: the matrix cannot decide")

    def gap(values: np.ndarray) -> float:
        with quiet():
            means = np.nanmean(values, axis=0)
        a, b = means[inside], means[~inside]
        if np.all(np.isnan(a)) or np.all(np.isnan(b)):
            return float("nan")
        return float(np.nanmax(a) - np.nanmax(b))

    def best_level(values: np.ndarray) -> float:
        with quiet():
            means = np.nanmean(values, axis=0)
        return float(levels[np.nanargmax(means)]) if np.isfinite(means).any() else float("nan")

    effect = gap(wide.to_numpy(dtype=float))
    samples = bootstrap(wide, gap, p["n_boot"])
    ci = percentile_ci(samples, p["confidence"])
    verdict = verdict_from_ci(ci, p["margin"])
    best = best_level(wide.to_numpy(dtype=float))
    boot_best = pd.Series(bootstrap(wide, best_level, p["n_boot"], seed=1))
    share = float(((boot_best >= lo_bound) & (boot_best <= hi_bound)).mean())
    summary = (f"best {axis} = {best:g}; best inside [{lo_bound:g}, {hi_bound:g}] minus best outside: "
               f"{effect:+.4f} {p['metric']} (CI {ci[0]:+.4f} to {ci[1]:+.4f}); "
               f"the bootstrap puts the best level inside the range in {share:.0%} of resamples")
    return ClaimResult(verdict=verdict, effect=effect, ci=ci, summary=summary, **base)


KIND = register(ClaimKind(
    name="best_level_in_range",
    params={
        "axis": Param(str, doc="the scientific axis"),
        "low": Param(float, doc="lower end of the claimed range (inclusive)"),
        "high": Param(float, doc="upper end of the claimed range (inclusive)"),
        "metric": Param(str, "test_acc", "reported metric (higher is better)"),
        "select": Param(str, "val_acc", "metric that selects the best nuisance setting"),
        "margin": Param(float, 0.0, "how much better the range must be"),
        "confidence": Param(float, 0.95),
        "n_boot": Param(int, 2000),
    },
    evaluate=evaluate,
    statistic="best mean metric inside the range minus best mean metric outside it",
    method="paired percentile bootstrap over seeds of the best-over-nuisance trial (selected on validation, reported on test)",
))
