"""The environment a run was measured on: versions, hardware, git revision, command."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

PACKAGES = ("claimbench", "torch", "ray", "numpy", "pandas", "scipy", "seaborn", "matplotlib", "mnist1d",
            "scikit-learn", "pyarrow", "jinja2")


def git_sha(path: str | Path = ".") -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=path, capture_output=True, text=True, timeout=5)
        sha = out.stdout.strip()
        if out.returncode != 0 or not sha:
            return None
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=path,
                               capture_output=True, text=True, timeout=5).stdout.strip()
        return sha + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return None


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def environment(command: str = "", packages: tuple[str, ...] = ()) -> dict[str, Any]:
    """Versions, devices and the command; ``packages``: more distributions to list (the packages of the
    workloads a run trains, beside ``PACKAGES``)."""
    versions = {}
    for name in dict.fromkeys((*PACKAGES, *packages)):
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    gpus: list[str] = []
    try:
        import torch
        if torch.cuda.is_available():
            gpus = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    except Exception:  # no torch or no driver: no GPU to report
        pass
    return {
        "python": sys.version.split()[0], "platform": platform.platform(), "cpu": cpu_model(),
        "cpu_count": os.cpu_count(), "gpus": gpus, "packages": versions,
        "git_sha": git_sha(Path(__file__).resolve().parent) or git_sha(), "command": command,
    }
