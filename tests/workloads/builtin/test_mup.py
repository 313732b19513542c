"""muP (Yang et al. 2022, Tensor Programs V, arXiv 2203.03466): the per-layer scalings against the
paper's Table 8 for Adam, the packed engine against the single one, and SP left as it was."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import pytest
import torch

from claimbench.check.baseline import matrix_fingerprint, read_baseline
from claimbench.train.packing import pack_key, packable
from claimbench.suite import load_suite
from claimbench.train.optim import make_optimizer
from claimbench.train.packed.engine import train_jointly
from claimbench.train.single import train_trial
from claimbench.workloads.builtin import TrialSpec
from claimbench.workloads.builtin.models import build_model
from tests.train.equivalence import assert_match

N_IN, N_OUT, BASE_WIDTH = 40, 10, 64  # MNIST-1D's 40 features and 10 classes; the width where muP is SP
ETA = 0.01


pytestmark = pytest.mark.usefixtures("one_thread")


def mup_spec(width: int, **changes) -> TrialSpec:
    return TrialSpec(dataset="mnist1d", depth=3, width=width, optimizer="adam", lr=ETA, steps=10,
                     parameterization="mup", base_width=BASE_WIDTH, **changes)


@pytest.mark.parametrize("width", [256, 1024])
def test_per_layer_scalings_follow_table_8_for_adam(width):
    # Table 8, Adam column, with fan_in taken relative to the base model (width_mult m = width / 64):
    # input weights & biases: init var as SP (He: 2 / fan_in, fan_in = 40), multiplier 1, LR eta;
    # hidden weights: init var 2 / fan_in (fan_in = width), multiplier 1, LR eta / m;
    # output weights: init var constant in width (SP's at the base width: 2 / 64), multiplier 1 / m, LR eta.
    m = width / 64
    torch.manual_seed(0)
    spec = mup_spec(width)
    model = build_model(spec, (N_IN,), N_OUT)
    linears = [mod for mod in model if isinstance(mod, torch.nn.Linear)]
    first, hidden, head = linears[0], linears[1:-1], linears[-1]
    assert len(hidden) == 2
    assert first.weight.std().item() == pytest.approx(math.sqrt(2 / 40), rel=0.03)
    for layer in hidden:
        assert layer.weight.std().item() == pytest.approx(math.sqrt(2 / width), rel=0.03)
    assert head.weight.std().item() == pytest.approx(math.sqrt(2 / 64), rel=0.06)  # 10 x width draws
    x = torch.randn(5, width)
    assert torch.allclose(head(x), torch.nn.functional.linear(x / m, head.weight, head.bias))  # readout 1 / m
    opt = make_optimizer(spec, list(model.parameters()))
    lr_of = {id(p): g["lr"] for g in opt.param_groups for p in g["params"]}
    assert lr_of[id(first.weight)] == pytest.approx(ETA)
    for layer in hidden:
        assert lr_of[id(layer.weight)] == pytest.approx(ETA / m)
    assert lr_of[id(head.weight)] == pytest.approx(ETA)
    for layer in linears:
        assert lr_of[id(layer.bias)] == pytest.approx(ETA)
    assert len(lr_of) == len(list(model.parameters()))


def test_mup_at_the_base_width_is_sp(cache):
    sp = TrialSpec(dataset="teacher", n_samples=600, depth=2, width=16, batch_size=8, optimizer="adam", lr=0.003,
                   steps=60, evals=3)
    mup = dataclasses.replace(sp, parameterization="mup", base_width=16)
    a, b = train_trial(sp, cache), train_trial(mup, cache)
    assert a.status is b.status
    assert [p["val_loss"] for p in a.curve] == [p["val_loss"] for p in b.curve]  # bit for bit
    wider = train_trial(dataclasses.replace(mup, width=32), cache)
    assert [p["val_loss"] for p in wider.curve] != [p["val_loss"] for p in b.curve]


@pytest.mark.parametrize("optimizer", ["adam", "adamw"])
def test_packed_mup_matches_the_single_engine(cache, optimizer):
    base = TrialSpec(dataset="teacher", n_samples=600, depth=3, width=32, batch_size=8, optimizer=optimizer,
                     lr=0.003, steps=120, evals=4, parameterization="mup", base_width=8,
                     weight_decay=0.01 if optimizer == "adamw" else 1e-3)
    specs = [base, dataclasses.replace(base, seed=1, lr=0.01), dataclasses.replace(base, seed=2, weight_decay=0.0)]
    assert all(packable(s) for s in specs) and len({pack_key(s) for s in specs}) == 1
    assert pack_key(base) != pack_key(dataclasses.replace(base, parameterization="sp", base_width=0))
    packed = train_jointly(specs, cache)
    for p, s in zip(packed, specs):
        assert p.engine == "packed-mlp"
        assert_match(p, train_trial(s, cache))


def test_sp_leaves_every_trial_id_of_the_baseline_matrix_unchanged():
    spec = TrialSpec(epochs=1)
    assert "parameterization" not in spec.canonical_json() and "base_width" not in spec.canonical_json()
    assert "batch_schedule" not in spec.canonical_json() and "batch_factor" not in spec.canonical_json()
    baseline = read_baseline(Path(__file__).parents[3] / "reports" / "baseline.json")
    entry = baseline["suites"]["batch_size"]["ci"]
    assert matrix_fingerprint(load_suite("batch_size", tier="ci")) == entry["matrix"]  # every config_id as before


@pytest.mark.parametrize("changes, message", [
    (dict(parameterization="mup", optimizer="adam"), "base_width > 0"),
    (dict(parameterization="mup", base_width=64, optimizer="sgd"), "optimizer adam or adamw"),
    (dict(parameterization="mup", base_width=64, model="cnn", dataset="digits"), "model mlp"),
    (dict(base_width=64), "base_width applies to parameterization mup"),
])
def test_bad_mup_combinations_are_refused(changes, message):
    with pytest.raises(ValueError, match=message):
        TrialSpec(steps=10, **changes)
