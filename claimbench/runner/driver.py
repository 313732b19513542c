"""The driver's side of a run: specs into packs (``packs.make_packs``, sized for the executor's workers),
the packs through an executor (``base.Executor.run``), each record to the caller as it arrives, with a
progress bar (``progress.RunProgress``) whose ETA is the cost model's (``runner.cost``), corrected by the trials
this run finished."""

from __future__ import annotations

from typing import Callable

from claimbench.runner.base import Executor
from claimbench.runner.cost import CostModel
from claimbench.runner.packs import DEFAULT_PACK_SIZE, halving_units, make_packs
from claimbench.runner.progress import RunProgress
from claimbench.runner.timeouts import default_timeout
from claimbench.trial import TrialRecord
from claimbench.workloads.builtin import TrialSpec


def run_trials(specs: list[TrialSpec], executor: Executor, on_record: Callable[[TrialRecord], None],
               pack_size: int = DEFAULT_PACK_SIZE, progress: bool = True,
               timeouts: dict[str, float] | None = None, model: CostModel | None = None,
               halving: dict[str, dict] | None = None,
               more: Callable[[], tuple[list[TrialSpec], dict[str, float], dict[str, dict]]] | None = None) -> None:
    """Run ``specs`` in packs (``make_packs``: as wide as the measured width, memory and load balance
    allow, at most ``pack_size``; exclusive timing trials last, alone); ``on_record`` sees each record
    as it arrives (then the progress bar). ``timeouts``: each trial's limit in seconds
    (``timeouts.trial_timeouts``; ``default_timeout`` for a trial it lacks). ``model``: the cost model the
    ETA starts from (the default model without one). ``halving``: trial id -> its halving directive (the
    experimenter loop's ``halve`` rule): its groups go out in one pack where the width allows
    (``make_packs``'s ``together``), and the directives travel with the packs as the timeouts do.
    ``more``: asked as records arrive for trials to add to the run, with their limits and directives (the
    experimenter loop's next rounds, ``loop.Rounds``); each batch is packed on its own, and the bar's count
    and ETA grow with it."""
    model = model or CostModel()
    if not specs:
        return

    def limits(batch: list[TrialSpec], given: dict[str, float] | None) -> dict[str, float]:
        return {s.trial_id: (given or {}).get(s.trial_id) or default_timeout(s, model) for s in batch}

    def directives(batch: list[TrialSpec], given: dict[str, dict] | None) -> dict[str, dict]:
        return {s.trial_id: given[s.trial_id] for s in batch if s.trial_id in (given or {})}

    with RunProgress(len(specs), enabled=progress) as bar:
        # the executor says what it does before training starts (Ray's start) and while it waits
        workers = executor.workers(note=bar.note)
        packs = make_packs(specs, pack_size, workers=workers, together=halving_units(halving or {}))
        bar.plan(packs, model, workers)

        def handle(record: TrialRecord) -> None:
            on_record(record)
            bar.update(record)

        def feed() -> tuple[list[list[TrialSpec]], dict[str, float], dict[str, dict]]:
            batch, given, halves = more()
            if not batch:
                return [], {}, {}
            new = make_packs(batch, pack_size, workers=workers, together=halving_units(halves or {}))
            bar.add(new, len(batch))
            return new, limits(batch, given), directives(batch, halves)

        extra = {"feed": feed} if more is not None else {}  # an executor's own run() may not take them
        if found := directives(specs, halving):
            extra["halving"] = found
        executor.run(packs, handle, on_eval=bar.on_eval if progress else None,  # none: Ray makes no sink actor
                     timeouts=limits(specs, timeouts), **extra)
