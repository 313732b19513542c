"""The progress bar's ETA against the time actually left, on a published run's measured trial times.

    python benchmarks/eta.py                          # reports/faq-default, 2 workers
    python benchmarks/eta.py reports/batch_scaling-default

The published frames (``SUITE/trials.parquet``) hold each trial's spec, status and measured ``wall_s`` (its
share of its pack's time), but no finish order and no timestamps. So the run is replayed in the order the
runner schedules it: the distinct trials in ``packs.make_packs``'s packs, each pack to the first free one of
``--workers`` workers, taking the sum of its trials' ``wall_s``; timing blocks last, alone. Each pack reports
its trials' evaluations evenly over its time and their records at its end, into the real
``progress.RunProgress`` on a simulated clock, which starts from the cost model of a fresh clone (no
records). At every event after the first 10% of the run, the ETA is compared with the time actually left
(ratio: the larger over the smaller). Printed for three ETAs:

- ``new``: this checkout's (per-family default model, corrected per family by the trials finished so far);
- ``flat prior``: the same correction, starting from one rate for every family (the cost model before it
  learned per family: 0.72 s + 2.9e-4 s x cost), to show what the correction alone does;
- ``old``: the ETA before the cost model learned: elapsed / fraction x (1 - fraction), the fraction by
  ``packs.cost``.

"lines" counts the ETAs a CI log prints (one line per 10% of the bar); "events" the ETA a terminal's bar
shows, once per simulated second. The last line is the new ETA's: ``eta_worst_ratio=X within_2x=N/M`` (over the events).
"""

from __future__ import annotations

import argparse
import dataclasses
import heapq
import sys
from pathlib import Path
from types import SimpleNamespace

import pandas as pd

from claimbench.runner.cost import CostModel
from claimbench.runner.packs import DEFAULT_PACK_SIZE, cost, make_packs
from claimbench.runner.progress import RunProgress
from claimbench.trial import TrialStatus
from claimbench.workloads.builtin import TrialSpec


class FlatPrior:
    """One rate for every family: the cost model before it learned per family."""

    def seconds(self, spec: TrialSpec) -> float:
        return 0.72 + 2.9e-4 * cost(spec)


def load(report: Path) -> tuple[list[TrialSpec], dict[str, tuple[str, float]]]:
    names = {f.name for f in dataclasses.fields(TrialSpec)}
    specs, outcome = {}, {}
    for path in sorted(report.glob("*/trials.parquet")):
        for row in pd.read_parquet(path).to_dict("records"):
            if row["trial_id"] in specs:
                continue
            spec = TrialSpec.from_dict({k: v for k, v in row.items() if k in names})
            specs[row["trial_id"]] = spec  # its id under this checkout's revision keys what it measured
            outcome[spec.trial_id] = (row["status"], float(row["wall_s"] or 0.0))
    return list(specs.values()), outcome


def schedule(specs: list[TrialSpec], outcome: dict, workers: int):
    """The run's events in time order: (time, kind, trial id, step, total), kind "eval" or "record"; and the packs."""
    packs = make_packs(specs, DEFAULT_PACK_SIZE, workers=workers)
    events, free = [], [0.0] * workers
    shared = [p for p in packs if not all(s.exclusive for s in p)]
    alone = [p for p in packs if all(s.exclusive for s in p)]

    def emit(pack, t0):
        duration = sum(outcome[s.trial_id][1] for s in pack)
        evals = max(1, max(s.evals for s in pack))
        for j in range(1, evals):
            events.extend((t0 + duration * j / evals, 0, s.trial_id, j, evals) for s in pack)
        events.extend((t0 + duration, 1, s.trial_id, evals, evals) for s in pack)
        return t0 + duration

    for pack in shared:
        heapq.heappush(free, emit(pack, heapq.heappop(free)))
    t = max(free)
    for block in alone:  # timing blocks: after every shared pack, one at a time, nothing else training
        t = emit(block, t)
    events.sort(key=lambda e: (e[0], e[1]))
    return events, packs


def replay(events, packs, outcome, model, workers: int, old: bool = False):
    """(ratios at every event, ratios at the lines a log prints) after the first 10% of the run."""
    end = events[-1][0]
    now = [0.0]
    bar = RunProgress(len(outcome), enabled=False, clock=lambda: now[0])
    bar.plan(packs, model, workers)
    units = {s.trial_id: cost(s) for p in packs for s in p}
    total_units, done_units, credited = sum(units.values()), 0.0, {}
    every, lines, next_line, shown, misses = [], [], 0.1, -1.0, []
    for t, kind, tid, step, total in events:
        now[0] = t
        if kind == 0:
            bar.on_eval(tid, step, total)
            c = units[tid] * step / total
            done_units += max(0.0, c - credited.get(tid, 0.0))
            credited[tid] = max(c, credited.get(tid, 0.0))
        else:
            status, wall = outcome[tid]
            bar.update(SimpleNamespace(trial_id=tid, status=TrialStatus(status), wall_s=wall))
            done_units += units[tid] - credited.pop(tid, 0.0)
        if t < 0.1 * end or t - shown < 1.0:  # a terminal's bar shows a new ETA about once a second
            continue
        shown = t
        fraction = done_units / total_units if old else bar.fraction()
        if old:
            eta = t / fraction * (1 - fraction) if fraction > 0 else None
        else:
            eta = bar.eta()
        left = end - t
        if t < 0.1 * end or left <= 0 or eta is None:
            continue
        r = max(eta / left, left / eta) if eta > 0 else float("inf")
        every.append(r)
        if r > 2:
            misses.append((round(t / end, 3), round(eta), round(left)))
        if fraction >= next_line:
            lines.append(r)
            while next_line <= fraction:
                next_line += 0.1
    if misses:
        print(f"  past 2x at (fraction of the run, ETA, left): {misses[:3]} ... {misses[-3:]}", file=sys.stderr)
    return every, lines


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("report", nargs="?", default="reports/faq-default")
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args()
    specs, outcome = load(Path(args.report))
    events, packs = schedule(specs, outcome, args.workers)
    print(f"{args.report}: {len(specs)} distinct trials in {len(packs)} packs on {args.workers} workers, "
          f"replayed in the runner's pack order: {events[-1][0]:.0f} s", file=sys.stderr)
    result = None
    for name, model, old in (("old", FlatPrior(), True), ("flat prior", FlatPrior(), False), ("new", CostModel(), False)):
        every, lines = replay(events, packs, outcome, model, args.workers, old)
        ok = sum(r <= 2 for r in every)
        print(f"{name:>10}: worst ratio {max(every):.2f} over {len(every)} events ({ok} within 2x), "
              f"{max(lines):.2f} over the {len(lines)} log lines ({sum(r <= 2 for r in lines)} within 2x)")
        result = (max(every), ok, len(every))
    print(f"eta_worst_ratio={result[0]:.2f} within_2x={result[1]}/{result[2]}")


if __name__ == "__main__":
    main()
