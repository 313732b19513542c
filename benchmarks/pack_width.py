"""How wide a pack pays: seconds per trial of ``train_pack`` on K same-shape trials, per model family,
batch size and pack width K, in this process with one torch thread (what one 1-CPU worker has).

    python benchmarks/pack_width.py              # all families, widths 1..64
    python benchmarks/pack_width.py --quick      # fewer widths and batch sizes

Each trial of a pack is the same model, data and budget (``steps`` minibatch steps, ``evals``
evaluations) with its own seed and LR (small LRs, so that none diverges and every width does the
same work per trial). A configuration is timed ``--repeats`` times and the fastest kept (the usual
choice for a micro-benchmark on a machine shared with other work: load only ever adds time).

Per (family, batch size) it prints seconds per trial at each width, the speed-up over width 1, and
the *chosen* width: the widest width within ``--within`` (default 5%) of the fastest per-trial time
measured, i.e. the width beyond which a pack stops paying (past it the pack's weights and
activations outgrow the caches and the time per trial rises). Load balance is not this table's
business: ``make_packs`` splits a group further when one pack would keep a worker busy longer than
its share of the run. ``train/packing.py`` (``WIDTH_TABLE``) holds the chosen widths; reports/performance.md the
numbers behind them. A family the packed trainer does not pack yet (``packable`` is false) trains
its trials one after another in a pack, so width gains it nothing: it is reported and skipped.

The last line is ``best_width family/batch=K ...`` for every configuration measured.
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import torch

from claimbench.train.pack import train_pack
from claimbench.train.packing import packable
from claimbench.workloads.builtin import TrialSpec
from claimbench.workloads.data import DataCache

#: family -> the suites' model of that family (the shape the FAQ suites train).
FAMILIES: dict[str, dict] = {
    "mlp": dict(dataset="mnist1d", model="mlp", depth=2, width=100, optimizer="sgd", momentum=0.9),  # batch_size
    "mlp4": dict(dataset="mnist1d", model="mlp", depth=4, width=100, optimizer="sgd", momentum=0.9),  # activations
    "cnn": dict(dataset="digits", model="cnn", depth=2, width=32, optimizer="sgd", momentum=0.9),  # optimizers_cnn
    "rnn": dict(dataset="adding", model="rnn", depth=1, width=32, activation="tanh", optimizer="sgd"),  # clipping
}
BATCHES = {"mlp": (2, 8, 32, 128, 512), "mlp4": (32,), "cnn": (8, 32, 128), "rnn": (32,)}
WIDTHS = (1, 2, 4, 8, 16, 32, 64)


def specs_for(family: str, batch: int, k: int, steps: int, evals: int) -> list[TrialSpec]:
    lrs = (0.001, 0.002, 0.003, 0.005)
    return [TrialSpec(seed=i, lr=lrs[i % len(lrs)], batch_size=batch, steps=steps, evals=evals, **FAMILIES[family])
            for i in range(k)]


def per_trial_s(specs: list[TrialSpec], cache: DataCache, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        records = train_pack(specs, cache)
        best = min(best, (time.perf_counter() - t) / len(specs))
        bad = [r for r in records if r.status.value != "completed"]
        if bad:
            raise RuntimeError(f"{len(bad)} trial(s) did not complete: {bad[0].status.value} {bad[0].error}")
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--families", nargs="+", default=list(FAMILIES), choices=list(FAMILIES))
    ap.add_argument("--steps", type=int, default=150)
    ap.add_argument("--evals", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--within", type=float, default=0.05)
    ap.add_argument("--batches", type=int, nargs="+", help="only these batch sizes (default: each family's own)")
    ap.add_argument("--quick", action="store_true", help="widths 1, 8, 32 and the smallest and largest batch")
    args = ap.parse_args()

    torch.set_num_threads(1)
    torch.manual_seed(0)
    cache = DataCache()
    widths = (1, 8, 32) if args.quick else WIDTHS
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, "
          f"1 thread; load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"{args.steps} steps, {args.evals} evaluations per trial; fastest of {args.repeats}\n")
    best_line = []
    for family in args.families:
        batches = tuple(args.batches) if args.batches else BATCHES[family]
        if args.quick:
            batches = tuple(sorted({batches[0], batches[-1]}))
        probe = specs_for(family, batches[0], 1, args.steps, args.evals)[0]
        if not packable(probe):
            print(f"{family}: not packed by the packed trainer yet (packable() is false): width gains nothing; skipped\n")
            continue
        for batch in batches:
            for k in (1, 2):  # builds the dataset; warms up both trainers
                train_pack(specs_for(family, batch, k, 5, 1), cache)
            times = {k: per_trial_s(specs_for(family, batch, k, args.steps, args.evals), cache, args.repeats)
                     for k in widths}
            fastest = min(times.values())
            chosen = max(k for k, t in times.items() if t <= fastest * (1 + args.within))
            print(f"{family} batch {batch}:")
            for k, t in times.items():
                mark = "  <- chosen" if k == chosen else ""
                print(f"  width {k:3d}: {t * 1e3:8.2f} ms/trial  ({times[1] / t:5.2f}x of width 1){mark}")
            best_line.append(f"{family}/{batch}={chosen}")
            print(flush=True)
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print("best_width " + " ".join(best_line))


if __name__ == "__main__":
    main()
