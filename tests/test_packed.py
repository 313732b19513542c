"""Packed training: the same results as the unpacked trainer, per trial, for K = 1 and K > 1.

Batched matmuls and per-row reductions sum in a different order than the unpacked kernels, so
results agree to a tolerance (RTOL on losses after up to 200 steps), not bit for bit. Dropout
masks come from each trial's own generator in train_trial's order, so on the CPU they match too.
"""

from __future__ import annotations

import dataclasses
import math

import pytest

from claimbench.runner import packs as packs_module
from claimbench.runner.packs import DEFAULT_PACK_SIZE, make_packs, pack_key, packable
from claimbench.train import train_jointly, train_pack, train_trial
from claimbench.trial import TrialStatus
from claimbench.workloads.builtin import CHOICES, TrialSpec

RTOL = 1e-5  # relative, on every loss of every curve point and on the final metrics
LOSS_KEYS = ("train_loss", "val_loss", "test_loss", "train_loss_ema")

BASE = TrialSpec(dataset="teacher", n_samples=600, depth=2, width=16, batch_size=8, lr=0.05, momentum=0.9,
                 steps=200, evals=5)


pytestmark = pytest.mark.usefixtures("one_thread")


def close(a: float, b: float, rtol: float = RTOL, atol: float = 1e-7) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return abs(a - b) <= atol + rtol * abs(b)


def metric_close(key: str, a: float, b: float, rtol: float = 1e-4) -> bool:
    """Two values of one metric within ``rtol`` of its error scale. An R² is 1 − mse / var: its rounding is
    the mse's, relative to 1 − R², so it is compared there; near R² = 0 (an untrained regressor) a tolerance
    relative to R² itself would be far below rounding (−7.04e-5 against −7.03e-5 failed at rtol 1e-4 on an
    AVX-512 CPU and passed on another). Everything else is compared relative to its own size."""
    if key.endswith("_r2"):
        return close(1.0 - a, 1.0 - b, rtol=rtol)
    return close(a, b, rtol=rtol)


def assert_match(packed, unpacked, n_eval: int = 150) -> float:
    """Same outcome, steps and curve; losses within RTOL, accuracies within one example. Returns the
    largest relative loss difference seen."""
    assert packed.trial_id == unpacked.trial_id
    assert packed.status is unpacked.status, (packed.error, packed.divergence_reason, unpacked.divergence_reason)
    for name in ("diverged_step", "steps_done", "examples_done", "steps_to_target", "best_step", "stopped_early"):
        assert getattr(packed, name) == getattr(unpacked, name), name
    assert (packed.divergence_reason is None) == (unpacked.divergence_reason is None)
    assert [p["step"] for p in packed.curve] == [p["step"] for p in unpacked.curve]
    assert set(packed.metrics) == set(unpacked.metrics)
    worst = 0.0
    for p, u in zip(packed.curve, unpacked.curve):
        assert set(p) == set(u)
        for key in LOSS_KEYS:
            assert close(p[key], u[key]), (key, p["step"], p[key], u[key])
            if not math.isnan(u[key]):
                worst = max(worst, abs(p[key] - u[key]) / abs(u[key]))
        for key in p:
            if key.endswith("_acc"):
                assert abs(p[key] - u[key]) <= 1.0 / n_eval + 1e-12, (key, p["step"])
            elif key.endswith(("_mse", "_r2")) or key in ("lr", "grad_ratio"):
                assert metric_close(key, p[key], u[key]), (key, p["step"], p[key], u[key])
    for key, value in unpacked.metrics.items():
        if key.endswith("_acc"):
            assert abs(packed.metrics[key] - value) <= 1.0 / n_eval + 1e-12
        elif key != "forward_latency_s":
            assert metric_close(key, packed.metrics[key], value), (key, packed.metrics[key], value)
    assert packed.grad_norms_init == pytest.approx(unpacked.grad_norms_init, rel=1e-5)
    assert packed.time_per_step_s is None or packed.time_per_step_s > 0
    return worst


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


def test_packable_falls_back_for_what_packing_does_not_implement(cache, monkeypatch):
    assert packable(BASE)
    for change in (dict(kind="range_test"), dict(model="cnn", dataset="digits"), dict(model="rnn", activation="tanh"),
                   dict(model="lstm"), dict(activation="rrelu"), dict(activation="prelu"),
                   dict(dropout=0.2, dropout_kind="alpha", activation="selu")):
        assert packable(dataclasses.replace(BASE, **change)), change
    for change in (dict(batchnorm=True, batch_size=1), dict(measure_noise_scale=True)):
        assert not packable(dataclasses.replace(BASE, **change)), change
    # what a pack must share: the kind and the dropout layers; the rate is per trial (0 included)
    assert pack_key(BASE) != pack_key(dataclasses.replace(BASE, kind="range_test"))
    alpha = dataclasses.replace(BASE, dropout=0.2, dropout_kind="alpha", activation="selu")
    assert pack_key(alpha) != pack_key(dataclasses.replace(alpha, dropout_kind="standard"))
    assert pack_key(alpha) == pack_key(dataclasses.replace(alpha, dropout=0.0))
    # a field the packed trainer does not know (such as a measurement added later) packs only at its default
    monkeypatch.setattr(packs_module, "PACKED_FIELDS", packs_module.PACKED_FIELDS - {"measure_latency"})
    assert packable(BASE) and not packable(dataclasses.replace(BASE, measure_latency=True))


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


def test_make_packs_groups_by_pack_key_and_caps_the_size():
    specs = [dataclasses.replace(BASE, seed=s, lr=lr, batch_size=b) for s in range(3) for lr in (0.01, 0.1)
             for b in (8, 32)]
    specs.append(dataclasses.replace(BASE, activation="prelu"))
    packs = make_packs(specs, 4)
    assert sorted(s.trial_id for p in packs for s in p) == sorted(s.trial_id for s in specs)
    for p in packs:
        assert len(p) <= 4
        assert len({pack_key(s) for s in p}) == 1 or not any(packable(s) for s in p)
    assert max(len(p) for p in make_packs(specs)) == min(DEFAULT_PACK_SIZE, 6)


@pytest.mark.parametrize("case", ["adamw", "nadam", "rmsprop", "sgd+nesterov", "adamax"])
def test_large_pack_paths_give_the_records_of_one_pass(cache, case, monkeypatch):
    """A pack past STEP_CHUNKED updates in column chunks and assembles its gradients in a buffer: the same
    records, bit for bit, as one pass with reshape + cat (forced here on a small pack, 7-element chunks,
    with a trial that leaves the pack early, so the buffer also shrinks)."""
    from claimbench.train import packed

    base = dataclasses.replace(BASE, **OPTIMIZER_CASES[case], clip="norm", clip_threshold=0.5)
    specs = [dataclasses.replace(base, seed=s, lr=base.lr * f) for s, f in ((0, 1.0), (1, 0.5), (2, 1e4))]

    def records():
        return [(r.status, r.metrics, [{k: v for k, v in p.items() if k != "elapsed_s"} for p in r.curve],
                 r.diverged_step) for r in train_jointly(specs, cache)]

    one_pass = records()
    monkeypatch.setattr(packed, "STEP_CHUNKED", 0)
    monkeypatch.setattr(packed, "STEP_CHUNK", 7 * len(specs))
    chunked = records()
    assert repr(chunked) == repr(one_pass)  # repr: NaN equals NaN
    assert any(status is TrialStatus.DIVERGED for status, *_ in one_pass)  # the pack did shrink
