"""The run directory: versioned, atomically written, one record per trial id, one writer at a time.

Layout::

    RUN_DIR/run.json             schema, suite (resolved), tier, command, environment, created
    RUN_DIR/trials/<id>.json     one TrialRecord per trial id
    RUN_DIR/trials/.damaged/     records that failed verification, moved here (never deleted), and log.jsonl
    RUN_DIR/.claimbench.lock     the advisory lock (fcntl) of the driver writing the dir, with its pid

Each record is written to a temporary file, flushed, fsynced and renamed into
place, so that killing the driver at any moment leaves every record either
whole or absent: a rerun of the same command trains exactly the trials that
have no final record (none, or ``failed``), and no trial appears twice.

Each record is verified when read: it is a regular file of at most ``MAX_RECORD_BYTES`` (opened
without blocking, checked after opening, read up to the limit: a FIFO, a device or a symlink to one
is damage, never a hang), it parses, its ``trial_id`` is its file's name and the hash of its own
spec, its fields have their types, and its ``digest`` is the hash of its content (so an edited metric
is found). One that fails is quarantined (moved to ``trials/.damaged/``, logged) and so retrained;
the run and the report say how many and which (``damaged()``).

A write the file system refuses for want of space, a read-only file system or permissions (ENOSPC,
EDQUOT, EROFS, EACCES, EPERM) is a ``StorageError``: one line naming the path and the fix (exit 2),
and a half-written file never replaces a whole one (``atomic_write_text``).

Every path written goes through ``RunStore.path`` (``paths.inside``): it
resolves inside the run dir or is refused.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import fcntl
import hashlib
import json
import math
import os
import socket
import stat
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable

import pandas as pd

from claimbench.errors import StoreError
from claimbench.paths import PathError, inside, output_dir
from claimbench.suite import Suite, expand
from claimbench.trial import RECORD_SCHEMA, TrialRecord, TrialStatus
from claimbench.workloads.builtin import TrialSpec

RUN_SCHEMA = 1
LOCK_FILE = ".claimbench.lock"
DAMAGED_DIR = ".damaged"
DAMAGE_LOG = "log.jsonl"
#: The largest record file read (a record is a few KiB; its curve grows with ``evals``).
MAX_RECORD_BYTES = 64 * 2**20
#: The locks this process holds: resolved run dir -> the open lock file. fcntl locks belong to an open
#: file, so a second open in the same process would conflict with the first; this keeps it one per dir.
_HELD: dict[str, int] = {}


#: The errors of a write that the user fixes (space, a read-only file system, permissions), by errno.
STORAGE_ERRNOS = {errno.ENOSPC: "no space left on the device", errno.EDQUOT: "the disk quota is exceeded",
                  errno.EROFS: "the file system is read-only", errno.EACCES: "permission denied",
                  errno.EPERM: "the operation is not permitted", errno.EFBIG: "the file is too large"}


class StorageError(StoreError):
    """A write (or read) the file system refused: one line naming the path and the fix."""


def storage_error(e: OSError, path: str | Path | None = None, what: str = "write") -> StorageError | None:
    """The StorageError of ``e`` when its errno is one the user fixes (``STORAGE_ERRNOS``), else None."""
    if e.errno not in STORAGE_ERRNOS:
        return None
    where = str(path or e.filename or "")
    fix = ("free space on that file system, or choose another output path" if e.errno in (errno.ENOSPC, errno.EDQUOT,
                                                                                            errno.EFBIG)
           else "make it writable, or choose another output path")
    return StorageError(f"cannot {what} it: {STORAGE_ERRNOS[e.errno]}", where=where or None, fix=fix)


def atomic_write_text(path: Path, text: str) -> None:
    """``text`` into ``path`` whole or not at all: a temporary file beside it, flushed, fsynced and renamed
    over it. A refused write (``STORAGE_ERRNOS``) is a StorageError naming ``path``; ``path`` is untouched."""
    path = Path(path)
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        os.chmod(tmp, 0o644)  # mkstemp's 0600 would hide results from other users of a shared run dir
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as e:
        if tmp is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
        error = storage_error(e, path)
        if error is None:
            raise
        raise error from None
    except BaseException:
        if tmp is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
        raise


@contextlib.contextmanager
def exclusive(path: str | Path) -> Iterable[None]:
    """Hold an exclusive advisory lock for writing ``path`` (a file several commands may update, such as a
    baseline): writers queue behind each other, so each can read, modify and write it in turn.

    The lock is taken on ``path``'s directory (``flock``: released when the holder exits, however it
    exits; nothing is left behind), or, where the file system cannot lock a directory, on a lock file
    ``.NAME.lock`` beside it."""
    parent = Path(path).parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(parent, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | getattr(os, "O_CLOEXEC", 0))
    except OSError as e:
        raise storage_error(e, parent, "open") or e from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
        except OSError:  # e.g. NFS, where flock is a POSIX lock and needs a file open for writing
            os.close(fd)
            lock = parent / f".{Path(path).name}.lock"
            try:
                fd = os.open(lock, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o644)
            except OSError as e:
                fd = -1
                raise storage_error(e, lock, "create") or e from None
            fcntl.lockf(fd, fcntl.LOCK_EX)
        yield
    finally:
        if fd >= 0:
            os.close(fd)  # closing drops the lock


class Unreadable(ValueError):
    """A file that is not one to read: not a regular file (a FIFO, a device), or larger than its limit."""


def read_bounded(path: str | Path, limit: int) -> bytes:
    """The bytes of the regular file ``path``, at most ``limit`` of them, read without ever blocking.

    Opened with O_NONBLOCK (a FIFO with no writer opens at once instead of waiting for one), then checked
    on the open descriptor (``fstat``: what was opened, not what the name pointed to a moment before): a
    FIFO, a device (a symlink to /dev/zero reports size 0) or a directory is ``Unreadable``, and so is a
    file larger than ``limit``, also when it grows while being read (at most ``limit + 1`` bytes are read).
    Other errors are OSError."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            kind = ("a directory" if stat.S_ISDIR(st.st_mode) else "a FIFO" if stat.S_ISFIFO(st.st_mode)
                    else "a device" if stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode) else "not a file")
            raise Unreadable(f"is {kind}, not a regular file")
        if st.st_size > limit:
            raise Unreadable(f"larger than {limit} bytes")
        chunks, n = [], 0
        while n <= limit:
            chunk = os.read(fd, min(1 << 20, limit + 1 - n))
            if not chunk:
                break
            chunks.append(chunk)
            n += len(chunk)
        if n > limit:
            raise Unreadable(f"larger than {limit} bytes")
        return b"".join(chunks)
    finally:
        os.close(fd)


def read_json_bounded(path: str | Path, limit: int) -> Any:
    """``read_bounded`` parsed as UTF-8 JSON (ValueError, Unreadable or RecursionError as json raises them)."""
    return json.loads(read_bounded(path, limit).decode("utf-8"))


#: The key of a record's content digest (``record_digest``), written beside its fields.
DIGEST_KEY = "digest"


def record_digest(data: dict[str, Any]) -> str:
    """The sha256 of a record's every field but the digest itself, as canonical JSON (sorted keys, no
    spaces): written with the record, checked when it is read, so an edited result is found."""
    body = {k: v for k, v in data.items() if k != DIGEST_KEY}
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass
class RunInfo:
    suite: Suite
    command: str
    environment: dict[str, Any]
    created: str


@dataclass(frozen=True)
class Damaged:
    """A record that failed verification, and where it was moved."""

    file: str  # its name under trials/
    reason: str
    moved_to: str  # its name under trials/.damaged/ ("" when it could not be moved: a read-only dir)
    at: str = ""


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


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
        key = str(self.dir.resolve())
        if key in _HELD:
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
        lock_path = self.path(LOCK_FILE)
        try:
            fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as e:
            raise StoreError(f"cannot open the lock file ({e.strerror})", where=str(lock_path),
                             fix="make the run dir writable, or choose another --out") from None
        try:
            announced = False
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    holder = _read_holder(fd)
                    if not wait:
                        raise StoreError(f"another claimbench ({holder}) is writing this run dir", where=str(self.dir),
                                         fix="wait for it to finish, pass --wait to queue behind it, or use another "
                                             "--out") from None
                    if not announced:
                        notes.append(f"waited for {holder}, which was writing {self.dir}")
                        announced = True
                    time.sleep(poll_s)
            previous = _read_holder(fd, raw=True)
            if previous:
                pid, host = _parse_holder(previous)
                same_host = host in ("", socket.gethostname())
                if pid and pid != os.getpid() and same_host and not _pid_alive(pid):
                    notes.append(f"took over the lock of {self.dir} left by pid {pid}, which is no longer running")
            try:
                os.ftruncate(fd, 0)
                os.pwrite(fd, f"pid {os.getpid()} host {socket.gethostname()} since "
                              f"{datetime.now(timezone.utc).isoformat(timespec='seconds')}\n".encode(), 0)
            except OSError as e:  # a full disk or quota: the lock is held, but who holds it cannot be written
                raise storage_error(e, lock_path) or e from None
        except BaseException:
            os.close(fd)
            raise
        _HELD[key] = fd
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
        fd = _HELD.pop(str(self.dir.resolve()), None)
        if fd is not None:
            try:
                os.ftruncate(fd, 0)  # a clean exit leaves no pid behind (a killed driver does: stale, taken over)
            except OSError:
                pass
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    # -- the run ----------------------------------------------------------
    def exists(self) -> bool:
        return (self.dir / "run.json").is_file()

    def init(self, suite: Suite, command: str, environment: dict[str, Any]) -> None:
        """Create the run dir, or record the suite as now resolved (records are kept either way).

        Takes the run dir's lock first (``open_for_writing``), unless this process holds it already."""
        self.open_for_writing()
        if self.exists():
            previous = self.info().suite  # refuses a run dir of another schema before anything is written
            if previous.name != suite.name:
                raise StoreError(f"holds a run of suite {previous.name!r}, not {suite.name!r}", where=str(self.dir),
                                 fix="choose another --out for this suite")
        self.path("trials").mkdir(parents=True, exist_ok=True)
        meta = {"schema": RUN_SCHEMA, "suite": suite.to_dict(), "command": command,
                "environment": environment, "created": datetime.now(timezone.utc).isoformat(timespec="seconds")}
        atomic_write_text(self.path("run.json"), json.dumps(meta, indent=1, default=str))

    def info(self) -> RunInfo:
        path = self.dir / "run.json"
        fix_rerun = "rerun `claimbench run` with this --out to rewrite it"
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
        try:
            suite = Suite.from_dict(meta["suite"])
            n = math.prod(len(a.values) for a in suite.axes) * len(suite.seeds)
            if n > suite.limit_table()["trials"]:
                raise ValueError(f"its matrix has {n:.3g} trials, above the limit of {suite.limit_table()['trials']}")
            specs = expand(suite)  # every trial of the recorded suite must still resolve
        except (KeyError, TypeError, ValueError, AttributeError, RecursionError) as e:
            what = f"lacks {e}" if isinstance(e, KeyError) else f"is malformed ({type(e).__name__}: {str(e)[:120]})"
            raise StoreError(f"run.json's suite {what}", where=f"{path}: suite", fix=fix_rerun) from None
        if not (isinstance(suite.name, str) and isinstance(suite.title, str) and specs is not None):
            raise StoreError("run.json's suite needs a name and a title (strings)", where=f"{path}: suite", fix=fix_rerun)
        return RunInfo(suite=suite, command=meta.get("command", ""),
                       environment=meta.get("environment", {}), created=meta.get("created", ""))

    # -- records ----------------------------------------------------------
    def append(self, record: TrialRecord) -> None:
        """Write ``record`` (whole or not at all), sealed with the digest of its content (``record_digest``)."""
        data = json.loads(json.dumps(record.to_dict(), default=str))  # as it will read back
        data[DIGEST_KEY] = record_digest(data)
        atomic_write_text(self.path("trials", f"{_plain_id(record.trial_id)}.json"), json.dumps(data))

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

    def pending(self, specs: list[TrialSpec]) -> list[TrialSpec]:
        """Specs with no final record: never run, or failed (failures are retried)."""
        done = {r.trial_id for r in self.records(s.trial_id for s in specs) if r.status.is_final()}
        return [s for s in specs if s.trial_id not in done]

    # -- frames -----------------------------------------------------------
    def frame(self) -> pd.DataFrame:
        """One row per trial of the run's current suite (see ``analysis.trial_frame``).

        ``frame.attrs["damaged"]`` lists the records quarantined in this run dir (see ``damaged()``)."""
        from claimbench.analysis.frames import trial_frame
        suite = self.info().suite
        ids = {s.trial_id for s in expand(suite)}
        tables = {a.name: [v for v in a.values] for a in suite.axes if a.is_table}
        frame = trial_frame(self.records(ids), tables)
        frame.attrs["damaged"] = [dataclasses.asdict(d) for d in self.damaged()]
        return frame


def _plain_id(trial_id: str) -> str:
    """A trial id is 16 hex digits; anything else would be a path."""
    if not (isinstance(trial_id, str) and len(trial_id) == 16 and all(c in "0123456789abcdef" for c in trial_id)):
        raise StoreError(f"trial id {trial_id!r} is not 16 hex digits", where="trials/",
                         fix="this is a bug: report it")
    return trial_id


def _read_holder(fd: int, raw: bool = False) -> str:
    try:
        text = os.pread(fd, 200, 0).decode("utf-8", "replace").strip()
    except OSError:
        text = ""
    if raw:
        return text
    pid, host = _parse_holder(text)
    return f"pid {pid}" + (f" on {host}" if host and host != socket.gethostname() else "") if pid else "a process"


def _parse_holder(text: str) -> tuple[int, str]:
    words = text.split()
    pid = int(words[1]) if len(words) > 1 and words[0] == "pid" and words[1].isdecimal() else 0
    host = words[3] if len(words) > 3 and words[2] == "host" else ""
    return pid, host


def release_all() -> None:
    """Give up every run-dir lock this process holds (the CLI calls it when a command ends)."""
    for key in list(_HELD):
        RunStore(key).release()


# ------------------------------------------------------------------ record verification

_INT, _NUM, _STR = "int", "number", "str"
_FIELD_TYPES: dict[str, tuple[str, bool]] = {  # field -> (type, may be null)
    "diverged_step": (_INT, True), "divergence_reason": (_STR, True), "steps_done": (_INT, False),
    "examples_done": (_INT, False), "steps_to_target": (_INT, True), "examples_to_target": (_INT, True),
    "best_step": (_INT, True), "time_per_step_s": (_NUM, True), "examples_per_s": (_NUM, True),
    "wall_s": (_NUM, False), "device": (_STR, False), "host": (_STR, False), "node_id": (_STR, False),
    "attempts": (_INT, False), "error": (_STR, True),
}


def _is(value: Any, kind: str) -> bool:
    if isinstance(value, bool):
        return False
    if kind == _INT:
        return isinstance(value, int)
    if kind == _NUM:
        return isinstance(value, (int, float))
    return isinstance(value, str)


def record_problem(data: Any, stem: str) -> str:
    """Why ``data`` (a parsed record file named ``stem``.json) is not a verified record; "" when it is."""
    if not isinstance(data, dict):
        return f"not a JSON object ({type(data).__name__})"
    if data.get("schema") != RECORD_SCHEMA:
        return f"no record schema (got {data.get('schema')!r})"
    tid = data.get("trial_id")
    if not isinstance(tid, str):
        return "no trial_id"
    if tid != stem:
        return f"holds the record of trial {tid[:40]!r}, not of {stem!r} (a copied or swapped file)"
    spec = data.get("spec")
    if not isinstance(spec, dict):
        return "no spec"
    try:
        real = TrialSpec.from_dict(spec).trial_id
    except (TypeError, ValueError, KeyError, AttributeError) as e:
        return f"its spec does not resolve ({type(e).__name__})"
    if real != tid:
        return f"its spec hashes to {real}, not to its trial_id (an edited record)"
    if data.get("status") not in {s.value for s in TrialStatus}:
        return f"unknown status {str(data.get('status'))[:40]!r}"
    metrics = data.get("metrics", {})
    if not isinstance(metrics, dict) or not all(isinstance(k, str) and (_is(v, _NUM) or v is None) for k, v in metrics.items()):
        return "metrics must be an object of numbers"
    for key in ("curve", "range_curve"):
        points = data.get(key, [])
        if not isinstance(points, list) or not all(
                isinstance(pt, dict) and all(_is(v, _NUM) or v is None or isinstance(v, bool) for v in pt.values())
                for pt in points):
            return f"{key} must be a list of objects of numbers"
    norms = data.get("grad_norms_init", [])
    if not isinstance(norms, list) or not all(_is(v, _NUM) for v in norms):
        return "grad_norms_init must be a list of numbers"
    for key, (kind, nullable) in _FIELD_TYPES.items():
        if key in data and not (_is(data[key], kind) or (nullable and data[key] is None)):
            return f"{key} must be {'a ' + kind if kind != _INT else 'an integer'}{' or null' if nullable else ''}"
    if "stopped_early" in data and not isinstance(data["stopped_early"], bool):
        return "stopped_early must be true or false"
    digest = data.get(DIGEST_KEY)
    if not isinstance(digest, str):
        return "no content digest (edited, or written before records carried one)"
    if digest != record_digest(data):
        return "its content does not match its digest (an edited record)"
    return ""


def load_results(run_dir: str | Path) -> pd.DataFrame:
    """One row per trial of a run: spec columns, ``status``, outcome and metric columns."""
    return RunStore(run_dir).frame()
