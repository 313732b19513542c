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
from claimbench.store.rundir import RunStore
from claimbench.suite import expand, parse_suite
from tests.report.test_html import RAW, fake_record


def _with_curves(record):
    """The fake record with a learning curve (3 evaluations) and, for seed 0, a range-test sweep."""
    if record.status.value != "completed":
        return record
    acc = record.metrics["val_acc"]
    curve = [{"step": s, "examples": s * record.spec["batch_size"], "val_acc": acc * f, "test_acc": acc * f,
              "val_loss": 1 - acc * f}
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
    write_report(out, evaluate_run(out))
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


def test_report_draws_learning_curves_of_the_selected_trials(run_dir):
    from claimbench.report.figures import figures_for
    evaluation = evaluate_run(run_dir)
    claim = next(c for c in evaluation.suite.claims if c.id == "B2")
    result = next(r for r in evaluation.results if r.claim_id == "B2")
    figures = {f.title: f for f in figures_for(claim, result, evaluation)}
    # B2 reads test_acc; the test split is evaluated only where something reads it, so the curves are val_acc's
    assert "learning curves (val_acc)" in figures and "learning curves (test_acc)" not in figures
    svg = figures["learning curves (val_acc)"].svg
    # one line per batch size in the legend, and the curves' steps on the x axis
    for level in (4, 16, 64, 256):
        assert f"batch_size={level}" in svg
    assert "Learning curves (val_acc)" in (run_dir / "report.html").read_text()
    # a claim without selected trials (B3's statistic is a width, not a trial's metric) gets none
    b3 = next(r for r in evaluation.results if r.claim_id == "B3")
    assert not any(p.selected for p in (b3.strata or [b3]))


def test_range_sweep_marks_the_suggestion_and_the_grid_best():
    from types import SimpleNamespace

    from claimbench.claims import KINDS, Claim
    from claimbench.claims.base import ClaimResult
    from claimbench.report.figures.curves import range_sweep_figure
    params = KINDS["ratio_in_range"].resolve_params({
        "num": {"quantity": "mean:range_suggested_lr", "where": {"kind": "range_test"}},
        "den": {"quantity": "argbest:lr", "where": {"kind": "train"}}, "low": 0.5, "high": 2.0})
    claim = Claim("L1", "ratio_in_range", "8", "range test", params)
    result = ClaimResult(claim_id="L1", kind="ratio_in_range", verdict="inconclusive", statistic="", effect=None,
                         ci=None, n_seeds=2, n_trials=4, method="", summary="",
                         data=[{"seed": 0, "num": 0.05, "den": 0.1, "ratio": 0.5},
                               {"seed": 1, "num": 0.04, "den": 0.1, "ratio": 0.4}])
    sweeps = pd.DataFrame([{"trial_id": f"r{s}", "seed": s, "lr": lr, "loss": 2 - lr, "smoothed": 2 - lr}
                           for s in (0, 1) for lr in (0.001, 0.01, 0.1, 1.0)])
    frame = pd.DataFrame({"trial_id": ["r0", "r1"], "seed": [0, 1], "range_suggested_lr": [0.05, 0.04]})
    evaluation = SimpleNamespace(frame=frame, range_curves=lambda: sweeps)
    figure = range_sweep_figure(claim, result, evaluation)
    assert figure is not None and "seed 0" in figure.svg and "suggested LR" in figure.svg
    other = Claim("X", "ratio_in_range", "8", "no range test", KINDS["ratio_in_range"].resolve_params(
        {"num": {"quantity": "argbest:lr"}, "den": {"quantity": "min_diverging:lr"}, "low": 0.1, "high": 1.0}))
    assert range_sweep_figure(other, result, evaluation) is None
