"""Everything a lent GPU should measure, in one call of at most 5 minutes.

    python benchmarks/gpu.py              # on a CUDA machine; on a CPU-only one it says so and exits 0
    python benchmarks/gpu.py --quick      # fewer steps: a check that every part runs

On the first CUDA device, in one process and side by side:

1. **Packs against one at a time.** 16 MLP trials (batch_size suite's shape: MNIST-1D, 2 x 100 ReLU, SGD
   momentum) and 16 CNN trials (the dropout suite's: digits 8x8, 2 conv blocks of 16, dropout 0.3, Adam),
   each trained once alone on the single-trial engine and once as one pack on the packed engine: seconds
   per trial both ways, and their ratio.
2. **B1's throughput matrix.** The `throughput` suite (batch_scaling group) at its smoke tier on the GPU,
   on a Ray slot with the GPU: the seconds per step and examples per second of every batch size.
3. **An adaptive smoke suite through Ray.** `batch_size` at the smoke tier with 6 seeds, on an embedded
   Ray with one GPU per slot, adaptive (looks at 3 and 5): the trials trained and the wall time.

The last line is ``gpu=NAME packed_speedup_mlp=X packed_speedup_cnn=Y b1_max_examples_per_s=Z
adaptive_smoke_s=W``. The numbers go to reports/performance.md with the card's name.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
import torch

from claimbench.train.packed.engine import train_jointly
from claimbench.train.single import train_trial
from claimbench.workloads.builtin import TrialSpec
from claimbench.workloads.data import DataCache

MLP = TrialSpec(dataset="mnist1d", n_samples=4000, depth=2, width=100, optimizer="sgd", momentum=0.9,
                batch_size=32, lr=0.05, steps=300, evals=3)
CNN = TrialSpec(dataset="digits", model="cnn", depth=2, width=16, dropout=0.3, optimizer="adam",
                batch_size=32, lr=0.001, steps=150, evals=2)


def trials(base: TrialSpec, n: int, steps: int) -> list[TrialSpec]:
    return [dataclasses.replace(base, seed=i % 4, lr=base.lr * (1 + i // 4), steps=steps) for i in range(n)]


def sync() -> None:
    torch.cuda.synchronize()


def per_trial(specs: list[TrialSpec], cache: DataCache, device: str) -> tuple[float, float]:
    """Seconds per trial: each alone on the single engine, then all as one pack on the packed engine."""
    train_trial(dataclasses.replace(specs[0], steps=5), cache, device)  # warm-up: data on the device, kernels
    sync()
    start = time.perf_counter()
    for s in specs:
        train_trial(s, cache, device)
    sync()
    alone = (time.perf_counter() - start) / len(specs)
    start = time.perf_counter()
    records = train_jointly(specs, cache, device)
    sync()
    packed = (time.perf_counter() - start) / len(specs)
    bad = [r.error for r in records if r.status.value == "failed"]
    if bad:
        raise SystemExit(f"the packed engine failed on {device}: {bad[0]}")
    return alone, packed


def claimbench(*args: str, timeout: float = 200) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "claimbench", *args, "--quiet"], check=True, timeout=timeout,
                   stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="fewer steps: check that every part runs")
    args = ap.parse_args()
    if not torch.cuda.is_available():
        print("gpu=none: no CUDA device here; nothing measured")
        return
    device = "cuda:0"
    name = torch.cuda.get_device_name(0).replace(" ", "_")
    print(f"# {torch.cuda.get_device_name(0)}, torch {torch.__version__}, CUDA {torch.version.cuda}")
    cache = DataCache()
    steps = (30, 15) if args.quick else (MLP.steps, CNN.steps)
    out = {}
    for label, base, n_steps in (("mlp", MLP, steps[0]), ("cnn", CNN, steps[1])):
        alone, packed = per_trial(trials(base, 16, n_steps), cache, device)
        out[label] = alone / packed
        print(f"{label}: {alone * 1000:.0f} ms per trial alone, {packed * 1000:.0f} ms packed (16 wide): "
              f"{alone / packed:.2f}x", flush=True)
    with tempfile.TemporaryDirectory(prefix="cb-gpu-") as tmp:
        b1 = Path(tmp) / "b1"
        claimbench("run", "throughput", "--tier", "smoke", "--gpus-per-trial", "1", "--out", str(b1))
        rows = json.loads((b1 / "verdicts.json").read_text())["verdicts"]
        frame = pd.read_parquet(b1 / "trials.parquet")
        best = float(frame["examples_per_s"].max()) if "examples_per_s" in frame else float("nan")
        for _, r in frame.sort_values("batch_size").iterrows():
            print(f"B1 batch {int(r['batch_size'])}: {r.get('time_per_step_s', float('nan')) * 1000:.2f} ms per step, "
                  f"{r.get('examples_per_s', float('nan')):.0f} examples/s", flush=True)
        print("B1 verdicts: " + ", ".join(f"{v['claim_id']} {v['verdict']}" for v in rows))
        adaptive = claimbench("run", "batch_size", "--tier", "smoke", "--seeds", "6", "--gpus-per-trial", "1",
                              "--out", str(Path(tmp) / "adaptive"))
        doc = json.loads((Path(tmp) / "adaptive" / "adaptive.json").read_text())
        print(f"adaptive smoke through Ray: {doc['full'] - doc['skipped']} of {doc['full']} trials, {adaptive:.0f} s")
    print(f"gpu={name} packed_speedup_mlp={out['mlp']:.2f} packed_speedup_cnn={out['cnn']:.2f} "
          f"b1_max_examples_per_s={best:.0f} adaptive_smoke_s={adaptive:.0f}")


if __name__ == "__main__":
    main()
