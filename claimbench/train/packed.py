"""Packed training: K trials of the same shape trained jointly, one batched kernel per layer for all K.

Small-batch trials are bound by per-step overhead (Python, dispatch, kernel launches), not by
arithmetic; training K models with one ``baddbmm`` per layer, one loss, one backward and one
optimizer update on stacked tensors pays that overhead once per step instead of K times.

What a pack shares and what each trial keeps (``runner.packs.pack_key`` forms packs; a trial
that ``runner.packs.packable`` refuses is trained by ``train_trial`` on its own):

- shared: the dataset, the architecture (depth, widths, activation, BatchNorm, dropout position),
  the loss, the optimizer kind, the clipping kind, the batch size and the budget (so every trial
  has the same steps and evaluation points);
- per trial: initial weights (each model is built under its own seed exactly as ``train_trial``
  builds it, then stacked), data order (its own generator, as ``train_trial``), dropout rate and
  masks (its own generator, started where ``train_trial``'s global RNG stands after the model is
  built, drawing the same way as ``nn.Dropout``), learning rate and schedule (warmup, step,
  exponential, cosine, onecycle, plateau on its own validation loss), momentum, Nesterov,
  weight decay, betas, eps, clipping threshold, BatchNorm statistics, divergence factor,
  target, early-stopping patience and restore-best.

Parameters live in one ``(K, P)`` tensor: each trial's parameters, flattened in the model's own
order. The optimizers (SGD with momentum and Nesterov, Adam, AdamW, NAdam, RMSprop, Adamax) are
written on it with per-trial hyperparameters as ``(K, 1)`` columns, following the arithmetic of
torch's foreach implementations. Nothing reduces across K: each trial's loss, gradient norm,
clipping factor and update is its own, so a NaN in one trial stays in its row.

A trial leaves the pack when it diverges (before its update, as in ``train_trial``), stops
early, fails (injected fault) or finishes; its rows are dropped and the others go on.

Same results as ``train_trial``: without dropout, to float tolerance (batched matmuls and
per-row reductions sum in a different order than the unpacked kernels; differences of about
1e-6 relative grow slowly over steps, see tests/test_packed.py). Dropout masks are drawn from
each trial's own generator in ``train_trial``'s order, so on the CPU they match too; on CUDA
``nn.Dropout`` uses a fused kernel that consumes the RNG differently, so masks there match in
distribution only.

Timing: ``time_per_step_s`` is the trial's share of the pack's step time: at each step, the
step's time divided by the number of trials trained in it, summed over the trial's steps and
divided by its steps (the pack's step time / K when no trial leaves early). ``wall_s`` and the
curve's ``elapsed_s`` are shares the same way. ``measure_latency`` times the trial's own
``nn.Module`` rebuilt from its final weights (with restore-best, the restored checkpoint has the
same architecture and so the same latency; its weights are not kept).
"""

from __future__ import annotations

import math
import socket
import time
import traceback
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from claimbench.runner.packs import pack_key, packable
from claimbench.train.loop import EMA, EVAL_CHUNK, _ratio, forward_latency, train_trial
from claimbench.train.optim import Schedule
from claimbench.trial import TrialRecord, TrialSpec, TrialStatus
from claimbench.workloads import DataCache, Dataset, build_model

NADAM_MOMENTUM_DECAY = 4e-3  # torch.optim.NAdam's default, as make_optimizer leaves it
CLIP_EPS = 1e-6  # torch.nn.utils.clip_grad_norm_'s


def train_pack(specs: list[TrialSpec], cache: DataCache | None = None, device: str | torch.device = "cpu",
               inject_error: list[bool] | None = None) -> list[TrialRecord]:
    """Train ``specs``; one record per spec, in order. Never raises.

    Packable specs (``runner.packs.packable``) with the same ``pack_key`` train jointly; every
    other spec trains alone with ``train_trial``. ``inject_error[i]`` makes spec i fail after its
    first step (fault injection, see faults.py), leaving its pack-mates to go on.
    """
    cache = cache or DataCache()
    flags = list(inject_error) if inject_error is not None else [False] * len(specs)
    out: list[TrialRecord | None] = [None] * len(specs)
    groups: dict[tuple, list[int]] = {}
    for i, spec in enumerate(specs):
        if packable(spec):
            groups.setdefault(pack_key(spec), []).append(i)
        else:
            out[i] = train_trial(spec, cache, device, inject_error=flags[i])
    for members in groups.values():
        if len(members) == 1:  # nothing to share: the unpacked trainer is the reference
            i = members[0]
            out[i] = train_trial(specs[i], cache, device, inject_error=flags[i])
            continue
        records = train_jointly([specs[i] for i in members], cache, device, [flags[i] for i in members])
        for i, record in zip(members, records):
            out[i] = record
    return [r for r in out if r is not None]


def train_jointly(specs: list[TrialSpec], cache: DataCache | None = None, device: str | torch.device = "cpu",
                  inject_error: list[bool] | None = None) -> list[TrialRecord]:
    """Train packable specs that share one ``pack_key`` jointly, even one alone (``train_pack`` decides
    when to call this); one record per spec, in order. Never raises."""
    start = time.perf_counter()
    cache = cache or DataCache()
    device = torch.device(device)
    inject_error = list(inject_error) if inject_error is not None else [False] * len(specs)
    try:
        if not all(packable(s) for s in specs) or len({pack_key(s) for s in specs}) != 1:
            raise ValueError("train_jointly takes packable specs with one pack_key")
        data = cache.for_spec(specs[0], device)
        if specs[0].batch_size > len(data.y_train):  # train_trial says why, per trial
            return [train_trial(s, cache, device) for s in specs]
        records = _PackTrainer(specs, data, device, inject_error, start).run()
    except Exception as e:  # a bug or a bad dataset: every trial of the pack is failed, with the reason
        tb = traceback.extract_tb(e.__traceback__)[-1]
        text = " ".join(f"{type(e).__name__}: {e}".split())
        records = [TrialRecord.failed(s, f"{text} (at {tb.filename.rsplit('/', 1)[-1]}:{tb.lineno}; packed)")
                   for s in specs]
        for r in records:
            r.wall_s = (time.perf_counter() - start) / len(specs)
    host = socket.gethostname()
    for r in records:
        r.host, r.device = host, str(device)
    return records


# --- the model as stacked tensors -------------------------------------------------------------

@dataclass
class _Op:
    kind: str  # linear | bn | act | dropout
    w: tuple[int, int, tuple[int, ...]] | None = None  # (offset, size, shape) in the flat parameters
    b: tuple[int, int, tuple[int, ...]] | None = None
    index: int = 0  # bn: which running buffers; dropout: which layer
    module: nn.Module | None = None  # act: the (stateless, elementwise) activation module


def _plan(model: nn.Sequential) -> tuple[list[_Op], list[int]]:
    """The ops of an MLP in forward order, with each parameter's place in the flat vector, and the
    width of each BatchNorm layer."""
    ops: list[_Op] = []
    bn_widths: list[int] = []
    offset = 0

    def take(p: torch.Tensor) -> tuple[int, int, tuple[int, ...]]:
        nonlocal offset
        place = (offset, p.numel(), tuple(p.shape))
        offset += p.numel()
        return place

    n_dropout = 0
    for m in model:
        if isinstance(m, nn.Linear):
            ops.append(_Op("linear", take(m.weight), take(m.bias)))
        elif isinstance(m, nn.BatchNorm1d):
            ops.append(_Op("bn", take(m.weight), take(m.bias), index=len(bn_widths)))
            bn_widths.append(m.num_features)
        elif isinstance(m, nn.Dropout):
            ops.append(_Op("dropout", index=n_dropout))
            n_dropout += 1
        elif not any(True for _ in m.parameters()):
            ops.append(_Op("act", module=m))
        else:
            raise ValueError(f"packed training cannot stack {type(m).__name__}")
    assert offset == sum(p.numel() for p in model.parameters()), "the plan must cover every parameter in order"
    return ops, bn_widths


def _view(theta: torch.Tensor, place: tuple[int, int, tuple[int, ...]]) -> torch.Tensor:
    offset, size, shape = place
    return theta[:, offset:offset + size].view(theta.shape[0], *shape)


def _batch_norm(h: torch.Tensor, gamma: torch.Tensor, beta: torch.Tensor, mean: torch.Tensor, var: torch.Tensor,
                training: bool) -> torch.Tensor:
    """BatchNorm per trial: (K, B, C) seen as B examples of K*C channels, so torch's own kernel
    normalizes and tracks each trial's channels apart (momentum 0.1, eps 1e-5 as nn.BatchNorm1d)."""
    k, b, c = h.shape
    flat = h.transpose(0, 1).reshape(b, k * c)
    out = F.batch_norm(flat, mean.view(-1), var.view(-1), gamma.reshape(-1), beta.reshape(-1), training, 0.1, 1e-5)
    return out.view(b, k, c).transpose(0, 1)


# --- the optimizers on stacked tensors --------------------------------------------------------

class _StackedOptimizer:
    """One optimizer kind for K trials on a (K, P) parameter tensor; hyperparameters per row.

    Scalars that torch computes in Python (bias corrections, step sizes) are computed here in
    Python too, per trial, and sent as one (K, m) float32 tensor per step."""

    def __init__(self, specs: list[TrialSpec], theta: torch.Tensor):
        self.kind = specs[0].optimizer
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
        self.t += 1
        t, kind, specs = self.t, self.kind, self.specs
        if kind == "adamw":
            if self.any_wd:
                theta.mul_(self.col([1 - lr * s.weight_decay for lr, s in zip(lrs, specs)]))
        elif self.any_wd:
            g = g + self.wd * theta  # L2: torch adds weight_decay * param to the gradient
        if kind == "sgd":  # fused where torch's rounding allows: addcmul(a, s, b) = a + s*b, rounded as torch's two ops
            if self.any_momentum:
                buf = self.state["buf"]
                torch.addcmul(g, self.momentum, buf, out=buf)  # zero-initialised: the first step sets buf = g, as torch
                update = torch.where(self.nesterov, torch.addcmul(g, self.momentum, buf), buf) \
                    if self.any_nesterov else buf
            else:
                update = g
            theta.addcmul_(self.col([-lr for lr in lrs]), update)
        elif kind in ("adam", "adamw"):
            exp_avg, exp_avg_sq = self.state["exp_avg"], self.state["exp_avg_sq"]
            exp_avg.lerp_(g, self.one_minus_beta1)
            exp_avg_sq.mul_(self.beta2).add_(self.one_minus_beta2 * g * g)
            scal = self.col2([[-(lr / (1 - s.beta1 ** t)), (1 - s.beta2 ** t) ** 0.5] for lr, s in zip(lrs, specs)])
            denom = exp_avg_sq.sqrt().div_(scal[:, 1:2]).add_(self.eps)
            theta.add_(scal[:, 0:1] * exp_avg / denom)
        elif kind == "nadam":
            exp_avg, exp_avg_sq = self.state["exp_avg"], self.state["exp_avg_sq"]
            exp_avg.lerp_(g, self.one_minus_beta1)
            exp_avg_sq.mul_(self.beta2).add_(self.one_minus_beta2 * g * g)
            rows = []
            for i, (lr, s) in enumerate(zip(lrs, specs)):
                mu = s.beta1 * (1.0 - 0.5 * 0.96 ** (t * NADAM_MOMENTUM_DECAY))
                mu_next = s.beta1 * (1.0 - 0.5 * 0.96 ** ((t + 1) * NADAM_MOMENTUM_DECAY))
                self.mu_product[i] = np.float32(self.mu_product[i] * np.float32(mu))
                mp = float(self.mu_product[i])
                rows.append([(1 - s.beta2 ** t) ** 0.5, -(lr * (1.0 - mu) / (1.0 - mp)),
                             -(lr * mu_next / (1.0 - mp * mu_next))])
            scal = self.col2(rows)
            denom = exp_avg_sq.sqrt().div_(scal[:, 0:1]).add_(self.eps)
            theta.add_(scal[:, 1:2] * g / denom)
            theta.add_(scal[:, 2:3] * exp_avg / denom)
        elif kind == "adamax":
            exp_avg, exp_inf = self.state["exp_avg"], self.state["exp_inf"]
            exp_avg.lerp_(g, self.one_minus_beta1)
            exp_inf.mul_(self.beta2)
            torch.maximum(exp_inf, g.abs().add_(self.eps), out=exp_inf)
            step = self.col([-(lr / (1 - s.beta1 ** t)) for lr, s in zip(lrs, specs)])
            theta.add_(step * exp_avg / exp_inf)
        elif kind == "rmsprop":  # alpha = beta2
            square_avg = self.state["square_avg"]
            square_avg.mul_(self.beta2).add_(self.one_minus_beta2 * g * g)
            avg = square_avg.sqrt().add_(self.eps)
            neg_lr = self.col([-lr for lr in lrs])
            if self.any_momentum:
                buf = self.state["buf"]
                buf.mul_(self.momentum).add_(g / avg)
                with_momentum = neg_lr * buf
                theta.add_(with_momentum if self.all_momentum else
                           torch.where(self.momentum > 0, with_momentum, neg_lr * g / avg))
            else:
                theta.add_(neg_lr * g / avg)

    def col2(self, rows: list[list[float]]) -> torch.Tensor:
        return torch.tensor(rows, dtype=self.beta1.dtype, device=self.beta1.device)


# --- the trainer --------------------------------------------------------------------------------

@dataclass
class _Trial:
    """One trial's host-side state while its rows are in the pack."""

    spec: TrialSpec
    inject_error: bool
    order_rng: torch.Generator
    dropout_rng: torch.Generator | None
    schedule: Schedule
    curve: list[dict] = field(default_factory=list)
    initial_loss: float = 0.0
    smoothed: float | None = None
    best: tuple = ()
    bad_evals: int = 0
    steps_to_target: int | None = None
    grad_norms_init: list[float] = field(default_factory=list)
    grad_ratio: float = float("nan")
    lr: float = 0.0  # this step's learning rate
    train_share: float = 0.0  # this trial's share of the pack's training time
    wall_share: float = 0.0  # and of its wall time


class _PackTrainer:
    """The loop of ``train_trial`` (same order: LR, batch, forward, divergence, backward, measure,
    clip, step; then evaluation, schedule, target, early stopping), on K trials at once."""

    def __init__(self, specs: list[TrialSpec], data: Dataset, device: torch.device, inject_error: list[bool],
                 start: float):
        self.data, self.device, self.start = data, device, start
        self.classification = data.task == "classification"
        self.score = "val_acc" if self.classification else "val_r2"
        s0 = specs[0]
        self.batch = s0.batch_size
        self.n_train = len(data.y_train)
        self.steps_per_epoch = self.n_train // self.batch
        self.total = s0.steps or s0.epochs * self.steps_per_epoch
        self.eval_at = sorted({round(self.total * i / s0.evals) for i in range(1, s0.evals + 1)})
        self.loss_name = s0.loss_name
        self.train_probe = torch.arange(min(self.n_train, len(data.y_val)), device=device)

        rows, self.trials = [], []
        template = None
        for spec, inject in zip(specs, inject_error):
            torch.manual_seed(spec.seed)  # as train_trial: init, then dropout masks from where init left the RNG
            model = build_model(spec, data.input_shape, data.n_outputs)
            dropout_rng = None
            if spec.dropout > 0:
                dropout_rng = torch.Generator(device)
                if device.type == "cpu":
                    dropout_rng.set_state(torch.get_rng_state())
                else:
                    dropout_rng.manual_seed(spec.seed)
            rows.append(torch.cat([p.detach().reshape(-1) for p in model.parameters()]))
            if template is None or (spec.dropout > 0 and not any(isinstance(m, nn.Dropout) for m in template)):
                template = model
            self.trials.append(_Trial(spec, inject, torch.Generator().manual_seed(spec.seed), dropout_rng,
                                      Schedule(spec, self.total)))
        self.ops, bn_widths = _plan(template)
        self.places = [place for op in self.ops if op.w is not None for place in (op.w, op.b)]  # params() order
        self.weight_places = [op.w for op in self.ops if op.kind == "linear"]  # as models.weight_layers
        k = len(specs)
        self.theta = torch.stack(rows).to(device).requires_grad_(True)
        self.bn_mean = [torch.zeros(k, c, device=device) for c in bn_widths]
        self.bn_var = [torch.ones(k, c, device=device) for c in bn_widths]
        self.dropout_p = [t.spec.dropout for t in self.trials]
        self.opt = _StackedOptimizer(specs, self.theta.detach())
        if s0.clip == "norm" or s0.clip == "value":
            self.clip_threshold = self.opt.col([s.clip_threshold for s in specs])
        self.records: dict[int, TrialRecord] = {}
        self.perms = torch.empty(k, 0, dtype=torch.long, device=device)
        self.metric_keys: list[str] = []
        self.ids = list(range(k))  # position in ``specs`` of each row

    # -- model
    def forward(self, params: list[torch.Tensor], x: torch.Tensor, training: bool) -> torch.Tensor:
        """Outputs (K, N, n_out) of every trial's model (``params()``) on x: (K, N, F), or (N, F) shared by all."""
        k = self.theta.shape[0]
        h = x if x.dim() == 3 else x.unsqueeze(0).expand(k, *x.shape)
        weights = iter(params)
        for op in self.ops:
            if op.kind == "linear":
                w, bias = next(weights), next(weights)
                h = torch.baddbmm(bias.unsqueeze(1), h, w.transpose(1, 2))
            elif op.kind == "bn":
                gamma, beta = next(weights), next(weights)
                h = _batch_norm(h, gamma, beta, self.bn_mean[op.index], self.bn_var[op.index], training)
            elif op.kind == "act":
                h = op.module(h)
            elif op.kind == "dropout" and training:
                h = h * self._dropout_mask(h.shape[1:])
        return h

    def _dropout_mask(self, shape: torch.Size) -> torch.Tensor:
        masks = []
        for t, p in zip(self.trials, self.dropout_p):
            if p > 0:  # as nn.Dropout on the CPU: bernoulli(1 - p) / (1 - p)
                masks.append(torch.empty(shape, device=self.device).bernoulli_(1 - p, generator=t.dropout_rng)
                             .div_(1 - p))
            else:
                masks.append(torch.ones(shape, device=self.device))
        return torch.stack(masks)

    def per_example_loss(self, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """(K, N) losses; y is (K, N) or shared (N,)."""
        k, n = out.shape[0], out.shape[1]
        y = y if y.dim() == 2 else y.unsqueeze(0).expand(k, n)
        if self.classification:
            if self.loss_name == "ce":
                return F.cross_entropy(out.reshape(k * n, -1), y.reshape(-1), reduction="none").view(k, n)
            if self.loss_name == "mse":  # vs one-hot, mean over classes
                return F.mse_loss(out, F.one_hot(y, out.shape[2]).to(out.dtype), reduction="none").mean(2)
        else:
            fns = {"mse": F.mse_loss, "mae": F.l1_loss,
                   "huber": lambda a, b, reduction: F.huber_loss(a, b, reduction=reduction, delta=1.0)}
            if self.loss_name in fns:
                return fns[self.loss_name](out.squeeze(2), y, reduction="none")
        raise ValueError(f"loss {self.loss_name!r} does not apply to {self.data.name} ({self.data.task})")

    @torch.no_grad()
    def evaluate(self, params: list[torch.Tensor]) -> list[dict[str, float]]:
        """Per trial, as loop._evaluate: loss, and acc or mse and r2, on the train probe, val and test."""
        data, k = self.data, self.theta.shape[0]
        out: list[dict[str, float]] = [{} for _ in range(k)]
        for split, x, y in (("train", data.x_train[self.train_probe], data.y_train[self.train_probe]),
                            ("val", data.x_val, data.y_val), ("test", data.x_test, data.y_test)):
            loss_sum, correct, sse = [0.0] * k, [0] * k, [0.0] * k
            for i in range(0, len(y), EVAL_CHUNK):
                outputs, targets = self.forward(params, x[i:i + EVAL_CHUNK], training=False), y[i:i + EVAL_CHUNK]
                loss_sum = [a + b for a, b in zip(loss_sum, self.per_example_loss(outputs, targets).sum(1).tolist())]
                if self.classification:
                    hits = (outputs.argmax(2) == targets.unsqueeze(0)).sum(1).tolist()
                    correct = [a + b for a, b in zip(correct, hits)]
                else:
                    err = ((outputs.squeeze(2) - targets.unsqueeze(0)) ** 2).sum(1).tolist()
                    sse = [a + b for a, b in zip(sse, err)]
            sst = 0.0 if self.classification else float(((y - y.mean()) ** 2).sum())
            for j in range(k):
                out[j][f"{split}_loss"] = loss_sum[j] / len(y)
                if self.classification:
                    out[j][f"{split}_acc"] = correct[j] / len(y)
                else:
                    out[j][f"{split}_mse"] = sse[j] / len(y)
                    out[j][f"{split}_r2"] = 1.0 - sse[j] / sst if sst > 0 else float("nan")
        return out

    # -- bookkeeping
    def keep(self, idx: list[int]) -> None:
        """Drop every row not in ``idx`` (trials that left the pack)."""
        if len(idx) == len(self.trials):
            return
        rows = torch.tensor(idx, dtype=torch.long, device=self.device)
        self.perms = self.perms[rows]
        with torch.no_grad():
            self.theta = self.theta[rows].detach().requires_grad_(True)
            self.bn_mean = [m[rows].contiguous() for m in self.bn_mean]
            self.bn_var = [v[rows].contiguous() for v in self.bn_var]
        self.opt.keep(rows, idx)
        if hasattr(self, "clip_threshold"):
            self.clip_threshold = self.clip_threshold[rows]
        self.trials = [self.trials[i] for i in idx]
        self.dropout_p = [self.dropout_p[i] for i in idx]
        self.ids = [self.ids[i] for i in idx]

    def finish(self, j: int, status: TrialStatus, step: int, reason: str | None = None,
               error: str | None = None) -> None:
        """Record row j's trial as it stands (its rows are dropped by the caller)."""
        t = self.trials[j]
        spec = t.spec
        if error is not None:
            record = TrialRecord.failed(spec, error)
        else:
            if status is TrialStatus.DIVERGED:
                metrics: dict[str, float] = {}  # never filled in
            else:
                metrics = dict(t.best[2]) if spec.patience and spec.restore_best else \
                    {key: t.curve[-1][key] for key in self.metric_keys}
                if t.grad_norms_init:
                    metrics["grad_ratio_init"] = _ratio(t.grad_norms_init)
                if spec.measure_latency:
                    metrics["forward_latency_s"] = forward_latency(self.module_of(j), self.data.x_val[:256])
            b = spec.batch_size
            record = TrialRecord(
                trial_id=spec.trial_id, spec=spec.to_dict(), status=status, metrics=metrics, curve=t.curve,
                diverged_step=step if status is TrialStatus.DIVERGED else None, divergence_reason=reason,
                steps_done=step, examples_done=step * b, steps_to_target=t.steps_to_target,
                examples_to_target=t.steps_to_target * b if t.steps_to_target is not None else None,
                best_step=t.best[1], stopped_early=status is TrialStatus.COMPLETED and step < self.total,
                time_per_step_s=t.train_share / step if step else None,
                examples_per_s=step * b / t.train_share if t.train_share > 0 else None,
                grad_norms_init=t.grad_norms_init)
        record.wall_s = t.wall_share
        self.records[self.ids[j]] = record

    def module_of(self, j: int) -> nn.Module:
        """Row j's trial as a plain nn.Module with its current weights (for measurements)."""
        spec = self.trials[j].spec
        model = build_model(spec, self.data.input_shape, self.data.n_outputs).to(self.device)
        with torch.no_grad():
            torch.nn.utils.vector_to_parameters(self.theta[j].detach().clone(), model.parameters())
            bns = [m for m in model if isinstance(m, nn.BatchNorm1d)]
            for i, bn in enumerate(bns):
                bn.running_mean.copy_(self.bn_mean[i][j])
                bn.running_var.copy_(self.bn_var[i][j])
        return model

    def share(self, seconds: float, training: bool) -> None:
        """Charge ``seconds`` of the pack's time to the trials in it, equally (none left: nobody)."""
        if not self.trials:
            return
        each = seconds / len(self.trials)
        for t in self.trials:
            t.wall_share += each
            if training:
                t.train_share += each

    # -- the loop
    def run(self) -> list[TrialRecord]:
        first = self.evaluate(self.params())
        for t, m in zip(self.trials, first):
            t.curve.append({"step": 0, "examples": 0, "epoch": 0.0, "lr": t.spec.lr * t.schedule.factor(0),
                            "train_loss_ema": float("nan"), **m, "elapsed_s": 0.0})
            t.initial_loss = m["train_loss"]  # the divergence reference, as train_trial
            t.best = (m[self.score], 0, m)
        self.metric_keys = list(first[0]) if first else []
        self.share(time.perf_counter() - self.start, training=False)  # setup and the first evaluation
        b, step = self.batch, 0
        while step < self.total and self.trials:
            t0 = time.perf_counter()
            # --- one step, for every trial still in the pack
            pos = step % self.steps_per_epoch
            if pos == 0:
                self.perms = torch.stack([torch.randperm(self.n_train, generator=t.order_rng)
                                          for t in self.trials]).to(self.device)
            idx = self.perms[:, pos * b:(pos + 1) * b]
            for t in self.trials:
                t.lr = t.spec.lr * t.schedule.factor(step)
            params = self.params()
            losses = self.per_example_loss(self.forward(params, self.data.x_train[idx], training=True),
                                           self.data.y_train[idx]).mean(1)
            going = self._check_divergence(losses.tolist(), step)
            if not going:
                self.keep([])
                break
            # a diverged trial's loss is left out: its rows get no gradient and are dropped before the update
            total_loss = losses.sum() if len(going) == len(losses) else losses[going].sum()
            grads = torch.cat([g.reshape(len(losses), -1) for g in torch.autograd.grad(total_loss, params)], 1)
            if len(going) < len(losses):
                grads = grads[torch.tensor(going, device=self.device)]
                self.keep(going)
            if step == 0 or step + 1 in self.eval_at:  # raw gradients, before clipping; not timed as training
                t_measure = time.perf_counter()
                for t, norms in zip(self.trials, self._grad_norms(grads)):
                    if step == 0:
                        t.grad_norms_init = norms
                    t.grad_ratio = _ratio(norms)
                t0 += time.perf_counter() - t_measure
            self.opt.step(self.theta.data, self._clip(grads), [t.lr for t in self.trials])
            step += 1
            self.share(time.perf_counter() - t0, training=True)
            if any(t.inject_error for t in self.trials):
                self._fail_injected(step)

            # --- evaluation
            if step in self.eval_at and self.trials:
                t_eval = time.perf_counter()
                self._evaluation(step)
                self.share(time.perf_counter() - t_eval, training=False)
        for j in range(len(self.trials)):  # what is left ran its whole budget
            self.finish(j, TrialStatus.COMPLETED, step)
        return [self.records[i] for i in sorted(self.records)]

    def params(self) -> list[torch.Tensor]:
        """Views of the flat parameters, in the plan's order (weight, bias per op)."""
        return [_view(self.theta, place) for place in self.places]

    def _check_divergence(self, values: list[float], step: int) -> list[int]:
        """Smooth each trial's loss; record the trials that diverged; return the rows that go on."""
        going = []
        for j, (t, value) in enumerate(zip(self.trials, values)):
            t.smoothed = value if t.smoothed is None else (1 - EMA) * t.smoothed + EMA * value
            if not math.isfinite(value):
                self.finish(j, TrialStatus.DIVERGED, step, "non-finite training loss")
            elif t.smoothed > t.spec.divergence_factor * t.initial_loss:
                self.finish(j, TrialStatus.DIVERGED, step, f"smoothed training loss {t.smoothed:.3g} > "
                            f"{t.spec.divergence_factor:g} x initial {t.initial_loss:.3g}")
            else:
                going.append(j)
        return going

    def _grad_norms(self, grads: torch.Tensor) -> list[list[float]]:
        """Per trial, the L2 norm of each weight layer's gradient (hidden layers, then the head)."""
        cols = [grads[:, off:off + size].pow(2).sum(1).sqrt() for off, size, _ in self.weight_places]
        return torch.stack(cols, 1).tolist()

    def _clip(self, grads: torch.Tensor) -> torch.Tensor:
        clip = self.trials[0].spec.clip
        if clip == "value":
            return torch.clamp(grads, min=-self.clip_threshold, max=self.clip_threshold)
        if clip == "norm":  # as clip_grad_norm_: the norm of the per-parameter norms; the factor capped at 1
            norms = torch.stack([grads[:, off:off + size].norm(dim=1) for off, size, _ in self.places], 1)
            coef = torch.clamp(self.clip_threshold / (norms.norm(dim=1, keepdim=True) + CLIP_EPS), max=1.0)
            return grads * coef
        return grads

    def _fail_injected(self, step: int) -> None:
        going = []
        for j, t in enumerate(self.trials):
            if t.inject_error:
                self.finish(j, TrialStatus.FAILED, step,
                            error="RuntimeError: injected fault (CLAIMBENCH_FAULTS raise) (in packed training)")
            else:
                going.append(j)
        self.keep(going)

    def _evaluation(self, step: int) -> None:
        going = []
        for j, (t, m) in enumerate(zip(self.trials, self.evaluate(self.params()))):
            spec = t.spec
            t.curve.append({"step": step, "examples": step * self.batch, "epoch": step / self.steps_per_epoch,
                            "lr": t.lr, "train_loss_ema": t.smoothed, "grad_ratio": t.grad_ratio, **m,
                            "elapsed_s": t.train_share})
            if not math.isfinite(m["val_loss"]):
                self.finish(j, TrialStatus.DIVERGED, step, "non-finite validation loss")
                continue
            t.schedule.on_eval(m["val_loss"])
            if spec.target and t.steps_to_target is None and m[self.score] >= spec.target:
                t.steps_to_target = step
            if m[self.score] > t.best[0]:
                t.best, t.bad_evals = (m[self.score], step, m), 0
            else:
                t.bad_evals += 1
            if spec.patience and t.bad_evals >= spec.patience:
                self.finish(j, TrialStatus.COMPLETED, step)  # stopped early
                continue
            going.append(j)
        self.keep(going)
