"""Verdicts that survive their protocol: one selection rule, diagnostics, robustness, the experimenter loop."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from claimbench.analysis import diagnostics as dx
from claimbench.analysis.inference import Hypothesis, decide_mean
from claimbench.analysis.selection import best_trials, direction, sort_frame
from claimbench.claims import KINDS, Claim, Design, evaluate_claims
from claimbench.claims.protocol import robustness
from claimbench.errors import UserError
from claimbench.suite import load_suite

REPORTS = Path(__file__).resolve().parents[2] / "reports"
DESIGN = Design(scientific=("batch_size",), nuisance=("lr",), fixed=())
LRS = [0.01, 0.03, 0.1, 0.3]


def frame(value, seeds=8, levels=(16, 256), lrs=LRS, status=lambda b, lr: "completed"):
    """One trial per (level, lr, seed): val_acc = value(b, lr) + seed noise; test_acc the same."""
    rng = np.random.default_rng(0)
    rows = []
    for b in levels:
        for lr in lrs:
            for s in range(seeds):
                v = value(b, lr) + rng.normal(0, 0.002)
                rows.append({"batch_size": b, "lr": lr, "seed": s, "trial_id": f"{b}-{lr}-{s}",
                             "status": status(b, lr), "val_acc": v, "test_acc": v, "val_loss": 1 - v})
    return pd.DataFrame(rows)


def comparison(**params):
    p = {"a": {"batch_size": 16}, "b": {"batch_size": 256}, "margin": 0.0, **params}
    return Claim("P1", "paired_comparison", "6", "small beats large", KINDS["paired_comparison"].resolve_params(p))


# ---------------------------------------------------------------- one selection rule

def test_selection_takes_the_metrics_direction():
    assert direction("val_acc") == 1 and direction("test_r2") == 1
    assert direction("val_loss") == -1 and direction("train_mse") == -1
    with pytest.raises(UserError, match="no known direction"):
        direction("val_banana")


def test_a_suite_selecting_on_a_loss_picks_the_lowest():
    # within each cell the lowest-loss trial has the best test accuracy: selecting on the loss must find it
    f = frame(lambda b, lr: 0.9 - abs(np.log10(lr) + 1.5) / 10)
    f["val_loss"] = 1 - f["val_acc"]
    best = best_trials(f, ["batch_size", "seed"], "val_loss", ["lr"])
    worst = f.loc[f.groupby(["batch_size", "seed"])["val_loss"].idxmax()]
    assert (best["lr"].isin([0.03])).all()
    assert best["test_acc"].mean() > worst["test_acc"].mean() + 0.05
    by_loss = evaluate_claims([comparison(select="val_loss")], f, DESIGN, variants=False)[0]
    by_acc = evaluate_claims([comparison(select="val_acc")], f, DESIGN, variants=False)[0]
    assert by_loss.effect == pytest.approx(by_acc.effect, abs=1e-12)


def test_ties_are_broken_by_grid_order_not_row_order():
    f = frame(lambda b, lr: 0.5)
    f["val_acc"] = 0.5  # every trial ties
    picks = [best_trials(g, ["batch_size", "seed"], "val_acc", ["lr"])["lr"].tolist()
             for g in (f, f.iloc[::-1], f.sample(frac=1, random_state=1))]
    assert picks[0] == picks[1] == picks[2] == [min(LRS)] * 16


def test_unknown_selection_metric_is_refused_at_load(write_suite):
    from tests.conftest import TINY_SUITE

    text = TINY_SUITE.replace('params = { axis = "batch_size", low = 2, high = 32 }',
                              'params = { axis = "batch_size", low = 2, high = 32, select = "val_banana" }')
    with pytest.raises(UserError, match="val_banana"):
        load_suite(write_suite(text), "smoke")


def _published(report: str):
    for path in sorted((REPORTS / report).glob("*/trials.parquet")):
        name = path.parent.name
        suite_dir = {"frontier-default": "frontier", "batch_scaling-default": "batch_scaling"}.get(report)
        if suite_dir:
            short = name.split("_", 1)[1] if name.startswith(("frontier_", "batch_")) else name
            toml = REPORTS.parent / "suites" / suite_dir / f"{short}.toml"
            if not toml.exists():
                continue
            suite = load_suite(str(toml), "default")
        else:
            suite = load_suite(name, "default")
        yield suite, pd.read_parquet(path)


@pytest.mark.parametrize("report", ["faq-default", "frontier-default", "batch_scaling-default"])
def test_row_order_of_published_frames_changes_no_effect_and_no_verdict(report):
    seen = 0
    for suite, f in _published(report):
        orders = [f.iloc[::-1].reset_index(drop=True), f.sample(frac=1, random_state=7).reset_index(drop=True)]
        results = [[KINDS[c.kind].evaluate(c, g, suite.design()) for c in suite.claims] for g in orders]
        for rs in zip(*results):
            assert len({r.verdict for r in rs}) == 1, rs[0].claim_id
            effects = [r.effect for r in rs]
            if effects[0] is None:
                assert all(e is None for e in effects)
            else:
                assert effects == pytest.approx([effects[0]] * 2, abs=1e-12), rs[0].claim_id
            seen += 1
    assert seen >= 3


def test_sort_frame_is_independent_of_input_order():
    f = frame(lambda b, lr: 0.8)
    a, b = sort_frame(f), sort_frame(f.iloc[::-1])
    assert a["trial_id"].tolist() == b["trial_id"].tolist()


# ---------------------------------------------------------------- inference: rounding never decides

def test_values_equal_up_to_rounding_decide_nothing():
    slopes = np.array([1e-15, 2e-15, -1e-15, 1e-15, 3e-16, 1e-15, 2e-15, 1e-15])
    d = decide_mean(slopes, Hypothesis.greater(0.0))
    assert d.verdict == "inconclusive" and d.p_supported == 1.0 and d.p_refuted == 1.0
    same = decide_mean(np.full(8, 0.5), Hypothesis.greater(0.0))  # identical and clearly above: sign-flip test
    assert same.verdict == "supported" and same.p_supported == pytest.approx(0.5 ** 8)


# ---------------------------------------------------------------- diagnostics

def test_grid_edge_flags_an_optimum_beyond_the_grid_and_limits_the_claim():
    # the best lr keeps rising past the grid's top for batch 256: its cells sit on the upper edge
    f = frame(lambda b, lr: 0.9 - 0.3 * abs(np.log10(lr) - (np.log10(0.03) if b == 16 else 0.5)))
    r = evaluate_claims([comparison()], f, DESIGN, variants=False)[0]
    edge = r.diagnostics["edge"]
    assert edge["flag"] and edge["sides"]["lr"]["high"] == 8
    assert r.verdict == "inconclusive" and r.diagnostics["registered_verdict"] == "supported"
    assert "edge-limited" in r.summary and "upper edge in 8 of 8" in r.summary


def test_a_flat_objective_is_not_an_edge():
    f = frame(lambda b, lr: 0.9 - 0.05 * (b == 256))  # lr does not matter: argmax is noise
    r = evaluate_claims([comparison()], f, DESIGN, variants=False)[0]
    assert not r.diagnostics["edge"]["flag"] and r.verdict == "supported"


def _curves(f, gain):
    """Four evaluations per trial, the last quarter gaining ``gain(batch_size)``."""
    rows = []
    for _, t in f.iterrows():
        for step, frac in ((0, None), (50, 0.5), (100, 0.75), (150, 1.0)):
            v = 0.1 if frac is None else t["val_acc"] - gain(t["batch_size"]) * (1.0 if frac < 1 else 0.0)
            rows.append({"trial_id": t["trial_id"], "step": step, "val_acc": v, "test_acc": v})
    return pd.DataFrame(rows)


def test_a_comparison_still_moving_is_budget_limited():
    f = frame(lambda b, lr: 0.9 - 0.05 * (b == 256) - abs(np.log10(lr) + 1.5) / 10)
    moving = evaluate_claims([comparison()], f, DESIGN, _curves(f, lambda b: 0.04 * (b == 256)), variants=False)[0]
    assert moving.diagnostics["convergence"]["moving"]
    assert moving.verdict == "inconclusive" and "budget-limited" in moving.summary
    together = evaluate_claims([comparison()], f, DESIGN, _curves(f, lambda b: 0.004), variants=False)[0]
    assert not together.diagnostics["convergence"]["moving"] and together.verdict == "supported"


def test_convergence_compares_groups_within_a_stratum_only():
    # both arms gain the same within each dropout stratum; the strata differ (they are judged apart)
    f = pd.concat([frame(lambda b, lr: 0.9 - 0.05 * (b == 256) - abs(np.log10(lr) + 1.5) / 10).assign(dropout=d)
                   for d in (0.1, 0.3)], ignore_index=True)
    f["trial_id"] = f["trial_id"] + "-" + f["dropout"].astype(str)
    design = Design(scientific=("batch_size",), nuisance=("lr",), fixed=("dropout",))
    curves = _curves(f, lambda b: 0.0)
    late = curves["step"] < 150
    curves.loc[late, "val_acc"] -= np.where(curves.loc[late, "trial_id"].str.endswith("0.3"), 0.05, 0.0)
    r = evaluate_claims([comparison()], f, design, curves, variants=False)[0]
    assert r.diagnostics["convergence"]["flag"] and not r.diagnostics["convergence"]["moving"]


def test_failed_to_learn_counts_trials_that_end_where_they_started():
    f = frame(lambda b, lr: 0.1 if lr == 0.3 else 0.8)
    curves = _curves(f, lambda b: 0.0)
    ids = dx.failed_to_learn(curves, f, "val_acc")
    assert set(ids) == set(f.loc[f["lr"] == 0.3, "trial_id"])


def test_robustness_label_names_the_variant_that_flips():
    fragile = robustness("supported", {"reversed tie order": "inconclusive", "numerical noise": ["supported"] * 4},
                         0.001, "supported")
    assert fragile["label"] == "fragile: flips to inconclusive under reversed tie order" and not fragile["robust"]
    noisy = robustness("refuted", {"numerical noise": ["refuted", "inconclusive", "inconclusive", "refuted"]},
                       0.02, "refuted")
    assert "under numerical noise (2 of 4 draws)" in noisy["label"] and "near the boundary" in noisy["label"]
    assert robustness("refuted", {"numerical noise": ["refuted"] * 4}, 1e-6, "refuted")["label"] == "robust"


def test_every_claim_carries_diagnostics_and_a_label():
    f = frame(lambda b, lr: 0.9 - 0.05 * (b == 256) - abs(np.log10(lr) + 1.5) / 10)
    r = evaluate_claims([comparison()], f, DESIGN, _curves(f, lambda b: 0.0))[0]
    assert r.robustness["label"] in ("robust", "robust (near the boundary)") or r.robustness["label"].startswith(
        "fragile")
    assert set(r.robustness["variants"]) >= {"best-validation checkpoint", "reversed tie order", "numerical noise"}
    assert {"edge", "convergence", "failed_to_learn", "flat", "ties", "limits"} <= set(r.diagnostics)


def test_rerun_noise_perturbs_a_share_of_trials():
    f = frame(lambda b, lr: 0.8)
    g = dx.perturb(f, 0)
    moved = (g["val_acc"] != f["val_acc"]).mean()
    assert 0.15 < moved < 0.5
    assert ((g["val_acc"] - f["val_acc"]) == (g["test_acc"] - f["test_acc"])).all()


def test_beyond_extends_at_the_grids_spacing_and_stops_at_physical_bounds():
    assert dx.beyond([0.01, 0.03, 0.09], "high", 2) == pytest.approx([0.27, 0.81])
    assert dx.beyond([0.1, 0.3, 0.5], "high", 3, axis="dropout") == pytest.approx([0.7, 0.9])
    assert dx.beyond([0.0, 0.1, 0.2], "low", 1) == []


# ---------------------------------------------------------------- the experimenter loop

ADAPT_SUITE = """
[suite]
name = "adapt"
title = "An LR grid that stops short of the optimum"
seeds = 6

[workload]
dataset = "teacher"
n_samples = 1000
depth = 1
width = 8

[train]
optimizer = "sgd"
momentum = 0.9
evals = 3

[budget]
steps = 60

[axes.batch_size]
role = "scientific"
values = [8, 32]

[axes.lr]
role = "nuisance"
values = [0.001, 0.002, 0.004]

[adapt]
extend = { lr = 2 }
looks = []  # this suite tests the grid extension alone: every seed from round 0

[[claims]]
id = "P1"
kind = "paired_comparison"
faq_section = 6
paraphrase = "Batch 8 is no worse than batch 32."
params = { a = { batch_size = 8 }, b = { batch_size = 32 }, margin = 0.5, test = "noninferiority" }
"""


def test_the_loop_extends_an_edge_grid_records_it_and_a_rerun_trains_nothing(write_suite, tmp_path, one_thread):
    from claimbench.api import evaluate_run, run_suite
    from claimbench.loop import read_record

    suite = load_suite(write_suite(ADAPT_SUITE), "default")
    out = tmp_path / "run"
    first = run_suite(suite, out, executor="local", progress=False)
    taken = read_record(out)
    # the best lr sits on the grid's top in every cell: the loop extends it twice (its limit), one value a round
    assert [(e["axis"], e["side"], e["round"]) for e in taken] == [("lr", "high", 1), ("lr", "high", 2)]
    assert [v for e in taken for v in e["values"]] == pytest.approx([0.008, 0.016])
    assert first.total == first.trained == 2 * 6 * 5 and len(first.extensions) == 2
    ev = evaluate_run(out)
    assert sorted(ev.frame["lr"].unique()) == pytest.approx(sorted([0.001, 0.002, 0.004]
                                                                   + [v for e in taken for v in e["values"]]))
    result = ev.results[0]
    assert any("extended upward" in line for line in result.diagnostics["extensions"])
    # still on the edge after the allowed extensions: not decided, and it says why
    assert result.verdict == "inconclusive" and "edge-limited" in result.summary
    again = run_suite(suite, out, executor="local", progress=False)
    assert again.trained == 0 and read_record(out) == taken
    doc = json.loads((out / "adaptive.json").read_text())
    assert doc["rules"] == {"extend": {"lr": 2}, "looks": []}


def test_adapt_rules_are_validated_at_load(write_suite):
    bad = ADAPT_SUITE.replace("extend = { lr = 2 }", "extend = { batch_size = 2 }")
    with pytest.raises(UserError, match="not a nuisance axis"):
        load_suite(write_suite(bad), "default")
    with pytest.raises(UserError, match="integer from 1"):
        load_suite(write_suite(ADAPT_SUITE.replace("lr = 2 }", "lr = 9 }")), "default")


def test_environment_records_the_cpus_instruction_set():
    from claimbench.env import environment

    env = environment("x")
    assert {"cpu", "cpu_isa", "torch_cpu_capability"} <= set(env)
    assert env["cpu_isa"] in ("", "SSE", "AVX", "AVX2", "AVX2 + FMA", "AVX-512", "AVX-512 (AMX)")


def test_packs_do_not_depend_on_the_order_of_the_specs():
    import random

    from claimbench.runner.packs import make_packs
    from claimbench.suite import expand

    specs = expand(load_suite("batch_size", "ci"))
    shuffled = specs[:]
    random.Random(1).shuffle(shuffled)
    packs = [[[s.trial_id for s in p] for p in make_packs(order, workers=2)] for order in (specs, specs[::-1], shuffled)]
    assert len(packs[0]) > 10 and packs[0] == packs[1] == packs[2]
