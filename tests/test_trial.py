"""Trial specs and records (trial.py): ids stable across processes, sensitive to every field and to the
training revision; the generic spec machinery (``spec_class``); the built-in TrialSpec's refusals."""

from __future__ import annotations

import dataclasses
import subprocess
import sys

import pytest

from claimbench import trial
from claimbench.trial import TrialRecord, TrialStatus
from claimbench.workloads.builtin import TrialSpec

# The id of the default spec with steps=100. If this changes, every stored
# result is orphaned: change it only together with TRAINING_REVISION.
GOLDEN_ID = TrialSpec(steps=100).trial_id


def test_id_is_stable_across_processes():
    code = "from claimbench.workloads.builtin import TrialSpec; print(TrialSpec(steps=100).trial_id)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == GOLDEN_ID
    assert len(GOLDEN_ID) == 16 and int(GOLDEN_ID, 16) >= 0


@pytest.mark.parametrize("field", [f.name for f in dataclasses.fields(TrialSpec)])
def test_every_field_changes_the_id(field):
    base = TrialSpec(steps=100)
    value = getattr(base, field)
    if isinstance(value, bool):
        new = not value
    elif isinstance(value, (int, float)):
        new = value + 1 if field != "steps" else 200
    else:
        new = value + "_x"
    extra = {"steps": 0} if field == "epochs" else {}
    if field == "outlier_frac":  # outliers apply to regression only
        base = dataclasses.replace(base, dataset="regression")
        new = 0.5
    if field == "label_noise":
        new = 0.5
    if field == "base_width":  # muP's base width applies under parameterization mup only
        base, new = dataclasses.replace(base, parameterization="mup", optimizer="adam", base_width=64), 65
    if field == "batch_factor":  # the factor applies to a batch schedule only
        base, new = dataclasses.replace(base, batch_schedule="step", batch_factor=2), 3
    changed = dataclasses.replace(base, **{field: new}, **extra)
    assert changed.trial_id != base.trial_id


def test_golden_id_of_this_revision():
    """TRAINING_REVISION 4 (uniform dropout masks, (in, out) packed weights, test evaluated where read)
    changed every id; this pins the revision-4 id of the default spec."""
    assert trial.TRAINING_REVISION == 4
    assert GOLDEN_ID == "680905e1ae678430"


SETTING = trial.Field("size", int, 3, section="workload", low=1, limit="depth", pack_shape=True)


def test_a_spec_class_puts_a_workloads_settings_after_the_generic_head():
    cls = trial.spec_class((SETTING,), name="ToySpec", module=__name__)
    names = [f.name for f in dataclasses.fields(cls)]
    head = [f.name for f in trial.HEAD]
    assert names == [*head, "size", *(f.name for f in trial.TAIL)] and list(cls.FIELDS) == names
    spec = cls(steps=5)
    assert spec.size == 3 and list(spec.to_dict()) == names and cls.from_dict(spec.to_dict()) == spec
    assert spec.task == "" and spec.loss_name == "ce" and spec.builtin  # a generic spec knows no dataset
    assert dataclasses.replace(spec, size=4).trial_id != spec.trial_id
    with pytest.raises(ValueError, match="exactly one of epochs and steps"):
        cls()
    with pytest.raises(ValueError, match="spec fields repeat: \\['lr'\\]"):
        trial.spec_class((trial.Field("lr", float, 0.1),))


def test_the_id_leaves_out_late_fields_at_their_default():
    omitted = [f.name for f in trial.HEAD + trial.TAIL if f.id_omits_default]
    assert {"workload", "workload_params", "code", "exclusive", "measure_noise_scale"} <= set(omitted)
    spec = TrialSpec(steps=3)
    text = spec.canonical_json()
    assert all(f'"{name}"' not in text for name in omitted + ["parameterization", "base_width"])
    assert '"exclusive":true' in dataclasses.replace(spec, exclusive=True).canonical_json()


@pytest.mark.parametrize("params, words", [
    ({"dataset": "teacher", "loss": "huber"}, "does not apply"),
    ({"dataset": "regression", "loss": "ce"}, "does not apply"),
    ({"dataset": "regression", "label_noise": 0.1}, "outlier_frac"),
    ({"dataset": "teacher", "outlier_frac": 0.1}, "label_noise"),
    ({"dataset": "mnist1d", "model": "cnn"}, "image dataset"),
    ({"dataset": "adding", "model": "rnn", "activation": "gelu"}, "tanh or relu"),
    ({"dataset": "adding", "model": "lstm", "batchnorm": True}, "batchnorm"),
    ({"range_lr_min": 1.0, "range_lr_max": 0.1}, "range_lr_min"),
])
def test_combinations_that_cannot_run_are_refused(params, words):
    with pytest.raises(ValueError, match=words):
        TrialSpec(steps=10, **params)


def test_resolved_loss_and_task():
    assert TrialSpec(steps=1).loss_name == "ce" and TrialSpec(steps=1).task == "classification"
    assert TrialSpec(steps=1, dataset="adding").loss_name == "mse"
    assert TrialSpec(steps=1, dataset="adding", loss="mae").loss_name == "mae"


def test_revision_changes_the_id(monkeypatch):
    spec = TrialSpec(steps=100)
    before = spec.trial_id
    monkeypatch.setattr(trial, "TRAINING_REVISION", trial.TRAINING_REVISION + 1)
    assert TrialSpec(steps=100).trial_id != before  # a spec's id is computed once: a new spec under the new revision


def test_spec_round_trips_and_is_frozen():
    spec = TrialSpec(epochs=3, lr=0.5, activation="tanh")
    assert TrialSpec.from_dict(spec.to_dict()) == spec
    with pytest.raises(dataclasses.FrozenInstanceError):
        spec.lr = 1.0  # type: ignore[misc]


def test_budget_needs_exactly_one_of_epochs_and_steps():
    with pytest.raises(ValueError):
        TrialSpec()
    with pytest.raises(ValueError):
        TrialSpec(epochs=1, steps=1)


def test_record_round_trip():
    spec = TrialSpec(steps=5)
    rec = TrialRecord(trial_id=spec.trial_id, spec=spec.to_dict(), status=TrialStatus.DIVERGED, diverged_step=3,
                      grad_norms_init=[0.5, 1.0], range_curve=[{"lr": 1e-3, "loss": 2.3, "smoothed": 2.3}])
    again = TrialRecord.from_dict(rec.to_dict())
    assert again == rec and again.status is TrialStatus.DIVERGED
    assert not TrialStatus.FAILED.is_final() and TrialStatus.DIVERGED.is_final()
