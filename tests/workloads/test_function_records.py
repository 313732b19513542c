"""Records that tell the truth about a user's training loop: the settings a training function does not read
are not applicable (never their defaults) in its records, frames, report and MLflow export; the LR, epoch and
metrics it reports are its curve's. The loop is ``recipe_loop.py`` (AdamW, warmup and cosine, its own
clipping), installed here as a package through a dist-info folder (children get it through PYTHONPATH)."""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

import pytest
import torch

from claimbench.analysis.frames import curve_frame, trial_frame
from claimbench.runner.base import Ledger
from claimbench.store.rundir import RunStore
from claimbench.train.policy.function import Context
from claimbench.train.policy.plan import Plan
from claimbench.train.policy.state import TrialState
from claimbench.trial import NOT_APPLICABLE, TrialRecord, TrialStatus
from claimbench.workloads import registry
from claimbench.workloads.builtin import TrialSpec
from tests.conftest import cli

HERE = Path(__file__).parent

SUITE = """
[suite]
name = "loopy"
title = "A training function with its own loop"
seeds = 1

[workload]
name = "recipe.loop"

[train]
lr = 0.05
batch_size = 16
evals = 4

[budget]
steps = 24

[axes.tilt]
role = "scientific"
values = [0.0, 1.0]

[[claims]]
id = "T1"
kind = "paired_comparison"
params = { a = { tilt = 0.0 }, b = { tilt = 1.0 } }
"""


@pytest.fixture(scope="module")
def recipe(tmp_path_factory):
    """``recipe_loop.py`` installed as the package ``recipe_loop`` (workload ``recipe.loop``); the module."""
    root = tmp_path_factory.mktemp("pkg")
    shutil.copy(HERE / "recipe_loop.py", root / "recipe_loop.py")
    info = root / "recipe_loop-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: recipe-loop\nVersion: 1.0\n", encoding="utf-8")
    (info / "entry_points.txt").write_text("[claimbench.workloads]\nrecipe.loop = recipe_loop:WORKLOAD\n",
                                           encoding="utf-8")
    sys.path.insert(0, str(root))
    before = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(root), before]))
    assert "recipe.loop" in registry.installed()
    import recipe_loop

    yield recipe_loop
    sys.path.remove(str(root))
    sys.modules.pop("recipe_loop", None)
    registry._LOADED.pop("recipe.loop", None)
    if before is None:
        os.environ.pop("PYTHONPATH", None)
    else:
        os.environ["PYTHONPATH"] = before


@pytest.fixture(scope="module")
def run_dir(recipe, tmp_path_factory):
    here = tmp_path_factory.mktemp("loopy")
    (here / "suite.toml").write_text(SUITE, encoding="utf-8")
    code, out, err = cli("run", str(here / "suite.toml"), "--executor", "local", "--out", str(here / "run"), "--quiet")
    assert code == 0, err
    return here / "run"


@pytest.fixture(scope="module")
def records(run_dir):
    rs = RunStore(run_dir).records()
    assert len(rs) == 2 and all(r.status is TrialStatus.COMPLETED for r in rs), [r.error for r in rs]
    return rs


def test_settings_the_loop_does_not_read_are_not_applicable_in_records_and_frames(recipe, records, run_dir):
    unread = set(recipe.WORKLOAD.not_applicable)
    assert {"optimizer", "schedule", "clip", "momentum", "warmup_steps", "loss", "depth"} <= unread
    assert not unread & {"lr", "batch_size", "evals", "patience", "steps", "data_seed"}
    for r in records:
        assert set(r.not_applicable) == unread
        assert r.settings()["optimizer"] is None and r.settings(NOT_APPLICABLE)["schedule"] == NOT_APPLICABLE
        assert r.settings()["lr"] == 0.05 and r.settings()["batch_size"] == 16
        assert TrialSpec.from_dict(r.spec).trial_id == r.trial_id  # the spec, and so the id, is unchanged
        stored = json.loads((run_dir / "trials" / f"{r.trial_id}.json").read_text(encoding="utf-8"))
        assert set(stored["not_applicable"]) == unread
    frame = trial_frame(records)
    assert frame["optimizer"].isna().all() and frame["schedule"].isna().all() and frame["clip"].isna().all()
    assert (frame["lr"] == 0.05).all() and sorted(frame["tilt"]) == [0.0, 1.0]
    assert {"optimizer", "schedule", "clip"} <= set(frame.attrs["not_applicable"])
    report = (run_dir / "report.html").read_text(encoding="utf-8")
    assert "Not applicable" in report and "<code>optimizer</code>" in report and "<code>lr</code>" not in \
        report.split("Not applicable", 1)[1].split("</tr>", 1)[0]


def test_the_curve_holds_the_loops_own_lr_epoch_and_metrics(recipe, records):
    for r in records:
        steps = [p["step"] for p in r.curve]
        assert steps == [0, 6, 12, 18, 24]
        lrs = [p["lr"] for p in r.curve]
        assert lrs[0] == pytest.approx(recipe.lr_at(0, 0.05, 24))
        assert lrs[1:] == pytest.approx([recipe.lr_at(s - 1, 0.05, 24) for s in steps[1:]])
        assert max(lrs) > lrs[0] and lrs[-1] < max(lrs)  # warmup, then decay: not the constant base LR
        assert [p["epoch"] for p in r.curve] == pytest.approx([s * 16 / recipe.N_TRAIN for s in steps])
        assert "grad_norm" not in r.curve[0] and all(p["grad_norm"] > 0 for p in r.curve[1:])
        assert r.metrics["grad_norm"] == r.curve[-1]["grad_norm"]
        assert "lr" not in r.metrics and "epoch" not in r.metrics
    curves = curve_frame(records)
    assert {"lr", "epoch", "grad_norm"} <= set(curves.columns) and curves["lr"].nunique() > 2


def test_the_mlflow_export_shows_not_applicable_and_the_reported_curve(records, run_dir, tmp_path, monkeypatch):
    mlflow = pytest.importorskip("mlflow")
    monkeypatch.delenv("MLFLOW_ALLOW_FILE_STORE", raising=False)
    store = tmp_path / "mlruns"
    code, out, err = cli("export", "mlflow", str(run_dir), "--tracking-uri", str(store), "--experiment", "loopy")
    assert code == 0, err
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    uri = store.resolve().as_uri()
    client = mlflow.MlflowClient(tracking_uri=uri)
    experiment = client.get_experiment_by_name("loopy")
    runs = [r for r in client.search_runs([experiment.experiment_id]) if "mlflow.parentRunId" in r.data.tags]
    by_id = {r.trial_id: r for r in records}
    assert len(runs) == len(records)
    for run in runs:
        record, params = by_id[run.data.tags["claimbench.trial_id"]], run.data.params
        assert params["optimizer"] == params["schedule"] == params["clip"] == NOT_APPLICABLE
        assert float(params["lr"]) == 0.05 and int(params["batch_size"]) == 16
        for name in ("lr", "epoch", "grad_norm"):
            history = sorted(client.get_metric_history(run.info.run_id, name), key=lambda m: m.step)
            assert [(m.step, m.value) for m in history] == \
                [(p["step"], pytest.approx(p[name])) for p in record.curve if name in p]
        assert run.data.metrics["final/grad_norm"] == pytest.approx(record.metrics["grad_norm"])


def test_the_builtins_records_mark_nothing_and_store_as_before():
    spec = TrialSpec(dataset="teacher", steps=5)
    got: list[TrialRecord] = []
    ledger = Ledger([[spec]], got.append, {})
    ledger.done([spec], 1, [TrialRecord(trial_id=spec.trial_id, spec=spec.to_dict(), status=TrialStatus.COMPLETED)])
    assert got[0].not_applicable == [] and "not_applicable" not in got[0].to_dict()
    assert got[0].settings() == spec.to_dict()


def _context(steps: int = 4) -> tuple[TrialState, Context]:
    spec = TrialSpec(workload="x", dataset="", model="", steps=steps, evals=2)
    state = TrialState(spec, Plan.of_steps(spec, "classification"), spec.lr)
    return state, Context(state, {}, torch.device("cpu"))


def test_without_a_reported_lr_or_epoch_the_curve_has_none():
    state, ctx = _context()
    for step in ctx.eval_steps:
        ctx.report(step=step, train_loss=1.0, val_loss=1.0, val_acc=0.5)
    assert state.status is TrialStatus.COMPLETED
    assert all("lr" not in p and "epoch" not in p for p in state.curve)  # never the base LR, never budgets
    assert [p["examples"] for p in state.curve] == [s * state.spec.batch_size for s in ctx.eval_steps]


@pytest.mark.parametrize("kwargs, words", [
    ({"elapsed_s": 1.0}, "elapsed_s is a name claimbench's curve keeps"),
    ({"lr": "fast"}, "lr must be a number, got str"),
    ({"grad_norm": [1.0]}, "grad_norm must be a number, got list"),
])
def test_a_report_that_breaks_the_api_says_what(kwargs, words):
    _, ctx = _context()
    with pytest.raises(ValueError, match=words):
        ctx.report(step=0, train_loss=1.0, val_loss=1.0, val_acc=0.5, **kwargs)
