"""The pipeline as plain functions: run a suite into a run dir; evaluate a run dir's claims."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import pandas as pd

from claimbench.claims import ClaimResult, evaluate_claims
from claimbench.env import environment
from claimbench.errors import StoreError
from claimbench.loop import Plan, read_record, run_rounds
from claimbench.runner.packs import DEFAULT_PACK_SIZE
from claimbench.store import RunStore
from claimbench.suite import Suite, expand
from claimbench.trial import TrialRecord
from claimbench.workloads.builtin import TrialSpec


@dataclass
class RunSummary:
    run_dir: Path
    total: int
    trained: int  # records this run added to this suite's store
    counts: dict[str, int]  # status -> trials of the suite with that status after the run
    trained_total: int = 0  # distinct trials trained by the run (suites of a group may share trials)
    ray_startup_s: float | None = None  # how long this run's ray.init took (None: no Ray started here)
    extensions: list[str] = field(default_factory=list)  # what the experimenter loop added (claimbench/loop.py)


def default_run_dir(suite: Suite) -> Path:
    return Path("runs") / f"{suite.name}-{suite.tier}"


def run_suite(suite: Suite, run_dir: str | Path | None = None, executor: str = "ray", address: str | None = None,
              pack_size: int = DEFAULT_PACK_SIZE, command: str = "", progress: bool = True,
              faults: tuple = (), cpus_per_trial: float | None = None,
              gpus_per_trial: float | None = None) -> RunSummary:
    """Train every trial of ``suite`` that has no final record in ``run_dir``; records are stored as they arrive.

    ``cpus_per_trial`` / ``gpus_per_trial`` (a Ray slot) override the suite's ``[resources]``.
    """
    run_dir = Path(run_dir) if run_dir else default_run_dir(suite)
    return run_suites([(suite, run_dir)], executor, address, pack_size, command, progress, faults,
                      cpus_per_trial, gpus_per_trial)[0]


def run_suites(targets: list[tuple[Suite, str | Path]], executor: str = "ray", address: str | None = None,
               pack_size: int = DEFAULT_PACK_SIZE, command: str = "", progress: bool = True,
               faults: tuple = (), cpus_per_trial: float | None = None,
               gpus_per_trial: float | None = None, trial_timeout: float | None = None) -> list[RunSummary]:
    """Run several suites, each into its own run dir, through one executor (one Ray session, one queue).

    Every record goes to the store of each suite that contains its trial id, as it arrives. Each trial
    has a wall-clock limit: ``trial_timeout`` seconds, else its suite's, else its estimate's
    (``runner.trial_timeouts``).
    """
    from claimbench.runner import make_executor, run_trials, trial_timeouts  # torch and Ray load only when training

    cpus, gpus = slot_resources([s for s, _ in targets], cpus_per_trial, gpus_per_trial)
    # validates the executor before anything is written
    ex = make_executor(executor, address, cpus_per_trial=cpus, gpus_per_trial=gpus, faults=faults)
    env = environment(command, tuple(s.workload["package"] for s, _ in targets if s.workload.get("package")))
    stores = [RunStore(run_dir) for _, run_dir in targets]
    trained_ids: set[str] = set()

    def train(round_targets: list[tuple[Suite, RunStore]]) -> None:
        """One round: every pending trial of these suites, through one executor; records go to every store
        whose suite holds the trial."""
        routes: dict[str, list[RunStore]] = {}
        todo: dict[str, TrialSpec] = {}
        limits = []
        for suite, store in round_targets:
            store.init(suite, command, env)  # the suite as this round resolves it (extended by the loop)
            specs = expand(suite)
            pending = store.pending(specs)
            limits.append((suite, store, specs, pending))
            for spec in pending:
                routes.setdefault(spec.trial_id, []).append(store)
                todo.setdefault(spec.trial_id, spec)
        if todo:
            def on_record(record: TrialRecord) -> None:
                for store in routes.get(record.trial_id, ()):
                    store.append(record)

            trained_ids.update(todo)
            run_trials(list(todo.values()), ex, on_record, pack_size=pack_size, progress=progress,
                       timeouts=trial_timeouts(limits, trial_timeout))

    train([(suite, store) for (suite, _), store in zip(targets, stores)])
    plans = [(Plan(suite, suite), store) for (suite, _), store in zip(targets, stores)]
    run_rounds(plans, train)
    out = []
    for plan, store in plans:
        specs = expand(plan.suite)
        counts: dict[str, int] = {}
        for r in store.records(s.trial_id for s in specs):
            counts[r.status.value] = counts.get(r.status.value, 0) + 1
        mine = sum(1 for s in specs if s.trial_id in trained_ids)
        out.append(RunSummary(run_dir=store.dir, total=len(specs), trained=mine, counts=counts,
                              trained_total=len(trained_ids), ray_startup_s=getattr(ex, "startup_s", None),
                              extensions=[e.text() for e in plan.extensions]))
    return out


def slot_resources(suites: list[Suite], cpus_per_trial: float | None = None,
                   gpus_per_trial: float | None = None) -> tuple[float, float]:
    """CPUs and GPUs of one trial's Ray slot: the flags if given, else the largest any suite's
    ``[resources]`` asks for (one slot must fit every trial), else 1 CPU and no GPU."""
    def pick(flag: float | None, key: str, default: float) -> float:
        if flag is not None:
            return flag
        asked = [s.resources[key] for s in suites if key in s.resources]
        return max(asked) if asked else default

    return pick(cpus_per_trial, "cpus_per_trial", 1.0), pick(gpus_per_trial, "gpus_per_trial", 0.0)


@dataclass
class Evaluation:
    """A run dir's suite, its trial frame and every claim's result. ``run_dir`` is where it was read from
    (None for one built in memory); ``curves()`` and ``range_curves()`` read the per-evaluation curves and
    the LR range test's sweeps from its records once, on first use (see ``report.exports``)."""

    suite: Suite
    frame: pd.DataFrame
    results: list[ClaimResult]
    command: str
    environment: dict
    created: str
    run_dir: Path | None = None
    _curves: tuple[pd.DataFrame, pd.DataFrame] | None = field(default=None, repr=False, compare=False)

    def curves(self) -> pd.DataFrame:
        """One row per (trial, evaluation) of the frame's trials: ``curve_frame`` (empty without a run dir)."""
        return self._curve_frames()[0]

    def range_curves(self) -> pd.DataFrame:
        """One row per (trial, LR of the range test's sweep): trial_id, seed, lr, loss, smoothed."""
        return self._curve_frames()[1]

    def _curve_frames(self) -> tuple[pd.DataFrame, pd.DataFrame]:
        if self._curves is None:
            from claimbench.report.exports import curve_frames
            self._curves = curve_frames(self)
        return self._curves


GROUP_FILE = "group.json"


def write_group(root: str | Path, group, tier: str, names: list[str]) -> None:
    """Mark ``root`` as the run dir of a group: one sub run dir per suite (``names``), one combined report."""
    from claimbench.store import atomic_write_text

    info = {"schema": 1, "group": group.name, "title": group.title, "description": group.description,
            "tier": tier, "suites": list(names)}
    atomic_write_text(Path(root) / GROUP_FILE, json.dumps(info, indent=2) + "\n")


def read_group(run_dir: str | Path) -> dict | None:
    """The group.json of a group run dir, or None for a plain run dir."""
    path = Path(run_dir) / GROUP_FILE
    if not path.is_file():
        return None
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise StoreError(f"unreadable group file: {e}", where=str(path), fix="delete it and rerun the group") from None
    if not isinstance(info, dict) or info.get("schema") != 1 or not isinstance(info.get("suites"), list):
        raise StoreError("not a claimbench group file (schema 1)", where=str(path), fix="delete it and rerun the group")
    return info


def evaluate_target(run_dir: str | Path, select: Callable[[str, str], bool] | None = None) -> list[Evaluation]:
    """Evaluations of a run dir: one for a suite's run dir; one per suite (with records) for a group's.
    With ``select(suite, claim_id)`` (``-k``: claimbench/selection.py) only the claims it keeps are
    evaluated, and a group's suites without one are left out."""
    group = read_group(run_dir)
    if group is None and is_published(run_dir):
        return evaluate_published(run_dir, select)
    if group is None:
        return [evaluate_run(run_dir, select)]
    out = []
    for name in group["suites"]:
        sub = Path(run_dir) / name
        if (sub / "run.json").is_file():
            if select is not None and not any(select(name, c.id) for c in RunStore(sub).info().suite.claims):
                continue
            out.append(evaluate_run(sub, select))
    if not out:
        raise StoreError("the group has no suite run dirs yet", where=str(run_dir),
                         fix=f"run it first: claimbench run {group['group']} --tier {group['tier']}")
    return out


def evaluate_run(run_dir: str | Path, select: Callable[[str, str], bool] | None = None) -> Evaluation:
    """The run's suite, its trial frame and every claim's result (those ``select(suite, claim_id)``
    keeps, when given); needs no Ray and no GPU."""
    store = RunStore(run_dir)
    info = store.info()
    frame = store.frame()
    claims = [c for c in info.suite.claims if select is None or select(info.suite.name, c.id)]
    ev = Evaluation(suite=info.suite, frame=frame, results=[], command=info.command,
                    environment=info.environment, created=info.created, run_dir=store.dir)
    if len(frame):
        ev.results = evaluate_claims(claims, frame, info.suite.design(), ev.curves())
        _with_extensions(ev.results, store.dir)
    return ev


def _with_extensions(results: list[ClaimResult], run_dir: str | Path) -> None:
    """Each result's diagnostics name the experimenter loop's extensions it triggered (``adaptive.json``)."""
    taken = read_record(run_dir)
    for r in results:
        r.diagnostics.setdefault("extensions", []).extend(e.get("text", "") for e in taken
                                                         if r.claim_id in e.get("claims", []))


def is_published(path: str | Path) -> bool:
    """A published report dir (``reports/faq-default``): ``verdicts.json`` beside one ``<suite>/trials.parquet``
    per suite, no run.json and no records."""
    p = Path(path)
    return (p / "verdicts.json").is_file() and not (p / "run.json").exists() and not (p / GROUP_FILE).exists() \
        and any(p.glob("*/trials.parquet"))


def evaluate_published(path: str | Path, select: Callable[[str, str], bool] | None = None) -> list[Evaluation]:
    """A published report dir judged again from its frames, under this checkout's analysis: each suite as
    shipped (``suites/``, at the tier, command and environment its verdicts.json records), its trials,
    curves and range curves from the Parquet frames, and the loop's extensions from ``<suite>/adaptive.json``.
    Nothing is trained; the frames stay as published."""
    from claimbench.report.exports import read_verdicts_doc
    from claimbench.suite import load_suite, resolve_published_suite

    doc = read_verdicts_doc(path)
    out = []
    for entry in doc.get("suites", []):
        name = str(entry.get("name", ""))
        sub = Path(path) / name
        if not (sub / "trials.parquet").is_file():
            continue
        suite = load_suite(resolve_published_suite(name), str(entry.get("tier", "default")))
        if select is not None and not any(select(suite.name, c.id) for c in suite.claims):
            continue
        frame = pd.read_parquet(sub / "trials.parquet")
        curves = pd.read_parquet(sub / "curves.parquet") if (sub / "curves.parquet").is_file() else pd.DataFrame()
        ranges = pd.read_parquet(sub / "range_curves.parquet") if (sub / "range_curves.parquet").is_file() \
            else pd.DataFrame()
        claims = [c for c in suite.claims if select is None or select(suite.name, c.id)]
        ev = Evaluation(suite=suite, frame=frame, results=[], command=str(entry.get("command", "")),
                        environment=dict(entry.get("environment") or {}), created=str(entry.get("created", "")),
                        run_dir=None, _curves=(curves, ranges))
        ev.results = evaluate_claims(claims, frame, suite.design(), curves)
        _with_extensions(ev.results, sub)
        out.append(ev)
    if not out:
        raise StoreError("no suite of this published report has its frames", where=str(path),
                         fix="give a report dir with <suite>/trials.parquet beside verdicts.json")
    return out


def load_verdicts(run_dir: str | Path) -> pd.DataFrame:
    """Every claim's and stratum's verdict of a run dir (a suite's or a group's) as a DataFrame: one row
    each, with the adjusted verdict, effect, unit, CI, p-values, counts and detectable effect (the
    columns of ``verdicts.json``, see ``report.exports``). Reads ``RUN_DIR/verdicts.json`` when
    ``claimbench run`` or ``report`` wrote one, else evaluates the run dir."""
    from claimbench.report.exports import read_verdicts, verdict_rows

    rows = read_verdicts(run_dir)
    if rows is None:
        rows = verdict_rows(evaluate_target(run_dir))
    return pd.DataFrame(rows)
