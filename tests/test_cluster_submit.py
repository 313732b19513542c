"""docs/cluster.md's `ray job submit` commands, run as written against a head that this module starts with
`ray start --head` (Ray 2.60, token authentication on): the built-in suites, and a user's package shipped as
a `pip wheel --no-deps` wheel. Plus the one-line errors of a driver that attaches with ``--address``: an
unreachable address, a missing token, a workload the workers cannot import.

The commands are read from the doc's blocks marked ``<!-- run by tests/test_cluster_submit.py: NAME -->``;
the test changes only what must differ on a shared test machine (``SUBSTITUTIONS``: free ports, a temporary
Ray dir, run dirs under tmp, a test-local package in place of examples/tiny_resnet), and checks that each
text it changes is in the doc, so the doc and the test cannot drift apart. ``ray start`` runs with
``--block`` and the head is stopped through that process: never ``ray stop``, which stops every Ray of the
machine.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import pytest

from claimbench.errors import UserError
from claimbench.runner.ray_executor import _check_reachable, _connect_error, _host_port
from tests.conftest import TINY_SUITE


def against_head(fn):
    """Marks a test that uses the module's head (a real Ray, minutes on 2 cores); the unit tests at the end do not."""
    return pytest.mark.ray(pytest.mark.slow(fn))

REPO = Path(__file__).resolve().parents[1]
DOC = REPO / "docs" / "cluster.md"
BIN = Path(sys.executable).parent

#: A user's workload package, not installed anywhere: it reaches the cluster only as the shipped wheel.
TOY_PYPROJECT = """
[build-system]
requires = ["setuptools>=64"]
build-backend = "setuptools.build_meta"

[project]
name = "cbtoy"
version = "0.1.0"
dependencies = ["claimbench", "torch"]

[project.entry-points."claimbench.workloads"]
"cbtoy.mlp" = "cbtoy:WORKLOAD"

[tool.setuptools]
packages = ["cbtoy"]
"""
TOY_MODULE = """
import torch
from claimbench.workloads.spec import Data, Param, Workload


def _data(cfg):
    g = torch.Generator().manual_seed(cfg.data_seed)
    x = torch.randn(300, 4, generator=g)
    y = (x[:, 0] + cfg["shift"] * x[:, 1] > 0).long()
    return Data(x[:200], y[:200], x[200:250], y[200:250], x[250:], y[250:], n_outputs=2)


def _model(cfg, data):
    return torch.nn.Sequential(torch.nn.Linear(data.input_shape[0], cfg.spec.width), torch.nn.ReLU(),
                               torch.nn.Linear(cfg.spec.width, data.n_outputs))


WORKLOAD = Workload(name="cbtoy.mlp", params=(Param("shift", float, 0.5, low=0.0, high=2.0, data=True),),
                    uses=("width",), data=_data, model=_model)
"""
TOY_SUITE = """
[suite]
name = "toy"
seeds = 1

[workload]
name = "cbtoy.mlp"
width = 8

[train]
lr = 0.1
batch_size = 20
evals = 2

[budget]
steps = 20

[axes.shift]
role = "scientific"
values = [0.0, 1.5]

[[claims]]
id = "T1"
kind = "best_level_in_range"
paraphrase = "Some shift is best."
params = { axis = "shift", low = 0.0, high = 2.0 }
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def doc_block(name: str) -> list[str]:
    """The commands of docs/cluster.md's block marked ``name``: one string per command, continuation lines
    joined, the block's indentation removed."""
    text = DOC.read_text(encoding="utf-8")
    marker = f"<!-- run by tests/test_cluster_submit.py: {name} -->"
    assert text.count(marker) == 1, f"docs/cluster.md has no single block marked {marker}"
    after = text.split(marker, 1)[1]
    body = re.match(r"\s*```bash\n(.*?)\n\s*```", after, re.S)
    assert body, f"the block after {marker} is not a ```bash block"
    commands, current = [], ""
    for line in textwrap.dedent(body.group(1)).splitlines():
        current += line.rstrip()
        if current.endswith("\\"):
            current = current[:-1].rstrip() + " "
            continue
        if current.strip():
            commands.append(current.strip())
        current = ""
    return commands


def substitute(command: str, changes: dict[str, str]) -> str:
    for old, new in changes.items():
        command = command.replace(old, new)
    return command


def bash(command: str, env: dict, cwd: Path, timeout: float) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", "-c", f"set -eo pipefail\n{command}"], capture_output=True, text=True,
                          env=env, cwd=cwd, timeout=timeout)


def processes_under(marker: str) -> list[int]:
    """Ids of the processes whose command line names ``marker`` (this module's own Ray temp dir)."""
    pids = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if marker.encode() in cmdline.read_bytes():
                pids.append(int(cmdline.parent.name))
        except (OSError, ValueError):
            continue
    return [p for p in pids if p != os.getpid()]


@pytest.fixture(scope="module")
def head(tmp_path_factory):
    """The doc's built-ins block up to its ``ray start``, run as written (its own HOME, so the token it makes
    is the test's): a head of 2 CPUs with token authentication, on free ports and a short temp dir of its own."""
    if not shutil.which("ray", path=str(BIN)) or not Path("/proc").is_dir():
        pytest.skip("needs Ray's CLI beside this Python, on Linux")
    commands = doc_block("builtins")
    home = tmp_path_factory.mktemp("home")
    ray_tmp = tempfile.mkdtemp(prefix="cbsub-", dir="/tmp")  # Ray's socket paths must stay short
    ports = {"gcs": free_port(), "dashboard": free_port(), "client": free_port(), "agent": free_port()}
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
    env.update(HOME=str(home), PATH=f"{BIN}{os.pathsep}{env['PATH']}", RAY_USAGE_STATS_ENABLED="0")
    head_proc = None
    try:
        start = None
        for command in commands:
            if command.startswith("export "):
                name, _, value = command.split(None, 1)[1].partition("=")
                env[name] = value
            elif command.startswith("ray get-auth-token"):
                got = bash(command, env, home, 60)
                assert got.returncode == 0, got.stderr[-2000:]
            elif command.startswith("ray start --head"):
                start = command
                break
        assert start and env.get("RAY_AUTH_MODE") == "token" and (home / ".ray" / "auth_token").is_file()
        start += (f" --block --port {ports['gcs']} --dashboard-port {ports['dashboard']}"
                  f" --ray-client-server-port {ports['client']} --dashboard-agent-listen-port {ports['agent']}"
                  f" --temp-dir {ray_tmp} --disable-usage-stats")
        log = open(home / "head.log", "w")
        head_proc = subprocess.Popen(["bash", "-c", f"exec {start}"], env=env, cwd=REPO, stdout=log,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            assert head_proc.poll() is None, (home / "head.log").read_text()[-3000:]
            try:
                socket.create_connection(("127.0.0.1", ports["dashboard"]), timeout=1).close()
                break
            except OSError:
                time.sleep(0.5)
        else:
            pytest.fail("the head's dashboard never listened: " + (home / "head.log").read_text()[-3000:])
        yield dict(env=env, ports=ports, home=home, commands=commands, ray_tmp=ray_tmp)
    finally:
        if head_proc is not None and head_proc.poll() is None:
            head_proc.send_signal(signal.SIGTERM)  # ray start --block stops the processes it started
            try:
                head_proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                head_proc.kill()
        time.sleep(1)
        for pid in processes_under(ray_tmp):  # anything of this head still alive: ours alone, by id
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        shutil.rmtree(ray_tmp, ignore_errors=True)


def common_changes(head, runs: Path) -> dict[str, str]:
    return {"127.0.0.1:8265": f"127.0.0.1:{head['ports']['dashboard']}", "$PWD/runs": str(runs)}


def assert_job_ran(job: subprocess.CompletedProcess, out: Path) -> dict:
    text = job.stdout + job.stderr
    assert job.returncode == 0, text[-4000:]
    assert "succeeded" in text
    verdicts = json.loads((out / "verdicts.json").read_text())
    assert list((out / "trials").glob("*.json"))
    return verdicts


@pytest.mark.heavy  # a head node and a job: about 35 s the default selection's 10 minutes cannot spare
@against_head
def test_the_built_ins_run_as_the_doc_submits_them(head, tmp_path):
    commands = head["commands"]
    submit = [c for c in commands if c.startswith("ray job submit")]
    assert len(submit) == 1 and commands[-1] == "ray stop"  # the doc stops its head; the fixture stops this one
    changes = common_changes(head, tmp_path / "runs")
    assert all(old in submit[0] for old in changes), (changes, submit[0])
    job = bash(substitute(submit[0], changes), head["env"], REPO, 420)
    out = tmp_path / "runs" / "batch_size-smoke"
    verdicts = assert_job_ran(job, out)
    assert verdicts and "claimbench run batch_size --tier smoke" in job.stdout + job.stderr


@pytest.mark.heavy  # Ray's pip route copies the whole environment (about 2 GB, minutes): run with -m heavy
@against_head
def test_a_users_package_ships_as_a_no_deps_wheel(head, tmp_path):
    """The doc's commands for examples/tiny_resnet, on a test-local package that is installed nowhere: the job
    can only train it from the wheel it ships."""
    user = tmp_path / "repo"
    (user / "toy" / "cbtoy").mkdir(parents=True)
    (user / "toy" / "pyproject.toml").write_text(TOY_PYPROJECT, encoding="utf-8")
    (user / "toy" / "cbtoy" / "__init__.py").write_text(TOY_MODULE, encoding="utf-8")
    (user / "suites").mkdir()
    (user / "suites" / "toy.toml").write_text(TOY_SUITE, encoding="utf-8")
    changes = {"examples/tiny_resnet/suites/tiny_resnet.toml": "suites/toy.toml",
               "tiny_resnet-0.1.0-py3-none-any.whl": "cbtoy-0.1.0-py3-none-any.whl",
               "examples/tiny_resnet": "./toy", "tiny_resnet-smoke": "toy-smoke",
               # offline: build with this environment's setuptools, not a freshly downloaded one
               "pip wheel --no-deps": f"{shlex.quote(sys.executable)} -m pip wheel -q --no-deps --no-build-isolation",
               **common_changes(head, tmp_path / "runs")}
    commands = doc_block("package")
    assert len(commands) == 2 and commands[0].startswith("pip wheel --no-deps")
    assert commands[1].startswith("ray job submit") and "--no-deps" in commands[1]
    text = " ".join(commands)
    assert all(old in text for old in changes), [old for old in changes if old not in text]
    import importlib.util
    assert importlib.util.find_spec("cbtoy") is None  # installed nowhere: only the wheel brings it

    built = bash(substitute(commands[0], changes), head["env"], user, 120)
    assert built.returncode == 0, built.stderr[-3000:]
    assert (user / "wheels" / "cbtoy-0.1.0-py3-none-any.whl").is_file()
    job = bash(substitute(commands[1], changes), head["env"], user, 540)
    out = tmp_path / "runs" / "toy-smoke"
    verdicts = assert_job_ran(job, out)
    assert verdicts
    records = [json.loads(p.read_text()) for p in (out / "trials").glob("*.json")]
    assert len(records) == 2
    assert all(r["spec"]["workload"] == "cbtoy.mlp" and r["spec"]["code"].startswith("cbtoy 0.1.0 ")
               for r in records)


def driver(head, tmp_path, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    """``claimbench run`` on this machine, attached to ``--address`` (not a job)."""
    suite = tmp_path / "tiny.toml"
    suite.write_text(TINY_SUITE, encoding="utf-8")
    return subprocess.run([sys.executable, "-m", "claimbench", "run", str(suite), "--tier", "smoke",
                           "--out", str(tmp_path / "run"), "--quiet", *args], capture_output=True, text=True,
                          env=env or head["env"], cwd=tmp_path, timeout=240)


def one_line(proc: subprocess.CompletedProcess, *words: str) -> str:
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert len(lines) == 1 and lines[0].startswith("claimbench: error: "), proc.stderr[-3000:]
    for word in words:
        assert word in lines[0], (word, lines[0])
    return lines[0]


@pytest.mark.heavy  # the README's commands run in the default selection; the errors cost CI time
@against_head
def test_an_unreachable_address_is_one_line_at_once(head, tmp_path):
    closed = free_port()
    t0 = time.monotonic()
    proc = driver(head, tmp_path, "--address", f"127.0.0.1:{closed}")
    one_line(proc, "--address", f"cannot reach Ray at 127.0.0.1:{closed}", "ray start --head")
    assert not (tmp_path / "run" / "trials").exists() or not list((tmp_path / "run" / "trials").glob("*.json"))
    assert time.monotonic() - t0 < 120  # not Ray's own minutes of retries


@pytest.mark.heavy  # the README's commands run in the default selection; the errors cost CI time
@against_head
def test_a_driver_without_the_token_is_one_line(head, tmp_path):
    env = {k: v for k, v in head["env"].items() if k != "RAY_AUTH_MODE"}
    proc = driver(head, tmp_path, "--address", f"127.0.0.1:{head['ports']['gcs']}", env=env)
    one_line(proc, "refused this driver's authentication token", "RAY_AUTH_MODE=token", "ray get-auth-token")


@pytest.mark.heavy  # the README's commands run in the default selection; the errors cost CI time
@against_head
def test_a_workload_the_workers_cannot_import_is_one_line(head, tmp_path):
    """The driver has the package (on its own PYTHONPATH), the head's workers do not."""
    site = tmp_path / "site"
    src = tmp_path / "toy"
    (src / "cbtoy").mkdir(parents=True)
    (src / "pyproject.toml").write_text(TOY_PYPROJECT, encoding="utf-8")
    (src / "cbtoy" / "__init__.py").write_text(TOY_MODULE, encoding="utf-8")
    installed = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation",
                                "--target", str(site), str(src)], capture_output=True, text=True, timeout=120)
    assert installed.returncode == 0, installed.stderr[-3000:]
    suite = tmp_path / "toy.toml"
    suite.write_text(TOY_SUITE, encoding="utf-8")
    env = dict(head["env"], PYTHONPATH=os.pathsep.join(p for p in (head["env"].get("PYTHONPATH"), str(site)) if p))
    proc = subprocess.run([sys.executable, "-m", "claimbench", "run", str(suite), "--out", str(tmp_path / "run"),
                           "--quiet", "--address", f"127.0.0.1:{head['ports']['gcs']}"], capture_output=True,
                          text=True, env=env, cwd=tmp_path, timeout=240)
    one_line(proc, "workload 'cbtoy.mlp'", "is not importable on node", "pip wheel --no-deps", "docs/cluster.md")
    assert not list((tmp_path / "run" / "trials").glob("*.json"))


# ---------------------------------------------------------------- the driver's connection errors (no Ray)

def test_only_host_port_addresses_are_checked_before_ray_connects():
    assert _host_port("127.0.0.1:6379") == ("127.0.0.1", 6379)
    assert _host_port("[::1]:6379") == ("::1", 6379)
    assert _host_port(":6379") == ("127.0.0.1", 6379)
    for resolved_by_ray in ("auto", "local", "ray://10.0.0.9:10001", "http://127.0.0.1:8265", "head:port"):
        assert _host_port(resolved_by_ray) is None
    _check_reachable("auto", "--address")  # nothing to check: Ray resolves it


def test_a_closed_port_is_a_user_error_naming_the_flag():
    closed = free_port()
    with pytest.raises(UserError) as e:
        _check_reachable(f"127.0.0.1:{closed}", "RAY_ADDRESS")
    text = str(e.value)
    assert text.startswith(f"RAY_ADDRESS: cannot reach Ray at 127.0.0.1:{closed}") and "\n" not in text
    assert "fix: start the head (ray start --head)" in text


def test_a_refused_token_anywhere_in_rays_chain_says_how_to_pass_one(monkeypatch):
    class AuthenticationError(Exception):  # Ray's, as ray.init chains it: ConnectionError <- RuntimeError <- this
        pass

    monkeypatch.delenv("RAY_AUTH_MODE", raising=False)
    try:
        try:
            try:
                raise AuthenticationError("RPC error: InvalidAuthToken")
            except AuthenticationError as inner:
                raise RuntimeError("Failed to connect to GCS") from inner
        except RuntimeError as middle:
            raise ConnectionError("Failed to connect to Ray cluster at 10.0.0.9:6379") from middle
    except ConnectionError as outer:
        err = _connect_error("10.0.0.9:6379", "--address", outer)
    assert "refused this driver's authentication token (RAY_AUTH_MODE is unset)" in str(err)
    assert "export RAY_AUTH_MODE=token" in str(err) and "\n" not in str(err)
    other = _connect_error("10.0.0.9:6379", "--address", ConnectionError("Failed to connect\nto Ray"))
    assert "cannot connect to Ray at 10.0.0.9:6379: ConnectionError: Failed to connect to Ray" in str(other)
    assert "token" not in str(other)
