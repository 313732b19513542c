"""Claim kinds ``ratio_in_range`` and ``timing_ratio``: a ratio of two per-seed quantities lies in [low, high].

Frame: one row per trial with ``seed``, ``status``, the columns the
``where`` tables name, the tuned axes, the strata and the columns the
quantities read.

``ratio_in_range`` params: ``num`` and ``den``, each a table ``{where = {...},
quantity = "..."}`` (``where`` picks the trials, default all; ``quantity``
defaults to the claim's), ``low``, ``high`` (may be ``inf``), and the common
``quantity``, ``select``, ``tune``, ``where``, ``confidence``,
``tolerance``. Example: the best LR is about half the smallest LR that
diverges: ``num = {quantity = "argbest:lr"}``, ``den = {quantity =
"min_diverging:lr"}``, ``low = 0.25``, ``high = 1``.

``timing_ratio`` params: ``a``, ``b`` (arms), ``quantity`` (default
``mean:time_per_step_s``; also ``mean:forward_latency_s``), ``low``,
``high``: the ratio q_a / q_b.

Per (stratum, seed) the two quantities are paired by seed. Statistic: the
geometric mean over seeds of num / den (seeds where either is missing or not
positive are left out). CI: Student t over seeds of the per-seed log ratios,
exponentiated (analysis/inference.py). Supported when the CI lies inside
[low, high] (two one-sided tests), refuted when it misses [low, high]
entirely, inconclusive otherwise; fewer than 2 paired seeds cannot decide.
The summary also gives the median ratio.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from claimbench.analysis.quantities import parse_quantity, restrict
from claimbench.analysis.inference import Hypothesis, decide_mean
from claimbench.claims import arms
from claimbench.claims.base import Claim, ClaimKind, ClaimResult, Design, Param, band_of, decided, register
from claimbench.claims.common import quiet

RATIO, TIMING = "ratio_in_range", "timing_ratio"
SIDE_KEYS = ("where", "quantity")


def evaluate_ratio(claim: Claim, frame: pd.DataFrame, design: Design) -> ClaimResult:
    p = claim.params
    sides = {name: _side(p[name], name, p["quantity"]) for name in ("num", "den")}
    return _evaluate(claim, frame, design, sides, RATIO)


def evaluate_timing(claim: Claim, frame: pd.DataFrame, design: Design) -> ClaimResult:
    p = claim.params
    sides = {"num": (arms.check_arm(p["a"], "a"), p["quantity"]), "den": (arms.check_arm(p["b"], "b"), p["quantity"])}
    return _evaluate(claim, frame, design, sides, TIMING)


def _side(spec: Any, name: str, default_quantity: str) -> tuple[dict, str]:
    if not isinstance(spec, dict):
        raise TypeError(f"parameter {name!r} must be a table {{where = {{...}}, quantity = \"...\"}}, got {spec!r}")
    unknown = set(spec) - set(SIDE_KEYS)
    if unknown:
        raise KeyError(f"unknown key(s) {', '.join(sorted(unknown))} in {name!r}: use {', '.join(SIDE_KEYS)}")
    return arms.check_arm(spec.get("where") or {}, f"{name}.where"), spec.get("quantity") or default_quantity


def _validate(p: dict) -> None:
    if not p["low"] <= p["high"] or p["low"] < 0:
        raise ValueError(f"0 <= low <= high must hold, got low={p['low']!r}, high={p['high']!r}")


def log_ratios(values: np.ndarray) -> np.ndarray:
    with quiet():
        r = np.log(values[:, 0] / values[:, 1])
    return np.where(np.isfinite(r), r, np.nan)


def mean_log_ratio(values: np.ndarray) -> float:
    r = log_ratios(values)
    return float(np.nanmean(r)) if np.isfinite(r).any() else float("nan")


def _evaluate(claim: Claim, frame: pd.DataFrame, design: Design, sides: dict, kind: str) -> ClaimResult:
    p = claim.params
    _validate(p)
    quantities = {name: parse_quantity(q) for name, (_, q) in sides.items()}
    setup = arms.prepare(claim, frame, design, own=arms.arm_keys(*(w for w, _ in sides.values())),
                         quantity=sides["num"][1], also=[sides["den"][1]])

    def one(sub: pd.DataFrame, stratum: dict) -> ClaimResult:
        return _evaluate_one(claim, setup, sub, stratum, sides, quantities, kind)

    return arms.per_stratum(claim, design, setup, one, kind)


def _evaluate_one(claim: Claim, setup: arms.Setup, sub: pd.DataFrame, stratum: dict, sides: dict,
                  quantities: dict, kind: str) -> ClaimResult:
    p = claim.params
    k = KINDS_BY_NAME[kind]
    labels = {name: f"{quantities[name].text} of {arms.arm_label(where)}" for name, (where, _) in sides.items()}
    cells = {name: arms.arm_cells(setup, sub, claim, where, quantities[name]) for name, (where, _) in sides.items()}
    wide = arms.paired(cells)
    values = wide.to_numpy(dtype=float)
    r = log_ratios(values) if len(values) else np.array([])
    table = wide.reset_index().assign(ratio=np.exp(r))
    caveats = []
    for name, long in cells.items():
        caveats += [f"{name}: {c}" for c in arms.missing_caveats(long, "arm", quantities[name])]
        caveats += [f"{name}: {c}" for c in arms.edge_caveats(long, sub, setup.tuned, "arm")]
    ok = np.isfinite(values).all(axis=1) if len(values) else np.array([], dtype=bool)
    if ok.sum() > np.isfinite(r).sum():
        caveats.append("seeds where a quantity is not positive are left out of the ratio")
    if kind == TIMING:
        caveats.append("times are measured inside the training workers while the other workers train: the two "
                       "arms' trials ran at different moments, under whatever else the machine was doing; compare "
                       "timings within one run, on a machine with no other load, and prefer more seeds")
    n_paired = int(np.isfinite(r).sum())
    with quiet():
        h = Hypothesis.band(math.log(p["low"]) if p["low"] > 0 else -math.inf,
                            math.log(p["high"]) if p["high"] > 0 else -math.inf)
    selected = [t for name, (where, _) in sides.items() if not cells[name].empty
                for t in arms.selected_trials(cells[name], restrict(sub, where), f"{name}: {labels[name]}",
                                              quantities[name])]
    base = dict(claim_id=claim.id, kind=kind, statistic=k.statistic, method=k.method, n_seeds=n_paired,
                n_trials=int(sum(c["n_trials"].sum() for c in cells.values() if not c.empty)), stratum=stratum,
                caveats=caveats, data=arms.records(table), selected=selected, band=band_of(h, log=True))
    reason = arms.empty_arm_reason(cells, {n: arms.arm_label(w) for n, (w, _) in sides.items()})
    if reason is None and n_paired < 2:
        reason = f"{n_paired} seed(s) with a positive value on both sides: a ratio CI needs 2"
    if reason:
        return arms.undecided(claim, kind, reason, unit=UNIT,
                              effect=math.exp(mean_log_ratio(values)) if n_paired else None, **base)
    decision = decide_mean(r, h, arms.alpha(p))
    effect = math.exp(decision.estimate)
    ci = tuple(math.exp(x) for x in decision.ci)
    median = float(np.exp(np.nanmedian(r)))
    summary = (f"geometric mean over seeds of ({labels['num']}) / ({labels['den']}) = {effect:.3g} "
               f"(CI {ci[0]:.3g} to {ci[1]:.3g}); median ratio {median:.3g}; claimed range "
               f"[{arms.fmt_num(p['low'])}, {arms.fmt_num(p['high'])}]")
    return decided(decision, h, UNIT, transform=math.exp, summary=summary, **base)


_STAT = "geometric mean over seeds of the per-seed ratio num / den"
_METHOD = "Student t interval over seeds of the per-seed log ratios (paired by seed), exponentiated"
UNIT = "ratio"
_BAND = dict(
    low=Param(float, doc="lower end of the claimed range of the ratio (inclusive)", ge=0.0, at_most="high"),
    high=Param(float, doc="upper end (inclusive; may be inf)", ge=0.0, infinite=True),
)

KIND = register(ClaimKind(
    name=RATIO,
    reads="quantity",
    params=arms.params(
        num=Param(dict, doc="{where = {...}, quantity = \"...\"}: the numerator"),
        den=Param(dict, doc="{where = {...}, quantity = \"...\"}: the denominator"),
        **_BAND,
    ),
    evaluate=evaluate_ratio, statistic=_STAT, method=_METHOD, axis_params=(),
))

TIMING_KIND = register(ClaimKind(
    name=TIMING,
    params=arms.params(
        a=Param(dict, doc="the arm in the numerator"),
        b=Param(dict, doc="the arm in the denominator"),
        quantity=Param(str, "mean:time_per_step_s", "a timing quantity, e.g. mean:forward_latency_s"),
        **_BAND,
    ),
    evaluate=evaluate_timing,
    statistic="geometric mean over seeds of the per-seed ratio q_a / q_b (e.g. time per step)",
    method=_METHOD, axis_params=(),
))

KINDS_BY_NAME = {RATIO: KIND, TIMING: TIMING_KIND}
