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
from claimbench.analysis.selection import best_trials
from claimbench.analysis.stats import seed_mean_ci
from claimbench.claims.arms import alpha, mean_method
from claimbench.claims.base import Claim, ClaimKind, ClaimResult, Design, Param, decided, register
from claimbench.claims.common import by_stratum, grid_edge_caveats, quiet


def evaluate(claim: Claim, frame: pd.DataFrame, design: Design) -> ClaimResult:
    p = claim.params
    return by_stratum(claim, frame, design, p["axis"], lambda sub, stratum: _evaluate_one(claim, sub, design, stratum))


def heatmap_cells(frame: pd.DataFrame, axis: str, design: Design, metric: str, select: str) -> dict:
    """What the heatmap draws, against the first nuisance axis: per (level, nuisance value) ``mean`` over
    seeds of ``metric`` of each seed's best trial over any other nuisance axes (chosen on ``select``),
    ``select_mean`` (the same trials' mean ``select``), ``n`` trials with a record and ``diverged`` of
    them; ``outlined``, per level, the nuisance value with the best ``select_mean`` (what isolation picks
    most often). Empty without a nuisance axis or the columns."""
    nuisance = next(iter(design.nuisance), None)
    if nuisance is None or not {axis, nuisance, metric, select, "status", "seed"} <= set(frame.columns):
        return {}
    keys = [axis, nuisance]
    counts = frame.groupby(keys).size().rename("n")
    diverged = frame[frame["status"] == "diverged"].groupby(keys).size().rename("diverged")
    ok = frame[(frame["status"] == "completed") & frame[select].notna() & frame[metric].notna()]
    cells = pd.concat([counts, diverged], axis=1).fillna(0).astype(int)
    if not ok.empty:
        per_seed = best_trials(ok, [*keys, "seed"], select, [n for n in design.nuisance if n != nuisance])
        cells = cells.join(per_seed.groupby(keys)[metric].mean().rename("mean"), how="left")
        cells = cells.join(per_seed.groupby(keys)[select].mean().rename("select_mean"), how="left")
    else:
        cells = cells.assign(mean=np.nan, select_mean=np.nan)
    cells = cells.reset_index().rename(columns={axis: "level", nuisance: "value"})
    outlined = []
    for level, group in cells.dropna(subset=["select_mean"]).groupby("level", sort=True):
        ordered = group.sort_values("value", ascending=False, kind="stable")  # ties: the highest value, as drawn
        best = ordered.iloc[int(np.argmax(ordered["select_mean"].to_numpy(dtype=float)))]
        outlined.append({"level": _plain(level), "value": _plain(best["value"])})
    rows = [{k: _plain(v) for k, v in r.items()} for r in cells.to_dict("records")]
    return {"heatmap": {"axis": axis, "nuisance": nuisance, "metric": metric, "select": select,
                        "other_nuisance": len(design.nuisance) > 1, "cells": rows, "outlined": outlined}}


def _plain(value):
    return value.item() if hasattr(value, "item") else value


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
                selected=[{"group": f"{axis}={lv:g}", "level": float(lv), "seed": int(seed), "trial_ids": [str(tid)],
                           "quantity": p["metric"]}
                          for lv, seed, tid in zip(iso[axis], iso["seed"], iso["trial_id"]) if tid is not None],
                estimates=[{"group": f"{axis}={r['level']:g}", **r, "method": mean_method(p)}
                           for r in per_level.to_dict("records")],
                figure_data={**heatmap_cells(frame, axis, design, p["metric"], p["select"]),
                             "claimed_levels": [float(lo_bound), float(hi_bound)]})

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
    reads="tuned",
    params={
        "axis": Param(str, doc="the scientific axis"),
        "low": Param(float, doc="lower end of the claimed range (inclusive)", at_most="high"),
        "high": Param(float, doc="upper end of the claimed range (inclusive)"),
        "metric": Param(str, "test_acc", "reported metric (higher is better)", metric=True),
        "select": Param(str, "val_acc", "metric that selects the best nuisance setting", metric=True),
        "margin": Param(float, 0.0, "how much better the range must be", ge=0.0),
        "confidence": Param(float, 0.95, "two-sided confidence of the interval", gt=0.0, lt=1.0),
    },
    evaluate=evaluate,
    statistic="best mean metric inside the range minus best mean metric outside it",
    method="paired Student t bounds per pair of levels (inside vs outside), Bonferroni over the levels that could "
           "win; on the best-over-nuisance trial (selected on validation, reported on test)",
))
