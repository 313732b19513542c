"""Every size limit in one table, checked when a suite loads: before anything is expanded or allocated.

A suite may raise a limit for itself with a ``[limits]`` table (``trials = 200000``), up to the
limit's ceiling. ``trial_timeout`` (seconds) sets every trial's wall-clock limit instead of the
estimate the runner derives (runner/timeouts.py ``trial_timeouts``). Each refusal is one line naming the
file, the key, the value, the limit and the ``[limits]`` key that raises it. The fault variable
(``CLAIMBENCH_FAULTS``) goes through the same checks.

This module knows no workload: a spec field names the limit that bounds it (``trial.Field.limit``), and
a workload checks its own sizes against the table (``spec.Workload.check``; the built-ins':
workloads/builtin/shapes.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from claimbench.errors import UserError


class LimitError(UserError):
    """A size beyond a limit of ``LIMITS``."""


@dataclass(frozen=True)
class Limit:
    key: str  # the [limits] key that raises it
    default: int
    ceiling: int  # the most a [limits] table may raise it to
    what: str


_TABLE = (
    Limit("trials", 100_000, 10_000_000, "trials per run (the product of every axis's levels and the seeds)"),
    Limit("levels", 1_000, 100_000, "levels of one axis (values, or logspace num)"),
    Limit("seeds", 1_000, 100_000, "seeds"),
    Limit("depth", 1_000, 100_000, "hidden layers (depth)"),
    Limit("width", 65_536, 16_777_216, "units or channels of a layer (width)"),
    Limit("steps", 10_000_000, 10_000_000_000, "training steps (steps)"),
    Limit("epochs", 100_000, 100_000_000, "training epochs (epochs)"),
    Limit("evals", 10_000, 10_000_000, "evaluations (evals)"),
    Limit("range_steps", 100_000, 100_000_000, "LR range-test steps (range_steps)"),
    Limit("seq_len", 10_000, 1_000_000, "sequence length of the adding problem (seq_len)"),
    Limit("samples", 10_000_000, 1_000_000_000, "examples of a generated dataset (n_samples)"),
    Limit("memory_mb", 8_192, 1_048_576, "memory of one trial in MiB: parameters and dataset, as estimated"),
    Limit("trial_timeout", 0, 604_800, "seconds one trial may train before it is recorded failed (default, 0: "
                                       "its estimated time x 10, at least 300 s; --trial-timeout overrides)"),
)
LIMITS: dict[str, Limit] = {lim.key: lim for lim in _TABLE}
DEFAULTS: dict[str, int] = {lim.key: lim.default for lim in _TABLE}


def raise_text(key: str, value: Any) -> str:
    lim = LIMITS[key]
    if isinstance(value, (int, float)) and value > lim.ceiling:
        return f"lower it: [limits] {key} can raise the limit to {lim.ceiling} at most"
    return f"lower it, or raise the limit in the suite: [limits] {key} = {value} (at most {lim.ceiling})"


def parse_limits(table: Any, where: str) -> dict[str, int]:
    """A suite's ``[limits]`` table over the defaults; ``where`` is the file (for the error line)."""
    if not isinstance(table, dict):
        raise LimitError(f"must be a table, got {table!r}", where=f"{where}: limits", fix="write [limits] with key = N lines")
    out = dict(DEFAULTS)
    for key, value in table.items():
        if key not in LIMITS:
            raise LimitError(f"unknown limit {key!r}", where=f"{where}: limits.{key}",
                             fix=f"use one of: {', '.join(LIMITS)}")
        lim = LIMITS[key]
        if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= lim.ceiling:
            raise LimitError(f"{key} must be an integer from 1 to {lim.ceiling}, got {value!r}",
                             where=f"{where}: limits.{key}", fix=f"write {key} = N (default {lim.default})")
        out[key] = value
    return out


def check_count(key: str, n: int, limits: Mapping[str, int], where: str, what: str | None = None) -> None:
    """Refuse a count (trials, levels, seeds) above its limit."""
    if n > limits[key]:
        shown = f"{n:.3g}" if n >= 10**7 else str(n)
        text = f"{what}, above the limit of {limits[key]}" if what else \
            f"{LIMITS[key].what}: {shown} is above the limit of {limits[key]}"
        raise LimitError(text, where=where, fix=raise_text(key, n))
