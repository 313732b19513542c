"""The in-process executor: packs run one after another in this process (debugging, tests).

One worker: nothing else trains while a pack runs, so exclusive (timing) packs need no drain. They
train on ``TIMING_THREADS`` torch threads, as on a Ray slot of one CPU: with more threads on a
machine that other work shares, each forward waits for whichever thread the OS has descheduled
(measured: a 0.35 ms forward of A2's MLP read 83 ms with two threads at load 8 on 2 cores).

Every trial has a wall-clock limit (``timeouts``, seconds per trial id). A user's workload trains in a
child process (``child.run_isolated``), so that a hang, ``sys.exit`` or a segfault is a failed record
and the run goes on. The built-in workloads train here, under an alarm of their pack's summed limits
(``child.alarm``): past it, every trial of the pack still training fails ("timed out after N s").
"""

from __future__ import annotations

from typing import Callable

from claimbench.faults import Fault, as_trial, corrupted, should_crash, should_raise
from claimbench.runner.child import Isolator, TrialTimeout, alarm, needs_child, run_isolated, timed_out_text
from claimbench.trial import TrialRecord
from claimbench.workloads.builtin import TrialSpec

#: Torch threads while an exclusive (timing) pack trains in this process.
TIMING_THREADS = 1


class LocalExecutor:
    name = "local"

    def __init__(self, faults: tuple[Fault, ...] = ()) -> None:
        from claimbench.workloads.data import DataCache  # torch loads when an executor is made, not on import

        self.cache = DataCache()
        self.faults = faults

    def workers(self, note: Callable[[str], None] | None = None) -> int:
        """Packs that train at once: one."""
        return 1

    def run(self, packs: list[list[TrialSpec]], on_record: Callable[[TrialRecord], None],
            on_eval: Callable[[str, int, int], None] | None = None,
            timeouts: dict[str, float] | None = None) -> None:
        """Train ``packs`` in turn; ``on_eval(trial_id, step, total)`` hears each evaluation as it happens;
        ``timeouts`` are the trials' wall-clock limits in seconds (none where absent)."""
        import contextlib

        import torch

        from claimbench.train import train_pack
        from claimbench.train.policy import observing

        timeouts = timeouts or {}
        threads = torch.get_num_threads()
        isolator = Isolator()  # its helper starts with the first trial of a user's workload
        try:
            for pack in packs:
                torch.set_num_threads(TIMING_THREADS if pack and all(s.exclusive for s in pack) else threads)
                crashed = [s for s in pack if should_crash(self.faults, s.trial_id, 1)]
                for spec in crashed:
                    on_record(TrialRecord.failed(spec, "worker crashed (injected fault); the local executor does not retry"))
                pack = [s for s in pack if s not in crashed]
                isolated = [s for s in pack if needs_child(s)]
                if isolated:
                    run_isolated(isolated, timeouts, self.faults, on_record, on_eval,
                                 threads=torch.get_num_threads(), isolator=isolator)
                pack = [s for s in pack if not needs_child(s)]
                if not pack:
                    continue
                limits = [timeouts.get(s.trial_id) for s in pack]
                limit = sum(limits) if all(x is not None for x in limits) else None
                text = timed_out_text(limit, len(pack)) if limit is not None else ""
                try:
                    with alarm(limit, text), (observing(on_eval) if on_eval else contextlib.nullcontext()):
                        records = train_pack([corrupted(self.faults, s) for s in pack], self.cache,
                                             inject_error=[should_raise(self.faults, s.trial_id) for s in pack])
                except TrialTimeout as e:  # past the policy's own catch: none of the pack's records came back
                    records = [TrialRecord.failed(s, str(e)) for s in pack]
                for record, spec in zip(records, pack):
                    on_record(as_trial(record, spec))
        finally:
            isolator.close()
            torch.set_num_threads(threads)
