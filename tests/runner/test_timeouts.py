"""Every trial has a wall-clock limit, on both executors; a user's workload trains in a child process, so
that a training function that sleeps forever, calls sys.exit or segfaults is a failed record and the run
goes on. The workload is a package made here and found through its entry point, as any
installed one is: a dist-info folder on the path (children and Ray workers get it through PYTHONPATH)."""

from __future__ import annotations

import _thread
import json
import os
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from claimbench.api import run_suites
from claimbench.runner.local import LocalExecutor
from claimbench.runner.packs import make_packs
from claimbench.runner.timeouts import default_timeout, trial_timeouts
from claimbench.store.rundir import RunStore
from claimbench.suite import expand, load_suite
from claimbench.trial import TrialStatus
from claimbench.workloads import registry
from tests.conftest import TINY_SUITE, cli

PACKAGE = '''
"""A training function that does what its ``mode`` says: trains (a few cheap reports), sleeps forever,
exits with code 3 or segfaults."""
import ctypes
import sys
import time

from claimbench.workloads.spec import Param, Workload


def train(params, ctx):
    mode = params["mode"]
    if mode == "sleep":
        time.sleep(10 ** 6)
    elif mode == "exit":
        sys.exit(3)
    elif mode == "segv":
        ctypes.string_at(0)
    for step in ctx.eval_steps:
        acc = 0.5 + 0.01 * step / max(ctx.eval_steps)
        ctx.report(step=step, train_loss=1.0, val_loss=1.0, val_acc=acc, test_acc=acc)


WORKLOAD = Workload(name="hangs", task="classification", train=train,
                    params=(Param("mode", str, "ok", choices=("ok", "sleep", "exit", "segv"),
                                  help="what the loop does"),))
'''

SUITE = """
[suite]
name = "hanging"
seeds = 1

[workload]
name = "hangs"

[train]
evals = 2

[budget]
steps = 4

[axes.mode]
role = "scientific"
values = ["ok", "sleep", "exit", "segv"]

[[claims]]
id = "H1"
kind = "paired_comparison"
params = { a = { mode = "ok" }, b = { mode = "sleep" } }
"""


@pytest.fixture(scope="module")
def hangs(tmp_path_factory):
    """The ``hangs`` workload, registered through a dist-info folder on sys.path and PYTHONPATH."""
    root = tmp_path_factory.mktemp("pkg")
    (root / "hangs.py").write_text(textwrap.dedent(PACKAGE), encoding="utf-8")
    info = root / "hangs-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: hangs\nVersion: 1.0\n", encoding="utf-8")
    (info / "entry_points.txt").write_text("[claimbench.workloads]\nhangs = hangs:WORKLOAD\n", encoding="utf-8")
    sys.path.insert(0, str(root))
    before = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(root), before]))
    assert "hangs" in registry.installed()
    suite = root / "hanging.toml"
    suite.write_text(textwrap.dedent(SUITE), encoding="utf-8")
    yield suite
    sys.path.remove(str(root))
    registry._LOADED.pop("hangs", None)
    if before is None:
        os.environ.pop("PYTHONPATH", None)
    else:
        os.environ["PYTHONPATH"] = before


@pytest.fixture
def watchdog():
    """Interrupt the test (KeyboardInterrupt in the main thread) if it runs past 150 s: without trial limits a
    hang would block it forever rather than fail it."""
    timer = threading.Timer(150, _thread.interrupt_main)
    timer.start()
    yield
    timer.cancel()


def _records(out: Path) -> dict[str, object]:
    return {r.spec["workload_params"]: r for r in RunStore(out).records()}


def _by_mode(records: dict) -> dict:
    return {json.loads(k)["mode"]: r for k, r in records.items()}


def _assert_each_failed_on_its_own(out: Path) -> None:
    records = _by_mode(_records(out))
    assert set(records) == {"ok", "sleep", "exit", "segv"}
    assert records["ok"].status is TrialStatus.COMPLETED
    sleep = records["sleep"]
    assert sleep.status is TrialStatus.FAILED and sleep.error == "timed out after 5 s", sleep.error
    assert 4.5 <= sleep.wall_s <= 15, sleep.wall_s
    assert records["exit"].status is TrialStatus.FAILED and "exited with code 3" in records["exit"].error
    assert records["segv"].status is TrialStatus.FAILED and "SIGSEGV" in records["segv"].error


def test_local_a_hang_an_exit_and_a_segfault_are_failed_records_and_the_run_finishes(hangs, tmp_path, watchdog):
    """--trial-timeout 5: the sleeping trial is recorded failed after about 5 s; sys.exit(3) (which ended the
    driver, with no record) and a segfault fail their own trials; the healthy trial trains; `run` exits 0
    with its report."""
    out = tmp_path / "out"
    start = time.monotonic()
    code, stdout, err = cli("run", str(hangs), "--executor", "local", "--quiet", "--out", str(out),
                            "--trial-timeout", "5")
    assert code == 0, stdout + err
    _assert_each_failed_on_its_own(out)
    assert "report:" in stdout and time.monotonic() - start < 120


@pytest.mark.ray
def test_ray_a_hang_an_exit_and_a_segfault_are_failed_records_and_the_run_finishes(hangs, tmp_path, watchdog):
    """The same on Ray (through the API: no report), where the hang blocked the run forever."""
    out = tmp_path / "out"
    start = time.monotonic()
    [summary] = run_suites([(load_suite(hangs), out)], executor="ray", progress=False, trial_timeout=5)
    assert summary.total == 4 and summary.counts == {"completed": 1, "failed": 3}
    _assert_each_failed_on_its_own(out)
    assert time.monotonic() - start < 120


def test_the_limit_comes_from_the_flag_else_the_suites_limits_table_else_the_estimate(hangs, tmp_path):
    plain = load_suite(hangs)
    path = tmp_path / "limited.toml"
    path.write_text(hangs.read_text() + "\n[limits]\ntrial_timeout = 3\n", encoding="utf-8")
    limited = load_suite(path)
    assert limited.limit_table()["trial_timeout"] == 3 and plain.limit_table()["trial_timeout"] == 0
    specs = expand(plain)
    nothing = type("Store", (), {"records": lambda self, ids: []})()
    assert set(trial_timeouts([(limited, nothing, specs, specs)]).values()) == {3.0}
    assert set(trial_timeouts([(limited, nothing, specs, specs)], 7.5).values()) == {7.5}
    assert trial_timeouts([(plain, nothing, specs, specs)]) == {s.trial_id: default_timeout(s) for s in specs}


def test_a_built_in_pack_past_its_limit_fails_and_the_run_goes_on(tmp_path):
    """On the local executor the built-in workloads train in this process, under an alarm of their pack's
    summed limits: a limit no trial can meet fails them all, with the time, and the executor returns."""
    path = tmp_path / "tiny.toml"
    path.write_text(textwrap.dedent(TINY_SUITE).replace("steps = 30", "steps = 100000"), encoding="utf-8")
    specs = expand(load_suite(path, "smoke"))[:2]
    records = []
    start = time.monotonic()
    LocalExecutor().run(make_packs(specs, 2), records.append, timeouts={s.trial_id: 0.5 for s in specs})
    assert time.monotonic() - start < 30
    assert len(records) == 2 and all(r.status is TrialStatus.FAILED for r in records)
    assert all("timed out after 1 s (the limit of its pack of 2 trials" in r.error for r in records), records[0].error


def test_the_default_limit_is_the_estimate_times_the_safety_factor_with_a_floor():
    import dataclasses

    from claimbench.runner.cost import model_seconds
    from claimbench.runner.timeouts import TIMEOUT_FLOOR_S, TIMEOUT_SAFETY, default_timeout
    from claimbench.workloads.builtin import TrialSpec

    small = TrialSpec(dataset="teacher", n_samples=600, depth=1, width=16, batch_size=8, steps=30)
    assert default_timeout(small) == TIMEOUT_FLOOR_S
    big = dataclasses.replace(small, depth=8, width=4096, steps=100_000)
    assert default_timeout(big) == pytest.approx(TIMEOUT_SAFETY * model_seconds(big)) and default_timeout(big) > 3600


@pytest.mark.parametrize("value", ["0", "-5", "nan", "inf", "soon"])
def test_a_bad_trial_timeout_is_one_line(value):
    code, _, err = cli("run", "tiny", "--trial-timeout", value)
    assert code == 2 and err.count("\n") == 1 and "--trial-timeout" in err and "Traceback" not in err, err
