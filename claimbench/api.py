"""The pipeline as plain functions: run a suite into a run dir; evaluate a run dir's claims; run the
suites a CI check compares with their baseline (``measure``); compare two run dirs (``compare_runs``)."""

from __future__ import annotations

import dataclasses
import sys
import time
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import pandas as pd

from claimbench.analysis.frames import trial_frame
from claimbench.check.compare import Comparison, compare_evaluations
from claimbench.check.gate import Measured
from claimbench.env import environment
from claimbench.errors import StoreError, UserError
from claimbench.evaluation import GROUP_FILE, Evaluation, read_group, suite_run_dirs
from claimbench.loop import Plan, Rounds, evaluate, read_doc
from claimbench.paths import inside
from claimbench.report import write_report
from claimbench.report.exports import read_verdicts, read_verdicts_doc, verdict_rows
from claimbench.runner.cost import CostModel, Sample
from claimbench.runner.driver import run_trials
from claimbench.runner.packs import DEFAULT_PACK_SIZE
from claimbench.runner.registry import make_executor
from claimbench.runner.timeouts import trial_timeouts
from claimbench.store.cache import open_cache
from claimbench.store.rundir import RunStore
from claimbench.suite import Suite, expand, load_suite, load_targets, recorded_suite, resolve_published_suite
from claimbench.workloads import registry
from claimbench.trial import TrialRecord, TrialStatus
from claimbench.workloads.builtin import TrialSpec


@dataclass
class RunSummary:
    run_dir: Path
    total: int
    trained: int  # records this run added to this suite's store
    counts: dict[str, int]  # status -> trials of the suite with that status after the run
    trained_total: int = 0  # distinct trials trained by the run (suites of a group may share trials)
    ray_startup_s: float | None = None  # how long this run's ray.init took (None: no Ray started here)
    extensions: list[str] = field(default_factory=list)  # what the experimenter loop did (claimbench/loop.py)
    skipped: int = 0  # trials of the full matrix the adaptive rules left untrained
    from_cache: int = 0  # trials of this suite copied from the shared trial cache instead of trained


def default_run_dir(suite: Suite) -> Path:
    return Path("runs") / f"{suite.name}-{suite.tier}"


def run_suite(suite: Suite, run_dir: str | Path | None = None, executor: str = "ray", address: str | None = None,
              pack_size: int = DEFAULT_PACK_SIZE, command: str = "", progress: bool = True,
              faults: tuple = (), cpus_per_trial: float | None = None,
              gpus_per_trial: float | None = None, exhaustive: bool = False, cache: str | None = None) -> RunSummary:
    """Train the trials of ``suite`` the experimenter loop plans (every trial when ``exhaustive``) that have
    no final record in ``run_dir``; records are stored as they arrive.

    ``cpus_per_trial`` / ``gpus_per_trial`` (a Ray slot) override the suite's ``[resources]``.
    """
    run_dir = Path(run_dir) if run_dir else default_run_dir(suite)
    return run_suites([(suite, run_dir)], executor, address, pack_size, command, progress, faults,
                      cpus_per_trial, gpus_per_trial, exhaustive=exhaustive, cache=cache)[0]


def run_suites(targets: list[tuple[Suite, str | Path]], executor: str = "ray", address: str | None = None,
               pack_size: int = DEFAULT_PACK_SIZE, command: str = "", progress: bool = True,
               faults: tuple = (), cpus_per_trial: float | None = None,
               gpus_per_trial: float | None = None, trial_timeout: float | None = None,
               exhaustive: bool = False, cache: str | None = None) -> list[RunSummary]:
    """Run several suites, each into its own run dir, through one executor (one Ray session, one queue), in
    the experimenter loop's rounds (``loop.py``); ``exhaustive`` trains every seed of the full matrix in
    round 0 (the registered grid and budget extensions still apply).

    Every record goes to the store of each suite that contains its trial id, as it arrives. Each trial
    has a wall-clock limit: ``trial_timeout`` seconds, else its suite's, else its estimate's
    (``runner.timeouts.trial_timeouts``).
    """
    cpus, gpus = slot_resources([s for s, _ in targets], cpus_per_trial, gpus_per_trial)
    # validates the executor before anything is written
    ex = make_executor(executor, address, cpus_per_trial=cpus, gpus_per_trial=gpus, faults=faults)
    env = environment(command, tuple(s.workload["package"] for s, _ in targets if s.workload.get("package")),
                      code_sources([s for s, _ in targets]))
    stores = [RunStore(run_dir) for _, run_dir in targets]
    shared = open_cache(cache)  # --cache / CLAIMBENCH_CACHE: records other run dirs and runners trained
    trained_ids: set[str] = set()
    cached_ids: set[str] = set()
    # what the cost model learns from: a sample of the run dirs' and the cache's records, then every trial this run
    # trains, so that each round's limits and ETA start from what the rounds before it measured
    samples = cost_samples(stores, shared)
    plans = [(Plan(suite, suite, rules=suite.rules(exhaustive)), store)
             for (suite, _), store in zip(targets, stores)]
    rounds = Rounds(plans)
    routes: dict[str, list[RunStore]] = {}  # trial id -> the stores its record goes to
    training: set[str] = set()  # queued or training now
    final: set[str] = set()  # trials this run trained to a final record (in the stores they were routed to)

    directives: dict[str, dict] = {}  # trial id -> its halving directive (loop.halving)
    whole: set[str] = set()  # trials some suite needs whole: they never halt

    def prepare(batch) -> tuple[list[TrialSpec], dict[str, float], dict[str, dict]]:
        """The trials a round of these plans still needs that nothing trains yet, with their limits and halving
        directives: each plan waits for its pending trials' records (``Rounds.expect``), which go to every
        store whose suite holds the trial; the shared cache's records are taken instead of training."""
        todo: dict[str, TrialSpec] = {}
        limits = []
        for i, suite, store, specs, halve in batch:
            for spec in specs:
                d, mine = halve.get(spec.trial_id), directives.get(spec.trial_id)
                if d is None or (mine is not None and (mine["rung"], mine["k"]) != (d["rung"], d["k"])):
                    whole.add(spec.trial_id)
                elif mine is None:
                    directives[spec.trial_id] = dict(d)
                else:  # a trial two suites share: it goes on when it ranks among the best of any group of either
                    mine["groups"] = [*mine["groups"], *d["groups"]]
            store.init(suite, command, env)  # the suite as this round resolves it (extended by the loop)
            pending = store.pending(specs, accept_halted=not exhaustive)
            limits.append((suite, store, specs, pending))
            for spec in pending:
                tid = spec.trial_id
                if store not in routes.setdefault(tid, []):
                    routes[tid].append(store)
                found = routes[tid][0].records([tid]) if tid in final else []
                if found and not (found[0].status is TrialStatus.HALTED and tid in whole):
                    # trained for another suite of this run: its record, from that suite's store (a halted one
                    # only where no suite needs the trial whole; else it trains again, whole)
                    store.append(found[0])
                    continue
                rounds.expect(i, [tid])
                if tid not in training:
                    todo.setdefault(tid, spec)
        if shared is not None and todo:
            for tid, record in shared.get_many(list(todo), accept_halted=not exhaustive).items():  # verified, final, of this code
                for store in routes.get(tid, ()):
                    store.append(record)
                cached_ids.add(tid)
                rounds.arrived(tid)
                del todo[tid]
        training.update(todo)
        trained_ids.update(todo)
        return (list(todo.values()), trial_timeouts(limits, trial_timeout, CostModel.fit(samples)),
                {t: d for t, d in directives.items() if t in todo and t not in whole})

    def more() -> tuple[list[TrialSpec], dict[str, float], dict[str, dict]]:
        """The next rounds of the plans whose rounds are complete (judged now), until one needs training."""
        if redo:
            again = list(redo.values())
            redo.clear()
            return again, {}, {}
        while not rounds.done:
            batch = rounds.advance()
            if not batch:
                break  # the plans still running wait for records
            specs, limits, halves = prepare(batch)
            if specs:
                if progress:
                    print("claimbench: " + "; ".join(f"{b[1].name} round {rounds.rounds[b[0]]}" for b in batch)
                          + f" of the experimenter loop: {len(specs)} trials", file=sys.stderr, flush=True)
                return specs, limits, halves
        return [], {}, {}

    redo: dict[str, TrialSpec] = {}  # halted trials a suite asked for whole while they trained: trained again

    def on_record(record: TrialRecord) -> None:
        if record.status is TrialStatus.HALTED and record.trial_id in whole:
            redo[record.trial_id] = TrialSpec.from_dict(record.spec)  # the suites waiting for it go on waiting
            return
        for store in routes.get(record.trial_id, ()):
            store.append(record)
        if shared is not None:
            shared.put(record)
        sample = Sample.from_parts(record.status, record.wall_s, record.spec)
        if sample is not None:
            samples.append(sample)
        if record.status.is_final():
            final.add(record.trial_id)
        training.discard(record.trial_id)
        rounds.arrived(record.trial_id)

    with ex.session():  # one Ray, its workers and their data, for every round
        specs, limits, halves = prepare(rounds.start())
        if not specs:
            specs, limits, halves = more()
        # the rounds overlap: a suite whose round is complete plans its next while the others' trials train
        while specs:
            run_trials(specs, ex, on_record, pack_size=pack_size, progress=progress, timeouts=limits,
                       model=CostModel.fit(samples), halving=halves, more=more)
            specs, limits, halves = more()  # an executor that never asks ``Ledger.more`` trains each round as a run
    out = []
    for plan, store in plans:
        specs = expand(plan.suite)
        wanted = {s.trial_id for s in plan.wanted()}
        counts: dict[str, int] = {}
        for r in store.records(s.trial_id for s in specs):
            counts[r.status.value] = counts.get(r.status.value, 0) + 1
        mine = sum(1 for s in specs if s.trial_id in trained_ids)
        out.append(RunSummary(run_dir=store.dir, total=len(specs), trained=mine, counts=counts,
                              trained_total=len(trained_ids), ray_startup_s=getattr(ex, "startup_s", None),
                              extensions=[*(e.text() for e in plan.extensions), *(k.text() for k in plan.looks)],
                              skipped=sum(s.trial_id not in wanted for s in specs),
                              from_cache=sum(1 for s in specs if s.trial_id in cached_ids)))
    return out


#: Records read for the cost model before a run (a sample: reading every record of large run dirs costs seconds).
COST_SAMPLE = 400


def cost_samples(stores: list[RunStore], shared=None) -> list[Sample]:
    """The cost model's samples before a run: records spread over each run dir (of any code version) and over
    the trial cache, ``COST_SAMPLE`` in all (at least 16 a run dir)."""
    each = max(16, COST_SAMPLE // (len(stores) + (shared is not None)))
    records = []
    for store in stores:
        ids = sorted(p.stem for p in store.trials_dir.glob("*.json")) if store.trials_dir.is_dir() else []
        records += store.records(ids[::max(1, len(ids) // each)][:each])
    if shared is not None:
        records += shared.sample(each)
    return [x for r in records if (x := Sample.from_parts(r.status, r.wall_s, r.spec)) is not None]


def code_sources(suites: list[Suite]) -> dict[str, Path]:
    """The folders of the user's code a run depends on, for the environment's git revisions: each suite
    file's folder (a shipped suite's is claimbench's own) and each non-built-in workload package's."""
    out: dict[str, Path] = {}
    for s in suites:
        if s.path:
            out[f"suite {s.name}"] = Path(s.path).resolve().parent
        name = s.workload.get("name")
        if name and name != registry.BUILTIN:
            files = registry.source_files(name)
            if files:
                out[f"workload {name}"] = files[0].parent
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
    for sub in suite_run_dirs(run_dir, group):
        if select is not None and not any(select(sub.name, c.id) for c in recorded_suite(RunStore(sub).info()).claims):
            continue
        out.append(evaluate_run(sub, select))
    if not out:
        raise StoreError("the group has no suite run dirs yet", where=str(run_dir),
                         fix=f"run it first: claimbench run {group['group']} --tier {group['tier']}")
    return out


def run_frame(store: RunStore, suite: Suite) -> pd.DataFrame:
    """One row per trial of ``suite`` with a record in ``store`` (see ``analysis.trial_frame``); records of trials
    outside the suite are left out. ``frame.attrs["damaged"]`` lists the records quarantined in this run dir
    (``RunStore.damaged``)."""
    ids = {s.trial_id for s in expand(suite)}
    tables = {a.name: [v for v in a.values] for a in suite.axes if a.is_table}
    frame = trial_frame(store.records(ids), tables)
    frame.attrs["damaged"] = [dataclasses.asdict(d) for d in store.damaged()]
    return frame


def load_results(run_dir: str | Path) -> pd.DataFrame:
    """One row per trial of a run's suite: spec columns, ``status``, outcome and metric columns."""
    store = RunStore(run_dir)
    return run_frame(store, recorded_suite(store.info()))


def evaluate_run(run_dir: str | Path, select: Callable[[str, str], bool] | None = None) -> Evaluation:
    """The run's suite, its trial frame and every claim's result (those ``select(suite, claim_id)``
    keeps, when given); needs no Ray and no GPU."""
    store = RunStore(run_dir)
    info = store.info()
    suite = recorded_suite(info)
    frame = run_frame(store, suite)
    claims = [c for c in suite.claims if select is None or select(suite.name, c.id)]
    ev = Evaluation(suite=suite, frame=frame, results=[], command=info.command,
                    environment=info.environment, created=info.created, run_dir=store.dir)
    if len(frame):
        ev.results = evaluate(claims, frame, suite.design(), ev.curves(), read_doc(store.dir))
    return ev


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
        ev.results = evaluate(claims, frame, suite.design(), curves, read_doc(sub))
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
    rows = read_verdicts(run_dir)
    if rows is None:
        rows = verdict_rows(evaluate_target(run_dir))
    return pd.DataFrame(rows)


# ------------------------------------------------------------------ the CI gate

def load_check_targets(names: list[str], tier: str, seeds: int | None = None) -> tuple[list[Suite], list[str]]:
    """The suites ``names`` (suites, paths or groups) at ``tier`` (with ``seeds``, when given: ``--seeds``),
    and the names of those skipped because they define no such tier (so that a group checks only its
    suites that have, e.g., a ci tier)."""
    suites = load_targets(list(names), tier, seeds)
    if tier == "default":
        return suites, []
    keep, skipped = [], []
    for s in suites:
        if tier in tomllib.loads(Path(s.path).read_text(encoding="utf-8")).get("tiers", {}):
            keep.append(s)
        else:
            skipped.append(s.name)
    if not keep:
        raise UserError(f"no suite among {', '.join(names)} defines tier {tier!r}", where="--tier",
                        fix=f"add [tiers.{tier}] to the suite, or pass --tier default")
    return keep, skipped


def measure(suites: list[Suite], out: str | Path, executor: str = "ray", address: str | None = None,
            command: str = "", progress: bool = True, faults: tuple = (), html: bool = True,
            pack_size: int = DEFAULT_PACK_SIZE, cpus_per_trial: float | None = None,
            gpus_per_trial: float | None = None, select=None, trial_timeout: float | None = None,
            cache: str | None = None) -> list[Measured]:
    """Run the suites through one executor, each into ``out/<suite>/`` (only missing trials train),
    then evaluate each (only the claims ``select(suite, claim_id)`` keeps, when given: ``-k``) and write
    its HTML report. ``elapsed_s`` is the whole run's wall time. ``pack_size`` and the slot resources
    are ``run``'s (``api.run_suites``)."""
    out = Path(out)
    start = time.monotonic()
    summaries = run_suites([(s, inside(out, s.name)) for s in suites], executor=executor, address=address,
                           command=command, progress=progress, faults=faults, pack_size=pack_size,
                           cpus_per_trial=cpus_per_trial, gpus_per_trial=gpus_per_trial, trial_timeout=trial_timeout,
                           exhaustive=True,  # the gate compares the same trials as its baseline: no adaptive rules
                           cache=cache)
    measured = []
    for s, summary in zip(suites, summaries):
        ev = evaluate_run(summary.run_dir, select)
        report = None
        if html:
            report = write_report(summary.run_dir, ev)
        measured.append(Measured(suite=s, run_dir=summary.run_dir, results=ev.results, frame=ev.frame,
                                 environment=ev.environment, report=report, total=summary.total,
                                 trained=summary.trained, elapsed_s=0.0))
    for m in measured:
        m.elapsed_s = time.monotonic() - start
    return measured


def compare_runs(run_a: str | Path, run_b: str | Path,
                 select: Callable[[str, str], bool] | None = None) -> Comparison:
    """Every claim of the run dirs (a suite's or a group's) ``run_a`` and ``run_b``, paired by suite
    name and claim id and compared under the gate's rule (``check.compare``); ``select(suite, claim_id)``
    keeps some (``selection``)."""
    return compare_evaluations(run_a, run_b, evaluate_target(run_a, select), evaluate_target(run_b, select))
