"""The driver: ``run`` trains K trials' states on one engine.

The loop reads top to bottom (``_train``): per step — set each trial's LR from its schedule, take
each trial's minibatch (its own data order), forward, check for divergence, backward, (measure
gradients), clip, update — and at each evaluation point measure train/val/test, update the schedule,
check the target and early stopping. A trial leaves the pack when it diverges (before its update),
stops early, fails or finishes; the others go on.

Successive halving (``halving_losers``): a trial with a directive (the experimenter loop's ``halve`` rule)
is ranked, at its rung — the first evaluation at or after its fraction of the budget — within each of its
groups (the trials that differ from it only in a tuned value, for one claim); it leaves the pack, halted,
when it is among the ``k`` best of none of them. A group ranks only when every member trains in this pack:
a group split across packs never halts anyone.
"""

from __future__ import annotations

import math
import statistics
import time

import torch

from claimbench.train.policy.engine import Engine, EngineFactory
from claimbench.train.policy.plan import DataOrder, Plan
from claimbench.train.policy.range_test import run_range_tests
from claimbench.train.policy.state import INJECTED, TIMING_ROUNDS, Clock, TrialState, failure_text
from claimbench.trial import TrialRecord, TrialStatus
from claimbench.workloads.builtin import TrialSpec
from claimbench.workloads.data import Dataset


def run(specs: list[TrialSpec], data: Dataset, device: torch.device, make_engine: EngineFactory,
        inject_error: list[bool] | None = None, start: float | None = None,
        halving: list[dict | None] | None = None) -> list[TrialRecord]:
    """Train ``specs`` (one Plan: the same batch size and budget) on engines from ``make_engine``; one
    record per spec, in order. Never raises: an exception fails every trial still training, with the
    reason on one line. ``start``: when the work for these trials began (setup is charged to them).
    ``halving``: each spec's halving directive, or None (``halving_losers``)."""
    start = time.perf_counter() if start is None else start
    flags = list(inject_error) if inject_error is not None else [False] * len(specs)
    states: list[TrialState] = []
    try:
        plan = Plan.of(specs[0], data)
        states = [TrialState(s, plan, s.lr, inject) for s, inject in zip(specs, flags)]
        for s, d in zip(states, halving or [None] * len(states)):
            s.halving = d if d and len(specs) > 1 else None  # a pack of one: its group is never complete
        mark = start
        ranged = [s for s in states if s.spec.kind == "range_test"]
        if ranged:
            mark = run_range_tests(ranged, make_engine, device, mark)
        training = [s for s in states if s.status is None]
        if training:
            _train(training, make_engine, device, mark)
    except Exception as e:  # a bug or a bad dataset: a failure is a result, with its reason
        text = failure_text(e, "; packed" if len(specs) > 1 else "")
        if not states:
            states = [TrialState(s, Plan(s.batch_size, 0, 1, 0, frozenset(), 0, ""), s.lr) for s in specs]
        for s in states:
            if s.status is None:
                s.fail(text)
                s.wall_s = (time.perf_counter() - start) / len(specs)
    return [s.to_record() for s in states]


def _train(states: list[TrialState], make_engine: EngineFactory, device: torch.device, mark: float) -> None:
    """Train every state's budget on one engine, in the loop order of the module docstring."""
    plan = states[0].plan
    clock = Clock(states, mark)
    engine = make_engine([s.spec for s in states])
    for s in states:
        s.engine = engine.name
    order = DataOrder([s.spec.seed for s in states], plan, device)
    active = list(states)
    noise = any(s.spec.measure_noise_scale for s in states)
    rungs = {id(s): rung_step(s.halving, plan.eval_at, plan.total) for s in states}

    def leave(going: list[int]) -> list[TrialState]:
        """Rows ``going`` go on; the others have their shares, and a trial that completed is measured,
        before its rows are dropped."""
        if len(going) < len(active):
            clock.sync([s for j, s in enumerate(active) if j not in going])
            for j, s in enumerate(active):
                if j not in going:
                    _finish(engine, j, s)
            engine.keep(going)
            order.keep(going)
        return [active[j] for j in going]

    first = _evaluate(engine, active, 0)
    found = engine.noise_scale(0) if noise else [{}] * len(active)
    for s, m, n in zip(active, first, found):
        s.begin(m, n)
    clock.charge(len(active), training=False)  # setup and the first evaluation
    step = 0
    while step < plan.total and active:
        clock.charge(len(active), training=False)  # between steps: evaluation bookkeeping
        step_start = clock.train
        # --- one step, for every trial still training
        lrs = [s.set_lr(step) for s in active]
        losses = engine.losses(order.batch(step))
        going = [j for j, (s, value) in enumerate(zip(active, losses.tolist())) if s.after_loss(step, value)]
        if not going:  # every trial diverged
            active = leave([])
            break
        if len(going) < len(active):  # a diverged trial gets no gradient; its rows leave before the update
            clock.sync([s for j, s in enumerate(active) if j not in going])
            order.keep(going)
            active, lrs = [active[j] for j in going], [lrs[j] for j in going]
        engine.backward(losses, going)
        if step == 0 or step + 1 in plan.eval_at:  # raw gradients, before clipping; not timed as training
            clock.charge(len(active), training=True)
            for s, norms in zip(active, engine.grad_norms()):
                s.on_grad_norms(step, norms)
            clock.charge(len(active), training=False)
        engine.update(lrs)
        step += 1
        clock.charge(len(active), training=True)
        if len(active) == 1 and active[0].spec.exclusive:  # a timing trial trains alone: its own steps
            active[0].step_s.append(clock.train - step_start)
        if any(s.inject_error for s in active):
            for s in active:
                if s.inject_error:
                    s.fail(INJECTED)
            active = leave([j for j, s in enumerate(active) if s.status is None])

        # --- evaluation
        if step in plan.eval_at and active:
            metrics = _evaluate(engine, active, step)
            found = engine.noise_scale(step) if noise else [{}] * len(active)
            clock.sync(active)
            going = []
            for j, (s, m, n) in enumerate(zip(active, metrics, found)):
                if s.after_eval(step, m, n):
                    going.append(j)
                if s.improved and s.keeps_checkpoint:
                    engine.checkpoint(j)
            at_rung = [j for j in going if rungs[id(active[j])] == step]
            if at_rung:
                losers = halving_losers(states, [active[j] for j in at_rung], step)
                for j in at_rung:
                    if id(active[j]) in losers:
                        active[j].halt(step)
                going = [j for j in going if active[j].status is None]
            clock.charge(len(active), training=False)
            active = leave(going)
    for s in active:  # what is left ran its whole budget
        s.complete(step)
    clock.charge(len(active), training=False)
    active = leave([])


def rung_step(directive: dict | None, eval_at, total: int) -> int | None:
    """The step of a directive's rung: the first evaluation at or after its fraction of ``total`` steps, when
    one comes before the end of the budget (halting at the end saves nothing); else None."""
    if not directive or not directive.get("groups"):
        return None
    at = [e for e in sorted(eval_at) if e >= float(directive["rung"]) * total]
    return at[0] if at and at[0] < total else None


def halving_losers(pack: list[TrialState], ranked: list[TrialState], step: int) -> set[int]:
    """The trials of ``ranked`` (each at its rung, ``step``) that halving stops: for each of their groups
    whose members all train in ``pack``, the members ranked by the group's metric at this evaluation (a
    member that left earlier by its last evaluation; a diverged or failed one, or one without the metric, last;
    ties in pack order); a trial goes on when it is among the ``k`` best of at least one of its groups, or when
    one of its groups is incomplete here. Returns the ``id``s of the trials that stop."""
    members: dict[str, list[TrialState]] = {}
    for s in pack:
        for key, *_ in (s.halving or {}).get("groups", ()):
            members.setdefault(key, []).append(s)
    survivors: set[int] = set()
    for s in ranked:
        k = int(s.halving.get("k", 1))
        for key, select, sign, size in s.halving["groups"]:
            group = members.get(key, [])
            if len(group) != int(size) or any(m.status is None and m.curve[-1]["step"] != step for m in group):
                survivors.add(id(s))  # split across packs, or not at the rung together: nobody halts
                continue

            def score(m: TrialState) -> float:
                if m.status in (TrialStatus.DIVERGED, TrialStatus.FAILED) or not m.curve:
                    return -math.inf
                v = m.curve[-1].get(select)
                return float(sign) * float(v) if v is not None and math.isfinite(v) else -math.inf

            order = sorted(range(len(group)), key=lambda i: -score(group[i]))  # stable: pack order on ties
            if not math.isfinite(score(s)) and s.status is None:
                survivors.add(id(s))  # no metric to rank it by: it goes on
            elif any(group[i] is s for i in order[:k]):
                survivors.add(id(s))
    return {id(s) for s in ranked if s.halving and id(s) not in survivors}


def _evaluate(engine: Engine, states: list[TrialState], step: int) -> list[dict[str, float]]:
    """The evaluation after ``step`` steps: the train probe and val for every row; test for the rows
    whose trial reads it there (``TrialState.reads_test``), in one pass for those rows."""
    metrics = engine.evaluate(("train", "val"))
    rows = [j for j, (s, m) in enumerate(zip(states, metrics)) if s.reads_test(step, m)]
    if rows:
        for j, found in zip(rows, engine.evaluate(("test",), rows)):
            metrics[j].update(found)
    return metrics


def _finish(engine: Engine, j: int, s: TrialState) -> None:
    """End-of-training measurements of a completed trial (still row j of the engine)."""
    if s.spec.measure_latency and s.status is TrialStatus.COMPLETED:
        restore = s.keeps_checkpoint and s.best[1] > 0
        rounds = TIMING_ROUNDS if s.spec.exclusive else 1  # a timing trial: the median of several measurements
        s.final["forward_latency_s"] = statistics.median(engine.latency(j, restore) for _ in range(rounds))
