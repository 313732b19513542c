"""Fault injection, for testing that failures are recorded and survived, and that the CI gate
(`claimbench check`) catches a broken training stack.

A plan is read once, by the CLI (from ``CLAIMBENCH_FAULTS``) or passed by a
test, and handed explicitly to the executor and its workers. Entries, separated
by ``;``:

- ``raise:PREFIX``        training of trials whose id starts with PREFIX raises
- ``crash:PREFIX[:N]``    the worker process dies when it starts such a trial,
                          on the first N attempts of its pack (default: always)
- ``corrupt:PARAM=FACTOR`` "broken training code": every trial trains with its
                          numeric PARAM (e.g. ``lr``) multiplied by FACTOR, but is
                          recorded under its own spec and trial id, as a bug in the
                          training stack would be. Results change, ids do not, so a
                          run dir written with it holds wrong results: use a fresh one.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass

from claimbench.errors import UserError
from claimbench.trial import SPEC_FIELDS, TrialRecord, TrialSpec

ENV = "CLAIMBENCH_FAULTS"


@dataclass(frozen=True)
class Fault:
    kind: str  # raise | crash | corrupt
    prefix: str  # corrupt: the parameter
    times: int = 1_000_000
    factor: float = 1.0  # corrupt: the multiplier

    def matches(self, trial_id: str) -> bool:
        return trial_id.startswith(self.prefix)


def parse_faults(text: str | None) -> tuple[Fault, ...]:
    out = []
    for entry in filter(None, (e.strip() for e in (text or "").split(";"))):
        if entry.startswith("corrupt:"):
            out.append(_parse_corrupt(entry))
            continue
        parts = entry.split(":")
        if parts[0] not in ("raise", "crash") or len(parts) not in (2, 3) or not parts[1] \
                or (len(parts) == 3 and not parts[2].isdigit()):
            raise UserError(f"bad fault entry {entry!r}", where=ENV,
                            fix="write raise:PREFIX, crash:PREFIX[:N] or corrupt:PARAM=FACTOR")
        out.append(Fault(parts[0], parts[1], int(parts[2]) if len(parts) == 3 else Fault.times))
    return tuple(out)


def faults_from_env() -> tuple[Fault, ...]:
    return parse_faults(os.environ.get(ENV))


def should_raise(faults: tuple[Fault, ...], trial_id: str) -> bool:
    return any(f.kind == "raise" and f.matches(trial_id) for f in faults)


def should_crash(faults: tuple[Fault, ...], trial_id: str, attempt: int) -> bool:
    return any(f.kind == "crash" and f.matches(trial_id) and attempt <= f.times for f in faults)


def _parse_corrupt(entry: str) -> Fault:
    numeric = sorted(k for k, t in SPEC_FIELDS.items() if t in (int, float) and k != "seed")
    param, _, factor = entry[len("corrupt:"):].partition("=")
    try:
        value = float(factor)
    except ValueError:
        value = float("nan")
    if param not in numeric or not (value > 0 and value != float("inf")):
        raise UserError(f"bad fault entry {entry!r}: PARAM must be a numeric parameter and FACTOR a positive number",
                        where=ENV, fix=f"write e.g. corrupt:lr=0.01 (PARAM one of: {', '.join(numeric)})")
    return Fault("corrupt", param, factor=value)


def corrupted(faults: tuple[Fault, ...], spec: TrialSpec) -> TrialSpec:
    """The spec the (deliberately broken) training stack actually trains: ``spec`` with every
    ``corrupt`` fault applied. Integer parameters are rounded and kept >= 1."""
    changes = {}
    for f in faults:
        if f.kind != "corrupt":
            continue
        old = changes.get(f.prefix, getattr(spec, f.prefix))
        if not old:
            continue  # an unset parameter (e.g. steps under an epoch budget) stays unset
        value = old * f.factor
        changes[f.prefix] = max(1, round(value)) if SPEC_FIELDS[f.prefix] is int else value
    return dataclasses.replace(spec, **changes) if changes else spec


def as_trial(record: TrialRecord, spec: TrialSpec) -> TrialRecord:
    """``record`` filed under ``spec`` (its id and spec), whatever spec was really trained."""
    if record.trial_id != spec.trial_id:
        record = dataclasses.replace(record, trial_id=spec.trial_id, spec=spec.to_dict())
    return record
