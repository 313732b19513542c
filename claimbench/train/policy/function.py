"""A workload's own training function under the trial policy.

A workload's training function (workloads/spec.py) gets the same policy as the engines through ``Context``:
its ``ctx.report(...)`` at each evaluation feeds one ``TrialState`` (``after_report``: the reported
training loss stands for the smoothed one), and ``ctx.should_stop()`` says when the trial is done.
"""

from __future__ import annotations

import time
from typing import Callable

import torch

from claimbench.train.policy.plan import Plan
from claimbench.train.policy.state import INJECTED, TrialState, failure_text
from claimbench.trial import TrialRecord
from claimbench.workloads.builtin import TrialSpec


class Context:
    """The ``ctx`` of a training function (workloads/spec.py ``Context``): its reports feed one
    ``TrialState``, so that a user's loop gets the trial policy (``state``) — divergence, target, best,
    early stopping, the record — with no rule written twice.

    ``report(step, ...)`` at ``eval_steps`` (step 0 first, before any update): train_loss, val_loss and
    the score (val_acc for classification, val_r2 for regression) are required; every other number
    (test_acc, train_acc, test_loss, ..., the function's own metrics) goes into the curve and, as its last
    (or restored best) value, the record's metrics. ``lr``, ``epoch`` and ``examples`` are the function's
    own, at that step: the curve's ``lr`` and ``epoch`` are what it reports, and absent where it reports
    none (claimbench neither sets its LR nor knows its epochs); ``examples`` defaults to step x batch_size.
    A metric may not take a name of what the policy measures itself (``OWN``). ``should_stop()`` is True
    once the budget is spent or the trial diverged or stopped early; reports after that are ignored.
    ``time_per_step_s`` is the function's wall time up to its last report over its steps (its own
    evaluations included: its loop is not ours to time)."""

    def __init__(self, state: TrialState, params: dict, device: torch.device, inject_error: bool = False):
        self.spec, self.params, self.device = state.spec, dict(params), device
        self.total_steps = state.plan.total
        self.eval_steps = (0, *sorted(state.plan.eval_at))
        self._state, self._last, self._inject = state, -1, inject_error
        self._start = time.perf_counter()

    def report(self, step: int, *, examples: int | None = None, lr: float | None = None,
               epoch: float | None = None, **metrics: float) -> None:
        s = self._state
        if s.status is not None:
            return
        if isinstance(step, bool) or not isinstance(step, int) or step <= self._last or step > self.total_steps:
            raise ValueError(f"ctx.report(step=...) takes increasing integer steps from 0 to {self.total_steps}, "
                             f"got {step!r} after {self._last}")
        if self._last < 0 and step != 0:
            raise ValueError(f"the first ctx.report must be at step 0 (before training), got step {step}")
        need = [k for k in ("train_loss", "val_loss", s.plan.score) if k not in metrics]
        if need:
            raise ValueError(f"ctx.report at step {step} lacks {', '.join(need)} (required: train_loss, val_loss, "
                             f"{s.plan.score})")
        own = [k for k in metrics if k in OWN]
        if own:
            raise ValueError(f"ctx.report's {own[0]} is a name claimbench's curve keeps for its own measurement; "
                             f"report it under another name (reserved: {', '.join(OWN)})")
        m = {k: _number(k, v) for k, v in metrics.items()}
        given = {k: _number(k, v) for k, v in (("lr", lr), ("epoch", epoch), ("examples", examples)) if v is not None}
        if "examples" in given:
            given["examples"] = int(given["examples"])
        self._last, points = step, len(s.curve)
        if step == 0:
            s.begin(m, {})
        else:
            s.steps_done = step
            s.train_s = time.perf_counter() - self._start
            if s.after_report(step, m) and self._inject:
                s.fail(INJECTED)
        if len(s.curve) > points:  # this report is a point of the curve: its lr and epoch are the function's
            point = s.curve[-1]
            for key in ("lr", "epoch"):  # the policy's own: the base LR, a share of the budget
                point.pop(key, None)
            point.update(given)
        if s.status is None and step >= self.total_steps:
            s.complete(step)

    def should_stop(self) -> bool:
        return self._state.status is not None


#: Curve columns the policy measures itself (and a curve frame's own columns), which a report may not name.
OWN = ("train_loss_ema", "grad_ratio", "elapsed_s", "trial_id", "status")


def _number(name: str, value) -> float:
    """A reported value as a float; ValueError naming it when it is not a number."""
    if isinstance(value, (int, float)) or hasattr(value, "item"):  # a Python or NumPy number, a 1-element tensor
        try:
            return float(value)
        except (TypeError, ValueError):
            pass
    raise ValueError(f"ctx.report's {name} must be a number, got {type(value).__name__}")


def run_function(spec: TrialSpec, train: Callable[[dict, Context], None], params: dict, task: str,
                 device: torch.device, start: float | None = None, inject_error: bool = False) -> TrialRecord:
    """Train one trial with a workload's training function ``train(params, ctx)``; never raises. The record
    is the policy's (``Context``); the function failing, or returning before ``ctx.should_stop()`` said
    so, is a ``failed`` record with the reason on one line."""
    start = time.perf_counter() if start is None else start
    state: TrialState | None = None
    try:
        state = TrialState(spec, Plan.of_steps(spec, task), spec.lr, engine="function")
        ctx = Context(state, params, device, inject_error)
        train(dict(params), ctx)
        if state.status is None:
            raise RuntimeError(f"the training function returned at step {max(ctx._last, 0)} of {ctx.total_steps} "
                               f"before ctx.should_stop() was true" if state.curve else
                               "the training function returned without calling ctx.report")
    except Exception as e:  # the user's code failed: a result, with its reason
        if state is None:
            state = TrialState(spec, Plan(spec.batch_size, 0, 1, 0, frozenset(), 0, ""), spec.lr)
        if state.status is None:
            state.fail(failure_text(e))
    state.wall_s = time.perf_counter() - start
    return state.to_record()
