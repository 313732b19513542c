"""The arithmetic floor of a run: the matmul/conv FLOPs its trials did, and that work's time at the
best throughput measured for those kernels on this machine.

For every trial of a finished run dir (or a published report's ``trials.parquet`` frames), the
forward FLOPs per example of its model (``torch.utils.flop_counter``: matmuls and convolutions only,
so a lower bound) times the examples it trained on (x3: forward and backward) plus the examples its
evaluations read (probe, validation and test splits at every evaluation). The sum, divided by the
measured GEMM and convolution throughput of this machine's cores (timed here on one core, in the same
process, on shapes the suites use, times the cores: one runner worker per core), is the time no engine can beat without doing less arithmetic.

    python benchmarks/faq_flops.py reports/faq-default

Prints a line per suite and a last line ``floor_s=X gflop=Y gemm_gflops=Z conv_gflops=W``.
"""

from __future__ import annotations

import argparse
import dataclasses
import glob
import math
import os
import time

import pandas as pd
import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

from claimbench.train.single import load_workload
from claimbench.workloads.builtin import TrialSpec
from claimbench.workloads.data import DataCache
from claimbench.workloads.spec import Config

FIELDS = {f.name for f in dataclasses.fields(TrialSpec)}


def forward_flops(spec: TrialSpec, cache: DataCache, memo: dict) -> tuple[float, int, int]:
    """(forward FLOPs per example, training-set size, examples read per evaluation)."""
    key = (spec.dataset, spec.n_samples, spec.seq_len, spec.model, spec.depth, spec.width, spec.shape,
           spec.batchnorm, spec.activation, spec.workload)
    if key not in memo:
        data = cache.for_spec(spec, torch.device("cpu"))
        model = load_workload(spec).model(Config(spec, spec.params), data).eval()
        x = data.x_val[:8]
        with FlopCounterMode(display=False) as fc, torch.no_grad():
            model(x)
        n_train, n_val, n_test = len(data.y_train), len(data.y_val), len(data.y_test)
        memo[key] = (fc.get_total_flops() / len(x), n_train, min(n_train, n_val) + n_val + n_test)
    return memo[key]


def spec_of(row: pd.Series) -> TrialSpec:
    """The row's spec, minus what the flop count does not need (workload params, budget, code)."""
    keep = FIELDS - {"workload_params", "budget", "code"}
    kw = {k: row[k] for k in keep if k in row and not (isinstance(row[k], float) and math.isnan(row[k]))}
    return TrialSpec(**{k: (v.item() if hasattr(v, "item") else v) for k, v in kw.items()})


def measured_gflops() -> tuple[float, float]:
    """GEMM (a packed MLP's batched matmul) and conv (a packed 64-channel CNN) throughput of one core
    (one torch thread, as each runner worker has), times the cores (one worker per core)."""
    def rate(fn, flops):
        for _ in range(5):
            fn()
        t = time.perf_counter()
        for _ in range(50):
            fn()
        return flops * 50 / (time.perf_counter() - t) / 1e9
    a, b = torch.randn(8, 512, 100), torch.randn(8, 100, 100)
    x = torch.randn(32, 256, 4, 4).to(memory_format=torch.channels_last)
    w = torch.randn(256, 64, 3, 3).to(memory_format=torch.channels_last)
    gemm = rate(lambda: torch.bmm(a, b), 2 * 8 * 512 * 100 * 100)
    conv = rate(lambda: F.conv2d(x, w, padding=1, groups=4), 2 * 32 * 16 * 256 * 64 * 9)
    cores = os.cpu_count() or 1
    return gemm * cores, conv * cores


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run_dir", help="a report dir with one <suite>/trials.parquet per suite")
    args = parser.parse_args()
    torch.set_num_threads(1)
    gemm, conv = measured_gflops()
    cache, memo, total, floor, evals_total = DataCache(), {}, 0.0, 0.0, 0.0
    print(f"{os.cpu_count()} CPUs, torch {torch.__version__} ({torch.get_num_threads()} threads); measured "
          f"{gemm:.1f} GFLOP/s batched GEMM, {conv:.1f} GFLOP/s grouped conv")
    for path in sorted(glob.glob(os.path.join(args.run_dir, "*", "trials.parquet"))):
        frame, work, conv_work, eval_work = pd.read_parquet(path), 0.0, 0.0, 0.0
        for _, row in frame.iterrows():
            spec = spec_of(row)
            if spec.kind != "train":
                continue
            per_example, n_train, per_eval = forward_flops(spec, cache, memo)
            trained = float(row["examples_done"]) if not math.isnan(row["examples_done"]) else 0.0
            evals = min(spec.evals, max(1, int(row["steps_done"]))) + 1
            flops = 3 * per_example * trained + per_example * per_eval * evals
            work += flops
            eval_work += per_example * per_eval * evals
            conv_work += flops if spec.model == "cnn" else 0.0
        seconds = conv_work / conv / 1e9 + (work - conv_work) / gemm / 1e9
        total, floor, evals_total = total + work, floor + seconds, evals_total + eval_work
        print(f"{os.path.basename(os.path.dirname(path)):22s} {len(frame):5d} trials {work / 1e12:8.2f} TFLOP "
              f"({eval_work / max(work, 1):4.0%} evaluation) floor {seconds:7.1f} s")
    print(f"evaluation: {evals_total / total:.0%} of the FLOPs")
    print(f"floor_s={floor:.0f} gflop={total / 1e9:.0f} gemm_gflops={gemm:.1f} conv_gflops={conv:.1f}")


if __name__ == "__main__":
    main()
