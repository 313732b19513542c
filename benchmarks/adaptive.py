"""Adaptive against exhaustive: what the experimenter loop's compute rules save, and what they change.

    python benchmarks/adaptive.py faq --tier default          # runs both ways, back to back (tens of minutes)
    python benchmarks/adaptive.py --replay reports/faq-default  # offline, on a published run's frames (minutes)
    python benchmarks/adaptive.py --replay reports/faq-default --halve 0.5  # the same with halving at 50%

Run mode trains SUITE (a suite or group) at TIER twice into fresh run dirs, on this checkout's revision:
``claimbench run`` (adaptive, the default) and ``claimbench run --exhaustive``. It prints each one's trials,
summed trial time and wall time, and the verdict agreement, raw and Holm-adjusted, with every difference.

Replay mode judges a published (exhaustive) report's frames the way the loop would have trained them: the
seeds of each look, the futility stops, the pruned cells (``claimbench.loop``: the same functions), and
compares the final verdicts with the published frames' own. "saved" is the share of the summed trial time
of the trials the rules leave out; the wall-clock saving is smaller, since pruning thins the packs.
``--halve F`` sets the halving rule (the suites' own otherwise): each round's trials are halved inside their
packs on the published curves (``claimbench.loop.halve_frame``); a halted trial keeps the share of its wall time
up to its rung (its rung step over its budget's last step), and is absent from the frames judged.

The last line: ``adaptive_wall_ratio=X verdicts_same=N/M holm_same=N/M`` (run mode; replay mode prints
``adaptive_time_share=X`` instead of the wall ratio: the summed trial time the rules keep).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd


def verdicts(path: Path) -> dict[tuple[str, str], tuple[str, str]]:
    """(suite, claim) -> (verdict, Holm-adjusted verdict) of a verdicts.json's claim-level rows."""
    doc = json.loads((path / "verdicts.json").read_text())
    return {(r["suite"], r["claim_id"]): (r["verdict"], r.get("adjusted_verdict", r["verdict"]))
            for r in doc["verdicts"] if r.get("level", "claim") == "claim"}


def compare(a: dict, b: dict) -> tuple[int, int, int, list[str]]:
    keys = sorted(set(a) & set(b))
    raw = sum(a[k][0] == b[k][0] for k in keys)
    holm = sum(a[k][1] == b[k][1] for k in keys)
    diffs = [f"{s}/{c}: adaptive {a[(s, c)][0]} (Holm {a[(s, c)][1]}), exhaustive {b[(s, c)][0]} "
             f"(Holm {b[(s, c)][1]})" for s, c in keys if a[(s, c)] != b[(s, c)]]
    return raw, holm, len(keys), diffs


def summed_time(run_dir: Path) -> tuple[int, float]:
    frames = [pd.read_parquet(p) for p in run_dir.rglob("trials.parquet")]
    f = pd.concat(frames) if frames else pd.DataFrame({"wall_s": []})
    return len(f), float(f["wall_s"].sum())


def run_mode(suite: str, tier: str, out: Path) -> str:
    times, training = {}, {}
    for mode, extra in (("exhaustive", ["--exhaustive"]), ("adaptive", [])):
        cmd = [sys.executable, "-m", "claimbench", "run", suite, "--tier", tier, "--out", str(out / mode),
               "--quiet", *extra]
        start = time.perf_counter()
        done = subprocess.run(cmd, check=True, stdout=subprocess.PIPE, text=True)
        times[mode] = time.perf_counter() - start
        found = re.search(r"trained \d+ trials? in (\d+)s", done.stdout)  # the run's closing line
        training[mode] = float(found.group(1)) if found else float("nan")
        n, summed = summed_time(out / mode)
        print(f"{mode:10s} trials={n} summed_trial_s={summed:.0f} training_s={training[mode]:.0f} "
              f"wall_s={times[mode]:.0f}", flush=True)
    raw, holm, n, diffs = compare(verdicts(out / "adaptive"), verdicts(out / "exhaustive"))
    for d in diffs:
        print("  differs:", d)
    print(f"training_ratio={training['adaptive'] / training['exhaustive']:.3f} (the runs' training alone, without "
          "imports, Ray's start and the report)")
    return f"adaptive_wall_ratio={times['adaptive'] / times['exhaustive']:.3f} verdicts_same={raw}/{n} holm_same={holm}/{n}"


def replay(path: Path, halve: float | None = None) -> str:
    import dataclasses

    from claimbench.analysis import inference
    from claimbench.analysis.frames import without_halted
    from claimbench.api import evaluate_published
    from claimbench.claims import evaluate_claims, evidence
    from claimbench.loop import evaluate
    from claimbench.loop import replay as replay_looks

    evs = evaluate_published(path)
    ref, got, kept_s, all_s, halted = [], [], 0.0, 0.0, 0
    for ev in evs:
        suite, frame, curves = ev.suite, ev.frame, ev.curves()
        design = suite.design()

        def judge(part):
            cur = curves[curves["trial_id"].isin(part["trial_id"])] if len(curves) else curves
            return evaluate_claims(list(suite.claims), part, design, cur, variants=False)

        rules = suite.rules() if halve is None else dataclasses.replace(suite.rules(), halve=halve)
        trained, stopped, _ = replay_looks(frame, list(suite.claims), design, rules, judge, curves=curves)
        judged = without_halted(trained)
        part = curves[curves["trial_id"].isin(judged["trial_id"])] if len(curves) else curves
        mine = evaluate(list(suite.claims), judged, design, part, {"stopped": stopped})
        kept_s += float(trained["wall_s"].sum())
        n_halted = int((trained["status"] == "halted").sum())
        halted += n_halted
        all_s += float(frame["wall_s"].sum())
        for r, q in zip(ev.results, mine):
            ref.append((suite.name, r))
            got.append((suite.name, q))
        print(f"{suite.name:28s} trials {len(trained):5d} of {len(frame):5d}, halted {n_halted:4d}; "
              f"stopped: {', '.join(sorted(stopped)) or '-'}", flush=True)
    adj_ref = inference.adjust([evidence(r) for _, r in ref])
    adj_got = inference.adjust([evidence(r) for _, r in got])
    a = {(s, r.claim_id): (r.verdict, h) for (s, r), h in zip(got, adj_got)}
    b = {(s, r.claim_id): (r.verdict, h) for (s, r), h in zip(ref, adj_ref)}
    raw, holm, n, diffs = compare(a, b)
    for d in diffs:
        print("  differs:", d)
    print(f"halted={halted} summed_trial_s={kept_s:.0f} of {all_s:.0f}")
    return f"adaptive_time_share={kept_s / all_s:.3f} verdicts_same={raw}/{n} holm_same={holm}/{n}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("suite", nargs="?", help="suite or group to run both ways")
    ap.add_argument("--tier", default="default")
    ap.add_argument("--out", default=None, help="where the two run dirs go [a temporary dir]")
    ap.add_argument("--replay", default=None, help="a published report dir to replay instead of training")
    ap.add_argument("--halve", type=float, default=None, help="replay with this halving rung (0: off) [the suites' own: 0.5 unless set]")
    args = ap.parse_args()
    print(f"# {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, python {platform.python_version()}")
    if args.replay:
        print(replay(Path(args.replay), args.halve))
    elif args.suite:
        out = Path(args.out or tempfile.mkdtemp(prefix="cb-adaptive-"))
        print(run_mode(args.suite, args.tier, out))
    else:
        ap.error("give a suite or --replay DIR")


if __name__ == "__main__":
    main()
