"""A claim kind added from outside claimbench, the way docs/extending.md says: this one file (the statistic,
its registration and its calibration scenario) plus ``recipe_figure.py``. ``best_accuracy_above``: the best
validation-selected test accuracy per seed is above ``threshold``."""

from __future__ import annotations

import numpy as np
import pandas as pd

from claimbench.analysis.inference import Hypothesis, decide_mean
from claimbench.analysis.selection import best_trials
from claimbench.claims.base import (Claim, ClaimKind, ClaimResult, Design, Param, Scenario, Truth, decided,
                                    register)

NAME = "best_accuracy_above"
UNIT = "test_acc"


def evaluate(claim: Claim, frame: pd.DataFrame, design: Design) -> ClaimResult:
    threshold = claim.params["threshold"]
    done = frame[frame["status"] == "completed"]
    best = best_trials(done, ["seed"], "val_acc", [a for a in design.nuisance if a in done.columns], sign=1)
    values = best.set_index("seed")["test_acc"].sort_index()
    h = Hypothesis("greater", support=threshold, refute=threshold)
    d = decide_mean(values.to_numpy(), h)
    return decided(d, h, UNIT, claim_id=claim.id, kind=NAME, statistic="mean over seeds of the best test_acc",
                   summary=f"mean best test_acc {d.estimate:.3f} against {threshold:g}", n_seeds=len(values),
                   n_trials=len(frame), data=[{"seed": int(s), "test_acc": float(v)} for s, v in values.items()],
                   estimates=[{"group": "all", "mean": d.estimate, "lo": d.ci[0], "hi": d.ci[1], "n": len(values),
                               "method": d.method}])


def _build(rng: np.random.Generator, seeds: int, theta: float, sd: float):
    """Seeds x 3 learning rates; the best one's test accuracy lies ``theta`` SD above 0.5 (the boundary)."""
    rows = []
    for seed in range(seeds):
        shift = 0.5 + theta * sd + rng.normal(0, sd)
        for i, lr in enumerate((0.01, 0.1, 1.0)):
            acc = shift - 0.05 * abs(i - 1)
            rows.append({"seed": seed, "lr": lr, "status": "completed", "val_acc": acc, "test_acc": acc})
    return pd.DataFrame(rows), Design(scientific=(), nuisance=("lr",), fixed=())


def scenarios() -> list[Scenario]:
    truths = (Truth("null: mean = threshold", 0.0, True),
              Truth("effect: 2 SD above", 2.0, False, "supported"))
    return [Scenario(NAME, "three learning rates, the middle one best", {"threshold": 0.5}, _build,
                     lambda: 0.02, truths)]


KIND = register(ClaimKind(
    name=NAME,
    params={"threshold": Param(float, 0.5, "the accuracy the best trial must beat")},
    evaluate=evaluate,
    statistic="mean over seeds of the best test_acc",
    method="Student t over seeds",
    axis_params=(),
    reads="tuned",
    scenarios=scenarios,
))
