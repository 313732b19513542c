"""Successive halving inside packs (the loop's ``halve`` rule): the worker stops a tuned value that ranks below
the ``prune`` best of its group at the rung; halted records are final for an adaptive run and pending for an
exhaustive one; claims never see them; the grid edge still reads the registered grid; replay applies the same
decision to a frame and its curves."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pandas as pd
import pytest

from claimbench.analysis.diagnostics import grid_edges
from claimbench.analysis.frames import trial_frame
from claimbench.analysis.isolation import Design
from claimbench.claims import Claim
from claimbench.errors import UserError
from claimbench.loop import halve_frame, halving, replay, Plan
from claimbench.runner.packs import halving_units, make_packs
from claimbench.store.rundir import RunStore
from claimbench.suite import Rules, expand, load_suite
from claimbench.trial import TrialRecord, TrialStatus
from claimbench.workloads.builtin import TrialSpec

from tests.conftest import TINY_SUITE
from tests.train.equivalence import assert_match

pytestmark = pytest.mark.usefixtures("one_thread")

BASE = TrialSpec(dataset="teacher", n_samples=600, depth=1, width=8, batch_size=8, steps=20, evals=4, seed=3)
LRS = (0.3, 0.03, 0.003, 0.0003)
#: The tiny suite with halving at half the budget, k = 1, and only the claim that reads the tuned value.
HALVE_SUITE = TINY_SUITE.split("[[claims]]\nid = \"B3\"")[0].replace(
    "[budget]", "[adapt]\nlooks = []\nprune = 1\nhalve = 0.5\n\n[budget]", 1)


def directive(key: str = "g", size: int = len(LRS), k: int = 2) -> dict:
    return {"rung": 0.5, "k": k, "groups": [[key, "val_acc", 1, size]]}


def test_the_driver_halts_the_losers_at_the_rung_and_the_survivors_train_as_if_alone(cache):
    from claimbench.train.pack import train_pack

    specs = [dataclasses.replace(BASE, lr=lr) for lr in LRS]
    whole = train_pack(specs, cache)
    halved = train_pack(specs, cache, halving=[directive() for _ in specs])
    assert all(r.status is TrialStatus.COMPLETED for r in whole)
    rung = 10  # evaluations at 5, 10, 15, 20: the first at or after half of 20 steps
    at_rung = [next(p["val_acc"] for p in r.curve if p["step"] == rung) for r in whole]
    best = set(np.argsort([-a for a in at_rung], kind="stable")[:2])
    for i, (h, w) in enumerate(zip(halved, whole)):
        if i in best:  # a survivor: the same record as in the uninterrupted pack, within the packed tolerance
            assert h.status is TrialStatus.COMPLETED
            assert_match(h, w)
        else:  # a loser: halted at the rung, its curve up to it
            assert h.status is TrialStatus.HALTED and h.steps_done == rung
            assert [p["step"] for p in h.curve] == [0, 5, 10]
            assert h.curve[-1]["val_loss"] == pytest.approx(w.curve[2]["val_loss"], rel=1e-5)


def test_a_group_split_across_packs_or_a_pack_of_one_never_halts(cache):
    from claimbench.train.pack import train_pack

    specs = [dataclasses.replace(BASE, lr=lr) for lr in LRS]
    split = train_pack(specs, cache, halving=[directive(size=len(LRS) + 1) for _ in specs])  # a member elsewhere
    assert all(r.status is TrialStatus.COMPLETED for r in split)
    alone = train_pack(specs[-1:], cache, halving=[directive(size=1, k=0)])
    assert alone[0].status is TrialStatus.COMPLETED


def test_a_family_engine_without_halving_trains_its_packs_whole(cache, monkeypatch):
    from claimbench.train.pack import train_pack
    from claimbench.workloads.builtin import models

    mlp = models.get("mlp")
    monkeypatch.setattr(models, "find", lambda name: dataclasses.replace(mlp, packed="tests.train.test_pack"))
    specs = [dataclasses.replace(BASE, lr=lr) for lr in LRS]
    records = train_pack(specs, cache, halving=[directive() for _ in specs])  # its train_jointly takes no halving
    assert [r.engine for r in records] == ["stand-in"] * len(specs)


def test_packs_keep_a_halving_group_whole_and_runs_without_halving_pack_as_before():
    specs = [dataclasses.replace(BASE, lr=lr, seed=s) for s in range(6) for lr in LRS]
    plain = make_packs(specs, pack_size=6)
    assert make_packs(specs, pack_size=6, together={}) == plain
    units = halving_units({s.trial_id: directive(key=f"seed{s.seed}") for s in specs})
    packs = make_packs(specs, pack_size=6, together=units)
    assert sorted(s.trial_id for p in packs for s in p) == sorted(s.trial_id for s in specs)
    for p in packs:
        assert len(p) <= 6
    for seed in range(6):  # each group of four in one pack
        assert sum(any(s.seed == seed for s in p) for p in packs) == 1
    assert any(sum(any(s.seed == seed for s in p) for p in plain) > 1 for seed in range(6))  # plain splits some


def halted_record(spec: TrialSpec) -> TrialRecord:
    return TrialRecord(trial_id=spec.trial_id, spec=spec.to_dict(), status=TrialStatus.HALTED, steps_done=10,
                       metrics={"val_acc": 0.5}, curve=[{"step": 0, "val_acc": 0.1}, {"step": 10, "val_acc": 0.5}])


def test_halted_records_are_final_for_an_adaptive_run_and_pending_for_an_exhaustive_one(tmp_path):
    from claimbench.store.cache import TrialCache

    spec, other = BASE, dataclasses.replace(BASE, lr=0.07)
    store = RunStore(tmp_path / "run")
    store.append(halted_record(spec))
    assert store.pending([spec, other]) == [other]
    assert store.pending([spec, other], accept_halted=False) == [spec, other]
    shared = TrialCache(str(tmp_path / "cache"))
    shared.put(halted_record(spec))
    assert spec.trial_id in shared.get_many([spec.trial_id])
    assert shared.get_many([spec.trial_id], accept_halted=False) == {}
    whole = TrialRecord(trial_id=spec.trial_id, spec=spec.to_dict(), status=TrialStatus.COMPLETED, steps_done=20)
    shared.put(whole)
    shared.put(halted_record(spec))  # never replaces the whole record
    assert shared.get_many([spec.trial_id])[spec.trial_id].status is TrialStatus.COMPLETED


def test_claims_frames_leave_halted_trials_out():
    spec, other = BASE, dataclasses.replace(BASE, lr=0.07)
    done = TrialRecord(trial_id=other.trial_id, spec=other.to_dict(), status=TrialStatus.COMPLETED,
                       metrics={"val_acc": 0.9})
    frame = trial_frame([halted_record(spec), done])
    assert list(frame["trial_id"]) == [other.trial_id] and frame.attrs["halted"] == [spec.trial_id]
    kept = trial_frame([halted_record(spec), done], halted=True)
    assert set(kept["status"]) == {"halted", "completed"}


def test_the_grid_edge_reads_the_registered_grid_so_a_halted_edge_value_fakes_no_edge():
    rows = [{"trial_id": f"{s}-{lr}", "seed": s, "lr": lr, "status": "completed",
             "val_acc": {0.001: 0.5, 0.01: 0.7, 0.1: 0.9}[lr]} for s in range(4) for lr in (0.001, 0.01, 0.1)]
    frame = pd.DataFrame(rows)  # lr = 1 was registered, and halted in every group
    selected = [{"group": "all trials", "seed": s, "trial_ids": [f"{s}-0.1"]} for s in range(4)]
    fooled = grid_edges(frame, selected, ["lr"])
    assert fooled["sides"]["lr"]["high"] == 4  # the observed values alone: 0.1 looks like the upper edge
    edge = grid_edges(frame, selected, ["lr"], grids={"lr": (0.001, 0.01, 0.1, 1.0)})
    assert edge["sides"] == {} and not edge["flag"]


def synthetic(seeds: int = 3):
    """Two batch sizes x four LRs x ``seeds`` seeds, each trial with a curve of evaluations at 0, 5, 10, 15, 20."""
    rows, points = [], []
    for s in range(seeds):
        for b in (8, 32):
            for i, lr in enumerate(LRS):
                tid = f"{b}-{lr}-{s}"
                final = [0.9, 0.8, 0.6, 0.3][i] - 0.01 * s
                rows.append({"trial_id": tid, "seed": s, "batch_size": b, "lr": lr, "val_acc": final,
                             "test_acc": final, "status": "completed", "wall_s": 2.0, "model": "mlp",
                             "dataset": "teacher", "steps": 20, "evals": 4})
                for step in (0, 5, 10, 15, 20):
                    points.append({"trial_id": tid, "step": step, "val_acc": final * step / 20})
    return pd.DataFrame(rows), pd.DataFrame(points)


def test_replay_halves_each_group_on_its_curves_like_the_worker():
    frame, curves = synthetic()
    design = Design(scientific=("batch_size",), nuisance=("lr",), fixed=())
    tuned = Claim(id="X", kind="best_level_in_range", faq_section="0", paraphrase="", params={"axis": "batch_size"})
    grid = Claim(id="G", kind="range_width_trend", faq_section="0", paraphrase="",
                 params={"axis": "batch_size", "range_axis": "lr"})
    rules = Rules(prune=2, halve=0.5)
    out = halve_frame(frame, [tuned], design, rules, curves)
    halted = out[out["status"] == "halted"]
    assert set(halted["lr"]) == {0.003, 0.0003} and len(halted) == 2 * 2 * 3  # the two worst of each group
    assert (halted["wall_s"] == 1.0).all()  # halted at step 10 of 20: half its time
    assert out.loc[out["status"] != "halted", "wall_s"].eq(2.0).all()
    assert (halve_frame(frame, [tuned, grid], design, rules, curves)["status"] == "completed").all()  # grid: none
    assert halve_frame(frame, [tuned], design, Rules(prune=2), curves) is frame  # off
    seen = []
    trained, stopped, _ = replay(frame, [tuned], design, dataclasses.replace(rules, looks=(2,)),
                                 lambda part: seen.append(part) or [], curves=curves)
    assert (trained["status"] == "halted").sum() == 8 and not stopped  # seeds 0 and 1; seed 2 is pruned to the top 2
    assert set(trained.loc[trained["seed"] == 2, "lr"]) == {0.3, 0.03}  # a halted value ranked last, so pruned
    assert all((p["status"] != "halted").all() for p in seen)  # judged frames never hold a halted trial


def test_halve_is_registered_data_and_a_run_halts_then_exhaustive_trains_whole(write_suite, tmp_path):
    from claimbench.api import evaluate_run, run_suite

    suite = load_suite(write_suite(HALVE_SUITE), "default")
    assert suite.rules().halve == 0.5 and suite.rules(exhaustive=True).halve == 0
    assert load_suite(write_suite(TINY_SUITE.replace("seeds = 2", "seeds = 6")), "default").rules().halve == 0.5
    assert load_suite(write_suite(TINY_SUITE), "default").rules().halve == 0  # no look, none registered: no rule
    with pytest.raises(UserError, match="halve must be"):
        load_suite(write_suite(HALVE_SUITE.replace("halve = 0.5", "halve = 1.5")), "default")
    plan = Plan(suite, suite, rules=suite.rules())
    directives = halving(plan, plan.wanted())
    assert len(directives) == len(plan.wanted())  # B2 reads only the tuned value: every trial may halt
    assert {d["groups"][0][3] for d in directives.values()} == {3}  # three LRs per batch size and seed

    out, suite = tmp_path / "run", load_suite(write_suite(HALVE_SUITE), "smoke")  # 1 seed, 2 batch sizes, 3 LRs
    run_suite(suite, out, "local", progress=False)
    records = RunStore(out).records()
    statuses = [r.status for r in records]
    assert statuses.count(TrialStatus.HALTED) > 0
    doc = json.loads((out / "adaptive.json").read_text())
    assert doc["halted"] == statuses.count(TrialStatus.HALTED) and doc["halted_by_claim"]["B2"] == doc["halted"]
    ev = evaluate_run(out)
    assert "halted" not in set(ev.frame["status"]) and ev.results[0].diagnostics["halted"] == doc["halted"]
    run_suite(suite, out, "local", progress=False, exhaustive=True)  # trains the halted trials whole
    assert all(r.status is not TrialStatus.HALTED for r in RunStore(out).records())


def test_a_trial_one_suite_halts_and_another_later_needs_whole_is_trained_again_whole(write_suite, tmp_path,
                                                                                   monkeypatch):
    """Overlapping rounds: "halver" sends its seed-1 trials with a halving directive in round 0; "whole" (which
    reads the whole grid) asks for the same trials in its round 1, while they wait in the queue. The halted
    records are not filed: the trials train again, whole, for both suites."""
    import claimbench.runner.driver as driver
    from claimbench.api import run_suites
    from claimbench.train import pack as trainer

    halver = load_suite(write_suite(HALVE_SUITE.replace('name = "tiny"', 'name = "halver"'), "a.toml"), "default")
    whole = load_suite(write_suite(TINY_SUITE.replace('name = "tiny"', 'name = "whole"').replace(
        "[budget]", "[adapt]\nlooks = [1]\n\n[budget]", 1), "b.toml"), "default")
    packs = driver.make_packs

    def by_seed(specs, *a, **k):  # each pack split by seed (a halving group is one seed's), seed 0's first
        split = [[s for s in p if s.seed == seed] for p in packs(specs, *a, **k) for seed in sorted({s.seed for s in p})]
        return sorted(split, key=lambda p: p[0].seed)

    monkeypatch.setattr(driver, "make_packs", by_seed)
    heard = []
    append = RunStore.append
    monkeypatch.setattr(RunStore, "append", lambda store, r: heard.append(r.status) or append(store, r))
    statuses = []
    train = trainer.train_pack

    def counted(*a, **k):
        out = train(*a, **k)
        statuses.extend(r.status for r in out)
        return out

    monkeypatch.setattr(trainer, "train_pack", counted)
    run_suites([(halver, tmp_path / "a"), (whole, tmp_path / "b")], executor="local", progress=False)
    assert TrialStatus.HALTED in statuses  # the worker halted some seed-1 trials
    assert TrialStatus.HALTED not in heard  # none was filed: each trained again, whole
    shared = {s.trial_id for s in expand(whole) if s.seed == 1}
    assert shared and all(r.status is not TrialStatus.HALTED for r in RunStore(tmp_path / "b").records(shared))
