"""Both executors behind one interface; Ray: streaming, retries of a dead worker's pack, failures as records."""

from __future__ import annotations

import pytest

from claimbench.faults import parse_faults
from claimbench.runner import LocalExecutor, RayExecutor, make_packs, run_trials
from claimbench.suite import expand, load_suite
from claimbench.trial import TrialStatus
from claimbench.errors import UserError


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
