"""The run directory: versioned, atomically written, one record per trial id.

Layout::

    RUN_DIR/run.json            schema, suite (resolved), tier, command, environment, created
    RUN_DIR/trials/<id>.json    one TrialRecord per trial id

Each record is written to a temporary file, flushed, fsynced and renamed into
place, so that killing the driver at any moment leaves every record either
whole or absent: a rerun of the same command trains exactly the trials that
have no final record (none, or ``failed``), and no trial appears twice.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

import pandas as pd

from claimbench.errors import StoreError
from claimbench.suite import Suite, expand
from claimbench.trial import RECORD_SCHEMA, TrialRecord, TrialSpec

RUN_SCHEMA = 1


def atomic_write_text(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.chmod(tmp, 0o644)  # mkstemp's 0600 would hide results from other users of a shared run dir
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@dataclass
class RunInfo:
    suite: Suite
    command: str
    environment: dict[str, Any]
    created: str


class RunStore:
    def __init__(self, run_dir: str | Path):
        self.dir = Path(run_dir)
        self.trials_dir = self.dir / "trials"

    # -- the run ----------------------------------------------------------
    def exists(self) -> bool:
        return (self.dir / "run.json").is_file()

    def init(self, suite: Suite, command: str, environment: dict[str, Any]) -> None:
        """Create the run dir, or record the suite as now resolved (records are kept either way)."""
        if self.dir.exists() and not self.dir.is_dir():
            raise StoreError("exists and is not a directory", where=str(self.dir), fix="choose another --out")
        if self.exists():
            previous = self.info().suite  # refuses a run dir of another schema before anything is written
            if previous.name != suite.name:
                raise StoreError(f"holds a run of suite {previous.name!r}, not {suite.name!r}", where=str(self.dir),
                                 fix="choose another --out for this suite")
        self.trials_dir.mkdir(parents=True, exist_ok=True)
        from datetime import datetime, timezone
        meta = {"schema": RUN_SCHEMA, "suite": suite.to_dict(), "command": command,
                "environment": environment, "created": datetime.now(timezone.utc).isoformat(timespec="seconds")}
        atomic_write_text(self.dir / "run.json", json.dumps(meta, indent=1, default=str))

    def info(self) -> RunInfo:
        path = self.dir / "run.json"
        if not self.dir.is_dir():
            raise StoreError("run directory not found", where=str(self.dir),
                             fix="give the --out directory of a `claimbench run`")
        if not path.is_file():
            raise StoreError("not a claimbench run directory (no run.json)", where=str(self.dir),
                             fix="give the --out directory of a `claimbench run`")
        try:
            meta = json.loads(path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise StoreError(f"run.json is not valid JSON ({e})", where=str(path),
                             fix="rerun `claimbench run` with this --out to rewrite it") from None
        if meta.get("schema") != RUN_SCHEMA:
            raise StoreError(f"run dir has schema {meta.get('schema')!r}; this claimbench reads schema {RUN_SCHEMA}",
                             where=str(path), fix="rerun the suite into a new --out directory with this version")
        return RunInfo(suite=Suite.from_dict(meta["suite"]), command=meta.get("command", ""),
                       environment=meta.get("environment", {}), created=meta.get("created", ""))

    # -- records ----------------------------------------------------------
    def append(self, record: TrialRecord) -> None:
        atomic_write_text(self.trials_dir / f"{record.trial_id}.json", json.dumps(record.to_dict(), default=str))

    def records(self, ids: Iterable[str] | None = None) -> list[TrialRecord]:
        """Records on disk (only ``ids``, when given), oldest schema refused."""
        if not self.trials_dir.is_dir():
            return []
        paths = sorted(self.trials_dir.glob("*.json"))
        if ids is not None:
            wanted = set(ids)
            paths = [p for p in paths if p.stem in wanted]
        out = []
        for p in paths:
            try:
                data = json.loads(p.read_text(encoding="utf-8"))
            except (json.JSONDecodeError, UnicodeDecodeError):
                continue  # cannot happen with atomic writes; a hand-damaged file counts as missing, is rerun
            if data.get("schema") != RECORD_SCHEMA:
                raise StoreError(f"trial record has schema {data.get('schema')!r}; this claimbench reads {RECORD_SCHEMA}",
                                 where=str(p), fix="rerun the suite into a new --out directory with this version")
            out.append(TrialRecord.from_dict(data))
        return out

    def pending(self, specs: list[TrialSpec]) -> list[TrialSpec]:
        """Specs with no final record: never run, or failed (failures are retried)."""
        done = {r.trial_id for r in self.records(s.trial_id for s in specs) if r.status.is_final()}
        return [s for s in specs if s.trial_id not in done]

    # -- frames -----------------------------------------------------------
    def frame(self) -> pd.DataFrame:
        """One row per trial of the run's current suite (see ``analysis.trial_frame``)."""
        from claimbench.analysis.frames import trial_frame
        suite = self.info().suite
        ids = {s.trial_id for s in expand(suite)}
        tables = {a.name: [v for v in a.values] for a in suite.axes if a.is_table}
        return trial_frame(self.records(ids), tables)

    def export_parquet(self) -> tuple[Path, Path]:
        """trials.parquet (the frame) and curves.parquet (one row per evaluation) in the run dir."""
        from claimbench.analysis.frames import curve_frame
        suite = self.info().suite
        ids = {s.trial_id for s in expand(suite)}
        trials = self.dir / "trials.parquet"
        curves = self.dir / "curves.parquet"
        self.frame().to_parquet(trials, index=False)
        curve_frame(self.records(ids)).to_parquet(curves, index=False)
        return trials, curves


def load_results(run_dir: str | Path) -> pd.DataFrame:
    """One row per trial of a run: spec columns, ``status``, outcome and metric columns."""
    return RunStore(run_dir).frame()
