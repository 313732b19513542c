"""Claim kind ``paired_comparison``: arm a beats (or is not worse than) arm b, paired by seed.

Frame: one row per trial with ``seed``, ``status``, the arm columns, the tuned
axes, the strata and the columns the ``quantity`` reads. Params: ``a`` (an arm
such as ``{optimizer = "adam"}``, or a list of arms: one comparison each),
``b`` (an arm, the same for every a; or a list of arms as long as ``a``: a[i]
is compared with b[i]), ``goal`` (higher | lower is better), ``test`` (superiority | noninferiority), ``margin`` (>= 0, in the quantity's
units; with ``relative = true`` a fraction, 0.05 = 5 %, compared as log(1 +
margin)), ``relative``, and the common ``quantity``, ``select``, ``tune``,
``where``, ``confidence``, ``tolerance``.

Per (stratum, arm, seed) the quantity is taken over the tuned axes.
Statistic: mean over seeds of q_a − q_b (with ``relative``: of log(q_a /
q_b)), signed so that positive favours a; seeds where an arm has no value are
left out. CI and p-values: Student t over the per-seed differences
(analysis/inference.py). Superiority: supported when the CI lower end exceeds
``margin``, refuted when its upper end is below 0. Noninferiority: supported
when the lower end exceeds −margin, refuted when the upper end is below
−margin. Otherwise inconclusive; an arm without trials or fewer than 2 paired
seeds cannot decide. Several arms a: one result each, combined as all
supported -> supported, any refuted -> refuted (Bonferroni over the arms:
each comparison refutes at error alpha / k), else inconclusive.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from claimbench.analysis.inference import Hypothesis, bonferroni_alpha, decide_mean
from claimbench.analysis.quantities import restrict
from claimbench.claims import arms
from claimbench.claims.base import Claim, ClaimKind, ClaimResult, Design, Param, band_of, combined, decided, register
from claimbench.claims.common import quiet

NAME = "paired_comparison"


def evaluate(claim: Claim, frame: pd.DataFrame, design: Design) -> ClaimResult:
    p = claim.params
    a_arms = p["a"] if isinstance(p["a"], list) else [p["a"]]
    b_arms = p["b"] if isinstance(p["b"], list) else [p["b"]] * len(a_arms)
    if not a_arms:
        raise ValueError("parameter 'a' lists no arm")
    if len(b_arms) != len(a_arms):
        raise ValueError(f"a list b must be as long as a ({len(a_arms)} arms), got {len(b_arms)}")
    for name, listed in (("a", a_arms), ("b", b_arms)):
        for i, arm in enumerate(listed):
            arms.check_arm(arm, f"{name}[{i}]" if isinstance(p[name], list) else name)
    pairs = list(zip(a_arms, b_arms))
    for key, allowed in (("goal", ("higher", "lower")), ("test", ("superiority", "noninferiority"))):
        if p[key] not in allowed:
            raise ValueError(f"{key} must be one of {', '.join(allowed)}, got {p[key]!r}")
    if p["margin"] < 0:
        raise ValueError(f"margin must be >= 0, got {p['margin']!r}")
    setup = arms.prepare(claim, frame, design, own=arms.arm_keys(p["a"], p["b"]))

    def one(sub: pd.DataFrame, stratum: dict) -> ClaimResult:
        level = bonferroni_alpha(len(pairs), arms.alpha(p))
        parts = [_compare(claim, setup, sub, stratum, a, b, level) for a, b in pairs]
        if len(parts) == 1:
            return parts[0]
        for part, (a, b) in zip(parts, pairs):
            part.stratum = {**stratum, "a": arms.arm_label(a)}
            if isinstance(p["b"], list):
                part.stratum["b"] = arms.arm_label(b)
        joint = combined(parts, "any")
        return ClaimResult(
            claim_id=claim.id, kind=NAME, verdict=joint.verdict, statistic=KIND.statistic, effect=None, ci=None,
            unit=parts[0].unit, p_supported=joint.p_supported, p_refuted=joint.p_refuted,
            n_seeds=max(x.n_seeds for x in parts), n_trials=len(sub), method=KIND.method, stratum=stratum,
            summary="; ".join(f"{arms.arm_label(a)} vs {arms.arm_label(b)}: {x.verdict}"
                              for x, (a, b) in zip(parts, pairs)),
            caveats=[f"{x.stratum['a']}: {c}" for x in parts for c in x.caveats], strata=parts)

    return arms.per_stratum(claim, design, setup, one, NAME)


def differences(values: np.ndarray, sign: float, relative: bool) -> np.ndarray:
    """Per seed (rows: a, b), the signed difference (or log ratio); NaN where either is missing."""
    with quiet():
        a, b = values[:, 0], values[:, 1]
        d = np.log(a / b) if relative else a - b
    d = np.where(np.isfinite(d), d, np.nan)
    return sign * d


def hypothesis(p: dict) -> Hypothesis:
    """Superiority: supported above the margin, refuted below 0; noninferiority: both at −margin
    (log(1 + margin) with ``relative``)."""
    margin = math.log1p(p["margin"]) if p["relative"] else p["margin"]
    return Hypothesis.greater(margin, 0.0) if p["test"] == "superiority" else Hypothesis.greater(-margin)


def _compare(claim: Claim, setup: arms.Setup, sub: pd.DataFrame, stratum: dict, a: dict, b: dict,
             level: float) -> ClaimResult:
    """One comparison of a with b; ``level``: the error per side (less than alpha among several arms)."""
    p = claim.params
    q = setup.quantity
    sign = 1.0 if p["goal"] == "higher" else -1.0
    relative = bool(p["relative"])
    labels = {"a": arms.arm_label(a), "b": arms.arm_label(b)}
    cells = {"a": arms.arm_cells(setup, sub, claim, a), "b": arms.arm_cells(setup, sub, claim, b)}
    wide = arms.paired(cells)
    d = differences(wide.to_numpy(dtype=float), sign, relative)
    table = wide.reset_index().assign(difference=d, arm_a=labels["a"], arm_b=labels["b"])
    data = arms.records(table)
    long = pd.concat([c for c in cells.values() if not c.empty]) if any(not c.empty for c in cells.values()) \
        else pd.DataFrame()
    caveats = arms.missing_caveats(long, "arm", q) + arms.edge_caveats(long, sub, setup.tuned, "arm")
    if relative and np.isfinite(wide.to_numpy(dtype=float)).all(axis=1).sum() > np.isfinite(d).sum():
        caveats.append(f"seeds with a non-positive {q.text} are left out of the log ratio")
    n_paired = int(np.isfinite(d).sum())
    selected = [t for name, arm in (("a", a), ("b", b)) if not cells[name].empty
                for t in arms.selected_trials(cells[name], restrict(sub, arm), f"{name}: {labels[name]}", q)]
    base = dict(claim_id=claim.id, kind=NAME, statistic=KIND.statistic, method=KIND.method, n_seeds=n_paired,
                n_trials=int(sum(c["n_trials"].sum() for c in cells.values() if not c.empty)),
                stratum=stratum, caveats=caveats, data=data, selected=selected,
                estimates=arms.arm_estimates(wide, labels, p))
    unit = "log ratio (natural)" if relative else q.unit
    reason = arms.empty_arm_reason(cells, labels)
    if reason is None and n_paired < 2:
        reason = f"{n_paired} seed(s) with a value of {q.text} in both arms: a paired CI needs 2"
    h = hypothesis(p)
    base["band"] = band_of(h)
    if reason:
        # one seed still gives the statistic (the CI gate tracks it per seed), never a verdict
        return arms.undecided(claim, NAME, reason, unit=unit, effect=float(np.nanmean(d)) if n_paired else None,
                              **base)
    decision = decide_mean(d, h, level)
    effect, ci = decision.estimate, decision.ci
    with quiet():
        means = np.nanmean(wide.to_numpy(dtype=float), axis=0)
    what = f"mean log({q.text} a / b)" if relative else f"mean {q.text} a − b"
    favour = f" (signed: positive favours a, {p['goal']} is better)" if sign < 0 else ""
    summary = (f"{labels['a']} vs {labels['b']}: {what} = {effect:+.4g} ({arms.fmt_ci(ci, True)}){favour}"
               + (f", ratio {math.exp(sign * effect):.3g}" if relative else "")
               + f"; means {arms.fmt_num(means[0])} vs {arms.fmt_num(means[1])}; {p['test']} "
               + (f"margin {p['margin']:g}" + (" (relative)" if relative else "") if p["margin"] else "margin 0"))
    return decided(decision, h, unit, summary=summary, **base)


KIND = register(ClaimKind(
    name=NAME,
    reads="quantity",
    params=arms.params(
        a=Param((dict, list), doc="an arm {column = value, ...}, or a list of arms"),
        b=Param((dict, list), doc="the arm a is compared with, or a list of arms paired with a's"),
        goal=Param(str, "higher", "higher or lower values of the quantity are better", choices=("higher", "lower")),
        test=Param(str, "superiority", "superiority or noninferiority", choices=("superiority", "noninferiority")),
        margin=Param(float, 0.0, "in the quantity's units (a fraction with relative = true)", ge=0.0),
        relative=Param(bool, False, "compare log(q_a / q_b) instead of q_a − q_b"),
    ),
    evaluate=evaluate,
    statistic="mean over seeds of the paired difference q_a − q_b (positive favours a)",
    method="Student t interval over seeds of the paired differences (arms paired by seed); several arms: "
           "Bonferroni over the arms",
    axis_params=(),
))
