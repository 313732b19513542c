"""The one cost model (runner/cost.py): the default rates, what records teach it per family, its label, the
makespan of packs, and the progress bar's ETA that corrects it from the trials a run finished. No timing is
measured: every time here is given, on a simulated clock."""

from __future__ import annotations

import dataclasses
from types import SimpleNamespace

import pytest

from claimbench.runner.cost import SHRINK, CostModel, Ratios, Sample, family, makespan, model_seconds
from claimbench.runner.progress import RunProgress
from claimbench.runner.timeouts import TIMEOUT_SAFETY, default_timeout
from claimbench.trial import TrialStatus
from claimbench.workloads.builtin import TrialSpec

MLP = TrialSpec(dataset="teacher", n_samples=600, depth=2, width=64, batch_size=16, steps=400)
CNN = TrialSpec(dataset="digits", model="cnn", depth=2, width=32, batch_size=16, steps=2000)


def samples(spec: TrialSpec, factor: float, n: int) -> list[Sample]:
    return [Sample(dataclasses.replace(spec, seed=i), factor * model_seconds(spec)) for i in range(n)]


def test_without_records_the_default_model_stands_and_is_labelled_rough():
    model = CostModel()
    assert model.seconds(MLP) == pytest.approx(model_seconds(MLP)) and model.measured(MLP) == 0
    assert model.source([MLP, CNN]) == "default model, no records for cnn, mlp: rough"
    # a CNN's cost unit is dearer than an MLP's: the default rates differ by family
    assert model_seconds(CNN) / model_seconds(dataclasses.replace(CNN, model="mlp")) > 3


def test_records_teach_each_family_its_own_ratio_and_an_unseen_family_the_overall_one():
    model = CostModel.fit(samples(MLP, 2.0, 40))
    overall = (40 * 2.0 + SHRINK * 1.0) / (40 + SHRINK)  # shrunk toward 1 by SHRINK trials
    assert model.seconds(MLP) == pytest.approx(model_seconds(MLP) * (40 * 2.0 + SHRINK * overall) / (40 + SHRINK))
    assert model.seconds(CNN) == pytest.approx(model_seconds(CNN) * overall)  # no CNN record: the overall ratio
    assert model.source([MLP, CNN]) == ("fitted on 40 records (mlp 40); default model scaled by the other "
                                        "families' records, no records for cnn: rough")
    both = CostModel.fit(samples(MLP, 2.0, 40) + samples(CNN, 5.0, 40))
    assert both.seconds(CNN) / model_seconds(CNN) > 4.5 and both.seconds(MLP) / model_seconds(MLP) < 2.5
    assert "no records" not in both.source([MLP, CNN]) and both.source([CNN]).startswith("fitted on 80 records")


def test_a_record_without_a_usable_time_teaches_nothing():
    spec = MLP.to_dict()
    assert Sample.of({"status": "completed", "wall_s": 1.5, "spec": spec}).seconds == 1.5
    assert Sample.of({"status": "diverged", "wall_s": 0.5, "spec": spec}) is not None
    assert Sample.of({"status": "failed", "wall_s": 9.0, "spec": spec}) is None  # stopped at its error or limit
    assert Sample.of({"status": "completed", "wall_s": 0.0, "spec": spec}) is None
    assert Sample.from_parts(TrialStatus.COMPLETED, None, spec) is None
    assert Sample.of({"status": "completed", "wall_s": 1.0, "spec": "not a spec"}) is None


def test_a_user_workload_is_its_own_family_and_starts_from_the_costliest_default_rate():
    user = dataclasses.replace(MLP, workload="tiny_resnet.components")
    assert family(user) == "tiny_resnet.components" and family(MLP) == "mlp"
    assert model_seconds(user) > model_seconds(MLP)


def test_records_lengthen_a_default_limit_never_shorten_it():
    big = dataclasses.replace(MLP, depth=8, width=4096, steps=200_000)
    assert default_timeout(big) == pytest.approx(TIMEOUT_SAFETY * model_seconds(big))
    slow = CostModel.fit(samples(big, 3.0, 30))
    assert default_timeout(big, slow) == pytest.approx(TIMEOUT_SAFETY * slow.seconds(big))
    assert default_timeout(big, slow) > 2.5 * default_timeout(big)
    assert default_timeout(big, CostModel.fit(samples(big, 0.1, 30))) == pytest.approx(default_timeout(big))


def test_makespan_feeds_packs_in_order_to_the_first_free_worker_and_timing_blocks_last():
    assert makespan([[4.0], [1.0, 1.0], [1.0]], workers=2) == pytest.approx(4.0)
    assert makespan([[4.0], [1.0, 1.0], [1.0]], workers=1) == pytest.approx(7.0)
    assert makespan([[3.0], [3.0]], workers=2, alone=[[1.0], [2.0]]) == pytest.approx(6.0)


def test_ratios_shrink_a_family_with_few_trials_toward_the_overall_ratio():
    r = Ratios()
    assert r.ratio("cnn") == 1.0
    r.observe("mlp", 2.0, 1.0)
    assert r.ratio("mlp") == pytest.approx((2.0 + SHRINK * r.overall()) / (1 + SHRINK))
    assert r.ratio("cnn") == pytest.approx(r.overall()) and 1.0 < r.overall() < 2.0
    r.observe("mlp", 0.0, 1.0)  # no time measured: ignored
    assert r.count("mlp") == 1 and r.count() == 1


def stream(order: list[tuple[TrialSpec, float]], model: CostModel, workers: int = 1):
    """Each (spec, its real seconds) as its own pack, fed in order to ``workers`` workers, into a RunProgress on a
    simulated clock; yields (time actually left, the ETA, finished trials of each family) after every record."""
    now = [0.0]
    bar = RunProgress(len(order), enabled=False, clock=lambda: now[0])
    packs = [[spec] for spec, _ in order]
    bar.plan(packs, model, workers)
    free, ends = [0.0] * workers, []
    for spec, real in order:
        k = min(range(workers), key=free.__getitem__)
        free[k] += real
        ends.append((free[k], spec, real))
    ends.sort(key=lambda e: e[0])
    end, seen = ends[-1][0], {}
    for t, spec, real in ends:
        now[0] = t
        bar.update(SimpleNamespace(trial_id=spec.trial_id, status=TrialStatus.COMPLETED, wall_s=real))
        seen[family(spec)] = seen.get(family(spec), 0) + 1
        yield end - t, bar.eta(), dict(seen)


@pytest.mark.parametrize("workers", [1, 2])
def test_the_eta_converges_when_the_family_that_runs_last_is_five_times_slower_than_predicted(workers):
    model = CostModel()
    mlps = [(dataclasses.replace(MLP, seed=i), model.seconds(MLP)) for i in range(40)]
    cnns = [(dataclasses.replace(CNN, seed=i), 5.0 * model.seconds(CNN)) for i in range(20)]
    points = list(stream(mlps + cnns, model, workers))
    left_at_last_mlp = next(left for left, _, seen in points if seen.get("mlp") == 40)
    # before any CNN finished, the ETA believes the CNNs' predictions: far too short
    before = [(left, eta) for left, eta, seen in points if "cnn" not in seen and left < left_at_last_mlp + 1e-9]
    assert before and all(eta < left / 2 for left, eta in before)
    # after a few CNNs finished, every ETA is within 2x of the time actually left (a record that ends at the same
    # moment as the last one leaves no time: left out)
    after = [(left, eta) for left, eta, seen in points if seen.get("cnn", 0) >= 2 * workers and left > 1e-6]
    assert after and all(left / 2 <= eta <= left * 2 for left, eta in after), after
    assert points[-1][1] == 0.0  # nothing left


def test_a_family_not_yet_seen_takes_the_ratio_of_those_seen():
    model = CostModel()
    slow = [(dataclasses.replace(MLP, seed=i), 3.0 * model.seconds(MLP)) for i in range(30)]
    later = [(dataclasses.replace(CNN, seed=i), 3.0 * model.seconds(CNN)) for i in range(10)]
    points = list(stream(slow + later, model))
    mid = [(left, eta) for left, eta, seen in points if seen.get("mlp", 0) >= 10 and "cnn" not in seen]
    assert mid and all(left / 1.3 <= eta <= left * 1.3 for left, eta in mid)
