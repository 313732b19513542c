"""Packs: which trials share one, how wide, and the timing blocks that train last (runner/packs.py)."""

from __future__ import annotations

import dataclasses

import pytest

from claimbench.runner.packs import cost, make_packs
from claimbench.train.packing import packable
from claimbench.suite import expand, load_suite
from claimbench.train.policy.state import TIMING_WARMUP_STEPS, _timed_steps
from claimbench.workloads.builtin import TrialSpec


@pytest.fixture
def specs(tiny_suite_path):
    return expand(load_suite(tiny_suite_path, "smoke"))


def test_packs_cover_every_spec_once(specs):
    packs = make_packs(specs, 3)
    flat = [s.trial_id for p in packs for s in p]
    assert sorted(flat) == sorted(s.trial_id for s in specs)
    assert all(1 <= len(p) <= 3 for p in packs)
    assert all(len({s.shape_key() for s in p}) == 1 for p in packs)
    with pytest.raises(ValueError):
        make_packs(specs, 0)


# ---------------------------------------------------------------- pack width, exclusive timing trials

def _mlp(**kw):
    base = dict(dataset="mnist1d", depth=2, width=100, batch_size=8, steps=50, optimizer="sgd", momentum=0.9)
    return TrialSpec(**{**base, **kw})


def test_a_batch_size_cell_goes_out_in_one_pack_and_splits_only_to_keep_workers_busy():
    cell = [_mlp(seed=s, lr=lr) for s in range(3) for lr in (1e-3, 3e-3, 1e-2, 3e-2, 0.1, 0.3, 1.0, 3.0, 10.0)]
    assert len(cell) == 27
    assert [len(p) for p in make_packs(cell, workers=1)] == [27]
    # alone on two workers, one pack would leave one idle: two near-equal halves
    assert sorted(len(p) for p in make_packs(cell, workers=2)) == [13, 14]
    # beside seven more cells, each cell is under a worker's share of the run: one pack per cell
    run = cell + [_mlp(seed=s, lr=lr, batch_size=b) for b in (2, 4, 16, 32, 64, 128, 256)
                  for s in range(3) for lr in (1e-3, 3e-3, 1e-2, 3e-2, 0.1, 0.3, 1.0, 3.0, 10.0)]
    packs = make_packs(run, workers=2)
    assert all(len({s.batch_size for s in p}) == 1 for p in packs)
    assert [len(p) for p in packs if p[0].batch_size == 8] == [27]
    assert make_packs(run, workers=2) == packs  # deterministic
    costs = [sum(cost(s) for s in p) for p in packs]
    assert costs == sorted(costs, reverse=True)  # longest first
    assert max(len(p) for p in make_packs(cell, pack_size=5)) == 5  # --pack-size stays an upper bound


def test_a_code_change_leaves_the_packs_as_they_were():
    # a cell split in two, so that which trials share a pack depends on the tie-break; a new code
    # fingerprint changes every trial id, and must not regroup the trials (a trial packed with other
    # neighbours moves by rounding: measured on the FAQ's batchnorm packs, 5 of 28 trials shared)
    cell = [_mlp(seed=s, lr=lr) for s in range(3) for lr in (1e-3, 3e-3, 1e-2, 3e-2, 0.1, 0.3, 1.0, 3.0, 10.0)]
    before = make_packs(cell, workers=2)
    after = make_packs([dataclasses.replace(s, code="claimbench 0123456789ab") for s in cell], workers=2)
    assert {s.trial_id for s in before[0]} != {s.trial_id for s in after[0]}  # the ids did change
    assert [[s.config_id for s in p] for p in after] == [[s.config_id for s in p] for p in before]


def test_exclusive_trials_go_last_in_blocks_with_their_comparison_arm():
    timed = [_mlp(seed=s, lr=lr, activation=a, exclusive=True)
             for s in range(2) for lr in (0.01, 0.1, 1.0) for a in ("relu", "leaky_relu")]
    rest = [_mlp(seed=s, lr=lr) for s in range(2) for lr in (0.01, 0.1, 1.0)]
    packs = make_packs(rest + timed, workers=2)
    assert not any(s.exclusive for p in packs[:-6] for s in p)
    blocks = packs[-6:]
    for block in blocks:  # one block: the two activations at one seed and LR, and nothing else
        assert all(s.exclusive for s in block) and len(block) == 2
        assert {s.activation for s in block} == {"relu", "leaky_relu"}
        assert len({(s.seed, s.lr) for s in block}) == 1
    assert blocks[0][0].activation != blocks[1][0].activation  # neither arm always runs first
    assert not packable(timed[0])


def test_timing_claims_mark_the_trials_they_compare_exclusive():
    act = expand(load_suite("activations", "smoke"))
    timed = {s.activation for s in act if s.exclusive}
    assert timed == {"relu", "leaky_relu"}
    assert all(s.exclusive for s in act if s.activation in timed)
    bn = expand(load_suite("batchnorm", "smoke"))
    assert {(s.dropout, s.batchnorm) for s in bn if s.exclusive} == {(0.0, True), (0.0, False)}
    assert not any(s.exclusive for s in bn if s.dropout > 0)
    b1 = expand(load_suite("batch_scaling/throughput", "smoke"))
    assert b1 and all(s.exclusive for s in b1)  # set in the suite: [train] exclusive = true
    # the field at its default is left out of the id: existing ids stay valid
    assert "exclusive" not in TrialSpec(steps=10).canonical_json()
    assert TrialSpec(steps=10, exclusive=True).trial_id != TrialSpec(steps=10).trial_id


def test_a_timing_trial_keeps_the_median_step_after_its_warm_up():

    steps = [0.5] * TIMING_WARMUP_STEPS + [0.01] * 50 + [3.0] * 5  # slow warm-up, a moment of other load
    assert _timed_steps(steps, 32) == {"time_per_step_s": 0.01, "examples_per_s": 3200.0}
    none = {"time_per_step_s": None, "examples_per_s": None}
    assert _timed_steps([], 32) == none
    assert _timed_steps([0.01] * 5, 32) == none  # diverged in its first steps: nothing to time
