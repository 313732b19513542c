"""The one table of executors: claimbench's own (``ray``, ``local``) and every installed package's, found
through the entry-point group ``claimbench.executors``, as workloads are found through theirs.

claimbench declares its built-ins in its pyproject.toml, through the same door as a user's::

    [project.entry-points."claimbench.executors"]
    ray = "claimbench.runner.ray_executor:RayExecutor"
    local = "claimbench.runner.local:LocalExecutor"

and a package adds ``slurm = "myteam.slurm:SlurmExecutor"`` (a subclass of ``base.Executor``) the same way.
``--executor NAME`` is looked up by name in this table and nowhere else: a name is never a path or a module.
"""

from __future__ import annotations

from importlib import metadata

from claimbench.errors import UserError
from claimbench.runner.base import Executor
from claimbench.runner.faults import Fault

#: The entry-point group executors register in.
GROUP = "claimbench.executors"
#: The built-ins, as pyproject.toml declares them: the table used where claimbench runs from a source tree
#: whose metadata lacks them (never installed, or installed before they were declared).
BUILTINS = {"ray": "claimbench.runner.ray_executor:RayExecutor", "local": "claimbench.runner.local:LocalExecutor"}
#: How to register an executor: the fix of every "unknown executor" error.
HOW_TO_REGISTER = ('register one in its package\'s pyproject.toml: [project.entry-points."claimbench.executors"] '
                   'slurm = "myteam.slurm:SlurmExecutor", then pip install it')


def _entry_points() -> dict[str, metadata.EntryPoint]:
    found: dict[str, metadata.EntryPoint] = {}
    for ep in metadata.entry_points(group=GROUP):
        found.setdefault(ep.name, ep)
    for name, target in BUILTINS.items():
        found.setdefault(name, metadata.EntryPoint(name, target, GROUP))
    return found


def names() -> list[str]:
    """Every registered executor's name: the built-ins first (``ray``, the default), then the others, sorted."""
    found = _entry_points()
    return [*BUILTINS, *sorted(n for n in found if n not in BUILTINS)]


def get(name: str) -> type[Executor]:
    """The executor class registered as ``name`` (its module imported). UserError (one line, exit 2) when
    no package registers it, its module fails to import, or it is not a ``base.Executor`` named ``name``."""
    ep = _entry_points().get(name) if isinstance(name, str) else None
    if ep is None:
        shown = repr(name)[:80]
        raise UserError(f"unknown executor {shown} (registered: {', '.join(names())})", where="--executor",
                        fix=f"use one of them, or {HOW_TO_REGISTER}")
    try:
        cls = ep.load()
    except Exception as e:  # the package's own import failed: its error, on one line
        text = " ".join(f"{type(e).__name__}: {e}".split())[:300]
        raise UserError(f"executor {name!r} ({ep.value}) failed to import: {text}", where="--executor",
                        fix="install the package that provides it, with its dependencies") from None
    if not (isinstance(cls, type) and issubclass(cls, Executor)):
        raise UserError(f"entry point {name!r} ({ep.value}) is not a subclass of claimbench.runner.base.Executor",
                        where="--executor", fix="point the entry point at an Executor subclass")
    if cls.name != name:
        raise UserError(f"entry point {name!r} ({ep.value}) holds the executor named {cls.name!r}",
                        where="--executor", fix=f"register it as {cls.name!r}, or name it {name!r}")
    return cls


def check_executor_options(name: str, address: str | None = None, cpus_per_trial: float | None = 1,
                           gpus_per_trial: float | None = 0) -> type[Executor]:
    """The executor class ``name``, or a UserError for an unknown one, an option it does not use or bad slot
    resources (None: the suite's default), before any work."""
    cls = get(name)
    cls.check_options(address)
    if cpus_per_trial is not None and not (isinstance(cpus_per_trial, (int, float)) and cpus_per_trial > 0):
        raise UserError(f"cpus per trial must be > 0, got {cpus_per_trial!r}", where="--cpus-per-trial",
                        fix="pass a positive number, e.g. 1 or 0.5")
    if gpus_per_trial is not None and not (isinstance(gpus_per_trial, (int, float)) and gpus_per_trial >= 0):
        raise UserError(f"gpus per trial must be >= 0, got {gpus_per_trial!r}", where="--gpus-per-trial",
                        fix="pass 0, a fraction such as 0.25, or a whole number")
    return cls


def make_executor(name: str, address: str | None = None, cpus_per_trial: float = 1, gpus_per_trial: float = 0,
                  faults: tuple[Fault, ...] = ()) -> Executor:
    """The executor ``name`` (``--executor``), made with the command line's options: the resources of one
    slot and ``--address`` matter to the executors that use them (Ray)."""
    cls = check_executor_options(name, address, cpus_per_trial, gpus_per_trial)
    return cls.create(faults=faults, address=address, cpus_per_trial=cpus_per_trial, gpus_per_trial=gpus_per_trial)
