"""The simulated trials every calibration scenario draws from: the noise of a trial, the learning rates tuned per
level, the tuned grid of the argbest kinds (per seed, or one grid for every seed of an experiment), the metric
rounded as the store records it, and the pilot simulations that measure a scenario's SD."""

from __future__ import annotations

import math
from typing import Any, Callable, Sequence

import numpy as np
import pandas as pd

from claimbench.analysis.frontier import argbest_table, seed_slopes
from claimbench.analysis.isolation import Design

#: Trial noise: validation accuracy per trial, test minus validation, the per-seed shift.
SIGMA_VAL, SIGMA_TEST, SIGMA_SEED = 0.01, 0.005, 0.01
#: Learning-rate penalties (three LRs tuned per level): close enough that noise changes the pick.
LR_PENALTY = (0.0, -0.005, -0.012)
LRS = (0.01, 0.03, 0.1)
PILOT_SEEDS = 20000


def cell_values(rng: np.random.Generator, means: np.ndarray, seeds: int) -> tuple[np.ndarray, np.ndarray]:
    """Validation and test accuracy per (level, lr, seed) for level means ``means``."""
    shift = rng.normal(0, SIGMA_SEED, seeds)
    lr = np.asarray(LR_PENALTY)
    val = means[:, None, None] + lr[None, :, None] + shift[None, None, :] \
        + rng.normal(0, SIGMA_VAL, (len(means), len(lr), seeds))
    test = val + rng.normal(0, SIGMA_TEST, val.shape)
    return val, test


def level_frame(axis: str, levels: Sequence[Any], val: np.ndarray, test: np.ndarray, **extra: np.ndarray) -> pd.DataFrame:
    n_lv, n_lr, n_s = val.shape
    idx = np.indices(val.shape).reshape(3, -1)
    lv = np.asarray(levels, dtype=object)[idx[0]]
    frame = pd.DataFrame({axis: list(lv), "lr": np.asarray(LRS)[idx[1]], "seed": idx[2],
                          "status": "completed", "val_acc": val.ravel(), "test_acc": test.ravel(),
                          "steps_done": 100})
    frame["trial_id"] = [f"{a}-{b}-{c}" for a, b, c in zip(idx[0], idx[1], idx[2])]
    for name, values in extra.items():
        frame[name] = values.ravel()
    return frame


def selected_sd() -> float:
    """SD of one seed's difference of the selected trial's test accuracy between two equal levels."""
    rng = np.random.default_rng(12345)
    val, test = cell_values(rng, np.zeros(2), PILOT_SEEDS)
    pick = np.take_along_axis(test, val.argmax(axis=1)[:, None, :], axis=1)[:, 0, :]
    return float(np.std(pick[0] - pick[1], ddof=1))


def levels_builder(axis: str, levels: Sequence[Any], means: Callable[[float, float], np.ndarray]):
    def build(rng, seeds, theta, sd):
        val, test = cell_values(rng, means(theta, sd), seeds)
        return level_frame(axis, levels, val, test), Design(scientific=(axis,), nuisance=("lr",), fixed=())
    return build


#: The tuned grid of the frontier scenarios: factors of 2 (log2 values), as the default suites ship.
TUNED_GRID = 2.0 ** np.arange(-12, 15)
#: The optimum's scatter per cell (log2 units) and the curvature of val_acc around it (per log2 unit²).
OPT_SIGMA, CURVATURE = 0.3, 0.02
#: The validation and test split sizes the metric is rounded to: the built-in mnist1d at its default 5000
#: examples keeps 1000 for test and 800 of the other 4000 for validation (workloads/data.py), so its val_acc is a
#: multiple of 1/800 and test_acc of 1/1000, as the store records them.
N_VAL, N_TEST = 800, 1000


def tuned_frame(rng: np.random.Generator, levels: np.ndarray, opt_log2: np.ndarray, seeds: int,
                 column: str) -> pd.DataFrame:
    """val_acc over the tuned grid per (level, seed), peaked at ``opt_log2`` (per level) plus a per-seed offset
    (uniform over one grid step, so the grid's position is random) and per-cell scatter; test = val + noise."""
    g = np.log2(TUNED_GRID)
    offset = rng.uniform(-0.5, 0.5, seeds)
    opt = opt_log2[:, None] + offset[None, :] + rng.normal(0, OPT_SIGMA, (len(levels), seeds))  # (levels, seeds)
    val = 0.9 - CURVATURE * (g[None, :, None] - opt[:, None, :]) ** 2 + rng.normal(0, SIGMA_SEED, seeds)[None, None, :] \
        + rng.normal(0, 0.002, (len(levels), len(g), seeds))
    idx = np.indices(val.shape).reshape(3, -1)
    frame = pd.DataFrame({"batch_size": levels[idx[0]], column: TUNED_GRID[idx[1]], "seed": idx[2],
                          "status": "completed", "val_acc": val.ravel(), "test_acc": val.ravel(), "steps_done": 100,
                          "b_simple": 256.0})
    frame["trial_id"] = [f"{a}-{b}-{c}" for a, b, c in zip(*idx)]
    return frame


def rounded_accuracy(values: np.ndarray, n: int) -> np.ndarray:
    """An accuracy as a count of ``n`` examples: rounded to 1/n and kept inside [0, 1]."""
    return np.clip(np.round(np.asarray(values) * n), 0, n) / n


def fixed_offsets(rng: np.random.Generator, levels: np.ndarray, opt_log2: np.ndarray, seeds: int,
                   scatter: float) -> np.ndarray:
    """The optimum per (level, seed) relative to ONE grid shared by every seed of the experiment: the grid's
    offset (uniform over one step) is drawn once per call, i.e. once per simulated experiment, as a real suite
    fixes its grid before the run; only the per-cell scatter varies by seed."""
    offset = rng.uniform(-0.5, 0.5)
    return opt_log2[:, None] + offset + rng.normal(0, scatter, (len(levels), seeds))


def fixed_tuned_frame(rng: np.random.Generator, levels: np.ndarray, opt_log2: np.ndarray, seeds: int,
                       column: str, scatter: float, peak: float = 2.0) -> pd.DataFrame:
    """As :func:`tuned_frame`, shaped like a real run: one grid for every seed (its offset drawn once per
    experiment, :func:`fixed_offsets`), the optimum's per-cell scatter ``scatter`` grid steps, and val_acc and
    test_acc rounded as the store records them (to 1/N_VAL and 1/N_TEST). ``peak``: val_acc falls as
    CURVATURE |distance|^peak from the optimum (2: a parabola, which the interpolation fits exactly)."""
    g = np.log2(TUNED_GRID)
    opt = fixed_offsets(rng, levels, opt_log2, seeds, scatter)
    d = g[None, :, None] - opt[:, None, :]
    fall = d ** 2 if peak == 2.0 else np.abs(d) ** peak
    val = 0.9 - CURVATURE * fall + rng.normal(0, SIGMA_SEED, seeds)[None, None, :] \
        + rng.normal(0, 0.002, (len(levels), len(g), seeds))
    test = val + rng.normal(0, SIGMA_TEST, val.shape)
    idx = np.indices(val.shape).reshape(3, -1)
    frame = pd.DataFrame({"batch_size": levels[idx[0]], column: TUNED_GRID[idx[1]], "seed": idx[2],
                          "status": "completed", "val_acc": rounded_accuracy(val, N_VAL).ravel(),
                          "test_acc": rounded_accuracy(test, N_TEST).ravel(), "steps_done": 100, "b_simple": 256.0})
    frame["trial_id"] = [f"{a}-{b}-{c}" for a, b, c in zip(*idx)]
    return frame


def tuned_table(frame: pd.DataFrame, column: str) -> np.ndarray:
    """Seeds x levels of the kind's own per-cell tuned value (analysis/frontier.py: the one selection rule, then
    the interpolation between grid neighbours)."""
    _, wide, _ = argbest_table(frame, "batch_size", column, "val_acc")
    return wide.to_numpy(dtype=float)


def slope_sd(levels: np.ndarray, shape: Callable[[float], np.ndarray], lo: float, hi: float,
              fixed_scatter: float | None = None) -> float:
    """SD of one seed's slope (fitted over [lo, hi]) under ``shape(slope=1)``, by a pilot of the same model and
    the kind's own statistic. Per-seed grid: 400 seeds in one frame. Fixed grid (``fixed_scatter``: the per-cell
    scatter): the SD within an experiment, pooled over 40 experiments of 10 seeds (each its own grid offset):
    the spread an interval over seeds sees."""
    rng = np.random.default_rng(11)
    if fixed_scatter is None:
        table = tuned_table(tuned_frame(rng, levels, shape(1.0), 400, "x"), "x")
        return float(np.nanstd(seed_slopes(levels, table, lo, hi), ddof=1))
    variances = [np.nanvar(seed_slopes(levels, tuned_table(
        fixed_tuned_frame(rng, levels, shape(1.0), 10, "x", fixed_scatter), "x"), lo, hi), ddof=1)
        for _ in range(40)]
    return float(math.sqrt(np.mean(variances)))


def lazy_sd(compute: Callable[[], float]) -> Callable[[], float]:
    """A pilot SD computed when first asked for (a row of its scenario runs), then kept."""
    box: list[float] = []

    def sd() -> float:
        if not box:
            box.append(compute())
        return box[0]
    return sd


def grid_words(fixed_scatter: float | None, rounded: str = f"val_acc rounded to 1/{N_VAL}, test_acc to 1/{N_TEST}"
                ) -> tuple[str, str]:
    """(the scenario name's prefix, its note) for a per-seed or a fixed grid whose metric is ``rounded``."""
    if fixed_scatter is None:
        return "", "the grid's offset is drawn per seed"
    return (f"fixed grid, scatter {fixed_scatter:g} step: ",
            f"one grid for every seed, its offset drawn per experiment; the optimum's per-cell scatter "
            f"{fixed_scatter:g} grid step; {rounded}")
