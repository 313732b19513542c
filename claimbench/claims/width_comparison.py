"""Claim kind ``range_width_comparison``: arm a has a wider good range of an axis (e.g. the LR) than arm b.

Frame: one row per trial with ``seed``, ``status``, the arm columns, the
``range_axis`` (a positive numeric axis, tuned within a cell), the other
tuned axes, the strata and ``select``. Params: ``a``, ``b`` (arms),
``range_axis`` (default ``lr``), ``select`` (the metric that defines good,
default ``val_acc``; ``metric`` is accepted as its alias), ``tolerance``
(good: within this of the cell's best, default 0.01), ``margin`` (log2 units,
default 0), and the common ``tune``, ``where``, ``confidence``.

Per (stratum, arm, seed) the good set is the ``range_axis`` values whose best
completed trial reached within ``tolerance`` of the best ``select`` (the
``range_width:<range_axis>`` quantity); its width is log2(max / min) plus one
grid step. Statistic: mean over seeds of width_a − width_b (log2 units). CI:
Student t over the per-seed differences (analysis/inference.py). Supported when the CI lower end exceeds
``margin``, refuted when its upper end is below 0, else inconclusive. A range
that touches the grid edge is censored (its true width may be larger) and
says so in the caveats.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from claimbench.analysis.inference import Hypothesis, decide_mean
from claimbench.claims import arms
from claimbench.claims.base import Claim, ClaimKind, ClaimResult, Design, Param, band_of, decided, register
from claimbench.claims.common import quiet

NAME = "range_width_comparison"
UNIT = "log2 units"


def evaluate(claim: Claim, frame: pd.DataFrame, design: Design) -> ClaimResult:
    p = claim.params
    a, b = arms.check_arm(p["a"], "a"), arms.check_arm(p["b"], "b")
    if p.get("metric"):
        claim = Claim(claim.id, claim.kind, claim.faq_section, claim.paraphrase, {**p, "select": p["metric"]})
    quantity = f"range_width:{p['range_axis']}"
    setup = arms.prepare(claim, frame, design, own=arms.arm_keys(a, b), quantity=quantity)
    return arms.per_stratum(claim, design, setup, lambda sub, stratum: _evaluate_one(claim, setup, sub, stratum), NAME)


def _mean_difference(values: np.ndarray) -> float:
    with quiet():
        d = values[:, 0] - values[:, 1]
    return float(np.nanmean(d)) if np.isfinite(d).any() else float("nan")


def _evaluate_one(claim: Claim, setup: arms.Setup, sub: pd.DataFrame, stratum: dict) -> ClaimResult:
    p = claim.params
    q = setup.quantity
    labels = {"a": arms.arm_label(p["a"]), "b": arms.arm_label(p["b"])}
    cells = {name: arms.arm_cells(setup, sub, claim, p[name]) for name in ("a", "b")}
    wide = arms.paired(cells)
    table = pd.concat([c.assign(side=name) for name, c in cells.items() if not c.empty]) \
        if any(not c.empty for c in cells.values()) else pd.DataFrame(columns=["seed", "value"])
    keep = [c for c in ("side", "arm", "seed", "value", "lo", "hi", "n_good", "censored", "n_trials", "n_diverged")
            if c in table.columns]
    data = arms.records(table[keep].rename(columns={"value": "width"}))
    caveats = arms.missing_caveats(table, "arm", q) if "arm" in table else []
    n_paired = arms.paired_seeds(wide)
    grid = sorted(float(v) for v in pd.to_numeric(sub[p["range_axis"]], errors="coerce").dropna().unique()) \
        if p["range_axis"] in sub.columns else []
    h = Hypothesis.greater(p["margin"], 0.0)
    base = dict(claim_id=claim.id, kind=NAME, statistic=KIND.statistic, method=KIND.method, n_seeds=n_paired,
                n_trials=int(sum(c["n_trials"].sum() for c in cells.values() if not c.empty)), stratum=stratum,
                caveats=caveats, data=data, estimates=arms.arm_estimates(wide, labels, p), band=band_of(h),
                figure_data={"grid": {"axis": p["range_axis"], "low": grid[0], "high": grid[-1]} if grid else None})
    reason = arms.empty_arm_reason(cells, labels)
    if reason is None and n_paired < 2:
        reason = f"{n_paired} seed(s) with a width in both arms: a paired CI needs 2"
    values = wide.to_numpy(dtype=float)
    if reason:
        return arms.undecided(claim, NAME, reason, unit=UNIT, effect=_mean_difference(values) if n_paired else None,
                              **base)
    decision = decide_mean(values[:, 0] - values[:, 1], h, arms.alpha(p))
    effect, ci = decision.estimate, decision.ci
    means = wide.mean(axis=0)
    summary = (f"width of the good {p['range_axis']} range (log2 units), {labels['a']} minus {labels['b']}: "
               f"{effect:+.2f} ({arms.fmt_ci(ci, True)}); mean width {means['a']:.2f} vs {means['b']:.2f} "
               f"(good: within {p['tolerance']:g} of the best {p['select']})")
    return decided(decision, h, UNIT, summary=summary, **base)


KIND = register(ClaimKind(
    name=NAME,
    params=arms.params(
        exclude=("quantity",),
        a=Param(dict, doc="the arm claimed to have the wider range"),
        b=Param(dict, doc="the other arm"),
        range_axis=Param(str, "lr", "the tuned axis whose good range is measured"),
        metric=Param(str, None, "alias of select: the metric that defines good", metric=True),
        margin=Param(float, 0.0, "how much wider (log2 units)", ge=0.0),
    ),
    evaluate=evaluate,
    statistic="mean over seeds of width_a − width_b of the good range (log2 units)",
    method="Student t interval over seeds of the paired width differences",
    axis_params=("range_axis",),
))
