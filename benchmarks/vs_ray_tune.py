"""One matrix of the batch-size suite, three ways, in one process run: a plain sequential PyTorch
loop, Ray Tune (grid_search, one Tune trial per cell), and claimbench (packed training on Ray
actors). Prints wall times, ratios, and achieved training FLOP/s against this machine's measured
matmul FLOP/s. The last line is ``speedup_vs_ray_tune=X speedup_vs_plain=Y packed_speedup=Z``.

    pip install -e ".[bench]"          # Ray Tune (ray[tune] at the pinned Ray version)
    python benchmarks/vs_ray_tune.py   # 8 batch sizes x 6 LRs x 2 seeds, 400 steps each

The three do the same work per trial: the suite's MLP (MNIST-1D, 2 x 100 ReLU, He init), SGD with
momentum 0.9, ``steps`` minibatch steps, ``evals`` evaluations of the train probe, validation and
test splits, and the same divergence rule (stop at a non-finite or 10x-initial smoothed loss).

- plain: one process, trials one after another, torch's default threads; the model is built by
  claimbench's ``build_model`` (same init), the loop is written out here with ``torch.optim.SGD``.
- Ray Tune: ``tune.Tuner`` over ``grid_search`` axes, one CPU per trial (so two at a time on two
  cores, one torch thread each), the dataset passed once with ``tune.with_parameters``, the
  metrics reported at each evaluation, default logging and storage (a temporary directory).
- claimbench: ``run_suite`` with the Ray executor (embedded Ray, one 1-CPU actor per core), into a
  fresh run dir, packed (``--pack-size``, default 8); and once more with ``pack_size = 1`` (every
  trial unpacked, as before packed training), end to end.
- ``packed_speedup``: in this process, one torch thread, no Ray: the trials at batch size <= 32
  trained alone (``train_trial``) vs in packs (``train_pack``), evaluation included; time per
  trial unpacked / packed.

Each of the runs starts and stops its own Ray; their start-up is part of their wall time.
FLOPs count matmul work only: 6 x MACs per training example (forward, and backward for inputs and
weights), 2 x MACs per evaluated example.
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import sys
import tempfile
import textwrap
import time
from pathlib import Path

os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")

import torch  # noqa: E402

from claimbench.workloads.builtin import TrialSpec  # noqa: E402
from claimbench.workloads.builtin.models import build_model  # noqa: E402
from claimbench.workloads.data import DataCache, Dataset  # noqa: E402

BATCH_SIZES = [2, 4, 8, 16, 32, 64, 128, 256]
LRS = [0.001, 0.003, 0.01, 0.03, 0.1, 0.3]


def suite_toml(batch_sizes: list[int], lrs: list[float], seeds: int, steps: int, evals: int) -> str:
    return textwrap.dedent(f"""
        [suite]
        name = "bench_batch_size"
        title = "Benchmark matrix of the batch-size suite"
        seeds = {seeds}

        [workload]
        dataset = "mnist1d"
        model = "mlp"
        depth = 2
        width = 100
        activation = "relu"
        init = "he"

        [train]
        optimizer = "sgd"
        momentum = 0.9
        schedule = "constant"
        evals = {evals}

        [budget]
        steps = {steps}

        [axes.batch_size]
        role = "scientific"
        values = {batch_sizes}

        [axes.lr]
        role = "nuisance"
        values = {lrs}

        [[claims]]
        id = "B2"
        kind = "best_level_in_range"
        faq_section = 6
        paraphrase = "Small batches generalize best."
        params = {{ axis = "batch_size", low = 2, high = 32 }}
        """)


# --- (a) and (b): the plain loop -----------------------------------------------------------------

def plain_trial(config: dict, data: Dataset, report=None) -> dict:
    """One trial, written out plainly: build, then steps with evaluations; returns the last metrics."""
    spec = TrialSpec(dataset="mnist1d", depth=2, width=100, activation="relu", init="he",
                     batch_size=config["batch_size"], lr=config["lr"], momentum=0.9, seed=config["seed"],
                     steps=config["steps"], evals=config["evals"])
    torch.manual_seed(spec.seed)
    order = torch.Generator().manual_seed(spec.seed)
    model = build_model(spec, data.input_shape, data.n_outputs)
    opt = torch.optim.SGD(model.parameters(), lr=spec.lr, momentum=spec.momentum, foreach=True)
    n, b = len(data.y_train), spec.batch_size
    per_epoch = n // b
    eval_at = {round(spec.steps * i / spec.evals) for i in range(1, spec.evals + 1)}
    probe = slice(0, min(n, len(data.y_val)))
    splits = (("train", data.x_train[probe], data.y_train[probe]), ("val", data.x_val, data.y_val),
              ("test", data.x_test, data.y_test))

    @torch.no_grad()
    def evaluate() -> dict:
        model.eval()
        out = {}
        for name, x, y in splits:
            logits = model(x)
            out[f"{name}_loss"] = torch.nn.functional.cross_entropy(logits, y).item()
            out[f"{name}_acc"] = (logits.argmax(1) == y).float().mean().item()
        model.train()
        return out

    first = evaluate()
    initial, smoothed, metrics, step, perm = first["train_loss"], None, first, 0, None
    while step < spec.steps:
        pos = step % per_epoch
        if pos == 0:
            perm = torch.randperm(n, generator=order)
        idx = perm[pos * b:(pos + 1) * b]
        loss = torch.nn.functional.cross_entropy(model(data.x_train[idx]), data.y_train[idx])
        value = loss.item()
        smoothed = value if smoothed is None else 0.9 * smoothed + 0.1 * value
        if not math.isfinite(value) or smoothed > 10 * initial:
            metrics = {"diverged": 1.0, "val_acc": float("nan")}
            if report is not None:
                report({**metrics, "steps_done": step})
            break
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        step += 1
        if step in eval_at:
            metrics = evaluate()
            if report is not None:
                report({**metrics, "steps_done": step})
    return {**metrics, "steps_done": step}


def run_plain(configs: list[dict], data: Dataset) -> tuple[float, list[dict]]:
    t = time.perf_counter()
    results = [plain_trial(c, data) for c in configs]
    return time.perf_counter() - t, results


def run_ray_tune(batch_sizes, lrs, seeds, steps, evals, data: Dataset, storage: str) -> tuple[float, list[dict]]:
    import logging

    import ray
    from ray import tune

    def trainable(config: dict, data: Dataset) -> None:
        torch.set_num_threads(1)
        plain_trial(config, data, report=tune.report)

    t = time.perf_counter()
    ray.init(include_dashboard=False, logging_level=logging.WARNING, log_to_driver=False)
    try:
        tuner = tune.Tuner(
            tune.with_resources(tune.with_parameters(trainable, data=data), {"cpu": 1}),
            param_space={"batch_size": tune.grid_search(batch_sizes), "lr": tune.grid_search(lrs),
                         "seed": tune.grid_search(list(range(seeds))), "steps": steps, "evals": evals},
            tune_config=tune.TuneConfig(metric="val_acc", mode="max"),
            run_config=tune.RunConfig(storage_path=storage, name="bench", verbose=0),
        )
        grid = tuner.fit()
        results = [r.metrics or {} for r in grid]
    finally:
        ray.shutdown()
    return time.perf_counter() - t, results


# --- (c): claimbench ---------------------------------------------------------------------------------

def run_claimbench(suite_path: Path, run_dir: Path, pack_size: int) -> tuple[float, list]:
    from claimbench.api import run_suite
    from claimbench.store.rundir import RunStore
    from claimbench.suite import expand, load_suite

    suite = load_suite(suite_path, "default")
    t = time.perf_counter()
    run_suite(suite, run_dir, executor="ray", pack_size=pack_size, progress=False)
    wall = time.perf_counter() - t
    return wall, list(RunStore(run_dir).records(s.trial_id for s in expand(suite)))


# --- FLOPs ---------------------------------------------------------------------------------------------

def matmul_flops(seconds: float = 1.0, n: int = 1024) -> float:
    """This machine's float32 matmul FLOP/s (torch.mm, n x n, torch's default threads)."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    for _ in range(3):
        a @ b
    reps, t = 0, time.perf_counter()
    while time.perf_counter() - t < seconds:
        a @ b
        reps += 1
    return 2 * n ** 3 * reps / (time.perf_counter() - t)


def macs_per_example(data: Dataset, depth: int = 2, width: int = 100) -> int:
    dims = [data.n_features] + [width] * depth + [data.n_outputs]
    return sum(a * b for a, b in zip(dims, dims[1:]))


def trial_flops(batch_size: int, steps_done: int, n_evals: int, macs: int, eval_examples: int) -> float:
    return 6 * macs * batch_size * steps_done + 2 * macs * eval_examples * (n_evals + 1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=400)
    ap.add_argument("--evals", type=int, default=10)
    ap.add_argument("--seeds", type=int, default=2)
    ap.add_argument("--pack-size", type=int, default=8)
    ap.add_argument("--quick", action="store_true", help="a tiny matrix (2 batch sizes x 2 LRs x 1 seed, 50 steps)")
    args = ap.parse_args()
    batch_sizes, lrs = BATCH_SIZES, LRS
    if args.quick:
        batch_sizes, lrs, args.seeds, args.steps, args.evals = [8, 64], [0.01, 0.1], 1, 50, 2
    cells = len(batch_sizes) * len(lrs) * args.seeds

    import ray

    print(f"machine: {platform.node()} · {os.cpu_count()} CPUs · {_cpu_model()} · load average "
          f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"versions: python {platform.python_version()} · torch {torch.__version__} · ray {ray.__version__} · "
          f"torch threads {torch.get_num_threads()}")
    print(f"matrix: {len(batch_sizes)} batch sizes {batch_sizes} x {len(lrs)} LRs {lrs} x {args.seeds} seeds = "
          f"{cells} trials; MLP 40-100-100-10 on MNIST-1D, SGD momentum 0.9, {args.steps} steps, "
          f"{args.evals} evaluations")
    print("GPU: " + (torch.cuda.get_device_name(0) if torch.cuda.is_available() else
                     "none (CUDA not available); every number below is CPU"))
    peak = matmul_flops()
    print(f"matmul: {peak / 1e9:.1f} GFLOP/s (torch.mm 1024x1024 float32, {torch.get_num_threads()} threads)")

    data = DataCache().get("mnist1d", 0, 0)
    macs = macs_per_example(data)
    eval_examples = min(len(data.y_train), len(data.y_val)) + len(data.y_val) + len(data.y_test)
    configs = [{"batch_size": b, "lr": lr, "seed": s, "steps": args.steps, "evals": args.evals}
               for b in batch_sizes for lr in lrs for s in range(args.seeds)]

    with tempfile.TemporaryDirectory(prefix="claimbench-bench-") as tmp:
        tmp = Path(tmp)
        suite_path = tmp / "bench.toml"
        suite_path.write_text(suite_toml(batch_sizes, lrs, args.seeds, args.steps, args.evals), encoding="utf-8")

        rows = []

        def flops_of(results: list[dict], batch_of) -> float:
            return sum(trial_flops(batch_of(r), int(r.get("steps_done", 0)), args.evals, macs, eval_examples)
                       for r in results)

        wall, results = run_plain(configs, data)
        rows.append(("plain PyTorch loop (sequential)", wall, flops_of(
            [dict(r, batch_size=c["batch_size"]) for r, c in zip(results, configs)], lambda r: r["batch_size"])))
        plain_wall = wall
        print(f"  (a) plain loop: {wall:.1f}s")

        wall, results = run_ray_tune(batch_sizes, lrs, args.seeds, args.steps, args.evals, data, str(tmp / "tune"))
        tune_results = [r for r in results if r]
        rows.append(("Ray Tune grid_search (1 CPU/trial)", wall, flops_of(
            tune_results, lambda r: r.get("config", {}).get("batch_size", 0))))
        tune_wall = wall
        print(f"  (b) Ray Tune: {wall:.1f}s ({len(tune_results)} trials reported)")

        def records_flops(records) -> float:
            return sum(trial_flops(r.spec["batch_size"], r.steps_done, args.evals, macs, eval_examples)
                       for r in records)

        wall, packed = run_claimbench(suite_path, tmp / "run-packed", args.pack_size)
        rows.append((f"claimbench, packed (pack size {args.pack_size}), Ray executor", wall, records_flops(packed)))
        cb_wall = wall
        print(f"  (c) claimbench packed: {wall:.1f}s ({len(packed)} records)")

        wall, unpacked = run_claimbench(suite_path, tmp / "run-unpacked", 1)
        rows.append(("claimbench, unpacked (pack size 1), Ray executor", wall, records_flops(unpacked)))
        print(f"  (c') claimbench unpacked: {wall:.1f}s ({len(unpacked)} records)")

        ab = packed_vs_unpacked(suite_path, args.pack_size)
        print(f"  (d) in-process A/B, one thread: unpacked {sum(ab['unpacked'].values()):.1f}s, "
              f"packed {sum(ab['packed'].values()):.1f}s")

    print()
    print(f"{'method':<52} {'wall s':>8} {'vs claimbench':>14} {'GFLOP/s':>9} {'% of matmul':>12}")
    for name, wall, flops in rows:
        print(f"{name:<52} {wall:8.1f} {wall / cb_wall:13.1f}x {flops / wall / 1e9:9.3f} "
              f"{100 * flops / wall / peak:11.2f}%")

    print()
    print(f"packed vs unpacked, in this process, one torch thread, the same {cells} trials (seconds per trial, "
          f"evaluation included; training steps only in brackets):")
    print(f"{'batch':>6} {'unpacked':>9} {'packed':>9} {'ratio':>6}   {'unpacked step':>13} {'packed step':>12}")
    n_per = cells // len(batch_sizes)
    for b in batch_sizes:
        u, p = ab["unpacked"][b] / n_per, ab["packed"][b] / n_per
        us, ps = ab["unpacked_step"][b], ab["packed_step"][b]
        print(f"{b:6d} {u:8.3f}s {p:8.3f}s {u / p:5.1f}x   [{us * 1e3:9.3f}ms {ps * 1e3:9.3f}ms]")
    small = [b for b in batch_sizes if b <= 32]
    packed_speedup = sum(ab["unpacked"][b] for b in small) / sum(ab["packed"][b] for b in small)
    print(f"batch <= 32: packed is {packed_speedup:.2f}x faster per trial")
    statuses: dict[str, int] = {}
    for r in packed:
        statuses[r.status.value] = statuses.get(r.status.value, 0) + 1
    print(f"claimbench packed outcomes: {statuses}")
    print(f"speedup_vs_ray_tune={tune_wall / cb_wall:.2f} speedup_vs_plain={plain_wall / cb_wall:.2f} "
          f"packed_speedup={packed_speedup:.2f}")


def packed_vs_unpacked(suite_path: Path, pack_size: int) -> dict[str, dict[int, float]]:
    """Seconds per batch size for the suite's trials: each trained alone (``train_trial``) vs in packs
    (``train_pack`` over ``make_packs``), in this process with one torch thread; plus the mean time
    per training step (``time_per_step_s``: packed = the pack's step time / trials in it)."""
    from claimbench.runner.packs import make_packs
    from claimbench.suite import expand, load_suite
    from claimbench.train.pack import train_pack
    from claimbench.train.single import train_trial

    specs = expand(load_suite(suite_path, "default"))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    cache = DataCache()
    cache.for_spec(specs[0])  # built once, outside the timings
    out: dict[str, dict[int, float]] = {k: {} for k in ("unpacked", "packed", "unpacked_step", "packed_step")}
    try:
        for b in sorted({s.batch_size for s in specs}):
            group = [s for s in specs if s.batch_size == b]
            t = time.perf_counter()
            alone = [train_trial(s, cache) for s in group]
            out["unpacked"][b] = time.perf_counter() - t
            t = time.perf_counter()
            jointly = [r for pack in make_packs(group, pack_size) for r in train_pack(pack, cache)]
            out["packed"][b] = time.perf_counter() - t
            out["unpacked_step"][b] = _mean(r.time_per_step_s for r in alone if r.time_per_step_s)
            out["packed_step"][b] = _mean(r.time_per_step_s for r in jointly if r.time_per_step_s)
    finally:
        torch.set_num_threads(threads)
    return out


def _mean(values) -> float:
    values = list(values)
    return sum(values) / len(values) if values else float("nan")


def _cpu_model() -> str:
    from claimbench.env import cpu_model

    return cpu_model()


if __name__ == "__main__":
    sys.exit(main())
