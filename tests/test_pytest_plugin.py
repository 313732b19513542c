"""The pytest plugin (claimbench/pytest_plugin.py, entry point pytest11): each claim of a suite is a test item
that passes, fails or skips with `claimbench check`'s line for it."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.conftest import TINY_SUITE

pytest_plugins = ["pytester"]

SUITE = TINY_SUITE.replace("[tiers.smoke]", """[tiers.ci]
seeds = 2
axes = { batch_size = [4, 64] }

[tiers.smoke]""").replace('params = { axis = "batch_size", low = 2, high = 32 }',
                          'params = { axis = "batch_size", low = 2, high = 32 }\ncheck = { gate = "decided" }')


def test_each_claim_is_an_item_gated_like_check(pytester, tmp_path):
    suite = tmp_path / "tiny.toml"
    suite.write_text(SUITE)
    baseline = tmp_path / "baseline.json"
    made = subprocess.run([sys.executable, "-m", "claimbench", "baseline", str(suite), "--tier", "ci", "-o",
                           str(baseline), "--executor", "local", "--out", str(tmp_path / "base"), "--quiet"],
                          capture_output=True, text=True, timeout=300)
    assert made.returncode == 0, made.stderr
    args = ("-p", "no:xdist", "-p", "no:cacheprovider", "--claimbench", str(suite),
            "--claimbench-baseline", str(baseline), "--claimbench-out", str(tmp_path / "runs"))
    result = pytester.runpytest_subprocess(*args, "-v")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["*claimbench::tiny::B2 PASSED*", "*claimbench::tiny::B3 PASSED*"])
    # the baseline says B2 was decided the other way: the gate (decided) fails its item, with check's line
    data = json.loads(baseline.read_text())
    entry = data["suites"]["tiny"]["ci"]["claims"]["B2"]
    entry["verdict"] = "refuted" if entry["verdict"] != "refuted" else "supported"
    baseline.write_text(json.dumps(data))
    failed = pytester.runpytest_subprocess(*args)
    failed.assert_outcomes(passed=1, failed=1)
    failed.stdout.fnmatch_lines(["*tiny/B2*"])


def test_without_a_baseline_it_is_a_usage_error(pytester, tmp_path):
    suite = tmp_path / "tiny.toml"
    suite.write_text(SUITE)
    result = pytester.runpytest_subprocess("-p", "no:xdist", "--claimbench", str(suite))
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--claimbench-baseline*"])
