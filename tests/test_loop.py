"""The experimenter loop's compute rules (claimbench/loop.py): seeds in looks, futility stops, claim-aware
pruning; an adaptive run trains a prefix of the exhaustive run's trials and says what it left out."""

from __future__ import annotations

import json


import pandas as pd
import pytest

from claimbench.analysis.isolation import Design
from claimbench.claims import Claim, reads
from claimbench.errors import UserError
from claimbench import loop
from claimbench.loop import needed_cells
from claimbench.suite import expand, load_suite

from tests.conftest import TINY_SUITE

pytestmark = pytest.mark.usefixtures("one_thread")

LOOKS = TINY_SUITE.replace("seeds = 2\n", "seeds = 6\n", 1).replace(
    "[budget]", "[adapt]\nlooks = [2, 4]\nfutility_from = 4\nprune = 1\n\n[budget]", 1)


def claim(kind: str, **params) -> Claim:
    return Claim(id="X", kind=kind, faq_section="0", paraphrase="", params=params)


def test_a_claim_says_which_cells_it_reads():
    assert reads(claim("best_level_in_range", axis="batch_size")) == "tuned"
    assert reads(claim("paired_comparison", quantity="test_acc")) == "tuned"
    # where the best lies, divergence limits, range widths, reductions over a cell and timings read every trial
    for q in ("argbest:lr", "max_stable:lr", "min_diverging:lr", "range_width:lr", "min:steps_to_target", "mean:test_acc",
              "time_per_step_s"):
        assert reads(claim("paired_comparison", quantity=q)) == "grid", q
    assert reads(claim("range_width_trend", axis="batch_size")) == "grid"
    assert reads(claim("no_such_kind")) == "grid"  # a kind that says nothing is never pruned


def test_pruning_keeps_the_best_tuned_values_of_each_group_by_their_mean():
    rows = []
    for seed in range(3):
        for b in (8, 32):
            for i, lr in enumerate((0.1, 0.2, 0.4, 0.8)):
                acc = {8: [0.5, 0.9, 0.7, 0.1], 32: [0.2, 0.3, 0.6, 0.8]}[b][i] + 0.01 * seed
                rows.append({"trial_id": f"{b}-{lr}-{seed}", "seed": seed, "batch_size": b, "lr": lr,
                             "val_acc": acc, "test_acc": acc, "status": "completed" if lr < 0.8 or b == 32 else "diverged"})
    frame = pd.DataFrame(rows)
    frame["trial_id"] = [f"{b}-{lr}-0" if s == 0 else t for t, b, lr, s in
                         zip(frame["trial_id"], frame["batch_size"], frame["lr"], frame["seed"])]
    design = Design(scientific=("batch_size",), nuisance=("lr",), fixed=())
    c = claim("best_level_in_range", axis="batch_size")
    assert needed_cells(c, frame, design, 2, 0) == {"8-0.2-0", "8-0.4-0", "32-0.8-0", "32-0.4-0"}
    assert needed_cells(c, frame, design, 0, 0) == set(frame.loc[frame["seed"] == 0, "trial_id"])  # off
    grid = claim("range_width_trend", axis="batch_size")
    assert needed_cells(grid, frame, design, 2, 0) == set(frame.loc[frame["seed"] == 0, "trial_id"])


def test_rules_come_from_the_suite_with_defaults_and_exhaustive_turns_them_off(write_suite):
    suite = load_suite(write_suite(LOOKS), "default")
    r = suite.rules()
    assert (r.looks, r.futility, r.futility_from, r.prune) == ((2, 4), 0.3, 4, 1)
    assert not suite.rules(exhaustive=True).active
    default = load_suite(write_suite(TINY_SUITE.replace("seeds = 2\n", "seeds = 8\n", 1)), "default")
    assert default.rules().looks == (3, 5)
    assert not load_suite(write_suite(TINY_SUITE), "default").rules().active  # 2 seeds: no look


@pytest.mark.parametrize("text,match", [("looks = [4, 2]", "increasing"), ("futility = 1.5", "futility must"),
                                        ("prune = -1", "prune must"), ("futility_from = true", "futility_from must")])
def test_bad_compute_rules_are_one_line_errors(write_suite, text, match):
    bad = TINY_SUITE.replace("[budget]", f"[adapt]\n{text}\n\n[budget]", 1)
    with pytest.raises(UserError, match=match):
        load_suite(write_suite(bad), "default")


def test_an_adaptive_run_trains_a_prefix_of_the_exhaustive_run_and_records_what_it_left(write_suite, tmp_path):
    from claimbench.api import evaluate_run, run_suite

    suite = load_suite(write_suite(LOOKS), "default")
    out = tmp_path / "run"
    first = run_suite(suite, out, executor="local", progress=False)
    doc = json.loads((out / "adaptive.json").read_text())
    full = {s.trial_id: s for s in expand(suite)}
    assert doc["full"] == len(full) == first.total
    trained = set(evaluate_run(out).frame["trial_id"])  # halted trials (the default halve rule) are not in it
    assert trained <= set(full) and len(trained) + doc["halted"] == first.trained == first.total - first.skipped
    assert [k["seeds"] for k in doc["looks"]] == [2, 4] and doc["skipped"] == first.skipped
    # every cell trains the seeds before the first look; later seeds only the cells some claim still needs
    by_seed = pd.Series([full[t].seed for t in trained]).value_counts().sort_index()
    assert by_seed[0] == by_seed[1] == len(full) // 6 and by_seed[5] <= by_seed[0]
    ev = evaluate_run(out)
    for r in ev.results:
        if r.claim_id in doc["stopped"]:  # futile: inconclusive, judged on the seeds of its look, saying so
            assert r.verdict == "inconclusive" and r.summary.startswith("stopped for futility")
            assert r.n_seeds == doc["stopped"][r.claim_id]["seeds"]
            assert r.p_supported > 0.3 and r.p_refuted > 0.3
    again = run_suite(suite, out, executor="local", progress=False)
    assert again.trained == 0 and json.loads((out / "adaptive.json").read_text())["looks"] == doc["looks"]
    # --exhaustive trains exactly what the adaptive run left, and no claim stays stopped
    rest = run_suite(suite, out, executor="local", progress=False, exhaustive=True)
    assert rest.trained == first.skipped + doc["halted"] and rest.skipped == 0  # and the halted ones whole
    assert json.loads((out / "adaptive.json").read_text())["stopped"] == {}
    assert all(not r.summary.startswith("stopped") for r in evaluate_run(out).results)


class _Result:
    """The fields of a claim result that the growth rules read."""

    def __init__(self, claim_id="X", verdict="inconclusive", ps=0.1, pr=0.9, limits=()):
        self.claim_id, self.verdict, self.p_supported, self.p_refuted = claim_id, verdict, ps, pr
        self.diagnostics = {"limits": list(limits)}


def test_only_a_claim_whose_interval_straddles_a_boundary_grows():
    from claimbench.loop import grows
    from claimbench.suite import Rules

    rules = Rules(looks=(3, 5), futility=0.3, prune=3, grow=16)
    assert grows(_Result(ps=0.1, pr=0.9), rules) == {"p_supported": 0.1, "p_refuted": 0.9}
    assert grows(_Result(verdict="supported", ps=0.01, pr=0.99), rules) is None  # decided
    assert grows(_Result(ps=0.5, pr=0.6), rules) is None  # far from both boundaries: more seeds cannot decide it
    assert grows(_Result(ps=0.1, pr=0.9, limits=["edge-limited"]), rules) is None  # the protocol, not the seeds
    assert grows(_Result(ps=None, pr=None), rules) is None
    assert grows(_Result(), Rules(looks=(3, 5))) is None  # off


def test_with_growth_every_p_value_pays_for_the_second_stage():
    from claimbench.loop import two_stage

    kept, lost, undecided = _Result("A", "supported", 0.001, 0.99), _Result("B", "refuted", 0.9, 0.02), _Result("C")
    two_stage([kept, lost, undecided], grow=16)
    assert (kept.verdict, kept.p_supported) == ("supported", pytest.approx(0.002))
    assert lost.verdict == "inconclusive" and lost.p_refuted == pytest.approx(0.04) and "two_stage" in lost.diagnostics
    assert (undecided.p_supported, undecided.p_refuted) == (pytest.approx(0.2), 1.0)
    same = _Result("D", "refuted", 0.9, 0.02)
    assert two_stage([same], grow=0)[0].verdict == "refuted" and same.p_refuted == 0.02  # no growth: no cost


def test_replay_grows_only_the_undecided_claims_cells_and_judges_the_rest_on_the_registered_seeds():
    from claimbench.loop import replay
    from claimbench.suite import Rules

    rows = [{"trial_id": f"{b}-{lr}-{s}" if s else f"{b}-{lr}-0", "seed": s, "batch_size": b, "lr": lr,
             "val_acc": {0.1: 0.5, 0.2: 0.9, 0.4: 0.7}[lr] + 0.01 * b, "status": "completed"}
            for s in range(8) for b in (8, 32) for lr in (0.1, 0.2, 0.4)]
    frame = pd.DataFrame(rows)
    design = Design(scientific=("batch_size",), nuisance=("lr",), fixed=())
    grow_me = claim("best_level_in_range", axis="batch_size")
    decided = Claim(id="Y", kind="best_level_in_range", faq_section="0", paraphrase="", params={"axis": "batch_size"})

    def judge(part):
        return [_Result("X", ps=0.1, pr=0.8), _Result("Y", "supported", 0.001, 0.99)]

    rules = Rules(looks=(), futility=0.3, prune=1, grow=8)
    trained, stopped, grown = replay(frame, [grow_me, decided], design, rules, judge, registered=4)
    assert stopped == {} and set(grown) == {"X"} and grown["X"]["from"] == 4 and grown["X"]["seeds"] == 8
    late = trained[trained["seed"] >= 4]
    # the grown claim keeps, per batch size, the one value that ranked best: lr 0.2 at seeds 4..7
    assert len(late) == 2 * 4 and set(late["lr"]) == {0.2}
    assert len(trained[trained["seed"] < 4]) == 4 * 6  # the registered seeds: the full matrix
    none, _, nobody = replay(frame, [grow_me], design, rules, lambda part: [_Result("X", "supported", 0.001, 0.9)],
                             registered=4)
    assert nobody == {} and none["seed"].max() == 3  # nothing to grow: the registered seeds only


def test_growth_is_registered_data_and_a_run_grows_undecided_claims(write_suite, tmp_path):
    from claimbench.api import evaluate_run, run_suite

    text = TINY_SUITE.replace("seeds = 2\n", "seeds = 3\n", 1).replace(
        "[budget]", "[adapt]\nlooks = []\nfutility = 0.45\ngrow = 5\n\n[budget]", 1)
    suite = load_suite(write_suite(text), "default")
    assert suite.rules().grow == 5 and suite.rules(exhaustive=True).grow == 0
    out = tmp_path / "run"
    run_suite(suite, out, executor="local", progress=False)
    doc = json.loads((out / "adaptive.json").read_text())
    assert doc["registered_seeds"] == 3 and doc["compute"]["grow"] == 5
    ev = evaluate_run(out)
    seeds_of = {r.claim_id: r.n_seeds for r in ev.results}
    for r in ev.results:
        if r.claim_id in doc["grown"]:
            assert seeds_of[r.claim_id] == 5 and "seeds grown from 3 to 5" in r.diagnostics["grown"]["text"]
        else:
            assert seeds_of[r.claim_id] <= 3
    trained_seeds = set(ev.frame["seed"])
    assert trained_seeds == ({0, 1, 2, 3, 4} if doc["grown"] else {0, 1, 2})
    with pytest.raises(UserError, match="grow must"):
        load_suite(write_suite(TINY_SUITE.replace("[budget]", "[adapt]\ngrow = -2\n\n[budget]", 1)), "default")


def test_suites_go_at_their_own_pace_and_each_gives_the_rounds_it_gives_alone(write_suite, tmp_path, monkeypatch):
    """Overlapping rounds: a suite whose round is complete is judged and its next round trains while another
    suite's first round is still queued; each suite's decisions are the ones it takes when run alone."""
    from claimbench.api import run_suites
    from claimbench.store.rundir import RunStore

    slow = load_suite(write_suite(LOOKS.replace('name = "tiny"', 'name = "slow"'), "slow.toml"), "default")
    quick = load_suite(write_suite(LOOKS.replace('name = "tiny"', 'name = "quick"').replace(
        "steps = 30", "steps = 90").replace("values = [4, 16, 64]", "values = [4, 16]"), "quick.toml"), "default")
    arrived = []
    append = RunStore.append

    def spy(store, record):
        arrived.append((store.dir.name, record.spec["seed"]))
        return append(store, record)

    judged = []
    judge = loop.judge_store

    def judging(suite, store):
        judged.append((suite.name, len(arrived)))
        return judge(suite, store)

    monkeypatch.setattr(RunStore, "append", spy)
    monkeypatch.setattr(loop, "judge_store", judging)
    together = run_suites([(slow, tmp_path / "slow"), (quick, tmp_path / "quick")], executor="local",
                          progress=False, pack_size=1)
    first_slow = max(k for k, (name, seed) in enumerate(arrived) if name == "slow" and seed < 2)
    # quick's first look was judged, and its next seeds queued, while slow's first round still trained
    assert min(n for name, n in judged if name == "quick") <= first_slow
    assert all(n > first_slow for name, n in judged if name == "slow")
    for suite, summary in zip((slow, quick), together):
        alone = run_suites([(suite, tmp_path / f"{suite.name}-alone")], executor="local", progress=False,
                           pack_size=1)[0]
        doc, ref = (json.loads((d / "adaptive.json").read_text()) for d in (summary.run_dir, alone.run_dir))
        assert [k["text"] for k in doc["looks"]] == [k["text"] for k in ref["looks"]]
        assert doc["skipped"] == ref["skipped"] and summary.trained == alone.trained
