"""Judging claims under their protocol: diagnostics, protocol limits and robustness, in one place.

``judge`` evaluates each claim as registered (its kind's statistic and the inference module's decision),
then

1. computes its protocol diagnostics (``analysis/diagnostics.py``: grid edges, convergence, failed to
   learn, flat objective, ties) from the frames and curves, for the trials it selected;
2. leaves a claim whose diagnostics fail (edge-limited, budget-limited) undecided: its verdict becomes
   inconclusive and says why, and what the registered statistic alone would have said;
3. re-judges it under the variants a careful researcher could have chosen instead (``VARIANTS``): the
   best-validation checkpoint instead of the final step, the other tie order, "failed to learn" counted
   as failure, the grid without its extendable edge values, and ``NOISE_DRAWS`` draws of the numerical
   noise a rerun on another CPU produces. The registered protocol stays primary; the variants are
   disclosed, never chosen. A decided verdict is *robust* when no variant changes it, else *fragile:
   flips to X under Y*; one whose deciding p-value lies within ``NEAR`` times of the threshold is also
   *near the boundary*.
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any, Callable, Sequence

import numpy as np
import pandas as pd

from claimbench.analysis import diagnostics as dx
from claimbench.analysis.inference import ALPHA
from claimbench.analysis.quantities import restrict
from claimbench.analysis.selection import direction, tie_order
from claimbench.claims.base import KINDS, Claim, ClaimResult, Design
from claimbench.errors import UserError

#: A decided claim whose deciding p-value is at least ALPHA / NEAR is "near the boundary".
NEAR = 4.0
#: Draws of the rerun noise; a verdict that flips in at least half of them is fragile under it.
NOISE_DRAWS = 4
#: Kinds whose statistic is a tuned value (an argbest): the flat-objective diagnostic applies to them.
ARGBEST_KINDS = ("power_law_slope", "lr_surge", "best_level_in_range", "critical_batch")
#: The variants, in the order they are reported.
VARIANTS = ("best-validation checkpoint", "reversed tie order", "failed-to-learn as failure",
            "grid without its edge values", "numerical noise")


def _select(claim: Claim) -> str:
    select = claim.params.get("select", "val_acc")
    try:
        direction(select)
    except UserError:
        return "val_acc"
    return select


_PERFORMANCE = ("_acc", "_loss", "_r2", "_mse")


def _reads_performance(text: str) -> bool:
    op, _, col = text.partition(":") if ":" in text else ("", "", text)
    if op == "argbest":
        return True
    return op in ("", "min", "max", "mean", "median") and (col.endswith(_PERFORMANCE) or col == "gap")


def reads_performance(claim: Claim) -> bool:
    """Whether a claim's statistic reads its selected trials' performance or a tuned value chosen on it (so
    that grid edges and a short budget can move it): not timings, divergence limits or steps to a target."""
    p = claim.params
    if claim.kind in ARGBEST_KINDS and claim.kind != "critical_batch":
        return True
    texts = [p[k] for k in ("quantity", "metric") if isinstance(p.get(k), str)]
    texts += [p[s]["quantity"] for s in ("num", "den") if isinstance(p.get(s), dict)
              and isinstance(p[s].get("quantity"), str)]
    return any(_reads_performance(t) for t in texts)


def tuned_axes(claim: Claim, design: Design, frame: pd.DataFrame) -> tuple[str, ...]:
    """The axes tuned within a claim's cells: its ``tune`` list or the suite's nuisance axes, plus the axis an
    argbest looks across; never the claim's own axis or arm keys."""
    p = claim.params
    tune = p.get("tune")
    axes = list(design.nuisance if tune is None else tune)
    for key in ("of", "tuned"):
        if isinstance(p.get(key), str):
            axes.append(p[key])
    q = p.get("quantity")
    if isinstance(q, str) and ":" in q and q.split(":", 1)[0] in ("argbest", "max_stable", "min_diverging",
                                                                    "range_width"):
        axes.append(q.split(":", 1)[1])
    own = {p.get("axis")} | {k for side in ("a", "b") if isinstance(p.get(side), dict) for k in p[side]}
    return tuple(a for a in dict.fromkeys(axes) if a not in own and a in frame.columns)


def claim_frame(claim: Claim, frame: pd.DataFrame) -> pd.DataFrame:
    """The trials a claim reads, for its diagnostics: its ``where``, and within it the union of its arms
    (``a``/``b`` tables, or ``num``/``den`` ``where`` tables) when it names them all; else every trial
    (an arm such as ``b = "best"`` compares with every level)."""
    p = claim.params
    out = restrict(frame, p["where"]) if isinstance(p.get("where"), dict) else frame
    def tables(x: Any) -> list[dict] | None:
        if isinstance(x, dict):
            return [x]
        if isinstance(x, list) and x and all(isinstance(t, dict) for t in x):
            return list(x)
        return None

    sides = [tables(p[k]) for k in ("a", "b") if k in p and p[k] is not None]
    if any(t is None for t in sides):  # "best": every level takes part
        return out
    arms = [t for side in sides for t in side]
    arms += [p[k]["where"] for k in ("num", "den") if isinstance(p.get(k), dict) and isinstance(p[k].get("where"), dict)]
    arms = [arm for arm in arms if set(arm) <= set(out.columns)]
    if arms:
        out = out.loc[sorted(set().union(*(restrict(out, arm).index for arm in arms)))]
    return out


def at_best_checkpoint(frame: pd.DataFrame, curves: pd.DataFrame | None, select: str) -> pd.DataFrame | None:
    """``frame`` with each completed trial's metrics taken at its evaluation with the best ``select`` (the
    checkpoint a restore-best protocol keeps) instead of its final step; None without curves."""
    if curves is None or curves.empty or select not in curves.columns:
        return None
    cols = [c for c in curves.columns if c in frame.columns and isinstance(c, str)
            and c.startswith(("train_", "val_", "test_")) and c != "train_loss_ema"]
    points = curves[curves["trial_id"].isin(set(frame.loc[frame["status"] == "completed", "trial_id"]))]
    points = points.dropna(subset=[select])
    if points.empty:
        return None
    score = -direction(select) * points[select].astype(float)
    best = points.assign(_s=score).sort_values(["trial_id", "_s", "step"], kind="stable").groupby("trial_id").head(1)
    best = best.set_index("trial_id")[cols]
    out = frame.copy()
    hit = out["trial_id"].isin(best.index)
    for c in cols:
        out.loc[hit, c] = out.loc[hit, "trial_id"].map(best[c]).astype(float).to_numpy()
    if {"train_acc", "test_acc"} <= set(out.columns) and "gap" in out.columns:
        out["gap"] = out["train_acc"] - out["test_acc"]
    return out


def without_edges(frame: pd.DataFrame, edge: dict[str, Any]) -> pd.DataFrame | None:
    """``frame`` without the trials on the extendable grid edges the edge diagnostic found (None if none)."""
    drop = pd.Series(False, index=frame.index)
    for axis, sides in edge.get("sides", {}).items():
        grid = sides["grid"]
        values = pd.to_numeric(frame[axis], errors="coerce")
        if sides.get("low"):
            drop |= np.isclose(values, grid[0], rtol=1e-9)
        if sides.get("high"):
            drop |= np.isclose(values, grid[-1], rtol=1e-9)
    return frame[~drop] if drop.any() else None


def _evaluate(claim: Claim, frame: pd.DataFrame, design: Design) -> ClaimResult:
    return KINDS[claim.kind].evaluate(claim, frame, design)


def _quiet(fn: Callable[[], ClaimResult]) -> str | None:
    """A variant's verdict; None when the variant cannot be judged (a frame it empties, a missing column)."""
    try:
        with np.errstate(all="ignore"):
            return fn().verdict
    except (KeyError, ValueError, ZeroDivisionError, IndexError, TypeError):
        return None


def _deciding_p(r: ClaimResult) -> float | None:
    p = r.p_supported if r.verdict == "supported" else r.p_refuted if r.verdict == "refuted" else None
    return float(p) if p is not None and math.isfinite(p) else None


def robustness(raw: str, variants: dict[str, Any], p: float | None, final: str) -> dict[str, Any]:
    """The label of a verdict from its variants' verdicts (``numerical noise``: a list of draws)."""
    flips = []
    for name in VARIANTS:
        got = variants.get(name)
        if name == "numerical noise" and isinstance(got, list):
            moved = [v for v in got if v is not None and v != raw]
            if got and len(moved) * 2 >= len(got):
                to = max(set(moved), key=moved.count)
                flips.append({"variant": name, "verdict": to, "draws": f"{len(moved)} of {len(got)}"})
        elif got is not None and got != raw:
            flips.append({"variant": name, "verdict": got})
    near = p is not None and p >= ALPHA / NEAR
    if final not in ("supported", "refuted"):
        label = "undecided"
    elif flips:
        label = "fragile: " + "; ".join(f"flips to {f['verdict']} under {f['variant']}"
                                        + (f" ({f['draws']} draws)" if "draws" in f else "") for f in flips)
    else:
        label = "robust"
    if near and final in ("supported", "refuted"):
        label += " (near the boundary)"
    return {"label": label, "robust": final in ("supported", "refuted") and not flips, "flips": flips,
            "near_boundary": bool(near and final in ("supported", "refuted")), "variants": variants,
            "p_deciding": p}


def judge(claims: Sequence[Claim], frame: pd.DataFrame, design: Design, curves: pd.DataFrame | None = None,
          variants: bool = True) -> list[ClaimResult]:
    """Each claim's result under its registered protocol, with ``diagnostics`` and ``robustness`` (see the
    module docstring). ``variants=False`` skips the re-judging (diagnostics and limits still apply)."""
    results = [_evaluate(c, frame, design) for c in claims]
    noisy = [dx.perturb(frame, seed) for seed in range(NOISE_DRAWS)] if variants else []
    checkpoints: dict[str, pd.DataFrame | None] = {}  # per selection metric
    out = []
    for claim, r in zip(claims, results):
        select = _select(claim)
        tuned = tuned_axes(claim, design, frame)
        argbest = claim.kind in ARGBEST_KINDS or str(claim.params.get("quantity", "")).startswith("argbest:")
        own = claim_frame(claim, frame)
        diag = dx.diagnose(own, curves, r.selected, tuned, select, argbest,
                           reads_performance(claim), strata=[a for a in design.fixed if a not in tuned],
                           grids=design.grids)
        raw = r.verdict
        seen: dict[str, Any] = {}
        if variants:
            if select not in checkpoints:
                checkpoints[select] = at_best_checkpoint(frame, curves, select)
            ckpt = checkpoints[select]
            if ckpt is not None:
                seen["best-validation checkpoint"] = _quiet(lambda: _evaluate(claim, ckpt, design))
            with tie_order(True):
                seen["reversed tie order"] = _quiet(lambda: _evaluate(claim, frame, design))
            failed = set(diag["failed_to_learn"]["trial_ids"])
            if failed:
                marked = frame.assign(status=frame["status"].where(~frame["trial_id"].isin(failed), "diverged"))
                seen["failed-to-learn as failure"] = _quiet(lambda: _evaluate(claim, marked, design))
            trimmed = without_edges(frame, diag["edge"])
            if trimmed is not None:
                seen["grid without its edge values"] = _quiet(lambda: _evaluate(claim, trimmed, design))
            seen["numerical noise"] = [_quiet(lambda: _evaluate(claim, g, design)) for g in noisy]
        final = raw
        summary = r.summary
        if raw in ("supported", "refuted") and diag["limits"]:
            final = "inconclusive"
            summary = (f"not decided: {'; '.join(diag['limits'])}. As registered, the statistic alone would be "
                       f"{raw}: {r.summary}")
        diag["registered_verdict"] = raw
        rob = robustness(raw, seen, _deciding_p(r), final)
        for part in (r.strata or [r]) if tuned else ():  # what the tuned-value figure draws, per panel
            points = dx.tuned_points(own, part.selected, tuned, select)
            if points:
                part.figure_data = part.figure_data | {"tuned_points": points}
        out.append(replace(r, verdict=final, summary=summary, diagnostics=diag, robustness=rob))
    return out

