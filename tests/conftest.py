"""Shared fixtures: tiny suites that train in well under a second per trial."""

from __future__ import annotations

import os
import resource
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from claimbench.store.lock import LOCK_FILE

TINY_SUITE = """
[suite]
name = "tiny"
title = "Tiny batch-size suite"
seeds = 2

[workload]
dataset = "teacher"
n_samples = 600
depth = 1
width = 16

[train]
optimizer = "sgd"
momentum = 0.9
evals = 3

[budget]
steps = 30

[axes.batch_size]
role = "scientific"
values = [4, 16, 64]

[axes.lr]
role = "nuisance"
values = [0.01, 0.1, 100.0]

[tiers.smoke]
seeds = 1
axes = { batch_size = [4, 64] }

[[claims]]
id = "B2"
kind = "best_level_in_range"
faq_section = 6
paraphrase = "Small batches generalize best."
params = { axis = "batch_size", low = 2, high = 32 }

[[claims]]
id = "B3"
kind = "range_width_trend"
faq_section = 6
paraphrase = "Large batches narrow the stable LR range."
params = { axis = "batch_size", range_axis = "lr" }
"""


@pytest.fixture
def write_suite(tmp_path: Path):
    """Write TOML text (dedented) to a file and return its path."""

    def write(text: str = TINY_SUITE, name: str = "suite.toml") -> Path:
        path = tmp_path / name
        path.write_text(textwrap.dedent(text), encoding="utf-8")
        return path

    return write


@pytest.fixture
def tiny_suite_path(write_suite) -> Path:
    return write_suite()


@pytest.fixture(scope="module")
def cache():
    """One module's datasets, built once (claimbench.workloads.DataCache; shadows pytest's own ``cache``)."""
    from claimbench.workloads.data import DataCache

    return DataCache()


@pytest.fixture
def one_thread():
    """Trials on one torch thread, as a runner worker slot has: fast for tiny models, the same kernels every
    run, and on 2 shared cores a second thread only waits (runner/local.py). Modules that want it for every
    test say ``pytestmark = pytest.mark.usefixtures("one_thread")``."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def validate_suite():
    """Validates a raw suite table against the shipped JSON Schema, with the validator built once
    (``jsonschema.validate`` re-checks the schema itself on every call: seconds over the shipped suites)."""
    import jsonschema

    from claimbench.suite import json_schema

    schema = json_schema()
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema).validate


def cli(*args: str) -> tuple[int, str, str]:
    """Run the CLI in-process, as the console script does; (exit code, stdout, stderr). An exception other
    than SystemExit fails the calling test."""
    import contextlib
    import io

    from claimbench.cli import main

    out, err = io.StringIO(), io.StringIO()
    code = 0
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            main(list(args))
        except SystemExit as e:
            code = int(e.code or 0)
    return code, out.getvalue(), err.getvalue()


# ------------------------------------------------------------------ abuse: refusals through the CLI

#: A suite of 2 trials of a few steps: what abuse tests train (local executor).
MICRO = """
[suite]
name = "micro"
seeds = 1

[workload]
dataset = "teacher"
n_samples = 300
depth = 1
width = 8

[train]
evals = 1

[budget]
steps = 4

[axes.lr]
role = "nuisance"
values = [0.1, 100.0]
"""


def run_cli(*args: str, timeout: float = 120, env: dict | None = None,
            memory_gb: float = 6) -> subprocess.CompletedProcess:
    """The CLI as a process, under a time limit and an address-space limit."""
    def limit() -> None:
        size = int(memory_gb * 2**30)
        resource.setrlimit(resource.RLIMIT_AS, (size, size))

    return subprocess.run([sys.executable, "-m", "claimbench", *args], capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, **(env or {})}, preexec_fn=limit)


def files(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


def assert_refused(code: int, err: str, *expected: str) -> None:
    """Exit 2, one or two stderr lines, no traceback, each expected text in the error line."""
    lines = err.strip().splitlines()
    assert code == 2, err
    assert 1 <= len(lines) <= 2, err
    assert "Traceback" not in err
    assert lines[-1].startswith("claimbench: error: "), err
    for text in expected:
        assert text in lines[-1], lines[-1]


@pytest.fixture
def here(tmp_path, monkeypatch):
    """A scratch dir that is also the cwd (so that the default runs/ dir lands in it)."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A micro suite trained once into a run dir (copied by each test that damages it)."""
    root = tmp_path_factory.mktemp("trained")
    suite = write(root / "micro.toml", MICRO)
    code, out, err = cli("run", str(suite), "--executor", "local", "--out", str(root / "run"), "--quiet")
    assert code == 0, err
    return suite, root / "run"


@pytest.fixture
def run_copy(trained, tmp_path):
    suite, run = trained
    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    (copy / LOCK_FILE).unlink(missing_ok=True)
    return suite, copy


def records(run: Path) -> list[str]:
    return sorted(p.name for p in (run / "trials").glob("*.json"))
def one_line(code: int, err: str, *words: str) -> str:
    """Exit 2, one stderr line starting ``claimbench: error:``, no traceback, each word in it."""
    lines = err.strip().splitlines()
    assert code == 2, err
    assert len(lines) == 1 and lines[0].startswith("claimbench: error: "), err
    assert "Traceback" not in err
    for w in words:
        assert w in lines[0], (w, lines[0])
    return lines[0]


SMALL = TINY_SUITE.replace("seeds = 2", "seeds = 1").replace("values = [4, 16, 64]", "values = [4, 64]").replace(
    "values = [0.01, 0.1, 100.0]", "values = [0.01, 0.1]")


@pytest.fixture
def made_run(tmp_path):
    """A run dir of SMALL (4 trials) with made-up completed records, written by the store: no training."""
    from claimbench.store.rundir import RunStore
    from claimbench.suite import expand, load_suite
    from claimbench.trial import TrialRecord, TrialStatus

    suite_path = tmp_path / "small.toml"
    suite_path.write_text(textwrap.dedent(SMALL), encoding="utf-8")
    suite = load_suite(suite_path)
    store = RunStore(tmp_path / "run")
    store.init(suite, "claimbench run small.toml", {})
    for i, spec in enumerate(expand(suite)):
        store.append(TrialRecord(trial_id=spec.trial_id, spec=spec.to_dict(), status=TrialStatus.COMPLETED,
                                 metrics={"val_acc": 0.5 + i / 100, "test_acc": 0.5, "train_acc": 0.5,
                                          "val_loss": 1.0, "test_loss": 1.0, "train_loss": 1.0}, steps_done=30))
    store.release()
    return suite_path, store.dir
