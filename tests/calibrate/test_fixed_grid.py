"""Calibration as the suites run: one tuned grid shared by every seed of an experiment, the metric
rounded as the store rounds it, and the slope statistic that stays calibrated there (the argbest interpolated
between its grid neighbours, analysis/frontier.py)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from claimbench.analysis import frontier as fx
from claimbench.analysis.isolation import Design
from claimbench.analysis.selection import tie_order
from claimbench.calibrate import format_row, scenarios, simulate, simulator, trials
from claimbench.claims import KINDS, Claim
from claimbench.cli import main

GRID = 2.0 ** np.arange(-8, 1)


def evaluate(kind, frame, design, **params):
    k = KINDS[kind]
    return k.evaluate(Claim("X", kind, "6", "", k.resolve_params(params)), frame, design)


def parabola_cell(opt_log2: float, seed: int = 0, batch: float = 8.0, column: str = "lr") -> pd.DataFrame:
    """One (batch, seed) cell: val_acc an exact parabola in log2(lr), peaked at ``opt_log2``."""
    x = np.log2(GRID)
    return pd.DataFrame({"batch_size": batch, column: GRID, "seed": seed, "status": "completed",
                         "val_acc": 0.9 - 0.02 * (x - opt_log2) ** 2, "test_acc": 0.5,
                         "trial_id": [f"{batch}-{seed}-{g}" for g in GRID]})


# ------------------------------------------------------------------ the statistic

def test_the_tuned_value_is_the_vertex_of_the_local_parabola_and_the_grid_value_stays_for_the_edge_checks():
    frame = pd.concat([parabola_cell(-4.3, seed=0), parabola_cell(-2.5, seed=1)], ignore_index=True)
    levels, wide, long = fx.argbest_table(frame, "batch_size", "lr", "val_acc")
    assert wide.loc[0, 8.0] == pytest.approx(2 ** -4.3, rel=1e-9)  # an exact parabola: its vertex exactly
    assert wide.loc[1, 8.0] == pytest.approx(2 ** -2.5, rel=1e-9)  # midway between two tied grid values
    assert sorted(long["lr"]) == [2.0 ** -4, 2.0 ** -3]  # the selected trials' grid values: what edge checks read


def test_a_tie_gives_the_same_tuned_value_whichever_trial_the_tie_rule_picks():
    frame = parabola_cell(-2.5)  # val_acc at 2^-3 and 2^-2 tie exactly
    values = []
    for reverse in (False, True):
        with tie_order(reverse):
            _, wide, long = fx.argbest_table(frame, "batch_size", "lr", "val_acc")
        values.append((float(long["lr"].iloc[0]), float(wide.iloc[0, 0])))
    assert values[0][0] != values[1][0]  # the two orders select different trials...
    assert values[0][1] == pytest.approx(values[1][1], rel=1e-12)  # ...and give one tuned value


def test_the_grid_value_is_kept_at_an_edge_next_to_a_failed_neighbour_and_on_a_flat_top():
    edge = parabola_cell(-9.0)  # the optimum below the grid: the lowest value wins
    assert fx.argbest_table(edge, "batch_size", "lr", "val_acc")[1].iloc[0, 0] == GRID[0]
    failed = parabola_cell(-4.3)
    failed.loc[failed["lr"] == 2.0 ** -5, "status"] = "diverged"
    assert fx.argbest_table(failed, "batch_size", "lr", "val_acc")[1].iloc[0, 0] == 2.0 ** -4
    flat = parabola_cell(-4.0).assign(val_acc=0.5)
    assert fx.argbest_table(flat, "batch_size", "lr", "val_acc")[1].iloc[0, 0] == GRID[0]
    # a loss is selected by its lowest value: the same vertex
    loss = parabola_cell(-4.3).assign(val_loss=lambda f: 1 - f["val_acc"])
    assert fx.argbest_table(loss, "batch_size", "lr", "val_loss")[1].iloc[0, 0] == pytest.approx(2 ** -4.3)


def test_an_optimum_flat_across_levels_gives_equal_tuned_values_and_decides_nothing():
    # every level's curve the same (its optimum between grid points); each seed shifted as a whole: the tuned
    # LR is the same at every level up to floating-point rounding (the shift moves the last bits of the
    # vertex), so every slope is 0 up to rounding (about 1e-15) and neither verdict may follow from its sign
    frame = pd.concat([parabola_cell(-4.3, seed=s, batch=b).assign(val_acc=lambda f, s=s: f["val_acc"] + 0.01 * s)
                       for s in range(8) for b in (8, 16, 32, 64, 128, 256, 512, 1024)], ignore_index=True)
    design = Design(scientific=("batch_size",), nuisance=("lr",), fixed=())
    _, wide, _ = fx.argbest_table(frame, "batch_size", "lr", "val_acc")
    assert np.ptp(wide.to_numpy()) <= 1e-12 * wide.to_numpy().max()
    surge = evaluate("lr_surge", frame, design, split=128.0, noise="")
    assert surge.verdict == "inconclusive" and abs(surge.effect) < 1e-12
    slope = evaluate("power_law_slope", frame, design, axis="batch_size", of="lr", low=-0.5, high=0.5)
    assert slope.verdict != "refuted"  # 0 lies inside [-0.5, 0.5]; rounding never refutes it


# ------------------------------------------------------------------ the simulator

def test_the_fixed_grid_simulator_shares_one_grid_across_seeds_and_rounds_as_the_store():
    rng = np.random.default_rng(0)
    levels = np.array([8.0, 16.0, 32.0])
    opt = trials.fixed_offsets(rng, levels, np.array([0.0, 1.0, 2.0]), 8, scatter=0.0)
    assert np.ptp(opt, axis=1).max() == 0  # one offset for every seed of the experiment...
    assert np.ptp(opt - np.array([[0.0], [1.0], [2.0]])) == 0  # ...and for every level
    again = trials.fixed_offsets(rng, levels, np.array([0.0, 1.0, 2.0]), 8, scatter=0.0)
    assert again[0, 0] != opt[0, 0]  # a new experiment, a new offset
    frame = trials.fixed_tuned_frame(rng, levels, np.array([0.0, 1.0, 2.0]), 8, "lr", scatter=0.0)
    for column, n in (("val_acc", trials.N_VAL), ("test_acc", trials.N_TEST)):
        counts = frame[column].to_numpy() * n
        assert np.allclose(counts, np.round(counts), atol=1e-9)
    assert frame.groupby("seed")["lr"].apply(lambda s: tuple(sorted(s))).nunique() == 1
    kinds = {sc.kind for sc in simulator._scenarios_cached() if sc.grid == "fixed"}
    assert kinds == {"power_law_slope", "lr_surge", "best_level_in_range", "critical_batch"}


def test_calibrate_grid_flag_refuses_a_kind_without_that_grid(capsys):
    with pytest.raises(SystemExit) as err:
        main(["calibrate", "best_level_in_range", "--grid", "per-seed", "--reps", "10", "--quiet"])
    assert err.value.code == 2 and "--grid: no calibration scenario of best_level_in_range" in capsys.readouterr().err


def test_power_law_slope_on_one_fixed_grid_keeps_its_null():
    # the optimum's scatter 0.1 grid step, the slope on the band's edge (1.5), 8 seeds: the argbest rounded
    # to one grid gave every seed the same biased slope and decided about 30% of these experiments (both
    # sides together; reports/calibration.md); interpolated, about 5% (2.5% per side)
    sc = scenarios._power_law_slope(0.1)
    null = next(i for i, t in enumerate(sc.truths) if t.null)
    row = simulate(sc, 8, null, reps=80, seed=1)
    assert row.supported + row.refuted <= 0.12, format_row(row)
