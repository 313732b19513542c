"""The Ray executor's fault handling against a scripted Ray: which pack an actor's death is charged to, when
the death is read before a result its actor had already returned, and a pack past its limit. No Ray starts:
``RayExecutor._run`` takes the ``ray`` module as an argument, and this one is a stand-in whose actors run
their tasks in submission order and whose ``wait`` hands out failures first (the order a loaded machine
can deliver them in)."""

from __future__ import annotations

import dataclasses
import itertools

import pytest

from claimbench.runner.base import Ledger
from claimbench.runner.ray_executor import RayExecutor
from claimbench.trial import TrialRecord, TrialStatus
from claimbench.workloads.builtin import TrialSpec

ray_exceptions = pytest.importorskip("ray.exceptions")

BASE = TrialSpec(dataset="teacher", n_samples=600, depth=1, width=8, batch_size=8, lr=0.1, steps=10)


class Ref:
    _ids = itertools.count()

    def __init__(self, value=None, error: Exception | None = None, hang: bool = False):
        self.id, self.value, self.error, self.hang = next(self._ids), value, error, hang

    def __hash__(self):
        return self.id


class Actor:
    """Runs each task as it is submitted: a pack holding a victim kills it, and every later task of it fails."""

    def __init__(self, world):
        self.world, self.dead = world, False
        self.describe = type("M", (), {"remote": lambda _, *codes: Ref({"node_id": "n", "warning": ""})})()
        self.run_pack = type("M", (), {"remote": lambda _, specs, attempt, timeouts=None, halving=None: self._run(specs)})()

    def _run(self, specs):
        ids = [TrialSpec.from_dict(d).trial_id for d in specs]
        self.world.ran.append(ids)
        if self.dead or any(i in self.world.victims for i in ids):
            self.dead = True
            return Ref(error=ray_exceptions.RayActorError())
        if any(i in self.world.hangs for i in ids):
            return Ref(hang=True)
        return Ref([TrialRecord(trial_id=TrialSpec.from_dict(d).trial_id, spec=d,
                                status=TrialStatus.COMPLETED).to_dict() for d in specs])


class World:
    """The stand-in ``ray`` module."""

    def __init__(self, victims=(), hangs=()):
        self.victims, self.hangs, self.ran, self.killed = set(victims), set(hangs), [], 0

    def wait(self, refs, num_returns=1, timeout=None):
        ready = [r for r in refs if not r.hang]
        ready.sort(key=lambda r: r.error is None)  # a death is read first
        return ready[:num_returns], [r for r in refs if r not in ready[:num_returns]]

    def get(self, ref):
        if ref.error is not None:
            raise ref.error
        return ref.value

    def kill(self, actor, no_restart=True):
        self.killed += 1


def run(world, packs, timeouts=None, **kw):
    ex = RayExecutor(num_workers=1, inflight_per_actor=2, **kw)
    ex._new_actor = lambda: Actor(world)
    records = []
    ex._run(world, packs, Ledger(packs, records.append, timeouts or {}, ex.max_attempts))
    return {r.trial_id: r for r in records}


def test_a_pack_that_finished_before_its_actor_died_is_kept_not_charged():
    """Actor runs A (finished), then V (kills it), B queued behind. Read in the order V's death, then A's result,
    A was taken for the pack V's death interrupted: charged an attempt, its result dropped, and with bounded
    attempts recorded FAILED though it had trained (the flaky always-dies test of the full suite)."""
    a, v, b = (dataclasses.replace(BASE, seed=i) for i in range(3))
    world = World(victims={v.trial_id})
    records = run(world, [[a], [v], [b]], max_attempts=1)
    assert records[a.trial_id].status is TrialStatus.COMPLETED and records[a.trial_id].attempts == 1
    assert records[v.trial_id].status is TrialStatus.FAILED and "worker died" in records[v.trial_id].error
    assert records[b.trial_id].status is TrialStatus.COMPLETED
    assert sum(a.trial_id in ids for ids in world.ran) == 1  # trained once: its result was kept


def test_a_dead_actors_queued_pack_goes_back_uncharged():
    a, v, b = (dataclasses.replace(BASE, seed=i) for i in range(3))
    world = World(victims={v.trial_id})
    records = run(world, [[v], [a], [b]], max_attempts=2)
    assert records[v.trial_id].status is TrialStatus.FAILED and records[v.trial_id].attempts == 2
    assert all(records[s.trial_id].status is TrialStatus.COMPLETED and records[s.trial_id].attempts == 1
               for s in (a, b))


def test_a_built_in_pack_past_its_limit_is_failed_its_actor_replaced_and_the_run_goes_on():
    a, h, b = (dataclasses.replace(BASE, seed=i) for i in range(3))
    world = World(hangs={h.trial_id})
    by_id = run(world, [[a], [h], [b]], timeouts={s.trial_id: 0.3 for s in (a, h, b)})
    assert by_id[h.trial_id].status is TrialStatus.FAILED and by_id[h.trial_id].error == "timed out after 0.3 s"
    assert by_id[a.trial_id].status is TrialStatus.COMPLETED and by_id[b.trial_id].status is TrialStatus.COMPLETED
    assert world.killed >= 1


def test_a_session_keeps_its_actors_from_one_run_to_the_next_and_ends_them_on_exit(monkeypatch):
    """The experimenter loop's rounds run inside one session: the second round's packs go to the first
    round's actor (its datasets already built), and only the session's end kills it."""
    import ray

    world = World()
    made = []
    ex = RayExecutor(num_workers=1, inflight_per_actor=2)
    ex._new_actor = lambda: made.append(Actor(world)) or made[-1]
    monkeypatch.setattr(ray, "kill", world.kill)
    packs = [[dataclasses.replace(BASE, seed=i)] for i in range(4)]
    with ex.session():
        for round_packs in (packs[:2], packs[2:]):
            records = []
            ex._run(world, round_packs, Ledger(round_packs, records.append, {}, ex.max_attempts))
            assert [r.status for r in records] == [TrialStatus.COMPLETED] * 2
            assert world.killed == 0
    assert len(made) == 1 and world.killed == 1 and ex._actors == {}
    # outside a session each run starts its actors and ends them
    records = []
    ex._run(world, packs[:1], Ledger(packs[:1], records.append, {}, ex.max_attempts))
    assert len(made) == 2 and world.killed == 2


def test_a_session_run_that_fails_ends_its_actors_at_once(monkeypatch):
    import ray

    world = World()
    ex = RayExecutor(num_workers=1, inflight_per_actor=2)
    ex._new_actor = lambda: Actor(world)
    monkeypatch.setattr(ray, "kill", world.kill)
    packs = [[dataclasses.replace(BASE, seed=0)]]

    def broken(*_a, **_k):
        raise RuntimeError("the driver failed")

    with pytest.raises(RuntimeError), ex.session():
        ledger = Ledger(packs, lambda _: None, {}, ex.max_attempts)
        ledger.done = broken
        ex._run(world, packs, ledger)
    assert world.killed == 1 and ex._actors == {}


def test_packs_the_loop_feeds_while_the_run_trains_are_trained_and_then_the_run_ends():
    """``Ledger.more``: the experimenter loop's next round joins the queue once the first round's records came;
    the run ends when nothing is queued or training and the feed has nothing more."""
    world = World()
    first = [[dataclasses.replace(BASE, seed=i)] for i in range(2)]
    later = [[dataclasses.replace(BASE, seed=i)] for i in range(2, 5)]
    records = []

    def feed():
        if len(records) == 2 and later:  # the first round is complete: its next round
            batch, later[:] = list(later), []
            return batch, {s.trial_id: 60.0 for p in batch for s in p}, {}
        return [], {}, {}

    ex = RayExecutor(num_workers=2, inflight_per_actor=1)
    ex._new_actor = lambda: Actor(world)
    ledger = Ledger(first, records.append, {}, ex.max_attempts, feed)
    ex._run(world, first, ledger)
    assert sorted(r.spec["seed"] for r in records) == [0, 1, 2, 3, 4]
    assert all(r.status is TrialStatus.COMPLETED for r in records) and ledger.waiting() == []
    assert ledger.timeouts[dataclasses.replace(BASE, seed=4).trial_id] == 60.0
