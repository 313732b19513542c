"""Records -> pandas frames. One row per trial; one row per evaluation for curves."""

from __future__ import annotations

from typing import Iterable

import pandas as pd

from claimbench.trial import SPEC_FIELDS, TrialRecord, level_label

METRICS = ("train_loss", "train_acc", "val_loss", "val_acc", "test_loss", "test_acc")
RECORD_COLUMNS = ("status", "diverged_step", "divergence_reason", "steps_done", "examples_done",
                  "steps_to_target", "examples_to_target", "best_step", "stopped_early",
                  "time_per_step_s", "examples_per_s", "wall_s", "device", "host", "attempts", "error")


def trial_frame(records: Iterable[TrialRecord], axis_tables: dict[str, list[dict]] | None = None) -> pd.DataFrame:
    """One row per trial: ``trial_id``, every spec field, ``budget`` (e.g. "epochs=10"),
    the record's outcome columns, and the metric columns (NaN where the trial has
    none, e.g. a diverged trial: never a filled-in value).

    ``axis_tables`` maps a table-valued axis name to its levels (dicts of
    parameters); each such axis gets a label column ("epochs=10").
    """
    rows = []
    for r in records:
        row = {"trial_id": r.trial_id}
        row.update({k: r.spec.get(k) for k in SPEC_FIELDS})
        row["budget"] = level_label({"epochs": row["epochs"]} if row.get("epochs") else {"steps": row["steps"]})
        for name, levels in (axis_tables or {}).items():
            row[name] = next((level_label(lv) for lv in levels
                              if all(r.spec.get(k) == v for k, v in lv.items())), None)
        for col in RECORD_COLUMNS:
            row[col] = getattr(r, col)
        row["status"] = r.status.value
        for m in METRICS:
            row[m] = r.metrics.get(m, float("nan"))
        rows.append(row)
    columns = ["trial_id", *SPEC_FIELDS, "budget", *(axis_tables or {}), *RECORD_COLUMNS, *METRICS]
    frame = pd.DataFrame(rows, columns=list(dict.fromkeys(columns)))
    for m in METRICS:
        frame[m] = frame[m].astype(float)
    return frame


def curve_frame(records: Iterable[TrialRecord]) -> pd.DataFrame:
    """One row per (trial, evaluation): trial_id, seed, the curve's columns."""
    rows = []
    for r in records:
        for point in r.curve:
            rows.append({"trial_id": r.trial_id, "status": r.status.value, **point})
    return pd.DataFrame(rows)
