"""Running the scenarios: ``reps`` simulated frames per (scenario, seed count, truth) through the kind's own
``evaluate``, counting supported and refuted verdicts; in parallel with ``jobs``, the same rows either way."""

from __future__ import annotations

import dataclasses
import multiprocessing as mp
import time
import zlib
from typing import Callable, Sequence

import numpy as np

import pandas as pd

from claimbench.analysis.inference import ALPHA
from claimbench.calibrate.scenarios import Scenario, scenario_kinds, scenarios
from claimbench.calibrate.table import GROW_FACTOR, Row, format_row
from claimbench.claims import KINDS, Claim, ClaimKind
from claimbench.loop import replay, two_stage
from claimbench.suite.model import DEFAULT_RULES, Rules


_CACHE: dict[tuple[str, ...], list[Scenario]] = {}


def _scenarios_cached() -> list[Scenario]:
    """The scenarios, built once per set of registered kinds (a kind registered later brings its own)."""
    key = scenario_kinds()
    if key not in _CACHE:
        _CACHE[key] = scenarios()
    return _CACHE[key]


def _one(task: tuple[int, int, int, int, int, str]) -> Row:
    """Simulate one (scenario index, seed count, truth index, reps, seed, design) task of :func:`run`."""
    i, n, t_i, reps, seed, design = task
    return simulate(_scenarios_cached()[i], n, t_i, reps, seed, design)


#: fixed: every seed of the full matrix; adaptive: the loop's default compute rules; grow: those rules with
#: ``grow`` to twice the seed count (``table.GROW_FACTOR``), the frame holding the extra seeds it may open.
DESIGNS = ("fixed", "adaptive", "grow")


def adaptive_verdict(kind: ClaimKind, claim: Claim, frame: pd.DataFrame, design, rules: Rules = DEFAULT_RULES,
                     registered: int | None = None) -> str:
    """The verdict the experimenter loop's compute rules reach on ``frame``, a full matrix (``loop.replay``: the
    seeds of each look, futility stops, pruned cells, grown seeds beyond the first ``registered``):
    inconclusive when the claim stops, else the kind's verdict on the trials the rules would have trained
    (a claim that did not grow: on the registered seeds)."""
    if "trial_id" not in frame.columns:
        frame = frame.assign(trial_id=[f"t{i}" for i in range(len(frame))])
    if "status" not in frame.columns:
        frame = frame.assign(status="completed")
    trained, stopped, grown = replay(frame, [claim], design, rules, lambda part: [kind.evaluate(claim, part, design)],
                                     registered)
    if claim.id in stopped:
        return "inconclusive"
    if registered and claim.id not in grown:
        seeds = sorted(trained["seed"].unique())[:registered]
        trained = trained[trained["seed"].isin(seeds)]
    return two_stage([kind.evaluate(claim, trained, design)], rules.grow)[0].verdict


def simulate(sc: Scenario, n: int, t_i: int, reps: int, seed: int = 0, design: str = "fixed") -> Row:
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
    grow = dataclasses.replace(DEFAULT_RULES, grow=GROW_FACTOR * n)
    for _ in range(reps):
        frame, roles = sc.build(rng, GROW_FACTOR * n if design == "grow" else n, theta, sd)
        if design == "grow":
            verdict = adaptive_verdict(kind, claim, frame, roles, grow, registered=n)
        elif design == "adaptive":
            verdict = adaptive_verdict(kind, claim, frame, roles)
        else:
            verdict = kind.evaluate(claim, frame, roles).verdict
        counts[verdict] += 1
    row = Row(sc.kind, sc.name, n, truth.label, truth.null, truth.right, reps,
              counts["supported"] / reps, counts["refuted"] / reps, sd, time.perf_counter() - start, design=design)
    if truth.null:
        row.exceeds = [side for side in ("supported", "refuted")
                       if getattr(row, side) > ALPHA + 2 * row.se(ALPHA)]
    return row


GRIDS = ("any", "fixed", "per-seed")


def run(kinds: Sequence[str] | None = None, seeds: Sequence[int] = (3, 5, 8), reps: int = 200, seed: int = 0,
        progress: Callable[[str], None] | None = None, jobs: int = 1, nulls_only: bool = False,
        grid: str = "any", design: str = "fixed") -> list[Row]:
    """Simulate and evaluate; one Row per (scenario, seed count, truth), in a fixed order. Each row has its
    own random stream, so the table does not depend on ``jobs``. ``grid``: every scenario ("any"), or only
    the argbest scenarios whose tuned grid is "fixed" (one for every seed of an experiment) or "per-seed".
    ``design``: one of ``DESIGNS`` (:func:`adaptive_verdict` for the loop's)."""
    known = scenario_kinds()
    chosen = list(kinds or known)
    unknown = [k for k in chosen if k not in known]
    if unknown:
        raise ValueError(f"no calibration scenario for {', '.join(unknown)}; known: {', '.join(known)}")
    if grid not in GRIDS:
        raise ValueError(f"grid must be one of {', '.join(GRIDS)}, got {grid!r}")
    all_sc = _scenarios_cached()
    if design not in DESIGNS:
        raise ValueError(f"design must be one of {', '.join(DESIGNS)}, got {design!r}")
    tasks = [(i, n, t_i, reps, seed, design) for i, sc in enumerate(all_sc)
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
