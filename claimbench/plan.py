"""``--dry-run``: what ``run``, ``check`` or ``baseline`` would train, and about how long it would take.

Reads only: the suites, and the records already in their run dirs (a record counts as cached when
``store.record_problem`` finds nothing wrong with it and its trial is final: completed or diverged;
a damaged or failed one would be retrained). Nothing is written, quarantined or locked, Ray is not
started and torch is not imported.

The packs are ``make_packs``'s, for the workers the executor would have: 1 for ``local``; for ``ray``,
the slots of this machine (``slots_on_nodes`` over its CPUs, and GPUs when a slot asks for them). A
cluster (``--address``) is not contacted, so its slots are unknown: the estimate is for this machine's.

The estimate comes from the one cost model (``runner.cost``): each trial's worker seconds by the default
rates of its family, corrected per family by what the records measured — every completed or diverged record
in the run dirs, those of earlier code included, and a sample of the shared trial cache (``--cache``) — and
by the default model alone, said so, for a family with no record. The packs go to the workers in order, as
the executors feed them (``cost.makespan``); timing packs run alone, one after another. A pending trial whose
verified record is in the trial cache counts as cached: the run copies it instead of training it. Ray's
start is not counted.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path

from claimbench.runner.cost import CostModel, Sample, makespan
from claimbench.runner.packs import make_packs
from claimbench.runner.ray_executor import slots_on_nodes
from claimbench.store.cache import open_cache
from claimbench.store.files import read_json_bounded
from claimbench.store.records import MAX_RECORD_BYTES, record_problem
from claimbench.suite import Rules, Suite, expand
from claimbench.trial import TrialStatus
from claimbench.workloads.builtin import TrialSpec


@dataclass
class SuitePlan:
    suite: Suite
    run_dir: Path
    total: int
    cached: int
    new: list[TrialSpec]
    damaged: int = 0  # record files that fail verification: retrained
    rules: Rules = field(default_factory=Rules)  # the experimenter loop's compute rules for this run
    first_look: int = 0  # trials of the seeds before the first look: the fewest an adaptive run trains


@dataclass
class Plan:
    suites: list[SuitePlan]
    new: list[TrialSpec]  # distinct trials to train (suites of a group may share trials)
    packs: list[list[TrialSpec]]
    workers: int
    model: CostModel = field(default_factory=CostModel)  # fitted on the records of the run dirs and the cache
    notes: list[str] = field(default_factory=list)

    @property
    def measured_from(self) -> int:
        """Records the cost model learned from (0: the default model alone)."""
        return self.model.ratios.count()

    @property
    def estimate_s(self) -> float:
        seconds = [[self.model.seconds(s) for s in p] for p in self.packs]
        shared = [x for x, p in zip(seconds, self.packs) if not _exclusive(p)]
        alone = [x for x, p in zip(seconds, self.packs) if _exclusive(p)]
        return makespan(shared, self.workers, alone)


def _exclusive(pack: list[TrialSpec]) -> bool:
    return bool(pack) and all(s.exclusive for s in pack)


def _cached(run_dir: Path, ids: set[str] | None, accept_halted: bool = True) -> tuple[dict[str, dict], int]:
    """Final, verified records of ``ids`` (every id when None) in ``run_dir`` (id -> record data), and how
    many of those files fail verification; read without moving anything (``RunStore.records`` would
    quarantine). A halted record is final only with ``accept_halted`` (an exhaustive run trains it whole)."""
    trials = run_dir / "trials"
    found, damaged = {}, 0
    if not trials.is_dir():
        return found, damaged
    for p in trials.glob("*.json"):
        if ids is not None and p.stem not in ids:
            continue
        try:  # as the store reads them: without blocking, a regular file, bounded (a FIFO is damage, not a hang)
            data = read_json_bounded(p, MAX_RECORD_BYTES)
        except (OSError, ValueError, RecursionError):
            damaged += 1
            continue
        if record_problem(data, p.stem):
            damaged += 1
        elif TrialStatus(data["status"]).is_final(accept_halted):
            found[p.stem] = data
    return found, damaged


def workers_for(executor: str, cpus_per_trial: float, gpus_per_trial: float) -> tuple[int, str]:
    """The workers ``executor`` would start on this machine, and a note when that is a guess."""
    if executor == "local":
        return 1, ""
    gpus = 0
    if gpus_per_trial:
        import torch  # lazy: only a slot that asks for a GPU needs torch; a dry run otherwise never imports it

        gpus = torch.cuda.device_count()
    slots = slots_on_nodes([{"CPU": float(os.cpu_count() or 1), "GPU": float(gpus)}], cpus_per_trial, gpus_per_trial)
    return max(1, slots), ("" if slots else "no slot of this machine fits a trial's resources")


#: Records of the trial cache read for the cost model (a sample: listing and reading a large cache costs seconds).
CACHE_SAMPLE = 200


def plan(targets: list[tuple[Suite, Path]], pack_size: int, executor: str = "ray", address: str | None = None,
         cpus_per_trial: float = 1.0, gpus_per_trial: float = 0.0, exhaustive: bool = False,
         cache: str | None = None) -> Plan:
    """What a run of ``targets`` (suite, run dir) would train, in which packs, and the cost model to time it:
    every trial not yet recorded in its run dir nor in the trial cache ``cache`` (``--cache``, else
    ``CLAIMBENCH_CACHE``); an adaptive run may train fewer (``SuitePlan.rules``, ``first_look``)."""
    shared = open_cache(cache)
    suites, todo, samples = [], {}, []
    for suite, run_dir in targets:
        specs = expand(suite)
        found, damaged = _cached(Path(run_dir), {s.trial_id for s in specs}, accept_halted=not exhaustive)
        if shared is not None:
            missing = [s.trial_id for s in specs if s.trial_id not in found]
            found |= {tid: r.to_dict() for tid, r in shared.get_many(missing, accept_halted=not exhaustive).items()}
        new = [s for s in specs if s.trial_id not in found]
        rules = suite.rules(exhaustive)
        opened = set(suite.seeds[:rules.looks[0]]) if rules.active else set(suite.seeds)
        suites.append(SuitePlan(suite=suite, run_dir=Path(run_dir), total=len(specs), cached=len(specs) - len(new),
                                new=new, damaged=damaged, rules=rules,
                                first_look=sum(s.seed in opened for s in specs)))
        for s in new:
            todo.setdefault(s.trial_id, s)
        # every final record in the run dir, those of earlier code included (a code change retrains them, but what
        # they took still says how fast this machine trains such trials)
        timed = _cached(Path(run_dir), None)[0] | found if len(found) < len(specs) else found
        samples += [x for x in map(Sample.of, timed.values()) if x is not None]
    if shared is not None and todo:
        samples += [x for r in shared.sample(CACHE_SAMPLE)
                    if (x := Sample.from_parts(r.status, r.wall_s, r.spec)) is not None]
    workers, note = workers_for(executor, cpus_per_trial, gpus_per_trial)
    notes = [note] if note else []
    if executor == "ray" and address:
        notes.append(f"--address {address}: the cluster is not contacted, so the estimate is for this machine's "
                     f"{workers} slot{'s' if workers != 1 else ''}")
    new = list(todo.values())
    packs = make_packs(new, pack_size, workers=workers) if new else []
    return Plan(suites=suites, new=new, packs=packs, workers=min(workers, max(1, sum(not _exclusive(p) for p in packs))),
                model=CostModel.fit(samples), notes=notes)


def describe(p: Plan, tier: str) -> list[str]:
    """The plan as lines for the terminal."""
    lines = []
    for sp in p.suites:
        extra = f"; {sp.damaged} damaged record{'s' if sp.damaged != 1 else ''} would retrain" if sp.damaged else ""
        lines.append(f"{sp.suite.name} [{tier}]: {sp.total} trials ({len(sp.suite.seeds)} seed{'s' if len(sp.suite.seeds) != 1 else ''}), "
                     f"{sp.cached} cached, "
                     f"{len(sp.new)} new{extra}; run dir {sp.run_dir}")
        r = sp.rules
        if r.active:
            lines.append(f"  adaptive: from {sp.first_look} trials (seeds before the first look, every cell) to all "
                         f"{sp.total}: looks at {', '.join(map(str, r.looks))} seeds, futility from {r.futility_from} "
                         f"(p > {r.futility:g} both ways), pruning to each group's top {r.prune}; --exhaustive trains all")
        if r.halve:
            lines.append(f"  halving: at {r.halve:g} of the budget, tuned values below each group's top {r.prune} "
                         f"leave their pack (the estimate counts their whole budget)")
    widths = sorted((len(pk) for pk in p.packs), reverse=True)
    timed = sum(_exclusive(pk) for pk in p.packs)
    shown = ", ".join(map(str, widths[:12])) + (", ..." if len(widths) > 12 else "")
    lines.append(f"new: {len(p.new)} distinct trials in {len(p.packs)} packs"
                 + (f" (widths {shown}; {timed} timing pack{'s' if timed != 1 else ''} run alone)" if p.packs else "")
                 + f" on {p.workers} worker{'s' if p.workers != 1 else ''}")
    source = p.model.source(p.new) if p.new else "nothing to train"
    most = " at most (every new trial; adaptive rules train fewer)" if any(sp.rules.active for sp in p.suites) else ""
    lines.append(f"estimate: {_duration(p.estimate_s)} of training{most} ({source}; Ray's start not counted)")
    lines += [f"note: {n}" for n in p.notes]
    lines.append("dry run: nothing was trained or written")
    return lines


def _duration(seconds: float) -> str:
    if seconds < 1:
        return "under 1 s"
    if seconds < 120:
        return f"about {math.ceil(seconds)} s"
    if seconds < 7200:
        return f"about {seconds / 60:.0f} min"
    return f"about {seconds / 3600:.1f} h"
