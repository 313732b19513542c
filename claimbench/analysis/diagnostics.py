"""Protocol diagnostics: how the way an experiment was run could have misled a claim.

Computed from the frames (and the learning curves, when the run dir has them) for the trials a claim
selected (``ClaimResult.selected``), never from the verdict. Each diagnostic has one stated threshold,
fixed here before any run:

- **grid edge** — the share of selected cells whose tuned value is the first or last value of its grid,
  where the grid could extend (a value of 0, or a bound of 1 for a probability-like axis, is a physical
  limit, not an edge), and where it beats its grid neighbour (an edge that only wins a tie says nothing).
  Flagged when, for some level or arm, one edge holds more than ``EDGE_SHARE`` of its cells *and* more than a
  flat objective would put there by chance (binomial, 1 in k for a grid of k values, at ``EDGE_P`` after
  Bonferroni over the levels and sides): the optimum may lie beyond the grid.
- **convergence** — per level or arm, the median gain of the selected trials in the selection metric
  over the last quarter of the budget (accuracies and R²: absolute; losses: relative to the value at
  three quarters). Flagged when some group's gain exceeds ``CONVERGENCE_GAIN`` (trials still learning).
  The comparison is *budget-limited* when the groups it compares still move apart or together by more
  than that: the spread of their gains exceeds ``CONVERGENCE_GAIN``, so a longer budget may change it.
- **failed to learn** — completed trials that end no better than at step 0 (within ``LEARN_MARGIN``):
  at chance, although the divergence rule did not fire. Counted and listed; the robustness variant
  "failure definition" treats them as failures.
- **flat objective** — levels where ``FLAT_VALUES`` or more tuned values lie within one seed SD of the
  best (means over seeds of the selection metric): the tuned value is seed noise there.
- **ties** — cells whose best selection value is shared by two or more trials (broken by grid order).

``limits`` turns the flagged diagnostics that can move a decision (grid edge, a budget-limited comparison)
into reasons, for a claim whose statistic reads its selected trials' performance (an accuracy, loss, R²,
or a tuned value chosen on one): a claim whose diagnostics still fail after the suite's registered
extensions is not decided. Timings, divergence limits and steps to a target read no tuned optimum and
no final performance: their diagnostics are shown, never limiting.

The rerun noise (``RERUN``) is measured between the published faq-default frames and a rerun of the same
command on another CPU (``python -m claimbench.analysis.diagnostics reports/faq-default
../shared/reruns/faq-default-avx512``); ``perturb`` applies it for the robustness variant
"numerical noise".
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import pandas as pd
from scipy import stats as sps

from claimbench.analysis.selection import best_trials, direction, spec_order, tie_count

#: A claim is edge-limited when more than this share of its selected cells sit on an extendable grid edge.
EDGE_SHARE = 0.25
#: ... and that share is unlikely under a flat objective (one-sided binomial p below this, Bonferroni-corrected).
EDGE_P = 0.05
#: A claim is budget-limited when some level's selected trials still gain more than this over the last
#: quarter of the budget (accuracy and R² in absolute units, i.e. one point; losses relative, i.e. 1%).
CONVERGENCE_GAIN = 0.01
#: A completed trial failed to learn when its final selection metric is not better than at step 0 by this
#: much (accuracy, R²: absolute; losses: relative).
LEARN_MARGIN = 0.02
#: A level's objective is flat when this many tuned values or more lie within one seed SD of the best.
FLAT_VALUES = 3
#: Axes whose values are probabilities or coefficients in [0, 1]: 1 is a physical bound.
UNIT_AXES = ("dropout", "momentum", "beta1", "beta2", "label_noise", "outlier_frac", "schedule_gamma")


@dataclass(frozen=True)
class RerunNoise:
    """What a rerun of the same command on another CPU does to a trial's metrics: a share of trials moves,
    by a normal shift of ``acc_sd`` in accuracy-like metrics and a log-normal factor of ``loss_sd`` in losses."""

    share: float
    acc_sd: float
    loss_sd: float


#: Measured (see the module docstring; 6700 trials with val_acc): 33.2% of the trials' val_acc moved, with a
#: pooled SD of 0.038 among those that moved; val_loss by a factor with log-SD 0.080.
RERUN = RerunNoise(share=0.332, acc_sd=0.038, loss_sd=0.080)


def _relative(metric: str) -> bool:
    return direction(metric) < 0


def cells_of(frame: pd.DataFrame, tuned: Sequence[str]) -> pd.Series:
    """Per row, its cell: the spec without the tuned axes (and without the code fingerprint)."""
    return spec_order(frame.drop(columns=[t for t in tuned if t in frame.columns]))


def _grid_step(values: np.ndarray) -> tuple[str, float]:
    """("ratio", r) for a geometric grid of positive values, else ("step", d)."""
    if len(values) >= 2 and (values > 0).all():
        ratios = values[1:] / values[:-1]
        if np.allclose(ratios, ratios[0], rtol=0.05):
            return "ratio", float(ratios[0])
    diffs = np.diff(values)
    if len(diffs) and np.allclose(diffs, diffs[0], rtol=0.05):
        return "step", float(diffs[0])
    if len(values) >= 2 and (values > 0).all():
        return "ratio", float(values[-1] / values[-2])  # an irregular positive grid: extend by its last ratio
    return "step", float(diffs[-1]) if len(diffs) else 0.0


def beyond(values: Sequence[float], side: str, count: int = 1, axis: str = "") -> list[float]:
    """``count`` values beyond the ``side`` ("low" or "high") edge of a grid, at its spacing; fewer where a
    physical bound (0, or 1 for ``UNIT_AXES``) stops them."""
    grid = np.array(sorted({float(v) for v in values}), dtype=float)
    if len(grid) < 2:
        return []
    how, step = _grid_step(grid)
    out, v = [], grid[0] if side == "low" else grid[-1]
    for _ in range(count):
        if how == "ratio":
            v = v / step if side == "low" else v * step
        else:
            v = v - step if side == "low" else v + step
        if v <= 0 or (axis in UNIT_AXES and v >= 1):
            break
        out.append(float(f"{v:.6g}"))
    return out


def _extendable(grid: np.ndarray, value: float, axis: str) -> str | None:
    if len(grid) < 3:
        return None
    if math.isclose(value, grid[0], rel_tol=1e-9, abs_tol=1e-12) and beyond(grid, "low", 1, axis):
        return "low"
    if math.isclose(value, grid[-1], rel_tol=1e-9, abs_tol=1e-12) and beyond(grid, "high", 1, axis):
        return "high"
    return None


def _registered(grids: dict[str, Sequence[Any]] | None, axis: str) -> set[float]:
    """The registered values of ``axis`` (``grids``), as floats; empty when it has none or one is not a number."""
    try:
        return {float(v) for v in (grids or {}).get(axis, ())}
    except (TypeError, ValueError):
        return set()


def _numeric(frame: pd.DataFrame, axis: str) -> pd.Series | None:
    if axis not in frame.columns:
        return None
    values = pd.to_numeric(frame[axis], errors="coerce")
    if values.isna().any() or values.nunique() < 3:
        return None
    return values.astype(float)


def selected_cells(frame: pd.DataFrame, tuned: Sequence[str], select: str) -> list[dict]:
    """For a claim whose kind names no selected trials: per cell (the spec without the tuned axes), the trial
    the one selection rule picks, grouped by the spec columns that vary apart from the seed and the tuned
    axes (the levels, arms and strata)."""
    if frame.empty or "trial_id" not in frame.columns:
        return []
    cells = cells_of(frame, tuned)
    best = best_trials(frame.assign(_cell=cells), ["_cell"], select, tuned)
    from claimbench.workloads.builtin import SPEC_FIELDS

    varying = [c for c in SPEC_FIELDS if c in frame.columns and c not in (*tuned, "seed", "code", "trial_id")
               and frame[c].astype(str).nunique() > 1]
    out = []
    for _, row in best.iterrows():
        group = ", ".join(f"{c}={row[c]:g}" if isinstance(row[c], float) else f"{c}={row[c]}" for c in varying)
        out.append({"group": group or "all trials", "seed": row.get("seed"), "trial_ids": [row["trial_id"]]})
    return out


def _selected_rows(frame: pd.DataFrame, selected: Sequence[dict]) -> pd.DataFrame:
    """One row per selected cell that names a single trial, with its group (level or arm)."""
    pairs = [(e["trial_ids"][0], e.get("group", "")) for e in selected if len(e.get("trial_ids") or []) == 1]
    if not pairs or "trial_id" not in frame.columns:
        return frame.iloc[0:0].assign(_group=[])
    ids = pd.DataFrame(pairs, columns=["trial_id", "_group"]).drop_duplicates()
    return frame.merge(ids, on="trial_id", how="inner")


def tuned_points(frame: pd.DataFrame, selected: Sequence[dict], tuned: Sequence[str],
                 select: str = "val_acc") -> dict[str, Any] | None:
    """What a claim about a tuned value plots: for each selected trial (a level's or arm's pick on one seed),
    every trial of its cell (same spec but the tuned axes, same seed) at its value of the first numeric
    tuned axis, with ``select`` and whether it is the selected one. None when no tuned axis is numeric or
    no selected entry names one trial."""
    rows = _selected_rows(frame, selected)
    axis = next((t for t in tuned if _numeric(frame, t) is not None), None)
    if rows.empty or axis is None or select not in frame.columns:
        return None
    chosen = pd.DataFrame({"_cell": cells_of(rows, tuned).to_numpy(), "_picked": rows["trial_id"].to_numpy(),
                           "group": rows["_group"].astype(str).to_numpy()}).drop_duplicates("_cell")
    cell = frame.assign(_cell=cells_of(frame, tuned)).merge(chosen, on="_cell", how="inner")  # one pass, not per cell
    if cell.empty:
        return None
    points = pd.DataFrame({
        "group": cell["group"], "seed": cell["seed"].astype(int) if "seed" in cell else 0,
        "value": pd.to_numeric(cell[axis], errors="coerce").astype(float),
        "metric": pd.to_numeric(cell[select], errors="coerce").astype(float),
        "status": cell["status"].astype(str) if "status" in cell else "completed",
        "selected": cell["trial_id"] == cell["_picked"]})
    return {"axis": axis, "metric": select, "points": points.to_dict("records")}


def grid_edges(frame: pd.DataFrame, selected: Sequence[dict], tuned: Sequence[str],
               select: str = "val_acc", grids: dict[str, Sequence[Any]] | None = None) -> dict[str, Any]:
    """The grid-edge diagnostic: ``share`` of selected cells on an extendable edge, ``cells``, and per axis
    and side the count (``sides``: {"lr": {"low": 3, "high": 0, "grid": [...]}}). A selected trial on an edge
    counts only when it beats the best trial at the neighbouring grid value: an edge that only wins a tie
    says nothing about the optimum lying beyond it. A cell's grid is its observed values together with the
    axis's registered values (``grids``, ``Design.grids``): a value that pruning or halving left out of the
    frame still bounds the grid, so the value next to it is never taken for an edge."""
    rows = _selected_rows(frame, selected)
    axes = [t for t in tuned if _numeric(frame, t) is not None]
    out: dict[str, Any] = {"cells": int(len(rows)), "share": 0.0, "sides": {}, "flag": False}
    if rows.empty or not axes:
        return out
    on_edge = np.zeros(len(rows), dtype=bool)
    groups = rows["_group"].astype(str).to_numpy()
    n_groups = len(set(groups))
    cells = cells_of(frame, axes)
    score = direction(select) * pd.to_numeric(frame.get(select, pd.Series(np.nan, index=frame.index)),
                                              errors="coerce")
    score = score.where(frame["status"] == "completed") if "status" in frame.columns else score
    for axis in axes:
        values = _numeric(frame, axis)
        registered = _registered(grids, axis)
        cell_grids = values.groupby(cells).agg(lambda s: np.array(sorted({*s.unique(), *registered})))
        best_at = score.groupby([cells, values]).max()  # per (cell, grid value): the best trial's score
        row_cells = cells_of(rows, axes)
        counts = {"low": 0, "high": 0}
        by_group: dict[tuple[str, str], int] = {}
        for i, (cell, value) in enumerate(zip(row_cells, pd.to_numeric(rows[axis], errors="coerce"))):
            grid = cell_grids.get(cell)
            side = _extendable(grid, float(value), axis) if grid is not None and np.isfinite(value) else None
            if side:
                neighbour = grid[1] if side == "low" else grid[-2]
                here, there = best_at.get((cell, float(value))), best_at.get((cell, float(neighbour)))
                if here is not None and there is not None and np.isfinite(there) and not here > there:
                    side = None
            if side:
                counts[side] += 1
                on_edge[i] = True
                by_group[(groups[i], side)] = by_group.get((groups[i], side), 0) + 1
        if counts["low"] or counts["high"]:
            grid = np.array(sorted({*values.unique(), *registered}), dtype=float)
            entry = {**counts, "grid": [float(g) for g in grid],
                     "share_low": counts["low"] / len(rows), "share_high": counts["high"] / len(rows), "limited": []}
            for (group, side), hit in sorted(by_group.items()):
                n = int((groups == group).sum())
                p = float(sps.binom.sf(hit - 1, n, 1.0 / len(grid)))
                if hit / n > EDGE_SHARE and p < EDGE_P / max(1, 2 * n_groups):
                    entry["limited"].append({"group": group, "side": side, "cells": hit, "of": n, "p": p})
            out["sides"][axis] = entry
    out["share"] = float(on_edge.mean())
    out["flag"] = any(e["limited"] for e in out["sides"].values())
    return out


def _curve_metric(curves: pd.DataFrame | None, metric: str) -> pd.DataFrame | None:
    if curves is None or curves.empty or metric not in curves.columns or "step" not in curves.columns:
        return None
    return curves[["trial_id", "step", metric]].dropna()


def convergence(curves: pd.DataFrame | None, frame: pd.DataFrame, selected: Sequence[dict], metric: str,
                strata: Sequence[str] = ()) -> dict:
    """The convergence diagnostic: per group, the median gain of its selected trials in ``metric`` over
    the last quarter of the budget; ``worst`` the largest, ``flag`` when it exceeds CONVERGENCE_GAIN;
    ``spread`` the largest difference between two groups compared with each other (within one stratum of
    ``strata``: strata are judged apart), ``moving`` when it exceeds CONVERGENCE_GAIN."""
    out: dict[str, Any] = {"metric": metric, "groups": {}, "worst": None, "flag": False, "measured": False}
    points = _curve_metric(curves, metric)
    rows = _selected_rows(frame, selected)
    if points is None or rows.empty:
        return out
    sign, relative = direction(metric), _relative(metric)
    points = points[points["trial_id"].isin(set(rows["trial_id"]))].sort_values(["trial_id", "step"])
    gains = {}
    for tid, curve in points.groupby("trial_id", sort=False):
        steps, values = curve["step"].to_numpy(dtype=float), curve[metric].to_numpy(dtype=float)
        if len(steps) < 3 or steps[-1] <= 0:
            continue
        at = values[steps <= 0.75 * steps[-1]][-1]
        gain = sign * (values[-1] - at)
        if relative:
            gain = gain / abs(at) if abs(at) > 0 else float("nan")
        gains[tid] = gain
    if not gains:
        return out
    strata = [s for s in strata if s in rows.columns]
    rows = rows.assign(_gain=rows["trial_id"].map(gains)).dropna(subset=["_gain"])
    rows = rows.assign(_stratum=rows[strata].astype(str).agg(", ".join, axis=1) if strata else "")
    rows = rows.assign(_label=[f"{g} [{s}]" if s and s not in str(g) else str(g)
                               for g, s in zip(rows["_group"], rows["_stratum"])])
    medians = rows.groupby(["_stratum", "_label"])["_gain"].median()
    out["groups"] = {label: float(v) for (_, label), v in medians.items()}
    out["measured"] = True
    worst = max(out["groups"].items(), key=lambda kv: kv[1])
    out["worst"] = {"group": worst[0], "gain": worst[1]}
    spreads = []
    for _, within in medians.groupby(level=0):
        if len(within) > 1:
            hi, lo = within.idxmax()[1], within.idxmin()[1]
            spreads.append({"most": hi, "least": lo, "gain": float(within.max() - within.min())})
    out["spread"] = max(spreads, key=lambda s: s["gain"]) if spreads else None
    out["flag"] = worst[1] > CONVERGENCE_GAIN
    out["moving"] = bool(out["spread"] and out["spread"]["gain"] > CONVERGENCE_GAIN)
    return out


def failed_to_learn(curves: pd.DataFrame | None, frame: pd.DataFrame, metric: str) -> pd.Index:
    """Trial ids of the completed trials whose final ``metric`` is no better than at step 0 (LEARN_MARGIN)."""
    points = _curve_metric(curves, metric)
    if points is None or "status" not in frame.columns:
        return pd.Index([])
    done = set(frame.loc[frame["status"] == "completed", "trial_id"])
    points = points[points["trial_id"].isin(done)].sort_values(["trial_id", "step"])
    if points.empty:
        return pd.Index([])
    grouped = points.groupby("trial_id", sort=True)[metric]
    first, last = grouped.first(), grouped.last()
    gain = direction(metric) * (last - first)
    if _relative(metric):
        gain = gain / first.abs().where(first.abs() > 0)
    return gain.index[(gain <= LEARN_MARGIN).to_numpy()]


def flat_objective(frame: pd.DataFrame, selected: Sequence[dict], tuned: Sequence[str], metric: str) -> dict:
    """The flat-objective diagnostic: per group (level or arm) of the selected cells, whether FLAT_VALUES or
    more tuned values lie within one seed SD of the best mean; ``share`` of the groups that are flat."""
    rows = _selected_rows(frame, selected)
    axes = [t for t in tuned if t in frame.columns]
    out: dict[str, Any] = {"share": 0.0, "groups": [], "flag": False}
    if rows.empty or len(axes) != 1 or metric not in frame.columns:
        return out
    axis, sign = axes[0], direction(metric)
    cells = cells_of(frame, axes)
    frame = frame.assign(_cell=cells)
    flat = []
    for group, sel in rows.groupby("_group", sort=True):
        members = frame[frame["_cell"].isin(set(cells_of(sel, axes))) & (frame["status"] == "completed")]
        seed_sd = float(pd.to_numeric(sel[metric], errors="coerce").std(ddof=1))
        if members.empty or not np.isfinite(seed_sd):
            continue
        means = sign * pd.to_numeric(members[metric], errors="coerce").groupby(members[axis]).mean()
        near = int((means >= means.max() - seed_sd).sum())
        if near >= FLAT_VALUES:
            flat.append(str(group))
        out.setdefault("near", {})[str(group)] = near
    n = len(out.get("near", {}))
    out["groups"] = flat
    out["share"] = len(flat) / n if n else 0.0
    out["flag"] = bool(flat)
    return out


def diagnose(frame: pd.DataFrame, curves: pd.DataFrame | None, selected: Sequence[dict], tuned: Sequence[str],
             select: str, argbest: bool = False, performance: bool = True,
             strata: Sequence[str] = (), grids: dict[str, Sequence[Any]] | None = None) -> dict[str, Any]:
    """Every diagnostic of one claim, as plain data, and ``limits``: the reasons it is not decided. ``selected``:
    the trials the claim read (``ClaimResult.selected``); when it names none with one trial per cell, the
    cells' selected trials by the one rule (``selected_cells``)."""
    if not any(len(e.get("trial_ids") or []) == 1 for e in selected):
        selected = selected_cells(frame, tuned, select)
    edge = grid_edges(frame, selected, tuned, select, grids)
    conv = convergence(curves, frame, selected, select, strata)
    failed = failed_to_learn(curves, frame, select)
    flat = flat_objective(frame, selected, tuned, select) if argbest else {"share": 0.0, "groups": [], "flag": False}
    n_ties, n_cells = tie_count(frame.assign(_cell=cells_of(frame, tuned)), ["_cell"], select) if len(frame) \
        else (0, 0)
    ftl_rows = frame[frame["trial_id"].isin(set(failed))] if len(failed) else frame.iloc[0:0]
    out = {"edge": edge, "convergence": conv,
           "failed_to_learn": {"count": int(len(failed)), "of": int((frame["status"] == "completed").sum())
                               if "status" in frame else 0, "trial_ids": [str(t) for t in failed],
                               "measured": conv["measured"] or bool(len(failed)),
                               "where": _where(ftl_rows, tuned)},
           "flat": flat, "ties": {"count": n_ties, "cells": n_cells}}
    out["limits"] = limits(out) if performance else []
    out["limiting"] = performance
    return out


def _where(rows: pd.DataFrame, tuned: Sequence[str]) -> str:
    """Where the failed-to-learn trials sit, in words: their tuned values."""
    if rows.empty:
        return ""
    parts = []
    for axis in tuned:
        if axis in rows.columns:
            values = sorted({v for v in rows[axis].dropna().tolist()}, key=lambda v: (str(type(v)), v))
            parts.append(f"{axis} in {{{', '.join(f'{v:g}' if isinstance(v, float) else str(v) for v in values[:8])}"
                         f"{', ...' if len(values) > 8 else ''}}}")
    return "; ".join(parts)


def limits(diag: dict[str, Any]) -> list[str]:
    """The reasons a claim with these diagnostics is not decided (empty: its protocol holds)."""
    out = []
    edge = diag["edge"]
    if edge["flag"]:
        hits = [(axis, e) for axis, d in edge["sides"].items() for e in d["limited"]]
        axis, worst = max(hits, key=lambda t: t[1]["cells"] / t[1]["of"])
        where = "lower" if worst["side"] == "low" else "upper"
        out.append(f"edge-limited: the tuned {axis} is the grid's {where} edge in {worst['cells']} of "
                   f"{worst['of']} cells of {worst['group']}"
                   + (f" (and at {len(hits) - 1} other level(s) or arm(s))" if len(hits) > 1 else ""))
    conv = diag["convergence"]
    if conv.get("moving"):
        s = conv["spread"]
        unit = "relative" if _relative(conv["metric"]) else "absolute"
        out.append(f"budget-limited: over the last quarter of the budget the selected trials of {s['most']} gained "
                   f"{conv['groups'][s['most']]:.3g} in {conv['metric']} and those of {s['least']} "
                   f"{conv['groups'][s['least']]:.3g} ({unit}; a spread above {CONVERGENCE_GAIN:g}: the comparison "
                   f"is still moving)")
    return out


def perturb(frame: pd.DataFrame, seed: int, noise: RerunNoise = RERUN) -> pd.DataFrame:
    """``frame`` with a rerun's numerical noise: each trial moves with probability ``noise.share``, by one
    normal shift of its accuracy-like metrics and one log-normal factor of its losses (a trial's metrics
    move together, as they do when its trajectory changes)."""
    rng = np.random.default_rng(seed)
    out = frame.copy()
    moved = rng.random(len(out)) < noise.share
    z = rng.normal(0.0, 1.0, len(out)) * moved
    for col in out.columns:
        if not isinstance(col, str) or not col.startswith(("train_", "val_", "test_")):
            continue
        try:
            sign = direction(col)
        except Exception:
            continue
        values = pd.to_numeric(out[col], errors="coerce")
        if not values.notna().any():
            continue
        if sign > 0:
            shifted = values + noise.acc_sd * z
            out[col] = shifted.clip(upper=1.0) if col.endswith("_acc") else shifted
        else:
            out[col] = values * np.exp(noise.loss_sd * z)
    return out


def measure_rerun_noise(a: pd.DataFrame, b: pd.DataFrame) -> dict[str, float]:
    """The rerun noise between two frames of the same matrix (matched by spec without the code): the share of
    trials whose val_acc differs, the SD of those differences, and the SD of the log ratio of val_loss."""
    ka, kb = spec_order(a), spec_order(b)
    m = a.assign(_k=ka).merge(b.assign(_k=kb), on="_k", suffixes=("", "_b"))
    out = {"matched": float(len(m))}
    if "val_acc" in m and m["val_acc"].notna().any():
        d = (m["val_acc"] - m["val_acc_b"]).dropna()
        out.update(n_acc=float(len(d)), moved=float((d != 0).sum()),
                   acc_sd=float(d[d != 0].std(ddof=1)) if (d != 0).sum() > 1 else 0.0)
    if "val_loss" in m:
        r = np.log(m["val_loss"] / m["val_loss_b"]).replace([np.inf, -np.inf], np.nan).dropna()
        out.update(n_loss=float(len(r)), loss_sd=float(r[r != 0].std(ddof=1)) if (r != 0).sum() > 1 else 0.0)
    return out


def _main(argv: Sequence[str]) -> int:
    import glob
    import os

    if len(argv) != 2:
        print("usage: python -m claimbench.analysis.diagnostics REPORT_DIR RERUN_DIR", file=sys.stderr)
        return 2
    n_acc = moved = 0.0
    acc_var = loss_var = 0.0
    n_acc_moved = n_loss = 0.0
    for path in sorted(glob.glob(os.path.join(argv[0], "*", "trials.parquet"))):
        other = os.path.join(argv[1], os.path.basename(os.path.dirname(path)), "trials.parquet")
        if not os.path.exists(other):
            continue
        m = measure_rerun_noise(pd.read_parquet(path), pd.read_parquet(other))
        if m.get("n_acc"):
            n_acc += m["n_acc"]
            moved += m["moved"]
            acc_var += m["acc_sd"] ** 2 * max(m["moved"] - 1, 0)
            n_acc_moved += max(m["moved"] - 1, 0)
        if m.get("n_loss"):
            loss_var += m["loss_sd"] ** 2 * m["n_loss"]
            n_loss += m["n_loss"]
    print(f"share {moved / max(n_acc, 1):.3f}  acc_sd {math.sqrt(acc_var / max(n_acc_moved, 1)):.4f}  "
          f"loss_sd {math.sqrt(loss_var / max(n_loss, 1)):.4f}  ({int(n_acc)} trials with val_acc)")
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
