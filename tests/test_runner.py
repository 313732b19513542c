"""Both executors behind one interface; Ray: streaming, retries of a dead worker's pack, failures as records."""

from __future__ import annotations

import dataclasses

import pytest

from claimbench.errors import UserError
from claimbench.faults import parse_faults
from claimbench.runner import LocalExecutor, RayExecutor, make_packs, run_trials
from claimbench.runner.packs import PACK_MEMORY_BYTES, cost, pack_bytes, pack_width, packable
from claimbench.suite import expand, load_suite
from claimbench.trial import TrialStatus


@pytest.fixture(scope="module")
def ray_cluster():
    """One local Ray instance for the whole module (executors attach to it and leave it running)."""
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


@pytest.fixture
def specs(tiny_suite_path):
    return expand(load_suite(tiny_suite_path, "smoke"))


def collect(executor, specs, pack_size=2):
    records = []
    run_trials(specs, executor, records.append, pack_size=pack_size, progress=False)
    return records


def test_packs_cover_every_spec_once(specs):
    packs = make_packs(specs, 3)
    flat = [s.trial_id for p in packs for s in p]
    assert sorted(flat) == sorted(s.trial_id for s in specs)
    assert all(1 <= len(p) <= 3 for p in packs)
    assert all(len({s.shape_key() for s in p}) == 1 for p in packs)
    with pytest.raises(ValueError):
        make_packs(specs, 0)


@pytest.mark.ray
def test_ray_and_local_agree(ray_cluster, specs):
    local = {r.trial_id: r for r in collect(LocalExecutor(), specs)}
    remote = {r.trial_id: r for r in collect(RayExecutor(), specs)}
    assert local.keys() == remote.keys() == {s.trial_id for s in specs}
    for tid, r in local.items():
        assert remote[tid].status == r.status
        assert remote[tid].metrics == pytest.approx(r.metrics)
    assert any(r.status is TrialStatus.DIVERGED for r in remote.values())


@pytest.mark.ray
def test_dead_worker_pack_is_resubmitted(ray_cluster, specs):
    victim = specs[0].trial_id
    records = collect(RayExecutor(faults=parse_faults(f"crash:{victim}:1")), specs)
    assert sorted(r.trial_id for r in records) == sorted(s.trial_id for s in specs)
    by_id = {r.trial_id: r for r in records}
    assert by_id[victim].status is not TrialStatus.FAILED
    assert by_id[victim].attempts == 2


@pytest.mark.ray
def test_worker_that_always_dies_is_recorded_failed_after_bounded_attempts(ray_cluster, specs):
    victim = specs[0].trial_id
    records = collect(RayExecutor(max_attempts=2, faults=parse_faults(f"crash:{victim}")), specs, pack_size=1)
    by_id = {r.trial_id: r for r in records}
    assert len(records) == len(specs)
    assert by_id[victim].status is TrialStatus.FAILED
    assert "worker died" in by_id[victim].error and by_id[victim].attempts == 2
    assert all(r.status is not TrialStatus.FAILED for t, r in by_id.items() if t != victim)


@pytest.mark.ray
def test_trial_that_raises_is_failed_and_run_goes_on(ray_cluster, specs):
    victim = specs[1].trial_id
    records = collect(RayExecutor(faults=parse_faults(f"raise:{victim}")), specs)
    by_id = {r.trial_id: r for r in records}
    assert by_id[victim].status is TrialStatus.FAILED and "injected fault" in by_id[victim].error
    assert sum(r.status is TrialStatus.FAILED for r in records) == 1


def test_local_executor_records_injected_failures(specs):
    records = collect(LocalExecutor(faults=parse_faults(f"raise:{specs[0].trial_id}")), specs)
    assert [r.status for r in records].count(TrialStatus.FAILED) == 1


@pytest.mark.parametrize("text", ["explode:abc", "raise:", "crash:abc:x", "crash"])
def test_bad_fault_plans_are_user_errors(text):
    with pytest.raises(UserError, match="CLAIMBENCH_FAULTS"):
        parse_faults(text)


# ---------------------------------------------------------------- pack width, exclusive timing trials

def _mlp(**kw):
    from claimbench.workloads.builtin import TrialSpec

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


def test_pack_width_is_bounded_by_memory():
    small, huge = _mlp(), _mlp(dataset="cifar10", depth=8, width=4096, optimizer="adam", batch_size=512)
    assert pack_bytes(huge) > 100 * pack_bytes(small)
    assert pack_width(huge) < pack_width(small)
    assert pack_width(huge) * pack_bytes(huge) <= PACK_MEMORY_BYTES or pack_width(huge) == 1
    packs = make_packs([dataclasses.replace(huge, seed=s) for s in range(6)])
    assert max(len(p) for p in packs) == pack_width(huge)


def test_cnn_packs_narrow_as_channels_grow():
    # a CNN of many channels is bound by convolution arithmetic: the runner packs it narrower
    # (CNN_WIDTH_BY_CHANNELS), a small one as wide as the family's row; the memory bound does not bind
    narrow, wide = (_mlp(dataset="digits", model="cnn", width=w, batch_size=32) for w in (16, 64))
    assert pack_width(narrow) > pack_width(wide) > 1
    assert pack_width(wide) * pack_bytes(wide) < PACK_MEMORY_BYTES
    packs = make_packs([dataclasses.replace(s, seed=i) for s in (narrow, wide) for i in range(40)])
    assert {len(p) for p in packs if p[0].width == 64} == {pack_width(wide)}


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
    from claimbench.workloads.builtin import TrialSpec

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


def test_local_executor_runs_the_timing_blocks_last(specs):
    timed = [dataclasses.replace(s, exclusive=True) for s in specs[:2]]
    records = collect(LocalExecutor(), specs[2:] + timed, pack_size=8)
    assert [r.trial_id for r in records[-2:]] == [s.trial_id for s in make_packs(timed)[0]]


@pytest.mark.ray
def test_ray_runs_timing_blocks_alone_after_everything_else(ray_cluster, specs):
    timed = [dataclasses.replace(s, exclusive=True) for s in specs[:2]]
    records = collect(RayExecutor(), specs[2:] + timed, pack_size=1)
    assert {r.trial_id for r in records[-2:]} == {s.trial_id for s in timed}
    assert len(records) == len(specs)


def test_a_timing_trial_keeps_the_median_step_after_its_warm_up():
    from claimbench.train.policy import TIMING_WARMUP_STEPS, _timed_steps

    steps = [0.5] * TIMING_WARMUP_STEPS + [0.01] * 50 + [3.0] * 5  # slow warm-up, a moment of other load
    assert _timed_steps(steps, 32) == {"time_per_step_s": 0.01, "examples_per_s": 3200.0}
    none = {"time_per_step_s": None, "examples_per_s": None}
    assert _timed_steps([], 32) == none
    assert _timed_steps([0.01] * 5, 32) == none  # diverged in its first steps: nothing to time
