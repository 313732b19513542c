"""The inference module: intervals, p-values, verdicts, combination and multiplicity."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from claimbench.analysis import inference
from claimbench.analysis import quantities as Q
from claimbench.analysis.inference import (ALPHA, Evidence, Hypothesis, adjust, combine, decide_max_min,
                                           decide_mean, decide_rank_trend)


def test_decide_mean_is_the_one_sided_t_test_and_its_interval_agrees():
    rng = np.random.default_rng(0)
    for _ in range(50):
        x = rng.normal(rng.normal(0, 1), 1, int(rng.integers(2, 10)))
        d = decide_mean(x, Hypothesis.greater(0.3, -0.2))
        want = sps.ttest_1samp(x, 0.3, alternative="greater").pvalue
        assert d.p_supported == pytest.approx(want, rel=1e-9)
        assert d.p_refuted == pytest.approx(sps.ttest_1samp(x, -0.2, alternative="less").pvalue, rel=1e-9)
        # the interval and the tests decide alike
        assert (d.ci[0] > 0.3) == (d.p_supported < ALPHA)
        assert (d.ci[1] < -0.2) == (d.p_refuted < ALPHA)
        assert d.verdict == ("supported" if d.ci[0] > 0.3 else "refuted" if d.ci[1] < -0.2 else "inconclusive")
        assert d.ci[0] < d.estimate < d.ci[1] and d.mde > 0


def test_identical_seeds_never_claim_certainty_below_six_seeds():
    # no spread: the exact sign-flip test decides, p = 2^-n
    three = decide_mean([0.1, 0.1, 0.1], Hypothesis.greater(0.0))
    assert three.p_supported == pytest.approx(0.125) and three.verdict == "inconclusive"
    eight = decide_mean([0.1] * 8, Hypothesis.greater(0.0))
    assert eight.p_supported == pytest.approx(2 ** -8) and eight.verdict == "supported"
    assert decide_mean([0.1], Hypothesis.greater(0.0)).verdict == "inconclusive"


def test_band_is_two_one_sided_tests():
    inside = decide_mean([0.01, -0.02, 0.0, 0.015, -0.005, 0.01, 0.0, -0.01], Hypothesis.band(-0.1, 0.1))
    assert inside.verdict == "supported" and -0.1 < inside.ci[0] and inside.ci[1] < 0.1
    outside = decide_mean([0.5, 0.52, 0.48, 0.51], Hypothesis.band(-0.1, 0.1))
    assert outside.verdict == "refuted"
    straddle = decide_mean([0.05, 0.15, 0.1, 0.12], Hypothesis.band(-0.1, 0.1))
    assert straddle.verdict == "inconclusive"


def test_max_min_bounds_agree_with_their_p_values_and_cover_the_truth():
    rng = np.random.default_rng(1)
    covered, n_rep = 0, 300
    for _ in range(n_rep):
        mu_a, mu_b = rng.normal(0, 0.5, 3), rng.normal(0, 0.5, 4)
        shift = rng.normal(0, 1, (6, 1))
        a = mu_a + shift + rng.normal(0, 0.3, (6, 3))
        b = mu_b + shift + rng.normal(0, 0.3, (6, 4))
        d = decide_max_min(a, b, Hypothesis.greater(0.0))
        truth = max(mu_a) - max(mu_b)
        covered += d.ci[0] <= truth <= d.ci[1]
        assert (d.ci[0] > 0) == (d.p_supported < ALPHA)
        assert (d.ci[1] < 0) == (d.p_refuted < ALPHA)
    assert covered / n_rep >= 0.95  # each side errs at most 2.5%: conservative


def test_combination_all_needs_every_part_and_any_refutes_with_bonferroni():
    s, r, i = (Evidence("supported", 0.01, 0.9), Evidence("refuted", 0.9, 0.01), Evidence("inconclusive", 0.2, 0.3))
    assert combine([s, s], "all").verdict == "supported" and combine([s, i], "all").verdict == "inconclusive"
    assert combine([s, s], "all").p_supported == 0.01
    assert combine([s, s], "any").verdict == "supported"
    # one refuted part of two: its p doubles (Bonferroni); 0.02 is refuted, 0.015 x 2 is not
    assert combine([s, Evidence("refuted", 0.9, 0.01)], "any").verdict == "refuted"
    assert combine([s, Evidence("refuted", 0.9, 0.015)], "any").verdict == "inconclusive"


def test_holm_keeps_strong_evidence_and_drops_weak():
    strong, weak = Evidence("supported", 1e-5, 1.0), Evidence("supported", 0.02, 1.0)
    assert adjust([strong, weak, Evidence("inconclusive", 0.5, 0.5)]) == ["supported", "inconclusive", "inconclusive"]
    assert adjust([weak]) == ["inconclusive"]  # 2 tests: 0.02 x 2 >= 0.025
    assert adjust([Evidence("refuted", 1.0, 0.001)]) == ["refuted"]
    assert inference.chance_decisions(40) == pytest.approx(2.0)


def test_rank_trend_permutation_test():
    levels = np.arange(5, dtype=float)
    perfect = np.tile(levels, (3, 1)) * 0.01  # every seed exactly increasing
    d = decide_rank_trend(levels, perfect, Hypothesis.greater(0.0))
    assert d.verdict == "supported" and d.estimate == pytest.approx(1.0)
    down = decide_rank_trend(levels, -perfect, Hypothesis.greater(0.0))
    assert down.verdict == "refuted"
    rng = np.random.default_rng(2)
    ps = [decide_rank_trend(levels, rng.normal(0, 1, (4, 5)), Hypothesis.greater(0.0), n_perm=400, seed=k).p_supported
          for k in range(200)]
    assert 0.4 < float(np.mean(ps)) < 0.6  # about uniform under the null
    assert np.mean(np.array(ps) < 0.05) < 0.1


def test_selected_cells_fast_path_matches_the_per_cell_rule():
    rng = np.random.default_rng(3)
    n = 240
    frame = pd.DataFrame({"a": rng.choice(["x", "y", None], n), "seed": rng.integers(0, 4, n),
                          "lr": rng.choice([0.1, 0.3, 1.0], n),
                          "status": rng.choice(["completed", "diverged", "failed"], n, p=[.7, .2, .1]),
                          "val_acc": np.round(rng.random(n), 1), "test_acc": rng.random(n)})
    frame.loc[rng.random(n) < 0.1, "val_acc"] = np.nan
    frame["trial_id"] = [f"t{i}" for i in range(n)]
    keys = ["a", "seed"]
    for text in ("test_acc", "argbest:lr"):
        q = Q.parse_quantity(text)
        fast = Q.cell_quantities(frame, keys, q, tuned=["lr"])
        rows = []
        for key, cell in frame.groupby(keys, sort=True, dropna=False):
            row = dict(zip(keys, (Q._plain(k) for k in key)))
            row.update(n_trials=len(cell), n_diverged=int((cell["status"] == "diverged").sum()))
            row.update(Q._one_cell(cell, q, "val_acc", 0.01, ["lr"], None))
            rows.append(row)
        slow = pd.DataFrame(rows)[fast.columns]
        pd.testing.assert_frame_equal(fast.reset_index(drop=True), slow.reset_index(drop=True), check_dtype=False)
    # a frame in which no trial can be selected (all diverged) gives NaN cells, not an error
    dead = frame.assign(status="diverged")
    assert Q.cell_quantities(dead, keys, "test_acc", tuned=["lr"])["value"].isna().all()
