"""Packed training: the same results as the unpacked trainer, per trial, for K = 1 and K > 1.

Batched matmuls and per-row reductions sum in a different order than the unpacked kernels, so
results agree to a tolerance (tests/train/equivalence.py: RTOL on losses after up to 200 steps), not bit for bit. Dropout
masks come from each trial's own generator in train_trial's order, so on the CPU they match too.
"""

from __future__ import annotations

import dataclasses
import math

import pytest

from claimbench.train.packed import optimizers
from claimbench.train.pack import train_pack
from claimbench.train.packed.engine import train_jointly
from claimbench.train.packing import pack_key
from claimbench.train.single import train_trial
from claimbench.trial import TrialStatus
from claimbench.workloads.builtin import CHOICES, TrialSpec
from tests.train.equivalence import assert_match

BASE = TrialSpec(dataset="teacher", n_samples=600, depth=2, width=16, batch_size=8, lr=0.05, momentum=0.9,
                 steps=200, evals=5)


pytestmark = pytest.mark.usefixtures("one_thread")


def check_pack(specs: list[TrialSpec], cache, jointly: bool = True) -> list:
    packed = train_jointly(specs, cache) if jointly else train_pack(specs, cache)
    assert len(packed) == len(specs)
    for p, s in zip(packed, specs):
        assert_match(p, train_trial(s, cache))
    return packed


OPTIMIZER_CASES = {
    "sgd": dict(optimizer="sgd", lr=0.05, momentum=0.9),
    "sgd+nesterov": dict(optimizer="sgd", lr=0.05, momentum=0.9, nesterov=True),
    "adam": dict(optimizer="adam", lr=0.003, momentum=0.0),
    "adamw": dict(optimizer="adamw", lr=0.003, momentum=0.0, weight_decay=0.01),
    "nadam": dict(optimizer="nadam", lr=0.003, momentum=0.0),
    "rmsprop": dict(optimizer="rmsprop", lr=0.001, momentum=0.0, beta2=0.99),
    "adamax": dict(optimizer="adamax", lr=0.005, momentum=0.0),
}


@pytest.mark.parametrize("case", OPTIMIZER_CASES)
def test_each_optimizer_matches_unpacked_alone_and_packed(cache, case):
    base = dataclasses.replace(BASE, **OPTIMIZER_CASES[case])
    check_pack([base], cache)  # K = 1 through the packed path
    # K = 3: per-trial seed, LR, weight decay, momentum (and a mix of Nesterov) in one pack
    variants = [dataclasses.replace(base, seed=1, lr=base.lr * 1.5, weight_decay=1e-3),
                dataclasses.replace(base, seed=2, lr=base.lr / 2, beta1=0.8, eps=1e-6)]
    if base.optimizer in ("sgd", "rmsprop"):
        variants.append(dataclasses.replace(base, seed=3, momentum=0.5 if base.momentum == 0 else 0.0,
                                            nesterov=False))
    check_pack([base, *variants], cache)


def test_every_schedule_with_warmup_in_one_pack(cache):
    specs = [dataclasses.replace(BASE, schedule=s, warmup_steps=10 * (i % 2), seed=i, evals=10, plateau_patience=1,
                                 schedule_gamma=0.3) for i, s in enumerate(CHOICES["schedule"])]
    assert len({pack_key(s) for s in specs}) == 1  # schedules are per trial
    check_pack(specs, cache)
    check_pack([specs[CHOICES["schedule"].index("plateau")]], cache)  # K = 1


@pytest.mark.parametrize("clip", ["norm", "value"])
def test_clipping_per_trial_threshold(cache, clip):
    # LR 0.5, off the chaotic edge: at LR 1 with value clipping float differences grow 10x per 50 steps
    base = dataclasses.replace(BASE, lr=0.5, momentum=0.0, clip=clip, clip_threshold=0.05)
    check_pack([base], cache)
    check_pack([base, dataclasses.replace(base, clip_threshold=0.5, seed=1),
                dataclasses.replace(base, clip_threshold=1e3, lr=0.05, seed=2)], cache)


def test_batchnorm_and_dropout_per_trial(cache):
    bn = dataclasses.replace(BASE, batchnorm=True, steps=120)
    check_pack([bn], cache)
    check_pack([bn, dataclasses.replace(bn, seed=1, lr=0.2), dataclasses.replace(bn, seed=2, momentum=0.0)], cache)
    # dropout: per-trial rates, masks from each trial's own RNG (the same masks as nn.Dropout on the CPU)
    drop = dataclasses.replace(bn, dropout=0.3)
    check_pack([drop, dataclasses.replace(drop, dropout=0.0, seed=1), dataclasses.replace(drop, dropout=0.6, seed=2)],
               cache)
    before = dataclasses.replace(drop, dropout_position="before_bn")
    check_pack([before, dataclasses.replace(before, seed=1, dropout=0.1)], cache)


def test_divergence_is_masked_per_trial(cache):
    specs = [dataclasses.replace(BASE, lr=0.05), dataclasses.replace(BASE, lr=1e4, seed=1),
             dataclasses.replace(BASE, lr=1e30, divergence_factor=1e300, seed=2),  # non-finite loss
             dataclasses.replace(BASE, lr=0.02, seed=3)]
    records = check_pack(specs, cache)
    assert [r.status for r in records] == [TrialStatus.COMPLETED, TrialStatus.DIVERGED, TrialStatus.DIVERGED,
                                           TrialStatus.COMPLETED]
    assert records[1].metrics == {} and records[2].metrics == {}
    assert "non-finite" in records[2].divergence_reason
    assert all(math.isfinite(p["val_loss"]) for p in records[0].curve + records[3].curve)


def test_early_stopping_target_and_restore_best_per_trial(cache):
    # LR 0.2: at 0.5 the 400-step run without patience is chaotic (float differences reach 50% by the end)
    base = dataclasses.replace(BASE, steps=400, evals=40, lr=0.2, momentum=0.0, patience=2, target=0.3)
    specs = [base, dataclasses.replace(base, patience=0, seed=1), dataclasses.replace(base, restore_best=False, seed=2),
             dataclasses.replace(base, patience=5, seed=3, lr=0.1)]
    records = check_pack(specs, cache)
    assert records[0].stopped_early and records[0].steps_done < 400  # the pack goes on without it
    assert not records[1].stopped_early and records[1].steps_done == 400


def test_a_pack_whose_trials_all_stop_early_completes(cache):
    """Regression: when every trial had stopped early, charging the pack's time divided by zero."""
    base = dataclasses.replace(BASE, steps=400, evals=40, lr=0.5, momentum=0.0, patience=1)
    records = train_jointly([base, dataclasses.replace(base, seed=1)], cache)
    assert [r.status for r in records] == [TrialStatus.COMPLETED] * 2
    assert all(r.stopped_early and r.steps_done < 400 for r in records)


@pytest.mark.parametrize("dataset,loss", [("regression", "mse"), ("regression", "mae"), ("regression", "huber"),
                                          ("teacher", "mse")])
def test_losses_and_regression(cache, dataset, loss):
    base = dataclasses.replace(BASE, dataset=dataset, loss=loss, lr=0.01, steps=100)
    check_pack([base, dataclasses.replace(base, seed=1, lr=0.02)], cache)


def test_label_noise_activations_and_latency(cache):
    base = dataclasses.replace(BASE, label_noise=0.2, activation="gelu", shape="pyramid", depth=3, init="glorot",
                               init_dist="uniform", steps=60)
    check_pack([base, dataclasses.replace(base, seed=1, init="lecun")], cache)
    lat = train_jointly([dataclasses.replace(base, measure_latency=True), base], cache)
    assert lat[0].metrics["forward_latency_s"] > 0 and "forward_latency_s" not in lat[1].metrics


def test_train_pack_mixes_packed_and_fallback_trials_in_order(cache):
    cnn = dataclasses.replace(BASE, dataset="digits", n_samples=0, model="cnn", depth=1, width=4, steps=10, evals=1)
    other_budget = dataclasses.replace(BASE, steps=50, seed=5)
    specs = [BASE, cnn, dataclasses.replace(BASE, seed=1), other_budget]
    records = train_pack(specs, cache, inject_error=[False, False, True, False])
    assert [r.trial_id for r in records] == [s.trial_id for s in specs]
    assert_match(records[0], train_trial(BASE, cache))
    assert records[1].metrics == train_trial(cnn, cache).metrics  # unpacked: bit for bit
    assert records[2].status is TrialStatus.FAILED and "injected" in records[2].error
    assert_match(records[3], train_trial(other_budget, cache))  # a pack of one: train_trial itself


@pytest.mark.parametrize("case", ["adamw", "nadam", "rmsprop", "sgd+nesterov", "adamax"])
def test_large_pack_paths_give_the_records_of_one_pass(cache, case, monkeypatch):
    """A pack past STEP_CHUNKED updates in column chunks and assembles its gradients in a buffer: the same
    records, bit for bit, as one pass with reshape + cat (forced here on a small pack, 7-element chunks,
    with a trial that leaves the pack early, so the buffer also shrinks)."""
    base = dataclasses.replace(BASE, **OPTIMIZER_CASES[case], clip="norm", clip_threshold=0.5)
    specs = [dataclasses.replace(base, seed=s, lr=base.lr * f) for s, f in ((0, 1.0), (1, 0.5), (2, 1e4))]

    def records():
        return [(r.status, r.metrics, [{k: v for k, v in p.items() if k != "elapsed_s"} for p in r.curve],
                 r.diverged_step) for r in train_jointly(specs, cache)]

    one_pass = records()
    monkeypatch.setattr(optimizers, "STEP_CHUNKED", 0)
    monkeypatch.setattr(optimizers, "STEP_CHUNK", 7 * len(specs))
    chunked = records()
    assert repr(chunked) == repr(one_pass)  # repr: NaN equals NaN
    assert any(status is TrialStatus.DIVERGED for status, *_ in one_pass)  # the pack did shrink
