"""The frontier claims (issue 16: B6-B9): their kinds on frames whose answer is known, their suites, their
calibration scenarios, and the group's smoke run through the CLI."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from claimbench.analysis import frontier as fx
from claimbench.analysis.isolation import Design
from claimbench.claims import KINDS, Claim

OWN_SUITES = ("beta2_halflife.toml", "adam_lr_surge.toml", "weight_decay_scaling.toml", "critical_batch_growth.toml")
MY_CLAIMS = {"B6", "B6b", "B6c", "B7", "B7b", "B8", "B9"}
DESIGN = Design(scientific=("batch_size",), nuisance=("lr",), fixed=())
GRID = 2.0 ** np.arange(-14, 6, 0.5)


def tuned_frame(opt_log2, seeds=6, batches=(8, 16, 32, 64, 128, 256, 512), scatter=0.3, seed=0, column="lr"):
    """val_acc peaked over an LR grid at log2 lr = opt_log2(batch) plus per-cell scatter."""
    rng = np.random.default_rng(seed)
    rows = []
    for s in range(seeds):
        for b in batches:
            opt = opt_log2(b) + rng.normal(0, scatter)
            for g in GRID:
                v = 0.9 - 0.02 * (math.log2(g) - opt) ** 2 + rng.normal(0, 0.002)
                rows.append({"seed": s, "batch_size": b, column: g, "status": "completed", "val_acc": v,
                             "test_acc": v, "trial_id": f"{s}-{b}-{g}", "b_simple": 300.0})
    return pd.DataFrame(rows)


def evaluate(kind, frame, design=DESIGN, **params):
    k = KINDS[kind]
    return k.evaluate(Claim("X", kind, "6", "", k.resolve_params(params)), frame, design)


# ------------------------------------------------------------------ statistics with known answers

def test_zhang_critical_batch_matches_the_closed_form_and_is_nan_beyond_the_grid():
    b = 2.0 ** np.arange(0, 14, 0.25)
    s_min, b_crit = 50.0, 400.0
    steps = s_min * (1 + b_crit / b)
    # (B + B_crit) / (B_0 + B_crit) = 1.2  =>  B = 1.2 B_0 + 0.2 B_crit
    assert fx.zhang_critical_batch(b, steps) == pytest.approx(1.2 * 1 + 0.2 * b_crit, rel=0.01)
    assert math.isnan(fx.zhang_critical_batch([8, 16, 32], [100, 50, 25]))  # perfect scaling: never 20% over
    assert math.isnan(fx.zhang_critical_batch([8], [100]))


def test_seed_slopes_peaks_and_noise_growth():
    levels = [8, 16, 32, 64]
    table = np.array([[1, 2, 4, 8], [8, 4, 2, 1], [1, np.nan, np.nan, 8]], dtype=float)
    slopes = fx.seed_slopes(levels, table)
    assert slopes[0] == pytest.approx(1) and slopes[1] == pytest.approx(-1) and math.isnan(slopes[2])
    assert fx.seed_slopes(levels, table, low=16, min_levels=2)[0] == pytest.approx(1)
    assert list(fx.peak_levels(levels, np.array([[1, 3, 3, 1]]))) == [pytest.approx(math.sqrt(16 * 32))]
    rising = [[t, 1.0, 100.0 + t] for t in range(0, 60, 10)]
    assert fx.noise_growth(rising) == pytest.approx(1.0)
    assert fx.noise_growth([[0, 1, 1], [10, -1, 5], [20, 1, 2]]) != fx.noise_growth(rising)  # |G|² <= 0 left out
    assert math.isnan(fx.noise_growth(None))


# ------------------------------------------------------------------ the kinds: supported, refuted, inconclusive

def test_power_law_slope_supports_refutes_and_cannot_decide():
    linear = evaluate("power_law_slope", tuned_frame(lambda b: math.log2(b) - 10), axis="batch_size", of="lr",
                      low=0.5, high=1.5)
    assert linear.verdict == "supported" and linear.effect == pytest.approx(1, abs=0.15)
    assert linear.ci[0] > 0.5 and linear.ci[1] < 1.5 and linear.unit == "log-log slope"
    assert any("level" in r and r["fitted"] > 0 for r in linear.data)
    flat = evaluate("power_law_slope", tuned_frame(lambda b: -6.0), axis="batch_size", of="lr", low=0.5, high=1.5)
    assert flat.verdict == "refuted" and abs(flat.effect) < 0.2
    two_levels = evaluate("power_law_slope", tuned_frame(lambda b: math.log2(b) - 10, batches=(8, 16)),
                          axis="batch_size", of="lr", low=0.5, high=1.5)
    assert two_levels.verdict == "inconclusive" and "needs 3" in two_levels.summary
    noisy = evaluate("power_law_slope", tuned_frame(lambda b: math.log2(b) - 10, seeds=2, scatter=1.5),
                     axis="batch_size", of="lr", low=0.9, high=1.1)
    assert noisy.verdict == "inconclusive"
    one_sided = evaluate("power_law_slope", tuned_frame(lambda b: math.log2(b) - 10), axis="batch_size", of="lr",
                         low=0.5)
    assert one_sided.verdict == "supported" and one_sided.band["kind"] == "greater"
    with pytest.raises(ValueError, match="infinite"):
        evaluate("power_law_slope", tuned_frame(lambda b: -6.0, seeds=2), axis="batch_size", of="lr")


def test_lr_surge_supports_a_peak_and_refutes_a_steady_rise():
    peak = evaluate("lr_surge", tuned_frame(lambda b: -abs(math.log2(b) - 6) - 4), split=64.0)
    assert peak.verdict == "supported" and peak.effect < 0
    rows = {r["estimate"].split(":")[0]: r for r in peak.data if "estimate" in r}
    assert rows["rise"]["value"] > 0.5 and 32 <= next(v["value"] for k, v in rows.items() if k.startswith("peak")) <= 128
    assert "B_simple 300" in peak.summary
    rising = evaluate("lr_surge", tuned_frame(lambda b: math.log2(b) - 12), split=64.0)
    assert rising.verdict == "refuted" and rising.effect > 0.5
    few = evaluate("lr_surge", tuned_frame(lambda b: math.log2(b) - 12), split=256.0)
    assert few.verdict == "inconclusive" and "each side needs 3" in few.summary
    with pytest.raises(ValueError, match="split"):
        evaluate("lr_surge", tuned_frame(lambda b: -6.0, seeds=2), split=0.0)


def growth_frame(growth, seeds=4, batches=(8, 32, 128, 512), seed=0):
    rng = np.random.default_rng(seed)
    rows = []
    for s in range(seeds):
        for b in batches:
            for lr in (0.1, 0.3):
                curve = [[t, 1.0, 100 * math.exp(growth * t / 100 + rng.normal(0, 0.2))] for t in range(0, 110, 10)]
                steps = round(20 * (1 + 200 / b) * math.exp(rng.normal(0, 0.05)))
                rows.append({"seed": s, "batch_size": b, "lr": lr, "status": "completed",
                             "val_acc": rng.normal(0.9, 0.01), "test_acc": 0.9, "trial_id": f"{s}-{b}-{lr}",
                             "noise_curve": curve, "steps_to_target": steps, "examples_to_target": steps * b,
                             "steps_done": 5000})
    return pd.DataFrame(rows)


def test_noise_scale_growth_and_the_two_critical_batches():
    up = evaluate("noise_scale_growth", growth_frame(1.0))
    assert up.verdict == "supported" and up.effect > 0.5 and up.unit == "Spearman rho"
    est = {r["estimate"]: r for r in up.data if "estimate" in r}
    zhang = next(v for k, v in est.items() if k.startswith("critical batch (Zhang"))
    fit = next(v for k, v in est.items() if k.startswith("critical batch B_crit"))
    # S = 20 (1 + 200 / B): B_crit = 200; the 20% point from B_0 = 8 is near 1.2 x 8 + 0.2 x 200 = 50
    assert fit["value"] == pytest.approx(200, rel=0.3) and 25 < zhang["value"] < 100
    assert "reported, not judged" in up.summary
    assert any(f"the two {words}" in up.summary
               for words in ("agree within 2x", "disagree by more than 2x", "undecided whether within 2x"))
    assert evaluate("noise_scale_growth", growth_frame(-1.0)).verdict == "refuted"
    one = evaluate("noise_scale_growth", growth_frame(1.0, seeds=1))
    assert one.verdict == "inconclusive" and "an interval needs 2" in one.summary
    flat = growth_frame(1.0).assign(noise_curve=None)
    assert evaluate("noise_scale_growth", flat).verdict == "inconclusive"


# ------------------------------------------------------------------ suites, group, calibration

def test_frontier_suites_load_at_every_tier_with_the_claims_and_the_beta2_rule():
    from claimbench.suite import expand, load_group, load_suite
    group = load_group("frontier")
    mine = [p for p in group.suites if p.rsplit("/", 1)[-1] in OWN_SUITES]
    assert len(mine) == 4  # the group also lists other frontier suites (W1, B10)
    ids = set()
    for path in mine:
        for tier in ("smoke", "default"):  # full: the same loader, 10x the trials (checked by hand)
            suite = load_suite(path, tier=tier)
            ids |= {c.id for c in suite.claims}
            if tier == "default":
                assert len(suite.seeds) == 8
    assert MY_CLAIMS <= ids
    b6 = expand(load_suite(mine[0], tier="default"))
    scaled = {s.batch_size: s.beta2 for s in b6 if s.optimizer == "adam" and s.beta2 != 0.999 or s.batch_size == 32}
    for batch, beta2 in scaled.items():  # beta2' = 0.999 ^ (B' / 32), to 8 decimals
        assert beta2 == pytest.approx(0.999 ** (batch / 32), abs=1e-8)


def test_calibration_has_a_scenario_for_each_frontier_kind():
    # the null rows only, 10 repetitions (the full table: claimbench calibrate power_law_slope lr_surge
    # noise_scale_growth --reps 200; the pilots of every kind's scenarios take most of this test's time)
    from claimbench import calibrate as calibration
    kinds = ["power_law_slope", "lr_surge", "noise_scale_growth"]
    assert set(kinds) <= set(calibration.scenario_kinds())
    rows = calibration.run(kinds, seeds=(3,), reps=10, nulls_only=True)
    assert {r.kind for r in rows} == set(kinds) and all(r.null for r in rows)
    assert all(0 <= r.supported <= 1 and 0 <= r.refuted <= 1 and r.sd > 0 for r in rows)
    text = calibration.markdown(rows, 10, 1.0)
    assert all(f"| {kind} |" in text for kind in kinds)


@pytest.mark.slow
def test_frontier_smoke_run_gives_a_verdict_row_per_claim_with_figures(tmp_path):
    from claimbench.api import evaluate_target
    from claimbench.cli import main
    from claimbench.report.figures import figures_for
    out = tmp_path / "run"
    # -k: this module's four suites of the group (B6-B9), not the group's other suites (W1, B10, the LM claims)
    main(["run", "frontier", "--tier", "smoke", "--executor", "local", "--out", str(out), "--quiet",
          "-k", "(B6 or B7 or B8 or B9) and not LM"])
    evaluations = evaluate_target(out)
    results = {r.claim_id: (ev, r) for ev in evaluations for r in ev.results}
    assert set(results) == MY_CLAIMS
    for cid in ("B7", "B8", "B9"):
        ev, r = results[cid]
        claim = next(c for c in ev.suite.claims if c.id == cid)
        assert figures_for(claim, r, ev), cid
    html = (out / "report.html").read_text()
    assert all(f">{cid}<" in html or f'"{cid}"' in html for cid in MY_CLAIMS)
