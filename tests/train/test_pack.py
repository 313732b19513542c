"""train_pack: each group of jointly trainable trials goes to the packed engine its model family names,
found by module name (``packing.packed_engine``); a family without one trains on the single engine."""

from __future__ import annotations

import dataclasses

import pytest

from claimbench.train.pack import train_pack
from claimbench.train.packing import packable
from claimbench.trial import TrialRecord
from claimbench.workloads.builtin import TrialSpec, models

pytestmark = pytest.mark.usefixtures("one_thread")

MLP = TrialSpec(dataset="teacher", n_samples=600, depth=1, width=8, batch_size=8, lr=0.05, steps=10, evals=1)


def train_jointly(specs, cache, device, inject_error):
    """A stand-in packed engine: this module, named as a family's engine, is what train_pack must call."""
    records = [TrialRecord.failed(s, "trained by the stand-in engine") for s in specs]
    for r in records:
        r.engine = "stand-in"
    return records


def test_a_pack_trains_on_the_engine_its_family_names(cache, monkeypatch):
    specs = [dataclasses.replace(MLP, seed=s) for s in range(2)]
    assert [r.engine for r in train_pack(specs, cache)] == ["packed-mlp"] * 2
    mlp = models.get("mlp")
    monkeypatch.setattr(models, "find", lambda name: dataclasses.replace(mlp, packed=__name__) if name == "mlp" else None)
    assert [r.engine for r in train_pack(specs, cache)] == ["stand-in"] * 2
    monkeypatch.setattr(models, "find", lambda name: dataclasses.replace(mlp, packed=""))  # no packed engine
    assert not packable(specs[0])
    records = train_pack(specs, cache)
    assert [r.engine for r in records] == ["single"] * 2 and all(r.status.value == "completed" for r in records)
