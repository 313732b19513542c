"""Frontier claim kinds: ``power_law_slope`` (B7b, B8, W1), ``lr_surge`` (B7) and
``noise_scale_growth`` (B9). The statistics are in analysis/frontier.py; every interval, p-value and verdict
comes from analysis/inference.py.

``power_law_slope`` — a tuned value scales as a power of a scientific axis (the tuned AdamW weight decay
grows linearly with the batch: Bergsma et al. 2025; the optimal LR per batch size; muP's LR across width).
Frame: one row per trial with ``seed``, ``status``, the numeric ``axis`` (e.g. ``batch_size``), the tuned
column ``of`` (e.g. ``weight_decay``, ``lr``), ``select`` and the strata. Params: ``axis``, ``of``, ``low``,
``high`` (the claimed range of the slope; ``-inf``/``inf`` for a one-sided claim), ``from_level``,
``to_level`` (fit only the levels of ``axis`` in this range; default all), ``min_levels`` (3: levels with a
value a seed's fit needs), ``select``, ``tune``, ``where``, ``confidence``.
Per (stratum, level, seed) cell: the ``of`` of the trial best on ``select`` (``argbest:<of>``, the one selection
rule; the other tuned axes are tuned too), interpolated between its grid neighbours: the vertex of the parabola
through the cell's best ``select`` at that value and its two neighbours, over log(``of``) (analysis/frontier.py,
``interpolate_argbest``; the grid value itself at a grid edge, next to a failed neighbour, or where the three are
equal). One grid serves every seed, so the grid value alone would round every seed's optimum the same way and
bias the slope by the grid's position, out of sight of any interval over seeds (reports/calibration.md, the
fixed-grid rows). Per seed: the least-squares slope of log(best ``of``) on log(level). Statistic:
the mean over seeds of the per-seed slopes; Student t interval over seeds. Supported when the CI lies inside
[low, high] (two one-sided tests; with one infinite end, the one-sided test), refuted when it lies wholly
outside, inconclusive otherwise; fewer than 2 seeds with a slope cannot decide. Argbest values on the edge
of the tuned grid are caveats: the slope is then biased towards 0.

``lr_surge`` — the optimal Adam LR first rises, then falls as the batch grows past the noise scale (Li et
al. 2024). Frame as ``power_law_slope``, plus the ``noise`` column (``b_simple``: the trial's gradient noise
scale, train/single.py) for the peak's comparison. Params: ``axis``, ``of`` (``lr``), ``split`` (the batch that
separates the rise from the fall, fixed in the suite before any run; the split level, when tested, belongs
to both sides), ``noise``, ``min_levels`` (3 per side), ``select``, ``tune``, ``where``, ``confidence``.
Per seed: the slope of log(best LR) on log(batch) over the levels <= split (*rise*) and over the levels >=
split (*fall*), the best LR per cell interpolated between its grid neighbours as for ``power_law_slope``.
Verdict: supported when the rise's CI lies above 0 and the fall's below 0 (both must hold: the larger
p-value); refuted when either is shown on the wrong side (the LR keeps rising past the split, or falls from
the start; Bonferroni over the two); inconclusive otherwise. Effect: the mean fall slope.
Reported beside it (not decided): the slope over every level, the per-seed peak batch (the level of the
largest best LR; geometric mean over seeds, Student t on the logs) and the geometric mean of ``noise`` over
the selected trials, and their ratio.

``noise_scale_growth`` — the critical batch grows during training (McCandlish et al. 2018; Merrill et al.
2025). Frame: one row per trial with ``seed``, ``status``, ``axis``, ``noise_curve`` ([step, |G|², tr(Σ)] per
evaluation: ``measure_noise_scale = true``), ``steps_to_target``, ``steps_done``, ``select``. Params:
``axis``, ``min_points`` (3: evaluations with a positive |G|² a trial's rho needs), ``excess`` (0.2),
``agree_within`` (2), ``select``, ``tune``, ``where``, ``confidence``. Per (stratum, level, seed) cell: the
trial best on ``select``; its Spearman rho of B_simple = tr(Σ) / |G|² against the step; per seed the mean
rho over the levels. Statistic: the mean over seeds; Student t interval over seeds; supported when the CI
lies above 0, refuted when below, else inconclusive. Reported beside it (not decided, not calibrated): the
critical batch as Zhang et al. (2024) define it (the batch whose steps to target exceed perfect scaling from
the smallest batch by ``excess``; analysis/frontier.py) and the fitted B_crit = E_min / S_min
(analysis/scaling.py; both per seed from the fastest trial per cell, as ``critical_batch``), the geometric
mean of their per-seed ratio with its Student t interval on the logs, and whether that interval lies inside
[1 / agree_within, agree_within] (agree), wholly outside (disagree) or neither (undecided).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from claimbench.analysis import frontier as fx
from claimbench.analysis.inference import Evidence, Hypothesis, combine, decide_mean, t_interval, verdict_of
from claimbench.analysis.quantities import cell_quantities, to_wide
from claimbench.analysis.scaling import fastest_trials, fit_steps_vs_batch, geometric_mean
from claimbench.claims import arms
from claimbench.claims.base import (Claim, ClaimKind, ClaimResult, Design, Param, band_of, decided,
                                    detectable_text, register)

SLOPE, SURGE, GROWTH = "power_law_slope", "lr_surge", "noise_scale_growth"
SLOPE_UNIT = "log-log slope"


def _hypothesis(low: float, high: float) -> Hypothesis:
    if math.isinf(high) and math.isinf(low):
        raise ValueError("low and high cannot both be infinite: the claim must bound the slope")
    if math.isinf(high):
        return Hypothesis.greater(low)
    if math.isinf(low):
        return Hypothesis.less(high)
    return Hypothesis.band(low, high)


def _geo_ci(values: np.ndarray, alpha: float) -> tuple[float, float, float, int]:
    """(geometric mean, lo, hi, n): the Student t interval on the logs, exponentiated."""
    m, lo, hi, n = t_interval(fx.log_values(values), alpha)
    return tuple(float(math.exp(v)) if math.isfinite(v) else float("nan") for v in (m, lo, hi)) + (n,)


def _level_rows(levels: list[float], table: np.ndarray, alpha: float, slope: float, kept: np.ndarray,
                name: str = "best") -> list[dict[str, Any]]:
    """Per level: the geometric mean of the tuned value over seeds with its CI, and the line with the mean
    per-seed slope through the geometric centre of the fitted levels (what the figure draws)."""
    rows = []
    x = np.asarray(levels, dtype=float)
    means = np.array([_geo_ci(table[:, i], alpha)[0] for i in range(len(levels))]) if len(levels) else np.array([])
    ok = kept & np.isfinite(means) & (means > 0)
    centre_x = float(np.log(x[ok]).mean()) if ok.any() else float("nan")
    centre_y = float(np.log(means[ok]).mean()) if ok.any() else float("nan")
    for i, lv in enumerate(levels):
        g, lo, hi, n = _geo_ci(table[:, i], alpha)
        fitted = math.exp(centre_y + slope * (math.log(lv) - centre_x)) \
            if math.isfinite(slope) and math.isfinite(centre_x) and kept[i] else float("nan")
        rows.append({"level": arms._plain(lv), name: g, f"{name}_lo": lo, f"{name}_hi": hi, "n": int(n),
                     "fitted": fitted, "in_fit": bool(kept[i])})
    return rows


def _slope_row(name: str, values: np.ndarray, alpha: float) -> dict[str, Any]:
    m, lo, hi, n = t_interval(values, alpha)
    return {"estimate": name, "value": m, "value_lo": lo, "value_hi": hi, "n": int(n)}


def _selected(long: pd.DataFrame, axis: str) -> list[dict[str, Any]]:
    return [{"group": f"{axis}={arms._text(lv)}", "level": arms._plain(lv), "seed": int(seed), "trial_ids": [str(t)]}
            for lv, seed, t in zip(long[axis], long["seed"], long["trial_id"]) if t is not None and t == t]


# ------------------------------------------------------------------ shared by power_law_slope and lr_surge

def _per_stratum_argbest(claim: Claim, frame: pd.DataFrame, design: Design, one, name: str) -> ClaimResult:
    """Each stratum judged by ``one(claim, setup, sub, stratum)`` on the argbest of ``of`` per level of ``axis``."""
    p = claim.params
    setup = arms.prepare(claim, frame, design, own=[p["axis"]], quantity=f"argbest:{p['of']}")
    arms.require(setup.frame, [p["axis"], p["of"], "seed", "status"])
    return arms.per_stratum(claim, design, setup, lambda sub, st: one(claim, setup, sub, st), name)


def _argbest(sub: pd.DataFrame, p: dict, setup: arms.Setup):
    """(levels, seeds x levels table, long frame, the table as floats) of the best ``of`` per level."""
    levels, wide, long = fx.argbest_table(sub, p["axis"], p["of"], p["select"], setup.tuned)
    return levels, wide, long, wide.to_numpy(dtype=float) if len(levels) else np.zeros((0, 0))


# ------------------------------------------------------------------ power_law_slope

def evaluate_slope(claim: Claim, frame: pd.DataFrame, design: Design) -> ClaimResult:
    p = claim.params
    _hypothesis(p["low"], p["high"])
    if p["low"] > p["high"]:
        raise ValueError(f"low <= high must hold, got low={p['low']!r}, high={p['high']!r}")
    return _per_stratum_argbest(claim, frame, design, _slope_one, SLOPE)


def _slope_one(claim: Claim, setup: arms.Setup, sub: pd.DataFrame, stratum: dict) -> ClaimResult:
    p = claim.params
    axis, of, a = p["axis"], p["of"], arms.alpha(p)
    levels, wide, long, table = _argbest(sub, p, setup)
    lo_lv, hi_lv = p["from_level"], p["to_level"]
    kept = np.array([lo_lv <= lv <= hi_lv for lv in levels], dtype=bool)
    slopes = fx.seed_slopes(levels, table, lo_lv, hi_lv, p["min_levels"]) if len(levels) else np.array([])
    caveats = arms.edge_caveats(long, sub, setup.tuned, axis) if not long.empty else []
    h = _hypothesis(p["low"], p["high"])
    base = dict(claim_id=claim.id, kind=SLOPE, statistic=SLOPE_KIND.statistic, method=SLOPE_KIND.method,
                n_seeds=int(np.isfinite(slopes).sum()), n_trials=len(sub), stratum=stratum, caveats=caveats,
                selected=_selected(long, axis) if not long.empty else [])
    mean_slope = float(np.nanmean(slopes)) if np.isfinite(slopes).any() else float("nan")
    base["data"] = _level_rows(levels, table, a, mean_slope, kept) + [
        _slope_row(f"slope of log best {of} on log {axis}", slopes, a)]
    if int(kept.sum()) < p["min_levels"]:
        return arms.undecided(claim, SLOPE, f"{int(kept.sum())} {axis} level(s) in the fitted range: a slope needs "
                              f"{p['min_levels']}", unit=SLOPE_UNIT, **base)
    decision = decide_mean(slopes, h, a)
    if decision.n < 2:
        return arms.undecided(claim, SLOPE, f"{decision.n} seed(s) with a slope: an interval needs 2",
                              unit=SLOPE_UNIT, effect=mean_slope if decision.n else None, **base)
    summary = (f"best {of} (chosen on {p['select']}) grows as {axis}^{decision.estimate:.3g} "
               f"({arms.fmt_ci(decision.ci)}; mean over seeds of the per-seed log-log slopes over "
               f"{int(kept.sum())} levels); claimed slope {h.text(lambda v: f'{v:g}')}")
    return decided(decision, h, SLOPE_UNIT, summary=summary, **base)


SLOPE_KIND = register(ClaimKind(
    name=SLOPE,
    reads="grid",
    params=arms.params(
        exclude=("quantity", "tolerance"),
        axis=Param(str, doc="the numeric scientific axis (x of the log-log fit), e.g. batch_size"),
        of=Param(str, doc="the tuned axis whose best value per level is fitted, e.g. lr or weight_decay"),
        low=Param(float, -math.inf, "lower end of the claimed slope (-inf: no lower end)", infinite=True,
                  at_most="high"),
        high=Param(float, math.inf, "upper end of the claimed slope (inf: no upper end)", infinite=True),
        from_level=Param(float, 0.0, "fit only levels of axis >= this", ge=0.0, at_most="to_level"),
        to_level=Param(float, math.inf, "fit only levels of axis <= this", ge=0.0, infinite=True),
        min_levels=Param(int, 3, "levels with a value a seed's slope needs", ge=2),
    ),
    evaluate=evaluate_slope,
    statistic="mean over seeds of the per-seed log-log slope of the tuned value's argbest (interpolated between its "
              "grid neighbours) against the axis",
    method="Student t interval over seeds of the per-seed slopes (exact sign-flip test when they do not vary)",
))


# ------------------------------------------------------------------ lr_surge

def evaluate_surge(claim: Claim, frame: pd.DataFrame, design: Design) -> ClaimResult:
    p = claim.params
    if not p["split"] > 0:
        raise ValueError(f"split must be > 0 (the batch between the rise and the fall), got {p['split']!r}")
    return _per_stratum_argbest(claim, frame, design, _surge_one, SURGE)


def _surge_one(claim: Claim, setup: arms.Setup, sub: pd.DataFrame, stratum: dict) -> ClaimResult:
    p = claim.params
    axis, of, split, a = p["axis"], p["of"], p["split"], arms.alpha(p)
    levels, wide, long, table = _argbest(sub, p, setup)
    x = np.asarray(levels, dtype=float)
    rise = fx.seed_slopes(levels, table, -math.inf, split, p["min_levels"]) if len(levels) else np.array([])
    fall = fx.seed_slopes(levels, table, split, math.inf, p["min_levels"]) if len(levels) else np.array([])
    whole = fx.seed_slopes(levels, table, -math.inf, math.inf, p["min_levels"]) if len(levels) else np.array([])
    peaks = fx.peak_levels(levels, table) if len(levels) else np.array([])
    noise = np.array([])
    if p["noise"] and p["noise"] in sub.columns and not long.empty:
        by_id = sub.set_index("trial_id")[p["noise"]]
        noise = pd.to_numeric(by_id.reindex([t for t in long["trial_id"] if t is not None]), errors="coerce").to_numpy()
    peak = _geo_ci(peaks, a)
    b_noise = _geo_ci(noise, a) if noise.size else (float("nan"),) * 3 + (0,)
    caveats = arms.edge_caveats(long, sub, setup.tuned, axis) if not long.empty else []
    n_low, n_high = int((x <= split).sum()), int((x >= split).sum())
    base = dict(claim_id=claim.id, kind=SURGE, statistic=SURGE_KIND.statistic, method=SURGE_KIND.method,
                n_seeds=int(np.isfinite(fall).sum()), n_trials=len(sub), stratum=stratum, caveats=caveats,
                selected=_selected(long, axis) if not long.empty else [])
    mean_whole = float(np.nanmean(whole)) if np.isfinite(whole).any() else float("nan")
    base["data"] = _level_rows(levels, table, a, mean_whole, np.ones(len(levels), dtype=bool)) + [
        _slope_row(f"rise: slope of log best {of} on log {axis} at {axis} <= {split:g}", rise, a),
        _slope_row(f"fall: slope at {axis} >= {split:g}", fall, a),
        _slope_row(f"exponent over every {axis}", whole, a),
        {"estimate": f"peak {axis} (largest best {of}; geometric mean over seeds)", "value": peak[0],
         "value_lo": peak[1], "value_hi": peak[2], "n": int(peak[3])},
        {"estimate": f"gradient noise scale ({p['noise']}) of the selected trials", "value": b_noise[0],
         "value_lo": b_noise[1], "value_hi": b_noise[2], "n": int(b_noise[3])},
        {"estimate": "split", "value": float(split), "value_lo": float("nan"), "value_hi": float("nan"), "n": 0}]
    if min(n_low, n_high) < p["min_levels"]:
        return arms.undecided(claim, SURGE, f"{n_low} {axis} level(s) <= {split:g} and {n_high} >= it: each side "
                              f"needs {p['min_levels']}", unit=SLOPE_UNIT, **base)
    h_rise, h_fall = Hypothesis.greater(0.0), Hypothesis.less(0.0)
    d_rise, d_fall = decide_mean(rise, h_rise, a), decide_mean(fall, h_fall, a)
    if min(d_rise.n, d_fall.n) < 2:
        return arms.undecided(claim, SURGE, f"{min(d_rise.n, d_fall.n)} seed(s) with both slopes: an interval "
                              f"needs 2", unit=SLOPE_UNIT, effect=d_fall.estimate if d_fall.n else None, **base)
    # rise and fall must both hold (the larger p); either shown on the wrong side refutes (Bonferroni over 2)
    joint = combine([Evidence(d.verdict, d.p_supported, d.p_refuted) for d in (d_rise, d_fall)], "any")
    verdict = verdict_of(joint.p_supported, joint.p_refuted, a)
    ratio = peak[0] / b_noise[0] if math.isfinite(peak[0]) and math.isfinite(b_noise[0]) and b_noise[0] > 0 \
        else float("nan")
    summary = (f"best {of} against {axis}: slope {d_rise.estimate:+.3g} ({arms.fmt_ci(d_rise.ci, True)}) up to "
               f"{split:g}, {d_fall.estimate:+.3g} ({arms.fmt_ci(d_fall.ci, True)}) from it; exponent over every "
               f"level {mean_whole:+.3g}; a surge (rise then fall) needs the first above 0 and the second below; "
               f"peak at {axis} {arms.fmt_num(peak[0])} (CI {arms.fmt_num(peak[1])} to {arms.fmt_num(peak[2])})")
    if math.isfinite(b_noise[0]):
        summary += f", B_simple {arms.fmt_num(b_noise[0])} (peak / B_simple {arms.fmt_num(ratio)})"
    return ClaimResult(verdict=verdict, effect=d_fall.estimate, ci=d_fall.ci, summary=summary, unit=SLOPE_UNIT,
                       p_supported=joint.p_supported, p_refuted=joint.p_refuted,
                       mde=d_fall.mde if math.isfinite(d_fall.mde) else None,
                       detectable="fall: " + detectable_text(d_fall, h_fall, SLOPE_UNIT), band=band_of(h_fall),
                       **base)


SURGE_KIND = register(ClaimKind(
    name=SURGE,
    reads="grid",
    params=arms.params(
        exclude=("quantity", "tolerance"),
        axis=Param(str, "batch_size", "the batch-size axis"),
        of=Param(str, "lr", "the tuned axis whose best value per batch is fitted"),
        split=Param(float, doc="the batch between the rise and the fall (fixed before the run)", gt=0.0),
        noise=Param(str, "b_simple", "per-trial gradient noise scale column, reported beside the peak; \"\": none"),
        min_levels=Param(int, 3, "levels with a value each side's slope needs", ge=2),
    ),
    evaluate=evaluate_surge,
    statistic="per seed, the log-log slope of the best LR (interpolated between its grid neighbours) against the "
              "batch below the split (rise) and above it (fall); effect: the mean fall slope",
    method="Student t intervals over seeds of the per-seed slopes; supported when both hold (the larger p), "
           "refuted when either is shown on the wrong side (Bonferroni over the two)",
))


# ------------------------------------------------------------------ noise_scale_growth

def evaluate_growth(claim: Claim, frame: pd.DataFrame, design: Design) -> ClaimResult:
    p = claim.params
    if p["agree_within"] < 1:
        raise ValueError(f"agree_within must be >= 1, got {p['agree_within']!r}")
    if not p["excess"] > 0:
        raise ValueError(f"excess must be > 0, got {p['excess']!r}")
    setup = arms.prepare(claim, frame, design, own=[p["axis"]], quantity=p["select"])
    arms.require(setup.frame, [p["axis"], "seed", "status", "noise_curve"])
    return arms.per_stratum(claim, design, setup, lambda sub, st: _growth_one(claim, setup, sub, st), GROWTH)


def _growth_one(claim: Claim, setup: arms.Setup, sub: pd.DataFrame, stratum: dict) -> ClaimResult:
    p = claim.params
    axis, a = p["axis"], arms.alpha(p)
    long = cell_quantities(sub, [axis, "seed"], p["select"], select=p["select"], tuned=setup.tuned)
    curves = sub.set_index("trial_id")["noise_curve"]
    long = long.assign(value=[fx.noise_growth(curves.get(t), p["min_points"]) if t is not None else float("nan")
                              for t in long["trial_id"]]) if not long.empty else long
    levels = sorted({float(v) for v in long[axis].dropna()}) if not long.empty else []
    rho = to_wide(long, axis, levels).to_numpy(dtype=float) if levels else np.zeros((0, 0))
    with np.errstate(all="ignore"):
        per_seed = np.array([np.nanmean(r) if np.isfinite(r).any() else np.nan for r in rho])
    rows = []
    for i, lv in enumerate(levels):
        m, lo, hi, n = t_interval(rho[:, i], a)
        rows.append({"level": arms._plain(lv), "rho": m, "rho_lo": lo, "rho_hi": hi, "n": int(n)})
    zhang = _zhang_vs_fit(claim, setup, sub, a)
    rows += zhang["rows"]
    caveats = [f"{int(np.isnan(rho).sum())} of {rho.size} cells have no rho (fewer than {p['min_points']} "
               f"evaluations with a positive |G|² estimate, or no noise measured)"] if rho.size and np.isnan(rho).any() \
        else []
    caveats += zhang["caveats"]
    base = dict(claim_id=claim.id, kind=GROWTH, statistic=GROWTH_KIND.statistic, method=GROWTH_KIND.method,
                n_seeds=int(np.isfinite(per_seed).sum()), n_trials=len(sub), stratum=stratum, caveats=caveats,
                data=rows, selected=_selected(long, axis) if not long.empty else [])
    h = Hypothesis.greater(0.0)
    decision = decide_mean(per_seed, h, a)
    if decision.n < 2:
        return arms.undecided(claim, GROWTH, f"{decision.n} seed(s) with a Spearman rho of B_simple against the "
                              f"step: an interval needs 2; " + zhang["text"], unit="Spearman rho",
                              effect=decision.estimate if decision.n else None, **base)
    summary = (f"mean over seeds of the Spearman rho of B_simple against the step (per trial best on "
               f"{p['select']}, averaged over {len(levels)} {axis} levels) = {decision.estimate:+.3g} "
               f"({arms.fmt_ci(decision.ci, True)}); claimed > 0; " + zhang["text"])
    return decided(decision, h, "Spearman rho", summary=summary, **base)


def _zhang_vs_fit(claim: Claim, setup: arms.Setup, sub: pd.DataFrame, a: float) -> dict[str, Any]:
    """Zhang et al.'s critical batch and the fitted B_crit per seed (fastest trial per cell), reported only."""
    p = claim.params
    axis = p["axis"]
    out: dict[str, Any] = {"rows": [], "caveats": [], "text": ""}
    if not {"steps_to_target", "steps_done"} <= set(sub.columns):
        out["text"] = "no steps to target: no critical batch"
        return out
    cells = fastest_trials(sub, [axis, "seed"], setup.tuned, select=p["select"])
    if cells.empty:
        return out
    levels = sorted({float(v) for v in cells[axis].dropna()})
    steps = to_wide(cells.assign(value=np.where(cells["censored"].astype(bool), np.nan, cells["steps"])), axis,
                    levels).to_numpy(dtype=float)
    censored = int(cells["censored"].astype(bool).sum())
    if censored:
        out["caveats"].append(f"no trial reached the target in {censored} of {len(cells)} cells: left out of "
                              f"both critical batches")
    zhang = np.array([fx.zhang_critical_batch(levels, row, p["excess"]) for row in steps])
    b_crit = np.array([fit_steps_vs_batch(levels, row).b_crit for row in steps])
    pooled = geometric_mean(steps, axis=0)
    pz, pf = fx.zhang_critical_batch(levels, pooled, p["excess"]), fit_steps_vs_batch(levels, pooled)
    ratio = fx.log_values(zhang) - fx.log_values(b_crit)
    k = p["agree_within"]
    agree = decide_mean(ratio, Hypothesis.band(-math.log(k), math.log(k)), a)
    word = {"supported": f"agree within {k:g}x", "refuted": f"disagree by more than {k:g}x",
            "inconclusive": f"undecided whether within {k:g}x"}[agree.verdict]
    gz, gf = _geo_ci(zhang, a), _geo_ci(b_crit, a)
    r = tuple(math.exp(v) if math.isfinite(v) else float("nan") for v in (agree.estimate, *agree.ci))
    out["rows"] = [
        {"estimate": f"critical batch (Zhang et al.: examples to target {p['excess']:.0%} over perfect scaling)",
         "value": gz[0], "value_lo": gz[1], "value_hi": gz[2], "n": int(gz[3]), "pooled": pz},
        {"estimate": "critical batch B_crit = E_min / S_min (fit of S = S_min + E_min / B)", "value": gf[0],
         "value_lo": gf[1], "value_hi": gf[2], "n": int(gf[3]), "pooled": pf.b_crit},
        {"estimate": f"Zhang / B_crit ({word}; reported, not a verdict)", "value": r[0],
         "value_lo": r[1], "value_hi": r[2], "n": int(agree.n), "pooled": pz / pf.b_crit if pf.b_crit else np.nan}]
    out["text"] = (f"critical batch {arms.fmt_num(gz[0])} by Zhang et al.'s definition ({p['excess']:.0%} over "
                   f"perfect scaling), B_crit {arms.fmt_num(gf[0])} by the fit; ratio {arms.fmt_num(r[0])} "
                   f"(CI {arms.fmt_num(r[1])} to {arms.fmt_num(r[2])}): the two {word} (reported, not judged)")
    if np.isnan(zhang).all():
        out["caveats"].append(f"no tested {axis} exceeds perfect scaling by {p['excess']:.0%}: Zhang et al.'s "
                              f"critical batch lies beyond the grid")
    return out


GROWTH_KIND = register(ClaimKind(
    name=GROWTH,
    params=arms.params(
        exclude=("quantity", "tolerance"),
        axis=Param(str, "batch_size", "the batch-size axis"),
        min_points=Param(int, 3, "evaluations with a positive |G|² a trial's rho needs", ge=2),
        excess=Param(float, fx.ZHANG_EXCESS, "Zhang et al.'s critical batch: steps this fraction over perfect "
                                                 "scaling", gt=0.0),
        agree_within=Param(float, 2.0, "the two critical batches agree within this factor (reported)", ge=1.0),
    ),
    evaluate=evaluate_growth,
    statistic="mean over seeds of the per-seed mean (over batch sizes) of each trial's Spearman rho of B_simple "
              "against the step",
    method="Student t interval over seeds of the per-seed mean rho (exact sign-flip test when they do not vary)",
    axis_params=(),  # the batch column may come from a table axis (batch_size with its step budget)
))
