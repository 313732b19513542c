"""Fault injection, for testing that failures are recorded and survived.

A plan is read once, by the CLI (from ``CLAIMBENCH_FAULTS``) or passed by a
test, and handed explicitly to the executor and its workers. Entries, separated
by ``;``:

- ``raise:PREFIX``        training of trials whose id starts with PREFIX raises
- ``crash:PREFIX[:N]``    the worker process dies when it starts such a trial,
                          on the first N attempts of its pack (default: always)
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from claimbench.errors import UserError

ENV = "CLAIMBENCH_FAULTS"


@dataclass(frozen=True)
class Fault:
    kind: str  # raise | crash
    prefix: str
    times: int = 1_000_000

    def matches(self, trial_id: str) -> bool:
        return trial_id.startswith(self.prefix)


def parse_faults(text: str | None) -> tuple[Fault, ...]:
    out = []
    for entry in filter(None, (e.strip() for e in (text or "").split(";"))):
        parts = entry.split(":")
        if parts[0] not in ("raise", "crash") or len(parts) not in (2, 3) or not parts[1] \
                or (len(parts) == 3 and not parts[2].isdigit()):
            raise UserError(f"bad fault entry {entry!r}", where=ENV, fix="write raise:PREFIX or crash:PREFIX[:N]")
        out.append(Fault(parts[0], parts[1], int(parts[2]) if len(parts) == 3 else Fault.times))
    return tuple(out)


def faults_from_env() -> tuple[Fault, ...]:
    return parse_faults(os.environ.get(ENV))


def should_raise(faults: tuple[Fault, ...], trial_id: str) -> bool:
    return any(f.kind == "raise" and f.matches(trial_id) for f in faults)


def should_crash(faults: tuple[Fault, ...], trial_id: str, attempt: int) -> bool:
    return any(f.kind == "crash" and f.matches(trial_id) and attempt <= f.times for f in faults)
