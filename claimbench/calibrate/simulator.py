"""Running the scenarios: ``reps`` simulated frames per (scenario, seed count, truth) through the kind's own
``evaluate``, counting supported and refuted verdicts; in parallel with ``jobs``, the same rows either way."""

from __future__ import annotations

import multiprocessing as mp
import time
import zlib
from typing import Callable, Sequence

import numpy as np

from claimbench.analysis.inference import ALPHA
from claimbench.calibrate.scenarios import SCENARIO_KINDS, Scenario, scenarios
from claimbench.calibrate.table import Row, format_row
from claimbench.claims import KINDS, Claim


_CACHE: dict[str, list[Scenario]] = {}


def _scenarios_cached() -> list[Scenario]:
    if "all" not in _CACHE:
        _CACHE["all"] = scenarios()
    return _CACHE["all"]


def _one(task: tuple[int, int, int, int, int]) -> Row:
    """Simulate one (scenario index, seed count, truth index, reps, seed) task of :func:`run`."""
    i, n, t_i, reps, seed = task
    return simulate(_scenarios_cached()[i], n, t_i, reps, seed)


def simulate(sc: Scenario, n: int, t_i: int, reps: int, seed: int = 0) -> Row:
    """Simulate one (scenario, seed count, truth): ``reps`` frames through the kind's real evaluate. The random
    stream depends on the scenario's name, the seed count, the truth and ``seed`` only."""
    truth = sc.truths[t_i]
    kind = KINDS[sc.kind]
    claim = Claim(f"cal-{sc.kind}", sc.kind, "", sc.name, kind.resolve_params(sc.params))
    sd = sc.sd()
    rng = np.random.default_rng([seed, n, t_i, zlib.crc32(sc.name.encode())])
    counts = {"supported": 0, "refuted": 0, "inconclusive": 0}
    start = time.perf_counter()
    theta = truth.theta(sd) if callable(truth.theta) else truth.theta
    for _ in range(reps):
        frame, design = sc.build(rng, n, theta, sd)
        counts[kind.evaluate(claim, frame, design).verdict] += 1
    row = Row(sc.kind, sc.name, n, truth.label, truth.null, truth.right, reps,
              counts["supported"] / reps, counts["refuted"] / reps, sd, time.perf_counter() - start)
    if truth.null:
        row.exceeds = [side for side in ("supported", "refuted")
                       if getattr(row, side) > ALPHA + 2 * row.se(ALPHA)]
    return row


GRIDS = ("any", "fixed", "per-seed")


def run(kinds: Sequence[str] | None = None, seeds: Sequence[int] = (3, 5, 8), reps: int = 200, seed: int = 0,
        progress: Callable[[str], None] | None = None, jobs: int = 1, nulls_only: bool = False,
        grid: str = "any") -> list[Row]:
    """Simulate and evaluate; one Row per (scenario, seed count, truth), in a fixed order. Each row has its
    own random stream, so the table does not depend on ``jobs``. ``grid``: every scenario ("any"), or only
    the argbest scenarios whose tuned grid is "fixed" (one for every seed of an experiment) or "per-seed"."""
    chosen = list(kinds or SCENARIO_KINDS)
    unknown = [k for k in chosen if k not in SCENARIO_KINDS]
    if unknown:
        raise ValueError(f"no calibration scenario for {', '.join(unknown)}; known: {', '.join(SCENARIO_KINDS)}")
    if grid not in GRIDS:
        raise ValueError(f"grid must be one of {', '.join(GRIDS)}, got {grid!r}")
    all_sc = _scenarios_cached()
    tasks = [(i, n, t_i, reps, seed) for i, sc in enumerate(all_sc)
             if sc.kind in chosen and grid in ("any", sc.grid)
             for n in seeds for t_i in range(len(sc.truths)) if sc.truths[t_i].null or not nulls_only]
    rows: list[Row] = []
    if jobs > 1:
        with mp.get_context("fork").Pool(jobs) as pool:
            for row in pool.imap(_one, tasks):
                rows.append(row)
                if progress:
                    progress(format_row(row))
    else:
        for task in tasks:
            rows.append(_one(task))
            if progress:
                progress(format_row(rows[-1]))
    return rows
