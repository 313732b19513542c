"""Packed vs one at a time, per model family and batch size, in one process.

For each family the suites train — MLP (batch_size suite: MNIST-1D, 2 x 100 ReLU, SGD momentum),
CNN (dropout suite: digits 8x8, 2 conv blocks of 16, dropout 0.3, Adam), RNN (clipping suite: the
adding problem, T = 30, tanh RNN of 32, SGD momentum, norm clipping), LSTM (the same with an LSTM),
the transformer (the LM suites' default-tier model: seq_len 32, width 32, depth 2, 4 heads, Adam, on
the grammar dataset) and the LR range test (the MLP) — and for each batch size, the same trials (seeds and LRs differ)
are trained one at a time on the single-trial engine (``train_trial``) and jointly on the packed
engine (its family's ``train_jointly``) at several pack widths, including the one the runner picks
(``train.packing.pack_width``). Evaluation is included in both (two evaluations: step 0 and the
end; about one per 100-200 steps, as in the suites). One torch thread, as a runner worker slot has. Times are per trial: a trial alone, and a
pack's wall time / its width.

    python benchmarks/packing.py            # a few minutes on 2 CPU cores
    python benchmarks/packing.py --quick    # fewer steps (a smoke run)
    python benchmarks/packing.py --family transformer   # one family

The last line is ``packed_speedup_mlp=X packed_speedup_cnn=Y packed_speedup_rnn=Z
packed_speedup_transformer=W``: for each family, the summed per-trial time over its batch sizes <= 32 trained alone / the same packed at the
runner's width. A shared machine moves every number; the load average (``os.getloadavg``) is
printed before and after, and ratios taken in one process under the same load are what to read.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import os
import platform
import time

import torch

from claimbench.runner.packs import DEFAULT_PACK_SIZE, pack_bytes
from claimbench.train.packing import pack_width, packed_engine
from claimbench.train.single import train_trial
from claimbench.workloads.builtin import TrialSpec
from claimbench.workloads.data import DataCache

ALONE = 3  # trials timed one at a time per cell (their mean is the per-trial time)
WIDTHS = (8, 32)  # pack widths measured besides the runner's own
FAMILY_WIDTHS = {"transformer": (4,)}  # a family's own (its packs are compute-bound past a few models)

FAMILIES: dict[str, tuple[TrialSpec, tuple[int, ...], int]] = {  # (trial, batch sizes, steps)
    "mlp": (TrialSpec(dataset="mnist1d", depth=2, width=100, momentum=0.9, lr=0.05, evals=1, steps=1), (2, 8, 32, 128),
            400),
    "cnn": (TrialSpec(dataset="digits", model="cnn", depth=2, width=16, dropout=0.3, optimizer="adam", lr=0.003,
                      evals=1, steps=1), (8, 32), 150),
    "rnn": (TrialSpec(dataset="adding", model="rnn", activation="tanh", init="glorot", depth=1, width=32, momentum=0.9,
                      lr=0.01, clip="norm", evals=1, steps=1), (8, 32), 200),
    "lstm": (TrialSpec(dataset="adding", model="lstm", depth=1, width=32, momentum=0.9, lr=0.01, evals=1, steps=1),
             (32,), 80),
    "transformer": (TrialSpec(dataset="grammar", model="transformer", seq_len=32, depth=2, width=32, heads=4,
                              init="lecun", optimizer="adam", lr=0.003, evals=1, steps=1), (8, 32), 100),
    "range": (TrialSpec(dataset="mnist1d", kind="range_test", depth=2, width=100, momentum=0.9, range_steps=100,
                        evals=1, steps=1), (32,), 200),
}


def trials(base: TrialSpec, batch: int, steps: int, n: int) -> list[TrialSpec]:
    return [dataclasses.replace(base, batch_size=batch, steps=steps, seed=i, lr=base.lr * (1 + i / n))
            for i in range(n)]


def per_trial_alone(specs: list[TrialSpec], cache: DataCache) -> float:
    start = time.perf_counter()
    for s in specs:
        train_trial(s, cache)
    return (time.perf_counter() - start) / len(specs)


def per_trial_packed(specs: list[TrialSpec], cache: DataCache) -> float:
    train_jointly = importlib.import_module(packed_engine(specs[0])).train_jointly
    start = time.perf_counter()
    records = train_jointly(specs, cache)
    assert all(r.engine.startswith("packed") for r in records), {r.engine for r in records}
    return (time.perf_counter() - start) / len(specs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a tenth of the steps (a smoke run)")
    parser.add_argument("--family", choices=list(FAMILIES), action="append", help="only these families")
    args = parser.parse_args()
    torch.set_num_threads(1)
    cache = DataCache()
    print(f"machine: {platform.machine()} {platform.processor() or ''}, {os.cpu_count()} CPUs, torch "
          f"{torch.__version__}, 1 torch thread; load average before: {'%.2f %.2f %.2f' % os.getloadavg()}")
    print(f"{'family':6} {'batch':>5} {'alone ms/trial':>15} {'packed ms/trial at the runner width':>20}   "
          "speed-up per trial by width")
    headline: dict[str, list[float]] = {}
    for family, (base, batches, steps) in FAMILIES.items():
        if args.family and family not in args.family:
            continue
        steps = max(10, steps // 10) if args.quick else steps
        train_trial(dataclasses.replace(base, batch_size=batches[0], steps=5), cache)  # warm-up: data, kernels
        for batch in batches:
            spec = dataclasses.replace(base, batch_size=batch)
            runner = pack_width(spec, DEFAULT_PACK_SIZE, pack_bytes(spec))
            alone = per_trial_alone(trials(base, batch, steps, ALONE), cache)
            packed = {w: per_trial_packed(trials(base, batch, steps, w), cache) for w in sorted({*FAMILY_WIDTHS.get(family, WIDTHS), runner})}
            ups = "  ".join(f"K={w}: {alone / t:.1f}x" for w, t in packed.items())
            print(f"{family:6} {batch:>5} {1e3 * alone:>15.1f} {1e3 * packed[runner]:>9.1f} (K={runner:<2}) {ups}",
                  flush=True)
            if batch <= 32:
                cell = headline.setdefault(family, [0.0, 0.0])
                cell[0] += alone
                cell[1] += packed[runner]
    print(f"load average after: {'%.2f %.2f %.2f' % os.getloadavg()}")
    print("range test and lstm (not in the last line): "
          + ", ".join(f"{f} {headline[f][0] / headline[f][1]:.1f}x" for f in ("range", "lstm") if f in headline))
    print(" ".join(f"packed_speedup_{f}={headline[f][0] / headline[f][1]:.2f}"
                   for f in ("mlp", "cnn", "rnn", "transformer") if f in headline))


if __name__ == "__main__":
    main()
