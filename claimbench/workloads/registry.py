"""The table of workloads: claimbench's built-ins and every installed package's workloads, found through
the entry-point group ``claimbench.workloads`` (as pytest finds plugins).

- ``installed()`` / ``get(name)``: the registered workloads. claimbench registers its own built-ins
  under the name ``claimbench`` through the same entry point (pyproject.toml; builtin/); a user's package adds
  ``[project.entry-points."claimbench.workloads"] "myteam.resnet" = "myteam.workloads:RESNET"``.
- ``fingerprint(name)``: the code fingerprint that goes into every trial id (``TrialSpec.code``):
  the distribution's name and version and a hash of the package's source files; for the built-ins
  a hash of claimbench's own ``train/`` and ``workloads/`` sources. Editing the code yields new ids.

Torch-free: a workload's module is imported only when ``get`` loads it.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
from importlib import metadata
from pathlib import Path
from typing import Any

from claimbench.errors import UserError
from claimbench.trial import BUILTIN
from claimbench.workloads.spec import DefinitionError, Workload

#: The entry-point group workloads register in.
GROUP = "claimbench.workloads"
#: The built-in entry point's target, used when claimbench runs from a source tree that was never installed.
BUILTIN_TARGET = "claimbench.workloads.builtin:WORKLOAD"
#: How to register a workload: the fix of every "unknown workload" error.
HOW_TO_REGISTER = ('register one in its package\'s pyproject.toml: [project.entry-points."claimbench.workloads"] '
                   '"myteam.resnet" = "myteam.workloads:RESNET", then pip install it (see README, "Your own model")')


# ---------------------------------------------------------------- entry points

class WorkloadError(UserError):
    """A workload that is not installed, cannot be imported, or breaks the contract (spec.py).
    ``message``: the rule and the value alone (without where and fix), for a trial's one-line error."""

    def __init__(self, message: str, *, where: str | None = None, fix: str | None = None):
        self.message = message
        super().__init__(message, where=where, fix=fix)


def _entry_points() -> dict[str, metadata.EntryPoint]:
    found: dict[str, metadata.EntryPoint] = {}
    for ep in metadata.entry_points(group=GROUP):
        found.setdefault(ep.name, ep)
    if BUILTIN not in found:  # a source tree run without an install: the built-ins are always there
        found[BUILTIN] = metadata.EntryPoint(BUILTIN, BUILTIN_TARGET, GROUP)
    return found


def installed() -> list[str]:
    """The names of every registered workload, sorted (the built-ins' ``claimbench`` among them)."""
    return sorted(_entry_points())


def distribution(name: str) -> tuple[str, str]:
    """(distribution name, version) of the package that registers workload ``name``; ("", "") if unknown."""
    ep = _entry_points().get(name)
    dist = getattr(ep, "dist", None) if ep is not None else None
    if dist is None:
        if name == BUILTIN:
            return "claimbench", _version("claimbench")
        return "", ""
    return dist.metadata["Name"], dist.version


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "0+source"


def unknown_error(name: str, where: str) -> WorkloadError:
    return WorkloadError(f"no workload named {name!r} is installed (installed: {', '.join(installed())})",
                         where=where, fix=HOW_TO_REGISTER)


_LOADED: dict[str, Any] = {}


def get(name: str, where: str = "") -> Workload:
    """The workload registered as ``name``, loaded (its module imported) once per process.

    WorkloadError (one line) when no installed package registers it, when its module fails to import
    (e.g. a Ray worker without the package), or when it is not a ``spec.Workload`` named ``name``."""
    if name in _LOADED:
        return _LOADED[name]
    ep = _entry_points().get(name)
    if ep is None:
        raise unknown_error(name, where or f"workload {name!r}")
    try:
        obj = ep.load()
    except DefinitionError as e:  # the package imports, but defines its workload against the contract
        raise WorkloadError(f"workload {name!r} ({ep.value}): {e}", where=where or ep.value, fix=e.fix) from None
    except Exception as e:  # the package's own import failed: its error, on one line
        text = " ".join(f"{type(e).__name__}: {e}".split())
        raise WorkloadError(f"workload {name!r} ({ep.value}) failed to import: {text}", where=where or ep.value,
                            fix="install the package that provides it, with its dependencies") from None
    if callable(obj) and not isinstance(obj, Workload):
        obj = obj()  # a factory: ``name = "pkg.mod:make_workload"``
    if not isinstance(obj, Workload):
        raise WorkloadError(f"entry point {name!r} ({ep.value}) is a {type(obj).__name__}, not a "
                            "claimbench.workloads.spec.Workload", where=where or ep.value,
                            fix="point the entry point at a Workload(...) object or a function returning one")
    if obj.name != name:
        raise WorkloadError(f"entry point {name!r} ({ep.value}) holds a workload named {obj.name!r}",
                            where=where or ep.value, fix=f"register it as {obj.name!r}, or name it {name!r}")
    _LOADED[name] = obj
    return obj


def not_applicable(name: str) -> tuple[str, ...]:
    """The built-in settings workload ``name`` does not read (``Workload.not_applicable``): what its records
    mark not applicable. () for the built-ins, and for a workload that does not load here (its trials failed)."""
    if name == BUILTIN:
        return ()
    try:
        return get(name).not_applicable
    except WorkloadError:
        return ()


# ---------------------------------------------------------------- code fingerprints

_FINGERPRINTS: dict[tuple, str] = {}


def source_files(name: str) -> list[Path]:
    """The source files whose content makes workload ``name``'s fingerprint: every .py file of the
    top-level package that holds its entry point; for the built-ins, claimbench's train/ and workloads/."""
    if name == BUILTIN:
        root = Path(__file__).resolve().parent.parent
        return sorted([*(root / "train").rglob("*.py"), *(root / "workloads").rglob("*.py")])
    ep = _entry_points().get(name)
    if ep is None:
        raise unknown_error(name, f"workload {name!r}")
    top = ep.value.split(":", 1)[0].strip().split(".", 1)[0]
    found = importlib.util.find_spec(top)
    if found is None:
        raise unknown_error(name, f"workload {name!r}")
    if found.submodule_search_locations:  # a package: all of its modules
        return sorted(p for loc in found.submodule_search_locations for p in Path(loc).rglob("*.py"))
    return [Path(found.origin)] if found.origin else []


def fingerprint(name: str) -> str:
    """``"<distribution> <version> <sha256 of the sources, 12 hex>"``: the code that trains workload ``name``
    (``"claimbench <sha256, 12 hex>"`` for the built-ins).

    Recomputed when a source file's size or modification time changes (cached otherwise)."""
    files = source_files(name)
    stats = tuple((str(p), p.stat().st_mtime_ns, p.stat().st_size) for p in files)
    key = (name, stats)
    if key not in _FINGERPRINTS:
        digest = hashlib.sha256()
        base = _common_folder(files)
        for p in files:  # relative paths: where the checkout lies is not hashed
            digest.update(str(p.relative_to(base)).encode() + b"\0" + p.read_bytes() + b"\0")
        if name == BUILTIN:  # the code alone: a version bump that changes no code retrains nothing
            _FINGERPRINTS[key] = f"claimbench {digest.hexdigest()[:12]}"
        else:
            dist, version = distribution(name)
            _FINGERPRINTS[key] = f"{dist or name} {version or '?'} {digest.hexdigest()[:12]}"
    return _FINGERPRINTS[key]


def _common_folder(files: list[Path]) -> Path:
    """The deepest folder that holds every file."""
    if not files:
        return Path("/")
    parts = [f.parent.parts for f in files]
    n = 0
    while all(len(q) > n for q in parts) and len({q[n] for q in parts}) == 1:
        n += 1
    return Path(*parts[0][:n])
