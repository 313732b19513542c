"""Export a run dir's trials to tools users already run: MLflow (``mlflow.py``) and TensorBoard
(``tensorboard.py``); the verb ``claimbench export`` is ``cli/export.py``.

Both read the run dir through the store (``RunStore.info`` / ``records``: a missing or damaged run
dir is one line; a damaged record is quarantined and left out, as for a report) and write what a
record holds, nothing recomputed: its spec as parameters, its curve as metrics per step (only finite
values: a diverged trial's curve ends where it diverged, and nothing is filled in), its final metrics,
its status. A setting that the trial's workload does not read is the parameter value ``n/a``
(``TrialRecord.settings``), never the default its spec holds. The libraries are optional
(``pip install 'claimbench[export]'``) and imported only when an export runs.
"""

from __future__ import annotations

import importlib
import json
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from claimbench.errors import UserError
from claimbench.evaluation import read_group, suite_run_dirs
from claimbench.store.rundir import RunStore
from claimbench.suite import recorded_suite
from claimbench.trial import NOT_APPLICABLE, TrialRecord

INSTALL = "pip install 'claimbench[export]'"

#: Record fields exported as final values beside ``metrics`` (numbers; absent or None: left out).
RECORD_NUMBERS = ("steps_done", "examples_done", "steps_to_target", "examples_to_target",
                  "tokens_done", "tokens_to_target", "best_step",
                  "diverged_step", "time_per_step_s", "examples_per_s", "wall_s", "attempts")
#: Curve columns that are the axis, not a metric.
CURVE_AXIS = "step"


class MissingDependency(UserError):
    """An optional library of an export is not installed."""


def require(module: str, what: str):
    """Import ``module`` or raise the one line that says how to install it."""
    try:
        return importlib.import_module(module)
    except ImportError as e:
        raise MissingDependency(f"{what} needs the optional package {e.name or module!r}, which is not installed",
                                fix=INSTALL) from None


@dataclass(frozen=True)
class Trial:
    """One record of one suite's run dir, as exported."""

    suite: str
    tier: str
    run_dir: Path
    record: TrialRecord
    label: str  # the spec's values that vary within its suite, e.g. "batch_size=4,lr=0.1,seed=0"


@dataclass(frozen=True)
class ExportSource:
    """A run dir (a suite's or a group's), its report and verdicts when written, and every trial."""

    root: Path
    name: str  # the suite's or group's name
    tier: str
    trials: list[Trial]
    report: Path | None
    verdicts: Path | None


def load_source(run_dir: str | Path) -> ExportSource:
    """Every verified record of ``run_dir`` (each suite's, for a group's run dir); StoreError for a run dir
    that is missing, foreign or damaged (the store's checks)."""
    root = Path(run_dir)
    if not root.is_dir():
        RunStore(root).info()  # the store's one line for a missing run dir or a file
    group = read_group(root)
    dirs = suite_run_dirs(root, group)
    trials: list[Trial] = []
    tier = name = ""
    for d in dirs:
        store = RunStore(d)
        suite = recorded_suite(store.info())
        tier, name = suite.tier, suite.name
        records = store.records()
        labels = _labels([r.settings(NOT_APPLICABLE) for r in records])
        trials += [Trial(suite.name, suite.tier, d, r, label) for r, label in zip(records, labels)]
    if group is not None:
        name = group["group"]
    report, verdicts = root / "report.html", root / "verdicts.json"
    return ExportSource(root=root, name=name, tier=tier, trials=trials,
                        report=report if report.is_file() else None, verdicts=verdicts if verdicts.is_file() else None)


def _labels(specs: list[dict[str, Any]]) -> list[str]:
    """Each spec's values of the fields that differ within the list (the suite's swept axes and seed)."""
    keys = sorted({k for s in specs for k in s})
    varying = [k for k in keys if len({json.dumps(s.get(k), sort_keys=True, default=str) for s in specs}) > 1]
    varying.sort(key=lambda k: (k == "seed", keys.index(k)))  # the seed last
    return [",".join(f"{k}={_short(s.get(k))}" for k in varying if k != "code") for s in specs]


def _short(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def safe_part(text: str, fallback: str) -> str:
    """``text`` as one path part of letters, digits and ``_-.=,`` (else ``_``), never empty or a dot name."""
    part = re.sub(r"[^A-Za-z0-9_.=,\-]", "_", text)[:120].lstrip(".")
    return part or fallback


def params(record: TrialRecord) -> dict[str, str]:
    """The spec's fields as strings (nested values as JSON; ``n/a`` where its workload does not read the
    field), plus the trial id."""
    out = {"trial_id": record.trial_id}
    for k, v in record.settings(NOT_APPLICABLE).items():
        out[k] = v if isinstance(v, str) else json.dumps(v, sort_keys=True, default=str)
    return out


def curve_points(record: TrialRecord) -> Iterator[tuple[int, str, float]]:
    """(step, name, value) of every finite number in the record's curve (one point per evaluation)."""
    for point in record.curve:
        step = point.get(CURVE_AXIS)
        if not isinstance(step, (int, float)) or isinstance(step, bool):
            continue
        for k, v in point.items():
            if k != CURVE_AXIS and _finite(v):
                yield int(step), k, float(v)


def final_values(record: TrialRecord) -> dict[str, float]:
    """The record's final metrics and its numeric outcome fields (finite numbers only)."""
    out = {k: float(v) for k, v in record.metrics.items() if _finite(v)}
    for k in RECORD_NUMBERS:
        v = getattr(record, k, None)
        if _finite(v):
            out[k] = float(v)
    return out


def _finite(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
