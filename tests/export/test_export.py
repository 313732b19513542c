"""claimbench export mlflow|tensorboard on a tiny smoke run, read back through the libraries' own readers."""

from __future__ import annotations

import sys

import pytest

from tests.conftest import cli
from claimbench.store.rundir import RunStore
from claimbench.trial import TrialStatus

mlflow = pytest.importorskip("mlflow")
pytest.importorskip("tensorboard")




@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """The tiny suite's smoke tier trained in-process (6 trials, some diverged), with its report."""
    from tests.conftest import TINY_SUITE

    here = tmp_path_factory.mktemp("export")
    (here / "suite.toml").write_text(TINY_SUITE, encoding="utf-8")
    code, out, err = cli("run", str(here / "suite.toml"), "--tier", "smoke", "--executor", "local",
                         "--out", str(here / "run"), "--quiet")
    assert code == 0, err
    return here / "run"


@pytest.fixture(scope="module")
def records(run_dir):
    rs = RunStore(run_dir).records()
    assert {r.status for r in rs} >= {TrialStatus.COMPLETED, TrialStatus.DIVERGED}
    return {r.trial_id: r for r in rs}


def test_mlflow_export_reads_back_one_run_per_trial(run_dir, records, tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_ALLOW_FILE_STORE", raising=False)  # the export allows its own file store
    store = tmp_path / "mlruns"
    code, out, err = cli("export", "mlflow", str(run_dir), "--tracking-uri", str(store), "--experiment", "tiny")
    assert code == 0, err
    assert "6 trial runs" in out and "report.html, verdicts.json" in out
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")  # to read it back
    uri = store.resolve().as_uri()
    client = mlflow.MlflowClient(tracking_uri=uri)
    mlflow.set_tracking_uri(uri)
    try:
        runs = mlflow.search_runs(experiment_names=["tiny"], output_format="list")
    finally:
        mlflow.set_tracking_uri(None)
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    children = [r for r in runs if "mlflow.parentRunId" in r.data.tags]
    assert len(parents) == 1 and len(children) == len(records)
    parent = parents[0].info.run_id
    assert {a.path for a in client.list_artifacts(parent)} == {"report.html", "verdicts.json"}
    for run in children:
        tags, got = run.data.tags, run.data
        record = records[tags["claimbench.trial_id"]]
        assert tags["mlflow.parentRunId"] == parent and tags["claimbench.status"] == record.status.value
        assert run.info.status == "FINISHED"
        assert got.params["trial_id"] == record.trial_id
        assert float(got.params["lr"]) == record.spec["lr"] and int(got.params["batch_size"]) == record.spec["batch_size"]
        history = client.get_metric_history(run.info.run_id, "val_loss")
        assert [(m.step, m.value) for m in sorted(history, key=lambda m: m.step)] == \
            [(p["step"], pytest.approx(p["val_loss"])) for p in record.curve]
        if record.status is TrialStatus.COMPLETED:
            assert got.metrics["final/test_acc"] == pytest.approx(record.metrics["test_acc"])
            assert [m.step for m in client.get_metric_history(run.info.run_id, "val_acc")] == \
                [p["step"] for p in record.curve]
        else:  # diverged: nothing filled in, the reason kept
            assert "final/test_acc" not in got.metrics and tags["claimbench.divergence_reason"]
            assert got.metrics["final/diverged_step"] == record.diverged_step


def test_tensorboard_export_reads_back_and_replaces_on_rerun(run_dir, records, tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    logdir = tmp_path / "tb"
    for _ in range(2):  # a second export replaces the first's event files: no curve drawn twice
        code, out, err = cli("export", "tensorboard", str(run_dir), "--logdir", str(logdir))
        assert code == 0, err
    subdirs = sorted(p for p in (logdir / "tiny").iterdir())
    assert len(subdirs) == len(records)
    for sub in subdirs:
        assert len(list(sub.glob("events.out.tfevents.*"))) == 1
        record = next(r for tid, r in records.items() if sub.name.endswith(tid[:12]))
        assert f"lr={record.spec['lr']:g}" in sub.name
        acc = EventAccumulator(str(sub))
        acc.Reload()
        loss = acc.Scalars("val_loss")
        assert [e.step for e in loss] == [p["step"] for p in record.curve]
        assert [e.value for e in loss] == pytest.approx([p["val_loss"] for p in record.curve], rel=1e-6)
        if record.status is TrialStatus.COMPLETED:
            assert acc.Scalars("final/test_acc")[0].value == pytest.approx(record.metrics["test_acc"], rel=1e-6)
        else:
            assert "final/test_acc" not in acc.Tags()["scalars"]


def test_bad_input_is_one_line_before_any_work(run_dir, tmp_path, monkeypatch):
    code, _, err = cli("export", "mlflow", str(tmp_path / "nope"))
    assert code == 2 and "run directory not found" in err and len(err.strip().splitlines()) == 1
    (tmp_path / "damaged").mkdir()
    (tmp_path / "damaged" / "run.json").write_text("{not json", encoding="utf-8")
    code, _, err = cli("export", "tensorboard", str(tmp_path / "damaged"))
    assert code == 2 and "run.json is not valid JSON" in err
    a_file = tmp_path / "file"
    a_file.write_text("x", encoding="utf-8")
    code, _, err = cli("export", "tensorboard", str(run_dir), "--logdir", str(a_file / "tb"))
    assert code == 2 and "--logdir" in err and not (a_file.parent / "tb").exists()
    code, _, err = cli("export", "mlflow", str(run_dir), "--tracking-uri", str(a_file))
    assert code == 2 and "--tracking-uri" in err and "not a directory" in err


@pytest.mark.parametrize("command,module", [("mlflow", "mlflow"), ("tensorboard", "tensorboard")])
def test_a_missing_library_names_the_extra(run_dir, tmp_path, monkeypatch, command, module):
    monkeypatch.setitem(sys.modules, module, None)  # import fails as if it were not installed
    flag = "--tracking-uri" if command == "mlflow" else "--logdir"
    code, _, err = cli("export", command, str(run_dir), flag, str(tmp_path / "out"))
    assert code == 2 and "pip install 'claimbench[export]'" in err and len(err.strip().splitlines()) == 1
