"""The driver's side of a run: specs into packs (``packs.make_packs``, sized for the executor's workers),
the packs through an executor (``base.Executor.run``), each record to the caller as it arrives, with a
progress bar (``progress.RunProgress``) that moves by estimated cost (``packs.cost``)."""

from __future__ import annotations

from typing import Callable

from claimbench.runner.base import Executor
from claimbench.runner.packs import DEFAULT_PACK_SIZE, cost, make_packs
from claimbench.runner.progress import RunProgress
from claimbench.runner.timeouts import default_timeout
from claimbench.trial import TrialRecord
from claimbench.workloads.builtin import TrialSpec


def run_trials(specs: list[TrialSpec], executor: Executor, on_record: Callable[[TrialRecord], None],
               pack_size: int = DEFAULT_PACK_SIZE, progress: bool = True,
               timeouts: dict[str, float] | None = None) -> None:
    """Run ``specs`` in packs (``make_packs``: as wide as the measured width, memory and load balance
    allow, at most ``pack_size``; exclusive timing trials last, alone); ``on_record`` sees each record
    as it arrives (then the progress bar). ``timeouts``: each trial's limit in seconds
    (``timeouts.trial_timeouts``; ``default_timeout`` for a trial it lacks)."""
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
