"""Executors behind one interface: ``executor.workers(note)`` (how many packs train at once, which
``make_packs`` sizes the packs for; ``note`` hears what it does meanwhile, e.g. Ray's start) and
``executor.run(packs, on_record, on_eval)`` (``on_eval(trial_id, step, total)`` at every evaluation
inside a pack still training: the progress bar moves before a pack ends).

``local`` trains in this process; ``ray`` drives long-lived actors on an
embedded local Ray or on a cluster (``address``). Both call ``on_record`` once
per trial as results arrive; the caller owns the store.
"""

from __future__ import annotations

from typing import Callable

from claimbench.errors import UserError
from claimbench.runner.local import LocalExecutor
from claimbench.runner.packs import DEFAULT_PACK_SIZE, cost, make_packs
from claimbench.runner.progress import RunProgress
from claimbench.runner.ray_executor import RayExecutor, pick_device, slots_on_nodes
from claimbench.trial import TrialRecord, TrialSpec

EXECUTORS = ("ray", "local")


def check_executor_options(name: str, address: str | None = None, cpus_per_trial: float | None = 1,
                           gpus_per_trial: float | None = 0) -> None:
    """UserError for an unknown executor or bad slot resources (None: the suite's default), before any work."""
    if name not in EXECUTORS:
        raise UserError(f"unknown executor {name!r}", where="--executor", fix=f"use one of: {', '.join(EXECUTORS)}")
    if name == "local" and address:
        raise UserError("--address attaches to a Ray cluster, which the local executor does not use",
                        where="--address", fix="drop --address or use --executor ray")
    if cpus_per_trial is not None and not (isinstance(cpus_per_trial, (int, float)) and cpus_per_trial > 0):
        raise UserError(f"cpus per trial must be > 0, got {cpus_per_trial!r}", where="--cpus-per-trial",
                        fix="pass a positive number, e.g. 1 or 0.5")
    if gpus_per_trial is not None and not (isinstance(gpus_per_trial, (int, float)) and gpus_per_trial >= 0):
        raise UserError(f"gpus per trial must be >= 0, got {gpus_per_trial!r}", where="--gpus-per-trial",
                        fix="pass 0, a fraction such as 0.25, or a whole number")


def make_executor(name: str, address: str | None = None, cpus_per_trial: float = 1, gpus_per_trial: float = 0,
                  faults: tuple = ()):
    """The executor ``name``; the resources of one slot matter to Ray only (local trains in this process)."""
    check_executor_options(name, address, cpus_per_trial, gpus_per_trial)
    if name == "local":
        return LocalExecutor(faults=faults)
    if name == "ray":
        return RayExecutor(address=address, cpus_per_trial=cpus_per_trial, gpus_per_trial=gpus_per_trial, faults=faults)


def run_trials(specs: list[TrialSpec], executor, on_record: Callable[[TrialRecord], None],
               pack_size: int = DEFAULT_PACK_SIZE, progress: bool = True) -> None:
    """Run ``specs`` in packs (``make_packs``: as wide as the measured width, memory and load balance
    allow, at most ``pack_size``; exclusive timing trials last, alone); ``on_record`` sees each record
    as it arrives (then the progress bar)."""
    if not specs:
        return
    costs = {s.trial_id: cost(s) for s in specs}
    with RunProgress(len(specs), enabled=progress, total_cost=sum(costs.values())) as bar:
        # the executor says what it does before training starts (Ray's start) and while it waits
        packs = make_packs(specs, pack_size, workers=executor.workers(note=bar.note))

        def handle(record: TrialRecord) -> None:
            on_record(record)
            bar.update(record, costs.get(record.trial_id, 0.0))

        def evaluated(trial_id: str, step: int, total: int) -> None:
            bar.on_eval(trial_id, step, total, costs.get(trial_id, 0.0))

        executor.run(packs, handle, on_eval=evaluated if progress else None)  # none: Ray makes no sink actor


__all__ = ["EXECUTORS", "LocalExecutor", "RayExecutor", "make_executor", "make_packs", "pick_device", "run_trials",
           "slots_on_nodes"]
