"""The single-trial engine: one ``nn.Module`` and a ``torch.optim`` optimizer; and ``train_trial``.

Every workload trains here unless the packed engine takes it (built-ins only): the built-ins, a
package's components (its data, model, and optionally loss and augmentation: workloads/spec.py), and
a package's own training function (``policy.function.run_function``). A trial whose workload the worker cannot
load (the package is not installed there, or its code differs from the driver's) fails with one line
naming the package.

One spec in, one TrialRecord out; never raises. What a trial means (budget, divergence, target,
best, early stopping, the range test, the record) is ``policy``'s; losses and metrics are
``metrics``'; this engine only moves tensors: forward, backward, clipping (torch's
``clip_grad_norm_`` / ``clip_grad_value_``) and the optimizer step. It trains every model and
option there is, including users' models; ``packed`` trains the same trials K at a time and is
checked against this engine (tests/train/test_packed.py).

Seeding: ``torch.manual_seed(seed)`` before the model is built (init), then the global RNG draws the
dropout masks (and RReLU's slopes); the data order has its own generator (``policy.plan.DataOrder``).

Measurements: ``grad_norms_init`` — the L2 norm of each weight layer's gradient (hidden layers in
order, then the head; see models.weight_layers) on the first batch, before the first update and
before clipping. ``measure_latency``: the median of 20 timed eval-mode forwards of 256 validation
inputs, after 3 warm-up forwards (after restoring the best checkpoint when restore-best applies).

Gradient noise scale (``measure_noise_scale``; McCandlish et al. 2018, appendix A): at step 0
and at each evaluation, K = ``NOISE_BATCHES`` (4) disjoint batches of ``batch_size`` examples are drawn from the training set
(their own RNG, so the training batches are unchanged) and their gradients taken in train mode. From
|G_small|^2 (the mean of the K squared gradient norms, batch B) and |G_big|^2 (the squared norm of their
mean: one batch of K*B) the two-batch-size estimator gives unbiased estimates of |G|^2 and tr(Sigma), the
trace of the per-example gradient covariance. Batches are drawn without replacement from the n training
examples, so E|G_b|^2 = |G|^2 + c_b tr(Sigma) with c_b = (n - b) / (b (n - 1)), which reduces to
McCandlish's 1/b for n >> b: tr(Sigma) = (|G_small|^2 - |G_big|^2) / (c_small - c_big) and
|G|^2 = |G_small|^2 - c_small tr(Sigma). Each curve point holds ``noise_g2``, ``noise_trace`` and their ratio
``b_simple`` = tr(Sigma) / |G|^2 (NaN when the |G|^2 estimate is not positive). The final metrics hold
ratios of *means* (averaged before the ratio, as McCandlish recommends): ``b_simple`` over every measurement
after step 0, ``b_simple_at_target`` over the measurements in the second half of the way to the target
(steps in [steps_to_target / 2, steps_to_target]); a key is absent when its mean |G|^2 is not positive.
The measurement restores BatchNorm buffers and the global RNG (dropout), so training is the same with it
on or off, and it is not counted in ``time_per_step_s``.
"""

from __future__ import annotations

import copy
import socket
import time

import torch

from claimbench.train.metrics import LATENCY_BATCH, LossFn, batch_losses, evaluate, forward_latency, make_loss
from claimbench.train.optim import clip_gradients, make_optimizer
from claimbench.train.policy.driver import run
from claimbench.train.policy.function import run_function
from claimbench.train.policy.state import failure_text
from claimbench.trial import TrialRecord
from claimbench.workloads.builtin import TrialSpec
from claimbench.workloads.data import DataCache, Dataset
from claimbench.workloads import registry
from claimbench.workloads.builtin.layers import weight_layers
from claimbench.workloads.spec import Config, Workload

NOISE_BATCHES = 4  # batches of batch_size per noise-scale measurement: small batch B, big batch 4B
NOISE_SEED_OFFSET = 7919  # the noise-scale batches' RNG: seed + this, apart from the data order's
AUGMENT_SEED_OFFSET = 104729  # a workload's augmentation RNG: seed + this, apart from the data order's


def train_trial(spec: TrialSpec, cache: DataCache | None = None, device: str | torch.device = "cpu",
                inject_error: bool = False) -> TrialRecord:
    """Train one trial on the single-trial engine; every outcome, including an error, is a record.

    ``inject_error`` makes training fail after its first step (fault injection, see runner/faults.py).
    """
    start = time.perf_counter()
    dev = torch.device(device)
    try:
        workload = load_workload(spec)
        if workload.level == "function":
            record = run_function(spec, workload.train, spec.params, workload.task, dev, start, inject_error)
        else:
            data = (cache or DataCache()).for_spec(spec, dev)
    except WorkerError as e:
        record = TrialRecord.failed(spec, str(e))
        record.wall_s = time.perf_counter() - start
    except Exception as e:  # a failure is a result, with its reason, on one line
        record = TrialRecord.failed(spec, failure_text(e))
        record.wall_s = time.perf_counter() - start
    else:
        if workload.level != "function":
            record = run([spec], data, dev, lambda specs: SingleEngine(specs[0], data, dev, workload),
                                [inject_error], start)[0]
    record.host = socket.gethostname()
    record.device = str(device)
    return record


class WorkerError(Exception):
    """This worker cannot train a trial's workload; the message is the record's one-line error."""


def load_workload(spec: TrialSpec) -> Workload:
    """The workload that trains ``spec``, as installed here; WorkerError naming the package when it is not
    installed, fails to import, or is not the code the driver fingerprinted (``spec.code``)."""
    if spec.builtin:
        return registry.get(registry.BUILTIN)
    package = " ".join(spec.code.split()[:2]) or spec.workload
    host = socket.gethostname()
    try:
        workload = registry.get(spec.workload)
    except registry.WorkloadError as e:
        raise WorkerError(f"workload {spec.workload!r} cannot be loaded on {host}: {e.message}: install package "
                          f"{package} there (pip install, or ray job submit --runtime-env with it in pip or "
                          f"working_dir)") from None
    here = registry.fingerprint(spec.workload)
    if spec.code and here != spec.code:
        raise WorkerError(f"workload {spec.workload!r} on {host} is {here}, not the driver's {spec.code}: install "
                          f"the same version of the package on every node")
    return workload


class SingleEngine:
    """One trial's ``nn.Module`` (any model) and ``torch.optim`` optimizer, as a ``policy.engine.Engine`` of one row.

    ``workload``: where the model (and a loss and an augmentation, when it has them) come from; the
    built-ins' when not given."""

    name = "single"

    def __init__(self, spec: TrialSpec, data: Dataset, device: torch.device, workload: Workload | None = None):
        self.spec, self.data, self.device = spec, data, device
        workload = workload or registry.get(registry.BUILTIN)
        self.loss_fn = workload.loss or make_loss(spec, data)
        torch.manual_seed(spec.seed)  # init, then dropout masks from the global RNG
        self.model = workload.model(Config(spec, spec.params), data).to(device)
        self.augment = workload.augment
        self.augment_rng = torch.Generator().manual_seed(spec.seed + AUGMENT_SEED_OFFSET) if self.augment else None
        self.params = [p for p in self.model.parameters() if p.requires_grad]
        self.layers = weight_layers(self.model)
        self.opt = make_optimizer(spec, self.params)
        self.train_probe = torch.arange(min(len(data.y_train), len(data.y_val)), device=device)
        self.noise_rng = torch.Generator().manual_seed(spec.seed + NOISE_SEED_OFFSET)  # apart from the data order
        self.best_state: dict | None = None
        self.model.train()

    def losses(self, idx: torch.Tensor) -> torch.Tensor:
        rows = idx[0]
        x = self.data.x_train[rows]
        if self.augment is not None:  # training minibatches only, from the trial's own generator
            x = self.augment(x, self.augment_rng)
        return batch_losses(self.loss_fn, self.model(x).unsqueeze(0), self.data.y_train[rows])

    def backward(self, losses: torch.Tensor, rows: list[int]) -> None:
        self.opt.zero_grad(set_to_none=True)
        if rows:
            losses[0].backward()

    def grad_norms(self) -> list[list[float]]:
        return [_grad_norms(self.layers)]

    def update(self, lrs: list[float]) -> None:
        for group in self.opt.param_groups:
            group["lr"] = lrs[0] * group["lr_scale"] if "lr_scale" in group else lrs[0]  # muP's per-layer LR
        clip_gradients(self.spec, self.params)
        self.opt.step()

    def evaluate(self, splits: tuple[str, ...], rows: list[int] | None = None) -> list[dict[str, float]]:
        self.model.eval()  # one row: ``rows`` is [0] or None
        out = evaluate(lambda x: self.model(x).unsqueeze(0), 1, self.data, self.train_probe, self.loss_fn,
                       splits=splits)
        self.model.train()
        return out

    def keep(self, rows: list[int]) -> None:
        pass  # one row: when it leaves, training ends

    def checkpoint(self, k: int) -> None:
        self.best_state = copy.deepcopy(self.model.state_dict())

    def latency(self, k: int, restore: bool) -> float:
        if restore and self.best_state is not None:
            self.model.load_state_dict(self.best_state)
        return forward_latency(self.model, self.data.x_val[:LATENCY_BATCH])

    def noise_scale(self, step: int) -> list[dict[str, float]]:
        if not self.spec.measure_noise_scale:
            return [{}]
        return [gradient_noise_scale(self.model, self.loss_fn, self.data.x_train, self.data.y_train,
                                     self.spec.batch_size, NOISE_BATCHES, self.noise_rng)]


def gradient_noise_scale(model: torch.nn.Module, loss_fn: LossFn, x: torch.Tensor, y: torch.Tensor,
                         batch_size: int, n_batches: int, generator: torch.Generator) -> dict[str, float]:
    """One measurement of the gradient noise scale (see the module docstring): ``noise_g2`` (|G|^2),
    ``noise_trace`` (tr Sigma) and ``b_simple``, from ``n_batches`` disjoint batches of ``batch_size``
    drawn from (x, y) with ``generator``. Fewer batches are used when the data hold fewer; {} when fewer
    than 2 fit. The model's buffers (BatchNorm statistics) and the global RNG are left as they were."""
    n = len(y)
    k = min(n_batches, n // batch_size)
    if k < 2:
        return {}
    b_small, b_big = batch_size, k * batch_size
    idx = torch.randperm(n, generator=generator)[:b_big].to(x.device)
    params = [p for p in model.parameters() if p.requires_grad]
    buffers = {name: b.detach().clone() for name, b in model.named_buffers()}
    devices = [x.device] if x.device.type == "cuda" else []
    sq_small, total = 0.0, None
    with torch.random.fork_rng(devices=devices):
        for j in range(k):
            batch = idx[j * b_small:(j + 1) * b_small]
            grads = torch.autograd.grad(loss_fn(model(x[batch]), y[batch], "mean"), params)
            flat = torch.cat([g.reshape(-1) for g in grads]).double()
            sq_small += float(flat.pow(2).sum())
            total = flat if total is None else total + flat
    with torch.no_grad():
        for name, b in model.named_buffers():
            b.copy_(buffers[name])
    g_small = sq_small / k  # E = |G|^2 + c_small tr(Sigma)
    g_big = float((total / k).pow(2).sum())  # the mean of k disjoint batches is one batch of k * b_small
    c_small = (n - b_small) / (b_small * (n - 1))  # sampling without replacement from n examples
    c_big = (n - b_big) / (b_big * (n - 1))
    trace = (g_small - g_big) / (c_small - c_big)
    g2 = g_small - c_small * trace
    return {"noise_g2": g2, "noise_trace": trace, "b_simple": trace / g2 if g2 > 0 else float("nan")}


@torch.no_grad()
def _grad_norms(layers: list[list[torch.nn.Parameter]]) -> list[float]:
    """The L2 norm of each layer's gradient (all its weight tensors together); 0 for a layer without one."""
    out = []
    for params in layers:
        sq = [p.grad.detach().pow(2).sum() for p in params if p.grad is not None]
        out.append(float(torch.stack(sq).sum().sqrt()) if sq else 0.0)
    return out
