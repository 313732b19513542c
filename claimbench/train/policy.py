"""THE trial policy: what a trial means, written once for every engine.

An engine (``Engine`` below: ``loop.SingleEngine`` for one ``nn.Module``, ``packed.PackedEngine``
for K stacked models) only moves tensors: forward, backward, clip and update, evaluate. This module
owns everything else, per trial, in ``TrialState``, and drives K of them with ``run``.

The loop reads top to bottom (``_train``): per step — set each trial's LR from its schedule, take
each trial's minibatch (its own data order), forward, check for divergence, backward, (measure
gradients), clip, update — and at each evaluation point measure train/val/test, update the schedule,
check the target and early stopping. A trial leaves the pack when it diverges (before its update),
stops early, fails or finishes; the others go on.

- **Budget.** ``steps``, or ``epochs`` x (training examples // batch size): the last partial batch
  is dropped, so every step sees ``batch_size`` examples. ``evals`` evaluations spread evenly over
  the budget, plus one at step 0.
- **Batch-size schedule** (``batch_schedule = "step"``; Smith et al. 2018, "Don't decay the learning
  rate, increase the batch size", arXiv 1711.00489): the budget is counted in examples (``epochs`` x
  the examples an epoch at ``batch_size`` uses, or ``steps`` x ``batch_size``), and at 50% and 75% of
  it — the steps where ``schedule = "step"`` would cut the LR, ``optim.Schedule`` — the batch grows by
  ``batch_factor``: each phase trains its share of the examples in as many whole batches of its size as
  fit (the remainder is dropped, as an epoch's last partial batch is), so the run takes fewer
  parameter updates. ``steps_*`` count updates, ``examples_*`` examples; each curve point has its
  ``batch_size``; evaluations are spread evenly over the examples; the data order takes each batch from
  the epoch's permutation and starts a new one when the next batch no longer fits.
- **Divergence** (an outcome, with the step it happened at): a non-finite training loss, or a
  smoothed training loss (EMA, weight 0.1 on the newest minibatch) above ``divergence_factor`` x
  the initial training loss (on the probe of training examples at step 0); or a non-finite
  validation loss at an evaluation. A diverged trial has no final metrics: never filled in.
- **Target:** ``steps_to_target`` is the first evaluation whose score (val_acc for classification,
  val_r2 for regression) reaches ``target``.
- **Best and early stopping:** the best evaluation by score; with ``patience``, training stops
  after that many evaluations without a better score, and with ``restore_best`` the reported
  metrics are the best evaluation's (the engine restores its checkpoint before measuring latency).
- **Measurements:** ``grad_norms_init`` — each weight layer's gradient norm on the first batch,
  before clipping; ``grad_ratio`` — first / last of those norms, from the step before each
  evaluation; ``time_per_step_s`` counts training steps only (not evaluation or measurements), as
  the trial's share of each step (the step's time / the trials trained in it); ``wall_s`` is its
  share of the whole. Gradient noise scale and latency: see ``loop``.
- **Failure:** any exception becomes ``failed`` records whose error is one line.

A workload's own training function (workloads/spec.py) gets the same policy through ``Context``:
its ``ctx.report(...)`` at each evaluation feeds one ``TrialState`` (``after_report``: the reported
training loss stands for the smoothed one), and ``ctx.should_stop()`` says when the trial is done.

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

import contextlib
import contextvars
import dataclasses
import math
import statistics
import time
import traceback
from dataclasses import dataclass, field
from typing import Callable, Protocol

import torch

from claimbench.train.optim import Schedule
from claimbench.trial import TrialRecord, TrialStatus
from claimbench.workloads.builtin import TrialSpec
from claimbench.workloads.data import Dataset

EMA = 0.1  # weight of the newest minibatch loss in the smoothed training loss
RANGE_BETA = 0.98  # the range test's loss smoothing
RANGE_STOP = 4.0  # the range test stops when the smoothed loss exceeds this x its minimum
RANGE_DIVISOR = 10.0  # suggested LR = LR at the minimum smoothed loss / this
INJECTED = "RuntimeError: injected fault (CLAIMBENCH_FAULTS raise)"
TIMING_WARMUP_STEPS = 10  # exclusive (timing) trials: steps left out of the median time per step
TIMING_MIN_STEPS = 10  # exclusive (timing) trials: fewer timed steps than this (diverged early) time nothing
TIMING_ROUNDS = 7  # exclusive (timing) trials: forward-latency measurements, of which the median is kept

#: Who hears of each evaluation (``observing``): the executors' progress. Scoped to a ``with`` block in
#: this thread, never set for the process; it only reads, so no result depends on it.
_OBSERVER: contextvars.ContextVar[Callable[[str, int, int], None] | None] = contextvars.ContextVar(
    "claimbench_eval_observer", default=None)


@contextlib.contextmanager
def observing(callback: Callable[[str, int, int], None]):
    """Call ``callback(trial_id, step, total_steps)`` at every evaluation of every trial trained inside."""
    token = _OBSERVER.set(callback)
    try:
        yield
    finally:
        _OBSERVER.reset(token)


class Engine(Protocol):
    """What the policy asks of an engine holding K trials' models (rows 0..K-1, in the order given)."""

    name: str  # recorded in each TrialRecord: "single", "packed-mlp", "packed-cnn", ...

    def losses(self, idx: torch.Tensor) -> torch.Tensor:
        """Train-mode forward of row k on training examples ``idx[k]`` (idx: (K, B)): the (K,) mean losses."""

    def backward(self, losses: torch.Tensor, rows: list[int]) -> None:
        """Gradients of the rows in ``rows`` only; then every other row is dropped (``keep(rows)``)."""

    def grad_norms(self) -> list[list[float]]:
        """Per row, the L2 norm of each weight layer's gradient (models.weight_layers' order)."""

    def update(self, lrs: list[float]) -> None:
        """Clip each row's gradient (its spec's clipping), then its optimizer step with LR ``lrs[k]``."""

    def evaluate(self) -> list[dict[str, float]]:
        """Per row, ``metrics.evaluate``'s metrics (one batched pass for all rows); leaves train mode on."""

    def keep(self, rows: list[int]) -> None:
        """Drop every row not in ``rows`` (trials that left)."""

    def checkpoint(self, k: int) -> None:
        """Keep row k's current weights (its best so far)."""

    def latency(self, k: int, restore: bool) -> float:
        """Row k's forward latency (metrics.forward_latency), after restoring its checkpoint if ``restore``."""

    def noise_scale(self, step: int) -> list[dict[str, float]]:
        """Per row, a gradient noise scale measurement ({} where the spec does not ask for one)."""


EngineFactory = Callable[[list[TrialSpec]], Engine]


@dataclass(frozen=True)
class Plan:
    """What every trial of a pack shares: the batch size, the budget and its evaluation points."""

    batch_size: int
    n_train: int
    steps_per_epoch: int
    total: int
    eval_at: frozenset[int]
    probe: int  # training examples in the fixed probe for train metrics
    score: str  # higher is better (best, target, patience): val_acc for classification, val_r2 for regression
    phases: tuple[tuple[int, int, int], ...] = ()  # batch schedule: (first step, batch size, examples before it)

    def batch_at(self, step: int) -> int:
        """The batch size of the update at ``step``."""
        if not self.phases:
            return self.batch_size
        return next(b for first, b, _ in reversed(self.phases) if step >= first)

    def examples_at(self, step: int) -> int:
        """Training examples seen in the first ``step`` updates."""
        if not self.phases:
            return step * self.batch_size
        first, b, before = next(p for p in reversed(self.phases) if step >= p[0])
        return before + (step - first) * b

    def epoch_at(self, step: int) -> float:
        """Epochs (of ``steps_per_epoch`` batches of ``batch_size``) done after ``step`` updates."""
        if not self.phases:
            return step / self.steps_per_epoch
        return self.examples_at(step) / (self.steps_per_epoch * self.batch_size)

    @classmethod
    def of(cls, spec: TrialSpec, data: Dataset) -> "Plan":
        n_train = len(data.y_train)
        if spec.batch_size > n_train:
            raise ValueError(f"batch_size {spec.batch_size} exceeds the {n_train} training examples of "
                             f"{spec.dataset or spec.workload}")
        steps_per_epoch = n_train // spec.batch_size  # drop the last partial batch: every step sees batch_size
        total = spec.steps or spec.epochs * steps_per_epoch
        score = "val_acc" if data.task == "classification" else "val_r2"
        probe = min(n_train, len(data.y_val))
        if spec.batch_schedule == "step":
            return cls._batch_schedule(spec, n_train, steps_per_epoch, total, probe, score)
        eval_at = frozenset(round(total * i / spec.evals) for i in range(1, spec.evals + 1))
        return cls(spec.batch_size, n_train, steps_per_epoch, total, eval_at, probe, score)

    @classmethod
    def _batch_schedule(cls, spec: TrialSpec, n_train: int, steps_per_epoch: int, base_total: int, probe: int,
                        score: str) -> "Plan":
        """The phases of a batch-size schedule (module docstring): the budget's ``base_total`` steps at
        ``batch_size`` split where the step LR schedule cuts (the first step at or past 50% and 75%), each
        part's examples trained at batch_size x factor^i."""
        b, k = spec.batch_size, spec.batch_factor
        if b * k * k > n_train:
            raise ValueError(f"batch_schedule step grows batch {b} to {b * k * k}, more than the {n_train} "
                             f"training examples; use a smaller batch_size or batch_factor")
        cuts = [0, (base_total + 1) // 2, (3 * base_total + 3) // 4, base_total]  # ceil(T/2), ceil(3T/4)
        phases, step, seen = [], 0, 0
        for i in range(3):
            size = b * k ** i
            phases.append((step, size, seen))
            n = (cuts[i + 1] - cuts[i]) * b // size
            step, seen = step + n, seen + n * size
        plan = cls(b, n_train, steps_per_epoch, step, frozenset(), probe, score, tuple(phases))

        def first_step(examples: int) -> int:  # the first step by which ``examples`` were seen
            first, size, before = next(p for p in reversed(plan.phases) if examples >= p[2])
            return min(plan.total, first + -(-(examples - before) // size))

        eval_at = frozenset(first_step(round(seen * i / spec.evals)) for i in range(1, spec.evals + 1))
        return dataclasses.replace(plan, eval_at=eval_at - {0} or frozenset({plan.total}))

    @classmethod
    def of_steps(cls, spec: TrialSpec, task: str) -> "Plan":
        """A training function's plan: its ``steps`` budget and evaluation points (its loop owns the data, so
        an epoch is unknown here: ``epoch`` in its curve counts budgets, step / steps)."""
        if not spec.steps:
            raise ValueError(f"a training function's budget is steps, got epochs = {spec.epochs}")
        eval_at = frozenset(round(spec.steps * i / spec.evals) for i in range(1, spec.evals + 1))
        return cls(spec.batch_size, 0, spec.steps, spec.steps, eval_at, 0,
                   "val_acc" if task == "classification" else "val_r2")


class DataOrder:
    """Each trial's data order: its own generator (seeded by its seed), a new permutation each epoch."""

    def __init__(self, seeds: list[int], plan: Plan, device: torch.device):
        self.plan, self.device = plan, device
        self.rngs = [torch.Generator().manual_seed(s) for s in seeds]
        self.perms = torch.empty(len(seeds), 0, dtype=torch.long, device=device)
        self.pos = 0  # a batch schedule: the next example's place in the epoch's permutation

    def batch(self, step: int) -> torch.Tensor:
        """(K, B) training-example indices of each trial's minibatch at ``step``."""
        if self.plan.phases:  # a batch schedule: a new permutation when the next batch no longer fits
            b = self.plan.batch_at(step)
            if step == 0 or self.pos + b > self.plan.n_train:
                self.perms = torch.stack([torch.randperm(self.plan.n_train, generator=g)
                                          for g in self.rngs]).to(self.device)
                self.pos = 0
            self.pos += b
            return self.perms[:, self.pos - b:self.pos]
        b, pos = self.plan.batch_size, step % self.plan.steps_per_epoch
        if pos == 0:
            self.perms = torch.stack([torch.randperm(self.plan.n_train, generator=g) for g in self.rngs]).to(self.device)
        return self.perms[:, pos * b:(pos + 1) * b]

    def keep(self, rows: list[int]) -> None:
        if len(rows) != len(self.rngs):
            self.rngs = [self.rngs[j] for j in rows]
            self.perms = self.perms[torch.tensor(rows, dtype=torch.long, device=self.device)]


@dataclass
class TrialState:
    """One trial while it trains: its schedule, curve, divergence reference, best, target and
    early-stopping state, and its outcome. ``to_record()`` turns it into the TrialRecord."""

    spec: TrialSpec
    plan: Plan
    base_lr: float
    inject_error: bool = False
    engine: str = ""
    schedule: Schedule = field(init=False)
    curve: list[dict] = field(default_factory=list)
    initial_loss: float = math.nan
    smoothed: float | None = None
    best: tuple[float, int, dict] = (-math.inf, 0, {})  # (score, step, metrics)
    improved: bool = False  # the last evaluation was a new best
    bad_evals: int = 0
    steps_to_target: int | None = None
    grad_norms_init: list[float] = field(default_factory=list)
    grad_ratio: float = math.nan
    lr: float = 0.0  # this step's learning rate
    train_s: float = 0.0  # this trial's share of training time
    step_s: list[float] = field(default_factory=list)  # exclusive (timing) trials: each step's training time
    wall_s: float = 0.0  # and of the wall time
    noise: list[tuple[int, dict[str, float]]] = field(default_factory=list)
    steps_done: int = 0
    status: TrialStatus | None = None  # None while training
    diverged_step: int | None = None
    reason: str | None = None
    error: str | None = None
    final: dict[str, float] = field(default_factory=dict)  # measured at the end (latency)
    extra: dict[str, float] = field(default_factory=dict)  # measured before training (range_*): always kept
    range_curve: list[dict[str, float]] = field(default_factory=list)
    metric_keys: list[str] = field(default_factory=list)  # what an evaluation measures

    def __post_init__(self) -> None:
        self.schedule = Schedule(self.spec, self.plan.total)

    @property
    def keeps_checkpoint(self) -> bool:
        """Whether the engine must keep the best weights: restore-best, and latency measures them."""
        return bool(self.spec.patience and self.spec.restore_best and self.spec.measure_latency)

    def set_lr(self, step: int) -> float:
        self.lr = self.base_lr * self.schedule.factor(step)
        return self.lr

    def begin(self, first: dict[str, float], noise: dict[str, float]) -> None:
        """The step-0 evaluation: the curve's first point, the divergence reference and the first best."""
        self.curve.append({"step": 0, "examples": 0, "epoch": 0.0, "lr": self.base_lr * self.schedule.factor(0),
                           "train_loss_ema": math.nan, **first, **self._noise(0, noise), "elapsed_s": 0.0})
        # The divergence reference is the training loss (with the labels or targets trained on, outliers included).
        self.initial_loss = first["train_loss"]
        self.best = (first[self.plan.score], 0, first)
        self.metric_keys = list(first)

    def after_loss(self, step: int, value: float) -> bool:
        """The minibatch loss before the update at ``step``; False (and diverged) when training must stop."""
        self.smoothed = value if self.smoothed is None else (1 - EMA) * self.smoothed + EMA * value
        return self._check_loss(step, value)

    def after_report(self, step: int, m: dict[str, float]) -> bool:
        """A training function's evaluation after ``step`` steps (``Context.report``): its reported
        ``train_loss`` stands for the smoothed minibatch loss (the function's loop owns the minibatches),
        then the divergence rule and ``after_eval``; False when the trial is done."""
        self.smoothed = m["train_loss"]
        return self._check_loss(step, m["train_loss"]) and self.after_eval(step, m, {})

    def _check_loss(self, step: int, value: float) -> bool:
        """The divergence rule on a training loss ``value`` and the smoothed loss; False (diverged) when it fires."""
        if not math.isfinite(value):
            return self.diverge(step, "non-finite training loss")
        if self.smoothed > self.spec.divergence_factor * self.initial_loss:
            return self.diverge(step, f"smoothed training loss {self.smoothed:.3g} > "
                                      f"{self.spec.divergence_factor:g} x initial {self.initial_loss:.3g}")
        return True

    def on_grad_norms(self, step: int, norms: list[float]) -> None:
        if step == 0:
            self.grad_norms_init = norms
        self.grad_ratio = ratio(norms)

    def after_eval(self, step: int, m: dict[str, float], noise: dict[str, float]) -> bool:
        """The evaluation after ``step`` steps; False when the trial is done (diverged or stopped early)."""
        plan = self.plan
        if (observer := _OBSERVER.get()) is not None:
            with contextlib.suppress(Exception):  # progress is never a reason for a trial to fail
                observer(self.spec.trial_id, step, plan.total)
        self.curve.append({"step": step, "examples": plan.examples_at(step), "epoch": plan.epoch_at(step),
                           "lr": self.lr, "train_loss_ema": self.smoothed, "grad_ratio": self.grad_ratio, **m,
                           **self._noise(step, noise), "elapsed_s": self.train_s})
        if plan.phases:  # the batch of the update just taken
            self.curve[-1]["batch_size"] = plan.batch_at(step - 1)
        self.improved = False
        if not math.isfinite(m["val_loss"]):
            return self.diverge(step, "non-finite validation loss")
        self.schedule.on_eval(m["val_loss"])
        score = m[self.plan.score]
        if self.spec.target and self.steps_to_target is None and score >= self.spec.target:
            self.steps_to_target = step
        if score > self.best[0]:
            self.best, self.bad_evals, self.improved = (score, step, m), 0, True
        else:
            self.bad_evals += 1
        if self.spec.patience and self.bad_evals >= self.spec.patience:
            return self.complete(step)  # stopped early
        return True

    def _noise(self, step: int, found: dict[str, float]) -> dict[str, float]:
        if self.spec.measure_noise_scale:
            self.noise.append((step, found))
        return found

    def diverge(self, step: int, reason: str) -> bool:
        self.status, self.diverged_step, self.reason, self.steps_done = TrialStatus.DIVERGED, step, reason, step
        return False

    def complete(self, step: int) -> bool:
        self.status, self.steps_done = TrialStatus.COMPLETED, step
        return False

    def fail(self, error: str) -> bool:
        self.status, self.error = TrialStatus.FAILED, error
        return False

    @property
    def restores_best(self) -> bool:
        return bool(self.spec.patience and self.spec.restore_best)

    def metrics(self) -> dict[str, float]:
        """The reported values (see TrialRecord): none for a diverged trial, never filled in."""
        if self.status is TrialStatus.DIVERGED:
            return dict(self.extra)
        if self.restores_best:
            out = dict(self.best[2])
        else:
            out = {k: self.curve[-1][k] for k in self.metric_keys}
        if self.grad_norms_init:
            out["grad_ratio_init"] = ratio(self.grad_norms_init)
        out.update(self.final)
        out.update(noise_scale_summary(self.noise, self.steps_to_target))
        out.update(self.extra)
        return out

    def _timed(self, b: int) -> dict[str, float | None]:
        return _timed_steps(self.step_s, b) if self.spec.exclusive else {}

    def to_record(self) -> TrialRecord:
        spec, b = self.spec, self.plan.batch_size
        if self.status is TrialStatus.FAILED:
            record = TrialRecord.failed(spec, self.error or "failed")
            record.range_curve = self.range_curve
        else:
            step, plan = self.steps_done, self.plan
            timing = {"time_per_step_s": self.train_s / step if step else None,
                      "examples_per_s": plan.examples_at(step) / self.train_s if self.train_s > 0 else None,
                      **self._timed(b)}
            record = TrialRecord(
                trial_id=spec.trial_id, spec=spec.to_dict(), status=self.status or TrialStatus.COMPLETED,
                metrics=self.metrics(), curve=self.curve, diverged_step=self.diverged_step,
                divergence_reason=self.reason, steps_done=step, examples_done=plan.examples_at(step),
                steps_to_target=self.steps_to_target,
                examples_to_target=plan.examples_at(self.steps_to_target) if self.steps_to_target is not None
                else None,
                best_step=self.best[1] if self.curve else None, stopped_early=self.status is TrialStatus.COMPLETED and step < self.plan.total,
                **timing,
                grad_norms_init=self.grad_norms_init, range_curve=self.range_curve)
        record.wall_s = self.wall_s
        record.engine = self.engine
        return record


def _timed_steps(step_s: list[float], b: int) -> dict[str, float | None]:
    """An exclusive (timing) trial's time per step: the median over its steps after a warm-up of
    ``TIMING_WARMUP_STEPS`` (at most a quarter of them), which a moment of other load cannot move.
    A trial with fewer than ``TIMING_MIN_STEPS`` steps after its warm-up (one that diverged at once)
    has none: absent, never the time of its first, slow steps."""
    kept = step_s[min(TIMING_WARMUP_STEPS, len(step_s) // 4):]
    t = statistics.median(kept) if len(kept) >= TIMING_MIN_STEPS else 0.0
    return {"time_per_step_s": t, "examples_per_s": b / t} if t > 0 else {"time_per_step_s": None, "examples_per_s": None}


def ratio(norms: list[float]) -> float:
    """First layer's gradient norm / the head's; NaN when the head's is 0 (or there are no layers)."""
    return norms[0] / norms[-1] if norms and norms[-1] > 0 else math.nan


def noise_scale_summary(noise: list[tuple[int, dict[str, float]]], steps_to_target: int | None) -> dict[str, float]:
    """``b_simple`` (mean tr Sigma / mean |G|^2 over the measurements after step 0) and ``b_simple_at_target``
    (the same over steps in [steps_to_target / 2, steps_to_target]); a key is absent when it has no
    measurement or its mean |G|^2 is not positive."""
    def of(points: list[dict[str, float]]) -> float | None:
        points = [p for p in points if p]
        if not points:
            return None
        g2 = sum(p["noise_g2"] for p in points) / len(points)
        trace = sum(p["noise_trace"] for p in points) / len(points)
        return trace / g2 if g2 > 0 and math.isfinite(trace / g2) else None

    out = {}
    overall = of([m for step, m in noise if step > 0])
    if overall is not None:
        out["b_simple"] = overall
    if steps_to_target is not None:
        at = of([m for step, m in noise if steps_to_target / 2 <= step <= steps_to_target])
        if at is not None:
            out["b_simple_at_target"] = at
    return out


def failure_text(e: BaseException, where: str = "") -> str:
    """An exception as one line: type, message and the innermost frame."""
    tb = traceback.extract_tb(e.__traceback__)[-1]
    text = " ".join(f"{type(e).__name__}: {e}".split())
    return f"{text} (at {tb.filename.rsplit('/', 1)[-1]}:{tb.lineno}{where})"


# --- a training function's trial ----------------------------------------------------------------

class Context:
    """The ``ctx`` of a training function (workloads/spec.py ``Context``): its reports feed one
    ``TrialState``, so that a user's loop gets the trial policy above — divergence, target, best,
    early stopping, the record — with no rule written twice.

    ``report(step, ...)`` at ``eval_steps`` (step 0 first, before any update): train_loss, val_loss and
    the score (val_acc for classification, val_r2 for regression) are required; every other number
    (test_acc, train_acc, test_loss, ..., and lr) goes into the curve. ``should_stop()`` is True once the
    budget is spent or the trial diverged or stopped early; reports after that are ignored.
    ``time_per_step_s`` is the function's wall time up to its last report over its steps (its own
    evaluations included: its loop is not ours to time)."""

    def __init__(self, state: TrialState, params: dict, device: torch.device, inject_error: bool = False):
        self.spec, self.params, self.device = state.spec, dict(params), device
        self.total_steps = state.plan.total
        self.eval_steps = (0, *sorted(state.plan.eval_at))
        self._state, self._last, self._inject = state, -1, inject_error
        self._start = time.perf_counter()

    def report(self, step: int, *, examples: int | None = None, **metrics: float) -> None:
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
        try:
            m = {k: float(v) for k, v in metrics.items()}
        except (TypeError, ValueError):
            bad = next(k for k, v in metrics.items() if not isinstance(v, (int, float)) and not hasattr(v, "item"))
            raise ValueError(f"ctx.report's {bad} must be a number, got {type(metrics[bad]).__name__}") from None
        s.lr = m.pop("lr", s.spec.lr)
        self._last = step
        if step == 0:
            s.begin(m, {})
        else:
            s.steps_done = step
            s.train_s = time.perf_counter() - self._start
            if s.after_report(step, m) and self._inject:
                s.fail(INJECTED)
        if examples is not None and s.curve:
            s.curve[-1]["examples"] = int(examples)
        if s.status is None and step >= self.total_steps:
            s.complete(step)

    def should_stop(self) -> bool:
        return self._state.status is not None


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


# --- the driver -----------------------------------------------------------------------------------

class _Clock:
    """The pack's time, charged equally to the trials in it at each moment: ``train`` and ``wall`` are
    one trial's cumulative shares since the clock started; ``sync`` writes them into the states."""

    def __init__(self, states: list[TrialState], mark: float):
        self.mark, self.train, self.wall = mark, 0.0, 0.0
        self.base = {id(s): (s.train_s, s.wall_s) for s in states}

    def charge(self, n: int, training: bool, until: float | None = None) -> float:
        """The time since the last charge, split among ``n`` trials; returns the new mark."""
        now = time.perf_counter() if until is None else until
        if n:
            each = (now - self.mark) / n
            self.wall += each
            if training:
                self.train += each
        self.mark = now
        return now

    def sync(self, states: list[TrialState]) -> None:
        for s in states:
            train, wall = self.base[id(s)]
            s.train_s, s.wall_s = train + self.train, wall + self.wall


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
            mark = _range_test(ranged, make_engine, device, mark)
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
    clock = _Clock(states, mark)
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

    first = engine.evaluate()
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
            metrics = engine.evaluate()
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


def _finish(engine: Engine, j: int, s: TrialState) -> None:
    """End-of-training measurements of a completed trial (still row j of the engine)."""
    if s.spec.measure_latency and s.status is TrialStatus.COMPLETED:
        restore = s.keeps_checkpoint and s.best[1] > 0
        rounds = TIMING_ROUNDS if s.spec.exclusive else 1  # a timing trial: the median of several measurements
        s.final["forward_latency_s"] = statistics.median(engine.latency(j, restore) for _ in range(rounds))


def _range_test(states: list[TrialState], make_engine: EngineFactory, device: torch.device, mark: float) -> float:
    """The LR range test of each state (module docstring), on its own engine; leaves each state with its
    suggested LR as its base LR and its range metrics, or diverged when no finite loss was seen. Returns
    the clock's mark."""
    plan = states[0].plan
    clock = _Clock(states, mark)
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
