"""Optimizers and learning-rate schedules, built from a TrialSpec."""

from __future__ import annotations

import math
from typing import Callable, Iterable

import torch


def _sgd(s, params):
    return torch.optim.SGD(params, lr=s.lr, momentum=s.momentum, nesterov=s.nesterov and s.momentum > 0,
                           weight_decay=s.weight_decay, foreach=True)


class Muon:
    """``optimizer = "muon"``, as the Muon paper (Jordan et al. 2024) trains: ``torch.optim.Muon`` on the hidden
    matrices (the parameters a model family marks with ``muon = True``: a transformer's block matrices) and
    ``torch.optim.AdamW`` on the rest (embeddings, the head, norms, biases). Both take the spec's ``lr`` and
    ``weight_decay`` (decoupled); Muon's update is scaled to AdamW's RMS (``adjust_lr_fn="match_rms_adamw"``,
    Liu et al. 2025), so that one LR serves both. Muon's momentum and Nesterov are ``momentum`` and
    ``nesterov``; AdamW's betas and eps are ``beta1``, ``beta2``, ``eps``. ``param_groups`` lists both
    optimizers' groups, so the engine sets every group's LR as for any torch optimizer."""

    def __init__(self, spec, params: Iterable[torch.nn.Parameter]):
        params = list(params)
        hidden = [p for p in params if getattr(p, "muon", False)]
        rest = [p for p in params if not getattr(p, "muon", False)]
        if not hidden:
            raise ValueError("optimizer muon found no hidden matrices in the model; use adamw")
        self.parts = [torch.optim.Muon(hidden, lr=spec.lr, weight_decay=spec.weight_decay, momentum=spec.momentum,
                                       nesterov=spec.nesterov, adjust_lr_fn="match_rms_adamw")]
        if rest:
            self.parts.append(torch.optim.AdamW(rest, lr=spec.lr, betas=(spec.beta1, spec.beta2), eps=spec.eps,
                                                weight_decay=spec.weight_decay, foreach=True))
        self.param_groups = [g for part in self.parts for g in part.param_groups]

    def zero_grad(self, set_to_none: bool = True) -> None:
        for part in self.parts:
            part.zero_grad(set_to_none=set_to_none)

    def step(self) -> None:
        for part in self.parts:
            part.step()


OPTIMIZERS: dict[str, Callable] = {
    "sgd": _sgd,
    "adam": lambda s, p: torch.optim.Adam(p, lr=s.lr, betas=(s.beta1, s.beta2), eps=s.eps, weight_decay=s.weight_decay,
                                            foreach=True),
    "adamw": lambda s, p: torch.optim.AdamW(p, lr=s.lr, betas=(s.beta1, s.beta2), eps=s.eps, weight_decay=s.weight_decay,
                                            foreach=True),
    "nadam": lambda s, p: torch.optim.NAdam(p, lr=s.lr, betas=(s.beta1, s.beta2), eps=s.eps, weight_decay=s.weight_decay,
                                            foreach=True),
    "rmsprop": lambda s, p: torch.optim.RMSprop(p, lr=s.lr, alpha=s.beta2, eps=s.eps, momentum=s.momentum,
                                                weight_decay=s.weight_decay, foreach=True),
    "adamax": lambda s, p: torch.optim.Adamax(p, lr=s.lr, betas=(s.beta1, s.beta2), eps=s.eps, weight_decay=s.weight_decay,
                                            foreach=True),
    "muon": Muon,
}


def make_optimizer(spec, params: Iterable[torch.nn.Parameter]) -> torch.optim.Optimizer:
    """The spec's optimizer; multi-tensor (foreach) kernels, since small models are bound by per-op overhead.

    RMSprop takes ``beta2`` as its squared-gradient decay (alpha) and ``momentum`` as its momentum.
    Under ``parameterization = "mup"`` the parameters go into one group per (LR, weight-decay) multiplier
    (workloads/builtin/layers.py ``param_scales``: muP's hidden weights), each group keeping its ``lr_scale`` so
    that the engine sets its LR to the schedule's LR x that."""
    if getattr(spec, "parameterization", "sp") != "mup":
        return OPTIMIZERS[spec.optimizer](spec, params)
    groups: dict[tuple[float, float], list[torch.nn.Parameter]] = {}
    for p in params:
        groups.setdefault((getattr(p, "lr_scale", 1.0), getattr(p, "wd_scale", 1.0)), []).append(p)
    return OPTIMIZERS[spec.optimizer](spec, [
        {"params": ps, "lr": spec.lr * lr_scale, "weight_decay": spec.weight_decay * wd_scale, "lr_scale": lr_scale}
        for (lr_scale, wd_scale), ps in groups.items()])


class Schedule:
    """The LR multiplier at each step: warmup x schedule. Plateau cuts on evaluations.

    Fractions of the total step count keep a schedule's shape the same under any budget:
    ``step`` multiplies by gamma at 50% and 75% of training; ``exponential`` decays
    smoothly to gamma at the end; ``cosine`` anneals to 0; ``onecycle`` is Smith's 1cycle
    (LR from lr/25 up to lr over the first 30%, then cosine down to lr/1e4; momentum is
    not cycled); ``plateau`` multiplies by gamma after ``plateau_patience`` evaluations
    without a lower validation loss. Warmup scales linearly from 1/warmup_steps to 1.
    With a batch-size schedule (``milestones``: the updates at which the batch grows), ``step`` multiplies
    by gamma at those updates instead, so the LR cut and the batch growth coincide (Seesaw's ramp).
    """

    def __init__(self, spec, total_steps: int, milestones: tuple[int, ...] = ()):
        self.kind = spec.schedule
        self.milestones = milestones
        self.total = max(total_steps, 1)
        self.gamma = spec.schedule_gamma
        self.warmup = spec.warmup_steps
        self.patience = spec.plateau_patience
        self.plateau_factor = 1.0
        self.best_val = math.inf
        self.bad_evals = 0

    def factor(self, step: int) -> float:
        t = step / self.total
        if self.kind == "constant":
            f = 1.0
        elif self.kind == "step" and self.milestones:
            f = self.gamma ** sum(step >= m for m in self.milestones)
        elif self.kind == "step":
            f = self.gamma ** ((t >= 0.5) + (t >= 0.75))
        elif self.kind == "exponential":
            f = self.gamma ** t
        elif self.kind == "cosine":
            f = 0.5 * (1 + math.cos(math.pi * t))
        elif self.kind == "onecycle":
            if t < 0.3:
                f = 1 / 25 + (1 - 1 / 25) * 0.5 * (1 - math.cos(math.pi * t / 0.3))
            else:
                f = 1e-4 + (1 - 1e-4) * 0.5 * (1 + math.cos(math.pi * (t - 0.3) / 0.7))
        elif self.kind == "plateau":
            f = self.plateau_factor
        else:
            raise ValueError(f"unknown schedule {self.kind!r}")
        if self.warmup and step < self.warmup:
            f *= (step + 1) / self.warmup
        return f

    def on_eval(self, val_loss: float) -> None:
        if self.kind != "plateau":
            return
        if val_loss < self.best_val:
            self.best_val, self.bad_evals = val_loss, 0
        else:
            self.bad_evals += 1
            if self.bad_evals >= self.patience:
                self.plateau_factor *= self.gamma
                self.bad_evals = 0


SCHEDULES = ("constant", "step", "exponential", "plateau", "onecycle", "cosine")


def clip_gradients(spec, params: list[torch.nn.Parameter]) -> None:
    if spec.clip == "norm":
        torch.nn.utils.clip_grad_norm_(params, spec.clip_threshold)
    elif spec.clip == "value":
        torch.nn.utils.clip_grad_value_(params, spec.clip_threshold)
