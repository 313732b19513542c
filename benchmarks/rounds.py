"""The experimenter loop's rounds: overlapping, in one Ray (as shipped) against lockstep, Ray restarted per round.

    python benchmarks/rounds.py batch_size --tier ci      # two adaptive runs, back to back (minutes)

Both runs train the same suite or group adaptively into fresh run dirs, in this process, through the Ray
executor. **Shipped**: one Ray and its workers (with the datasets they built) for every round
(``Executor.session``), and each suite's next round queued while the others train (``loop.Rounds``,
``Ledger.more``). **Lockstep**: what claimbench did before: every suite's round ends before any suite is
judged, and each round starts and stops its own Ray and workers (the executor never asks ``Ledger.more``, and
``session`` keeps nothing). The rounds' decisions must be the same; only the wall time differs.

The last line: ``rounds_wall_ratio=X looks_same=N/M`` (X: shipped over lockstep training wall time).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import tempfile
import time
from pathlib import Path
from unittest import mock


def train(targets, lockstep: bool) -> float:
    from claimbench.api import run_suites
    from claimbench.runner.base import Executor, Ledger

    with contextlib.ExitStack() as stack:
        if lockstep:
            stack.enter_context(mock.patch.object(Ledger, "more", lambda self: []))
            stack.enter_context(mock.patch("claimbench.runner.ray_executor.RayExecutor.session", Executor.session))
        start = time.perf_counter()
        run_suites(targets, executor="ray", progress=False)
        return time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("suite", help="suite or group")
    ap.add_argument("--tier", default="ci")
    ap.add_argument("--out", default=None, help="where the run dirs go [a temporary dir]")
    args = ap.parse_args()
    from claimbench.suite import load_targets

    out = Path(args.out or tempfile.mkdtemp(prefix="cb-rounds-"))
    print(f"# {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, python {platform.python_version()}")
    looks, walls = {}, {}
    for mode in ("lockstep", "shipped"):
        targets = [(suite, out / mode / suite.name) for suite in load_targets([args.suite], args.tier)]
        walls[mode] = train(targets, lockstep=mode == "lockstep")
        looks[mode] = {suite.name: [k["text"] for k in json.loads((d / "adaptive.json").read_text())["looks"]]
                       for suite, d in targets if (d / "adaptive.json").is_file()}
        print(f"{mode:9s} wall_s={walls[mode]:.1f} suites={len(targets)}", flush=True)
    same = sum(looks["shipped"].get(k) == v for k, v in looks["lockstep"].items())
    print(f"rounds_wall_ratio={walls['shipped'] / walls['lockstep']:.3f} looks_same={same}/{len(looks['lockstep'])}")


if __name__ == "__main__":
    main()
