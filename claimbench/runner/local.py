"""The in-process executor: packs run one after another in this process (debugging, tests)."""

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

    def run(self, packs: list[list[TrialSpec]], on_record: Callable[[TrialRecord], None]) -> None:
        from claimbench.train import train_trial

        for pack in packs:
            for spec in pack:
                if should_crash(self.faults, spec.trial_id, 1):
                    on_record(TrialRecord.failed(spec, "worker crashed (injected fault); the local executor does not retry"))
                    continue
                record = train_trial(corrupted(self.faults, spec), self.cache,
                                     inject_error=should_raise(self.faults, spec.trial_id))
                on_record(as_trial(record, spec))
