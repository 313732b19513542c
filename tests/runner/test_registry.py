"""Executors by name (runner/registry.py): the built-ins through the same entry-point group as a user's, and
every name that is not a registered executor one line, exit 2."""

from __future__ import annotations

import tomllib
from importlib import metadata
from pathlib import Path

import pytest

from claimbench.errors import UserError
from claimbench.runner import registry
from claimbench.runner.local import LocalExecutor
from claimbench.runner.ray_executor import RayExecutor
from tests.conftest import cli

ROOT = Path(__file__).resolve().parents[2]


def one_line(code: int, err: str, *words: str) -> None:
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and "Traceback" not in err, err
    assert all(w in lines[0] for w in words), (words, lines[0])


def test_the_built_ins_are_declared_as_entry_points_and_resolve_by_name():
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["entry-points"][registry.GROUP]
    assert declared == registry.BUILTINS
    assert registry.names()[:2] == ["ray", "local"]
    assert registry.get("local") is LocalExecutor and registry.get("ray") is RayExecutor
    assert isinstance(registry.make_executor("local"), LocalExecutor)
    ray = registry.make_executor("ray", address="auto", cpus_per_trial=2, gpus_per_trial=0.5)
    assert (ray.address, ray.cpus_per_trial, ray.gpus_per_trial) == ("auto", 2, 0.5)


@pytest.mark.parametrize("name", ["slurm", "../local", "claimbench.runner.local:LocalExecutor", "/tmp/x.py", ""])
def test_an_unknown_executor_is_one_line_and_never_a_path(name, tmp_path):
    with pytest.raises(UserError, match="unknown executor"):
        registry.get(name)
    code, _, err = cli("run", "tiny", "--executor", name, "--out", str(tmp_path / "out"))
    one_line(code, err, "unknown executor", "--executor", "ray, local")
    assert not (tmp_path / "out").exists()


def test_address_is_refused_by_an_executor_that_does_not_use_it(tmp_path):
    code, _, err = cli("run", "tiny", "--executor", "local", "--address", "auto", "--out", str(tmp_path / "out"))
    one_line(code, err, "--address", "local executor")


def _register(monkeypatch, target: str, name: str = "odd") -> None:
    found = registry._entry_points()
    found[name] = metadata.EntryPoint(name, target, registry.GROUP)
    monkeypatch.setattr(registry, "_entry_points", lambda: found)


@pytest.mark.parametrize("target, words", [
    ("claimbench.runner.base:Worker", "not a subclass of claimbench.runner.base.Executor"),
    ("claimbench.runner.local:LocalExecutor", "holds the executor named 'local'"),
    ("no_such_package.executors:Slurm", "failed to import: ModuleNotFoundError"),
])
def test_an_entry_point_that_breaks_the_contract_is_one_line(monkeypatch, target, words):
    _register(monkeypatch, target)
    assert "odd" in registry.names()
    with pytest.raises(UserError, match="--executor") as e:
        registry.get("odd")
    assert words in str(e.value) and "\n" not in str(e.value)
