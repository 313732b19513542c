"""Progress on long work: done / diverged / failed and an ETA, as records arrive."""

from __future__ import annotations

import sys
import time

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from claimbench.trial import TrialRecord, TrialStatus


class RunProgress:
    """A rich progress bar on a terminal; one line every 10% otherwise (CI logs)."""

    def __init__(self, total: int, label: str = "trials", enabled: bool = True):
        self.total, self.label, self.enabled = total, label, enabled
        self.done = self.diverged = self.failed = 0
        self.start = time.monotonic()
        self._next_line = 0.1
        self.console = Console(stderr=True)
        self._bar = None
        if enabled and self.console.is_terminal:
            self._bar = Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                                 TextColumn("{task.fields[counts]}"), TimeElapsedColumn(), TextColumn("ETA"),
                                 TimeRemainingColumn(), console=self.console)
            self._task = self._bar.add_task(label, total=total, counts=self._counts())

    def _counts(self) -> str:
        return f"diverged {self.diverged} · failed {self.failed}"

    def __enter__(self) -> "RunProgress":
        if self._bar:
            self._bar.start()
        return self

    def __exit__(self, *exc) -> None:
        if self._bar:
            self._bar.stop()

    def update(self, record: TrialRecord) -> None:
        self.done += 1
        self.diverged += record.status is TrialStatus.DIVERGED
        self.failed += record.status is TrialStatus.FAILED
        if self._bar:
            self._bar.update(self._task, advance=1, counts=self._counts())
        elif self.enabled and (self.done / self.total >= self._next_line or self.done == self.total):
            elapsed = time.monotonic() - self.start
            eta = elapsed / self.done * (self.total - self.done)
            print(f"{self.label}: {self.done}/{self.total} done · {self._counts()} · "
                  f"{elapsed:.0f}s elapsed · ETA {eta:.0f}s", file=sys.stderr, flush=True)
            while self._next_line <= self.done / self.total:
                self._next_line += 0.1
