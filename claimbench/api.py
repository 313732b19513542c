"""The pipeline as plain functions: run a suite into a run dir; evaluate a run dir's claims."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from claimbench.claims import ClaimResult, evaluate_claims
from claimbench.env import environment
from claimbench.runner.packs import DEFAULT_PACK_SIZE
from claimbench.store import RunStore
from claimbench.suite import Suite, expand


@dataclass
class RunSummary:
    run_dir: Path
    total: int
    trained: int
    counts: dict[str, int]  # status -> trials of the suite with that status after the run


def default_run_dir(suite: Suite) -> Path:
    return Path("runs") / f"{suite.name}-{suite.tier}"


def run_suite(suite: Suite, run_dir: str | Path | None = None, executor: str = "ray", address: str | None = None,
              pack_size: int = DEFAULT_PACK_SIZE, command: str = "", progress: bool = True,
              faults: tuple = ()) -> RunSummary:
    """Train every trial of ``suite`` that has no final record in ``run_dir``; records are stored as they arrive."""
    from claimbench.runner import make_executor, run_trials  # torch and Ray load only when training

    run_dir = Path(run_dir) if run_dir else default_run_dir(suite)
    store = RunStore(run_dir)
    ex = make_executor(executor, address, faults=faults)  # validates the executor before anything is written
    store.init(suite, command, environment(command))
    specs = expand(suite)
    pending = store.pending(specs)
    if pending:
        run_trials(pending, ex, store.append, pack_size=pack_size, progress=progress)
    counts: dict[str, int] = {}
    for r in store.records(s.trial_id for s in specs):
        counts[r.status.value] = counts.get(r.status.value, 0) + 1
    return RunSummary(run_dir=run_dir, total=len(specs), trained=len(pending), counts=counts)


@dataclass
class Evaluation:
    suite: Suite
    frame: pd.DataFrame
    results: list[ClaimResult]
    command: str
    environment: dict
    created: str


def evaluate_run(run_dir: str | Path) -> Evaluation:
    """The run's suite, its trial frame and every claim's result; needs no Ray and no GPU."""
    store = RunStore(run_dir)
    info = store.info()
    frame = store.frame()
    results = evaluate_claims(info.suite.claims, frame, info.suite.design()) if len(frame) else []
    return Evaluation(suite=info.suite, frame=frame, results=results, command=info.command,
                      environment=info.environment, created=info.created)
