"""Fault injection, for testing that failures are recorded and survived, and that the CI gate
(`claimbench check`) catches a broken training stack.

A plan is read once, by the CLI (from ``CLAIMBENCH_FAULTS``) or passed by a
test, and handed explicitly to the executor and its workers. Entries, separated
by ``;``:

- ``raise:PREFIX``        training of trials whose id starts with PREFIX raises
- ``crash:PREFIX[:N]``    the worker is lost when it starts a pack holding such a
                          trial (a Ray actor's process dies), on the first N attempts
                          of the pack (default: always); the executor retries the
                          pack, a bounded number of times
- ``corrupt:PARAM=FACTOR`` "broken training code": every trial trains with its
                          numeric PARAM (e.g. ``lr``) multiplied by FACTOR, but is
                          recorded under its own spec and trial id, as a bug in the
                          training stack would be. Results change, ids do not, so a
                          run dir written with it holds wrong results: use a fresh one.

Garbage is one line (``UserError``); the specs a ``corrupt`` fault makes train go through the same
size limits as the suite's own (``suite.check_fault_limits``), so that ``corrupt:steps=1e12`` is refused.

Faults are injected in one place, the worker side of every executor (``runner.base.Worker``): a
``crash`` loses the worker, a ``raise`` makes training raise, a ``corrupt`` trains another spec.
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
from dataclasses import dataclass

from claimbench.errors import UserError
from claimbench.trial import TrialRecord
from claimbench.workloads.builtin import SPEC_FIELDS, TrialSpec

ENV = "CLAIMBENCH_FAULTS"
MAX_TIMES = 1_000_000
MAX_TEXT = 4096
_ENTRY = re.compile(r"(raise|crash):([0-9a-f]{1,16})(?::([0-9]{1,7}))?")


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
    if text and len(text) > MAX_TEXT:
        raise UserError(f"{len(text)} characters, more than {MAX_TEXT}", where=ENV, fix="list a few faults")
    for entry in filter(None, (e.strip() for e in (text or "").split(";"))):
        if entry.startswith("corrupt:"):
            out.append(_parse_corrupt(entry))
            continue
        m = _ENTRY.fullmatch(entry)
        if m is None or (m.group(3) is not None and not 1 <= int(m.group(3)) <= MAX_TIMES):
            raise UserError(f"bad fault entry {entry[:80]!r}", where=ENV,
                            fix="write raise:PREFIX, crash:PREFIX[:N] or corrupt:PARAM=FACTOR "
                                f"(PREFIX: 1-16 hex digits of a trial id; N: 1 to {MAX_TIMES})")
        out.append(Fault(m.group(1), m.group(2), int(m.group(3)) if m.group(3) else Fault.times))
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
    if param not in numeric or not (value > 0 and math.isfinite(value)):
        raise UserError(f"bad fault entry {entry[:80]!r}: PARAM must be a numeric parameter and FACTOR a positive number",
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
        if not math.isfinite(value) or (SPEC_FIELDS[f.prefix] is int and abs(value) > 2**62):
            raise UserError(f"corrupt:{f.prefix}={f.factor:g} makes {f.prefix} = {value:g}, which no trial can train",
                            where=ENV, fix=f"use a smaller factor for {f.prefix}")
        changes[f.prefix] = max(1, round(value)) if SPEC_FIELDS[f.prefix] is int else value
    if not changes:
        return spec
    try:
        return dataclasses.replace(spec, **changes)
    except ValueError as e:
        raise UserError(f"the corrupted spec cannot run: {e}", where=ENV, fix="use another corrupt factor") from None


def as_trial(record: TrialRecord, spec: TrialSpec) -> TrialRecord:
    """``record`` filed under ``spec`` (its id and spec), whatever spec was really trained."""
    if record.trial_id != spec.trial_id:
        record = dataclasses.replace(record, trial_id=spec.trial_id, spec=spec.to_dict())
    return record
