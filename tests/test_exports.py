"""Data out: the report writes verdicts.json and the three Parquet frames beside it; load_verdicts reads them."""

from __future__ import annotations

import copy
import dataclasses
import json

import pandas as pd
import pytest

import claimbench
from claimbench.api import evaluate_run
from claimbench.report import write_report
from claimbench.report.exports import VERDICTS_NAME, read_verdicts
from claimbench.store import RunStore
from claimbench.suite import expand, parse_suite
from tests.test_report import RAW, fake_record


def _with_curves(record):
    """The fake record with a learning curve (3 evaluations) and, for seed 0, a range-test sweep."""
    if record.status.value != "completed":
        return record
    acc = record.metrics["val_acc"]
    curve = [{"step": s, "examples": s * record.spec["batch_size"], "val_acc": acc * f, "val_loss": 1 - acc * f}
             for s, f in ((0, 0.2), (10, 0.7), (20, 1.0))]
    sweep = [{"lr": lr, "loss": 2.0 - lr, "smoothed": 2.0 - lr} for lr in (0.001, 0.01, 0.1)] \
        if record.spec["seed"] == 0 else []
    return dataclasses.replace(record, curve=curve, range_curve=sweep)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("exports")
    suite = parse_suite(copy.deepcopy(RAW), "test.toml", "default")
    store = RunStore(out)
    store.init(suite, "claimbench run test.toml", {"python": "3", "git_sha": "x", "packages": {}})
    for spec in expand(suite):
        store.append(_with_curves(fake_record(spec)))
    write_report(out)
    return out


def test_report_writes_verdicts_and_frames_beside_it(run_dir):
    for name in ("report.html", VERDICTS_NAME, "trials.parquet", "curves.parquet", "range_curves.parquet"):
        assert (run_dir / name).is_file(), name
    doc = json.loads((run_dir / VERDICTS_NAME).read_text())
    assert doc["kind"] == "claimbench-verdicts" and doc["schema"] == 1
    results = evaluate_run(run_dir).results
    rows = doc["verdicts"]
    assert [r["claim_id"] for r in rows if r["level"] == "claim"] == [r.claim_id for r in results]
    assert sum(r["level"] == "stratum" for r in rows) == sum(len(r.strata) for r in results) > 0
    for row in rows:
        assert row["verdict"] in ("supported", "refuted", "inconclusive")
        assert row["unit"] and row["method"]
        if row["level"] == "claim":
            assert row["adjusted_verdict"] in ("supported", "refuted", "inconclusive")
        if row["effect"] is not None and row["ci_low"] is not None:
            assert row["ci_low"] <= row["ci_high"]


def test_frames_hold_the_records(run_dir):
    trials = pd.read_parquet(run_dir / "trials.parquet")
    curves = pd.read_parquet(run_dir / "curves.parquet")
    ranges = pd.read_parquet(run_dir / "range_curves.parquet")
    completed = trials[trials["status"] == "completed"]
    assert len(curves) == 3 * len(completed) and set(curves["trial_id"]) == set(completed["trial_id"])
    assert list(ranges.columns[:5]) == ["trial_id", "seed", "lr", "loss", "smoothed"]
    assert len(ranges) == 3 * int((completed["seed"] == 0).sum()) and set(ranges["seed"]) == {0}


def test_load_verdicts_reads_the_file_or_evaluates(run_dir, tmp_path):
    df = claimbench.load_verdicts(run_dir)
    assert {"claim_id", "level", "verdict", "adjusted_verdict", "effect", "unit", "ci_low", "ci_high",
            "p_supported", "p_refuted", "n_seeds", "detectable"} <= set(df.columns)
    assert len(df) == len(read_verdicts(run_dir))
    (run_dir / VERDICTS_NAME).rename(tmp_path / "saved.json")
    try:
        fresh = claimbench.load_verdicts(run_dir)  # no file: the run dir is evaluated
    finally:
        (tmp_path / "saved.json").rename(run_dir / VERDICTS_NAME)
    pd.testing.assert_frame_equal(fresh[["claim_id", "verdict", "effect"]], df[["claim_id", "verdict", "effect"]])


def test_a_foreign_verdicts_file_is_a_user_error(tmp_path):
    from claimbench.errors import StoreError
    (tmp_path / VERDICTS_NAME).write_text('{"kind": "something else"}')
    with pytest.raises(StoreError, match="not a claimbench verdicts file"):
        read_verdicts(tmp_path)
