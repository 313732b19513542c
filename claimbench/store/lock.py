"""Locks: the one writer of a run dir (``acquire``, ``release``), and writers of a shared file queued
behind each other (``exclusive``).

A run dir's lock is an advisory ``flock`` on ``RUN_DIR/.claimbench.lock``, which names its holder (pid,
host, since when): released when the holder exits, however it exits; a lock file left by a driver that
is no longer running is taken over, and the run says so.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import socket
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterable

from claimbench.errors import StoreError
from claimbench.store.files import storage_error

LOCK_FILE = ".claimbench.lock"
#: The locks this process holds: resolved run dir -> the open lock file. fcntl locks belong to an open
#: file, so a second open in the same process would conflict with the first; this keeps it one per dir.
_HELD: dict[str, int] = {}


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


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


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


def held(run_dir: str | Path) -> bool:
    """Whether this process holds ``run_dir``'s lock."""
    return str(Path(run_dir).resolve()) in _HELD


def acquire(run_dir: str | Path, lock_path: Path, wait: bool = False, poll_s: float = 0.2) -> list[str]:
    """Take ``run_dir``'s lock (the file ``lock_path`` in it, which then names this process); returns notes for
    the user (waited for a driver, took over a stale lock). Another driver holding it is a StoreError naming
    its pid, unless ``wait`` (then this waits for it to finish)."""
    notes: list[str] = []
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
                    raise StoreError(f"another claimbench ({holder}) is writing this run dir", where=str(run_dir),
                                     fix="wait for it to finish, pass --wait to queue behind it, or use another "
                                         "--out") from None
                if not announced:
                    notes.append(f"waited for {holder}, which was writing {run_dir}")
                    announced = True
                time.sleep(poll_s)
        previous = _read_holder(fd, raw=True)
        if previous:
            pid, host = _parse_holder(previous)
            same_host = host in ("", socket.gethostname())
            if pid and pid != os.getpid() and same_host and not _pid_alive(pid):
                notes.append(f"took over the lock of {run_dir} left by pid {pid}, which is no longer running")
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"pid {os.getpid()} host {socket.gethostname()} since "
                          f"{datetime.now(timezone.utc).isoformat(timespec='seconds')}\n".encode(), 0)
        except OSError as e:  # a full disk or quota: the lock is held, but who holds it cannot be written
            raise storage_error(e, lock_path) or e from None
    except BaseException:
        os.close(fd)
        raise
    _HELD[str(Path(run_dir).resolve())] = fd
    return notes


def release(run_dir: str | Path) -> None:
    """Give up the lock this process holds on ``run_dir`` (if any)."""
    fd = _HELD.pop(str(Path(run_dir).resolve()), None)
    if fd is not None:
        try:
            os.ftruncate(fd, 0)  # a clean exit leaves no pid behind (a killed driver does: stale, taken over)
        except OSError:
            pass
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def release_all() -> None:
    """Give up every run-dir lock this process holds (the CLI calls it when a command ends)."""
    for key in list(_HELD):
        release(key)
