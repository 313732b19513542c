"""Files written whole or not at all, and read without ever blocking: the primitives every file claimbench
writes or reads back goes through (run dirs, reports, baselines, suites).

A write the file system refuses for want of space, a read-only file system or permissions (ENOSPC,
EDQUOT, EROFS, EACCES, EPERM, EFBIG) is a ``StorageError``: one line naming the path and the fix (exit
2), and a half-written file never replaces a whole one (``atomic_write_text``). A read is of a regular
file, bounded in size (``read_bounded``): a FIFO, a device or a symlink to one is ``Unreadable``, never a
hang.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import stat
import tempfile
from pathlib import Path
from typing import Any

from claimbench.errors import StoreError

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
