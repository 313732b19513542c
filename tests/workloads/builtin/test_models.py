"""The built-in model families (workloads/builtin/models) and the measurements the FAQ claims need: new
models learn, layer orders are what the spec says, param_count is exact, init gradient ratios, losses, regression metrics, latency, the LR range test."""

from __future__ import annotations

import dataclasses
import importlib.util
import math

import pytest
import torch
from torch import nn

from claimbench.analysis import curve_frame, trial_frame
from claimbench.train.metrics import make_loss
from claimbench.train.single import train_trial
from claimbench.trial import TASK_LOSSES, TrialStatus
from claimbench.workloads.builtin import CHOICES, TrialSpec
from claimbench.workloads.data import DataCache
from claimbench.workloads.builtin.models import build_model
from claimbench.workloads.builtin.geometry import layer_widths
from claimbench.workloads.builtin.shapes import param_count
from claimbench.workloads.builtin.layers import weight_layers
from claimbench.workloads.builtin import models
from claimbench.workloads.builtin.layers import ACTIVATIONS, INIT_DISTS, INITS, AlphaDropout, Dropout
from claimbench.workloads.builtin.shapes import io_shape

BASE = TrialSpec(dataset="teacher", n_samples=600, depth=1, width=16, batch_size=16, lr=0.1, momentum=0.9,
                 steps=40, evals=4)


def types(model: nn.Module) -> list[type]:
    return [type(m) for m in model.children()]


# ---------------------------------------------------------------- models

@pytest.mark.parametrize("spec", [
    dataclasses.replace(BASE, dataset="digits", n_samples=0, model="cnn", depth=2, width=16, steps=150, batchnorm=True),
    dataclasses.replace(BASE, dataset="adding", seq_len=5, n_samples=2000, model="lstm", width=16, optimizer="adam",
                        lr=0.01, momentum=0.0, steps=300),
    dataclasses.replace(BASE, dataset="adding", seq_len=5, n_samples=2000, model="rnn", activation="tanh", width=16,
                        optimizer="adam", lr=0.01, momentum=0.0, steps=300),
    dataclasses.replace(BASE, dataset="digits", n_samples=0, model="lstm", width=16, optimizer="adam", lr=0.01,
                        momentum=0.0, steps=60, depth=2, shape="pyramid"),  # an image read row by row
], ids=["cnn-digits", "lstm-adding", "rnn-adding", "lstm-digits-rows"])
def test_new_models_learn_an_easy_task(cache, spec):
    rec = train_trial(spec, cache)
    assert rec.status is TrialStatus.COMPLETED, rec.error
    assert rec.curve[-1]["val_loss"] < rec.curve[0]["val_loss"]
    if spec.dataset == "adding":  # predicting the mean scores R^2 = 0
        assert rec.metrics["val_r2"] > 0.3
    else:
        assert rec.curve[-1]["train_loss"] < 0.8 * rec.curve[0]["train_loss"] and rec.metrics["val_acc"] > 0.3


def test_the_layers_implement_exactly_the_declared_choices():
    assert set(ACTIVATIONS) == set(CHOICES["activation"])
    assert set(INITS) == set(CHOICES["init"])
    assert set(INIT_DISTS) == set(CHOICES["init_dist"])


def test_each_family_names_a_packed_engine_module_that_exists():
    for family in models.table().values():
        assert family.packed and importlib.util.find_spec(family.packed) is not None, family.name


def test_cnn_refuses_a_non_image_dataset_clearly():
    with pytest.raises(ValueError, match="image dataset"):
        TrialSpec(steps=5, dataset="mnist1d", model="cnn")
    spec = dataclasses.replace(BASE, dataset="digits", model="cnn")
    with pytest.raises(ValueError, match=r"needs images.*\(20,\)"):  # given flat examples of 20 features
        build_model(spec, (20,), 10)


@pytest.mark.parametrize("position, expected", [
    ("after_act", [nn.Linear, nn.BatchNorm1d, nn.ReLU, Dropout]),
    ("before_bn", [nn.Linear, Dropout, nn.BatchNorm1d, nn.ReLU]),
])
def test_dropout_position_sets_the_layer_order(position, expected):
    spec = dataclasses.replace(BASE, depth=2, batchnorm=True, dropout=0.3, dropout_position=position)
    layers = types(build_model(spec, 20, 10))
    assert layers == expected * 2 + [nn.Linear]
    cnn = types(build_model(dataclasses.replace(spec, dataset="digits", model="cnn"), (1, 8, 8), 10))
    conv_expected = [{nn.Linear: nn.Conv2d, nn.BatchNorm1d: nn.BatchNorm2d}.get(t, t) for t in expected]
    assert cnn[1:5] == conv_expected and cnn[5] is nn.MaxPool2d


def test_alpha_dropout_when_asked():
    spec = dataclasses.replace(BASE, depth=2, activation="selu", init="lecun", dropout=0.1, dropout_kind="alpha")
    model = build_model(spec, 20, 10)
    assert sum(isinstance(m, AlphaDropout) for m in model.modules()) == 2
    assert not any(type(m) is Dropout for m in model.modules())
    lstm = build_model(dataclasses.replace(spec, dataset="adding", model="lstm"), (30, 2), 1)
    assert any(isinstance(m, AlphaDropout) for m in lstm.modules())


def test_pyramid_halves_the_width_down_to_four():
    assert layer_widths(5, 64, "pyramid") == [64, 32, 16, 8, 4]
    assert layer_widths(4, 12, "pyramid") == [12, 6, 4, 4]
    assert layer_widths(3, 12, "equal") == [12, 12, 12]
    model = build_model(dataclasses.replace(BASE, depth=3, width=32, shape="pyramid"), 20, 10)
    assert [m.out_features for m in model.modules() if isinstance(m, nn.Linear)] == [32, 16, 8, 10]


def test_prelu_has_one_parameter_per_layer_and_rrelu_builds():
    model = build_model(dataclasses.replace(BASE, depth=3, activation="prelu"), 20, 10)
    prelus = [m for m in model.modules() if isinstance(m, nn.PReLU)]
    assert len(prelus) == 3 and all(m.weight.numel() == 1 for m in prelus)
    rrelu = build_model(dataclasses.replace(BASE, activation="rrelu"), 20, 10)
    assert sum(isinstance(m, nn.RReLU) for m in rrelu.modules()) == 1


SHAPES = [("teacher", "mlp"), ("digits", "mlp"), ("digits", "cnn"), ("cifar10", "cnn"), ("adding", "rnn"),
          ("adding", "lstm"), ("digits", "lstm"), ("mnist1d", "lstm")]


@pytest.mark.parametrize("dataset, model", SHAPES)
@pytest.mark.parametrize("shape", CHOICES["shape"])
@pytest.mark.parametrize("extras", [{}, {"batchnorm": True, "activation": "prelu", "dropout": 0.1}])
def test_param_count_matches_the_built_model(dataset, model, shape, extras):
    if model in ("rnn", "lstm"):
        extras = {k: v for k, v in extras.items() if k != "batchnorm"}
        if model == "rnn":
            extras = {**extras, "activation": "tanh"}
    spec = TrialSpec(steps=1, dataset=dataset, model=model, depth=3, width=24, shape=shape, **extras)
    input_shape, n_out = io_shape(spec)
    built = build_model(spec, input_shape, n_out)
    expected = sum(p.numel() for p in built.parameters())
    assert param_count(spec) == expected
    assert param_count(spec, input_shape, n_out) == expected
    if model == "mlp":
        assert param_count(spec, math.prod(input_shape), n_out) == expected  # a flat feature count works too


def test_weight_layers_are_hidden_layers_then_the_head():
    model = build_model(dataclasses.replace(BASE, depth=3, batchnorm=True), 20, 10)
    shapes = [tuple(ps[0].shape) for ps in weight_layers(model)]
    assert shapes == [(16, 20), (16, 16), (16, 16), (10, 16)]
    lstm = build_model(TrialSpec(steps=1, dataset="adding", model="lstm", depth=2, width=8), (30, 2), 1)
    layers = weight_layers(lstm)
    assert len(layers) == 3 and len(layers[0]) == 2 and tuple(layers[-1][0].shape) == (1, 8)


# ---------------------------------------------------------------- measurements

def test_init_gradient_ratio_vanishes_for_deep_logistic_not_for_relu_he(cache):
    spec = dataclasses.replace(BASE, depth=8, width=32, momentum=0.0, steps=2, evals=1)
    logistic = train_trial(dataclasses.replace(spec, activation="logistic", init="glorot"), cache)
    relu = train_trial(dataclasses.replace(spec, activation="relu", init="he"), cache)
    for rec in (logistic, relu):
        assert rec.status is TrialStatus.COMPLETED, rec.error
        assert len(rec.grad_norms_init) == 9  # 8 hidden layers and the head
        assert rec.metrics["grad_ratio_init"] == pytest.approx(rec.grad_norms_init[0] / rec.grad_norms_init[-1])
    assert logistic.metrics["grad_ratio_init"] < 1e-2
    assert 0.2 < relu.metrics["grad_ratio_init"] < 5


def test_grad_ratio_is_in_every_curve_point_after_step_zero(cache):
    rec = train_trial(BASE, cache)
    assert all(math.isfinite(p["grad_ratio"]) and p["grad_ratio"] > 0 for p in rec.curve[1:])
    curves = curve_frame([rec])
    assert "grad_ratio" in curves and curves["grad_ratio"].notna().sum() == len(rec.curve) - 1


def test_diverged_trial_keeps_its_init_gradients_but_no_metrics(cache):
    rec = train_trial(dataclasses.replace(BASE, lr=1e4), cache)
    assert rec.status is TrialStatus.DIVERGED and rec.metrics == {}
    assert len(rec.grad_norms_init) == 2
    frame = trial_frame([rec])
    assert frame.loc[0, "grad_ratio_init"] == pytest.approx(rec.grad_norms_init[0] / rec.grad_norms_init[1])
    assert math.isnan(frame.loc[0, "val_acc"]) and math.isnan(frame.loc[0, "gap"])


def test_regression_reports_mse_and_r2_and_no_accuracy(cache):
    rec = train_trial(dataclasses.replace(BASE, dataset="regression", lr=0.01, steps=150, target=0.3), cache)
    assert rec.status is TrialStatus.COMPLETED, rec.error
    for split in ("train", "val", "test"):
        assert f"{split}_acc" not in rec.metrics
        assert rec.metrics[f"{split}_loss"] == pytest.approx(rec.metrics[f"{split}_mse"])  # auto loss = mse
    assert rec.metrics["val_r2"] > 0.3 and rec.curve[0]["val_r2"] < rec.metrics["val_r2"]
    assert rec.steps_to_target is not None  # the target applies to val_r2
    frame = trial_frame([rec])
    assert frame.loc[0, "val_r2"] == rec.metrics["val_r2"] and math.isnan(frame.loc[0, "val_acc"])


@pytest.mark.parametrize("loss", ["mae", "huber"])
def test_robust_losses_report_their_own_loss_and_the_mse(cache, loss):
    rec = train_trial(dataclasses.replace(BASE, dataset="regression", lr=0.01, loss=loss, outlier_frac=0.1), cache)
    assert rec.status is TrialStatus.COMPLETED, rec.error
    assert rec.metrics["val_loss"] < rec.metrics["val_mse"] or loss == "huber"
    assert rec.metrics["val_loss"] != pytest.approx(rec.metrics["val_mse"])


def test_losses_by_task():
    out = torch.tensor([[2.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    y = torch.tensor([0, 1])
    data = DataCache().get("teacher", 200, 0)
    mse = make_loss(dataclasses.replace(BASE, loss="mse"), dataclasses.replace(data, n_outputs=3))
    # raw outputs against one-hot targets, averaged over classes: ((2-1)^2 + 0 + 0 + 0 + 0 + 0) / 6
    assert float(mse(out, y, "mean")) == pytest.approx(1 / 6)
    assert float(mse(out, y, "sum")) == pytest.approx(2 / 6)
    reg = DataCache().get("regression", 200, 0)
    pred, target = torch.tensor([[0.0], [3.0]]), torch.tensor([0.5, 0.0])
    huber = make_loss(TrialSpec(steps=1, dataset="regression", loss="huber"), reg)
    assert float(huber(pred, target, "mean")) == pytest.approx((0.5 * 0.25 + (3 - 0.5)) / 2)
    mae = make_loss(TrialSpec(steps=1, dataset="regression", loss="mae"), reg)
    assert float(mae(pred, target, "mean")) == pytest.approx(1.75)
    assert set(TASK_LOSSES["regression"]) | set(TASK_LOSSES["classification"]) == set(CHOICES["loss"])


def test_classification_with_mse_loss_trains(cache):
    rec = train_trial(dataclasses.replace(BASE, loss="mse", steps=150), cache)
    assert rec.status is TrialStatus.COMPLETED, rec.error
    assert rec.metrics["val_acc"] > 0.2 and rec.curve[-1]["train_loss"] < rec.curve[0]["train_loss"]


def test_latency_is_measured_only_when_asked(cache):
    rec = train_trial(dataclasses.replace(BASE, measure_latency=True), cache)
    assert 0 < rec.metrics["forward_latency_s"] < 1
    assert "forward_latency_s" not in train_trial(BASE, cache).metrics
    assert trial_frame([rec]).loc[0, "forward_latency_s"] == rec.metrics["forward_latency_s"]


def test_range_test_suggests_a_sensible_lr_and_stops_on_divergence(cache):
    # On this task plain SGD trains best at LR 0.3-1 and diverges by 3 (see below).
    spec = dataclasses.replace(BASE, kind="range_test", depth=1, width=32, momentum=0.0, steps=100, lr=123.0)
    rec = train_trial(spec, cache)
    assert rec.status is TrialStatus.COMPLETED, rec.error
    m = rec.metrics
    assert 0.01 <= m["range_suggested_lr"] <= 1.0
    assert m["range_suggested_lr"] == pytest.approx(m["range_min_loss_lr"] / 10)
    assert m["range_min_loss_lr"] < m["range_stop_lr"] < spec.range_lr_max  # stopped before the end
    assert len(rec.range_curve) < spec.range_steps
    last, lowest = rec.range_curve[-1]["smoothed"], min(p["smoothed"] for p in rec.range_curve)
    assert last > 4 * lowest
    lrs = [p["lr"] for p in rec.range_curve]
    assert lrs[0] == pytest.approx(spec.range_lr_min) and all(b > a for a, b in zip(lrs, lrs[1:]))
    # the training after it used the suggested LR (spec.lr ignored), from the same init
    assert rec.curve[1]["lr"] == pytest.approx(m["range_suggested_lr"])
    assert rec.grad_norms_init == train_trial(dataclasses.replace(spec, kind="train"), cache).grad_norms_init
    assert m["val_acc"] > 0.3
    frame = trial_frame([rec])
    assert frame.loc[0, "range_suggested_lr"] == m["range_suggested_lr"]


def test_range_test_divergence_keeps_range_metrics(cache):
    # Suggest from a sweep that ends where training cannot survive: the training run may diverge,
    # the range metrics stay (they were measured before it).
    spec = dataclasses.replace(BASE, kind="range_test", range_lr_min=1e3, range_lr_max=1e6, range_steps=5)
    rec = train_trial(spec, cache)
    assert rec.status in (TrialStatus.DIVERGED, TrialStatus.COMPLETED)
    assert "range_stop_lr" in rec.metrics or rec.divergence_reason.startswith("range test")


def test_failed_record_error_is_one_line(cache, monkeypatch):
    def boom(*args, **kwargs):
        raise RuntimeError("first line\nsecond line")
    monkeypatch.setattr(models, "build_model", boom)
    rec = train_trial(BASE, cache)
    assert rec.status is TrialStatus.FAILED
    assert "\n" not in rec.error and "first line second line" in rec.error
