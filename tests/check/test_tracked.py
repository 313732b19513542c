"""A tracked metric watches its claim: computed over the claim's own cells (its where and arms), overall and
per arm, so that an arm that drops shows even while the claim's best trial does not move."""

from __future__ import annotations

import pandas as pd

from claimbench.check.baseline import per_seed_values
from claimbench.suite import load_suite
from tests.conftest import TINY_SUITE

PAIRED = TINY_SUITE + """
[[claims]]
id = "P1"
kind = "paired_comparison"
faq_section = 6
paraphrase = "Batch 4 beats batch 16."
params = { a = { batch_size = 4 }, b = { batch_size = 16 }, margin = 0.0 }
"""


def frame(drop_64: float = 0.0, drop_16: float = 0.0) -> pd.DataFrame:
    rows = []
    for seed in range(3):
        for b, acc in ((4, 0.80), (16, 0.70 - drop_16), (64, 0.90 - drop_64)):
            for lr, dv in ((0.01, 0.0), (0.1, -0.05)):
                rows.append({"trial_id": f"{b}-{lr}-{seed}", "seed": seed, "batch_size": b, "lr": lr,
                             "status": "completed", "val_acc": acc + dv + 0.001 * seed, "test_acc": acc + dv})
    return pd.DataFrame(rows)


def test_a_tracked_metric_is_the_claims_own_per_arm_and_overall(write_suite):
    suite = load_suite(write_suite(PAIRED), "default")
    claim = next(c for c in suite.claims if c.id == "P1")
    got = per_seed_values(suite, claim, frame(), ["test_acc"])
    assert set(got) == {"test_acc", "test_acc[arm=a: batch_size=4]", "test_acc[arm=b: batch_size=16]"}
    # batch 64 is the suite's best, but not one of this claim's arms: the claim's best is batch 4's
    assert got["test_acc"]["values"] == [0.80] * 3
    assert got["test_acc[arm=b: batch_size=16]"]["values"] == [0.70] * 3
    # batch 16 drops: the claim's best does not move, its arm does
    dropped = per_seed_values(suite, claim, frame(drop_16=0.1), ["test_acc"])
    assert dropped["test_acc"]["values"] == got["test_acc"]["values"]
    assert dropped["test_acc[arm=b: batch_size=16]"]["values"] == [0.60] * 3
    # a drop outside the claim's arms changes nothing the claim tracks
    assert per_seed_values(suite, claim, frame(drop_64=0.5), ["test_acc"]) == got


def test_a_level_claim_tracks_each_level(write_suite):
    suite = load_suite(write_suite(TINY_SUITE), "default")
    claim = next(c for c in suite.claims if c.id == "B2")
    got = per_seed_values(suite, claim, frame(), ["test_acc"])
    assert got["test_acc"]["values"] == [0.90] * 3  # the best level's
    assert {k for k in got if "arm=" in k} == {f"test_acc[arm=batch_size={b}]" for b in (4, 16, 64)}
    assert got["test_acc[arm=batch_size=16]"]["values"] == [0.70] * 3
