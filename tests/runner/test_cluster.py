"""A real multi-node Ray cluster on one machine: a head and a worker node (ray.cluster_utils),
one CPU and one *logical* GPU each, shared by every test of this module.

(a) a suite spreads over all nodes, on GPU slots trained on the CPU; (d) a trial that raises is
recorded ``failed`` with its error and the run goes on; Ray Jobs: ``ray job submit --working-dir .
-- claimbench run ...`` against the head; (c) the driver killed with SIGKILL, then a rerun that
resumes with nothing lost or duplicated; (b) a worker node killed mid-run (last: it leaves the
cluster one node short) and every trial still completes once. Plus: the embedded Ray listens on
loopback only.
"""

from __future__ import annotations

import dataclasses

import json
import logging
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import pytest

from claimbench.api import slot_resources
from claimbench.cli import main
from claimbench.errors import SuiteError
from claimbench.runner.faults import parse_faults
from claimbench.runner.driver import run_trials
from claimbench.runner.ray_executor import RayExecutor, pick_device, slots_on_nodes
from claimbench.store.rundir import RunStore
from claimbench.suite import expand, load_suite
from claimbench.trial import TrialStatus
from tests.conftest import TINY_SUITE

def ray_test(fn):
    """Marks a test that starts Ray (the cluster, or an embedded instance); the unit tests at the end do not."""
    return pytest.mark.ray(pytest.mark.slow(fn))

REPO = Path(__file__).resolve().parents[2]
N_NODES = 2  # head and worker: two nodes on a 2-core machine (a third only queued behind them)
#: 12 trials of ~0.3 s each: long enough that every node gets work and a kill lands mid-run.
CLUSTER_SUITE = (TINY_SUITE.replace("steps = 30", "steps = 200")
                 .replace("values = [0.01, 0.1, 100.0]", "values = [0.01, 0.03, 0.1, 100.0]")
                 .replace('name = "tiny"', 'name = "tiny_cluster"')
                 + "\n[resources]\ngpus_per_trial = 1\n")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def cluster():
    """Head + a worker, 1 CPU and 1 logical GPU each; this process is connected as a driver."""
    ray = pytest.importorskip("ray")
    from ray.cluster_utils import Cluster

    old_path = os.environ["PATH"]
    # job entrypoints (`claimbench ...`) run on the head with the head's environment: this venv's bin
    os.environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{old_path}"
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    c = Cluster(initialize_head=True, head_node_args=dict(
        num_cpus=1, num_gpus=1, include_dashboard=True, dashboard_host="127.0.0.1",
        dashboard_port=free_port(), dashboard_agent_listen_port=free_port()))
    try:
        for _ in range(N_NODES - 1):
            c.add_node(num_cpus=1, num_gpus=1)
        c.wait_for_nodes()
        ray.init(address=c.address, log_to_driver=False, logging_level=logging.WARNING)
        yield c
    finally:
        ray.shutdown()
        c.shutdown()
        os.environ["PATH"] = old_path


@pytest.fixture(scope="module")
def suite_path(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("suite") / "cluster.toml"
    path.write_text(CLUSTER_SUITE, encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def specs(suite_path):
    return expand(load_suite(suite_path, "default"))


def alive_node_ids(ray) -> set[str]:
    return {n["NodeID"] for n in ray.nodes() if n["Alive"]}


@pytest.fixture(scope="module")
def spread_run(cluster, specs):
    """One run over the whole cluster: GPU slots (1 logical GPU each), one trial made to raise."""
    import ray

    victim = specs[1].trial_id
    ex = RayExecutor(cpus_per_trial=1, gpus_per_trial=1, inflight_per_actor=1,
                     faults=parse_faults(f"raise:{victim}"))
    records = []
    logger = logging.getLogger("claimbench.runner.ray_executor")
    seen: list[str] = []
    handler = logging.Handler()
    handler.emit = lambda rec: seen.append(rec.getMessage())
    logger.addHandler(handler)
    try:
        run_trials(specs, ex, records.append, pack_size=1, progress=False)
    finally:
        logger.removeHandler(handler)
    return dict(records=records, victim=victim, nodes=alive_node_ids(ray), used=ex.nodes_used, log=seen)


@ray_test
def test_suite_spreads_over_all_nodes_on_logical_gpus(spread_run, specs):
    records, nodes = spread_run["records"], spread_run["nodes"]
    assert len(nodes) == N_NODES
    assert sorted(r.trial_id for r in records) == sorted(s.trial_id for s in specs)
    # one GPU slot per node: an actor on each node, and trials trained on each
    assert set(spread_run["used"]) == nodes
    assert {r.node_id for r in records} == nodes
    # Ray assigned each actor a GPU that CUDA cannot see: trained on the CPU, with a warning
    assert all(info["gpu_ids"] and info["device"] == "cpu" for info in spread_run["used"].values())
    assert {r.device for r in records} == {"cpu"}
    assert any("CUDA is not available" in m and "training on the CPU" in m for m in spread_run["log"])


@ray_test
def test_trial_that_raises_is_failed_with_its_error_and_the_run_goes_on(spread_run):
    by_id = {r.trial_id: r for r in spread_run["records"]}
    failed = [r for r in by_id.values() if r.status is TrialStatus.FAILED]
    assert [r.trial_id for r in failed] == [spread_run["victim"]]
    assert "injected fault" in failed[0].error
    assert all(r.status in (TrialStatus.COMPLETED, TrialStatus.DIVERGED) for r in by_id.values() if r not in failed)


@ray_test
def test_ray_job_submit_runs_claimbench_on_the_head(cluster, suite_path, tmp_path):
    import ray

    out = tmp_path / "job-run"
    ray_cli = shutil.which("ray") or str(Path(sys.executable).parent / "ray")
    cmd = [ray_cli, "job", "submit", "--address", f"http://{cluster.webui_url}", "--working-dir", str(REPO),
           "--runtime-env", str(REPO / "cluster" / "runtime_env.yaml"), "--",
           "claimbench", "run", str(suite_path), "--tier", "smoke", "--out", str(out), "--quiet",
           "--gpus-per-trial", "0.5", "--cpus-per-trial", "0.5"]
    job = subprocess.run(cmd, capture_output=True, text=True, timeout=240)
    assert job.returncode == 0, job.stdout[-3000:] + job.stderr[-3000:]
    assert "succeeded" in (job.stdout + job.stderr).lower()
    expected = {s.trial_id for s in expand(load_suite(suite_path, "smoke"))}
    records = RunStore(out).records()
    assert {r.trial_id for r in records} == expected
    # trained by actors on this cluster's nodes: the job's driver attached to it (RAY_ADDRESS), no Ray of its own
    assert {r.node_id for r in records} <= alive_node_ids(ray)


@ray_test
def test_driver_sigkill_then_rerun_resumes_with_nothing_lost_or_duplicated(cluster, suite_path, specs, tmp_path):
    out = tmp_path / "run"
    args = [sys.executable, "-m", "claimbench", "run", str(suite_path), "--address", cluster.address,
            "--out", str(out), "--quiet", "--pack-size", "1"]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    trials = out / "trials"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if trials.is_dir() and len(list(trials.glob("*.json"))) >= 3:
            break
        time.sleep(0.05)
    assert proc.poll() is None, "the run finished before it could be killed: make the suite slower"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    before = {p.stem: p.stat().st_mtime_ns for p in trials.glob("*.json")}
    done_before = set(before)
    expected = {s.trial_id for s in specs}
    assert 3 <= len(done_before) < len(expected)

    rerun = subprocess.run(args, capture_output=True, text=True, timeout=180)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    after = {p.stem: p.stat().st_mtime_ns for p in trials.glob("*.json")}
    assert all(after[t] == before[t] for t in done_before)  # trained only what was missing
    assert sorted(p.stem for p in trials.glob("*.json")) == sorted(expected)  # every trial once
    assert not list(trials.glob(".*.tmp"))  # no half-written record left behind


@ray_test
def test_worker_node_killed_mid_run_every_trial_completes_once(cluster, specs, tmp_path, capsys):
    """Kills (SIGKILL, no graceful shutdown) a worker node once it has delivered a record; its
    actor's packs go to the surviving nodes. Prints the time from the kill to the run's end."""
    import ray

    driver_raylet = ray._private.worker.global_worker.node._raylet_socket_name
    victim = next(n for n in cluster.worker_nodes if n._raylet_socket_name != driver_raylet)
    store = RunStore(tmp_path / "run")
    calls: Counter[str] = Counter()
    victim_worked = threading.Event()
    killed_at: list[float] = []

    def on_record(r):
        calls[r.trial_id] += 1
        store.append(r)
        if r.node_id == victim.node_id:
            victim_worked.set()

    def killer():
        if victim_worked.wait(timeout=120):
            killed_at.append(time.monotonic())
            cluster.remove_node(victim, allow_graceful=False)

    # twice the suite's trials (more seeds), three times as long: when the victim delivers its first
    # record the queue is still long, so with 2 packs in flight per actor it holds one when it dies
    specs = [dataclasses.replace(s, seed=s.seed + 10 * k, steps=600) for k in range(2) for s in specs]
    thread = threading.Thread(target=killer, daemon=True)
    thread.start()
    ex = RayExecutor(cpus_per_trial=1, gpus_per_trial=1, inflight_per_actor=2)
    run_trials(specs, ex, on_record, pack_size=1, progress=False)
    done_at = time.monotonic()
    thread.join(timeout=5)
    assert killed_at, "the victim node never trained a trial"
    assert not victim.any_processes_alive()

    expected = {s.trial_id for s in specs}
    assert set(calls) == expected and set(calls.values()) == {1}  # each trial recorded exactly once
    assert sorted(r.trial_id for r in store.records()) == sorted(expected)
    records = store.records()
    assert all(r.status is not TrialStatus.FAILED for r in records)
    lost = [r for r in records if r.attempts > 1]
    assert lost and all(r.node_id != victim.node_id for r in lost)  # resubmitted to surviving nodes
    with capsys.disabled():
        print(f"\n[cluster] worker node SIGKILLed -> run complete in {done_at - killed_at[0]:.1f}s "
              f"({len(lost)} trials resubmitted)")


def _listening_addresses_of_descendants(root: int) -> list[tuple[str, str]]:
    """(address, process) for every TCP listening socket of ``root`` and its descendants (via ss)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
        except (OSError, IndexError, ValueError):
            continue
    tree, todo = set(), [root]
    while todo:
        pid = todo.pop()
        tree.add(pid)
        todo += children.get(pid, [])
    out = []
    for line in subprocess.run(["ss", "-ltnpH"], capture_output=True, text=True).stdout.splitlines():
        for name, pid in re.findall(r'\("([^"]+)",pid=(\d+)', line):
            if int(pid) in tree:
                out.append((line.split()[3].rsplit(":", 1)[0], name))
    return out


PROBE = """
import json, os, sys
sys.path.insert(0, {repo!r})
from tests.runner.test_cluster import _listening_addresses_of_descendants
from claimbench.runner.ray_executor import RayExecutor
import ray
ex = RayExecutor(num_workers=1)
ex._connect()
actor = ex._new_actor()
ray.get(actor.describe.remote())
print(json.dumps(_listening_addresses_of_descendants(os.getpid())))
ray.shutdown()
"""


@ray_test
@pytest.mark.skipif(not shutil.which("ss") or not Path("/proc").is_dir(), reason="needs Linux and ss")
def test_embedded_ray_listens_on_loopback_only(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("RAY_ADDRESS", "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER")}
    probe = subprocess.run([sys.executable, "-c", PROBE.format(repo=str(REPO))], capture_output=True, text=True,
                           timeout=120, env=env, cwd=tmp_path)
    assert probe.returncode == 0, probe.stderr[-3000:]
    sockets = json.loads(probe.stdout.strip().splitlines()[-1])
    names = {name for _, name in sockets}
    assert "gcs_server" in names and "raylet" in names  # the probe saw Ray's own servers
    public = [(a, n) for a, n in sockets if a not in ("127.0.0.1", "[::ffff:127.0.0.1]", "[::1]", "localhost")]
    assert not public, f"listening beyond localhost: {public}"


# ---------------------------------------------------------------- slots and resources (no Ray)

def test_slots_are_counted_per_node_and_allow_fractions():
    nodes = [{"CPU": 3.0, "GPU": 1.0}, {"CPU": 8.0, "GPU": 2.0}, {"CPU": 4.0}]
    assert slots_on_nodes(nodes, cpus=2) == 1 + 4 + 2  # 3 CPUs hold one 2-CPU slot, not 1.5
    assert slots_on_nodes(nodes, cpus=2, gpus=0.5) == 1 + 4 + 0  # GPU slots only where GPUs are
    assert slots_on_nodes(nodes, cpus=0.1, gpus=0.25) == 4 + 8
    assert slots_on_nodes([{"CPU": 1.0}], cpus=0.1) == 10  # no float round-down to 9
    assert slots_on_nodes([{"CPU": 8.0}], cpus=1, gpus=1) == 0


def test_device_is_taken_from_the_gpu_ray_assigned():
    assert pick_device([], cuda_available=True) == ("cpu", None)
    assert pick_device(["3"], cuda_available=True) == ("cuda:0", None)  # CUDA_VISIBLE_DEVICES=3: cuda:0
    device, warning = pick_device(["0"], cuda_available=False, host="n1")
    assert device == "cpu" and "GPU 0 on n1" in warning and "CUDA is not available" in warning


def test_resources_section_sets_slots_without_changing_trial_ids(write_suite):
    plain = load_suite(write_suite(TINY_SUITE, "plain.toml"), "smoke")
    slotted = load_suite(write_suite(TINY_SUITE + "\n[resources]\ncpus_per_trial = 2\ngpus_per_trial = 0.25\n",
                                     "slotted.toml"), "smoke")
    assert [s.trial_id for s in expand(slotted)] == [s.trial_id for s in expand(plain)]
    assert slotted.resources == {"cpus_per_trial": 2.0, "gpus_per_trial": 0.25}
    assert type(slotted).from_dict(slotted.to_dict()).resources == slotted.resources  # kept in run.json
    assert slot_resources([plain]) == (1.0, 0.0)
    assert slot_resources([slotted]) == (2.0, 0.25)
    assert slot_resources([slotted], cpus_per_trial=0.5) == (0.5, 0.25)  # a flag overrides the suite
    assert slot_resources([plain, slotted], gpus_per_trial=0) == (2.0, 0.0)  # several suites: the largest


@pytest.mark.parametrize("table, key", [("cpus_per_trial = 0", "resources.cpus_per_trial"),
                                        ("gpus_per_trial = -1", "resources.gpus_per_trial"),
                                        ("gpus = 1", "resources.gpus")])
def test_bad_resources_are_suite_errors(write_suite, table, key):
    with pytest.raises(SuiteError, match=re.escape(key)):
        load_suite(write_suite(TINY_SUITE + f"\n[resources]\n{table}\n"))


@pytest.mark.parametrize("flag, value", [("--gpus-per-trial", "-1"), ("--cpus-per-trial", "0")])
def test_bad_resource_flags_are_user_errors_before_anything_runs(tiny_suite_path, tmp_path, capsys, flag, value):
    out = tmp_path / "run"
    with pytest.raises(SystemExit) as exit_:
        main(["run", str(tiny_suite_path), "--out", str(out), flag, value])
    assert exit_.value.code == 2
    assert flag in capsys.readouterr().err
    assert not out.exists()
