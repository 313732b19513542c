"""End to end through the CLI on the embedded Ray: report, idempotent rerun, SIGKILL and resume."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from claimbench.suite import expand, load_suite
from tests.conftest import TINY_SUITE

pytestmark = [pytest.mark.slow, pytest.mark.ray]


def claimbench(*args, timeout=300):
    return subprocess.run([sys.executable, "-m", "claimbench", *args], capture_output=True, text=True,
                          timeout=timeout)


def verdict_lines(stdout: str) -> list[str]:
    return [line.split()[0:2] for line in stdout.splitlines() if re.match(r"\s+B\d\s", line)]


def test_run_report_and_idempotent_rerun(tiny_suite_path, tmp_path):
    out = tmp_path / "run"
    first = claimbench("run", str(tiny_suite_path), "--out", str(out), "--quiet")
    assert first.returncode == 0, first.stderr
    report = out / "report.html"
    assert report.is_file() and f"report: {report}" in first.stdout
    verdicts = verdict_lines(first.stdout)
    assert [v[0] for v in verdicts] == ["B2", "B3"]
    assert all(v[1] in ("supported", "refuted", "inconclusive") for v in verdicts)
    html = report.read_text()
    assert "B2" in html and "B3" in html

    again = claimbench("run", str(tiny_suite_path), "--out", str(out), "--quiet")
    assert again.returncode == 0, again.stderr
    assert "trained 0 trials" in again.stdout
    assert verdict_lines(again.stdout) == verdicts

    rebuilt = claimbench("report", str(out), "-o", str(tmp_path / "r.html"))
    assert rebuilt.returncode == 0 and (tmp_path / "r.html").is_file()
    assert (out / "trials.parquet").is_file() and (out / "curves.parquet").is_file()


def test_sigkill_midway_then_rerun_has_every_trial_once(write_suite, tmp_path):
    slow = TINY_SUITE.replace("steps = 30", "steps = 600").replace("values = [0.01, 0.1, 100.0]",
                                                                    "values = [0.01, 0.03, 0.1, 0.3, 100.0]")
    path = write_suite(slow)
    expected = {s.trial_id for s in expand(load_suite(path))}
    out = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, "-m", "claimbench", "run", str(path), "--out", str(out),
                             "--quiet", "--pack-size", "1"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    trials = out / "trials"
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and proc.poll() is None:
        if trials.is_dir() and len(list(trials.glob("*.json"))) >= 4:
            break
        time.sleep(0.05)
    assert proc.poll() is None, "the run finished before it could be killed: make the suite slower"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    done_before = {p.stem for p in trials.glob("*.json")}
    assert 4 <= len(done_before) < len(expected)

    rerun = claimbench("run", str(path), "--out", str(out), "--quiet")
    assert rerun.returncode == 0, rerun.stderr
    trained = int(re.search(r"trained (\d+) trials", rerun.stdout).group(1))
    assert trained == len(expected) - len(done_before)
    files = [p.stem for p in trials.glob("*.json")]
    assert sorted(files) == sorted(expected)  # every trial exactly once
