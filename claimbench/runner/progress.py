"""Progress on long work: done / diverged / failed and an ETA, as records arrive."""

from __future__ import annotations

import sys
import time

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from claimbench.trial import TrialRecord, TrialStatus


class RunProgress:
    """A rich progress bar on a terminal; one line every 10% otherwise (CI logs).

    The bar and the ETA advance by estimated cost (``packs.cost``), not by trial
    count: trials differ in cost by orders of magnitude (batch 2 vs 1024).
    """

    def __init__(self, total: int, label: str = "trials", enabled: bool = True, total_cost: float | None = None):
        self.total, self.label, self.enabled = total, label, enabled
        self.total_cost = total_cost or float(total)
        self.cost_done = 0.0
        self.done = self.diverged = self.failed = 0
        self.start = time.monotonic()
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

    def update(self, record: TrialRecord, cost: float = 1.0) -> None:
        self.done += 1
        self.cost_done += cost
        self.diverged += record.status is TrialStatus.DIVERGED
        self.failed += record.status is TrialStatus.FAILED
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
