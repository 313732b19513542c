"""This checkout's training engines against another revision's, on real packs of the FAQ's costliest suites.

    python benchmarks/engine_ab.py --against REV          # REV: a git revision; about 5 minutes on 2 CPU cores
    python benchmarks/engine_ab.py --against REV --quick  # fewer steps and one repeat

Each case is one pack of a suite's default-tier trials (a selection such as ``width=512``, the first
trials of it, as many as the runner packs together: ``train.packing.pack_width``), with its budget cut
to the case's steps (``CASES``; ``--scale`` multiplies them) and its evaluations cut in proportion (so evaluation keeps its share of the real
run's time). The pack is trained by this checkout and by REV (checked out into a temporary git
worktree), each in a subprocess of its own with one torch thread, alternating, ``--repeats`` times;
the fastest time of each is kept (load only adds time). The two must give the same records: every
field but the timings and the code fingerprint (and the trial id made from it), compared through a digest, is printed as ``same`` or ``DIFFERENT``.

Then an estimate, labelled as one: the published run's summed trial cost of each case's trials
(``reports/faq-default`` frames: each trial's share of its pack's wall time), divided by the case's
ratio, against the FAQ's whole summed cost; trials outside the cases count as unchanged.

The last line is ``engine_speedup=X`` (the cases' published cost / their estimated cost) and
``faq_cost_ratio=Y`` (the whole FAQ's published summed cost / its estimate).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TIMING = {"elapsed_s", "time_per_step_s", "wall_s", "examples_per_s", "forward_latency_s", "host", "device"}

#: (suite, selection, steps): the FAQ's costliest parts in the published 8-seed run (reports/performance.md),
#: each with enough steps that one timed pack takes several seconds (a short one measures its setup).
CASES: list[tuple[str, dict[str, str], int]] = [
    ("dropout_width", {"width": "512"}, 150),
    ("dropout_width", {"width": "256"}, 300),
    ("dropout", {"width": "64"}, 150),
    ("dropout", {"width": "16"}, 300),
    ("initialization_depth", {"depth": "16"}, 200),
    ("initialization_depth", {"depth": "8"}, 300),
    ("optimizers_cnn_tuned", {"optimizer": "adam"}, 300),
    ("batch_size", {"batch_size": "2"}, 1500),
    ("batch_size", {"batch_size": "256"}, 600),
]


def _selected(specs: list, where: dict[str, str]) -> list:
    return [s for s in specs if all(str(getattr(s, k)) == v for k, v in where.items())]


def _label(i: int) -> str:
    suite, where, _ = CASES[i]
    return f"{suite} " + " ".join(f"{k}={v}" for k, v in where.items())


def worker(suite: str, where: dict[str, str], steps: int) -> dict:
    """Train one cut pack of the case in this process (whichever claimbench is on the path)."""
    import dataclasses
    import math

    import torch

    from claimbench.runner.packs import DEFAULT_PACK_SIZE, pack_bytes
    from claimbench.suite import expand, load_suite
    from claimbench.train.pack import train_pack
    from claimbench.train.packing import pack_width
    from claimbench.workloads.data import DataCache

    torch.set_num_threads(1)
    specs = _selected(expand(load_suite(suite, "default")), where)
    first = specs[0]
    cache = DataCache()
    n_train = len(cache.for_spec(first, "cpu").y_train)
    real = first.steps or first.epochs * math.ceil(n_train / first.batch_size)
    width = pack_width(first, DEFAULT_PACK_SIZE, pack_bytes(first))
    pack = specs[:width]
    evals = max(1, round(first.evals * steps / real))  # evaluation keeps its share of the real run
    cut = [dataclasses.replace(s, epochs=0, steps=steps, evals=evals) for s in pack]
    train_pack(cut[:2], cache)  # warm-up: data, kernels
    t = time.perf_counter()
    records = train_pack(cut, cache)
    seconds = time.perf_counter() - t
    rows = []
    for r in records:
        d = r.to_dict()
        d["curve"] = [{k: v for k, v in p.items() if k not in TIMING} for p in d.get("curve", [])]
        d["spec"] = {k: v for k, v in d["spec"].items() if k != "code"}  # the code differs: that is the point
        rows.append({k: v for k, v in d.items() if k not in TIMING | {"trial_id"}})
    digest = hashlib.sha256(json.dumps(rows, sort_keys=True, default=str).encode()).hexdigest()[:16]
    return {"seconds": seconds, "trials": len(cut), "steps": steps, "digest": digest, "real_steps": real,
            "model": first.model, "width": width}


def _run(root: Path, case: int, steps: int) -> dict:
    env = {**os.environ, "PYTHONPATH": str(root), "OMP_NUM_THREADS": "1"}
    out = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--worker", str(case), "--steps", str(steps)],
                         capture_output=True, text=True, env=env, cwd=root, timeout=1800)
    if out.returncode != 0:
        raise SystemExit(f"engine_ab: case {case} failed under {root}:\n{out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def _published_cost(where_dir: Path) -> tuple[dict[int, float], float]:
    import pandas as pd

    total, per_case = 0.0, {}
    frames = {}
    for f in sorted(where_dir.glob("*/trials.parquet")):
        frames[f.parent.name] = pd.read_parquet(f)
        total += float(frames[f.parent.name]["wall_s"].sum())
    for i, (suite, where, _) in enumerate(CASES):
        d = frames.get(suite)
        if d is None:
            continue
        mask = True
        for k, v in where.items():
            mask = mask & (d[k].astype(str) == v)
        per_case[i] = float(d.loc[mask, "wall_s"].sum())
    return per_case, total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--against", help="the git revision to compare with (required unless --worker)")
    parser.add_argument("--scale", type=float, default=1.0, help="a factor on each case's steps (default 1)")
    parser.add_argument("--repeats", type=int, default=2, help="alternating runs of each version (default 2)")
    parser.add_argument("--quick", action="store_true", help="a quarter of the steps, one repeat")
    parser.add_argument("--published", default=str(REPO / "reports" / "faq-default"),
                        help="the run whose per-trial costs the estimate scales (default reports/faq-default)")
    parser.add_argument("--cases", help="only the cases whose label contains one of these comma-separated words "
                        "(e.g. 'batch_size,cnn'); the estimate then covers only them")
    parser.add_argument("--worker", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--steps", type=int, default=150, help=argparse.SUPPRESS)  # the worker's
    args = parser.parse_args()
    if args.worker is not None:
        suite, where, _ = CASES[args.worker]
        print(json.dumps(worker(suite, where, args.steps)))
        return
    if not args.against:
        parser.error("--against REV is required")
    scale, repeats = (args.scale / 4, 1) if args.quick else (args.scale, args.repeats)
    rev = subprocess.run(["git", "rev-parse", "--short", args.against], capture_output=True, text=True, cwd=REPO)
    if rev.returncode != 0:
        raise SystemExit(f"engine_ab: --against {args.against!r} is not a revision of {REPO}")
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=REPO).stdout.strip()
    dirty = bool(subprocess.run(["git", "status", "--porcelain", "claimbench"], capture_output=True, text=True,
                                cwd=REPO).stdout.strip())
    print(f"machine: {platform.machine()} {platform.processor() or ''}, {os.cpu_count()} CPUs, 1 torch thread; "
          f"this checkout {head}{' (modified)' if dirty else ''} against {rev.stdout.strip()}; steps per trial x{scale:g}, "
          f"best of {repeats}; load average before: {'%.2f %.2f %.2f' % os.getloadavg()}", flush=True)
    published, total = _published_cost(Path(args.published))
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp) / "base"
        subprocess.run(["git", "worktree", "add", "--detach", str(base), args.against], check=True,
                       capture_output=True, cwd=REPO)
        try:
            print(f"{'case':42} {'K':>3} {'steps':>5} {'REV ms/trial-step':>18} {'this':>8} {'ratio':>6}  records")
            ratios = {}
            for i, (suite, where, case_steps) in enumerate(CASES):
                steps = max(10, round(case_steps * scale))
                if args.cases and not any(w in _label(i) for w in args.cases.split(",")):
                    continue
                best = {"base": float("inf"), "this": float("inf")}
                digests = {}
                for _ in range(repeats):
                    for name, root in (("base", base), ("this", REPO)):
                        r = _run(root, i, steps)
                        best[name] = min(best[name], r["seconds"] / (r["trials"] * r["steps"]))
                        digests[name] = r["digest"]
                ratios[i] = best["base"] / best["this"]
                print(f"{_label(i) + ' (' + r['model'] + ')':42} {r['trials']:>3} {steps:>5} {1e3 * best['base']:>18.3f} {1e3 * best['this']:>8.3f} "
                      f"{ratios[i]:>5.2f}x  {'same' if digests['base'] == digests['this'] else 'DIFFERENT'}",
                      flush=True)
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(base)], capture_output=True, cwd=REPO)
    print(f"load average after: {'%.2f %.2f %.2f' % os.getloadavg()}")
    if not published:
        print(f"no published frames under {args.published}: no estimate")
        return
    published = {i: c for i, c in published.items() if i in ratios}
    before = sum(published.values())
    after = sum(published[i] / ratios[i] for i in published)
    estimate = total - before + after
    print(f"estimate (not a measured run): the cases' published summed cost {before:.0f} s -> {after:.0f} s; "
          f"the whole FAQ's {total:.0f} s -> {estimate:.0f} s, about {estimate / 2 / 60:.0f} min on two workers")
    print(f"engine_speedup={before / after:.2f} faq_cost_ratio={total / estimate:.2f}")


if __name__ == "__main__":
    main()
