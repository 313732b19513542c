"""The two one-file recipes of the built-in workload (docs/extending.md): a dataset and a model family,
each written as a module of its own (recipe_dataset.py, recipe_family.py), added with one call and
trained as a smoke suite through the normal path: suite text -> load -> expand -> the local executor ->
the run dir. Nothing else in claimbench is edited."""

from __future__ import annotations

import dataclasses
import tomllib

import pytest

from claimbench.api import run_suite
from claimbench.errors import UserError
from claimbench.store.rundir import RunStore
from claimbench.suite import expand, parse_suite
from claimbench.trial import TrialStatus
from claimbench.workloads.builtin import CHOICES, TrialSpec, datasets, models, shapes
from tests.workloads import recipe_dataset, recipe_family

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture
def blobs():
    datasets.register(recipe_dataset.DATASET)
    yield recipe_dataset.DATASET
    datasets.unregister("blobs")


@pytest.fixture
def linear():
    models.register(recipe_family.FAMILY)
    yield recipe_family.FAMILY
    models.unregister("linear")


def smoke(workload: str) -> str:
    return f"""
[suite]
name = "recipe"
seeds = 1

[workload]
{workload}

[train]
optimizer = "adam"
lr = 0.01
batch_size = 16
evals = 2

[budget]
steps = 40
"""


def train(text: str, tmp_path) -> tuple[list[TrialSpec], list]:
    suite = parse_suite(tomllib.loads(text), "recipe.toml", "smoke")
    specs = expand(suite)
    run_suite(suite, tmp_path / "run", executor="local", progress=False)
    return specs, RunStore(tmp_path / "run").records()


def test_a_dataset_in_one_module(blobs, tmp_path):
    assert "blobs" in CHOICES["dataset"]
    spec = TrialSpec(steps=1, dataset="blobs", n_samples=100)
    assert shapes.io_shape(spec) == ((8,), 2) and shapes.train_size(spec) == 64 and spec.task == "classification"
    specs, records = train(smoke('dataset = "blobs"\nn_samples = 300\ndepth = 1\nwidth = 8'), tmp_path)
    assert [r.trial_id for r in records] == [s.trial_id for s in specs] and len(records) == 1
    rec = records[0]
    assert rec.status is TrialStatus.COMPLETED, rec.error
    assert rec.spec["dataset"] == "blobs" and rec.metrics["val_acc"] > 0.7  # the blobs are easy to tell apart
    with pytest.raises(UserError, match="batch_size = 400 is more than the 192 training examples of blobs"):
        parse_suite(tomllib.loads(smoke('dataset = "blobs"\nn_samples = 300').replace("16", "400")), "r.toml", "smoke")


def test_a_model_family_in_one_module(linear, tmp_path):
    assert "linear" in CHOICES["model"]
    assert shapes.param_count(TrialSpec(steps=1, dataset="teacher", model="linear")) == 20 * 10 + 10
    with pytest.raises(ValueError, match="model linear has no hidden layer"):
        TrialSpec(steps=1, dataset="teacher", model="linear", batchnorm=True)
    specs, records = train(smoke('dataset = "teacher"\nn_samples = 600\nmodel = "linear"'), tmp_path)
    rec = records[0]
    assert len(records) == 1 and rec.status is TrialStatus.COMPLETED, rec.error
    assert rec.spec["model"] == "linear" and rec.engine == "single"
    assert rec.curve[-1]["val_loss"] < rec.curve[0]["val_loss"]


def test_a_registered_name_is_refused_twice_and_gone_after(blobs):
    with pytest.raises(ValueError, match="already registered"):
        datasets.register(dataclasses.replace(recipe_dataset.DATASET, default_n=10))  # another one, same name
    datasets.unregister("blobs")
    assert "blobs" not in CHOICES["dataset"] and datasets.find("blobs") is None
