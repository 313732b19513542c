"""Batch-size scaling claim kinds: ``critical_batch`` (B4) and ``linear_scaling`` (B5).

``critical_batch`` — large batches parallelize well up to a limit (Shallue et al. 2018; McCandlish et
al. 2018). Frame: one row per trial with ``seed``, ``status``, ``steps_to_target``,
``examples_to_target``, ``steps_done``, the batch column ``axis``, the tuned axes and, for the noise
comparison, the ``noise`` column (``b_simple_at_target``, measured in training: train/single.py).
Params: ``axis`` (default ``batch_size``), ``noise`` (a column of per-trial gradient noise scales; "" to
skip the comparison), ``agree_within`` (default 3: the two estimates must agree within this factor),
``regime_factor`` (4), ``lr`` (the LR column, for the optimal LR per batch), ``select`` (tie-break),
``tune``, ``where``, ``confidence``.

Per (stratum, batch, seed) cell: the steps to target of the fastest trial over the tuned axes
(analysis/scaling.py; a cell where no trial reached the target is censored and left out of the fit), and
that trial's LR and noise scale. Per batch the geometric mean over seeds; S(B) = S_min + E_min / B fitted
in log space; B_crit = E_min / S_min. B_noise: the geometric mean of the fastest trials' noise scales.
Statistic: B_crit / B_noise. The pooled fit (on the per-batch geometric means) gives the curve the
figure draws; the intervals come from the same fit on each seed alone: per seed B_crit, B_noise, their
ratio and the exponent of the optimal LR in the batch size, then the Student t interval over seeds of
their logs (analysis/inference.py; the effect is the geometric mean of the per-seed ratios). Verdict:
refuted when the ratio's CI lies wholly outside [1/agree_within, agree_within]; supported when it lies
inside and B_crit's CI lies inside the tested batch range (so that both the perfect-scaling side and the
flattening side are in the data; both must hold, so the larger of the two p-values decides);
inconclusive otherwise, or with fewer than 3 batch sizes with a value or 2 seeds whose fit succeeds.
Without ``noise``, supported when B_crit's CI lies inside the tested range, else inconclusive.

``linear_scaling`` — linear LR scaling with warmup keeps accuracy as the batch grows (Goyal et al.
2017). Frame: one row per trial with ``seed``, ``status``, the batch column ``axis``, the ``lr`` and
``warmup`` columns, the quantity's columns. Params: ``axis`` (``batch_size``), ``lr`` (``lr``),
``warmup`` (``warmup_steps``), ``base`` (the baseline batch; default the smallest), ``quantity``
(``test_acc``, of the trial best on ``select``), ``margin`` (0.01: one point of accuracy), ``min_k``
(the multiplier up to which the claim says accuracy is kept), ``where``, ``confidence``.
Arms: *warmup* (trials with ``warmup`` > 0, plus the baseline) and *none* (``warmup`` = 0). Per arm and
multiplier k = batch / base: d_k = mean over seeds of q_k - q_base (paired by seed), with its Student t
interval. k *holds* when the CI's lower end exceeds -margin, *breaks* when the upper end of its interval
at alpha / K (Bonferroni over the K multipliers) is below -margin. Reported per arm: the largest k up to
which every k holds, and the first k that breaks. Verdict on the warmup arm (all trials when there is
none): supported when every tested k <= min_k holds (all must hold: no correction), refuted when one
breaks, inconclusive otherwise. Effect: d at the largest tested k <= min_k.
"""

from __future__ import annotations

from typing import Any

import math

import numpy as np
import pandas as pd

from claimbench.analysis.quantities import cell_quantities, to_wide
from claimbench.analysis.scaling import (REGIME_FACTOR, fastest_trials, fit_steps_vs_batch, geometric_mean,
                                         power_law_exponent, regime)
from claimbench.analysis.inference import (Decision, Evidence, Hypothesis, combine, decide_mean, t_interval,
                                          verdict_of)
from claimbench.claims import arms
from claimbench.claims.base import Claim, ClaimKind, ClaimResult, Design, Param, band_of, detectable_text, register
from claimbench.claims.common import quiet

CRITICAL, LINEAR = "critical_batch", "linear_scaling"


# ------------------------------------------------------------------ critical_batch (B4)

def evaluate_critical(claim: Claim, frame: pd.DataFrame, design: Design) -> ClaimResult:
    p = claim.params
    if p["agree_within"] < 1:
        raise ValueError(f"agree_within must be >= 1, got {p['agree_within']!r}")
    setup = arms.prepare(claim, frame, design, own=[p["axis"]])
    arms.require(setup.frame, [p["axis"], "seed", "status", "steps_to_target"])
    return arms.per_stratum(claim, design, setup, lambda sub, stratum: _critical_one(claim, setup, sub, stratum),
                            CRITICAL)


def scaling_estimates(cells: pd.DataFrame, axis: str, noise: str, lr: str) -> tuple[list, dict[str, pd.DataFrame]]:
    """Levels and the seeds x levels tables (steps with censored cells NaN, noise, lr) of ``fastest_trials``."""
    levels = sorted({float(v) for v in cells[axis].dropna()})
    uncensored = cells.assign(value=np.where(cells["censored"].astype(bool), np.nan, cells["steps"]))
    tables = {"steps": to_wide(uncensored, axis, levels)}
    for name, col in (("noise", noise), ("lr", lr)):
        if col and col in cells.columns:
            tables[name] = to_wide(cells.assign(value=pd.to_numeric(cells[col], errors="coerce")), axis, levels)
        else:
            tables[name] = tables["steps"] * np.nan
    return levels, tables


def _estimate(levels: np.ndarray, steps: np.ndarray, noise: np.ndarray, lrs: np.ndarray) -> dict[str, Any]:
    per_level = geometric_mean(steps, axis=0)
    fit = fit_steps_vs_batch(levels, per_level)
    b_noise = float(geometric_mean(noise.ravel())) if noise.size else float("nan")
    ratio = fit.b_crit / b_noise if np.isfinite(b_noise) and b_noise > 0 else float("nan")
    best_lr = geometric_mean(lrs, axis=0)
    return {"fit": fit, "per_level": per_level, "b_noise": b_noise, "ratio": ratio, "best_lr": best_lr,
            "lr_exponent": power_law_exponent(levels, best_lr)}


def _critical_one(claim: Claim, setup: arms.Setup, sub: pd.DataFrame, stratum: dict) -> ClaimResult:
    p = claim.params
    axis, noise_col, lr_col = p["axis"], p["noise"], p["lr"]
    cells = fastest_trials(sub, [axis, "seed"], setup.tuned, extra=[noise_col] if noise_col else (),
                           select=p["select"])
    levels, tables = scaling_estimates(cells, axis, noise_col, lr_col if lr_col in setup.tuned else "")
    x = np.array(levels, dtype=float)
    n_seeds = int(tables["steps"].shape[0])
    caveats = list(arms.edge_caveats(cells, sub, setup.tuned, axis))
    censored = cells[cells["censored"].astype(bool)]
    if not censored.empty:
        caveats.append(f"no trial reached the target in {len(censored)} of {len(cells)} cells "
                       f"({axis} = {', '.join(sorted({arms._text(v) for v in censored[axis]}, key=float))}): "
                       f"left out of the fit (their steps are only a lower bound)")
    L = len(levels)
    joined = np.hstack([tables[k].to_numpy(dtype=float) for k in ("steps", "noise", "lr")]) if L else np.zeros((0, 0))
    point = _estimate(x, *(joined[:, i * L:(i + 1) * L] for i in range(3))) if L else None
    # no "quantity": its steps-to-target figure is its own (the learning curves skip it)
    selected = [{"group": f"{axis}={arms._text(lv)}", "level": arms._plain(lv), "seed": int(seed), "trial_ids": [tid]}
                for lv, seed, tid in zip(cells[axis], cells["seed"], cells["trial_id"]) if tid is not None]
    # what the figure draws beside the fit: the edges of the LR grid these trials were tuned over
    lr_grid = sorted(float(v) for v in pd.to_numeric(sub[lr_col], errors="coerce").dropna().unique()) \
        if lr_col in sub.columns else []
    base = dict(claim_id=claim.id, kind=CRITICAL, statistic=KIND.statistic, method=KIND.method, n_seeds=n_seeds,
                n_trials=len(sub), stratum=stratum, caveats=caveats, selected=selected,
                figure_data={"lr_grid": [lr_grid[0], lr_grid[-1]] if lr_grid else None,
                             "regime_factor": float(p["regime_factor"])})
    with_values = int(np.isfinite(point["per_level"]).sum()) if point else 0
    if with_values < 3:
        base["data"] = _critical_rows(x, tables, point, 0.0, cells, axis, p) if point else []
        return arms.undecided(claim, CRITICAL, f"{with_values} {axis} level(s) reached the target: the fit needs 3",
                              **base)
    seeds = [_estimate(x, *(joined[i:i + 1, j * L:(j + 1) * L] for j in range(3))) for i in range(n_seeds)]
    a = arms.alpha(p)

    def log_values(key: str) -> np.ndarray:
        v = np.array([(e["fit"].b_crit if key == "b_crit" else e[key]) for e in seeds], dtype=float)
        if key != "lr_exponent":
            with quiet():
                v = np.log(v)
        return np.where(np.isfinite(v), v, np.nan)

    def ci(key: str) -> tuple[float, float]:
        _, lo, hi, _ = t_interval(log_values(key), a)
        return (lo, hi) if key == "lr_exponent" else (float(np.exp(lo)), float(np.exp(hi)))

    fit = point["fit"]
    b_crit_ci, noise_ci, ratio_ci, alpha_ci = ci("b_crit"), ci("b_noise"), ci("ratio"), ci("lr_exponent")
    base["data"] = _critical_rows(x, tables, point, a, cells, axis, p) + [
        _estimate_row("critical batch B_crit (fit of S = S_min + E_min / B)", fit.b_crit, b_crit_ci),
        _estimate_row("S_min (steps)", fit.s_min, None), _estimate_row("E_min (examples)", fit.e_min, None),
        _estimate_row(f"gradient noise scale B_simple ({noise_col})", point["b_noise"], noise_ci),
        _estimate_row("B_crit / B_simple", point["ratio"], ratio_ci),
        _estimate_row(f"exponent of the optimal {lr_col} in {axis} (1: linear rule, 0.5: square root)",
                      point["lr_exponent"], alpha_ci),
        _estimate_row("fit error, RMSE of ln(steps)", fit.rmse_log, None)]
    n_fitted = int(np.isfinite(log_values("b_crit")).sum())
    if n_fitted < 2:
        # one seed still gives the statistic the verdict is on (the CI gate tracks it per seed): the ratio
        # B_crit / B_simple when the noise scale is compared, else B_crit
        ratio = p["noise"] and np.isfinite(point["ratio"])
        return arms.undecided(claim, CRITICAL, f"B_crit = {arms.fmt_num(fit.b_crit)}; {n_fitted} seed(s) whose own "
                              f"fit succeeds: no CI", unit="ratio" if ratio else "examples per batch",
                              effect=float(point["ratio"]) if ratio else fit.b_crit, **base)
    lo_b, hi_b = float(x.min()), float(x.max())
    in_range = decide_mean(log_values("b_crit"), Hypothesis.band(math.log(lo_b), math.log(hi_b)), a)
    if fit.edge:
        in_range.p_supported, in_range.verdict = 1.0, "inconclusive"
    if fit.edge:
        caveats.append("the fitted B_crit lies at the edge of the search grid: the data show one regime only")
    if lr_col not in setup.tuned:
        caveats.append(f"{lr_col} is not tuned: no optimal {lr_col} per {axis}")
    regimes = ", ".join(f"{arms._text(lv)}: {regime(lv, fit.b_crit, p['regime_factor'])}" for lv in levels)
    text = (f"S(B) = {fit.s_min:.4g} + {fit.e_min:.4g} / B: B_crit = {fit.b_crit:.3g} "
            f"({arms.fmt_ci(b_crit_ci)}; tested {axis} {lo_b:g} to {hi_b:g}); regimes: {regimes}")
    if np.isfinite(point["lr_exponent"]):
        text += f"; optimal {lr_col} grows as {axis}^{point['lr_exponent']:.2f} ({arms.fmt_ci(alpha_ci)})"
    if not p["noise"]:
        verdict = verdict_of(in_range.p_supported, 1.0, a)
        return ClaimResult(verdict=verdict, effect=fit.b_crit, ci=b_crit_ci, summary=text, unit="examples per batch",
                           p_supported=in_range.p_supported, p_refuted=1.0,
                           band=band_of(Hypothesis.band(math.log(lo_b), math.log(hi_b)), log=True), **base)
    if not np.isfinite(point["ratio"]):
        return arms.undecided(claim, CRITICAL, text + f"; no {noise_col} measured: no comparison", **base)
    k = p["agree_within"]
    h = Hypothesis.band(-math.log(k), math.log(k))
    agreement = decide_mean(log_values("ratio"), h, a)
    joint = combine([Evidence(agreement.verdict, agreement.p_supported, agreement.p_refuted),
                     Evidence(in_range.verdict, in_range.p_supported, 1.0)], "all")
    p_sup, p_ref = joint.p_supported, agreement.p_refuted
    verdict = verdict_of(p_sup, p_ref, a)
    geo = float(np.exp(agreement.estimate))
    text += (f"; B_simple = {point['b_noise']:.3g} ({arms.fmt_ci(noise_ci)}); B_crit / B_simple = "
             f"{point['ratio']:.3g} pooled, {geo:.3g} as the geometric mean of the per-seed ratios "
             f"({arms.fmt_ci(ratio_ci)}), claimed within {k:g}x")
    return ClaimResult(verdict=verdict, effect=geo, ci=ratio_ci, summary=text, unit="ratio", p_supported=p_sup,
                       p_refuted=p_ref, mde=agreement.mde, detectable=detectable_text(agreement, h, "ratio", math.exp),
                       band=band_of(h, log=True), **base)


def _log_ci(values: np.ndarray, alpha: float) -> tuple[float, float]:
    """The Student t interval of the geometric mean (t on the logs, exponentiated)."""
    with quiet():
        logs = np.log(np.asarray(values, dtype=float))
    _, lo, hi, _ = t_interval(np.where(np.isfinite(logs), logs, np.nan), alpha)
    return float(np.exp(lo)), float(np.exp(hi))


def _critical_rows(x, tables, point, alpha, cells, axis, p) -> list[dict[str, Any]]:
    fit = point["fit"]
    rows = []
    steps_t, lr_t = tables["steps"].to_numpy(dtype=float), tables["lr"].to_numpy(dtype=float)
    for i, lv in enumerate(x):
        at = cells[cells[axis] == lv]
        steps_ci = _log_ci(steps_t[:, i], alpha) if alpha else (float("nan"), float("nan"))
        lr_ci = _log_ci(lr_t[:, i], alpha) if alpha else (float("nan"), float("nan"))
        steps = float(point["per_level"][i])
        noise = tables["noise"].to_numpy(dtype=float)[:, i]
        rows.append({"level": arms._plain(lv) if float(lv) != int(lv) else int(lv), "steps_to_target": steps,
                     "steps_lo": steps_ci[0], "steps_hi": steps_ci[1],
                     "n": int(np.isfinite(tables["steps"].to_numpy(dtype=float)[:, i]).sum()),
                     "censored": int(at["censored"].astype(bool).sum()),
                     "examples_to_target": steps * float(lv),
                     "fitted_steps": float(fit.steps(lv)) if np.isfinite(fit.b_crit) else float("nan"),
                     "regime": regime(float(lv), fit.b_crit, p["regime_factor"]),
                     "best_lr": float(point["best_lr"][i]), "best_lr_lo": lr_ci[0], "best_lr_hi": lr_ci[1],
                     "b_simple": float(geometric_mean(noise))})
    return rows


def _estimate_row(name: str, value: float, ci: tuple[float, float] | None) -> dict[str, Any]:
    return {"estimate": name, "value": float(value), "value_lo": ci[0] if ci else float("nan"),
            "value_hi": ci[1] if ci else float("nan")}


KIND = register(ClaimKind(
    name=CRITICAL,
    params={
        "axis": Param(str, "batch_size", "the batch-size column"),
        "noise": Param(str, "b_simple_at_target", "per-trial gradient noise scale column; \"\" skips the comparison"),
        "agree_within": Param(float, 3.0, "the fit's B_crit and B_simple must agree within this factor", ge=1.0),
        "regime_factor": Param(float, REGIME_FACTOR, "perfect scaling below B_crit / this, maximal data "
                                                     "parallelism above B_crit x this", ge=1.0),
        "lr": Param(str, "lr", "the learning-rate column (the optimal LR per batch size)"),
        "select": Param(str, "val_acc", "breaks ties between trials equally fast to the target", metric=True),
        "tune": Param(list, None, "axes tuned within a cell (default: the suite's nuisance axes)"),
        "where": Param(dict, None, "column -> value or list of values: keep only these trials"),
        "confidence": Param(float, 0.95, "two-sided confidence of the intervals", gt=0.0, lt=1.0),
    },
    evaluate=evaluate_critical,
    statistic="B_crit of the fit S(B) = S_min + E_min / B (steps to target of the fastest tuned trial, geometric "
              "mean over seeds) divided by the measured gradient noise scale B_simple",
    method="the fit on each seed alone; Student t interval over seeds of log B_crit / B_simple (and of log B_crit "
           "against the tested range); both must hold for supported",
    axis_params=(),
))


# ------------------------------------------------------------------ linear_scaling (B5)

def evaluate_linear(claim: Claim, frame: pd.DataFrame, design: Design) -> ClaimResult:
    p = claim.params
    if p["margin"] < 0:
        raise ValueError(f"margin must be >= 0, got {p['margin']!r}")
    setup = arms.prepare(claim, frame, design, own=[p["axis"], p["lr"], p["warmup"]])
    arms.require(setup.frame, [p["axis"], p["lr"], p["warmup"], "seed", "status"])
    return arms.per_stratum(claim, design, setup, lambda sub, stratum: _linear_one(claim, setup, sub, stratum),
                            LINEAR)


def multiplier_table(claim: Claim, setup: arms.Setup, arm: pd.DataFrame, base: float,
                     selected: list | None = None) -> pd.DataFrame:
    """Per multiplier k > 1 of one arm: the mean paired difference q_k - q_base over seeds and its CI.
    ``selected``, when given, gets the trials behind each (level, seed) cell (``ClaimResult.selected``)."""
    p = claim.params
    axis = p["axis"]
    long = cell_quantities(arm, [axis, "seed"], setup.quantity, select=p["select"], tuned=setup.tuned)
    levels = sorted(float(v) for v in long[axis].unique())
    if selected is not None:
        selected += arms.level_selected(long, arm, axis, levels, setup.quantity)
    wide = to_wide(long, axis, levels)
    rows = []
    if base not in levels:
        return pd.DataFrame(rows)
    b = wide[base].to_numpy(dtype=float)
    a = arms.alpha(p)
    h = Hypothesis.greater(-p["margin"])
    n_k = len(levels) - 1
    for lv in levels:
        if lv == base:
            continue
        d = wide[lv].to_numpy(dtype=float) - b
        d = d[np.isfinite(d)]
        decision = decide_mean(d, h, a)
        lo, hi = decision.ci
        mean = decision.estimate
        lrs = sorted({float(v) for v in arm.loc[arm[axis] == lv, p["lr"]]})
        rows.append({"k": lv / base, "level": lv, "lr": lrs[0] if len(lrs) == 1 else float("nan"),
                     "warmup_steps": int(arm.loc[arm[axis] == lv, p["warmup"]].max()),
                     "mean": mean, "lo": lo, "hi": hi, "n": int(d.size),
                     "baseline": float(np.nanmean(b)) if np.isfinite(b).any() else float("nan"),
                     "scaled": float(np.nanmean(wide[lv])) if np.isfinite(wide[lv]).any() else float("nan"),
                     "p_holds": decision.p_supported, "p_breaks": decision.p_refuted, "mde": decision.mde,
                     "holds": bool(decision.p_supported < a),
                     "breaks": bool(decision.p_refuted < a / n_k)})
    return pd.DataFrame(rows)


def largest_holding(table: pd.DataFrame) -> tuple[float, float | None]:
    """(largest k up to which every k holds (1 when the first does not), the first k that breaks or None)."""
    k_max = 1.0
    for _, r in table.sort_values("k").iterrows():
        if not r["holds"]:
            break
        k_max = float(r["k"])
    broken = table[table["breaks"]] if not table.empty else table
    return k_max, (float(broken["k"].min()) if not broken.empty else None)


def _linear_one(claim: Claim, setup: arms.Setup, sub: pd.DataFrame, stratum: dict) -> ClaimResult:
    p = claim.params
    axis, warm = p["axis"], p["warmup"]
    batches = pd.to_numeric(sub[axis], errors="coerce")
    base = float(p["base"]) if p["base"] else float(batches.min())
    warmup = pd.to_numeric(sub[warm], errors="coerce").fillna(0)
    arm_frames = {"warmup": sub[(warmup > 0) | (batches == base)], "none": sub[warmup == 0]}
    caveats = []
    if not (warmup > 0).any():
        arm_frames = {"all trials": sub}
        caveats.append(f"no trial has {warm} > 0: judged on all trials, without warmup")
    tables = {}
    selected: list[dict[str, Any]] = []
    for name, arm in arm_frames.items():
        picked: list[dict[str, Any]] = []
        t = multiplier_table(claim, setup, arm, base, picked)
        if not t.empty:
            tables[name] = t.assign(arm=name)
            # the learning curves: one line per arm and batch, the shared baseline once
            selected += [{**e, "group": f"{name}: {e['group']}"} for e in picked
                         if len(tables) == 1 or float(e["level"]) != base]
    judged = next(iter(tables), None)
    data = arms.records(pd.concat(tables.values(), ignore_index=True)) if tables else []
    base_lr = sorted({float(v) for v in sub.loc[batches == base, p["lr"]]})
    for name, t in tables.items():
        expected = base_lr[0] * t["k"] if len(base_lr) == 1 else None
        if expected is not None and not np.allclose(t["lr"], expected, rtol=0.01, equal_nan=False):
            bad = t.loc[~np.isclose(t["lr"], expected, rtol=0.01), "k"]
            caveats.append(f"{name}: {p['lr']} is not {base_lr[0]:g} x k at k = "
                           f"{', '.join(f'{k:g}' for k in bad)} (linear scaling rule not followed)")
    base_fields = dict(claim_id=claim.id, kind=LINEAR, statistic=LINEAR_KIND.statistic, method=LINEAR_KIND.method,
                       n_seeds=int(sub["seed"].nunique()), n_trials=len(sub), stratum=stratum, caveats=caveats,
                       data=data, band=band_of(Hypothesis.greater(-p["margin"])), selected=selected)
    if judged is None:
        return arms.undecided(claim, LINEAR, f"no {axis} level beside the baseline {base:g} with a value", **base_fields)
    t = tables[judged]
    upto = t[t["k"] <= p["min_k"]]
    parts = []
    for name, tab in tables.items():
        k_max, k_break = largest_holding(tab)
        parts.append(f"{name}: holds up to k = {k_max:g}" + (f", breaks at k = {k_break:g}" if k_break else
                                                             ", no tested k breaks"))
    if upto.empty or upto["n"].max() < 2:
        # one seed still gives the statistic (the CI gate tracks it per seed), never a verdict
        valued = upto[upto["n"] >= 1].sort_values("k")
        effect = float(valued.iloc[-1]["mean"]) if not valued.empty else None
        return arms.undecided(claim, LINEAR, f"no multiplier up to {p['min_k']:g} with 2 paired seeds; "
                              + "; ".join(parts), effect=effect, unit=setup.quantity.unit, **base_fields)
    k_all = len(t)
    # holds for every k <= min_k: all must hold; breaks: any of the K multipliers, each judged at alpha / K
    joint = combine([Evidence("supported" if r["holds"] else "inconclusive", r["p_holds"],
                              min(1.0, k_all * r["p_breaks"])) for _, r in upto.iterrows()], "all")
    p_sup = joint.p_supported
    p_ref = float(min(1.0, k_all * upto["p_breaks"].min()))
    verdict = verdict_of(p_sup, p_ref, arms.alpha(p))
    last = upto.sort_values("k").iloc[-1]
    summary = (f"{p['quantity']} at k x {base:g} (lr x k) minus at {base:g}, within {p['margin']:g} up to "
               f"k = {p['min_k']:g} claimed: at k = {last['k']:g} ({judged}) {last['mean']:+.4f} "
               f"(CI {last['lo']:+.4f} to {last['hi']:+.4f}); " + "; ".join(parts))
    return ClaimResult(verdict=verdict, effect=float(last["mean"]), ci=(float(last["lo"]), float(last["hi"])),
                       summary=summary, unit=setup.quantity.unit, p_supported=p_sup, p_refuted=p_ref,
                       mde=float(last["mde"]) if np.isfinite(last["mde"]) else None,
                       detectable=f"at k = {last['k']:g}: " + detectable_text(
                           Decision(verdict, float(last["mean"]), (float(last["lo"]), float(last["hi"])), p_sup, p_ref,
                                    int(last["n"]), "", mde=float(last["mde"])),
                           Hypothesis.greater(-p["margin"]), setup.quantity.unit), **base_fields)


LINEAR_KIND = register(ClaimKind(
    name=LINEAR,
    params={
        "axis": Param(str, "batch_size", "the batch-size column"),
        "lr": Param(str, "lr", "the learning-rate column"),
        "warmup": Param(str, "warmup_steps", "the warmup column: > 0 is the warmup arm"),
        "base": Param(float, 0.0, "the baseline batch size (0: the smallest)", ge=0.0),
        "quantity": Param(str, "test_acc", "the per-cell quantity (see analysis/quantities.py)"),
        "select": Param(str, "val_acc", "metric that selects the trial of a cell", metric=True),
        "margin": Param(float, 0.01, "how far below the baseline still counts as kept (one accuracy point)", ge=0.0),
        "min_k": Param(float, 8.0, "the claim: accuracy is kept for every multiplier up to this", ge=1.0),
        "tune": Param(list, None, "axes tuned within a cell (default: the suite's nuisance axes)"),
        "where": Param(dict, None, "column -> value or list of values: keep only these trials"),
        "confidence": Param(float, 0.95, "two-sided confidence of the intervals", gt=0.0, lt=1.0),
    },
    evaluate=evaluate_linear,
    statistic="per batch multiplier k: mean over seeds of q(k x batch, k x lr) - q(baseline); the largest k up "
              "to which it stays above -margin",
    method="Student t interval over seeds of the paired differences, per multiplier and arm (warmup / none); a "
           "break is judged at alpha / K (Bonferroni over the K multipliers)",
    axis_params=(),
))
