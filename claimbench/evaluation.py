"""What a report renders: an ``Evaluation`` (a suite, its trial frame, every claim's result), and the
run dir of a group (``group.json``: which suites' run dirs one report joins).

Plain data over the store and the analysis: ``api`` builds evaluations (``evaluate_run``,
``evaluate_target``); ``report`` and ``export`` read them, and never run or evaluate anything.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from claimbench.analysis.frames import curve_frame
from claimbench.claims import ClaimResult
from claimbench.errors import StoreError
from claimbench.paths import check_name, inside
from claimbench.store.files import atomic_write_text
from claimbench.store.rundir import RunStore
from claimbench.suite import Suite

#: Columns of the LR range test's sweep frame (``Evaluation.range_curves``), before any extra keys.
RANGE_COLUMNS = ["trial_id", "seed", "lr", "loss", "smoothed"]


@dataclass
class Evaluation:
    """A run dir's suite, its trial frame and every claim's result. ``run_dir`` is where it was read from
    (None for one built in memory); ``curves()`` and ``range_curves()`` read the per-evaluation curves and
    the LR range test's sweeps from its records once, on first use (``curve_frames``)."""

    suite: Suite
    frame: pd.DataFrame
    results: list[ClaimResult]
    command: str
    environment: dict
    created: str
    run_dir: Path | None = None
    _curves: tuple[pd.DataFrame, pd.DataFrame] | None = field(default=None, repr=False, compare=False)

    def curves(self) -> pd.DataFrame:
        """One row per (trial, evaluation) of the frame's trials: ``curve_frame`` (empty without a run dir)."""
        return self._curve_frames()[0]

    def range_curves(self) -> pd.DataFrame:
        """One row per (trial, LR of the range test's sweep): trial_id, seed, lr, loss, smoothed."""
        return self._curve_frames()[1]

    def _curve_frames(self) -> tuple[pd.DataFrame, pd.DataFrame]:
        if self._curves is None:
            self._curves = curve_frames(self)
        return self._curves


def curve_frames(evaluation: Evaluation) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(curves, range curves) of the evaluation's trials, read from its run dir's records (both empty
    when it has no run dir)."""
    if evaluation.run_dir is None or evaluation.frame.empty:
        return pd.DataFrame(), pd.DataFrame(columns=RANGE_COLUMNS)
    records = RunStore(evaluation.run_dir).records(set(evaluation.frame["trial_id"]))
    seeds = dict(zip(evaluation.frame["trial_id"], evaluation.frame["seed"]))
    ranges = [{"trial_id": r.trial_id, "seed": seeds.get(r.trial_id), **point}
              for r in records for point in r.range_curve]
    return curve_frame(records), pd.DataFrame(ranges, columns=list(dict.fromkeys(
        RANGE_COLUMNS + [k for row in ranges for k in row])))


# ------------------------------------------------------------------ the run dir of a group

GROUP_FILE = "group.json"


def write_group(root: str | Path, group, tier: str, names: list[str]) -> None:
    """Mark ``root`` as the run dir of a group: one sub run dir per suite (``names``), one combined report."""
    info = {"schema": 1, "group": group.name, "title": group.title, "description": group.description,
            "tier": tier, "suites": list(names)}
    atomic_write_text(Path(root) / GROUP_FILE, json.dumps(info, indent=2) + "\n")


def read_group(run_dir: str | Path) -> dict[str, Any] | None:
    """The group.json of a group run dir, or None for a plain run dir."""
    path = Path(run_dir) / GROUP_FILE
    if not path.is_file():
        return None
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise StoreError(f"unreadable group file: {e}", where=str(path), fix="delete it and rerun the group") from None
    if not isinstance(info, dict) or info.get("schema") != 1 or not isinstance(info.get("suites"), list):
        raise StoreError("not a claimbench group file (schema 1)", where=str(path), fix="delete it and rerun the group")
    return info


def suite_run_dirs(run_dir: str | Path, group: dict[str, Any] | None) -> list[Path]:
    """The run dirs of the suites that ``run_dir`` holds (``group``: its ``read_group``): itself for a
    suite's run dir; for a group's, the sub run dir of each suite the group lists that has a run.json,
    the names checked to be names (a hand-made group.json never leads out of the run dir). A StoreError
    for a group with none yet."""
    if group is None:
        return [Path(run_dir)]
    where = f"{Path(run_dir) / GROUP_FILE}: suites"
    subs = [inside(run_dir, check_name(name, where, "suite name")) for name in group["suites"]]
    dirs = [d for d in subs if (d / "run.json").is_file()]
    if not dirs:
        raise StoreError("the group has no suite run dirs yet", where=str(run_dir),
                         fix=f"run it first: claimbench run {group['group']} --tier {group['tier']}")
    return dirs
