"""Helpers shared by claim kinds: strata, caveats."""

from __future__ import annotations

import contextlib
import warnings
from typing import Callable

import numpy as np
import pandas as pd

from claimbench.analysis.isolation import strata_of
from claimbench.claims.base import Claim, ClaimResult, Design, combined


@contextlib.contextmanager
def quiet():
    """Silence numpy's empty/all-NaN warnings: NaN is handled by the caller."""
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        yield


def by_stratum(claim: Claim, frame: pd.DataFrame, design: Design, axis: str,
               evaluate_one: Callable[[pd.DataFrame, dict], ClaimResult]) -> ClaimResult:
    """Evaluate per stratum (each level of the swept fixed and other scientific axes).

    With one stratum, its result is the claim's. With several, the verdict is
    theirs when they agree and ``inconclusive`` (it depends on the stratum)
    when they do not; each stratum's result is kept in ``strata``.
    """
    keys = strata_of(design, axis)
    constants = ", ".join(f"{k}={v}" for k, v in design.constants.items())
    if not keys:
        result = evaluate_one(frame, {})
    else:
        parts = []
        for key, sub in frame.groupby(keys, sort=True):
            key = key if isinstance(key, tuple) else (key,)
            part = evaluate_one(sub, dict(zip(keys, (_plain(k) for k in key))))
            part.faq_section, part.paraphrase = claim.faq_section, claim.paraphrase
            parts.append(part)
        joint = combined(parts, "all")
        lines = [f"{_stratum_text(p.stratum)}: {p.verdict}" for p in parts]
        note = "" if len({p.verdict for p in parts}) == 1 else " — the verdict depends on the stratum"
        first = parts[0]
        result = ClaimResult(
            claim_id=claim.id, kind=first.kind, verdict=joint.verdict, statistic=first.statistic,
            effect=None, ci=None, n_seeds=max(p.n_seeds for p in parts), unit=first.unit,
            p_supported=joint.p_supported, p_refuted=joint.p_refuted,
            n_trials=sum(p.n_trials for p in parts), method=first.method,
            summary="; ".join(lines) + note,
            caveats=[f"{_stratum_text(p.stratum)}: {c}" for p in parts for c in p.caveats], strata=parts)
    result.faq_section, result.paraphrase = claim.faq_section, claim.paraphrase
    if constants:
        result.caveats.insert(0, f"held fixed: {constants}")
    return result


def _plain(value):
    return value.item() if hasattr(value, "item") else value


def _stratum_text(stratum: dict) -> str:
    return ", ".join(f"{k}={v}" for k, v in stratum.items())


def grid_edge_caveats(iso: pd.DataFrame, frame: pd.DataFrame, design: Design, axis: str) -> list[str]:
    """Warnings that the tuned optimum may lie outside the grid, and cells where every trial diverged."""
    out = []
    for n in design.nuisance:
        grid = sorted(frame[n].dropna().unique())
        if len(grid) < 3 or not all(isinstance(g, (int, float, np.number)) for g in grid):
            continue
        for edge, name in ((grid[0], "lowest"), (grid[-1], "highest")):
            at_edge = iso[iso[n] == edge].groupby(axis)["seed"].count()
            seeds = iso.groupby(axis)["seed"].count()
            levels = [lv for lv in at_edge.index if at_edge[lv] * 2 > seeds[lv]]
            if levels:
                out.append(f"the best {n} is the {name} tested ({edge:g}) at {axis} = "
                           f"{', '.join(f'{lv:g}' for lv in levels)}: the optimum may lie outside the grid")
    empty = iso[iso["value"].isna()]
    if not empty.empty:
        cells = ", ".join(f"{axis}={r[axis]:g}/seed {r['seed']}" for _, r in empty.iterrows())
        out.append(f"no usable trial (all diverged or failed) at {cells}")
    return out


# ------------------------------------------------------------------ learning curves of the selected trials

#: Quantities whose learning curve is the validation metric with the target drawn (steps / examples to it).
TO_TARGET = ("steps_to_target", "examples_to_target", "tokens_to_target")
#: How ``curve_summary`` computes its interval at each evaluation (the figure's caption names it).
CURVE_METHOD = "mean over seeds at each evaluation (a seed's several trials averaged first); Student t interval " \
               "over seeds where 2 seeds have a value"


def curve_metric(quantity: str, columns) -> tuple[str, bool] | None:
    """The curve column that shows ``quantity`` over training and whether a target applies to it, or None
    when the quantity is no final metric or steps-to-target (a timing, an LR, a range width, a rate) or
    the curves lack it. A steps-to-target quantity draws the validation metric the target is set on; a
    test-split quantity draws its validation counterpart, since the test split is evaluated only at the
    checkpoints something reads (``TrialRecord``), not along the curve."""
    from claimbench.analysis.quantities import parse_quantity

    try:
        q = parse_quantity(quantity)
    except ValueError:
        return None
    if q.op not in ("select", "min", "max", "mean", "median"):
        return None
    if q.column in TO_TARGET:
        return next(((m, True) for m in ("val_bpb", "val_acc", "val_r2") if m in columns), None)  # lm's first
    column = "val_" + q.column.removeprefix("test_") if q.column.startswith("test_") else q.column
    return (column, False) if column in columns else None


def curve_summary(curves: pd.DataFrame, selected: list[dict], metric: str, x: str,
                  confidence: float = 0.95) -> pd.DataFrame:
    """Per group of ``selected`` (``ClaimResult.selected``) and per ``x`` (``step`` or ``examples``): the
    mean over seeds of ``metric`` of the group's trials (a seed with several: their mean first), with its
    Student t interval (``CURVE_METHOD``). Columns: group, x, mean, lo, hi, n."""
    from claimbench.analysis.inference import t_interval

    columns = ["group", "x", "mean", "lo", "hi", "n"]
    rows = [(s["group"], s["seed"], t) for s in selected for t in s["trial_ids"]]
    if not rows or curves.empty or metric not in curves.columns or x not in curves.columns:
        return pd.DataFrame(columns=columns)
    ids = pd.DataFrame(rows, columns=["group", "seed", "trial_id"])
    sub = curves[["trial_id", x, metric]].merge(ids, on="trial_id").dropna(subset=[metric])
    out = []
    alpha = (1 - confidence) / 2
    per_seed = sub.groupby(["group", x, "seed"], sort=False)[metric].mean().reset_index()
    for (group, xv), g in per_seed.groupby(["group", x], sort=False):
        mean, lo, hi, n = t_interval(g[metric].to_numpy(dtype=float), alpha)
        out.append({"group": group, "x": float(xv), "mean": mean, "lo": lo, "hi": hi, "n": n})
    return pd.DataFrame(out, columns=columns).sort_values(["group", "x"], kind="stable").reset_index(drop=True)


def noise_scale_curve(frame: pd.DataFrame, trial_ids: list[str]) -> pd.DataFrame:
    """B_simple = tr(Σ) / |G|² over training of some trials (e.g. one level's selected trials, one per
    seed): per step after the first, |G|² and tr(Σ) averaged over the trials before the ratio (each alone
    is unbiased, their ratio is not); steps where the |G|² estimate is not positive are left out.
    Columns: step, b_simple. ``frame``: the trial frame, with ``noise_curve`` ([step, g2, trace] lists)."""
    columns = ["step", "b_simple"]
    if "noise_curve" not in frame.columns:
        return pd.DataFrame(columns=columns)
    by_id = frame.set_index("trial_id")
    curves = [pd.DataFrame(list(by_id.loc[t, "noise_curve"]), columns=["step", "g2", "trace"])
              for t in trial_ids if t in by_id.index and by_id.loc[t, "noise_curve"] is not None]
    if not curves:
        return pd.DataFrame(columns=columns)
    joined = pd.concat(curves).groupby("step").mean()
    joined = joined[joined.index > 0]
    ratio = joined["trace"] / joined["g2"].where(joined["g2"] > 0)
    ok = ratio.notna() & (ratio > 0)
    return pd.DataFrame({"step": joined.index[ok].to_numpy(dtype=float), "b_simple": ratio[ok].to_numpy(dtype=float)})
