"""Executors behind one interface: ``executor.workers(note)`` (how many packs train at once, which
``make_packs`` sizes the packs for; ``note`` hears what it does meanwhile, e.g. Ray's start) and
``executor.run(packs, on_record, on_eval, timeouts)`` (``on_eval(trial_id, step, total)`` at every
evaluation inside a pack still training: the progress bar moves before a pack ends; ``timeouts``: each
trial's wall-clock limit in seconds).

``local`` trains in this process; ``ray`` drives long-lived actors on an
embedded local Ray or on a cluster (``address``). Both call ``on_record`` once
per trial as results arrive; the caller owns the store.

Every trial has a wall-clock limit (``trial_timeouts``): a suite's ``[limits] trial_timeout``, or
``--trial-timeout``, else the dry-run estimate of the trial (``plan.model_seconds`` scaled by what the
run dir's records took) times ``TIMEOUT_SAFETY``, at least ``TIMEOUT_FLOOR_S``. A trial past it is
recorded ``failed`` ("timed out after N s") and the run goes on, on both executors; a user's workload
trains in a child process (``child.py``), so that a hang, an exit or a crash is a failed record.
"""

from __future__ import annotations

from typing import Callable

from claimbench.errors import UserError
from claimbench.runner.local import LocalExecutor
from claimbench.runner.packs import DEFAULT_PACK_SIZE, cost, make_packs
from claimbench.runner.progress import RunProgress
from claimbench.runner.ray_executor import RayExecutor, pick_device, slots_on_nodes
from claimbench.trial import TrialRecord
from claimbench.workloads.builtin import TrialSpec

EXECUTORS = ("ray", "local")
#: The default limit of a trial: its estimated seconds times this (the estimate is rough: a factor of 5 either
#: way without records, reports/performance.md) ...
TIMEOUT_SAFETY = 10.0
#: ... and never under this many seconds (a first trial also builds or downloads its dataset).
TIMEOUT_FLOOR_S = 300.0
#: Completed records read to scale the estimate (a sample: reading every record of a large run dir costs seconds).
_SCALE_SAMPLE = 200


def default_timeout(spec: TrialSpec, scale: float = 1.0) -> float:
    """A trial's limit when none is set: the dry-run estimate (``plan.model_seconds`` x ``scale``) x
    ``TIMEOUT_SAFETY``, at least ``TIMEOUT_FLOOR_S``."""
    from claimbench.plan import model_seconds

    return max(TIMEOUT_FLOOR_S, TIMEOUT_SAFETY * scale * model_seconds(spec))


def trial_timeouts(plans: list, flag: float | None = None) -> dict[str, float]:
    """Each pending trial's limit in seconds: ``flag`` (``--trial-timeout``), else its suite's ``[limits]
    trial_timeout``, else ``default_timeout`` scaled as the dry run scales its estimate (the run dir's
    completed records: their seconds over the model's). ``plans``: (suite, store, specs, pending) per
    suite; a trial of several suites gets the largest."""
    from claimbench.plan import model_seconds

    out: dict[str, float] = {}
    for suite, store, specs, pending in plans:
        if not pending:
            continue
        explicit = flag or suite.limit_table().get("trial_timeout") or None
        scale = 1.0
        if explicit is None:
            waiting = {s.trial_id for s in pending}
            done = [s.trial_id for s in specs if s.trial_id not in waiting][:_SCALE_SAMPLE]
            records = [r for r in store.records(done) if r.status.value == "completed" and r.wall_s > 0]
            modelled = sum(model_seconds(TrialSpec.from_dict(r.spec)) for r in records)
            if records and modelled > 0:
                scale = max(1.0, sum(r.wall_s for r in records) / modelled)
        for spec in pending:
            limit = float(explicit) if explicit is not None else default_timeout(spec, scale)
            out[spec.trial_id] = max(out.get(spec.trial_id, 0.0), limit)
    return out


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
               pack_size: int = DEFAULT_PACK_SIZE, progress: bool = True,
               timeouts: dict[str, float] | None = None) -> None:
    """Run ``specs`` in packs (``make_packs``: as wide as the measured width, memory and load balance
    allow, at most ``pack_size``; exclusive timing trials last, alone); ``on_record`` sees each record
    as it arrives (then the progress bar). ``timeouts``: each trial's limit in seconds (``trial_timeouts``;
    ``default_timeout`` for a trial it lacks)."""
    if not specs:
        return
    timeouts = {s.trial_id: (timeouts or {}).get(s.trial_id) or default_timeout(s) for s in specs}
    costs = {s.trial_id: cost(s) for s in specs}
    with RunProgress(len(specs), enabled=progress, total_cost=sum(costs.values())) as bar:
        # the executor says what it does before training starts (Ray's start) and while it waits
        packs = make_packs(specs, pack_size, workers=executor.workers(note=bar.note))

        def handle(record: TrialRecord) -> None:
            on_record(record)
            bar.update(record, costs.get(record.trial_id, 0.0))

        def evaluated(trial_id: str, step: int, total: int) -> None:
            bar.on_eval(trial_id, step, total, costs.get(trial_id, 0.0))

        executor.run(packs, handle, on_eval=evaluated if progress else None,  # none: Ray makes no sink actor
                     timeouts=timeouts)


__all__ = ["EXECUTORS", "LocalExecutor", "RayExecutor", "default_timeout", "make_executor", "make_packs", "pick_device",
           "run_trials", "slots_on_nodes", "trial_timeouts"]
