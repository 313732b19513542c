"""Claim kind ``equivalence``: arm a is as good as arm b (or as the best level of an axis), within a margin.

Frame: one row per trial with ``seed``, ``status``, the arm columns (and
``axis``), the tuned axes, the strata and the columns the ``quantity`` reads.
Params: ``a`` (an arm), ``b`` (an arm, or the string ``"best"`` together with
``axis``), ``axis``, ``margin`` (>= 0, in the quantity's units), ``goal``
(higher | lower is better; used against "best"), and the common ``quantity``,
``select``, ``tune``, ``where``, ``confidence``, ``tolerance``.

Statistic, two-sided (b an arm): the mean over seeds of q_a − q_b, arms paired
by seed; CI: Student t over the per-seed differences. Supported when the CI
lies inside [−margin, margin] (two one-sided tests), refuted when it misses
that band entirely, else inconclusive.

Against ``"best"``: the levels of ``axis`` are compared among the trials that
match a's other keys; statistic q_a − (the best level's mean q), signed so
that positive favours a. The interval takes the choice of the best level into
account (analysis/inference.py, ``decide_max_min`` with A = {a}): a is
supported when it is shown within −margin of every level (paired t per level,
no correction needed: all must hold), refuted when some level is shown better
than a by more than the margin (Bonferroni over the levels). Supported when
the CI lower end exceeds −margin, refuted when its upper end is below −margin.
An arm without trials or fewer than 2 paired seeds cannot decide.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from claimbench.analysis.quantities import restrict, to_wide
from claimbench.analysis.inference import Hypothesis, decide_max_min, decide_mean
from claimbench.claims import arms
from claimbench.claims.base import Claim, ClaimKind, ClaimResult, Design, Param, band_of, decided, register
from claimbench.claims.common import quiet

NAME = "equivalence"


def evaluate(claim: Claim, frame: pd.DataFrame, design: Design) -> ClaimResult:
    p = claim.params
    a = arms.check_arm(p["a"], "a")
    if p["margin"] < 0:
        raise ValueError(f"margin must be >= 0, got {p['margin']!r}")
    if p["goal"] not in ("higher", "lower"):
        raise ValueError(f"goal must be 'higher' or 'lower', got {p['goal']!r}")
    if p["b"] == "best":
        if not p.get("axis"):
            raise ValueError('b = "best" needs axis: the axis whose best level a is compared with')
        setup = arms.prepare(claim, frame, design, own=arms.arm_keys(a) | {p["axis"]})
        arms.require(setup.frame, [p["axis"]])
        return arms.per_stratum(claim, design, setup, lambda sub, st: _against_best(claim, setup, sub, st), NAME)
    if isinstance(p["b"], str):
        raise ValueError(f'b must be an arm {{column = value}} or "best", got {p["b"]!r}')
    setup = arms.prepare(claim, frame, design, own=arms.arm_keys(a, p["b"]))
    return arms.per_stratum(claim, design, setup, lambda sub, st: _two_sided(claim, setup, sub, st), NAME)


def _mean_difference(values: np.ndarray) -> float:
    with quiet():
        d = values[:, 0] - values[:, 1]
    return float(np.nanmean(d)) if np.isfinite(d).any() else float("nan")


def _base(claim: Claim, cells: dict, stratum: dict, n_seeds: int, caveats: list, data: list) -> dict:
    return dict(claim_id=claim.id, kind=NAME, statistic=KIND.statistic, method=KIND.method, n_seeds=n_seeds,
                n_trials=int(sum(c["n_trials"].sum() for c in cells.values() if not c.empty)), stratum=stratum,
                caveats=caveats, data=data)


def _two_sided(claim: Claim, setup: arms.Setup, sub: pd.DataFrame, stratum: dict) -> ClaimResult:
    p = claim.params
    q, m = setup.quantity, p["margin"]
    labels = {"a": arms.arm_label(p["a"]), "b": arms.arm_label(p["b"])}
    cells = {name: arms.arm_cells(setup, sub, claim, p[name]) for name in ("a", "b")}
    wide = arms.paired(cells)
    v = wide.to_numpy(dtype=float)
    table = wide.reset_index().assign(difference=v[:, 0] - v[:, 1] if len(v) else [], arm_a=labels["a"],
                                      arm_b=labels["b"])
    long = pd.concat([c for c in cells.values() if not c.empty]) if any(not c.empty for c in cells.values()) \
        else pd.DataFrame()
    caveats = arms.missing_caveats(long, "arm", q) + arms.edge_caveats(long, sub, setup.tuned, "arm")
    n_paired = arms.paired_seeds(wide)
    base = _base(claim, cells, stratum, n_paired, caveats, arms.records(table))
    base["selected"] = [t for name in ("a", "b") if not cells[name].empty
                        for t in arms.selected_trials(cells[name], restrict(sub, p[name]), f"{name}: {labels[name]}", q)]
    base["estimates"] = arms.arm_estimates(wide, labels, p)
    h = Hypothesis.band(-m, m)
    base["band"] = band_of(h)
    reason = arms.empty_arm_reason(cells, labels)
    if reason is None and n_paired < 2:
        reason = f"{n_paired} seed(s) with a value of {q.text} in both arms: a paired CI needs 2"
    if reason:
        return arms.undecided(claim, NAME, reason, unit=q.unit, effect=_mean_difference(v) if n_paired else None,
                              **base)
    decision = decide_mean(v[:, 0] - v[:, 1], h, arms.alpha(p))
    effect, ci = decision.estimate, decision.ci
    summary = (f"{labels['a']} vs {labels['b']}: mean {q.text} a − b = {effect:+.4g} ({arms.fmt_ci(ci, True)}); "
               f"equivalent when the CI lies inside ±{m:g}")
    return decided(decision, h, q.unit, summary=summary, **base)


def _against_best(claim: Claim, setup: arms.Setup, sub: pd.DataFrame, stratum: dict) -> ClaimResult:
    p = claim.params
    q, m, axis, a = setup.quantity, p["margin"], p["axis"], p["a"]
    sign = 1.0 if p["goal"] == "higher" else -1.0
    label = arms.arm_label(a)
    levels_frame = restrict(sub, {k: v for k, v in a.items() if k != axis})
    a_cells = arms.arm_cells(setup, sub, claim, a)
    level_cells = arms.quantities(setup, levels_frame, [axis, "seed"], claim)
    levels, _ = arms.ordered_levels(level_cells[axis])
    wide = arms.paired({"a": a_cells}).join(to_wide(level_cells, axis, levels), how="outer") \
        if not a_cells.empty else pd.DataFrame()
    caveats = arms.missing_caveats(level_cells, axis, q) + arms.edge_caveats(level_cells, sub, setup.tuned, axis)

    def gap(values: np.ndarray) -> float:
        with quiet():
            means = sign * np.nanmean(values, axis=0)
        if not np.isfinite(means[0]) or not np.isfinite(means[1:]).any():
            return float("nan")
        return float(means[0] - np.nanmax(means[1:]))

    values = wide.to_numpy(dtype=float) if not wide.empty else np.empty((0, 0))
    best_level = None
    if values.size and values.shape[1] > 1:
        with quiet():
            level_means = sign * np.nanmean(values[:, 1:], axis=0)
        if np.isfinite(level_means).any():
            best_level = levels[int(np.nanargmax(level_means))]
    table = pd.DataFrame({"seed": wide.index}) if not wide.empty else pd.DataFrame(columns=["seed"])
    if best_level is not None:
        table = table.assign(a=wide["a"].to_numpy(), b=wide[best_level].to_numpy(),
                             difference=sign * (wide["a"] - wide[best_level]).to_numpy(),
                             arm_a=label, arm_b=f"best {axis} ({best_level})")
    n_seeds = int(np.isfinite(values[:, 0]).sum()) if values.size else 0
    cells = {"a": a_cells, "levels": level_cells}
    base = _base(claim, cells, stratum, n_seeds, caveats, arms.records(table))
    h = Hypothesis.greater(-m)
    base["band"] = band_of(h)
    if best_level is not None:
        b_label = f"best {axis} ({best_level})"
        best_cells = level_cells[level_cells[axis] == best_level]
        base["estimates"] = arms.arm_estimates(table.set_index("seed")[["a", "b"]], {"a": label, "b": b_label}, p)
        base["selected"] = (arms.selected_trials(a_cells, restrict(sub, a), f"a: {label}", q)
                            + arms.selected_trials(best_cells, levels_frame[levels_frame[axis] == best_level],
                                                   f"b: {b_label}", q))
    if a_cells.empty:
        return arms.undecided(claim, NAME, f"arm a ({label}) has no trials: the matrix cannot decide", **base)
    if best_level is None:
        return arms.undecided(claim, NAME, f"no {axis} level has a value of {q.text}", **base)
    if n_seeds < 2:
        return arms.undecided(claim, NAME, f"{n_seeds} seed(s) with a value of {q.text} in arm a: a CI needs 2",
                              unit=q.unit, effect=gap(values) if n_seeds else None, **base)
    # a level that is arm a itself differs from it by exactly 0: nothing to test there
    others = [i + 1 for i, lv in enumerate(levels) if not (axis in a and arms._plain(lv) == a[axis])]
    decision = decide_max_min(sign * values[:, :1], sign * values[:, others], h, arms.alpha(p))
    if len(others) < len(levels):  # a is one of the levels: a minus the best is at most a minus itself, 0
        decision.estimate, *ci = (float(np.fmin(0.0, v)) if np.isfinite(v) else v
                                  for v in (decision.estimate, *decision.ci))
        decision.ci = tuple(ci)
    effect, ci = decision.estimate, decision.ci
    summary = (f"{label} minus the best {axis} ({best_level} on all seeds; every level compared): "
               f"{q.text} {effect:+.4g} ({arms.fmt_ci(ci, True)})"
               + (" (signed: positive favours a, lower is better)" if sign < 0 else "")
               + f"; as good as the best when the CI lower end is above −{m:g}")
    return decided(decision, h, q.unit, summary=summary, **base)


KIND = register(ClaimKind(
    name=NAME,
    reads="quantity",
    params=arms.params(
        a=Param(dict, doc="the arm claimed to be as good"),
        b=Param((dict, str), doc='an arm, or "best" (with axis)'),
        axis=Param(str, None, 'with b = "best": the axis whose best level a is compared with'),
        margin=Param(float, doc="equivalence margin, in the quantity's units", ge=0.0),
        goal=Param(str, "higher", "higher or lower values of the quantity are better (for b = \"best\")",
                   choices=("higher", "lower")),
    ),
    evaluate=evaluate,
    statistic="mean over seeds of q_a − q_b (against \"best\": q_a minus the best level's mean)",
    method="Student t interval over seeds of the paired differences (TOST against ±margin); against \"best\": "
           "paired t bounds per level, Bonferroni over the levels that could refute",
    axis_params=(),
))
