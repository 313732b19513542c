"""Batch-size scaling: the gradient noise scale against its closed form, the steps-vs-batch fit, the
critical_batch (B4) and linear_scaling (B5) kinds, the batch_scaling suites."""

from __future__ import annotations

import dataclasses
import json
import tomllib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from claimbench.analysis.scaling import (REGIMES, fastest_trials, fit_steps_vs_batch, geometric_mean,
                                         power_law_exponent, regime, tradeoff)
from claimbench.claims import KINDS, Claim, Design
from claimbench.suite import TIERS, expand, json_schema, load_group, load_targets, suites_dir
from claimbench.train.policy.state import noise_scale_summary
from claimbench.train.single import gradient_noise_scale, train_trial
from claimbench.workloads.builtin import TrialSpec
from claimbench.workloads.data import DataCache



# ------------------------------------------------------------------ gradient noise scale

def linear_regression(d: int, n: int, sigma: float, seed: int = 0):
    """y = x.w* + N(0, sigma^2), x ~ N(0, I_d); a linear model at w* + delta with |delta| = 1."""
    g = torch.Generator().manual_seed(seed)
    w_star = torch.randn(d, generator=g)
    delta = torch.randn(d, generator=g)
    delta /= delta.norm()
    x = torch.randn(n, d, generator=g)
    y = x @ w_star + sigma * torch.randn(n, generator=g)
    model = torch.nn.Linear(d, 1, bias=False)
    with torch.no_grad():
        model.weight.copy_((w_star + delta)[None])
    return model, x, y


def mse(out, target, reduction):
    return torch.nn.functional.mse_loss(out.squeeze(1), target, reduction=reduction)


@pytest.mark.parametrize("batch, n_batches", [(8, 4), (32, 4), (4, 16)])
def test_noise_scale_matches_its_closed_form_on_linear_regression(batch, n_batches):
    # Per-example gradient of (x.w - y)^2 at w = w* + delta: g = 2 (x.delta - eps) x. With x ~ N(0, I_d):
    # G = 2 delta, tr(Sigma) = 4 ((|delta|^2 + sigma^2) d + |delta|^2), so
    # B_simple = tr(Sigma) / |G|^2 = d + 1 + sigma^2 d / |delta|^2.
    d, sigma = 10, 1.0
    model, x, y = linear_regression(d, 100_000, sigma)
    analytic = d + 1 + sigma ** 2 * d
    rng = torch.Generator().manual_seed(1)
    found = [gradient_noise_scale(model, mse, x, y, batch, n_batches, rng) for _ in range(60)]
    # averaged before the ratio (McCandlish et al.), as the training loop's summary does
    measured = noise_scale_summary([(i + 1, m) for i, m in enumerate(found)], None)["b_simple"]
    assert abs(measured / analytic - 1) < 0.2, (measured, analytic)
    assert all(m["noise_trace"] > 0 for m in found)


def test_noise_scale_needs_two_batches_and_corrects_for_a_finite_training_set():
    model, x, y = linear_regression(5, 64, 0.5)
    rng = torch.Generator().manual_seed(0)
    assert gradient_noise_scale(model, mse, x, y, 40, 4, rng) == {}  # only one batch of 40 fits in 64
    # the big batch is the whole set: its gradient is exact, and the estimate of |G|^2 with it
    full = torch.autograd.grad(mse(model(x), y, "mean"), list(model.parameters()))[0].pow(2).sum().item()
    g2 = np.mean([gradient_noise_scale(model, mse, x, y, 16, 4, rng)["noise_g2"] for _ in range(200)])
    assert g2 == pytest.approx(full, rel=0.1)


def test_training_logs_the_noise_scale_without_changing_training():
    cache = DataCache()
    spec = TrialSpec(dataset="regression", n_samples=1200, batch_size=16, lr=0.01, momentum=0.9, steps=120,
                     evals=4, dropout=0.2, target=0.3)
    off = train_trial(spec, cache)
    on = train_trial(dataclasses.replace(spec, measure_noise_scale=True), cache)
    assert on.status.value == off.status.value == "completed"
    # same batches, same dropout masks: the measurement draws from its own RNG and restores the global one
    assert [p["val_loss"] for p in on.curve] == [p["val_loss"] for p in off.curve]
    assert all({"b_simple", "noise_g2", "noise_trace"} <= set(p) for p in on.curve)
    assert not any("b_simple" in p for p in off.curve) and "b_simple" not in off.metrics
    assert on.metrics["b_simple"] > 0
    assert on.trial_id != off.trial_id
    # off by default, the field leaves existing trial ids as they were
    assert TrialSpec(steps=100).canonical_json().count("measure_noise_scale") == 0


def test_batchnorm_statistics_are_restored_after_a_measurement():
    model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.BatchNorm1d(8), torch.nn.Linear(8, 1))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    x, y = torch.randn(256, 4), torch.randn(256)
    gradient_noise_scale(model.train(), mse, x, y, 16, 4, torch.Generator().manual_seed(0))
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


# ------------------------------------------------------------------ the fit

BATCHES = np.array([4, 8, 16, 32, 64, 128, 256, 512, 1024], dtype=float)


def test_fit_recovers_the_critical_batch_and_the_tradeoff():
    rng = np.random.default_rng(0)
    steps = (60 + 60 * 150 / BATCHES) * np.exp(rng.normal(0, 0.03, BATCHES.size))
    fit = fit_steps_vs_batch(BATCHES, steps)
    assert fit.b_crit == pytest.approx(150, rel=0.15) and fit.s_min == pytest.approx(60, rel=0.1)
    assert not fit.edge and fit.rmse_log < 0.05
    exact = fit.steps(BATCHES)
    assert np.allclose(tradeoff(exact, exact * BATCHES, fit), 1.0)
    assert np.allclose(fit.slope([fit.b_crit]), -0.5)
    assert [regime(b, 150) for b in (4, 37.5, 38, 600, 601)] == \
        [REGIMES[0], REGIMES[0], REGIMES[1], REGIMES[2], REGIMES[2]]


def test_fit_flags_a_single_regime_and_refuses_too_few_points():
    assert fit_steps_vs_batch(BATCHES, 5000 / BATCHES).edge  # perfect scaling everywhere: B_crit beyond the grid
    assert fit_steps_vs_batch(BATCHES, np.full(BATCHES.size, 80.0)).edge  # flat: no perfect scaling
    assert np.isnan(fit_steps_vs_batch([8, 16], [100, 50]).b_crit)
    assert np.isnan(fit_steps_vs_batch([8, 8, 8], [100, 90, 80]).b_crit)
    assert power_law_exponent([1, 2, 4], [3, 6, 12]) == pytest.approx(1.0)
    assert geometric_mean(np.array([[1.0, np.nan], [4.0, -1.0]]), axis=0)[0] == pytest.approx(2.0)


def test_fastest_trial_per_cell_and_censoring():
    frame = pd.DataFrame({
        "batch_size": [8, 8, 8, 64, 64], "seed": 0, "lr": [0.01, 0.1, 1.0, 0.1, 1.0],
        "status": ["completed", "completed", "diverged", "completed", "diverged"], "trial_id": list("abcde"),
        "steps_to_target": [500, 300, np.nan, np.nan, np.nan], "examples_to_target": [4000, 2400, np.nan, np.nan, np.nan],
        "steps_done": [1000, 1000, 20, 400, 10], "val_acc": [0.6, 0.6, np.nan, 0.4, np.nan]})
    cells = fastest_trials(frame, ["batch_size", "seed"], ["lr"]).set_index("batch_size")
    assert cells.loc[8, "steps"] == 300 and cells.loc[8, "lr"] == 0.1 and not cells.loc[8, "censored"]
    assert cells.loc[64, "censored"] and cells.loc[64, "steps"] == 400 and cells.loc[64, "examples"] == 400 * 64


# ------------------------------------------------------------------ critical_batch (B4)

def scaling_frame(b_crit=150.0, noise=150.0, seeds=4, noise_sd=0.05, s_min=60.0, rng_seed=0, lrs=(0.03, 0.1, 0.3)):
    """Trials whose fastest LR (lr0 ~ B, linear rule) reaches the target at S(B) = s_min (1 + b_crit / B)."""
    rng = np.random.default_rng(rng_seed)
    rows = []
    for s in range(seeds):
        shift = rng.normal(0, noise_sd)
        for b in BATCHES:
            best_lr = 0.001 * b
            for lr in (best_lr * f for f in (0.5, 1.0, 2.0)):
                slow = 1.0 if lr == best_lr else 1.5
                steps = s_min * (1 + b_crit / b) * slow * np.exp(shift + rng.normal(0, noise_sd))
                rows.append({"batch_size": b, "lr": lr, "seed": s, "status": "completed", "trial_id": f"{b}-{lr}-{s}",
                             "steps_to_target": round(steps), "examples_to_target": round(steps) * b,
                             "steps_done": 10_000, "val_acc": 0.6,
                             "b_simple_at_target": noise * np.exp(rng.normal(0, 0.1))})
    return pd.DataFrame(rows)


def critical(frame, **params):
    claim = Claim("T-B4", "critical_batch", "6", "a B4 claim", KINDS["critical_batch"].resolve_params(params))
    return KINDS["critical_batch"].evaluate(claim, frame, Design(scientific=("batch_size",), nuisance=("lr",), fixed=()))


def test_critical_batch_supported_refuted_inconclusive():
    ok = critical(scaling_frame(noise=200))
    assert ok.verdict == "supported", ok.summary
    assert ok.effect == pytest.approx(150 / 200, rel=0.3) and ok.ci[0] > 1 / 3 and ok.ci[1] < 3
    estimates = {r["estimate"]: r for r in ok.data if "estimate" in r}
    b_crit = next(r for k, r in estimates.items() if k.startswith("critical batch"))
    assert b_crit["value_lo"] <= 150 <= b_crit["value_hi"]
    exponent = next(r for k, r in estimates.items() if k.startswith("exponent"))
    assert exponent["value"] == pytest.approx(1.0, abs=0.05)  # the fastest LR follows the linear rule
    levels = [r for r in ok.data if "level" in r]
    assert [r["regime"] for r in levels][0] == "perfect scaling" and levels[-1]["regime"] == "maximal data parallelism"
    assert all(isinstance(v, (int, float, str, bool, type(None))) for row in ok.data for v in row.values())
    json.dumps(ok.to_dict())
    assert critical(scaling_frame(noise=3000)).verdict == "refuted"  # 20x apart
    # B_crit beyond the tested batch sizes: only the perfect-scaling side is in the data
    beyond = critical(scaling_frame(b_crit=20_000, noise=20_000))
    assert beyond.verdict == "inconclusive"
    # B_simple 3x B_crit, with seed-to-seed noise: the ratio's CI straddles the band's edge 1/3
    noisy = critical(scaling_frame(noise=450, noise_sd=0.3, rng_seed=3))
    assert noisy.verdict == "inconclusive", noisy.summary


def test_critical_batch_without_noise_and_with_censored_cells():
    frame = scaling_frame(noise=200)
    fit_only = critical(frame, noise="")
    assert fit_only.verdict == "supported" and fit_only.effect == pytest.approx(150, rel=0.3)
    censored = frame.copy()
    censored.loc[censored["batch_size"] == 4, "steps_to_target"] = np.nan
    result = critical(censored)
    assert any("no trial reached the target" in c and "4" in c for c in result.caveats)
    assert next(r for r in result.data if r.get("level") == 4)["censored"] == 4
    too_few = critical(frame[frame["batch_size"] <= 8])
    assert too_few.verdict == "inconclusive" and "the fit needs 3" in too_few.summary


# ------------------------------------------------------------------ linear_scaling (B5)

def linear_frame(drop=lambda k, warm: 0.0, seeds=6, noise=0.002, rng_seed=0):
    rng = np.random.default_rng(rng_seed)
    shift = rng.normal(0, 0.01, seeds)
    rows = []
    for k in (1, 2, 4, 8, 16, 32):
        for warm in ((False,) if k == 1 else (False, True)):
            for s in range(seeds):
                acc = 0.6 + shift[s] - drop(k, warm) + rng.normal(0, noise)
                rows.append({"batch_size": 8 * k, "lr": 0.01 * k, "warmup_steps": 400 // k if warm else 0,
                             "seed": s, "status": "completed", "trial_id": f"{k}-{warm}-{s}", "val_acc": acc,
                             "test_acc": acc})
    return pd.DataFrame(rows)


def linear(frame, **params):
    claim = Claim("T-B5", "linear_scaling", "6", "a B5 claim", KINDS["linear_scaling"].resolve_params(params))
    return KINDS["linear_scaling"].evaluate(claim, frame, Design(scientific=("scale",), nuisance=(), fixed=()))


def test_linear_scaling_supported_refuted_inconclusive_and_where_it_breaks():
    # warmup keeps accuracy up to k = 8, then drops; without warmup it drops from k = 4
    drop = lambda k, warm: (0.0 if k <= 8 else 0.05) if warm else (0.0 if k <= 2 else 0.04)  # noqa: E731
    result = linear(linear_frame(drop), min_k=8)
    assert result.verdict == "supported", result.summary
    assert "warmup: holds up to k = 8, breaks at k = 16" in result.summary
    assert "none: holds up to k = 2, breaks at k = 4" in result.summary
    assert {r["arm"] for r in result.data} == {"warmup", "none"}
    assert all(isinstance(v, (int, float, str, bool, type(None))) for row in result.data for v in row.values())
    assert linear(linear_frame(drop), min_k=16).verdict == "refuted"
    noisy = linear(linear_frame(lambda k, warm: 0.01, seeds=3, noise=0.02, rng_seed=1), min_k=8)
    assert noisy.verdict == "inconclusive", noisy.summary


def test_linear_scaling_flags_an_lr_that_is_not_scaled():
    frame = linear_frame()
    frame.loc[frame["batch_size"] == 64, "lr"] = 0.05
    assert any("not 0.01 x k at k = 8" in c for c in linear(frame).caveats)


# ------------------------------------------------------------------ the suites

def test_batch_scaling_group_loads_in_every_tier_and_is_not_in_the_faq_group(validate_suite):
    group = load_group("batch_scaling")
    assert group is not None and len(group.suites) == 3
    assert not any("batch_scaling" in s for s in load_group("faq").suites)
    for path in group.suites:
        validate_suite(tomllib.loads(Path(path).read_text()))
    for tier in TIERS:
        suites = load_targets(["batch_scaling"], tier)
        claims = {c.id: c.kind for s in suites for c in s.claims}
        assert claims == {"B1": "monotone_trend", "B4": "critical_batch", "B5": "linear_scaling"}
        assert all(expand(s) for s in suites)
    default = {s.name: s for s in load_targets(["batch_scaling"], "default")}
    steps = expand(default["batch_steps_to_target"])
    assert all(s.measure_noise_scale and s.target > 0 for s in steps)
    assert len({s.batch_size for s in steps}) >= 8 and len(default["batch_steps_to_target"].seeds) >= 3
    from claimbench.train.packing import packable
    # timing trials train alone (a packed trial's time is a share of a joint step, not one run's throughput)
    assert not any(packable(s) for s in expand(default["batch_throughput"]))
    for s in expand(default["batch_linear_scaling"]):  # the linear rule: lr = 0.01 x batch / 8
        assert s.lr == pytest.approx(0.01 * s.batch_size / 8) and s.epochs > 0


def test_new_kinds_are_in_the_schema_and_the_suite_dir():
    kinds = json_schema()["properties"]["claims"]["items"]["properties"]["kind"]["enum"]
    assert {"critical_batch", "linear_scaling"} <= set(kinds)
    assert (suites_dir() / "batch_scaling").is_dir()
    assert "measure_noise_scale" in json_schema()["properties"]["train"]["properties"]


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    from claimbench.api import evaluate_target
    from claimbench.cli import main
    out = tmp_path_factory.mktemp("bs") / "run"
    main(["run", "batch_scaling", "--tier", "smoke", "--executor", "local", "--out", str(out), "--quiet"])
    return out, evaluate_target(out)


@pytest.mark.slow
def test_smoke_run_reports_b1_b4_b5_with_their_figures(smoke_run):
    from claimbench.report.figures import figures_for
    out, evaluations = smoke_run
    results = {r.claim_id: (ev, r) for ev in evaluations for r in ev.results}
    assert set(results) == {"B1", "B4", "B5"}
    ev, b4 = results["B4"]
    claim = next(c for c in ev.suite.claims if c.id == "B4")
    titles = [f.title for f in figures_for(claim, b4, ev)]
    assert titles == ["steps to target per batch_size", "critical-batch estimates", "optimal lr per batch_size",
                      "gradient noise scale over training"]
    html = (out / "report.html").read_text()
    assert html.count("<svg") >= 6 and "B_crit" in html
    assert "noise_curve" in ev.frame.columns and ev.frame["b_simple"].notna().any()


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_throughput_timing_runs_on_the_gpu_and_measures_the_noise_scale_there():
    cache = DataCache()
    records = [train_trial(TrialSpec(dataset="mnist1d", batch_size=b, lr=0.001, steps=50, evals=1,
                                     measure_noise_scale=True), cache, device="cuda") for b in (8, 512)]
    assert all(r.status.value == "completed" and r.device == "cuda" for r in records), [r.error for r in records]
    assert all(r.examples_per_s > 0 and r.metrics["b_simple"] > 0 for r in records)
