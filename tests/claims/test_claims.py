"""Claim kinds on fixture frames whose true answer is known: supported, refuted, inconclusive."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from claimbench.analysis import isolate
from claimbench.claims import KINDS, Claim, Design, evaluate_claims
from claimbench.claims.range_width import good_ranges

DESIGN = Design(scientific=("batch_size",), nuisance=("lr",), fixed=(), constants={"dataset": "synthetic"})
LEVELS = [4, 16, 64, 256]
LRS = [0.01, 0.03, 0.1, 0.3, 1.0]


def frame_from(acc, seeds=5, noise=0.002, diverged=lambda b, lr: False, rng_seed=0):
    """One row per (batch, lr, seed); ``acc(b, lr)`` the true accuracy, plus seed noise."""
    rng = np.random.default_rng(rng_seed)
    rows = []
    for b in LEVELS:
        for lr in LRS:
            for s in range(seeds):
                div = diverged(b, lr)
                a = np.nan if div else acc(b, lr) + rng.normal(0, noise)
                rows.append({"batch_size": b, "lr": lr, "seed": s, "trial_id": f"{b}-{lr}-{s}",
                             "status": "diverged" if div else "completed",
                             "val_acc": a, "test_acc": a if np.isnan(a) else a + rng.normal(0, noise)})
    return pd.DataFrame(rows)


def b2(**params):
    p = {"axis": "batch_size", "low": 2.0, "high": 32.0}
    p.update(params)
    return Claim("B2", "best_level_in_range", "6", "small batches win", KINDS["best_level_in_range"].resolve_params(p))


def lr_peak(b):
    return 0.01 * b / 4  # the best LR grows with batch, so isolation must re-tune it


def test_isolation_picks_best_on_val_and_reports_test():
    frame = frame_from(lambda b, lr: 0.9 - abs(np.log10(lr / min(lr_peak(b), 1.0))) * 0.1)
    iso = isolate(frame, "batch_size", DESIGN)
    assert len(iso) == len(LEVELS) * 5
    best_lr = iso.groupby("batch_size")["lr"].agg(lambda x: x.mode()[0])
    assert best_lr[4] == 0.01 and best_lr[256] == 1.0
    one = iso.iloc[0]
    chosen = frame[frame.trial_id == one["trial_id"]].iloc[0]
    assert one["value"] == chosen["test_acc"] and one["selected"] == chosen["val_acc"]


def test_isolation_never_picks_a_diverged_trial():
    frame = frame_from(lambda b, lr: 0.8, diverged=lambda b, lr: lr >= 0.3)
    iso = isolate(frame, "batch_size", DESIGN)
    assert set(iso["lr"]) <= {0.01, 0.03, 0.1}
    assert (iso["n_diverged"] == 2).all()


def test_best_level_supported_refuted_inconclusive():
    supported = frame_from(lambda b, lr: 0.9 - 0.05 * (b != 16))
    refuted = frame_from(lambda b, lr: 0.9 - 0.05 * (b != 256))
    tie = frame_from(lambda b, lr: 0.9, noise=0.02)
    assert KINDS["best_level_in_range"].evaluate(b2(), supported, DESIGN).verdict == "supported"
    r = KINDS["best_level_in_range"].evaluate(b2(), refuted, DESIGN)
    assert r.verdict == "refuted" and r.effect == pytest.approx(-0.05, abs=0.01) and r.ci[1] < 0
    assert KINDS["best_level_in_range"].evaluate(b2(), tie, DESIGN).verdict == "inconclusive"


def test_best_level_margin_and_undecidable_matrix():
    small_win = frame_from(lambda b, lr: 0.9 - 0.01 * (b != 16))
    assert KINDS["best_level_in_range"].evaluate(b2(margin=0.05), small_win, DESIGN).verdict == "refuted"
    r = KINDS["best_level_in_range"].evaluate(b2(low=1.0, high=1000.0), small_win, DESIGN)
    assert r.verdict == "inconclusive" and "cannot decide" in r.summary


def test_best_level_flags_grid_edge_and_empty_cells():
    frame = frame_from(lambda b, lr: 0.5 + 0.1 * np.log10(lr), diverged=lambda b, lr: b == 256)
    r = KINDS["best_level_in_range"].evaluate(b2(), frame, DESIGN)
    assert any("highest tested" in c for c in r.caveats)
    assert any("no usable trial" in c for c in r.caveats)


def widths_claim(**params):
    p = {"axis": "batch_size", "range_axis": "lr"}
    p.update(params)
    return Claim("B3", "range_width_trend", "6", "range narrows", KINDS["range_width_trend"].resolve_params(p))


def test_good_ranges_widths():
    # at batch 4 every LR is good; at 256 only 0.1
    frame = frame_from(lambda b, lr: 0.9 if (b == 4 or lr == 0.1) else 0.5)
    ranges = good_ranges(frame, "batch_size", "lr", "val_acc", 0.01)
    w = ranges.groupby("batch_size")["width"].mean()
    step = np.median(np.diff(np.log2(LRS)))
    assert w[4] == pytest.approx(np.log2(1.0 / 0.01) + step)
    assert w[256] == pytest.approx(step)
    assert ranges[ranges.batch_size == 4]["censored"].all()


def test_range_width_supported_refuted_inconclusive():
    # number of good LRs shrinks (supported) or grows (refuted) with batch; constant (inconclusive)
    def good(n_good_of):
        return lambda b, lr: 0.9 if LRS.index(lr) < n_good_of(b) else 0.3

    shrink = frame_from(good(lambda b: 5 - LEVELS.index(b)))
    grow = frame_from(good(lambda b: 2 + LEVELS.index(b)))
    flat = frame_from(good(lambda b: 3))
    kind = KINDS["range_width_trend"]
    s = kind.evaluate(widths_claim(), shrink, DESIGN)
    assert s.verdict == "supported" and s.effect == pytest.approx(-1.0)
    assert kind.evaluate(widths_claim(), grow, DESIGN).verdict == "refuted"
    assert kind.evaluate(widths_claim(), flat, DESIGN).verdict == "inconclusive"


def test_range_width_counts_diverged_lrs_as_not_good():
    frame = frame_from(lambda b, lr: 0.9, diverged=lambda b, lr: LRS.index(lr) >= 5 - LEVELS.index(b))
    r = KINDS["range_width_trend"].evaluate(widths_claim(), frame, DESIGN)
    assert r.verdict == "supported"


def test_strata_are_judged_separately_and_combined():
    a = frame_from(lambda b, lr: 0.9 - 0.05 * (b != 16)).assign(budget="epochs=5")
    b = frame_from(lambda b, lr: 0.9 - 0.05 * (b != 256)).assign(budget="steps=100")
    design = Design(scientific=("batch_size",), nuisance=("lr",), fixed=("budget",))
    (r,) = evaluate_claims([b2()], pd.concat([a, b]), design)
    assert [s.verdict for s in r.strata] == ["supported", "refuted"]
    assert r.verdict == "inconclusive" and "depends" in r.summary
    assert [s.stratum for s in r.strata] == [{"budget": "epochs=5"}, {"budget": "steps=100"}]
    same = evaluate_claims([b2()], pd.concat([a, a.assign(budget="steps=100")]), design)[0]
    assert same.verdict == "supported"


def test_claim_params_are_validated():
    kind = KINDS["best_level_in_range"]
    with pytest.raises(KeyError, match="missing required parameter 'low'"):
        kind.resolve_params({"axis": "batch_size", "high": 32})
    with pytest.raises(TypeError, match="'low' must be float"):
        kind.resolve_params({"axis": "batch_size", "low": "two", "high": 32})
    assert kind.resolve_params({"axis": "batch_size", "low": 2, "high": 32})["low"] == 2.0


def test_range_width_warns_when_the_grid_cannot_resolve_widths():
    frame = frame_from(lambda b, lr: 0.9 if lr == 0.1 else 0.5)
    r = KINDS["range_width_trend"].evaluate(widths_claim(), frame, DESIGN)
    assert r.verdict == "inconclusive"
    assert any("too coarse" in c for c in r.caveats)
    wide = frame_from(lambda b, lr: 0.9 if lr in (0.03, 0.1, 0.3) else 0.5)
    assert not any("too coarse" in c for c in KINDS["range_width_trend"].evaluate(widths_claim(), wide, DESIGN).caveats)
