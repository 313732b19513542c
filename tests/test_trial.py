"""TrialSpec ids: stable across processes, sensitive to every field and to the training revision."""

from __future__ import annotations

import dataclasses
import subprocess
import sys

import pytest

from claimbench import trial
from claimbench.trial import TrialRecord, TrialSpec, TrialStatus

# The id of the default spec with steps=100. If this changes, every stored
# result is orphaned: change it only together with TRAINING_REVISION.
GOLDEN_ID = TrialSpec(steps=100).trial_id


def test_id_is_stable_across_processes():
    code = "from claimbench.trial import TrialSpec; print(TrialSpec(steps=100).trial_id)"
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
    changed = dataclasses.replace(base, **{field: new}, **extra)
    assert changed.trial_id != base.trial_id


def test_revision_changes_the_id(monkeypatch):
    spec = TrialSpec(steps=100)
    before = spec.trial_id
    monkeypatch.setattr(trial, "TRAINING_REVISION", trial.TRAINING_REVISION + 1)
    assert spec.trial_id != before


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
    rec = TrialRecord(trial_id=spec.trial_id, spec=spec.to_dict(), status=TrialStatus.DIVERGED, diverged_step=3)
    again = TrialRecord.from_dict(rec.to_dict())
    assert again == rec and again.status is TrialStatus.DIVERGED
    assert not TrialStatus.FAILED.is_final() and TrialStatus.DIVERGED.is_final()
