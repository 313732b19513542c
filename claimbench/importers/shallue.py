"""Importer for the data released by Shallue et al. (2018), "Measuring the effects of data parallelism
on neural network training" (google-research/batch_science), into claimbench trial frames.

The released layout, as documented in that repository's README and read by its ``data_loader.py``
(a *workload* is a dataset, model and optimizer; a *study* is the metaparameter search at one batch
size; a *trial* is one training run)::

    WORKLOAD/BATCH_SIZE/study.json               {"batch_size", "dataset", "model", "optimizer",
                                                   "parameter_configs", "train_steps", ...}
    WORKLOAD/BATCH_SIZE/TRIAL_ID/metadata.json   {"trial_id", "status": COMPLETE | INCOMPLETE | INFEASIBLE,
                                                   "steps", "parameters": {"learning_rate", "momentum", ...}}
    WORKLOAD/BATCH_SIZE/TRIAL_ID/measurements.csv  one row per evaluation: "step", then metric columns such
                                                   as "val/classification_error", "test/cross_entropy_error"

``load_study`` reads one study directory, ``load_workload`` every study under a workload directory.
Each trial becomes one row of a trial frame (analysis/frames.py): ``trial_id`` ("BATCH-TRIAL"),
``batch_size``, ``seed`` (0: the release has one run per configuration), ``status`` (COMPLETE ->
completed, INFEASIBLE -> diverged, INCOMPLETE -> failed), ``steps_done``, ``steps_to_target`` and
``examples_to_target`` (the first measurement whose ``metric`` is below ``target``, strictly, or above
it with ``maximize``: Shallue et al.'s ``compute_steps_to_result``; None when never reached), one column
per metaparameter (``learning_rate`` also as ``lr``), ``dataset``, ``model``, ``optimizer``, and
``val_acc`` / ``test_acc`` (1 - the last classification error, where measured). The claim kinds and
figures then run on it as on a claimbench run: ``published_result`` fits the steps-vs-batch curve
(``critical_batch``, without the noise-scale comparison, tuning every metaparameter).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Sequence

import pandas as pd

from claimbench.claims import KINDS, Claim, Design
from claimbench.errors import UserError

STATUSES = {"COMPLETE": "completed", "INFEASIBLE": "diverged", "INCOMPLETE": "failed"}
DEFAULT_METRIC = "val/classification_error"


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UserError(f"missing {path.name}", where=str(path),
                        fix="point at a study directory of the batch_science release (BATCH_SIZE/study.json, "
                            "BATCH_SIZE/TRIAL_ID/metadata.json and measurements.csv)") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise UserError(f"unreadable JSON: {e}", where=str(path), fix="restore the file from the release") from None
    if not isinstance(data, dict):
        raise UserError("expected a JSON object", where=str(path), fix="restore the file from the release")
    return data


def _first_reaching(measurements: pd.DataFrame, metric: str, target: float, maximize: bool) -> int | None:
    values = pd.to_numeric(measurements[metric], errors="coerce")
    hit = values > target if maximize else values < target
    steps = measurements.loc[hit.fillna(False), "step"]
    return int(steps.min()) if not steps.empty else None


def load_study(study_dir: str | Path, target: float, metric: str = DEFAULT_METRIC,
               maximize: bool = False) -> pd.DataFrame:
    """One row per trial of one study (see the module docstring). UserError names a missing or bad file."""
    study_dir = Path(study_dir)
    study = _read_json(study_dir / "study.json")
    if "batch_size" not in study:
        raise UserError("study.json has no batch_size", where=str(study_dir / "study.json"),
                        fix="point at a study directory of the batch_science release")
    batch = int(study["batch_size"])
    trial_dirs = sorted((d for d in study_dir.iterdir() if d.is_dir()), key=lambda d: (not d.name.isdigit(), d.name))
    if not trial_dirs:
        raise UserError("no trial directories", where=str(study_dir),
                        fix="each study holds one directory per trial with metadata.json and measurements.csv")
    rows = []
    for d in trial_dirs:
        meta = _read_json(d / "metadata.json")
        status = str(meta.get("status", ""))
        if status not in STATUSES:
            raise UserError(f"unknown trial status {status!r}", where=str(d / "metadata.json"),
                            fix=f"status must be one of {', '.join(STATUSES)}")
        path = d / "measurements.csv"
        if not path.is_file():
            raise UserError("missing measurements.csv", where=str(path), fix="restore the file from the release")
        m = pd.read_csv(path)
        if "step" not in m.columns:
            raise UserError("measurements.csv has no step column", where=str(path), fix="restore the file from the release")
        if metric not in m.columns:
            raise UserError(f"no column {metric!r}", where=str(path),
                            fix=f"pass metric= one of: {', '.join(c for c in m.columns if c != 'step')}")
        m = m.sort_values("step")
        reached = _first_reaching(m, metric, target, maximize)
        params = meta.get("parameters") or {}
        row: dict[str, Any] = {
            "trial_id": f"{batch}-{meta.get('trial_id', d.name)}", "batch_size": batch, "seed": 0,
            "status": STATUSES[status], "steps_done": int(meta.get("steps") or (m["step"].max() if len(m) else 0)),
            "steps_to_target": reached, "examples_to_target": reached * batch if reached is not None else None,
            "dataset": study.get("dataset"), "model": study.get("model"), "optimizer": study.get("optimizer"),
            "target": target, "metric": metric,
        }
        row.update({k: v for k, v in params.items()})
        if "learning_rate" in params:
            row["lr"] = params["learning_rate"]
        for split in ("train", "val", "test"):
            col = f"{split}/classification_error"
            if col in m.columns and m[col].notna().any() and STATUSES[status] == "completed":
                row[f"{split}_acc"] = 1.0 - float(m[col].dropna().iloc[-1])
            else:
                row[f"{split}_acc"] = math.nan
        rows.append(row)
    frame = pd.DataFrame(rows)
    for col in ("steps_to_target", "examples_to_target"):
        frame[col] = frame[col].astype("float")
    return frame


def load_workload(workload_dir: str | Path, target: float, metric: str = DEFAULT_METRIC,
                  maximize: bool = False) -> pd.DataFrame:
    """Every study (one per batch size) under ``workload_dir``, or the one study it is; rows sorted by batch."""
    workload_dir = Path(workload_dir)
    if not workload_dir.is_dir():
        raise UserError("not a directory", where=str(workload_dir),
                        fix="point at a workload directory of the batch_science release, e.g. mnist/simple_cnn/sgd")
    if (workload_dir / "study.json").is_file():
        return load_study(workload_dir, target, metric, maximize)
    studies = sorted((d for d in workload_dir.iterdir() if (d / "study.json").is_file()),
                     key=lambda d: (not d.name.isdigit(), int(d.name) if d.name.isdigit() else 0, d.name))
    if not studies:
        raise UserError("no study directories (BATCH_SIZE/study.json)", where=str(workload_dir),
                        fix="point at a workload directory of the batch_science release, e.g. mnist/simple_cnn/sgd")
    return pd.concat([load_study(s, target, metric, maximize) for s in studies], ignore_index=True)


def tuned_columns(frame: pd.DataFrame) -> list[str]:
    """The metaparameter columns that vary within a study (tuned), ``lr`` first."""
    fixed = {"trial_id", "batch_size", "seed", "status", "steps_done", "steps_to_target", "examples_to_target",
             "dataset", "model", "optimizer", "target", "metric", "train_acc", "val_acc", "test_acc",
             "learning_rate"}
    cols = [c for c in frame.columns if c not in fixed and frame.groupby("batch_size")[c].nunique().max() > 1]
    return sorted(cols, key=lambda c: (c != "lr", c))


def published_result(frame: pd.DataFrame, claim_id: str = "published", regime_factor: float = 4.0,
                     tune: Sequence[str] | None = None):
    """The ``critical_batch`` result on an imported frame: the steps-vs-batch fit, its regimes and
    critical batch, the optimal LR per batch (no noise-scale comparison: the release has none, and one
    run per configuration, so there is no CI over seeds). Returns (Claim, ClaimResult); the figures of
    ``report.figures.critical_batch_figures`` take them with ``types.SimpleNamespace(frame=frame)``."""
    tuned = list(tune) if tune is not None else tuned_columns(frame)
    params = KINDS["critical_batch"].resolve_params({"noise": "", "tune": tuned, "regime_factor": regime_factor,
                                                     "select": "val_acc"})
    what = ", ".join(str(frame[c].iloc[0]) for c in ("dataset", "model", "optimizer") if c in frame and len(frame))
    claim = Claim(claim_id, "critical_batch", "", f"Shallue et al. (2018) release: {what}", params)
    design = Design(scientific=("batch_size",), nuisance=tuple(tuned), fixed=())
    return claim, KINDS["critical_batch"].evaluate(claim, frame, design)
