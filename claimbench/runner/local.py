"""The in-process executor: packs run one after another in this process (debugging, tests)."""

from __future__ import annotations

from typing import Callable

from claimbench.train import train_trial
from claimbench.trial import TrialRecord, TrialSpec
from claimbench.workloads import DataCache


class LocalExecutor:
    name = "local"

    def __init__(self) -> None:
        self.cache = DataCache()

    def run(self, packs: list[list[TrialSpec]], on_record: Callable[[TrialRecord], None]) -> None:
        for pack in packs:
            for spec in pack:
                on_record(train_trial(spec, self.cache))
