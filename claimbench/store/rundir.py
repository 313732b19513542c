"""The run directory: versioned, atomically written, one record per trial id, one writer at a time.

Layout::

    RUN_DIR/run.json             schema, suite (resolved), tier, command, environment, created
    RUN_DIR/trials/<id>.json     one TrialRecord per trial id
    RUN_DIR/trials/.damaged/     records that failed verification, moved here (never deleted), and log.jsonl
    RUN_DIR/.claimbench.lock     the advisory lock (fcntl) of the driver writing the dir, with its pid (lock.py)

Each record is written to a temporary file, flushed, fsynced and renamed into
place (``files.atomic_write_text``), so that killing the driver at any moment leaves every record either
whole or absent: a rerun of the same command trains exactly the trials that
have no final record (none, or ``failed``), and no trial appears twice.

Each record is verified when read: it is a regular file of at most ``MAX_RECORD_BYTES`` (opened
without blocking, checked after opening, read up to the limit: a FIFO, a device or a symlink to one
is damage, never a hang: ``files.read_bounded``), and ``records.record_problem`` finds nothing wrong with
it. One that fails is quarantined (moved to ``trials/.damaged/``, logged) and so retrained;
the run and the report say how many and which (``damaged()``).

The store keeps the suite as run.json records it, JSON (``RunInfo.suite``); reading it back into a suite is
the suite layer's (``suite.recorded_suite``), and a run's trial frame the analysis layer's (``api.run_frame``).

Every path written goes through ``RunStore.path`` (``paths.inside``): it
resolves inside the run dir or is refused.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable, Protocol

from claimbench.errors import StoreError
from claimbench.paths import PathError, inside, output_dir
from claimbench.store import lock
from claimbench.store.files import Unreadable, atomic_write_text, read_json_bounded, storage_error
from claimbench.store.lock import LOCK_FILE
from claimbench.store.records import DIGEST_KEY, MAX_RECORD_BYTES, plain_id, record_digest, record_problem
from claimbench.trial import RECORD_SCHEMA, TrialRecord
from claimbench.workloads.builtin import TrialSpec

RUN_SCHEMA = 1
DAMAGED_DIR = ".damaged"
DAMAGE_LOG = "log.jsonl"
#: The fix of a run.json that cannot be read back.
FIX_REWRITE = "rerun `claimbench run` with this --out to rewrite it"


class RecordedSuite(Protocol):
    """What the store needs of the suite it records (``suite.Suite``): its name, and itself as JSON."""

    name: str

    def to_dict(self) -> dict[str, Any]: ...


@dataclass
class RunInfo:
    """What run.json records. ``suite``: the suite as resolved for the run, as JSON (``suite.recorded_suite``
    reads it back); ``path``: the run.json it was read from."""

    suite: dict[str, Any]
    command: str
    environment: dict[str, Any]
    created: str
    path: Path


@dataclass(frozen=True)
class Damaged:
    """A record that failed verification, and where it was moved."""

    file: str  # its name under trials/
    reason: str
    moved_to: str  # its name under trials/.damaged/ ("" when it could not be moved: a read-only dir)
    at: str = ""


class RunStore:
    def __init__(self, run_dir: str | Path):
        self.dir = Path(run_dir)
        self.trials_dir = self.dir / "trials"
        self.quarantined: list[Damaged] = []  # what this object's reads quarantined

    def path(self, *parts: str) -> Path:
        """A path inside the run dir: THE one place a written path is joined (``paths.inside``)."""
        return inside(self.dir, *parts)

    # -- the writer -------------------------------------------------------
    def check_layout(self) -> None:
        """One line for a run dir that cannot be one: a file, trials/ that is a file, run.json a directory."""
        if self.dir.exists() and not self.dir.is_dir():
            raise StoreError("exists and is not a directory", where=str(self.dir), fix="choose another --out")
        if self.trials_dir.exists() and not self.trials_dir.is_dir():
            raise StoreError("trials/ is not a directory", where=str(self.trials_dir),
                             fix="move it away (it is not a claimbench run dir's), or choose another --out")
        run_json = self.dir / "run.json"
        if run_json.exists() and not run_json.is_file():
            raise StoreError("run.json is not a file", where=str(run_json),
                             fix="move it away, or choose another --out")

    def open_for_writing(self, force: bool = False, wait: bool = False, poll_s: float = 0.2) -> list[str]:
        """Make this process the run dir's one writer; returns notes for the user (e.g. a stale lock taken over).

        Refuses (one line each): a path that cannot be a writable directory; an existing, non-empty
        directory with no run.json, unless ``force``; a dir another driver holds, naming its pid, unless
        ``wait`` (then it waits for that driver to finish). A no-op when this process already holds it.
        """
        if lock.held(self.dir):
            return []
        output_dir(self.dir, "--out")
        self.check_layout()
        notes = []
        if self.dir.is_dir() and not (self.dir / "run.json").exists():
            foreign = sorted(p.name for p in self.dir.iterdir() if p.name != LOCK_FILE)
            if foreign and not force:
                shown = ", ".join(foreign[:3]) + (", ..." if len(foreign) > 3 else "")
                raise StoreError(f"exists, is not empty ({shown}) and holds no claimbench run (no run.json)",
                                 where=str(self.dir), fix="choose another --out, or pass --force to write into it")
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise storage_error(e, self.dir, "create") or e from None
        notes += lock.acquire(self.dir, self.path(LOCK_FILE), wait, poll_s)
        self._sweep_partial_writes()
        return notes

    def _sweep_partial_writes(self) -> None:
        """Remove the temporary files of writes a killed driver left half done (``atomic_write_text`` writes a
        hidden ``.NAME.*.tmp`` and renames it): this process holds the lock, so no one else is writing them,
        and a record that was never renamed into place was never a record."""
        for where in (self.dir, self.path("trials")):
            if not where.is_dir():
                continue
            for tmp in where.glob(".*.tmp"):
                try:
                    if tmp.is_file() and not tmp.is_symlink():
                        tmp.unlink()
                except OSError:
                    pass

    def release(self) -> None:
        """Give up the lock this process holds on the run dir (if any)."""
        lock.release(self.dir)

    # -- the run ----------------------------------------------------------
    def exists(self) -> bool:
        return (self.dir / "run.json").is_file()

    def init(self, suite: RecordedSuite, command: str, environment: dict[str, Any]) -> None:
        """Create the run dir, or record the suite as now resolved (records are kept either way).

        Takes the run dir's lock first (``open_for_writing``), unless this process holds it already."""
        self.open_for_writing()
        if self.exists():
            previous = self.info().suite.get("name")  # refuses a run dir of another schema before anything is written
            if previous != suite.name:
                raise StoreError(f"holds a run of suite {previous!r}, not {suite.name!r}", where=str(self.dir),
                                 fix="choose another --out for this suite")
        self.path("trials").mkdir(parents=True, exist_ok=True)
        meta = {"schema": RUN_SCHEMA, "suite": suite.to_dict(), "command": command,
                "environment": environment, "created": datetime.now(timezone.utc).isoformat(timespec="seconds")}
        atomic_write_text(self.path("run.json"), json.dumps(meta, indent=1, default=str))

    def info(self) -> RunInfo:
        """What run.json records; StoreError (one line) for a missing or foreign run dir, or a run.json that is
        not one of this schema (its suite is JSON here: ``suite.recorded_suite`` reads it)."""
        path = self.dir / "run.json"
        fix_rerun = FIX_REWRITE
        if not self.dir.is_dir():
            raise StoreError("run directory not found" if not self.dir.exists() else "not a directory",
                             where=str(self.dir), fix="give the --out directory of a `claimbench run`")
        self.check_layout()
        if not path.is_file():
            raise StoreError("not a claimbench run directory (no run.json)", where=str(self.dir),
                             fix="give the --out directory of a `claimbench run`")
        try:
            meta = read_json_bounded(path, MAX_RECORD_BYTES)
        except Unreadable as e:
            raise StoreError(f"run.json {e}", where=str(path), fix=fix_rerun) from None
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise StoreError(f"run.json is not valid JSON ({str(e).splitlines()[0]})", where=str(path),
                             fix=fix_rerun) from None
        except RecursionError:
            raise StoreError("run.json is nested too deeply to be a run.json", where=str(path), fix=fix_rerun) from None
        except OSError as e:
            raise StoreError(f"cannot read run.json ({e.strerror})", where=str(path), fix="make it readable") from None
        if not isinstance(meta, dict):
            raise StoreError(f"run.json must be a JSON object, got {type(meta).__name__}", where=str(path), fix=fix_rerun)
        if meta.get("schema") != RUN_SCHEMA:
            raise StoreError(f"run dir has schema {meta.get('schema')!r}; this claimbench reads schema {RUN_SCHEMA}",
                             where=str(path), fix="rerun the suite into a new --out directory with this version")
        for key, kind in (("suite", dict), ("command", str), ("environment", dict), ("created", str)):
            if key in meta and not isinstance(meta[key], kind) or (key == "suite" and key not in meta):
                raise StoreError(f"run.json key {key!r} must be a JSON {'object' if kind is dict else 'string'}, got "
                                 f"{type(meta.get(key)).__name__}", where=f"{path}: {key}", fix=fix_rerun)
        return RunInfo(suite=meta["suite"], command=meta.get("command", ""),
                       environment=meta.get("environment", {}), created=meta.get("created", ""), path=path)

    # -- records ----------------------------------------------------------
    def append(self, record: TrialRecord) -> None:
        """Write ``record`` (whole or not at all), sealed with the digest of its content (``record_digest``)."""
        data = json.loads(json.dumps(record.to_dict(), default=str))  # as it will read back
        data[DIGEST_KEY] = record_digest(data)
        atomic_write_text(self.path("trials", f"{plain_id(record.trial_id)}.json"), json.dumps(data))

    def records(self, ids: Iterable[str] | None = None) -> list[TrialRecord]:
        """Verified records on disk (only ``ids``, when given); a damaged one is quarantined and left out;
        a record of another schema version is refused."""
        if not self.trials_dir.is_dir():
            return []
        paths = sorted(self.trials_dir.glob("*.json"))
        if ids is not None:
            wanted = set(ids)
            paths = [p for p in paths if p.stem in wanted]
        out = []
        for p in paths:
            record = self._verified(p)
            if record is not None:
                out.append(record)
        return out

    def verify(self) -> list[Damaged]:
        """Read every record once: what it quarantines now (the run prints it before training)."""
        before = len(self.quarantined)
        self.records()
        return self.quarantined[before:]

    def _verified(self, p: Path) -> TrialRecord | None:
        try:
            data = read_json_bounded(p, MAX_RECORD_BYTES)
        except Unreadable as e:
            return self._quarantine(p, str(e))
        except (json.JSONDecodeError, UnicodeDecodeError):
            return self._quarantine(p, "does not parse as JSON")
        except RecursionError:
            return self._quarantine(p, "nested too deeply")
        except IsADirectoryError:
            return self._quarantine(p, "is a directory")
        except FileNotFoundError:
            return None  # a dangling symlink, or gone since the listing: no record
        except OSError as e:
            raise StoreError(f"cannot read a trial record ({e.strerror})", where=str(p), fix="make it readable") from None
        if isinstance(data, dict) and isinstance(data.get("schema"), int) and not isinstance(data["schema"], bool) \
                and data["schema"] != RECORD_SCHEMA:
            raise StoreError(f"trial record has schema {data.get('schema')!r}; this claimbench reads {RECORD_SCHEMA}",
                             where=str(p), fix="rerun the suite into a new --out directory with this version")
        reason = record_problem(data, p.stem)
        if reason:
            return self._quarantine(p, reason)
        return TrialRecord.from_dict(data)

    def _quarantine(self, p: Path, reason: str) -> None:
        """Move a damaged record to trials/.damaged/ (never delete it) and log why."""
        stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S")
        moved = ""
        try:
            target = self.path("trials", DAMAGED_DIR, f"{p.name}.{stamp}")
            n = 1
            while target.exists():
                n += 1
                target = self.path("trials", DAMAGED_DIR, f"{p.name}.{stamp}.{n}")
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(p, target)
            moved = target.name
            entry = {"file": p.name, "reason": reason, "moved_to": moved, "at": stamp}
            with open(self.path("trials", DAMAGED_DIR, DAMAGE_LOG), "a", encoding="utf-8") as f:
                f.write(json.dumps(entry) + "\n")
        except (OSError, PathError):
            pass  # a read-only run dir: the record is still left out (and counted), just not moved
        self.quarantined.append(Damaged(file=p.name, reason=reason, moved_to=moved, at=stamp))
        return None

    def damaged(self) -> list[Damaged]:
        """Every record ever quarantined in this run dir (trials/.damaged/log.jsonl), oldest first,
        plus any this object could not move."""
        log = self.trials_dir / DAMAGED_DIR / DAMAGE_LOG
        out = []
        if log.is_file():
            for line in log.read_text(encoding="utf-8", errors="replace").splitlines():
                try:
                    e = json.loads(line)
                    out.append(Damaged(str(e["file"]), str(e["reason"]), str(e["moved_to"]), str(e.get("at", ""))))
                except (ValueError, KeyError, TypeError):
                    continue
        out += [d for d in self.quarantined if not d.moved_to]
        return out

    def pending(self, specs: list[TrialSpec], accept_halted: bool = True) -> list[TrialSpec]:
        """Specs with no final record: never run, or failed (failures are retried), or halted by halving when
        ``accept_halted`` is False (an exhaustive run trains every trial's whole budget)."""
        done = {r.trial_id for r in self.records(s.trial_id for s in specs) if r.status.is_final(accept_halted)}
        return [s for s in specs if s.trial_id not in done]
