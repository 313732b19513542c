"""The dry run's estimate against the time a run takes, after one run left its records.

    python benchmarks/estimate.py faq --tier smoke
    python benchmarks/estimate.py examples/tiny_resnet/suites/all.toml --tier smoke

Trains SUITE (a suite, a suite path or a group) at TIER into a fresh run dir, then plans it as after an edit
to the training code (every suite's code fingerprint changed: every trial id changes, so everything retrains,
and the run dir holds the records of the earlier code), prints the dry run's estimate (``claimbench.plan``:
the cost model fitted on those records) and the default model's (no records), trains the same trials again
into a second fresh run dir (a changed fingerprint would train the same arithmetic; Ray refuses to train a
fingerprint its workers do not have), and compares. "measured" is that run's wall time less Ray's start, as
the estimate counts it.

The last line: ``estimate_s=E measured_s=M ratio=R default_s=D default_ratio=Q`` (ratio: estimate / measured).
"""

from __future__ import annotations

import argparse
import dataclasses
import tempfile
import time
from pathlib import Path

from claimbench.api import run_suites
from claimbench.plan import describe, plan
from claimbench.runner.packs import DEFAULT_PACK_SIZE
from claimbench.suite import load_targets


def timed_run(targets, executor: str) -> float:
    start = time.monotonic()
    summaries = run_suites(targets, executor=executor, progress=False)
    return time.monotonic() - start - (summaries[0].ray_startup_s or 0.0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("suite")
    ap.add_argument("--tier", default="smoke")
    ap.add_argument("--executor", default="ray")
    ap.add_argument("--out", default=None, help="the run dir's parent (default: a temporary folder)")
    args = ap.parse_args()
    root = Path(args.out or tempfile.mkdtemp(prefix="estimate-"))
    suites = load_targets([args.suite], args.tier)
    first = timed_run([(s, root / s.name) for s in suites], args.executor)
    print(f"first run: {first:.1f} s (Ray's start not counted)")
    changed = [dataclasses.replace(s, code=f"{s.code} (changed)") for s in suites]
    targets = [(s, root / s.name) for s in changed]
    fresh = [(s, root / "fresh" / s.name) for s in changed]
    p = plan(targets, DEFAULT_PACK_SIZE, args.executor)
    default = plan(fresh, DEFAULT_PACK_SIZE, args.executor)
    for line in describe(p, args.tier)[-3:-1]:
        print(line)
    measured = timed_run([(s, root / "again" / s.name) for s in suites], args.executor)
    print(f"second run (the same trials, a fresh run dir): {measured:.1f} s (Ray's start not counted)")
    print(f"estimate_s={p.estimate_s:.1f} measured_s={measured:.1f} ratio={p.estimate_s / measured:.2f} "
          f"default_s={default.estimate_s:.1f} default_ratio={default.estimate_s / measured:.2f}")


if __name__ == "__main__":
    main()
