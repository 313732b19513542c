"""Every trial's wall-clock limit: where it comes from, how a pack's adds up, how it is said, and the
in-process alarm that enforces it where a pack trains in the caller's own thread.

A trial's limit (``trial_timeouts``) is ``--trial-timeout``, else its suite's ``[limits] trial_timeout``,
else ``default_timeout``: the cost model's estimate of the trial (``runner.cost``: the default model, or what
the records measured of its family when that is longer) times ``TIMEOUT_SAFETY``, at least
``TIMEOUT_FLOOR_S``. A pack's limit is the sum of its trials' (``pack_limit``). A trial past its limit is a
``failed`` record, "timed out after N s" (``timed_out_text``), and the run goes on, on every executor
(``base.Executor``).
"""

from __future__ import annotations

import contextlib
import signal
import threading
from typing import Any, Iterable

from claimbench.runner.cost import CostModel, model_seconds
from claimbench.workloads.builtin import TrialSpec

#: The default limit of a trial: its estimated seconds times this (the estimate is rough: a factor of a few either
#: way without records) ...
TIMEOUT_SAFETY = 10.0
#: ... and never under this many seconds (a first trial also builds or downloads its dataset).
TIMEOUT_FLOOR_S = 300.0
#: Seconds a child process may take to start before its first trial (import torch, the workload's package);
#: a pack's limit allows this for each trial of a user's workload (``child.py``).
STARTUP_S = 120.0


class TrialTimeout(Exception):
    """A trial (or a pack of them) ran past its wall-clock limit; the message says how long that was."""


def timed_out_text(seconds: float, pack: int = 1) -> str:
    """The error of a trial past its limit (``pack``: the trials of a pack that shared the summed limit)."""
    what = f"timed out after {seconds:.0f} s" if seconds >= 10 else f"timed out after {seconds:.3g} s"
    return what if pack <= 1 else f"{what} (the limit of its pack of {pack} trials: the sum of theirs)"


def default_timeout(spec: TrialSpec, model: CostModel | None = None) -> float:
    """A trial's limit when none is set: its estimate x ``TIMEOUT_SAFETY``, at least ``TIMEOUT_FLOOR_S``. The
    estimate is the default model's, or ``model``'s (fitted on records) when that is longer: records can only
    lengthen a limit, never cut one short."""
    seconds = model_seconds(spec)
    if model is not None:
        seconds = max(seconds, model.seconds(spec))
    return max(TIMEOUT_FLOOR_S, TIMEOUT_SAFETY * seconds)


def trial_timeouts(plans: Iterable[tuple[Any, Any, list[TrialSpec], list[TrialSpec]]],
                   flag: float | None = None, model: CostModel | None = None) -> dict[str, float]:
    """Each pending trial's limit in seconds: ``flag`` (``--trial-timeout``), else its suite's ``[limits]
    trial_timeout``, else ``default_timeout`` with ``model`` (the run's cost model, fitted on records; the
    default model without one). ``plans``: (suite, store, specs, pending) per suite, where the suite has
    ``limit_table()``; a trial of several suites gets the largest."""
    out: dict[str, float] = {}
    for suite, store, specs, pending in plans:
        if not pending:
            continue
        explicit = flag or suite.limit_table().get("trial_timeout") or None
        for spec in pending:
            limit = float(explicit) if explicit is not None else default_timeout(spec, model)
            out[spec.trial_id] = max(out.get(spec.trial_id, 0.0), limit)
    return out


def summed(specs: list[TrialSpec], timeouts: dict[str, float]) -> float | None:
    """The sum of these trials' limits; None when one has none (then nothing limits them together)."""
    each = [timeouts.get(s.trial_id) for s in specs]
    if not each or any(x is None for x in each):
        return None
    return sum(each)


def pack_limit(pack: list[TrialSpec], timeouts: dict[str, float], children: int = 0) -> float | None:
    """A pack's limit from when its worker begins it: the sum of its trials' limits, plus ``STARTUP_S`` for each
    of its ``children`` trials that train in a child process (a user's workload); None without a limit."""
    total = summed(pack, timeouts)
    return None if total is None else total + STARTUP_S * children


@contextlib.contextmanager
def alarm(seconds: float | None, text: str):
    """Raise ``TrialTimeout(text)`` in this thread after ``seconds``, then every second until the block ends
    (so every trial still training in it fails). A no-op without a limit, off the main thread or without
    SIGALRM (a library caller's thread): there the limit is not enforced in-process."""
    usable = (seconds is not None and hasattr(signal, "setitimer")
              and threading.current_thread() is threading.main_thread())
    if not usable:
        yield
        return

    def fire(signum, frame):
        raise TrialTimeout(text)

    before = signal.signal(signal.SIGALRM, fire)
    signal.setitimer(signal.ITIMER_REAL, max(0.001, seconds), 1.0)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, before)
