"""Progress on long work: done / diverged / failed and an ETA, as records arrive and as trials evaluate.

Three sources move it: a finished trial's record (``update``), an evaluation point inside a pack that
is still training (``on_eval``, reported by the worker: ``policy.observing``), and notes from the
executor (``note``: "starting Ray (2 CPUs)…", "Ray up in 6 s", what a long wait is waiting for).
"""

from __future__ import annotations

import os
import sys
import time

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from claimbench.trial import TrialRecord, TrialStatus


class RunProgress:
    """A rich progress bar on a terminal; one line every 10% otherwise (CI logs).

    The bar and the ETA advance by estimated cost (``packs.cost``), not by trial
    count: trials differ in cost by orders of magnitude (batch 2 vs 1024). A trial
    still training is credited ``step / total`` of its cost at each evaluation, so
    the bar moves while a long pack trains; its record credits the rest.
    """

    def __init__(self, total: int, label: str = "trials", enabled: bool = True, total_cost: float | None = None):
        self.total, self.label, self.enabled = total, label, enabled
        self.total_cost = total_cost or float(total)
        self.cost_done = 0.0
        self.done = self.diverged = self.failed = 0
        self.start = time.monotonic()
        self.last_eval_at: float | None = None  # monotonic time of the latest evaluation heard of
        self._credited: dict[str, float] = {}  # trial id -> cost credited from its evaluations so far
        self._finished: set[str] = set()  # trials whose record came (a late evaluation credits nothing)
        self._next_line = 0.1
        self.console = Console(stderr=True)
        self._bar = None
        if enabled and self.console.is_terminal:
            self._bar = Progress(TextColumn("[bold]{task.description}"), BarColumn(),
                                 TextColumn("{task.fields[counts]}"), TimeElapsedColumn(), TextColumn("ETA"),
                                 TimeRemainingColumn(), console=self.console)
            self._task = self._bar.add_task(label, total=self.total_cost, counts=self._counts())

    def _counts(self) -> str:
        return f"{self.done}/{self.total} done · diverged {self.diverged} · failed {self.failed}"

    def __enter__(self) -> "RunProgress":
        if self._bar:
            self._bar.start()
        return self

    def __exit__(self, *exc) -> None:
        if self._bar:
            self._bar.stop()

    def note(self, text: str) -> None:
        """One line from the executor (above the bar on a terminal); nothing when progress is off."""
        if not self.enabled:
            return
        if self._bar:
            self._bar.console.print(text, markup=False, highlight=False)
        else:
            print(text, file=sys.stderr, flush=True)

    def on_eval(self, trial_id: str, step: int, total: int, cost: float = 1.0) -> None:
        """Trial ``trial_id`` evaluated after ``step`` of its ``total`` steps: credit that part of its cost."""
        self.last_eval_at = time.monotonic()
        if trial_id in self._finished:
            return
        credit = cost * min(max(step / total, 0.0), 1.0) if total > 0 else 0.0
        before = self._credited.get(trial_id, 0.0)
        if credit > before:
            self._credited[trial_id] = credit
            self._advance(credit - before)

    def update(self, record: TrialRecord, cost: float = 1.0) -> None:
        self.done += 1
        self._finished.add(record.trial_id)
        self.diverged += record.status is TrialStatus.DIVERGED
        self.failed += record.status is TrialStatus.FAILED
        self._advance(max(cost - self._credited.pop(record.trial_id, 0.0), 0.0))

    def _advance(self, cost: float) -> None:
        self.cost_done += cost
        fraction = min(self.cost_done / self.total_cost, 1.0)
        if self._bar:
            self._bar.update(self._task, advance=cost, counts=self._counts())
        elif self.enabled and (fraction >= self._next_line or self.done == self.total):
            elapsed = time.monotonic() - self.start
            eta = elapsed / fraction * (1 - fraction) if fraction > 0 else float("nan")
            print(f"{self.label}: {self._counts()} · {elapsed:.0f}s elapsed · ETA {eta:.0f}s",
                  file=sys.stderr, flush=True)
            while self._next_line <= fraction:
                self._next_line += 0.1


def command_elapsed() -> float | None:
    """Seconds since this process started (its imports included), from the kernel's clock (Linux
    ``/proc``); None where that cannot be read."""
    try:
        with open("/proc/self/stat", encoding="ascii") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        with open("/proc/uptime", encoding="ascii") as f:
            uptime = float(f.read().split()[0])
        return max(uptime - int(fields[19]) / os.sysconf("SC_CLK_TCK"), 0.0)
    except (OSError, ValueError, IndexError):
        return None


def timing_line(trained: int, wall_s: float, ray_startup_s: float | None = None,
                training_s: float | None = None) -> str:
    """The run's closing line: trials trained (and the seconds their training took, when given) and the
    wall time of the whole command — imports, Ray's startup (its share said), the report — so that a rerun
    that finds everything cached says what it really cost."""
    ray = f" (Ray startup {ray_startup_s:.0f}s)" if ray_startup_s else ""
    took = f" in {training_s:.0f}s" if training_s is not None and trained else ""
    return f"trained {trained} trial{'s' if trained != 1 else ''}{took}; the command took {wall_s:.0f}s{ray}"
