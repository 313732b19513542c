"""The packed engine: K trials of the same shape trained jointly, one batched kernel per layer for all K.

Small-batch trials are bound by per-step overhead (Python, dispatch, kernel launches), not by
arithmetic; training K models with one kernel per layer, one loss, one backward and one optimizer
update on stacked tensors pays that overhead once per step instead of K times. What a trial means
(budget, divergence, target, best, early stopping, the range test, the record) is ``policy``'s, as
for the single-trial engine; this engine only moves tensors.

Families (``runner.packs.packable`` decides what packs; a trial it refuses, or a pack of one, is
trained by ``train_trial`` on the single-trial engine):

- **mlp**: each Linear is one ``baddbmm`` over (K, B, F) activations.
- **cnn**: the HFTA trick (Wang et al., MLSys 2021): activations are laid out as (B, K*C, H, W) and
  each 3x3 convolution is one ``conv2d(..., groups=K)`` over the K models' stacked filters (at
  evaluation, where every model sees the same images, the first one is a plain convolution with all
  K*C filters). BatchNorm2d, ReLU-like activations and max-pooling act per channel, so per model;
  global average pooling then turns the layout back into (K, B, C) for each model's head.
  Activations and filters are kept channels-last (NHWC in memory): on the CPU oneDNN's grouped
  convolution and max-pooling are 1.5-2.5x faster per trial that way at 8-32 models of 16 channels
  (reports/performance.md, "CNN packs"); the values are the same, summed in another order.
- **rnn / lstm**: each layer's input projections for all steps are one ``baddbmm``; the recurrence is
  one ``baddbmm`` per time step over the K models' stacked hidden weights (LSTM gates i, f, g, o as
  ``nn.LSTM``), the head reads the last step.

What a pack shares and what each trial keeps (``runner.packs.pack_key`` forms packs):

- shared: the dataset, the architecture (model, depth, widths, activation, BatchNorm, dropout kind
  and position), the loss, the optimizer kind, the clipping kind, the batch size and the budget (so
  every trial has the same steps and evaluation points);
- per trial: initial weights (each model is built under its own seed exactly as ``train_trial``
  builds it, then stacked), data order (``policy.DataOrder``), dropout rate and masks and RReLU's
  random slopes (its own generator, started where ``train_trial``'s global RNG stands after the
  model is built, drawing as ``nn.Dropout``, ``nn.AlphaDropout`` and ``nn.RReLU`` do on the CPU),
  PReLU's learned slope, learning rate and schedule (warmup, step, exponential, cosine, onecycle,
  plateau on its own validation loss), momentum, Nesterov, weight decay, betas, eps, clipping
  threshold, BatchNorm statistics, divergence factor, target, early-stopping patience and
  restore-best; for ``kind = "range_test"`` its own LR ramp and stopping point.

Parameters live in one ``(K, P)`` tensor: each trial's parameters, flattened in the model's own
order. The optimizers (SGD with momentum and Nesterov, Adam, AdamW, NAdam, RMSprop, Adamax) are
written on it with per-trial hyperparameters as ``(K, 1)`` columns, following the arithmetic of
torch's foreach implementations. Nothing reduces across K: each trial's loss, gradient norm,
clipping factor and update is its own, so a NaN in one trial stays in its row.

Same results as ``train_trial``, to float tolerance: batched matmuls, grouped convolutions and
per-row reductions sum in a different order than the unpacked kernels (differences of about 1e-6
relative that grow slowly over steps, see tests/test_packed.py). Random draws (dropout and
AlphaDropout masks, RReLU slopes) come from each trial's own generator in ``train_trial``'s order
and the same way, so on the CPU they match too; on CUDA ``nn.Dropout`` and ``nn.RReLU`` use kernels
that consume the RNG differently, so masks and slopes there match in distribution only.

Timing: ``time_per_step_s`` is the trial's share of the pack's step time (policy). ``measure_latency``
times the trial's own ``nn.Module`` rebuilt from its weights (its best checkpoint with restore-best).
"""

from __future__ import annotations

import math
import socket
import time
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from claimbench.runner.packs import CNN_EVAL_FLOATS, pack_key, packable
from claimbench.train import policy
from claimbench.train.loop import train_trial
from claimbench.train.metrics import EVAL_CHUNK, LATENCY_BATCH, batch_losses, evaluate, forward_latency, make_loss
from claimbench.trial import TrialRecord
from claimbench.workloads.builtin import TrialSpec
from claimbench.workloads.builtin.layers import Readout, SequenceModel, as_sequence, param_scales
from claimbench.workloads.builtin.models import build_model
from claimbench.workloads.data import DataCache, Dataset

NADAM_MOMENTUM_DECAY = 4e-3  # torch.optim.NAdam's default, as make_optimizer leaves it
CLIP_EPS = 1e-6  # torch.nn.utils.clip_grad_norm_'s
ALPHA = 1.7580993408473766  # AlphaDropout's alpha (SELU's -lambda * alpha), as ATen's
RRELU_LOWER, RRELU_UPPER = 1.0 / 8, 1.0 / 3  # nn.RReLU's defaults
#: An optimizer step over (K, P) tensors of more than STEP_CHUNKED elements runs in column chunks of about
#: STEP_CHUNK elements (``_StackedOptimizer.step``), and such a pack's backward copies each gradient once into
#: a reused buffer (``PackedEngine.backward``): past a few MB per tensor the passes and copies are
#: memory-bound (benchmarks/engine_ab.py, reports/performance.md); below that, chunks and per-parameter
#: copies only add kernel launches (the buffer measured 0.87-0.91x on small packs).
STEP_CHUNK, STEP_CHUNKED = 1 << 17, 1 << 20


def _large(t: torch.Tensor) -> bool:
    """Whether a (K, P) pack tensor takes the large-pack paths (STEP_CHUNKED)."""
    return t.numel() > STEP_CHUNKED


def train_pack(specs: list[TrialSpec], cache: DataCache | None = None, device: str | torch.device = "cpu",
               inject_error: list[bool] | None = None) -> list[TrialRecord]:
    """Train ``specs``; one record per spec, in order. Never raises.

    Packable specs (``runner.packs.packable``) with the same ``pack_key`` train jointly; every
    other spec, and a pack of one, trains alone with ``train_trial``. ``inject_error[i]`` makes spec i
    fail after its first step (fault injection, see faults.py), leaving its pack-mates to go on.
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
        if len(members) == 1:  # nothing to share: the single-trial engine is the reference
            i = members[0]
            out[i] = train_trial(specs[i], cache, device, inject_error=flags[i])
            continue
        records = train_jointly([specs[i] for i in members], cache, device, [flags[i] for i in members])
        for i, record in zip(members, records):
            out[i] = record
    return [r for r in out if r is not None]


def train_jointly(specs: list[TrialSpec], cache: DataCache | None = None, device: str | torch.device = "cpu",
                  inject_error: list[bool] | None = None) -> list[TrialRecord]:
    """Train packable specs that share one ``pack_key`` on the packed engine, even one alone
    (``train_pack`` decides when to call this); one record per spec, in order. Never raises."""
    start = time.perf_counter()
    device = torch.device(device)
    try:
        if not all(packable(s) for s in specs) or len({pack_key(s) for s in specs}) != 1:
            raise ValueError("train_jointly takes packable specs with one pack_key")
        data = (cache or DataCache()).for_spec(specs[0], device)
    except Exception as e:  # a failure is a result, with its reason, on one line
        records = [TrialRecord.failed(s, policy.failure_text(e, "; packed")) for s in specs]
    else:
        records = policy.run(specs, data, device, lambda group: PackedEngine(group, data, device), inject_error, start)
    host = socket.gethostname()
    for r in records:
        r.host, r.device = host, str(device)
    return records


# --- the model as stacked tensors -------------------------------------------------------------

Place = tuple[int, int, tuple[int, ...]]  # (offset, size, shape) of one parameter in the flat vector


@dataclass
class _Op:
    kind: str  # linear | bn | bn2d | act | prelu | rrelu | dropout | image | conv | maxpool | gap | sequence | rnn | lstm | last
    params: tuple[Place, ...] = ()  # in the module's parameter order
    index: int = 0  # bn: which running buffers; rnn, lstm: which weight layer
    module: nn.Module | None = None  # act: the (stateless, elementwise) activation module
    nonlinearity: str = "tanh"  # rnn
    scale: float = 1.0  # linear: a multiplier on its input (muP's readout, models.Readout)


_PARAMETER_FREE = {nn.Dropout: "dropout", nn.AlphaDropout: "alpha_dropout", nn.Unflatten: "image",
                   nn.MaxPool2d: "maxpool", nn.AdaptiveAvgPool2d: "gap"}


def _plan(model: nn.Module) -> tuple[list[_Op], list[int], list[list[Place]]]:
    """The ops of a model in forward order, each with its parameters' places in the flat vector; the
    width of each BatchNorm layer; and the weight layers' places (as models.weight_layers)."""
    ops: list[_Op] = []
    bn_widths: list[int] = []
    weights: list[list[Place]] = []
    offset = 0

    def take(*tensors: torch.Tensor) -> tuple[Place, ...]:
        nonlocal offset
        places = []
        for p in tensors:
            places.append((offset, p.numel(), tuple(p.shape)))
            offset += p.numel()
        return tuple(places)

    def block(m: nn.Module) -> None:
        if isinstance(m, nn.Linear):
            ops.append(_Op("linear", take(m.weight, m.bias), scale=m.multiplier if isinstance(m, Readout) else 1.0))
            weights.append([ops[-1].params[0]])
        elif isinstance(m, nn.Conv2d):
            if m.kernel_size != (3, 3) or m.padding != (1, 1) or m.stride != (1, 1) or m.groups != 1:
                raise ValueError(f"packed training stacks 3x3 same-padding convolutions, not {m}")
            ops.append(_Op("conv", take(m.weight, m.bias)))
            weights.append([ops[-1].params[0]])
        elif isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
            kind = "bn" if isinstance(m, nn.BatchNorm1d) else "bn2d"
            ops.append(_Op(kind, take(m.weight, m.bias), index=len(bn_widths)))
            bn_widths.append(m.num_features)
        elif isinstance(m, nn.PReLU):
            if m.num_parameters != 1:
                raise ValueError("packed training stacks PReLU with one slope per layer")
            ops.append(_Op("prelu", take(m.weight)))
        elif isinstance(m, nn.RReLU):
            if (m.lower, m.upper) != (RRELU_LOWER, RRELU_UPPER):
                raise ValueError("packed training draws RReLU slopes from nn.RReLU's default range")
            ops.append(_Op("rrelu"))
        elif type(m) in _PARAMETER_FREE:
            ops.append(_Op(_PARAMETER_FREE[type(m)]))
        elif isinstance(m, nn.Flatten):
            pass  # gap already leaves (K, B, C)
        elif isinstance(m, (nn.ReLU, nn.LeakyReLU, nn.ELU, nn.SELU, nn.GELU, nn.Sigmoid, nn.Tanh)):
            ops.append(_Op("act", module=m))
        else:
            raise ValueError(f"packed training cannot stack {type(m).__name__}")

    if isinstance(model, SequenceModel):
        ops.append(_Op("sequence"))
        for layer in model.layers:
            kind = "lstm" if isinstance(layer, nn.LSTM) else "rnn"
            if layer.num_layers != 1 or layer.bidirectional or not layer.batch_first or layer.proj_size:
                raise ValueError(f"packed training stacks one-layer batch-first recurrences, not {layer}")
            ops.append(_Op(kind, take(layer.weight_ih_l0, layer.weight_hh_l0, layer.bias_ih_l0, layer.bias_hh_l0),
                           index=len(weights), nonlinearity=getattr(layer, "nonlinearity", "tanh")))
            weights.append(list(ops[-1].params[:2]))
            for m in model.drop:
                block(m)
        ops.append(_Op("last"))
        block(model.head)
    elif isinstance(model, nn.Sequential):
        for m in model:
            block(m)
    else:
        raise ValueError(f"packed training cannot stack {type(model).__name__}")
    assert offset == sum(p.numel() for p in model.parameters()), "the plan must cover every parameter in order"
    return ops, bn_widths, weights


def _view(theta: torch.Tensor, place: Place) -> torch.Tensor:
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


class PackedEngine:
    """K trials' models as stacked tensors, as a policy.Engine with one row per trial."""

    def __init__(self, specs: list[TrialSpec], data: Dataset, device: torch.device):
        self.data, self.device, self.specs = data, device, list(specs)
        s0 = specs[0]
        self.name = f"packed-{s0.model}"
        self.loss_fn = make_loss(s0, data)
        self.train_probe = torch.arange(min(len(data.y_train), len(data.y_val)), device=device)
        self.input_shape = tuple(data.input_shape)
        rows, self.rngs = [], []
        template_at = next((j for j, s in enumerate(specs) if s.dropout > 0), 0)  # one with the dropout layers, if any
        template = None
        for j, spec in enumerate(specs):
            torch.manual_seed(spec.seed)  # as train_trial: init, then random draws from where init left the RNG
            model = build_model(spec, data.input_shape, data.n_outputs)
            rng = torch.Generator(device)
            if device.type == "cpu":
                rng.set_state(torch.get_rng_state())
            else:
                rng.manual_seed(spec.seed)
            self.rngs.append(rng)
            rows.append(torch.cat([p.detach().reshape(-1) for p in model.parameters()]))
            if j == template_at:
                template = model
        self.ops, bn_widths, self.weight_places = _plan(template)
        self.op_slices: list[slice] = []  # each op's parameters in params()
        n = 0
        for op in self.ops:
            self.op_slices.append(slice(n, n + len(op.params)))
            n += len(op.params)
        self.places = [place for op in self.ops for place in op.params]
        k = len(specs)
        self.theta = torch.stack(rows).to(device).requires_grad_(True)
        self.bn_mean = [torch.zeros(k, c, device=device) for c in bn_widths]
        self.bn_var = [torch.ones(k, c, device=device) for c in bn_widths]
        self.dropout_p = [s.dropout for s in specs]
        self.dropout_p_max = max(self.dropout_p)
        self.last_recurrent = max([op.index for op in self.ops if op.kind in ("rnn", "lstm")], default=-1)
        scales = None
        if s0.parameterization == "mup":  # muP's per-layer LR and decay multipliers, as (1, P) rows
            per_param = [(p.numel(), ls, ws) for p, (ls, ws) in zip(template.parameters(), param_scales(template))]
            scales = tuple(torch.cat([torch.full((n,), v[i]) for n, *v in per_param]).view(1, -1).to(device)
                           for i in (0, 1))
        self.opt = _StackedOptimizer(specs, self.theta.detach(), scales)
        self.clip = s0.clip
        self.clip_threshold = self.opt.col([s.clip_threshold for s in specs])
        self.checkpoints: list[tuple | None] = [None] * k
        self._params: list[torch.Tensor] = []
        self.grads = torch.empty(0)
        self._grad_buffer = torch.empty(0)

    @property
    def k(self) -> int:
        return self.theta.shape[0]

    def params(self) -> list[torch.Tensor]:
        """Views of the flat parameters, in the plan's order."""
        return [_view(self.theta, place) for place in self.places]

    # -- policy.Engine
    def losses(self, idx: torch.Tensor) -> torch.Tensor:
        self._params = self.params()
        out = self.forward(self._params, self.data.x_train[idx], training=True)
        return batch_losses(self.loss_fn, out, self.data.y_train[idx])

    def backward(self, losses: torch.Tensor, rows: list[int]) -> None:
        k = losses.shape[0]
        total = losses.sum() if len(rows) == k else losses[rows].sum()
        found = torch.autograd.grad(total, self._params)
        if _large(self.theta):  # each gradient copied once into a reused buffer (reshape would copy a
            if self._grad_buffer.shape != self.theta.shape:  # transposed weight's gradient, then cat again)
                self._grad_buffer = torch.empty_like(self.theta, requires_grad=False)
            grads = self._grad_buffer
            for (off, size, shape), g in zip(self.places, found):
                grads[:, off:off + size].view(k, *shape).copy_(g)
        else:  # a small one: fewer, larger kernels (the buffer measured slower there, benchmarks/engine_ab.py)
            grads = torch.cat([g.reshape(k, -1) for g in found], 1)
        self._params = []
        if len(rows) < k:
            grads = grads[torch.tensor(rows, device=self.device)]
            self.keep(rows)
        self.grads = grads

    def grad_norms(self) -> list[list[float]]:
        cols = [torch.stack([self.grads[:, off:off + size].pow(2).sum(1) for off, size, _ in layer]).sum(0).sqrt()
                for layer in self.weight_places]
        return torch.stack(cols, 1).tolist()

    def update(self, lrs: list[float]) -> None:
        self.opt.step(self.theta.data, self._clip(self.grads), lrs)
        self.grads = torch.empty(0)

    def evaluate(self) -> list[dict[str, float]]:
        params = [p.detach() for p in self.params()]
        return evaluate(lambda x: self.forward(params, x, training=False), self.k, self.data, self.train_probe,
                        self.loss_fn, self.eval_chunk())

    def eval_chunk(self) -> int:
        """Examples per evaluation pass: all K models' first-layer activations of a chunk stay within
        CNN_EVAL_FLOATS (in cache), which for convolutions (K x channels x pixels per example) is far
        below EVAL_CHUNK."""
        if self.specs[0].model != "cnn":
            return EVAL_CHUNK
        per_example = self.k * self.specs[0].width * math.prod(self.input_shape[1:])  # the first conv's output
        return max(16, min(EVAL_CHUNK, CNN_EVAL_FLOATS // per_example))

    def keep(self, rows: list[int]) -> None:
        if len(rows) == self.k:
            return
        index = torch.tensor(rows, dtype=torch.long, device=self.device)
        with torch.no_grad():
            self.theta = self.theta[index].detach().requires_grad_(True)
            self.bn_mean = [m[index].contiguous() for m in self.bn_mean]
            self.bn_var = [v[index].contiguous() for v in self.bn_var]
        self.opt.keep(index, rows)
        self.clip_threshold = self.clip_threshold[index]
        for name in ("specs", "rngs", "dropout_p", "checkpoints"):
            setattr(self, name, [getattr(self, name)[j] for j in rows])

    def checkpoint(self, k: int) -> None:
        self.checkpoints[k] = (self.theta[k].detach().clone(), [m[k].clone() for m in self.bn_mean],
                               [v[k].clone() for v in self.bn_var])

    def latency(self, k: int, restore: bool) -> float:
        return forward_latency(self.module_of(k, restore), self.data.x_val[:LATENCY_BATCH])

    def noise_scale(self, step: int) -> list[dict[str, float]]:
        raise ValueError("the packed engine does not measure the gradient noise scale (packable refuses it)")

    # -- the model
    def module_of(self, k: int, restore: bool = False) -> nn.Module:
        """Row k's trial as a plain nn.Module with its current weights (or its checkpoint's)."""
        theta, means, variances = self.theta[k].detach(), [m[k] for m in self.bn_mean], [v[k] for v in self.bn_var]
        if restore and self.checkpoints[k] is not None:
            theta, means, variances = self.checkpoints[k]
        model = build_model(self.specs[k], self.data.input_shape, self.data.n_outputs).to(self.device)
        with torch.no_grad():
            torch.nn.utils.vector_to_parameters(theta.clone(), model.parameters())
            bns = [m for m in model.modules() if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d))]
            for bn, mean, var in zip(bns, means, variances):
                bn.running_mean.copy_(mean)
                bn.running_var.copy_(var)
        return model

    def forward(self, params: list[torch.Tensor], x: torch.Tensor, training: bool) -> torch.Tensor:
        """Outputs (K, N, n_out) of every trial's model on x: (K, N, D) per trial, or (N, D) shared by all.

        Layouts: "rows" (K, N, ...) per trial; "grouped" (N, K*C, H, W) for convolutions; "sequence"
        (K, N, T, H), a recurrent layer's outputs (which nn.RNN and nn.LSTM lay out time-major in memory);
        "shared" the inputs, the same for every trial, until a layer makes them per trial."""
        k = self.k
        h, layout = x, "rows" if x.dim() == 3 else "shared"
        for op, where in zip(self.ops, self.op_slices):
            kind, p = op.kind, params[where]
            if kind == "linear":
                if layout == "shared":
                    h, layout = h.unsqueeze(0).expand(k, *h.shape), "rows"
                if op.scale != 1.0:  # muP's readout: its input x 1 / width_mult (models.Readout)
                    h = h * op.scale
                h = torch.baddbmm(p[1].unsqueeze(1), h, p[0].transpose(1, 2))
            elif kind == "image":
                c, height, width = self.input_shape
                if layout == "shared":  # the first convolution sees the same images for all K
                    h = h.reshape(-1, c, height, width)
                else:
                    h, layout = h.reshape(k, -1, c, height, width).transpose(0, 1).reshape(-1, k * c, height, width), \
                        "grouped"
                h = h.contiguous(memory_format=torch.channels_last)  # see CHANNELS_LAST
            elif kind == "conv":
                w, b = p[0].reshape(-1, *p[0].shape[2:]), p[1].reshape(-1)  # (K*C_out, C_in, 3, 3), (K*C_out,)
                w = w.contiguous(memory_format=torch.channels_last)
                h = F.conv2d(h, w, b, padding=1, groups=1 if layout == "shared" else k)
                layout = "grouped"
            elif kind == "bn":
                h = _batch_norm(h, p[0], p[1], self.bn_mean[op.index], self.bn_var[op.index], training)
            elif kind == "bn2d":  # (N, K*C, H, W): each trial's channels are its own
                h = F.batch_norm(h, self.bn_mean[op.index].view(-1), self.bn_var[op.index].view(-1), p[0].reshape(-1),
                                 p[1].reshape(-1), training, 0.1, 1e-5)
            elif kind == "act":
                h = op.module(h)
            elif kind == "prelu":
                h = torch.where(h > 0, h, h * self._per_trial(p[0], h, layout))
            elif kind == "rrelu":
                h = self._rrelu(h, layout) if training else F.leaky_relu(h, (RRELU_LOWER + RRELU_UPPER) / 2)
            elif kind in ("dropout", "alpha_dropout"):
                if training and any(q > 0 for q in self.dropout_p):
                    h = self._dropout(h, layout, alpha=kind == "alpha_dropout")
            elif kind == "maxpool":
                h = F.max_pool2d(h, 2)
            elif kind == "gap":  # global average pooling: back to (K, N, C) for the heads
                h, layout = F.adaptive_avg_pool2d(h, 1).reshape(h.shape[0], k, -1).transpose(0, 1), "rows"
            elif kind == "sequence":
                if layout == "shared":
                    h, layout = h.unsqueeze(0).expand(k, *h.shape), "rows"
                seq = as_sequence(h.reshape(k * h.shape[1], -1), self.input_shape)  # (K*N, T, F)
                h = seq.reshape(k, h.shape[1], *seq.shape[1:])
            elif kind in ("rnn", "lstm"):
                # the head reads only the last step: without a layer or a dropout mask to draw after it
                # (evaluation draws none), the last layer keeps only that step
                last_only = op.index == self.last_recurrent and (not training or self.dropout_p_max == 0)
                h = _recurrence(kind, op.nonlinearity, h, *p, training=training, last_only=last_only)
                layout = "sequence"
            elif kind == "last":
                h, layout = h[:, :, -1], "rows"
        return h

    def _per_trial(self, values: torch.Tensor, h: torch.Tensor, layout: str) -> torch.Tensor:
        """(K, 1) per-trial values, broadcastable against h in its layout."""
        k = self.k
        if layout == "grouped":
            c = h.shape[1] // k
            return values.expand(k, c).reshape(1, k * c, *[1] * (h.dim() - 2))
        return values.view(k, *[1] * (h.dim() - 1))

    def _one(self, h: torch.Tensor, layout: str) -> tuple[int, ...]:
        """The shape of one trial's activations in memory order, as its nn.Module holds them (random
        draws fill that order)."""
        if layout == "grouped":
            n, kc, *rest = h.shape
            return (n, kc // self.k, *rest)
        if layout == "sequence":  # (N, T, H) with time-major strides: drawn as (T, N, H)
            return (h.shape[2], h.shape[1], h.shape[3])
        return tuple(h.shape[1:])

    def _stack(self, per_trial: list[torch.Tensor], h: torch.Tensor, layout: str) -> torch.Tensor:
        """Per-trial tensors of shape ``_one(h)`` as one tensor in h's layout."""
        if layout == "grouped":  # (N, K*C, H, W) channels-last, as h: (N, H, W, K, C) in memory
            n, kc, height, width = h.shape
            return torch.stack([t.permute(0, 2, 3, 1) for t in per_trial], 3).view(n, height, width, kc) \
                .permute(0, 3, 1, 2)
        if layout == "sequence":
            return torch.stack(per_trial).transpose(1, 2)
        return torch.stack(per_trial)

    def _slice(self, h: torch.Tensor, layout: str, j: int) -> torch.Tensor:
        if layout == "grouped":
            return h.view(h.shape[0], self.k, -1, *h.shape[2:])[:, j]
        return h[j]

    def _dropout(self, h: torch.Tensor, layout: str, alpha: bool) -> torch.Tensor:
        """Each trial's mask from its own generator, drawn as nn.Dropout / nn.AlphaDropout draw it on the CPU
        (ATen's _dropout_impl): bernoulli(1 - p), then / (1 - p); alpha: x * a * mask + b(mask)."""
        one, masks, shifts = self._one(h, layout), [], []
        for rng, p in zip(self.rngs, self.dropout_p):
            if p <= 0:
                masks.append(torch.ones(one, device=self.device))
                shifts.append(torch.zeros(one, device=self.device))
                continue
            noise = torch.empty(one, device=self.device).bernoulli_(1 - p, generator=rng)
            if alpha:
                a = 1.0 / math.sqrt((ALPHA * ALPHA * p + 1) * (1 - p))
                shifts.append(noise.add(-1).mul_(ALPHA * a).add_(ALPHA * a * p))
                masks.append(noise.mul_(a))
            else:
                masks.append(noise.div_(1 - p))
        out = h * self._stack(masks, h, layout)
        return out + self._stack(shifts, h, layout) if alpha else out

    def _rrelu(self, h: torch.Tensor, layout: str) -> torch.Tensor:
        """RReLU in training: a slope from U(lower, upper) for each non-positive input, drawn from each
        trial's generator in element order as ATen's CPU kernel draws them (one double per such
        element, from float32 bounds, rounded to float32)."""
        lower, upper = float(np.float32(RRELU_LOWER)), float(np.float32(RRELU_UPPER))
        noises = []
        for j, rng in enumerate(self.rngs):
            negative = self._slice(h, layout, j).detach() <= 0
            slopes = torch.empty(int(negative.sum()), dtype=torch.float64, device=self.device).uniform_(
                lower, upper, generator=rng)
            noises.append(torch.ones(negative.shape, dtype=h.dtype, device=self.device)
                          .masked_scatter_(negative, slopes.to(h.dtype)))
        return h * self._stack(noises, h, layout)

    def _clip(self, grads: torch.Tensor) -> torch.Tensor:
        if self.clip == "value":
            return torch.clamp(grads, min=-self.clip_threshold, max=self.clip_threshold)
        if self.clip == "norm":  # as clip_grad_norm_: the norm of the per-parameter norms; the factor capped at 1
            norms = torch.stack([grads[:, off:off + size].norm(dim=1) for off, size, _ in self.places], 1)
            coef = torch.clamp(self.clip_threshold / (norms.norm(dim=1, keepdim=True) + CLIP_EPS), max=1.0)
            return grads * coef
        return grads


def _recurrence(kind: str, nonlinearity: str, x: torch.Tensor, w_ih: torch.Tensor, w_hh: torch.Tensor,
                b_ih: torch.Tensor, b_hh: torch.Tensor, training: bool, last_only: bool = False) -> torch.Tensor:
    """One recurrent layer (nn.RNN or nn.LSTM, one layer, batch first, zero initial state) for K trials:
    x (K, N, T, F) -> (K, N, T, H), or (K, N, 1, H), the last step alone, with ``last_only``.

    Training: the input projections of all steps are one batched matmul; each step adds the hidden
    projection (with its bias) as torch's CPU cell does (gates = ih[t] + hh), one batched matmul for
    all K. Evaluation (thousands of sequences, no gradient): compute-bound, not overhead-bound, so each
    trial runs torch's own fused recurrence (the kernel nn.RNN / nn.LSTM run), which does fewer passes
    over memory than the step-by-step ops; its outputs are those of the trial's own module."""
    k, n, steps, features = x.shape
    hidden = w_hh.shape[2]
    if not training:
        h0 = x.new_zeros(1, n, hidden)
        outs = []
        for j in range(k):
            weights = [w_ih[j], w_hh[j], b_ih[j], b_hh[j]]
            if kind == "lstm":
                outs.append(torch._VF.lstm(x[j], (h0, h0), weights, True, 1, 0.0, False, False, True)[0])
            else:
                fn = torch._VF.rnn_tanh if nonlinearity == "tanh" else torch._VF.rnn_relu
                outs.append(fn(x[j], h0, weights, True, 1, 0.0, False, False, True)[0])
            if last_only:
                outs[-1] = outs[-1][:, -1:]
        return torch.stack(outs)
    ih = torch.baddbmm(b_ih.unsqueeze(1), x.reshape(k, n * steps, features), w_ih.transpose(1, 2))
    ih = ih.view(k, n, steps, -1).unbind(2)  # one backward for all steps (a select per step would zero-fill
    #                                          a gradient of the whole tensor at each step)
    w, b = w_hh.transpose(1, 2), b_hh.unsqueeze(1)
    h = x.new_zeros(k, n, hidden)
    c = x.new_zeros(k, n, hidden) if kind == "lstm" else None
    outs = []
    for t in range(steps):
        gates = torch.baddbmm(b, h, w) + ih[t]
        if kind == "rnn":
            h = torch.tanh(gates) if nonlinearity == "tanh" else torch.relu(gates)
        else:
            i, f, g, o = gates.chunk(4, 2)
            c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
            h = torch.sigmoid(o) * torch.tanh(c)
        outs.append(h)
    return h.unsqueeze(2) if last_only else torch.stack(outs, 2)


# --- the optimizers on stacked tensors --------------------------------------------------------

class _StackedOptimizer:
    """One optimizer kind for K trials on a (K, P) parameter tensor; hyperparameters per row.

    Scalars that torch computes in Python (bias corrections, step sizes) are computed here in
    Python too, per trial, and sent as one (K, m) float32 tensor per step."""

    def __init__(self, specs: list[TrialSpec], theta: torch.Tensor,
                 scales: tuple[torch.Tensor, torch.Tensor] | None = None):
        self.kind = specs[0].optimizer
        # muP (workloads/builtin/models/mlp.py): per-parameter LR and weight-decay multipliers, (1, P) each; None under SP
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
        width = max(1, STEP_CHUNK // max(1, theta.shape[0])) if _large(theta) else theta.shape[1]
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


