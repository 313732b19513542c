"""The environment records the git revision of the user's code (the suite's folder, a workload package's)
beside claimbench's own, with the dirty flag."""

from __future__ import annotations

import subprocess

from claimbench.env import environment


def git(cwd, *args):
    subprocess.run(["git", "-c", "user.email=t@t", "-c", "user.name=t", *args], cwd=cwd, check=True,
                   capture_output=True)


def test_the_users_repository_revision_is_recorded_with_its_dirty_flag(tmp_path):
    repo = tmp_path / "team"
    repo.mkdir()
    git(repo, "init", "-q")
    (repo / "suite.toml").write_text("a = 1\n")
    git(repo, "add", "suite.toml")
    git(repo, "commit", "-qm", "suite")
    sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True).stdout.strip()
    plain = tmp_path / "plain"
    plain.mkdir()
    env = environment("x", sources={"suite s": repo, "workload w": plain})
    assert env["repositories"] == {"suite s": sha, "workload w": None}
    (repo / "suite.toml").write_text("a = 2\n")
    assert environment("x", sources={"suite s": repo})["repositories"]["suite s"] == sha + "-dirty"
