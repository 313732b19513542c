"""The training loop: determinism, divergence as an outcome, early stopping, every optimizer and schedule."""

from __future__ import annotations

import dataclasses
import math

import pytest

from claimbench.train.optim import OPTIMIZERS, SCHEDULES, Schedule
from claimbench.train.single import train_trial
from claimbench.trial import TrialStatus
from claimbench.workloads.builtin import CHOICES, TrialSpec
from claimbench.workloads.data import DataCache

BASE = TrialSpec(dataset="teacher", n_samples=600, depth=1, width=16, batch_size=16, lr=0.1, momentum=0.9,
                 steps=40, evals=4)


def test_registries_implement_exactly_the_declared_choices():
    assert set(OPTIMIZERS) == set(CHOICES["optimizer"])
    assert set(SCHEDULES) == set(CHOICES["schedule"])


def test_same_seed_same_result(cache):
    a, b = train_trial(BASE, cache), train_trial(BASE, DataCache())
    assert a.status is TrialStatus.COMPLETED
    assert [p["val_loss"] for p in a.curve] == [p["val_loss"] for p in b.curve]
    assert a.metrics == b.metrics
    c = train_trial(dataclasses.replace(BASE, seed=1), cache)
    assert c.metrics != a.metrics


def test_learning_reduces_loss(cache):
    rec = train_trial(dataclasses.replace(BASE, steps=150), cache)
    assert rec.curve[-1]["val_loss"] < rec.curve[0]["val_loss"]
    assert rec.metrics["val_acc"] > 0.2  # 10 classes: chance is about 0.1
    assert rec.steps_done == 150 and rec.examples_done == 150 * 16
    assert rec.time_per_step_s > 0 and rec.examples_per_s > 0


def test_divergence_is_recorded_with_its_step_and_no_metrics(cache):
    rec = train_trial(dataclasses.replace(BASE, lr=1e4), cache)
    assert rec.status is TrialStatus.DIVERGED
    assert rec.diverged_step is not None and 0 <= rec.diverged_step < BASE.steps
    assert rec.divergence_reason
    assert rec.metrics == {}
    assert rec.curve[0]["step"] == 0  # the curve up to divergence is kept


def test_non_finite_loss_is_divergence(cache):
    rec = train_trial(dataclasses.replace(BASE, lr=1e30, divergence_factor=1e300), cache)
    assert rec.status is TrialStatus.DIVERGED
    assert "non-finite" in rec.divergence_reason


def test_early_stopping_restores_best(cache):
    spec = dataclasses.replace(BASE, steps=400, evals=40, patience=2, lr=0.5)
    rec = train_trial(spec, cache)
    assert rec.status is TrialStatus.COMPLETED
    if rec.stopped_early:
        assert rec.steps_done < 400
    best = max(rec.curve[1:], key=lambda p: p["val_acc"])
    assert rec.metrics["val_acc"] == best["val_acc"]
    assert rec.best_step == best["step"]


def test_steps_to_target(cache):
    rec = train_trial(dataclasses.replace(BASE, steps=100, evals=10, target=0.15), cache)
    hits = [p["step"] for p in rec.curve if p["step"] > 0 and p["val_acc"] >= 0.15]
    assert rec.steps_to_target == hits[0]
    assert rec.examples_to_target == hits[0] * 16


def test_error_becomes_a_failed_record(cache):
    rec = train_trial(dataclasses.replace(BASE, batch_size=10_000), cache)
    assert rec.status is TrialStatus.FAILED and "batch_size" in rec.error
    rec = train_trial(BASE, cache, inject_error=True)
    assert rec.status is TrialStatus.FAILED and "injected" in rec.error


@pytest.mark.parametrize("optimizer", [o for o in CHOICES["optimizer"] if o != "muon"])  # muon: test_transformer.py
def test_every_optimizer_trains(cache, optimizer):
    lr, momentum = (0.1, 0.9) if optimizer == "sgd" else (0.01, 0.0)  # RMSprop also reads momentum
    rec = train_trial(dataclasses.replace(BASE, optimizer=optimizer, lr=lr, momentum=momentum, nesterov=True), cache)
    assert rec.status is TrialStatus.COMPLETED, rec.error
    assert rec.curve[-1]["val_loss"] < rec.curve[0]["val_loss"]


@pytest.mark.parametrize("schedule", CHOICES["schedule"])
def test_every_schedule_trains(cache, schedule):
    rec = train_trial(dataclasses.replace(BASE, schedule=schedule, warmup_steps=5), cache)
    assert rec.status is TrialStatus.COMPLETED, rec.error
    assert all(math.isfinite(p["lr"]) and p["lr"] > 0 for p in rec.curve)


def test_schedule_shapes():
    spec = dataclasses.replace(BASE, schedule="step", schedule_gamma=0.1)
    s = Schedule(spec, 100)
    assert s.factor(0) == 1 and s.factor(60) == pytest.approx(0.1) and s.factor(80) == pytest.approx(0.01)
    cos = Schedule(dataclasses.replace(BASE, schedule="cosine"), 100)
    assert cos.factor(0) == 1 and cos.factor(50) == pytest.approx(0.5) and cos.factor(100) == pytest.approx(0)
    one = Schedule(dataclasses.replace(BASE, schedule="onecycle"), 100)
    assert one.factor(0) == pytest.approx(1 / 25) and one.factor(30) == pytest.approx(1.0)
    warm = Schedule(dataclasses.replace(BASE, warmup_steps=10), 100)
    assert warm.factor(0) == pytest.approx(0.1) and warm.factor(9) == 1 and warm.factor(50) == 1
    plateau = Schedule(dataclasses.replace(BASE, schedule="plateau", plateau_patience=2), 100)
    for loss in (1.0, 1.0, 1.0):
        plateau.on_eval(loss)
    assert plateau.factor(0) == pytest.approx(0.1)


@pytest.mark.parametrize("clip", ["norm", "value"])
def test_clipping_keeps_a_high_lr_trial_bounded(cache, clip):
    spec = dataclasses.replace(BASE, lr=3.0, momentum=0.0, clip=clip, clip_threshold=0.01)
    rec = train_trial(spec, cache)
    assert rec.status is TrialStatus.COMPLETED


@pytest.mark.parametrize("activation", CHOICES["activation"])
@pytest.mark.parametrize("init", CHOICES["init"])
def test_models_build_for_every_activation_and_init(cache, activation, init):
    spec = dataclasses.replace(BASE, activation=activation, init=init, batchnorm=True, dropout=0.2, depth=2,
                               init_dist="uniform", steps=5, evals=1)
    rec = train_trial(spec, cache)
    assert rec.status is TrialStatus.COMPLETED, rec.error


def test_the_test_split_is_evaluated_where_it_is_read(cache):
    """At step 0, at each new best of a validation metric, and at the last evaluation; absent elsewhere."""
    spec = dataclasses.replace(BASE, steps=400, evals=40, lr=0.5)
    rec = train_trial(spec, cache)
    assert rec.status is TrialStatus.COMPLETED
    best: dict[str, float] = {}
    skipped = 0
    for point in rec.curve:
        new_best = False
        for key in ("val_loss", "val_acc"):
            value, sign = point[key], (-1 if key == "val_loss" else 1)
            if key not in best or sign * value > sign * best[key]:
                best[key], new_best = value, True
        read = point["step"] in (0, rec.steps_done) or new_best
        assert ("test_acc" in point) == read and ("test_loss" in point) == read, point["step"]
        skipped += not read
    assert skipped > 0  # a trial that stops improving evaluates its test split less often
    assert {k: rec.curve[-1][k] for k in ("test_acc", "test_loss")} == \
        {k: rec.metrics[k] for k in ("test_acc", "test_loss")}
    # restore-best reports the best checkpoint's test metrics, which it evaluated there
    early = train_trial(dataclasses.replace(spec, patience=3), cache)
    chosen = next(p for p in early.curve if p["step"] == early.best_step)
    assert early.metrics["test_acc"] == chosen["test_acc"]
    assert "test_acc" in early.curve[-1]  # the evaluation that stopped it
