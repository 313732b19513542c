"""The executor contract (claimbench/runner/base.py), one suite run against every executor, as optuna runs one
storage suite against every backend: the built-ins (``local``, ``ray``) and ``pool``, an executor defined in a
test-local module (``_toy_executor.py``) and registered through the entry-point group the way a user's package
registers one, with no edit anywhere else. Every executor is made through the registry (``--executor NAME``).

Ray starts once for the module (``ray_cluster``), and only when a Ray case runs."""

from __future__ import annotations

import dataclasses
import sys
import textwrap

import pytest

from claimbench.errors import UserError
from claimbench.runner import registry
from claimbench.runner.base import MAX_ATTEMPTS, Executor, Ledger, Worker
from claimbench.runner.faults import parse_faults
from claimbench.runner.packs import make_packs
from claimbench.suite import expand, load_suite
from claimbench.trial import TrialStatus
from claimbench.workloads.builtin import TrialSpec
from tests.conftest import TINY_SUITE, cli

RAY = [pytest.mark.ray, pytest.mark.slow]
EXECUTORS = ["local", pytest.param("ray", marks=RAY), "pool"]
#: Where the test-local executor lives, as its entry point names it.
POOL_TARGET = "tests.runner._toy_executor:PoolExecutor"


@pytest.fixture(scope="module")
def ray_cluster():
    """One local Ray instance for the whole module (executors attach to it and leave it running)."""
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


@pytest.fixture(scope="module")
def pool_registered(tmp_path_factory):
    """``pool`` registered as an installed package registers an executor: a dist-info folder on the path whose
    entry_points.txt names it in ``claimbench.executors``."""
    root = tmp_path_factory.mktemp("site")
    info = root / "toy_executor-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: toy-executor\nVersion: 1.0\n", encoding="utf-8")
    (info / "entry_points.txt").write_text(f"[{registry.GROUP}]\npool = {POOL_TARGET}\n", encoding="utf-8")
    sys.path.insert(0, str(root))
    yield "pool"
    sys.path.remove(str(root))


@pytest.fixture(scope="module")
def specs(tmp_path_factory):
    """Six tiny trials (batch 4 and 64, LR 0.01, 0.1 and 100: the last diverges)."""
    path = tmp_path_factory.mktemp("suite") / "tiny.toml"
    path.write_text(textwrap.dedent(TINY_SUITE), encoding="utf-8")
    return expand(load_suite(path, "smoke"))


@pytest.fixture(scope="module")
def packs(specs):
    return make_packs(specs, 2)


@pytest.fixture(scope="module")
def expected(packs):
    """What the contract says the records are: each pack trained by ``Worker.train`` in this process."""
    worker = Worker()
    try:
        return {r.trial_id: r for pack in packs for r in worker.train(pack)}
    finally:
        worker.close()


@pytest.fixture(scope="module")
def pool(pool_registered):
    """One ``pool`` executor for the module, made through the registry: its processes stay up between runs (as
    the module's Ray does), so that each test pays for training, not for starting them."""
    ex = registry.make_executor(pool_registered)
    yield ex
    ex.close()


@pytest.fixture
def make(request):
    """``make(name, faults=..., max_attempts=...)``: the executor ``name`` as ``--executor`` makes it."""
    def build(name: str, faults: str = "", max_attempts: int = MAX_ATTEMPTS) -> Executor:
        if name == "pool":
            ex = request.getfixturevalue("pool")
            ex.faults = parse_faults(faults)
        else:
            if name == "ray":
                request.getfixturevalue("ray_cluster")
            ex = registry.make_executor(name, faults=parse_faults(faults))
        ex.max_attempts = max_attempts
        return ex

    return build


def train(ex: Executor, packs, timeouts=None) -> list:
    """Every record ``ex`` hands back for ``packs``, in the order it handed them (``workers`` first, as the
    driver asks: Ray connects there)."""
    records = []
    ex.workers()
    ex.run(packs, records.append, timeouts=timeouts)
    return records


def by_id(records) -> dict:
    ids = [r.trial_id for r in records]
    assert len(ids) == len(set(ids)), "a trial got two records"
    return {r.trial_id: r for r in records}


def assert_same(records: dict, expected: dict) -> None:
    assert records.keys() == expected.keys()
    for tid, want in expected.items():
        got = records[tid]
        assert got.status == want.status, (tid, got.error)
        assert got.metrics == pytest.approx(want.metrics, nan_ok=True)
        assert (got.steps_done, got.diverged_step, got.attempts) == (want.steps_done, want.diverged_step, 1)


# ---------------------------------------------------------------- the contract, for every executor

@pytest.mark.parametrize("name", EXECUTORS)
def test_the_same_packs_give_the_same_records_and_a_divergence_is_a_record(name, make, packs, expected):
    records = by_id(train(make(name), packs))
    assert_same(records, expected)
    diverged = [r for r in records.values() if r.status is TrialStatus.DIVERGED]
    assert diverged and all(r.diverged_step is not None and r.error is None for r in diverged)


@pytest.mark.parametrize("name", EXECUTORS)
def test_the_order_of_the_packs_changes_no_record(name, make, packs, expected):
    assert_same(by_id(train(make(name), packs[::-1])), expected)


@pytest.mark.parametrize("name", EXECUTORS)
def test_an_injected_error_is_a_failed_record_and_the_rest_train(name, make, packs, specs, expected):
    victim = specs[1].trial_id
    records = by_id(train(make(name, f"raise:{victim}"), packs))
    assert records.keys() == expected.keys()
    assert records[victim].status is TrialStatus.FAILED and "injected fault" in records[victim].error
    assert [t for t, r in records.items() if r.status is TrialStatus.FAILED] == [victim]


@pytest.mark.parametrize("name", EXECUTORS)
def test_a_lost_worker_is_retried_and_its_pack_trains_on_the_next_attempt(name, make, packs, specs, expected):
    victim = specs[0].trial_id
    records = by_id(train(make(name, f"crash:{victim}:1"), packs))
    assert records.keys() == expected.keys()
    mates = {s.trial_id for p in packs if victim in {s.trial_id for s in p} for s in p}
    for tid, r in records.items():
        assert r.status == expected[tid].status
        # the victim's pack trains again; a pack queued on the same dead worker (Ray) may be lost with it and
        # retried too, never more often
        assert r.attempts == 2 if tid in mates else r.attempts in (1, 2), (tid, r.attempts)


@pytest.mark.parametrize("name", EXECUTORS)
def test_retries_are_bounded_then_the_pack_is_failed_records_with_the_reason(name, make, specs, expected):
    victim = specs[0].trial_id
    records = by_id(train(make(name, f"crash:{victim}", max_attempts=2), make_packs(specs, 1)))
    assert records.keys() == expected.keys()
    lost = records[victim]
    assert lost.status is TrialStatus.FAILED and lost.attempts == 2 and "(after 2 attempts)" in lost.error
    assert all(r.status is not TrialStatus.FAILED for t, r in records.items() if t != victim)


@pytest.mark.parametrize("name", EXECUTORS)
def test_a_pack_past_its_limit_is_failed_records_and_the_run_goes_on(name, make, specs):
    slow = [dataclasses.replace(s, steps=100_000) for s in specs[:2] if s.lr < 1]  # never done within a second
    quick = specs[2:3]
    limits = {**{s.trial_id: 0.5 for s in slow}, quick[0].trial_id: 300.0}
    records = by_id(train(make(name), [slow, quick], timeouts=limits))
    assert records.keys() == {s.trial_id for s in slow + quick}
    for s in slow:
        assert records[s.trial_id].status is TrialStatus.FAILED
        assert "timed out after 1 s (the limit of its pack of 2 trials" in records[s.trial_id].error
    assert records[quick[0].trial_id].status is not TrialStatus.FAILED


@pytest.mark.parametrize("name", EXECUTORS)
def test_exclusive_packs_train_last_in_their_order(name, make, specs):
    timed = [dataclasses.replace(s, exclusive=True) for s in specs[:2]]
    packs = make_packs(specs[2:] + timed, 1)
    records = train(make(name), packs[::-1])  # given first: still trained last
    assert len(by_id(records)) == len(specs)
    assert {r.trial_id for r in records[-2:]} == {s.trial_id for s in timed}


# ---------------------------------------------------------------- the recipe: an executor in one file

def test_the_recipe_executor_is_registered_by_its_entry_point_alone(pool_registered):
    from tests.runner._toy_executor import PoolExecutor

    assert pool_registered in registry.names() and registry.get(pool_registered) is PoolExecutor
    assert set(registry.BUILTINS) <= set(registry.names())


def test_the_recipe_executor_runs_a_suite_from_the_command_line(pool_registered, write_suite, tmp_path):
    out = tmp_path / "run"
    code, stdout, err = cli("run", str(write_suite()), "--tier", "smoke", "--executor", pool_registered, "--quiet",
                            "--out", str(out))
    assert code == 0, err
    assert "report:" in stdout and len(list((out / "trials").glob("*.json"))) == 6


# ---------------------------------------------------------------- what the base guarantees, whatever dispatch does

class _Forgetful(Executor):
    """Reports one trial twice and forgets another: the ledger keeps the first and records the forgotten one."""

    name = "forgetful"

    def workers(self, note=None) -> int:
        return 1

    def dispatch(self, packs, ledger: Ledger, on_eval=None) -> None:
        first = packs[0]
        ledger.failed(first, 1, "first")
        ledger.failed(first, 1, "second")


def test_a_trial_an_executor_leaves_without_a_record_is_a_failed_one_and_none_gets_two():
    a, b = TrialSpec(steps=1, seed=1), TrialSpec(steps=1, seed=2)
    records = []
    _Forgetful().run([[a], [b]], records.append)
    assert [(r.trial_id, r.error) for r in records] == [
        (a.trial_id, "first"), (b.trial_id, "the forgetful executor returned without a record of it")]


@pytest.mark.ray
@pytest.mark.slow
def test_ray_refuses_up_front_when_a_node_would_train_other_code(make, specs):
    """A stale wheel on the workers: the code fingerprint a node computes is not the driver's. The run stops
    in one line before any trial trains (each trial would otherwise fail on the node)."""
    stale = [dataclasses.replace(s, code="claimbench 000000000000") for s in specs[:2]]
    records = []
    ex = make("ray")
    ex.workers()
    with pytest.raises(UserError, match="would train other code") as e:
        ex.run([stale], records.append)
    assert records == [] and "\n" not in str(e.value) and "reinstall" in str(e.value)
