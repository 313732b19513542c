"""Quantity layer and the quantity-based claim kinds, on synthetic frames whose true answer is known."""

from __future__ import annotations

import math
import re
import xml.etree.ElementTree as ET
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from claimbench.analysis.quantities import cell_quantities, parse_quantity, restrict, to_wide
from claimbench.claims import KINDS, Claim, Design, evaluate_claims

LRS = [0.01, 0.03, 0.1, 0.3, 1.0]


def trials(axis, levels, value, seeds=6, lrs=LRS, noise=0.002, diverged=lambda lv, lr, s: False, rng_seed=0,
           **columns):
    """One row per (level of ``axis``, lr, seed). ``value(level, lr)`` is the true val accuracy; each seed
    adds one shift shared by every level (what pairing by seed removes) plus small per-trial noise.
    ``columns``: name -> f(level, lr, seed), extra per-trial columns."""
    rng = np.random.default_rng(rng_seed)
    shift = rng.normal(0, 0.01, seeds)
    rows = []
    for lv in levels:
        for lr in lrs:
            for s in range(seeds):
                div = diverged(lv, lr, s)
                val = np.nan if div else value(lv, lr) + shift[s] + rng.normal(0, noise)
                row = {axis: lv, "lr": lr, "seed": s, "trial_id": f"{lv}-{lr}-{s}",
                       "status": "diverged" if div else "completed", "val_acc": val,
                       "test_acc": val if div else val + rng.normal(0, noise), "steps_done": 100}
                row.update({k: f(lv, lr, s) for k, f in columns.items()})
                rows.append(row)
    return pd.DataFrame(rows)


def design(axis, nuisance=("lr",), fixed=(), constants=None):
    return Design(scientific=(axis,), nuisance=nuisance, fixed=fixed, constants=constants or {})


def claim(kind, **params):
    return Claim(f"T-{kind}", kind, "1", f"a {kind} claim", KINDS[kind].resolve_params(params))


def run(kind, frame, scientific, **params):
    """Evaluate on ``frame`` whose one scientific axis is ``scientific`` (also the claim's axis, for the
    kinds that take one)."""
    if kind in ("monotone_trend", "ranking"):
        params.setdefault("axis", scientific)
    return KINDS[kind].evaluate(claim(kind, **params), frame, design(scientific))


# ------------------------------------------------------------------ quantity layer

def test_quantity_grammar():
    assert parse_quantity("test_acc").op == "select"
    assert (parse_quantity("min:steps_to_target").op, parse_quantity("min:steps_to_target").column) == \
        ("min", "steps_to_target")
    for bad in ("", "sum:test_acc", "min:", "rate:exploded"):
        with pytest.raises(ValueError):
            parse_quantity(bad)


def test_selects_on_validation_and_reports_test():
    frame = pd.DataFrame({"seed": 0, "lr": LRS, "status": "completed", "trial_id": [f"t{i}" for i in range(5)],
                          "val_acc": [0.5, 0.6, 0.9, 0.7, 0.4], "test_acc": [0.95, 0.5, 0.8, 0.6, 0.3]})
    (row,) = cell_quantities(frame, ["seed"], "test_acc", tuned=["lr"]).to_dict("records")
    assert row["value"] == 0.8 and row["lr"] == 0.1 and row["trial_id"] == "t2" and not row["censored"]
    assert cell_quantities(frame, ["seed"], "argbest:lr")["value"].item() == 0.1
    assert cell_quantities(frame, ["seed"], "test_acc", select="test_acc")["value"].item() == 0.95
    assert cell_quantities(frame, ["seed"], "max:test_acc")["value"].item() == 0.95
    assert cell_quantities(frame, ["seed"], "median:val_acc")["value"].item() == 0.6


def test_min_steps_to_target_is_censored_when_no_trial_reaches_it():
    frame = pd.DataFrame({"seed": [0, 0, 1, 1], "lr": [0.1, 1.0] * 2, "status": "completed",
                          "steps_to_target": [40, 25, None, None], "steps_done": [100, 100, 100, 80],
                          "val_acc": 0.5})
    out = cell_quantities(frame, ["seed"], "min:steps_to_target").set_index("seed")
    assert out.loc[0, "value"] == 25 and not out.loc[0, "censored"]
    assert out.loc[1, "value"] == 100 and out.loc[1, "censored"]


def test_max_stable_min_diverging_and_divergence_rate():
    frame = trials("arm", ["x", "y"], lambda lv, lr: 0.8, seeds=2,
                   diverged=lambda lv, lr, s: lv == "x" and lr >= 0.3)
    stable = cell_quantities(frame, ["arm", "seed"], "max_stable:lr").set_index(["arm", "seed"])
    assert stable.loc[("x", 0), "value"] == 0.1 and not stable.loc[("x", 0), "censored"]
    assert stable.loc[("y", 0), "value"] == 1.0 and stable.loc[("y", 0), "censored"]  # the grid edge
    div = cell_quantities(frame, ["arm", "seed"], "min_diverging:lr").set_index(["arm", "seed"])
    assert div.loc[("x", 1), "value"] == 0.3
    assert math.isnan(div.loc[("y", 1), "value"]) and div.loc[("y", 1), "censored"]
    rate = cell_quantities(frame, ["arm", "seed"], "rate:diverged").set_index(["arm", "seed"])
    assert rate.loc[("x", 0), "value"] == pytest.approx(0.4) and rate.loc[("y", 0), "value"] == 0
    assert (rate["n_trials"] == 5).all() and rate.loc[("x", 0), "n_diverged"] == 2


def test_range_width_quantity():
    frame = trials("arm", ["x"], lambda lv, lr: 0.9 if lr in (0.03, 0.1) else 0.5, seeds=1, noise=0)
    (row,) = cell_quantities(frame, ["seed"], "range_width:lr", tolerance=0.01).to_dict("records")
    step = np.median(np.diff(np.log2(LRS)))
    assert row["lo"] == 0.03 and row["hi"] == 0.1 and row["n_good"] == 2 and not row["censored"]
    assert row["value"] == pytest.approx(np.log2(0.1 / 0.03) + step)


def test_missing_column_is_a_key_error_naming_it():
    frame = trials("arm", ["x"], lambda lv, lr: 0.8, seeds=1)
    with pytest.raises(KeyError, match="grad_ratio_init"):
        cell_quantities(frame, ["seed"], "mean:grad_ratio_init")
    with pytest.raises(KeyError, match="loss"):
        restrict(frame, {"loss": "mse"})
    with pytest.raises(KeyError, match="optimizer"):
        run("paired_comparison", frame, "arm", a={"optimizer": "adam"}, b={"arm": "x"})


def test_where_restricts_and_to_wide_pivots():
    frame = trials("arm", ["x", "y", "z"], lambda lv, lr: 0.8, seeds=3)
    sub = restrict(frame, {"arm": ["x", "z"], "lr": 0.1})
    assert set(sub["arm"]) == {"x", "z"} and set(sub["lr"]) == {0.1}
    long = cell_quantities(frame, ["arm", "seed"], "test_acc")
    wide = to_wide(long, "arm", ["z", "x"])
    assert list(wide.columns) == ["z", "x"] and list(wide.index) == [0, 1, 2]


def test_tune_decides_what_varies_within_a_cell():
    # the good lr differs by arm; tuning lr per cell makes the arms equal, a fixed lr (tune = []) does not
    frame = trials("arm", ["x", "y"], lambda lv, lr: 0.9 - 0.1 * abs(math.log10(lr / (0.01 if lv == "x" else 1.0))))
    tuned = run("paired_comparison", frame, "arm", a={"arm": "x"}, b={"arm": "y"}, test="noninferiority",
                margin=0.01)
    assert tuned.verdict == "supported" and abs(tuned.effect) < 0.01
    fixed = run("paired_comparison", frame, "arm", a={"arm": "x"}, b={"arm": "y"}, tune=[],
                where={"lr": 1.0})
    assert fixed.verdict == "refuted" and fixed.effect == pytest.approx(-0.2, abs=0.01)
    assert any("only trials with lr=1" in c for c in fixed.caveats)
    per_lr = run("paired_comparison", frame, "arm", a={"arm": "x"}, b={"arm": "y"}, tune=[])
    assert len(per_lr.strata) == len(LRS) and {tuple(s.stratum) for s in per_lr.strata} == {("lr",)}


# ------------------------------------------------------------------ monotone_trend

BATCHES = [4, 16, 64, 256]


def test_monotone_trend_supported_refuted_inconclusive():
    falling = trials("batch_size", BATCHES, lambda b, lr: 0.9 - 0.02 * math.log2(b))
    r = run("monotone_trend", falling, "batch_size", direction="decreasing")
    assert r.verdict == "supported" and r.effect == pytest.approx(-1.0) and r.ci[1] < 0
    assert [d["level"] for d in r.data] == BATCHES and r.data[0]["mean"] > r.data[-1]["mean"]
    assert run("monotone_trend", falling, "batch_size", direction="increasing").verdict == "refuted"
    flat = trials("batch_size", BATCHES, lambda b, lr: 0.8, noise=0.02)
    assert run("monotone_trend", flat, "batch_size", direction="decreasing").verdict == "inconclusive"


def test_monotone_trend_needs_an_order_for_names_and_three_levels():
    frame = trials("activation", ["relu", "tanh", "logistic"], lambda a, lr: {"relu": 0.9, "tanh": 0.8,
                                                                              "logistic": 0.7}[a])
    r = run("monotone_trend", frame, "activation")
    assert r.verdict == "inconclusive" and "order" in r.summary
    ordered = run("monotone_trend", frame, "activation", order=["logistic", "tanh", "relu"])
    assert ordered.verdict == "supported"
    two = run("monotone_trend", trials("batch_size", [4, 16], lambda b, lr: 0.9 - b / 100), "batch_size")
    assert two.verdict == "inconclusive" and "needs 3" in two.summary


def test_monotone_trend_on_steps_to_target_with_censoring():
    frame = trials("batch_size", BATCHES, lambda b, lr: 0.8,
                   steps_to_target=lambda b, lr, s: np.nan if b == 256 else 1000 / b * (1 + lr) + s,
                   steps_done=lambda b, lr, s: 100)
    r = run("monotone_trend", frame, "batch_size", quantity="min:steps_to_target", direction="decreasing")
    assert r.data[-1]["censored"] == 6
    assert any("censored" in c for c in r.caveats)


# ------------------------------------------------------------------ ranking

OPTIMIZERS = ["sgd", "rmsprop", "adam"]


def test_ranking_supported_refuted_inconclusive():
    acc = {"sgd": 0.80, "rmsprop": 0.83, "adam": 0.86}
    frame = trials("optimizer", OPTIMIZERS, lambda o, lr: acc[o])
    r = run("ranking", frame, "optimizer", order=["sgd", "rmsprop", "adam"])
    assert r.verdict == "supported" and r.effect == pytest.approx(1.0)
    assert "sgd" in r.summary and r.summary.index("sgd (") < r.summary.index("adam (")
    backwards = run("ranking", frame, "optimizer", order=["adam", "rmsprop", "sgd"])
    assert backwards.verdict == "refuted" and backwards.effect == pytest.approx(-1.0)
    loss_goal = run("ranking", frame.assign(test_loss=1 - frame["test_acc"]), "optimizer",
                    order=["adam", "rmsprop", "sgd"], quantity="test_loss", goal="lower")
    assert loss_goal.verdict == "refuted"
    tie = trials("optimizer", OPTIMIZERS, lambda o, lr: 0.8, noise=0.02)
    assert run("ranking", tie, "optimizer", order=OPTIMIZERS).verdict == "inconclusive"


def test_ranking_of_untested_levels_is_inconclusive():
    frame = trials("optimizer", ["sgd"], lambda o, lr: 0.8)
    r = run("ranking", frame, "optimizer", order=["sgd", "adam"])
    assert r.verdict == "inconclusive" and any("lacks: adam" in c for c in r.caveats)


# ------------------------------------------------------------------ paired_comparison

def test_paired_comparison_superiority_and_noninferiority():
    acc = {"sgd": 0.80, "adam": 0.83, "nadam": 0.829, "rmsprop": 0.75}
    frame = trials("optimizer", list(acc), lambda o, lr: acc[o])
    win = run("paired_comparison", frame, "optimizer", a={"optimizer": "adam"}, b={"optimizer": "sgd"})
    assert win.verdict == "supported" and win.effect == pytest.approx(0.03, abs=0.005) and win.ci[0] > 0
    assert {"seed", "a", "b", "difference"} <= set(win.data[0]) and len(win.data) == 6
    lose = run("paired_comparison", frame, "optimizer", a={"optimizer": "rmsprop"}, b={"optimizer": "sgd"})
    assert lose.verdict == "refuted" and lose.effect < 0
    big_margin = run("paired_comparison", frame, "optimizer", a={"optimizer": "adam"}, b={"optimizer": "sgd"},
                     margin=0.1)
    assert big_margin.verdict == "inconclusive"
    noninf = run("paired_comparison", frame, "optimizer", a={"optimizer": "nadam"}, b={"optimizer": "adam"},
                 test="noninferiority", margin=0.01)
    assert noninf.verdict == "supported"
    assert run("paired_comparison", frame, "optimizer", a={"optimizer": "sgd"}, b={"optimizer": "adam"},
               test="noninferiority", margin=0.01).verdict == "refuted"
    tie = run("paired_comparison", trials("optimizer", ["sgd", "adam"], lambda o, lr: 0.8, noise=0.02),
              "optimizer", a={"optimizer": "adam"}, b={"optimizer": "sgd"})
    assert tie.verdict == "inconclusive"


def test_paired_comparison_lower_is_better_relative_and_several_arms():
    time = {"sgd": 1.0, "adam": 1.3, "nadam": 1.5}
    frame = trials("optimizer", list(time), lambda o, lr: 0.8,
                   time_per_step_s=lambda o, lr, s: time[o] * (1 + 0.01 * s))
    r = run("paired_comparison", frame, "optimizer", a={"optimizer": "sgd"}, b={"optimizer": "adam"},
            quantity="mean:time_per_step_s", goal="lower", relative=True, margin=0.1)
    assert r.verdict == "supported" and r.effect == pytest.approx(math.log(1.3), rel=0.01)
    several = run("paired_comparison", frame, "optimizer", a=[{"optimizer": "sgd"}, {"optimizer": "nadam"}],
                  b={"optimizer": "adam"}, quantity="mean:time_per_step_s", goal="lower")
    assert [s.verdict for s in several.strata] == ["supported", "refuted"] and several.verdict == "refuted"
    assert several.strata[0].stratum == {"a": "optimizer=sgd"}


def test_paired_comparison_cannot_decide_without_trials_or_seeds():
    frame = trials("optimizer", ["sgd", "adam"], lambda o, lr: 0.8)
    r = run("paired_comparison", frame, "optimizer", a={"optimizer": "nadam"}, b={"optimizer": "sgd"})
    assert r.verdict == "inconclusive" and "no trials" in r.summary
    one_seed = run("paired_comparison", trials("optimizer", ["sgd", "adam"], lambda o, lr: 0.8 + (o == "adam"),
                                               seeds=1), "optimizer", a={"optimizer": "adam"}, b={"optimizer": "sgd"})
    assert one_seed.verdict == "inconclusive" and "needs 2" in one_seed.summary
    dead = trials("optimizer", ["sgd", "adam"], lambda o, lr: 0.8, diverged=lambda o, lr, s: o == "adam")
    r = run("paired_comparison", dead, "optimizer", a={"optimizer": "adam"}, b={"optimizer": "sgd"})
    assert r.verdict == "inconclusive" and any("no usable trial" in c for c in r.caveats)


def test_strata_are_judged_separately():
    a = trials("optimizer", ["sgd", "adam"], lambda o, lr: 0.8 + 0.03 * (o == "adam")).assign(width=16)
    b = trials("optimizer", ["sgd", "adam"], lambda o, lr: 0.8 - 0.03 * (o == "adam")).assign(width=64)
    d = Design(scientific=("optimizer", "width"), nuisance=("lr",), fixed=(), constants={"dataset": "teacher"})
    (r,) = evaluate_claims([claim("paired_comparison", a={"optimizer": "adam"}, b={"optimizer": "sgd"})],
                           pd.concat([a, b]), d)
    assert [s.verdict for s in r.strata] == ["supported", "refuted"] and r.verdict == "inconclusive"
    assert [s.stratum for s in r.strata] == [{"width": 16}, {"width": 64}]
    assert r.caveats[0] == "held fixed: dataset=teacher"


# ------------------------------------------------------------------ ratio_in_range

def best_lr_frame(ratio):
    """The best LR is ``ratio`` times the smallest diverging LR (which differs by width)."""
    limit = {16: 1.0, 64: 0.3}

    def value(w, lr):
        return 0.9 - 0.1 * abs(math.log10(lr / (limit[w] * ratio)))

    return trials("width", [16, 64], value, lrs=[0.01, 0.03, 0.1, 0.3, 1.0, 3.0],
                  diverged=lambda w, lr, s: lr >= limit[w])


def test_ratio_in_range_best_lr_over_diverging_lr():
    params = dict(num={"quantity": "argbest:lr"}, den={"quantity": "min_diverging:lr"}, tune=["lr"])
    frame = best_lr_frame(0.3).query("width == 16")
    r = run("ratio_in_range", frame, "width", low=0.2, high=0.6, **params)
    assert r.verdict == "supported" and r.effect == pytest.approx(0.3) and "median ratio 0.3" in r.summary
    assert {"seed", "num", "den", "ratio"} <= set(r.data[0])
    assert run("ratio_in_range", frame, "width", low=0.5, high=math.inf, **params).verdict == "refuted"
    straddle = frame.assign(lr=frame["lr"])
    noisy = straddle.copy()
    noisy.loc[(noisy.seed % 2 == 0) & (noisy.lr == 0.1), "val_acc"] += 0.5  # half the seeds pick 0.1
    r = run("ratio_in_range", noisy, "width", low=0.2, high=0.32, **params)
    assert r.verdict == "inconclusive"


def test_ratio_in_range_between_arms_and_censoring():
    frame = trials("batchnorm", [True, False], lambda bn, lr: 0.8,
                   diverged=lambda bn, lr, s: lr >= (1.0 if bn else 0.1))
    r = run("ratio_in_range", frame, "batchnorm", quantity="max_stable:lr",
            num={"where": {"batchnorm": True}}, den={"where": {"batchnorm": False}}, low=2.0, high=math.inf)
    assert r.verdict == "supported" and r.effect == pytest.approx(10)
    never = trials("batchnorm", [True, False], lambda bn, lr: 0.8, diverged=lambda bn, lr, s: not bn and lr >= 1)
    r = run("ratio_in_range", never, "batchnorm", quantity="min_diverging:lr",
            num={"where": {"batchnorm": True}}, den={"where": {"batchnorm": False}}, low=2.0, high=math.inf)
    assert r.verdict == "inconclusive" and any("beyond the grid" in c for c in r.caveats)


# ------------------------------------------------------------------ range_width_comparison

def widths_frame(n_good_x, n_good_y):
    return trials("batchnorm", [True, False],
                  lambda bn, lr: 0.9 if LRS.index(lr) < (n_good_x if bn else n_good_y) else 0.4, noise=0.001)


def test_range_width_comparison_supported_refuted_inconclusive():
    params = dict(a={"batchnorm": True}, b={"batchnorm": False}, range_axis="lr")
    wide = run("range_width_comparison", widths_frame(4, 2), "batchnorm", **params)
    step = np.median(np.diff(np.log2(LRS)))
    assert wide.verdict == "supported" and wide.effect == pytest.approx(np.log2(0.3 / 0.03), abs=0.01)
    assert {"side", "seed", "width", "lo", "hi", "censored"} <= set(wide.data[0])
    assert any("touches the grid edge" in c for c in wide.caveats)
    assert run("range_width_comparison", widths_frame(2, 4), "batchnorm", **params).verdict == "refuted"
    same = run("range_width_comparison", widths_frame(3, 3), "batchnorm", **params)
    assert same.verdict == "inconclusive" and same.effect == pytest.approx(0) and step > 0


# ------------------------------------------------------------------ equivalence

def test_equivalence_two_sided():
    acc = {"he": 0.85, "lecun": 0.849, "glorot": 0.80}
    frame = trials("init", list(acc), lambda i, lr: acc[i])
    same = run("equivalence", frame, "init", a={"init": "lecun"}, b={"init": "he"}, margin=0.01)
    assert same.verdict == "supported" and abs(same.effect) < 0.005
    differ = run("equivalence", frame, "init", a={"init": "glorot"}, b={"init": "he"}, margin=0.01)
    assert differ.verdict == "refuted" and differ.effect == pytest.approx(-0.05, abs=0.005)
    noisy = trials("init", ["he", "lecun"], lambda i, lr: 0.85, noise=0.02, seeds=4)
    assert run("equivalence", noisy, "init", a={"init": "lecun"}, b={"init": "he"}, margin=0.005).verdict == \
        "inconclusive"


def test_equivalence_against_the_best_level():
    # a fixed lr of 0.1 is near the best lr (0.1 itself); 0.01 is far from it
    frame = trials("optimizer", ["adam"], lambda o, lr: 0.9 - 0.05 * abs(math.log10(lr / 0.1)))
    near = run("equivalence", frame, "optimizer", a={"lr": 0.1}, b="best", axis="lr", margin=0.01)
    assert near.verdict == "supported" and near.effect == pytest.approx(0, abs=0.005)
    assert "best lr (0.1" in near.summary
    far = run("equivalence", frame, "optimizer", a={"lr": 0.01}, b="best", axis="lr", margin=0.01)
    assert far.verdict == "refuted" and far.effect == pytest.approx(-0.05, abs=0.01)
    mid = run("equivalence", trials("optimizer", ["adam"], lambda o, lr: 0.9, noise=0.03), "optimizer",
              a={"lr": 0.03}, b="best", axis="lr", margin=0.01)
    assert mid.verdict == "inconclusive"
    with pytest.raises(ValueError, match="axis"):
        run("equivalence", frame, "optimizer", a={"lr": 0.1}, b="best", margin=0.01)


# ------------------------------------------------------------------ timing_ratio

def test_timing_ratio_supported_refuted_inconclusive():
    cost = {"mlp": 1.0, "wide": 2.0}
    frame = trials("model", list(cost), lambda m, lr: 0.8,
                   time_per_step_s=lambda m, lr, s: cost[m] * (1 + 0.05 * math.sin(3 * s + 2 * (m == "wide") + lr)))
    r = run("timing_ratio", frame, "model", a={"model": "wide"}, b={"model": "mlp"}, low=1.5, high=2.5)
    assert r.verdict == "supported" and r.effect == pytest.approx(2.0, rel=0.05)
    assert run("timing_ratio", frame, "model", a={"model": "wide"}, b={"model": "mlp"}, low=0.5,
               high=1.2).verdict == "refuted"
    assert run("timing_ratio", frame, "model", a={"model": "wide"}, b={"model": "mlp"}, low=1.99,
               high=2.01).verdict == "inconclusive"
    with pytest.raises(KeyError, match="forward_latency_s"):
        run("timing_ratio", frame, "model", a={"model": "wide"}, b={"model": "mlp"}, low=1, high=2,
            quantity="mean:forward_latency_s")
    missing = run("timing_ratio", frame, "model", a={"model": "huge"}, b={"model": "mlp"}, low=1, high=2)
    assert missing.verdict == "inconclusive" and "no trials" in missing.summary


def test_every_kind_returns_plain_data_and_declares_its_method():
    for name in ("monotone_trend", "ranking", "paired_comparison", "ratio_in_range", "range_width_comparison",
                 "equivalence", "timing_ratio"):
        kind = KINDS[name]
        assert kind.statistic and kind.method
        assert "Statistic" in __import__(kind.evaluate.__module__, fromlist=["_"]).__doc__
    r = run("paired_comparison", trials("optimizer", ["sgd", "adam"], lambda o, lr: 0.8), "optimizer",
            a={"optimizer": "adam"}, b={"optimizer": "sgd"})
    for row in r.data:
        assert all(isinstance(v, (int, float, str, bool, type(None))) for v in row.values())


# ------------------------------------------------------------------ figures, from a fake run dir

FIGURE_SUITE = {
    "suite": {"name": "fake_kinds", "title": "Every quantity-based claim kind", "seeds": 3},
    "workload": {"dataset": "mnist1d", "model": "mlp", "n_samples": 1000},
    "train": {"momentum": 0.9, "evals": 2},
    "budget": {"steps": 50},
    "axes": {
        "batch_size": {"role": "scientific", "values": [8, 32, 128]},
        "optimizer": {"role": "scientific", "values": ["sgd", "adam"]},
        "lr": {"role": "nuisance", "values": [0.01, 0.1, 1.0]},
    },
    "claims": [
        {"id": "K1", "kind": "monotone_trend", "params": {"axis": "batch_size", "direction": "decreasing"}},
        {"id": "K2", "kind": "ranking", "params": {"axis": "batch_size", "order": [128, 32, 8]}},
        {"id": "K3", "kind": "paired_comparison",
         "params": {"a": [{"optimizer": "adam"}], "b": {"optimizer": "sgd"}, "test": "noninferiority",
                    "margin": 0.01}},
        {"id": "K4", "kind": "ratio_in_range",
         "params": {"num": {"quantity": "argbest:lr"}, "den": {"quantity": "min_diverging:lr"}, "tune": ["lr"],
                    "low": 0.05, "high": 0.5}},
        {"id": "K5", "kind": "range_width_comparison",
         "params": {"a": {"optimizer": "adam"}, "b": {"optimizer": "sgd"}, "range_axis": "lr", "tolerance": 0.05}},
        {"id": "K6", "kind": "equivalence",
         "params": {"a": {"optimizer": "adam"}, "b": {"optimizer": "sgd"}, "margin": 0.02}},
        {"id": "K7", "kind": "equivalence",
         "params": {"a": {"batch_size": 32}, "b": "best", "axis": "batch_size", "margin": 0.01}},
        {"id": "K8", "kind": "timing_ratio",
         "params": {"a": {"optimizer": "adam"}, "b": {"optimizer": "sgd"}, "low": 1.0, "high": float("inf")}},
    ],
}


def fake_kind_record(spec):
    from claimbench.trial import TrialRecord, TrialStatus
    rng = np.random.default_rng([spec.seed, spec.batch_size, int(spec.lr * 100), spec.optimizer == "adam"])
    if spec.lr >= 1.0 and (spec.batch_size < 128 or spec.seed == 0):
        return TrialRecord(trial_id=spec.trial_id, spec=spec.to_dict(), status=TrialStatus.DIVERGED,
                           diverged_step=10, steps_done=10)
    val = 0.85 - 0.02 * math.log2(spec.batch_size / 8) - 0.05 * abs(math.log10(spec.lr / 0.1)) \
        + 0.01 * (spec.optimizer == "adam") + rng.normal(0, 0.005)
    metrics = {"train_acc": val + 0.05, "val_acc": val, "test_acc": val + rng.normal(0, 0.005),
               "train_loss": 0.5, "val_loss": 0.6, "test_loss": 0.6}
    return TrialRecord(trial_id=spec.trial_id, spec=spec.to_dict(), status=TrialStatus.COMPLETED, metrics=metrics,
                       steps_done=50, time_per_step_s=0.002 * (1.3 if spec.optimizer == "adam" else 1.0)
                       * (1 + 0.05 * rng.random()))


@pytest.fixture(scope="module")
def kinds_evaluation(tmp_path_factory):
    from claimbench.api import evaluate_run
    from claimbench.store.rundir import RunStore
    from claimbench.suite import expand, parse_suite
    suite = parse_suite(FIGURE_SUITE, "kinds.toml", "default")
    store = RunStore(tmp_path_factory.mktemp("kinds"))
    store.init(suite, "claimbench run kinds.toml", {"python": "3", "git_sha": "x", "packages": {}})
    for spec in expand(suite):
        store.append(fake_kind_record(spec))
    return evaluate_run(store.dir)


def test_suite_params_survive_the_run_dir(kinds_evaluation):
    claims = {c.id: c for c in kinds_evaluation.suite.claims}
    assert claims["K3"].params["a"] == [{"optimizer": "adam"}] and claims["K8"].params["high"] == math.inf
    verdicts = {r.claim_id: r.verdict for r in kinds_evaluation.results}
    assert verdicts["K1"] == "supported" and verdicts["K2"] == "supported" and verdicts["K8"] == "supported"


@pytest.mark.parametrize("claim_id", [c["id"] for c in FIGURE_SUITE["claims"]])
def test_each_kind_renders_its_figures_as_self_contained_svg(kinds_evaluation, claim_id):
    from claimbench.report.figures import figures_for
    claim_ = next(c for c in kinds_evaluation.suite.claims if c.id == claim_id)
    result = next(r for r in kinds_evaluation.results if r.claim_id == claim_id)
    figures = figures_for(claim_, result, kinds_evaluation)
    assert figures, claim_.kind
    for figure in figures:
        assert figure.caption and figure.title and len(figure.svg) > 1000
        ET.fromstring(figure.svg)
        without_ns = re.sub(r'\sxmlns(:\w+)?="[^"]*"', "", figure.svg)
        assert not re.search(r"https?://|url\((?!#)|<image\b", without_ns), claim_.kind


def test_an_undecided_claim_still_renders(kinds_evaluation):
    from claimbench.report.figures import figures_for
    for kind, params in [("paired_comparison", {"a": {"optimizer": "nadam"}, "b": {"optimizer": "sgd"}}),
                         ("timing_ratio", {"a": {"optimizer": "nadam"}, "b": {"optimizer": "sgd"}, "low": 1,
                                           "high": 2}),
                         ("range_width_comparison", {"a": {"optimizer": "nadam"}, "b": {"optimizer": "sgd"}}),
                         ("equivalence", {"a": {"optimizer": "nadam"}, "b": "best", "axis": "batch_size",
                                          "margin": 0.1}),
                         ("monotone_trend", {"axis": "batch_size", "where": {"batch_size": [8, 32]}})]:
        c = claim(kind, **params)
        r = KINDS[kind].evaluate(c, kinds_evaluation.frame, kinds_evaluation.suite.design())
        assert r.verdict == "inconclusive"
        for figure in figures_for(c, r, kinds_evaluation):
            ET.fromstring(figure.svg)


@pytest.mark.parametrize("claim_, message", [
    ({"kind": "paired_comparison", "params": {"a": {"optimiser": "adam"}, "b": {"optimizer": "sgd"}}}, "optimiser"),
    ({"kind": "paired_comparison", "params": {"a": {"optimizer": "adam"}, "b": {"optimizer": "sgd"},
                                              "quantity": "sum:test_acc"}}, "unknown quantity"),
    ({"kind": "monotone_trend", "params": {"axis": "batch_size", "direction": "up"}}, "direction"),
    ({"kind": "equivalence", "params": {"a": {"lr": 0.1}, "b": "best", "margin": 0.01}}, "needs axis"),
    ({"kind": "ratio_in_range", "params": {"num": {"quantity": "argbest:lr", "wher": {}}, "den": {},
                                           "low": 0.1, "high": 1.0}}, "num"),
    ({"kind": "timing_ratio", "params": {"a": {"optimizer": "adam"}, "b": {"optimizer": "sgd"}, "low": 2.0,
                                         "high": 1.0}}, "low <= high"),
    ({"kind": "range_width_comparison", "params": {"a": {}, "b": {}, "tune": ["momentun"]}}, "momentun"),
])
def test_suite_loader_refuses_bad_params(claim_, message):
    from claimbench.errors import SuiteError
    from claimbench.suite import parse_suite
    raw = {**FIGURE_SUITE, "claims": [{"id": "X", **claim_}]}
    with pytest.raises(SuiteError, match=message):
        parse_suite(raw, "bad.toml", "default")


def test_paired_comparison_pairs_a_list_b_with_a_list_a():
    acc = {("relu", "he"): 0.86, ("relu", "glorot"): 0.83, ("tanh", "glorot"): 0.84, ("tanh", "he"): 0.80}
    frame = trials("pair", list(acc), lambda ai, lr: acc[ai])
    frame["activation"], frame["init"] = zip(*frame.pop("pair"))
    d = Design(scientific=("activation", "init"), nuisance=("lr",), fixed=())
    c = claim("paired_comparison", a=[{"activation": "relu", "init": "he"}, {"activation": "tanh", "init": "glorot"}],
              b=[{"activation": "relu", "init": "glorot"}, {"activation": "tanh", "init": "he"}])
    r = KINDS["paired_comparison"].evaluate(c, frame, d)
    assert r.verdict == "supported" and [s.verdict for s in r.strata] == ["supported", "supported"]
    assert [s.effect for s in r.strata] == [pytest.approx(0.03, abs=0.005), pytest.approx(0.04, abs=0.005)]
    assert r.strata[1].stratum == {"a": "activation=tanh, init=glorot", "b": "activation=tanh, init=he"}
    with pytest.raises(ValueError, match="as long as a"):
        KINDS["paired_comparison"].evaluate(claim("paired_comparison", a=[{"init": "he"}], b=[{}, {}]), frame, d)


def test_arms_on_parameters_of_a_table_axis_pick_its_levels():
    """A "setup" axis whose levels set optimizer and momentum: an arm {optimizer = ...} chooses
    setup levels, so "setup" must not split the frame into strata (each would hold one arm)."""
    acc = {"sgd": 0.80, "adam": 0.83}
    frame = trials("optimizer", list(acc), lambda o, lr: acc[o])
    frame["momentum"] = 0.0
    frame["setup"] = frame["optimizer"].map(lambda o: f"optimizer={o}" + (",momentum=0.0" if o == "sgd" else ""))
    c = claim("paired_comparison", a={"optimizer": "adam"}, b={"optimizer": "sgd", "momentum": 0.0})
    with_tables = Design(scientific=("setup",), nuisance=("lr",), fixed=(),
                         tables={"setup": ("momentum", "optimizer")})
    assert KINDS["paired_comparison"].evaluate(c, frame, with_tables).verdict == "supported"
    without = Design(scientific=("setup",), nuisance=("lr",), fixed=())
    assert KINDS["paired_comparison"].evaluate(c, frame, without).verdict == "inconclusive"
