"""The in-process executor: packs run one after another in this process (debugging, tests).

One worker: nothing else trains while a pack runs, so exclusive (timing) packs need no drain.
"""

from __future__ import annotations

from typing import Callable

from claimbench.faults import Fault, as_trial, corrupted, should_crash, should_raise
from claimbench.trial import TrialRecord, TrialSpec


class LocalExecutor:
    name = "local"

    def __init__(self, faults: tuple[Fault, ...] = ()) -> None:
        from claimbench.workloads import DataCache  # torch loads when an executor is made, not on import

        self.cache = DataCache()
        self.faults = faults

    def workers(self) -> int:
        """Packs that train at once: one."""
        return 1

    def run(self, packs: list[list[TrialSpec]], on_record: Callable[[TrialRecord], None]) -> None:
        from claimbench.train import train_pack

        for pack in packs:
            crashed = [s for s in pack if should_crash(self.faults, s.trial_id, 1)]
            for spec in crashed:
                on_record(TrialRecord.failed(spec, "worker crashed (injected fault); the local executor does not retry"))
            pack = [s for s in pack if s not in crashed]
            records = train_pack([corrupted(self.faults, s) for s in pack], self.cache,
                                 inject_error=[should_raise(self.faults, s.trial_id) for s in pack])
            for record, spec in zip(records, pack):
                on_record(as_trial(record, spec))
