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


#: The vector instruction sets that change which float kernels torch runs (and so a trial's rounding): a record
#: reproduces bit for bit within a TRAINING_REVISION on a CPU of the same model and instruction set.
ISA_FLAGS = ("avx512f", "avx512bw", "avx512vl", "avx512_vnni", "avx512_bf16", "amx_tile", "avx2", "fma", "avx")


def cpu_isa() -> str:
    """The widest vector instruction set this CPU has, as torch's kernels pick it: "AVX-512", "AVX2" (with FMA),
    "AVX", or "" when unknown (e.g. not Linux)."""
    flags: set[str] = set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                flags = set(line.split(":", 1)[1].split())
                break
    except OSError:
        return ""
    if "avx512f" in flags:
        return "AVX-512" + (" (AMX)" if "amx_tile" in flags else "")
    if "avx2" in flags:
        return "AVX2" + (" + FMA" if "fma" in flags else "")
    if "avx" in flags:
        return "AVX"
    return "SSE" if flags else ""


def torch_isa() -> str:
    """The instruction set torch dispatches its CPU kernels to (``torch.backends.cpu.get_cpu_capability``)."""
    try:
        import torch
        return str(torch.backends.cpu.get_cpu_capability())
    except Exception:  # an older torch, or none
        return ""


def environment(command: str = "", packages: tuple[str, ...] = (),
                sources: dict[str, str | Path] | None = None) -> dict[str, Any]:
    """Versions, devices and the command; ``packages``: more distributions to list (the packages of the
    workloads a run trains, beside ``PACKAGES``); ``sources``: label -> a folder of the user's code (the suite
    file's, a workload package's), whose git revision (and dirty flag) is recorded beside claimbench's."""
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
        "cpu_isa": cpu_isa(), "torch_cpu_capability": torch_isa(), "cpu_count": os.cpu_count(), "gpus": gpus, "packages": versions,
        "git_sha": git_sha(Path(__file__).resolve().parent) or git_sha(), "command": command,
        "repositories": {label: git_sha(path) for label, path in (sources or {}).items() if Path(path).is_dir()},
    }
