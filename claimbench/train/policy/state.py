"""One trial while it trains (``TrialState``): the rules that decide its outcome, and the record it becomes.

- **Divergence** (an outcome, with the step it happened at): a non-finite training loss, or a
  smoothed training loss (EMA, weight 0.1 on the newest minibatch) above ``divergence_factor`` x
  the initial training loss (on the probe of training examples at step 0); or a non-finite
  validation loss at an evaluation. A diverged trial has no final metrics: never filled in.
- **Target:** ``steps_to_target`` is the first evaluation whose score (``plan.score_of``: val_acc for
  classification, val_r2 for regression, reached at or above ``target``; val_bpb for lm, reached at or
  below it) reaches ``target``; for lm the record also counts ``tokens_done`` and ``tokens_to_target``
  (examples x seq_len: every position of a window is a next-byte prediction).
- **Best and early stopping:** the best evaluation by score, in its direction; with ``patience``, training stops
  after that many evaluations without a better score, and with ``restore_best`` the reported
  metrics are the best evaluation's (the engine restores its checkpoint before measuring latency).
- **What is evaluated:** the train probe and the validation split at every evaluation; the test split
  only where something reads it (``reads_test``): step 0, each evaluation where a validation metric
  betters its best so far (the checkpoints that restore-best and the claims' best-checkpoint variant
  can take), and the trial's last evaluation (its final metrics). Elsewhere its metrics are absent.
- **Measurements:** ``grad_norms_init`` — each weight layer's gradient norm on the first batch,
  before clipping; ``grad_ratio`` — first / last of those norms, from the step before each
  evaluation; ``time_per_step_s`` counts training steps only (not evaluation or measurements), as
  the trial's share of each step (the step's time / the trials trained in it); ``wall_s`` is its
  share of the whole. Gradient noise scale and latency: see ``train.single``.
- **Failure:** any exception becomes ``failed`` records whose error is one line.

``Clock`` charges a pack's time to the trials in it; ``observing`` lets the executors hear of every
evaluation (their progress).
"""

from __future__ import annotations

import contextlib
import contextvars
import math
import statistics
import time
import traceback
from dataclasses import dataclass, field
from typing import Callable

from claimbench.train.optim import Schedule
from claimbench.train.policy.plan import Plan
from claimbench.trial import HIGHER_IS_BETTER, LOWER_IS_BETTER, TrialRecord, TrialStatus
from claimbench.workloads.builtin import TrialSpec

EMA = 0.1  # weight of the newest minibatch loss in the smoothed training loss
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
    best: tuple[float, int, dict] = (-math.inf, 0, {})  # (score, step, metrics); set at step 0 (begin)
    improved: bool = False  # the last evaluation was a new best
    val_best: dict[str, float] = field(default_factory=dict)  # the best value so far of each val_ metric
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
    #: successive halving's directive for this trial (``driver.halving_losers``): the rung, a fraction of the
    #: budget; ``k``; ``groups``, each [key, select metric, direction, members]; None: it never halts
    halving: dict | None = None

    def __post_init__(self) -> None:
        self.schedule = Schedule(self.spec, self.plan.total, tuple(first for first, _, _ in self.plan.phases[1:]))

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
        self.best = (first[self.plan.score], 0, first)  # (score, step, metrics): the plan's direction
        self.metric_keys = list(first)
        self._track_val(first)

    def reads_test(self, step: int, m: dict[str, float]) -> bool:
        """Whether the test split is evaluated at this evaluation (``m``: its train and val metrics; see the
        module docstring). A trial that diverges here reports nothing, so reads nothing."""
        if step == 0:
            return True
        if not math.isfinite(m["val_loss"]):
            return False
        if step >= max(self.plan.eval_at) or self._val_improves(m):
            return True
        score = m[self.plan.score]
        return bool(self.spec.patience) and not score > self.best[0] and self.bad_evals + 1 >= self.spec.patience

    def _val_improves(self, m: dict[str, float]) -> bool:
        return any(_better(k, v, self.val_best[k]) for k, v in m.items() if k in self.val_best)

    def _track_val(self, m: dict[str, float]) -> None:
        for k, v in m.items():
            if k.startswith("val_") and k.endswith(LOWER_IS_BETTER + HIGHER_IS_BETTER) and \
                    (k not in self.val_best or _better(k, v, self.val_best[k])):
                self.val_best[k] = v

    def after_loss(self, step: int, value: float) -> bool:
        """The minibatch loss before the update at ``step``; False (and diverged) when training must stop."""
        self.smoothed = value if self.smoothed is None else (1 - EMA) * self.smoothed + EMA * value
        return self._check_loss(step, value)

    def after_report(self, step: int, m: dict[str, float]) -> bool:
        """A training function's evaluation after ``step`` steps (``Context.report``): its reported
        ``train_loss`` stands for the smoothed minibatch loss (the function's loop owns the minibatches),
        then the divergence rule and ``after_eval``; False when the trial is done."""
        self.smoothed = m["train_loss"]
        self.metric_keys += [k for k in m if k not in self.metric_keys]  # a metric it reports from a later step on
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
        self._track_val(m)
        self.schedule.on_eval(m["val_loss"])
        score = m[self.plan.score]
        if self.spec.target and self.steps_to_target is None and plan.reached(score, self.spec.target):
            self.steps_to_target = step
        if plan.better(score, self.best[0]):
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

    def halt(self, step: int) -> bool:
        """Halted by successive halving at the rung after ``step`` steps: its curve runs to the rung."""
        self.status, self.steps_done = TrialStatus.HALTED, step
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
            out = {k: self.curve[-1][k] for k in self.metric_keys if k in self.curve[-1]}
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
                tokens_done=plan.tokens(plan.examples_at(step)),
                tokens_to_target=plan.tokens(plan.examples_at(self.steps_to_target))
                if self.steps_to_target is not None else None,
                best_step=self.best[1] if self.curve else None, stopped_early=self.status is TrialStatus.COMPLETED and step < self.plan.total,
                **timing,
                grad_norms_init=self.grad_norms_init, range_curve=self.range_curve)
        record.wall_s = self.wall_s
        record.engine = self.engine
        return record


def _better(metric: str, value: float, best: float) -> bool:
    """``value`` strictly betters ``best`` in ``metric``'s direction (a NaN betters nothing; a first
    number betters a NaN)."""
    if math.isnan(value):
        return False
    if math.isnan(best):
        return True
    return value < best if metric.endswith(LOWER_IS_BETTER) else value > best


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


class Clock:
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
