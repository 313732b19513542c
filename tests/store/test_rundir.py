"""The run directory: atomic records, resume, schema versions, frames, Parquet."""

from __future__ import annotations

import json

import pandas as pd
import pytest

import claimbench
from claimbench.api import run_suite
from claimbench.errors import StoreError
from claimbench.report.exports import write_exports
from claimbench.store.rundir import RunStore
from claimbench.suite import expand, load_suite, recorded_suite
from claimbench.trial import TrialRecord, TrialStatus
from tests.conftest import TINY_SUITE


@pytest.fixture
def finished_run(tiny_suite_path, tmp_path):
    suite = load_suite(tiny_suite_path)
    run_dir = tmp_path / "run"
    summary = run_suite(suite, run_dir, executor="local", progress=False)
    return suite, run_dir, summary


def test_run_stores_one_record_per_trial(finished_run):
    suite, run_dir, summary = finished_run
    specs = expand(suite)
    assert summary.trained == summary.total == len(specs)
    files = sorted(p.stem for p in (run_dir / "trials").glob("*.json"))
    assert files == sorted(s.trial_id for s in specs)
    assert not list((run_dir / "trials").glob(".*"))  # no temporary files left behind
    assert summary.counts.get("diverged", 0) > 0  # lr = 100 diverges: recorded, not raised


def test_rerun_trains_only_missing_and_failed(finished_run):
    suite, run_dir, _ = finished_run
    store = RunStore(run_dir)
    specs = expand(suite)
    for spec in specs[:3]:
        (run_dir / "trials" / f"{spec.trial_id}.json").unlink()
    store.append(TrialRecord.failed(specs[3], "simulated worker loss"))
    again = run_suite(suite, run_dir, executor="local", progress=False)
    assert again.trained == 4
    records = store.records()
    assert len(records) == len(specs) and len({r.trial_id for r in records}) == len(specs)
    assert all(r.status is not TrialStatus.FAILED for r in records)
    assert run_suite(suite, run_dir, executor="local", progress=False).trained == 0


def test_load_results_frame(finished_run):
    suite, run_dir, _ = finished_run
    frame = claimbench.load_results(run_dir)
    assert len(frame) == len(expand(suite))
    for col in ("trial_id", "batch_size", "lr", "seed", "status", "test_acc", "val_acc", "diverged_step", "budget"):
        assert col in frame.columns
    diverged = frame[frame.status == "diverged"]
    assert diverged["test_acc"].isna().all() and diverged["diverged_step"].notna().all()
    assert frame[frame.status == "completed"]["test_acc"].notna().all()


def test_frame_ignores_records_outside_the_current_suite(finished_run, write_suite):
    suite, run_dir, _ = finished_run
    smaller = load_suite(write_suite(TINY_SUITE.replace("values = [4, 16, 64]", "values = [4, 16]"), "s2.toml"))
    assert run_suite(smaller, run_dir, executor="local", progress=False).trained == 0
    assert set(claimbench.load_results(run_dir)["batch_size"]) == {4, 16}
    assert len(RunStore(run_dir).records()) == len(expand(suite))  # nothing was deleted


def test_parquet_export(finished_run):
    _, run_dir, _ = finished_run
    written = write_exports(run_dir, claimbench.evaluate_run(run_dir))  # what every report writes beside it
    trials, curves = (next(p for p in written if p.name == name) for name in ("trials.parquet", "curves.parquet"))
    t, c = pd.read_parquet(trials), pd.read_parquet(curves)
    assert len(t) == len(claimbench.load_results(run_dir))
    assert {"trial_id", "step", "val_loss", "test_acc"} <= set(c.columns)
    assert set(c["trial_id"]) == set(t["trial_id"])


def test_run_json_keeps_the_suite_as_json_and_the_suite_layer_reads_it_back(finished_run):
    suite, run_dir, _ = finished_run
    info = RunStore(run_dir).info()
    assert info.suite == json.loads(json.dumps(suite.to_dict(), default=str)) and info.path == run_dir / "run.json"
    again = recorded_suite(info)
    assert again.name == suite.name and [s.trial_id for s in expand(again)] == [s.trial_id for s in expand(suite)]
    info.suite = {**info.suite, "axes": 3}
    with pytest.raises(StoreError, match="run.json's suite is malformed"):
        recorded_suite(info)


def test_missing_and_foreign_run_dirs(tmp_path):
    with pytest.raises(StoreError, match="run directory not found"):
        RunStore(tmp_path / "nope").info()
    (tmp_path / "empty").mkdir()
    with pytest.raises(StoreError, match="no run.json"):
        RunStore(tmp_path / "empty").info()


def test_other_schema_is_refused_with_a_fix(finished_run):
    _, run_dir, _ = finished_run
    meta = json.loads((run_dir / "run.json").read_text())
    meta["schema"] = 999
    (run_dir / "run.json").write_text(json.dumps(meta))
    with pytest.raises(StoreError, match="schema 999.*fix: rerun"):
        RunStore(run_dir).info()


def test_old_record_schema_is_refused(finished_run):
    _, run_dir, _ = finished_run
    path = next((run_dir / "trials").glob("*.json"))
    data = json.loads(path.read_text())
    data["schema"] = 0
    path.write_text(json.dumps(data))
    with pytest.raises(StoreError, match=path.name):
        RunStore(run_dir).records()


def test_a_run_dir_of_another_suite_is_refused(finished_run, write_suite):
    _, run_dir, _ = finished_run
    other = load_suite(write_suite(TINY_SUITE.replace('name = "tiny"', 'name = "other"'), "other.toml"))
    with pytest.raises(StoreError, match="holds a run of suite 'tiny'"):
        run_suite(other, run_dir, executor="local", progress=False)


def test_a_killed_writers_temporary_files_are_swept_when_the_lock_is_taken(tmp_path):
    """A driver killed inside an atomic write leaves a hidden .NAME.*.tmp: the next writer removes it."""
    store = RunStore(tmp_path / "run")
    (tmp_path / "run" / "trials").mkdir(parents=True)
    (tmp_path / "run" / "run.json").write_text("{}")
    leftover = tmp_path / "run" / "trials" / ".abc.json.x1y2.tmp"
    leftover.write_text('{"half": ')
    record = tmp_path / "run" / "trials" / "abc.json"
    record.write_text("{}")
    store.open_for_writing()
    try:
        assert not leftover.exists() and record.exists()
    finally:
        store.release()
