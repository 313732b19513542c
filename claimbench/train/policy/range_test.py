"""The LR range test.

``kind = "range_test"`` (Smith 2017; fastai's rule): before training, raise the LR exponentially
from ``range_lr_min`` to ``range_lr_max`` over ``range_steps`` steps, one minibatch each, smoothing
the loss with a bias-corrected EMA (beta 0.98); stop early when the smoothed loss exceeds 4x its
minimum or the loss is non-finite. The suggested LR is **the LR at the minimum smoothed loss,
divided by 10**. Then the model is re-initialised from the same seed (a new engine) and trained for
the spec's budget with that LR (``spec.lr`` is ignored), so the record's metrics are comparable with
grid-searched trials. The range phase is set up as training is: the same engine, data order and
clipping; only the LR differs, per trial.
"""

from __future__ import annotations

import math

import torch

from claimbench.train.policy.engine import EngineFactory
from claimbench.train.policy.plan import DataOrder
from claimbench.train.policy.state import Clock, TrialState
from claimbench.workloads.builtin import TrialSpec

RANGE_BETA = 0.98  # the range test's loss smoothing
RANGE_STOP = 4.0  # the range test stops when the smoothed loss exceeds this x its minimum
RANGE_DIVISOR = 10.0  # suggested LR = LR at the minimum smoothed loss / this


def run_range_tests(states: list[TrialState], make_engine: EngineFactory, device: torch.device, mark: float) -> float:
    """The LR range test of each state (module docstring), on its own engine; leaves each state with its
    suggested LR as its base LR and its range metrics, or diverged when no finite loss was seen. Returns
    the clock's mark."""
    plan = states[0].plan
    clock = Clock(states, mark)
    engine = make_engine([s.spec for s in states])
    order = DataOrder([s.spec.seed for s in states], plan, device)
    sweeps = [_Sweep(s.spec) for s in states]
    active = list(range(len(states)))
    for i in range(max(s.spec.range_steps for s in states)):
        lrs = [sweeps[j].lr(i) for j in active]
        losses = engine.losses(order.batch(i))
        going = [r for r, (j, value) in enumerate(zip(active, losses.tolist())) if sweeps[j].observe(i, value)]
        clock.charge(len(active), training=False)
        clock.sync([states[j] for r, j in enumerate(active) if r not in going])
        if not going:
            break
        engine.backward(losses, going)
        order.keep(going)
        active = [active[r] for r in going]
        engine.update([lrs[r] for r in going])
    clock.charge(len(active), training=False)
    clock.sync([states[j] for j in active])
    for s, sweep in zip(states, sweeps):
        s.range_curve = sweep.curve
        if sweep.best_lr is None:
            s.diverge(0, "range test: no finite loss at any LR")
            continue
        s.base_lr = sweep.best_lr / RANGE_DIVISOR
        stop = sweep.stop_lr if sweep.stop_lr is not None else sweep.curve[-1]["lr"]
        # Measured before the training run, so kept even when that run diverges.
        s.extra.update(range_suggested_lr=s.base_lr, range_min_loss_lr=sweep.best_lr, range_stop_lr=stop)
    return clock.mark


class _Sweep:
    """One trial's LR range test: its exponential LR ramp, smoothed loss and stopping rule."""

    def __init__(self, spec: TrialSpec):
        self.spec = spec
        self.growth = (spec.range_lr_max / spec.range_lr_min) ** (1 / max(spec.range_steps - 1, 1))
        self.curve: list[dict[str, float]] = []
        self.avg, self.best, self.best_lr, self.stop_lr = 0.0, math.inf, None, None
        self.current = 0.0

    def lr(self, i: int) -> float:
        self.current = self.spec.range_lr_min * self.growth ** i
        return self.current

    def observe(self, i: int, value: float) -> bool:
        """The loss at step i (before its update); False when the sweep ends here."""
        if i >= self.spec.range_steps:
            return False
        lr = self.current
        if not math.isfinite(value):
            self.stop_lr = lr
            return False
        self.avg = RANGE_BETA * self.avg + (1 - RANGE_BETA) * value
        smoothed = self.avg / (1 - RANGE_BETA ** (i + 1))  # bias-corrected
        self.curve.append({"lr": lr, "loss": value, "smoothed": smoothed})
        if smoothed < self.best:
            self.best, self.best_lr = smoothed, lr
        if i > 0 and smoothed > RANGE_STOP * self.best:
            self.stop_lr = lr
            return False
        return True
