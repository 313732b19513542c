"""The driver: ``run`` trains K trials' states on one engine.

The loop reads top to bottom (``_train``): per step — set each trial's LR from its schedule, take
each trial's minibatch (its own data order), forward, check for divergence, backward, (measure
gradients), clip, update — and at each evaluation point measure train/val/test, update the schedule,
check the target and early stopping. A trial leaves the pack when it diverges (before its update),
stops early, fails or finishes; the others go on.
"""

from __future__ import annotations

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
        inject_error: list[bool] | None = None, start: float | None = None) -> list[TrialRecord]:
    """Train ``specs`` (one Plan: the same batch size and budget) on engines from ``make_engine``; one
    record per spec, in order. Never raises: an exception fails every trial still training, with the
    reason on one line. ``start``: when the work for these trials began (setup is charged to them)."""
    start = time.perf_counter() if start is None else start
    flags = list(inject_error) if inject_error is not None else [False] * len(specs)
    states: list[TrialState] = []
    try:
        plan = Plan.of(specs[0], data)
        states = [TrialState(s, plan, s.lr, inject) for s, inject in zip(specs, flags)]
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
            clock.charge(len(active), training=False)
            active = leave(going)
    for s in active:  # what is left ran its whole budget
        s.complete(step)
    clock.charge(len(active), training=False)
    active = leave([])


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
