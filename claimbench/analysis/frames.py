"""Records -> pandas frames. One row per trial; one row per evaluation for curves."""

from __future__ import annotations

import json
from typing import Iterable

import pandas as pd

from claimbench.analysis.selection import sort_frame
from claimbench.trial import DERIVED, METRICS, RECORD_COLUMNS, TrialRecord, TrialStatus, level_label
from claimbench.workloads.builtin import SPEC_FIELDS


def trial_frame(records: Iterable[TrialRecord], axis_tables: dict[str, list[dict]] | None = None,
                halted: bool = False) -> pd.DataFrame:
    """One row per trial, in the canonical order (``selection.sort_frame``: by seed, then spec; never by
    trial id, which hashes the code): ``trial_id``, every spec field (None where the trial's workload does not
    read it: ``TrialRecord.settings``), another workload's parameters, ``budget`` (e.g. "epochs=10"),
    the record's outcome columns, the metric columns (NaN where the trial has
    none, e.g. a diverged trial: never a filled-in value) and ``gap``.
    ``noise_curve``: the gradient noise-scale measurements of the curve, a list of
    [step, noise_g2, noise_trace] (None when the trial measured none; see train/single.py).
    ``grad_ratio_init`` comes from the record's ``grad_norms_init`` when the
    metrics lack it (a diverged trial), since it was measured before divergence.

    ``axis_tables`` maps a table-valued axis name to its levels (dicts of
    parameters); each such axis gets a label column ("epochs=10").
    ``attrs["not_applicable"]``: the settings that some trial's workload does not read, in spec order.

    A trial halted by halving is absent (``without_halted``); ``halted=True`` keeps its row, with status
    "halted" (the experimenter loop's bookkeeping only, never a claim's frame).
    """
    rows, own, not_applicable = [], {}, {}
    for r in records:
        not_applicable.update(dict.fromkeys(r.not_applicable))
        row = {"trial_id": r.trial_id}
        spec = r.settings()  # a setting its workload does not read: None, never the spec's default
        row.update({k: spec.get(k) for k in SPEC_FIELDS})
        params = json.loads(r.spec.get("workload_params") or "{}")  # another workload's parameters: columns too
        own.update(dict.fromkeys(params))
        row.update(params)
        row["budget"] = level_label({"epochs": row["epochs"]} if row.get("epochs") else {"steps": row["steps"]})
        for name, levels in (axis_tables or {}).items():
            row[name] = next((level_label(lv) for lv in levels
                              if all(r.spec.get(k) == v for k, v in lv.items())), None)
        for col in RECORD_COLUMNS:
            row[col] = getattr(r, col)
        row["status"] = r.status.value
        for m in METRICS:
            row[m] = r.metrics.get(m, float("nan"))
        norms = getattr(r, "grad_norms_init", None)
        if "grad_ratio_init" not in r.metrics and norms and norms[-1] > 0:
            row["grad_ratio_init"] = norms[0] / norms[-1]
        noise = [[float(p["step"]), float(p["noise_g2"]), float(p["noise_trace"])] for p in r.curve if "noise_g2" in p]
        row["noise_curve"] = noise or None
        rows.append(row)
    columns = ["trial_id", *SPEC_FIELDS, *own, "budget", *(axis_tables or {}), *RECORD_COLUMNS, *METRICS, *DERIVED,
               "noise_curve"]
    frame = pd.DataFrame(rows, columns=list(dict.fromkeys(columns)))
    for m in METRICS:
        frame[m] = frame[m].astype(float)
    frame["gap"] = frame["train_acc"] - frame["test_acc"]
    frame = sort_frame(frame)
    frame.attrs["not_applicable"] = list(not_applicable)  # for the report's methodology
    return frame if halted else without_halted(frame)


def without_halted(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` without the trials halted by successive halving (status "halted": each left its pack at a
    rung, a tuned value that could not be its group's selected trial). They are absent from what claims judge,
    as a pruned cell is: never a failed run, never selected. The one place they are left out; their ids are in
    ``attrs["halted"]``."""
    if "status" not in frame.columns:
        return frame
    halted = frame["status"] == TrialStatus.HALTED.value
    out = frame[~halted] if halted.any() else frame
    out.attrs = dict(frame.attrs) | {"halted": [str(t) for t in frame.loc[halted, "trial_id"]]}
    return out


def curve_frame(records: Iterable[TrialRecord]) -> pd.DataFrame:
    """One row per (trial, evaluation): trial_id, status, the curve's columns (see TrialRecord), among them
    ``grad_ratio`` (NaN at step 0, before any step)."""
    rows = []
    for r in records:
        for point in r.curve:
            rows.append({"trial_id": r.trial_id, "status": r.status.value, **point})
    return pd.DataFrame(rows)
