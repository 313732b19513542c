"""Shared fixtures: tiny suites that train in well under a second per trial."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

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
