"""The packing rules (train/packing.py): which trials train jointly (``packable``), which share a pack
(``pack_key``) and how wide a pack is (``pack_width``), as the scheduler (runner/packs.py) applies them."""

from __future__ import annotations

import dataclasses

from claimbench.runner.packs import DEFAULT_PACK_SIZE, make_packs, pack_bytes
from claimbench.train import packing
from claimbench.train.packing import PACK_MEMORY_BYTES, pack_key, pack_width, packable
from claimbench.workloads.builtin import TrialSpec

BASE = TrialSpec(dataset="teacher", n_samples=600, depth=2, width=16, batch_size=8, lr=0.05, momentum=0.9,
                 steps=200, evals=5)


def _mlp(**kw) -> TrialSpec:
    base = dict(dataset="mnist1d", depth=2, width=100, batch_size=8, steps=50, optimizer="sgd", momentum=0.9)
    return TrialSpec(**{**base, **kw})


def width(spec: TrialSpec) -> int:
    """The width make_packs gives a group of trials like ``spec`` at the default ``--pack-size``."""
    return pack_width(spec, DEFAULT_PACK_SIZE, pack_bytes(spec))


def test_packable_falls_back_for_what_packing_does_not_implement(monkeypatch):
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
    monkeypatch.setattr(packing, "PACKED_FIELDS", packing.PACKED_FIELDS - {"measure_latency"})
    assert packable(BASE) and not packable(dataclasses.replace(BASE, measure_latency=True))


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


def test_pack_width_is_bounded_by_memory():
    small, huge = _mlp(), _mlp(dataset="cifar10", depth=8, width=4096, optimizer="adam", batch_size=512)
    assert pack_bytes(huge) > 100 * pack_bytes(small)
    assert width(huge) < width(small)
    assert width(huge) * pack_bytes(huge) <= PACK_MEMORY_BYTES or width(huge) == 1
    packs = make_packs([dataclasses.replace(huge, seed=s) for s in range(6)])
    assert max(len(p) for p in packs) == width(huge)


def test_cnn_packs_narrow_as_channels_grow():
    # a CNN of many channels is bound by convolution arithmetic: the runner packs it narrower
    # (CNN_WIDTH_BY_CHANNELS), a small one as wide as the family's row; the memory bound does not bind
    narrow, wide = (_mlp(dataset="digits", model="cnn", width=w, batch_size=32) for w in (16, 64))
    assert width(narrow) > width(wide) > 1
    assert width(wide) * pack_bytes(wide) < PACK_MEMORY_BYTES
    packs = make_packs([dataclasses.replace(s, seed=i) for s in (narrow, wide) for i in range(40)])
    assert {len(p) for p in packs if p[0].width == 64} == {width(wide)}
