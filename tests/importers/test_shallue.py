"""The importer of Shallue et al.'s released data (google-research/batch_science): the release layout read into a
trial frame, the critical_batch fit and its figures on it, and its errors."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path
from types import SimpleNamespace

import pytest

from claimbench.errors import UserError
from claimbench.importers.shallue import load_study, load_workload, published_result, tuned_columns
from claimbench.report.figures import critical_batch_figures

FIXTURE = Path(__file__).parents[1] / "fixtures" / "shallue" / "mnist" / "simple_cnn" / "nesterov_momentum"


def test_importer_reads_the_release_layout():
    frame = load_workload(FIXTURE, target=0.05)
    assert sorted(frame["batch_size"].unique()) == [8, 16, 32, 64, 128, 256]
    assert set(frame["status"]) == {"completed", "diverged"}
    fastest = frame[frame["trial_id"] == "8-0"].iloc[0]
    # the fixture's fastest trial crosses the target (strictly below 0.05) at S(8) = 100 + 6400 / 8
    assert fastest["steps_to_target"] == 900 and fastest["examples_to_target"] == 7200 and fastest["lr"] == 0.01
    assert frame.loc[frame["status"] == "diverged", "steps_to_target"].isna().all()
    assert tuned_columns(frame) == ["lr", "momentum"]
    assert len(load_study(FIXTURE / "64", target=0.05)) == 3


def test_the_same_fit_runs_on_published_data():
    claim, result = published_result(load_workload(FIXTURE, target=0.05))
    estimates = {r["estimate"]: r["value"] for r in result.data if "estimate" in r}
    assert next(v for k, v in estimates.items() if k.startswith("critical batch")) == pytest.approx(64, rel=0.05)
    assert next(v for k, v in estimates.items() if k.startswith("exponent")) == pytest.approx(1.0, abs=0.01)
    assert result.verdict == "inconclusive" and "1 seed" in result.summary  # one run per configuration: no CI
    figures = critical_batch_figures(claim, result, SimpleNamespace(frame=load_workload(FIXTURE, target=0.05)))
    assert len(figures) == 3  # no noise scale in the release
    for f in figures:
        ET.fromstring(f.svg)


def test_importer_errors_name_the_file_and_the_fix(tmp_path):
    with pytest.raises(UserError, match="no study directories"):
        load_workload(tmp_path, target=0.05)
    study = tmp_path / "32"
    (study / "0").mkdir(parents=True)
    (study / "study.json").write_text(json.dumps({"batch_size": 32}))
    (study / "0" / "metadata.json").write_text(json.dumps({"status": "COMPLETE", "trial_id": 0, "steps": 10}))
    (study / "0" / "measurements.csv").write_text("step,val/cross_entropy_error\n0,2.3\n")
    with pytest.raises(UserError, match=r"measurements.csv: no column 'val/classification_error'.*fix: pass metric="):
        load_workload(tmp_path, target=0.05)
    (study / "0" / "metadata.json").write_text("{not json")
    with pytest.raises(UserError, match=r"metadata.json: unreadable JSON"):
        load_study(study, target=0.05)
