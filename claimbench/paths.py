"""Names and paths: a name from a suite is never a path, and every path claimbench writes stays inside its root.

- ``check_name``: suite, group and claim names match ``NAME_PATTERN`` (letters, digits, ``_-.``,
  no leading dot, at most ``NAME_MAX`` characters), so that no name can climb out of a directory.
- ``inside``: THE one join of a root and a relative part (a suite's run dir under ``--out``, a record
  file under ``trials/``); it refuses a result that does not resolve inside the root (``..``, an
  absolute part, a symlink out).
- ``output_file`` / ``output_dir``: a path the user gave for an output, checked before any work:
  one line for a directory where a file belongs, a missing parent, a regular file on the way, or
  no write permission.
"""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path

from claimbench.errors import UserError

NAME_MAX = 64
NAME_PATTERN = re.compile(rf"[A-Za-z0-9_][A-Za-z0-9_.\-]{{0,{NAME_MAX - 1}}}")
NAME_RULE = f"letters, digits and _-. only, not starting with '.', at most {NAME_MAX} characters"


class PathError(UserError):
    """A name that is not a name, or an output path that cannot be written."""


def is_name(value: object) -> bool:
    return isinstance(value, str) and NAME_PATTERN.fullmatch(value) is not None


def check_name(value: object, where: str, what: str = "name") -> str:
    """``value`` if it is a safe name, else a one-line error naming ``where`` (file and key)."""
    if not is_name(value):
        shown = value if not isinstance(value, str) or len(value) <= 80 else value[:77] + "..."
        raise PathError(f"{what} must be {NAME_RULE}, got {shown!r}", where=where,
                        fix=f'rename it, e.g. {what} = "my_suite"')
    return value  # type: ignore[return-value]


def inside(root: str | Path, *parts: str) -> Path:
    """``root / parts...``, refused unless it resolves inside ``root`` (the one place this is checked)."""
    base = Path(root)
    target = base.joinpath(*parts)
    try:
        ok = target.resolve().is_relative_to(base.resolve()) and target.resolve() != base.resolve()
    except (OSError, RuntimeError):  # a symlink loop
        ok = False
    if not ok:
        raise PathError(f"path {os.path.join(*parts)!r} does not stay inside {str(base)!r}", where=str(base),
                        fix="names must be plain names; remove '..', '/' and symlinks that lead out")
    return target


def _first_existing(path: Path) -> Path:
    p = path
    while not p.exists() and p != p.parent:
        p = p.parent
    return p


def _writable_dir(d: Path) -> bool:
    """Whether a file can be created in ``d`` (tried, not guessed from mode bits: root ignores them)."""
    try:
        fd, tmp = tempfile.mkstemp(dir=d, prefix=".claimbench-probe.")
    except OSError:
        return False
    os.close(fd)
    os.unlink(tmp)
    return True


def output_file(path: str | Path, flag: str) -> Path:
    """An output file path (``-o``, ``--junit``, ``--markdown``): not a directory, its parent an existing
    writable directory, itself writable when it exists."""
    p = Path(path)
    fix = f"pass {flag} a file path in an existing, writable directory"
    if p.is_dir():
        raise PathError("is a directory, not a file", where=f"{flag} {p}", fix=f"pass {flag} {p / p.name}.EXT or another file path")
    parent = p.parent if str(p.parent) else Path(".")
    if not parent.exists():
        on_the_way = _first_existing(parent)
        if on_the_way.exists() and not on_the_way.is_dir():
            raise PathError(f"{on_the_way} is a file, not a directory", where=f"{flag} {p}", fix=fix)
        raise PathError(f"directory {parent} does not exist", where=f"{flag} {p}", fix=f"create it first (mkdir -p {parent}), or {fix}")
    if not parent.is_dir():
        raise PathError(f"{parent} is a file, not a directory", where=f"{flag} {p}", fix=fix)
    if (p.exists() and not os.access(p, os.W_OK)) or not _writable_dir(parent):
        raise PathError("is not writable (permission denied)", where=f"{flag} {p}", fix=fix)
    return p


def output_dir(path: str | Path, flag: str) -> Path:
    """An output directory (``--out``): a directory or creatable as one (no regular file on the way),
    writable when it exists."""
    p = Path(path)
    fix = f"pass {flag} a directory that you can write, or a new path"
    if p.exists() and not p.is_dir():
        raise PathError("exists and is not a directory", where=f"{flag} {p}", fix=fix)
    on_the_way = _first_existing(p)
    if not on_the_way.is_dir():
        raise PathError(f"{on_the_way} is a file, so nothing can be created under it", where=f"{flag} {p}", fix=fix)
    if not _writable_dir(on_the_way):
        raise PathError(f"{on_the_way} is not writable (permission denied)", where=f"{flag} {p}", fix=fix)
    return p
