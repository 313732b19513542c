"""Task lm and the transformer family: the data path, the next-byte loss and its metrics, the policy's target
in bits per byte and tokens, the model (causal, its parameter count, muP, its refusals), optimizer muon, and
the packed engine against the single-trial engine at tests/train/equivalence's tolerances."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch

from claimbench.train.metrics import evaluate, make_loss, next_token_ce
from claimbench.train.pack import train_pack
from claimbench.train.packed.transformer import train_jointly
from claimbench.train.packing import pack_key, packable
from claimbench.train.single import train_trial
from claimbench.trial import TrialStatus
from claimbench.workloads.builtin import TrialSpec, datasets, models
from claimbench.workloads.builtin.shapes import param_count
from claimbench.workloads.data import build_dataset
from tests.train.equivalence import assert_match

pytestmark = pytest.mark.usefixtures("one_thread")

LM = TrialSpec(dataset="grammar", n_samples=256, model="transformer", seq_len=32, width=32, depth=2, heads=4, init="lecun",
               optimizer="adam", lr=3e-3, batch_size=8, steps=40, evals=2)


def test_lm_data_keep_their_validation_split_and_tokens():
    data = build_dataset("grammar", 0, 3, seq_len=16)
    assert len(data.y_train) == 2048 and len(data.y_val) == len(data.y_test) == 256
    raw = datasets.get("grammar").build(datasets.DataParams(0, 3, None, {"seq_len": 16}))
    assert data.task == "lm" and data.n_outputs == 256 and data.input_shape == (16,)
    for split, (x, y) in {"train": (raw.x, raw.y), "val": (raw.x_val, raw.y_val), "test": (raw.x_test, raw.y_test)}.items():
        assert getattr(data, f"x_{split}").dtype == torch.long and getattr(data, f"y_{split}").dtype == torch.long
        assert np.array_equal(getattr(data, f"x_{split}").numpy(), x)  # as built: not split, not standardized
        assert np.array_equal(getattr(data, f"y_{split}").numpy(), y)
    assert torch.equal(data.x_train[:, 1:], data.y_train[:, :-1])  # y is x shifted by one


def test_next_token_loss_and_metrics():
    g = torch.Generator().manual_seed(0)
    out, y = torch.randn(5, 7, 256, generator=g), torch.randint(0, 256, (5, 7), generator=g)
    per_position = torch.nn.functional.cross_entropy(out.reshape(35, 256), y.reshape(35), reduction="none").view(5, 7)
    assert torch.allclose(next_token_ce(out, y, "none"), per_position.mean(1))
    assert torch.allclose(next_token_ce(out, y, "mean"), per_position.mean())
    assert torch.allclose(next_token_ce(out, y, "sum"), per_position.mean(1).sum())
    data = build_dataset("grammar", 64, 0, seq_len=8)
    loss_fn = make_loss(dataclasses.replace(LM, seq_len=8), data)
    model = lambda x: torch.nn.functional.one_hot(x, 256).float() * 3.0  # predicts "the next byte = this one"  # noqa: E731
    probe = torch.arange(16)
    m = evaluate(lambda x: model(x).unsqueeze(0), 1, data, probe, loss_fn, chunk=5)[0]
    same = (data.x_val == data.y_val).float().mean().item()
    assert m["val_acc"] == pytest.approx(same, abs=1e-12)
    assert m["val_bpb"] == pytest.approx(m["val_loss"] / math.log(2), rel=1e-12)
    assert m["val_loss"] == pytest.approx(next_token_ce(model(data.x_val), data.y_val, "mean").item(), rel=1e-6)


def test_target_in_bits_per_byte_and_tokens(cache):
    free = train_trial(dataclasses.replace(LM, steps=60, evals=6), cache)
    assert free.status is TrialStatus.COMPLETED, free.error
    bpb = [p["val_bpb"] for p in free.curve]
    assert bpb[-1] < bpb[0] - 1  # it learns
    target = bpb[3] + 1e-9  # reached at the fourth evaluation at the latest
    first = next(p["step"] for p in free.curve if p["val_bpb"] <= target)
    r = train_trial(dataclasses.replace(LM, steps=60, evals=6, target=target), cache)
    assert r.steps_to_target == first
    assert r.tokens_to_target == r.examples_to_target * LM.seq_len == first * LM.batch_size * LM.seq_len
    assert r.tokens_done == r.examples_done * LM.seq_len
    best = dataclasses.replace(LM, steps=60, evals=6, patience=10)
    kept = train_trial(best, cache)
    assert kept.metrics["val_bpb"] == min(bpb)  # restore-best keeps the lowest bits per byte


def test_divergence_is_defined_for_lm(cache):
    r = train_trial(dataclasses.replace(LM, optimizer="sgd", lr=1e4, divergence_factor=2.0), cache)
    assert r.status is TrialStatus.DIVERGED and r.diverged_step is not None and "val_bpb" not in r.metrics


def test_transformer_is_causal_and_counts_its_parameters():
    for positions in ("learned", "rope"):
        spec = dataclasses.replace(LM, positions=positions)
        torch.manual_seed(0)
        model = models.build_model(spec, (32,), 256).eval()
        assert param_count(spec) == sum(p.numel() for p in model.parameters())
        x = torch.randint(0, 256, (2, 32))
        changed = x.clone()
        changed[:, 20:] = (changed[:, 20:] + 1) % 256
        with torch.no_grad():
            a, b = model(x), model(changed)
        assert a.shape == (2, 32, 256)
        assert torch.allclose(a[:, :20], b[:, :20], atol=1e-6) and not torch.allclose(a[:, 20:], b[:, 20:])


def test_mup_at_base_width_is_sp():
    sp = dataclasses.replace(LM, width=32)
    mup = dataclasses.replace(sp, parameterization="mup", base_width=32)
    x = torch.randint(0, 256, (2, 32))
    torch.manual_seed(0)
    a = models.build_model(sp, (32,), 256)(x)
    torch.manual_seed(0)
    model = models.build_model(mup, (32,), 256)
    assert torch.equal(a, model(x))
    wide = models.build_model(dataclasses.replace(mup, width=64), (32,), 256)
    scales = {n: getattr(p, "lr_scale", 1.0) for n, p in wide.named_parameters()}
    assert scales["blocks.0.fc1.weight"] == 0.5 and scales["embed.weight"] == scales["head.weight"] == 1.0
    assert wide.blocks[0].scale == pytest.approx(math.sqrt(8) / 16)  # 1/d attention: sqrt(base d_head) / d_head


@pytest.mark.parametrize("change,message", [
    (dict(width=30), "width divisible by heads"),
    (dict(batchnorm=True), "no batchnorm"),
    (dict(label_noise=0.1), "do not apply"),
    (dict(model="mlp"), "use model transformer"),
    (dict(dataset="digits"), "does not train digits"),
    (dict(optimizer="muon"), "needs momentum > 0"),
])
def test_refusals(change, message):
    with pytest.raises(ValueError, match=message):
        dataclasses.replace(LM, **change)


def test_refusals_on_other_tasks():
    with pytest.raises(ValueError, match="optimizer muon applies to model transformer"):
        TrialSpec(dataset="digits", optimizer="muon", momentum=0.9, steps=1)
    with pytest.raises(ValueError, match="target is a val_acc or val_r2 at most 1"):
        TrialSpec(dataset="digits", target=2.0, steps=1)


def test_muon_on_the_hidden_matrices(cache):
    spec = dataclasses.replace(LM, optimizer="muon", momentum=0.95, nesterov=True, lr=0.01, weight_decay=0.01)
    assert not packable(spec)
    from claimbench.train.optim import make_optimizer

    torch.manual_seed(0)
    model = models.build_model(spec, (32,), 256)
    opt = make_optimizer(spec, model.parameters())
    muon, adamw = opt.parts
    assert isinstance(muon, torch.optim.Muon) and isinstance(adamw, torch.optim.AdamW)
    names = {id(p): n for n, p in model.named_parameters()}
    assert sorted(names[id(p)] for p in muon.param_groups[0]["params"]) == sorted(
        f"blocks.{i}.{m}.weight" for i in range(2) for m in ("qkv", "proj", "fc1", "fc2"))
    r = train_trial(spec, cache)
    assert r.status is TrialStatus.COMPLETED and r.engine == "single", r.error
    assert r.curve[-1]["val_bpb"] < r.curve[0]["val_bpb"] - 1


def check(specs: list[TrialSpec], cache) -> None:
    assert all(packable(s) for s in specs) and len({pack_key(s) for s in specs}) == 1
    for p, s in zip(train_jointly(specs, cache), specs):
        assert p.engine == "packed-transformer"
        assert_match(p, train_trial(s, cache), n_eval=256 * 32)


def test_packed_learned_positions_per_trial_hyperparameters(cache):
    check([LM, dataclasses.replace(LM, seed=1, lr=1e-3), dataclasses.replace(LM, seed=2, weight_decay=0.1)], cache)
    clipped = dataclasses.replace(LM, clip="norm", clip_threshold=0.5)
    check([clipped, dataclasses.replace(clipped, seed=1, clip_threshold=2.0)], cache)


def test_packed_rope_adamw_and_mup(cache):
    rope = dataclasses.replace(LM, positions="rope", optimizer="adamw", weight_decay=0.05, heads=2)
    check([rope, dataclasses.replace(rope, seed=1, lr=1e-2)], cache)
    mup = dataclasses.replace(LM, parameterization="mup", base_width=16)
    check([mup, dataclasses.replace(mup, seed=1, lr=1e-2)], cache)


def test_train_pack_trains_transformers_jointly_and_dropout_alone(cache):
    specs = [LM, dataclasses.replace(LM, seed=1), dataclasses.replace(LM, seed=2, dropout=0.1)]
    records = train_pack(specs, cache)
    assert [r.engine for r in records] == ["packed-transformer", "packed-transformer", "single"]
    assert all(r.status is TrialStatus.COMPLETED for r in records)
