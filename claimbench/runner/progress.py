"""Progress on long work: done / diverged / failed and an ETA, as records arrive and as trials evaluate.

Three sources move it: a finished trial's record (``update``), an evaluation point inside a pack that
is still training (``on_eval``, reported by the worker: ``policy.observing``), and notes from the
executor (``note``: "starting Ray (2 CPUs)…", "Ray up in 6 s", what a long wait is waiting for).

The ETA is the cost model's (``runner.cost``), corrected as the run goes: ``plan`` gives each trial its
predicted worker seconds; each finished trial's measured seconds (its record's ``wall_s``, its share of its
pack's time) over its prediction goes into a ``cost.Ratios`` of this run, so the work left of a family is
its predictions times that family's ratio (shrunk toward the ratio of every family until a few of its
trials finished; a family not yet seen takes the ratio of those seen). The rate of work is what the
workers did since the packs went out (worker seconds done per second: it counts the workers, and a
machine shared with other work); the ETA is the work left at that rate, never less than the largest pack
left on one worker, plus the timing packs, which run last, one at a time, at one worker's share.
"""

from __future__ import annotations

import os
import sys
import time
from typing import Callable

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from claimbench.runner.cost import CostModel, Ratios, family
from claimbench.trial import TrialRecord, TrialStatus
from claimbench.workloads.builtin import TrialSpec


class RunProgress:
    """A rich progress bar on a terminal; one line every 10% otherwise (CI logs).

    The bar and the ETA advance by predicted seconds (``plan``: the cost model), not by trial count:
    trials differ in cost by orders of magnitude (batch 2 vs 1024, an MLP vs a CNN). A trial still training
    is credited ``step / total`` of its prediction at each evaluation, so the bar moves while a long pack
    trains; its record credits the rest, at what it measured.
    """

    def __init__(self, total: int, label: str = "trials", enabled: bool = True,
                 clock: Callable[[], float] = time.monotonic):
        self.total, self.label, self.enabled, self.clock = total, label, enabled, clock
        self.done = self.diverged = self.failed = 0
        self.start = self.began = clock()
        self.last_eval_at: float | None = None  # clock time of the latest evaluation heard of
        self.workers = 1
        self.ratios = Ratios()  # this run's measured / predicted seconds, per family
        self._predicted: dict[str, float] = {}  # trial id -> predicted worker seconds
        self._family: dict[str, str] = {}
        self._pack: dict[str, int] = {}  # trial id -> its pack's index
        self._credited: dict[str, float] = {}  # trial id -> fraction credited from its evaluations so far
        self._finished: set[str] = set()  # trials whose record came (a late evaluation credits nothing)
        self._left: dict[str, float] = {}  # family -> predicted seconds not yet credited
        self._partial: dict[str, float] = {}  # family -> predicted seconds credited to trials still training
        self._pack_left: dict[int, float] = {}  # unfinished pack -> its predicted seconds not yet credited
        self._pack_family: dict[int, str] = {}
        self._pack_open: dict[int, int] = {}  # unfinished pack -> its trials without a record
        self._alone: set[int] = set()  # timing packs: trained last, one at a time, nothing else training
        self._measured = 0.0  # worker seconds the finished trials took
        self._packs_seen = 0  # packs planned so far (each later pack's index follows)
        self._model: CostModel | None = None
        self._next_line = 0.1
        self.console = Console(stderr=True)
        self._bar = None
        if enabled and self.console.is_terminal:
            self._bar = Progress(TextColumn("[bold]{task.description}"), BarColumn(),
                                 TextColumn("{task.fields[counts]}"), TimeElapsedColumn(),
                                 TextColumn("ETA {task.fields[eta]}"), console=self.console)
            self._task = self._bar.add_task(label, total=1.0, counts=self._counts(), eta="-")

    def plan(self, packs: list[list[TrialSpec]], model: CostModel, workers: int) -> None:
        """The packs as they go out, each trial's predicted worker seconds by ``model``, and the workers: the
        rate of work is counted from here (after the executor started)."""
        self.workers, self.began, self._model = max(1, workers), self.clock(), model
        self.add(packs)

    def add(self, packs: list[list[TrialSpec]], trials: int = 0) -> None:
        """More packs as the run goes (the experimenter loop's next rounds): the ETA counts their predicted
        seconds from now; ``trials``: how many trials they add to the count shown."""
        self.total += trials
        offset = self._packs_seen
        self._packs_seen += len(packs)
        for k, pack in enumerate(packs, start=offset):
            for spec in pack:
                tid, fam, sec = spec.trial_id, family(spec), self._model.seconds(spec)
                self._predicted[tid], self._family[tid], self._pack[tid] = sec, fam, k
                self._left[fam] = self._left.get(fam, 0.0) + sec
                self._pack_left[k] = self._pack_left.get(k, 0.0) + sec
                self._pack_family[k] = fam
                self._pack_open[k] = self._pack_open.get(k, 0) + 1
            if pack and all(spec.exclusive for spec in pack):
                self._alone.add(k)

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

    def _credit(self, trial_id: str, fraction: float) -> None:
        """Move ``trial_id``'s credited fraction of its prediction up to ``fraction``."""
        before = self._credited.get(trial_id, 0.0)
        if fraction <= before or trial_id not in self._predicted:
            return
        sec, fam = self._predicted[trial_id], self._family[trial_id]
        moved = sec * (fraction - before)
        self._credited[trial_id] = fraction
        self._left[fam] -= moved
        self._partial[fam] = self._partial.get(fam, 0.0) + moved
        k = self._pack[trial_id]
        if k in self._pack_left:
            self._pack_left[k] -= moved

    def on_eval(self, trial_id: str, step: int, total: int) -> None:
        """Trial ``trial_id`` evaluated after ``step`` of its ``total`` steps: credit that part of its prediction."""
        self.last_eval_at = self.clock()
        if trial_id in self._finished or total <= 0:
            return
        self._credit(trial_id, min(max(step / total, 0.0), 1.0))
        self._show()

    def update(self, record: TrialRecord) -> None:
        """A trial's record came: it is done, at the seconds it measured."""
        tid = record.trial_id
        self.done += 1
        self._finished.add(tid)
        self.diverged += record.status is TrialStatus.DIVERGED
        self.failed += record.status is TrialStatus.FAILED
        if tid in self._predicted:
            fam, sec = self._family[tid], self._predicted[tid]
            before = self._credited.pop(tid, 0.0)
            self._left[fam] -= sec * (1.0 - before)
            self._partial[fam] = self._partial.get(fam, 0.0) - sec * before
            k = self._pack[tid]
            if k in self._pack_left:
                self._pack_left[k] -= sec * (1.0 - before)
                self._pack_open[k] -= 1
                if not self._pack_open[k]:
                    del self._pack_left[k]
            wall = getattr(record, "wall_s", 0.0) or 0.0
            self._measured += wall
            if record.status not in (TrialStatus.FAILED, TrialStatus.HALTED):  # stopped at its error, limit or
                # halving rung: not its whole budget's cost
                self.ratios.observe(fam, wall, sec)
        self._show()

    def work(self) -> tuple[float, float]:
        """Worker seconds done (measured for finished trials, predicted x ratio for the parts credited to trials
        still training) and left (predicted x ratio), by this run's ratios."""
        done, left = self._measured, 0.0
        for fam, sec in self._left.items():
            r = self.ratios.ratio(fam)
            left += max(sec, 0.0) * r
            done += max(self._partial.get(fam, 0.0), 0.0) * r
        return done, left

    def fraction(self) -> float:
        done, left = self.work()
        return 1.0 if done + left <= 0 else min(done / (done + left), 1.0)

    def eta(self) -> float | None:
        """Seconds left: the shared packs' work left at the rate of work so far (worker seconds per second), and
        at least the largest of them at one worker's share of that rate; then the timing packs, one after another
        at one worker's share; None before anything moved."""
        done, left = self.work()
        elapsed = self.clock() - self.began
        if left <= 1e-9 or self.done >= self.total:
            return 0.0
        if done <= 0 or elapsed <= 0:
            return None
        rate = done / elapsed
        one = rate / self.workers
        packs = {k: max(sec, 0.0) * self.ratios.ratio(self._pack_family[k]) for k, sec in self._pack_left.items()}
        alone = sum(x for k, x in packs.items() if k in self._alone)
        longest = max((x for k, x in packs.items() if k not in self._alone), default=0.0)
        return max((left - alone) / rate, longest / one) + alone / one

    def _show(self) -> None:
        if not self.enabled:
            return
        fraction = self.fraction()
        if self._bar:
            eta = self.eta()
            self._bar.update(self._task, completed=fraction, counts=self._counts(),
                             eta="-" if eta is None else _clock_text(eta))
        elif fraction >= self._next_line or self.done == self.total:
            eta = self.eta()
            elapsed = self.clock() - self.start
            print(f"{self.label}: {self._counts()} · {elapsed:.0f}s elapsed · ETA "
                  f"{'-' if eta is None else f'{eta:.0f}s'}", file=sys.stderr, flush=True)
            while self._next_line <= fraction:
                self._next_line += 0.1


def _clock_text(seconds: float) -> str:
    s = int(round(seconds))
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"


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
