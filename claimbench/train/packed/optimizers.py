"""The optimizers on stacked tensors: SGD (momentum, Nesterov), Adam, AdamW, NAdam, RMSprop and Adamax for K
trials on one (K, P) parameter tensor, each trial's hyperparameters a (K, 1) column, following the arithmetic
of torch's implementations; and per-trial gradient clipping."""

from __future__ import annotations

import numpy as np
import torch

from claimbench.train.packed.plan import Place
from claimbench.workloads.builtin import TrialSpec

NADAM_MOMENTUM_DECAY = 4e-3  # torch.optim.NAdam's default, as make_optimizer leaves it
CLIP_EPS = 1e-6  # torch.nn.utils.clip_grad_norm_'s
#: An optimizer step over (K, P) tensors of more than STEP_CHUNKED elements runs in column chunks of about
#: STEP_CHUNK elements (``StackedOptimizer.step``), and such a pack's backward copies each gradient once into
#: a reused buffer (``PackedEngine.backward``): past a few MB per tensor the passes and copies are
#: memory-bound, and chunks that stay in cache save passes over memory; below that, chunks and
#: per-parameter copies only add kernel launches.
STEP_CHUNK, STEP_CHUNKED = 1 << 17, 1 << 20


def large(t: torch.Tensor) -> bool:
    """Whether a (K, P) pack tensor takes the large-pack paths (STEP_CHUNKED)."""
    return t.numel() > STEP_CHUNKED


def clip_rows(grads: torch.Tensor, clip: str, threshold: torch.Tensor, places: list[Place]) -> torch.Tensor:
    """Each row's gradient clipped by its own ``threshold`` (a (K, 1) column): ``clip`` is "value", "norm"
    (as clip_grad_norm_: the norm of the per-parameter norms at ``places``; the factor capped at 1) or "none"."""
    if clip == "value":
        return torch.clamp(grads, min=-threshold, max=threshold)
    if clip == "norm":
        norms = torch.stack([grads[:, off:off + size].norm(dim=1) for off, size, _ in places], 1)
        coef = torch.clamp(threshold / (norms.norm(dim=1, keepdim=True) + CLIP_EPS), max=1.0)
        return grads * coef
    return grads


class StackedOptimizer:
    """One optimizer kind for K trials on a (K, P) parameter tensor; hyperparameters per row.

    Scalars that torch computes in Python (bias corrections, step sizes) are computed here in
    Python too, per trial, and sent as one (K, m) float32 tensor per step."""

    def __init__(self, specs: list[TrialSpec], theta: torch.Tensor,
                 scales: tuple[torch.Tensor, torch.Tensor] | None = None):
        self.kind = specs[0].optimizer
        # muP (models.py): per-parameter LR and weight-decay multipliers, (1, P) each; None under SP
        self.lr_scale, self.wd_scale = scales if scales is not None else (None, None)
        if scales is not None and self.kind not in ("adam", "adamw"):
            raise ValueError(f"packed muP implements adam and adamw, not {self.kind}")
        self.specs = list(specs)
        dev = theta.device
        col = lambda values: torch.tensor(values, dtype=theta.dtype, device=dev).view(-1, 1)  # noqa: E731
        self.col = col
        self.momentum = col([s.momentum for s in specs])
        self.wd = col([s.weight_decay for s in specs])
        self.any_wd = any(s.weight_decay for s in specs)
        self.nesterov = torch.tensor([s.nesterov and s.momentum > 0 for s in specs], device=dev).view(-1, 1)
        self.any_nesterov = any(s.nesterov and s.momentum > 0 for s in specs)
        self.any_momentum = any(s.momentum > 0 for s in specs)
        self.all_momentum = all(s.momentum > 0 for s in specs)
        self.beta1 = col([s.beta1 for s in specs])
        self.one_minus_beta1 = col([1 - s.beta1 for s in specs])
        self.beta2 = col([s.beta2 for s in specs])
        self.one_minus_beta2 = col([1 - s.beta2 for s in specs])
        self.eps = col([s.eps for s in specs])
        self.t = 0
        self.mu_product = [np.float32(1.0)] * len(specs)  # NAdam: torch keeps it as a float32 tensor
        zeros = lambda: torch.zeros_like(theta)  # noqa: E731
        self.state: dict[str, torch.Tensor] = {}
        if self.kind == "sgd" and self.any_momentum:
            self.state["buf"] = zeros()
        elif self.kind in ("adam", "adamw", "nadam", "adamax"):
            self.state["exp_avg"] = zeros()
            self.state["exp_avg_sq" if self.kind != "adamax" else "exp_inf"] = zeros()
        elif self.kind == "rmsprop":
            self.state["square_avg"] = zeros()
            if self.any_momentum:
                self.state["buf"] = zeros()
        elif self.kind != "sgd":
            raise ValueError(f"unknown optimizer {self.kind!r}")

    def keep(self, rows: torch.Tensor, idx: list[int]) -> None:
        for name in ("momentum", "wd", "nesterov", "beta1", "one_minus_beta1", "beta2", "one_minus_beta2", "eps"):
            setattr(self, name, getattr(self, name)[rows])
        self.state = {k: v[rows] for k, v in self.state.items()}
        self.specs = [self.specs[i] for i in idx]
        self.mu_product = [self.mu_product[i] for i in idx]

    @torch.no_grad()
    def step(self, theta: torch.Tensor, g: torch.Tensor, lrs: list[float]) -> None:
        """One update of every row. The per-trial scalars are computed once; the elementwise update
        then runs in one pass or, on tensors of more than ``STEP_CHUNKED`` elements, over column chunks
        of about ``STEP_CHUNK``, so that its dozen passes over parameters, gradients and state stay in
        cache. Each element's arithmetic is the same in any chunking, so the results are bit for bit
        those of one pass."""
        self.t += 1
        scalars = self._scalars(lrs)
        width = max(1, STEP_CHUNK // max(1, theta.shape[0])) if large(theta) else theta.shape[1]
        for a in range(0, theta.shape[1], width):
            cols = slice(a, a + width)
            self._update(theta[:, cols], g[:, cols], {name: v[:, cols] for name, v in self.state.items()}, scalars,
                         None if self.lr_scale is None else self.lr_scale[:, cols],
                         None if self.wd_scale is None else self.wd_scale[:, cols])

    def _scalars(self, lrs: list[float]) -> torch.Tensor:
        """The step's per-trial scalars as one (K, m) tensor (the columns ``_update`` reads by kind);
        NAdam's running momentum product advances here, once per step."""
        t, kind, specs = self.t, self.kind, self.specs
        if kind == "adamw":
            decay = [lr if self.lr_scale is not None else 1 - lr * s.weight_decay for lr, s in zip(lrs, specs)]
        else:
            decay = [0.0] * len(specs)
        if kind in ("adam", "adamw"):
            rows = [[-(lr / (1 - s.beta1 ** t)), (1 - s.beta2 ** t) ** 0.5] for lr, s in zip(lrs, specs)]
        elif kind == "nadam":
            rows = []
            for i, (lr, s) in enumerate(zip(lrs, specs)):
                mu = s.beta1 * (1.0 - 0.5 * 0.96 ** (t * NADAM_MOMENTUM_DECAY))
                mu_next = s.beta1 * (1.0 - 0.5 * 0.96 ** ((t + 1) * NADAM_MOMENTUM_DECAY))
                self.mu_product[i] = np.float32(self.mu_product[i] * np.float32(mu))
                mp = float(self.mu_product[i])
                rows.append([(1 - s.beta2 ** t) ** 0.5, -(lr * (1.0 - mu) / (1.0 - mp)),
                             -(lr * mu_next / (1.0 - mp * mu_next))])
        elif kind == "adamax":
            rows = [[-(lr / (1 - s.beta1 ** t))] for lr, s in zip(lrs, specs)]
        else:  # sgd, rmsprop
            rows = [[-lr] for lr in lrs]
        return self.col2([[d, *r] for d, r in zip(decay, rows)])

    def _update(self, theta: torch.Tensor, g: torch.Tensor, state: dict[str, torch.Tensor], scal: torch.Tensor,
                lr_scale: torch.Tensor | None, wd_scale: torch.Tensor | None) -> None:
        """The elementwise update of a column chunk (views of the (K, P) tensors), following the
        arithmetic of torch's implementations. ``scal[:, 0]`` is AdamW's decay column (1 - lr x decay; under
        muP the LR alone, which each parameter's multipliers then scale); the rest by kind."""
        kind, mup = self.kind, lr_scale is not None
        decay, scal = scal[:, 0:1], scal[:, 1:]
        if kind == "adamw":
            if self.any_wd and mup:  # each group's lr x its decay, as torch's AdamW per param group
                theta.mul_(1 - (decay * lr_scale) * (self.wd * wd_scale))
            elif self.any_wd:
                theta.mul_(decay)
        elif self.any_wd:
            g = g + (self.wd * wd_scale if mup else self.wd) * theta  # L2: torch adds weight_decay * param
        if kind == "sgd":  # fused where torch's rounding allows: addcmul(a, s, b) = a + s*b, rounded as torch's two ops
            if self.any_momentum:
                buf = state["buf"]
                torch.addcmul(g, self.momentum, buf, out=buf)  # zero-initialised: the first step sets buf = g, as torch
                update = torch.where(self.nesterov, torch.addcmul(g, self.momentum, buf), buf) \
                    if self.any_nesterov else buf
            else:
                update = g
            theta.addcmul_(scal[:, 0:1], update)
        elif kind in ("adam", "adamw"):
            exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]
            exp_avg.lerp_(g, self.one_minus_beta1)
            exp_avg_sq.mul_(self.beta2).add_(self.one_minus_beta2 * g * g)
            denom = exp_avg_sq.sqrt().div_(scal[:, 1:2]).add_(self.eps)
            step = scal[:, 0:1] * lr_scale if mup else scal[:, 0:1]  # muP: each group's LR
            theta.add_(step * exp_avg / denom)
        elif kind == "nadam":
            exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]
            exp_avg.lerp_(g, self.one_minus_beta1)
            exp_avg_sq.mul_(self.beta2).add_(self.one_minus_beta2 * g * g)
            denom = exp_avg_sq.sqrt().div_(scal[:, 0:1]).add_(self.eps)
            theta.add_(scal[:, 1:2] * g / denom)
            theta.add_(scal[:, 2:3] * exp_avg / denom)
        elif kind == "adamax":
            exp_avg, exp_inf = state["exp_avg"], state["exp_inf"]
            exp_avg.lerp_(g, self.one_minus_beta1)
            exp_inf.mul_(self.beta2)
            torch.maximum(exp_inf, g.abs().add_(self.eps), out=exp_inf)
            theta.add_(scal[:, 0:1] * exp_avg / exp_inf)
        elif kind == "rmsprop":  # alpha = beta2
            square_avg = state["square_avg"]
            square_avg.mul_(self.beta2).add_(self.one_minus_beta2 * g * g)
            avg = square_avg.sqrt().add_(self.eps)
            neg_lr = scal[:, 0:1]
            if self.any_momentum:
                buf = state["buf"]
                buf.mul_(self.momentum).add_(g / avg)
                with_momentum = neg_lr * buf
                theta.add_(with_momentum if self.all_momentum else
                           torch.where(self.momentum > 0, with_momentum, neg_lr * g / avg))
            else:
                theta.add_(neg_lr * g / avg)

    def col2(self, rows: list[list[float]]) -> torch.Tensor:
        return torch.tensor(rows, dtype=self.beta1.dtype, device=self.beta1.device)
