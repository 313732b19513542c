"""Abuse of the command line: an output path that cannot be written, an inherited RAY_ADDRESS, a
hand-made group.json. Each refusal is one line and exit 2, and writes nothing."""

from __future__ import annotations

import json
import os

import pytest

from claimbench.cli.prepare import ray_address
from claimbench.suite import load_suite
from tests.check.test_abuse import baseline_data
from tests.conftest import assert_refused, cli, files, records, write


def test_every_output_path_that_cannot_be_written_is_one_line(here, run_copy):
    suite, run = run_copy
    (here / "adir").mkdir()
    (here / "afile").write_text("x")
    baseline = write(here / "b.json", json.dumps(baseline_data(load_suite(suite, "default"))))
    cases = [
        (["report", str(run), "-o", str(here / "adir")], "is a directory"),
        (["report", str(run), "-o", str(here / "missing" / "r.html")], "does not exist"),
        (["report", str(run), "-o", str(here / "afile" / "r.html")], "is a file"),
        (["schema", "-o", str(here / "missing" / "s.json")], "does not exist"),
        (["schema", "-o", str(here / "adir")], "is a directory"),
        (["check", str(suite), "--tier", "default", "--baseline", str(baseline), "--executor", "local",
          "--out", str(here / "o"), "--junit", str(here / "adir")], "--junit"),
        (["check", str(suite), "--tier", "default", "--baseline", str(baseline), "--executor", "local",
          "--out", str(here / "o"), "--markdown", str(here / "missing" / "s.md")], "--markdown"),
        (["check", str(suite), "--tier", "default", "--baseline", str(baseline), "--executor", "local",
          "--out", str(here / "afile")], "--out"),
        (["baseline", str(suite), "--tier", "default", "-o", str(here / "adir"), "--executor", "local",
          "--out", str(here / "o")], "is a directory"),
        (["run", str(suite), "--executor", "local", "--out", str(here / "afile")], "--out"),
    ]
    before = files(here)
    for args, expected in cases:
        code, _, err = cli(*args)
        assert_refused(code, err, expected)
    assert files(here) == before and len(records(run)) == 2


@pytest.mark.parametrize("address, job, kept", [(None, None, False), ("auto", None, True), (None, "job-1", True),
                                                ("10.0.0.1:6379", None, False)])
def test_an_inherited_ray_address_is_used_only_when_asked(monkeypatch, capsys, address, job, kept):
    monkeypatch.setenv("RAY_ADDRESS", "10.9.9.9:6379")
    if job:
        monkeypatch.setenv("RAY_JOB_ID", job)
    else:
        monkeypatch.delenv("RAY_JOB_ID", raising=False)
    ray_address("ray", address)
    assert (os.environ.get("RAY_ADDRESS") == "10.9.9.9:6379") is kept
    err = capsys.readouterr().err
    assert ("RAY_ADDRESS=10.9.9.9:6379 is set but ignored" in err) is (address is None and not job)
    monkeypatch.setenv("RAY_ADDRESS", "10.9.9.9:6379")
    ray_address("local", None)  # the local executor never looks at it
    assert os.environ.get("RAY_ADDRESS") == "10.9.9.9:6379"


@pytest.mark.parametrize("content", ["[" * 100000 + "]" * 100000, '{"schema": 1, "suites": ["../../etc"]}',
                                     '{"schema": 1, "suites": [3]}', "{bad"])
def test_a_hand_made_group_json_is_one_line(here, content):
    (here / "g").mkdir()
    (here / "g" / "group.json").write_text(content)
    before = files(here)
    code, _, err = cli("report", str(here / "g"))
    assert_refused(code, err)
    assert files(here) == before
