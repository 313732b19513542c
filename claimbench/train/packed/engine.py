"""The packed engine's entry point (``train_jointly``) and its ``PackedEngine``: K trials' stacked
parameters, their forward pass (``forward.StackedModel``), optimizer (``optimizers.StackedOptimizer``) and
checkpoints, as the trial policy's Engine (one row per trial). The built-in model families name this
module as their packed engine (``packing.packed_engine``)."""

from __future__ import annotations

import math
import socket
import time

import torch
from torch import nn

from claimbench.train.metrics import EVAL_CHUNK, LATENCY_BATCH, batch_losses, evaluate, forward_latency, make_loss
from claimbench.train.packed.forward import StackedModel
from claimbench.train.packed.optimizers import StackedOptimizer, clip_rows, large
from claimbench.train.packed.plan import view
from claimbench.train.packing import pack_key, packable
from claimbench.train.policy.driver import run
from claimbench.train.policy.state import failure_text
from claimbench.trial import TrialRecord
from claimbench.workloads.builtin import TrialSpec
from claimbench.workloads.data import DataCache, Dataset
from claimbench.workloads.builtin.models import build_model
from claimbench.workloads.builtin.layers import param_scales

#: A CNN pack's evaluation chunk holds at most this many floats of first-layer activations, for all
#: K models together (``PackedEngine.eval_chunk``): so a CNN trial's share of the evaluation's memory
#: is a few examples, not ``metrics.EVAL_CHUNK``.
CNN_EVAL_FLOATS = 2**19


def train_jointly(specs: list[TrialSpec], cache: DataCache | None = None, device: str | torch.device = "cpu",
                  inject_error: list[bool] | None = None, engine: type["PackedEngine"] | None = None,
                  halving: list[dict | None] | None = None) -> list[TrialRecord]:
    """Train packable specs that share one ``pack_key`` on the packed engine, even one alone
    (``train.pack.train_pack`` decides when to call this); one record per spec, in order. Never raises.
    ``engine``: a subclass of ``PackedEngine`` with another stacked model (a family's own packed module);
    ``halving``: each spec's halving directive or None (``policy.driver.halving_losers``)."""
    engine = engine or PackedEngine
    start = time.perf_counter()
    device = torch.device(device)
    try:
        if not all(packable(s) for s in specs) or len({pack_key(s) for s in specs}) != 1:
            raise ValueError("train_jointly takes packable specs with one pack_key")
        data = (cache or DataCache()).for_spec(specs[0], device)
    except Exception as e:  # a failure is a result, with its reason, on one line
        records = [TrialRecord.failed(s, failure_text(e, "; packed")) for s in specs]
    else:
        records = run(specs, data, device, lambda group: engine(group, data, device), inject_error, start, halving)
    host = socket.gethostname()
    for r in records:
        r.host, r.device = host, str(device)
    return records


class PackedEngine:
    """K trials' models as stacked tensors, as a ``policy.engine.Engine`` with one row per trial. ``stacked``:
    the forward pass over them (``forward.StackedModel``'s interface), built from one trial's model."""

    stacked = StackedModel

    def __init__(self, specs: list[TrialSpec], data: Dataset, device: torch.device):
        self.data, self.device, self.specs = data, device, list(specs)
        s0 = specs[0]
        self.name = f"packed-{s0.model}"
        self.loss_fn = make_loss(s0, data)
        self.train_probe = torch.arange(min(len(data.y_train), len(data.y_val)), device=device)
        models, rngs = [], []
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
            rngs.append(rng)
            models.append(model)
            if j == template_at:
                template = model
        self.net = self.stacked(template, data.input_shape, [s.dropout for s in specs], rngs, device)
        rows = [self.net.to_row(model) for model in models]  # each trial in the stacked model's layout
        k = len(specs)
        self.theta = torch.stack(rows).to(device).requires_grad_(True)
        scales = None
        if s0.parameterization == "mup":  # muP's per-layer LR and decay multipliers, as (1, P) rows
            per_param = [(p.numel(), ls, ws) for p, (ls, ws) in zip(template.parameters(), param_scales(template))]
            scales = tuple(torch.cat([torch.full((n,), v[i]) for n, *v in per_param]).view(1, -1).to(device)
                           for i in (0, 1))
        self.opt = StackedOptimizer(specs, self.theta.detach(), scales)
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
        return [view(self.theta, place) for place in self.net.places]

    # -- policy.Engine
    def losses(self, idx: torch.Tensor) -> torch.Tensor:
        self._params = self.params()
        out = self.net.forward(self._params, self.data.x_train[idx], training=True)
        return batch_losses(self.loss_fn, out, self.data.y_train[idx])

    def backward(self, losses: torch.Tensor, rows: list[int]) -> None:
        k = losses.shape[0]
        total = losses.sum() if len(rows) == k else losses[rows].sum()
        found = torch.autograd.grad(total, self._params)
        if large(self.theta):  # each gradient copied once into a reused buffer (then one pass, not a
            if self._grad_buffer.shape != self.theta.shape:  # reshape's copy and a cat's)
                self._grad_buffer = torch.empty_like(self.theta, requires_grad=False)
            grads = self._grad_buffer
            for (off, size, shape), g in zip(self.net.places, found):
                grads[:, off:off + size].view(k, *shape).copy_(g)
        else:  # a small one: one cat launches fewer kernels than a copy per parameter
            grads = torch.cat([g.reshape(k, -1) for g in found], 1)
        self._params = []
        if len(rows) < k:
            grads = grads[torch.tensor(rows, device=self.device)]
            self.keep(rows)
        self.grads = grads

    def grad_norms(self) -> list[list[float]]:
        cols = [torch.stack([self.grads[:, off:off + size].pow(2).sum(1) for off, size, _ in layer]).sum(0).sqrt()
                for layer in self.net.weight_places]
        return torch.stack(cols, 1).tolist()

    def update(self, lrs: list[float]) -> None:
        self.opt.step(self.theta.data, clip_rows(self.grads, self.clip, self.clip_threshold, self.net.places), lrs)
        self.grads = torch.empty(0)

    def evaluate(self, splits: tuple[str, ...], rows: list[int] | None = None) -> list[dict[str, float]]:
        params = [p.detach() for p in self.params()]
        index = None
        if rows is not None and len(rows) < self.k:  # only these rows' models run
            index = torch.tensor(rows, dtype=torch.long, device=self.device)
            params = [p[index] for p in params]
        k = self.k if index is None else len(rows)
        return evaluate(lambda x: self.net.forward(params, x, training=False, rows=index), k, self.data,
                        self.train_probe, self.loss_fn, self.eval_chunk(k), splits)

    def eval_chunk(self, k: int) -> int:
        """Examples per evaluation pass of k models: their first-layer activations of a chunk stay within
        CNN_EVAL_FLOATS (in cache), which for convolutions (k x channels x pixels per example) is far
        below EVAL_CHUNK."""
        if self.specs[0].model != "cnn":
            return EVAL_CHUNK
        per_example = k * self.specs[0].width * math.prod(self.net.input_shape[1:])  # the first conv's output
        return max(16, min(EVAL_CHUNK, CNN_EVAL_FLOATS // per_example))

    def keep(self, rows: list[int]) -> None:
        if len(rows) == self.k:
            return
        index = torch.tensor(rows, dtype=torch.long, device=self.device)
        with torch.no_grad():
            self.theta = self.theta[index].detach().requires_grad_(True)
        self.net.keep(index, rows)
        self.opt.keep(index, rows)
        self.clip_threshold = self.clip_threshold[index]
        for name in ("specs", "checkpoints"):
            setattr(self, name, [getattr(self, name)[j] for j in rows])

    def checkpoint(self, k: int) -> None:
        self.checkpoints[k] = (self.theta[k].detach().clone(), [m[k].clone() for m in self.net.bn_mean],
                               [v[k].clone() for v in self.net.bn_var])

    def latency(self, k: int, restore: bool) -> float:
        return forward_latency(self.module_of(k, restore), self.data.x_val[:LATENCY_BATCH])

    def noise_scale(self, step: int) -> list[dict[str, float]]:
        raise ValueError("the packed engine does not measure the gradient noise scale (packable refuses it)")

    def module_of(self, k: int, restore: bool = False) -> nn.Module:
        """Row k's trial as a plain nn.Module with its current weights (or its checkpoint's)."""
        theta, means, variances = self.theta[k].detach(), [m[k] for m in self.net.bn_mean], [v[k] for v in self.net.bn_var]
        if restore and self.checkpoints[k] is not None:
            theta, means, variances = self.checkpoints[k]
        model = build_model(self.specs[k], self.data.input_shape, self.data.n_outputs).to(self.device)
        self.net.load_row(theta, model)
        with torch.no_grad():
            bns = [m for m in model.modules() if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d))]
            for bn, mean, var in zip(bns, means, variances):
                bn.running_mean.copy_(mean)
                bn.running_var.copy_(var)
        return model
