"""What every trial of a pack shares (``Plan``: the batch size, the budget and its evaluation points) and
what each trial draws on its own (``DataOrder``: its minibatches).

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
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch

from claimbench.workloads.builtin import TrialSpec
from claimbench.workloads.data import Dataset


@dataclass(frozen=True)
class Plan:
    """What every trial of a pack shares: the batch size, the budget and its evaluation points."""

    batch_size: int
    n_train: int
    steps_per_epoch: int
    total: int
    eval_at: frozenset[int]
    probe: int  # training examples in the fixed probe for train metrics
    score: str  # what best, target and patience read (``score_of``): val_acc, val_r2 or val_bpb
    phases: tuple[tuple[int, int, int], ...] = ()  # batch schedule: (first step, batch size, examples before it)
    sign: int = 1  # +1: a higher score is better; -1: a lower one (val_bpb)
    tokens_per_example: int = 0  # task lm: seq_len (tokens_* = examples_* x this); 0 for other tasks

    def better(self, score: float, than: float) -> bool:
        """Whether ``score`` is better than ``than`` (strictly), in the score's direction."""
        return self.sign * score > self.sign * than

    def reached(self, score: float, target: float) -> bool:
        """Whether ``score`` reaches the spec's ``target``: at or above it (val_acc, val_r2) or at or below it
        (val_bpb)."""
        return self.sign * score >= self.sign * target

    def tokens(self, examples: int | None) -> int | None:
        """Task lm: the tokens in ``examples`` windows (every position is a next-byte prediction); else None."""
        return examples * self.tokens_per_example if self.tokens_per_example and examples is not None else None

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
        score, sign = score_of(data.task)
        probe = min(n_train, len(data.y_val))
        if spec.batch_schedule == "step":
            plan = cls._batch_schedule(spec, n_train, steps_per_epoch, total, probe, score)
        else:
            eval_at = frozenset(round(total * i / spec.evals) for i in range(1, spec.evals + 1))
            plan = cls(spec.batch_size, n_train, steps_per_epoch, total, eval_at, probe, score)
        tokens = data.n_features if data.task == "lm" else 0
        return dataclasses.replace(plan, sign=sign, tokens_per_example=tokens)

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
        score, sign = score_of(task)
        return cls(spec.batch_size, 0, spec.steps, spec.steps, eval_at, 0, score, sign=sign)


def score_of(task: str) -> tuple[str, int]:
    """The metric a trial's best evaluation, target and early stopping read, and its direction (+1: higher is
    better): val_acc for classification, val_r2 for regression, val_bpb (bits per byte, lower) for lm."""
    if task == "lm":
        return "val_bpb", -1
    return ("val_acc" if task == "classification" else "val_r2"), 1


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
