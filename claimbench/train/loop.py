"""THE training loop. One spec in, one TrialRecord out; never raises.

Read top to bottom: seed, build, then per step — set the LR, take a batch,
forward, check for divergence, backward, (measure gradients), clip, step — and
at each evaluation point measure train/val/test, update the schedule, check the
target and early stopping. Divergence (a non-finite loss, or a smoothed
training loss above ``divergence_factor`` x the initial training loss) ends the
trial as a result with the step it happened at. Any exception becomes a
``failed`` record whose error is one line.

Losses (``spec.loss``; auto = ce for classification, mse for regression):
``ce`` cross-entropy; ``mse`` for classification is the classic baseline: the
squared error between the raw outputs (no softmax) and the one-hot target,
averaged over classes and examples; for regression ``mse``, ``mae`` and
``huber`` (delta 1.0) on standardized targets.

Measurements: ``grad_norms_init`` — the L2 norm of each weight layer's gradient
(hidden layers in order, then the head; see models.weight_layers) on the first
batch, before the first update and before clipping; ``grad_ratio`` — first /
last of those norms, in ``metrics["grad_ratio_init"]`` at init and in each
curve point from the step just taken. ``time_per_step_s`` counts training steps
only (not evaluation or these measurements). ``measure_latency``: the median of
20 timed eval-mode forwards of 256 validation inputs, after 3 warm-up forwards.

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

``kind = "range_test"`` (Smith 2017; fastai's rule): before training, raise
the LR exponentially from ``range_lr_min`` to ``range_lr_max`` over
``range_steps`` steps, one minibatch each, smoothing the loss with a
bias-corrected EMA (beta 0.98); stop early when the smoothed loss exceeds 4x its
minimum or the loss is non-finite. The suggested LR is **the LR at the minimum
smoothed loss, divided by 10**. Then the model is re-initialised from the same
seed and trained for the spec's budget with that LR (``spec.lr`` is ignored),
so the record's metrics are comparable with grid-searched trials.
"""

from __future__ import annotations

import copy
import math
import socket
import statistics
import time
import traceback
from typing import Callable

import torch
import torch.nn.functional as F

from claimbench.train.optim import Schedule, clip_gradients, make_optimizer
from claimbench.trial import TrialRecord, TrialSpec, TrialStatus
from claimbench.workloads import DataCache, Dataset, build_model, weight_layers

EMA = 0.1  # weight of the newest minibatch loss in the smoothed training loss
EVAL_CHUNK = 8192
RANGE_BETA = 0.98  # the range test's loss smoothing
RANGE_STOP = 4.0  # the range test stops when the smoothed loss exceeds this x its minimum
RANGE_DIVISOR = 10.0  # suggested LR = LR at the minimum smoothed loss / this
LATENCY_BATCH, LATENCY_WARMUP, LATENCY_REPEATS = 256, 3, 20
NOISE_BATCHES = 4  # batches of batch_size per noise-scale measurement: small batch B, big batch 4B
NOISE_SEED_OFFSET = 7919  # the noise-scale batches' RNG: seed + this, apart from the data order's

LossFn = Callable[[torch.Tensor, torch.Tensor, str], torch.Tensor]


def train_trial(spec: TrialSpec, cache: DataCache | None = None, device: str | torch.device = "cpu",
                inject_error: bool = False) -> TrialRecord:
    """Train one trial; every outcome, including an error, is a record.

    ``inject_error`` makes training raise after its first step (fault injection, see faults.py).
    """
    start = time.perf_counter()
    try:
        data = (cache or DataCache()).for_spec(spec, device)
        if spec.kind == "range_test":
            record = _range_test_then_train(spec, data, torch.device(device), inject_error)
        else:
            record = _train(spec, data, torch.device(device), inject_error)
    except Exception as e:  # a failure is a result, with its reason, on one line
        tb = traceback.extract_tb(e.__traceback__)[-1]
        text = " ".join(f"{type(e).__name__}: {e}".split())
        record = TrialRecord.failed(spec, f"{text} (at {tb.filename.rsplit('/', 1)[-1]}:{tb.lineno})")
    record.wall_s = time.perf_counter() - start
    record.host = socket.gethostname()
    record.device = str(device)
    return record


def make_loss(spec: TrialSpec, data: Dataset) -> LossFn:
    """``loss(outputs, targets, reduction)``: reduction "mean" (per example) or "sum" (over examples)."""
    name = spec.loss if spec.loss != "auto" else ("ce" if data.task == "classification" else "mse")
    if data.task == "classification":
        if name == "ce":
            return lambda out, y, red: F.cross_entropy(out, y, reduction=red)
        if name == "mse":
            n = data.n_outputs

            def mse_onehot(out, y, red):
                err = F.mse_loss(out, F.one_hot(y, n).to(out.dtype), reduction=red)
                return err if red == "mean" else err / n  # mean over classes either way
            return mse_onehot
    else:
        regression = {"mse": F.mse_loss, "mae": F.l1_loss,
                      "huber": lambda a, b, reduction: F.huber_loss(a, b, reduction=reduction, delta=1.0)}
        if name in regression:
            fn = regression[name]
            return lambda out, y, red: fn(out.squeeze(1), y, reduction=red)
    raise ValueError(f"loss {name!r} does not apply to {data.name} ({data.task})")


def _train(spec: TrialSpec, data: Dataset, device: torch.device, inject_error: bool = False,
           lr: float | None = None) -> TrialRecord:
    """Train ``spec``'s budget; ``lr`` (when given) replaces ``spec.lr`` as the base LR."""
    base_lr = spec.lr if lr is None else lr
    n_train = len(data.y_train)
    if spec.batch_size > n_train:
        raise ValueError(f"batch_size {spec.batch_size} exceeds the {n_train} training examples of {spec.dataset}")
    loss_fn = make_loss(spec, data)
    score = "val_acc" if data.task == "classification" else "val_r2"  # higher is better: best, target, patience
    torch.manual_seed(spec.seed)  # init and dropout masks
    order_rng = torch.Generator().manual_seed(spec.seed)  # data order
    model = build_model(spec, data.input_shape, data.n_outputs).to(device)
    params = [p for p in model.parameters() if p.requires_grad]
    layers = weight_layers(model)
    opt = make_optimizer(spec, params)
    steps_per_epoch = n_train // spec.batch_size  # drop the last partial batch: every step sees batch_size
    total = spec.steps or spec.epochs * steps_per_epoch
    schedule = Schedule(spec, total)
    eval_at = sorted({round(total * i / spec.evals) for i in range(1, spec.evals + 1)})
    train_probe = torch.arange(min(n_train, len(data.y_val)), device=device)  # fixed subset for train metrics
    noise_rng = torch.Generator().manual_seed(spec.seed + NOISE_SEED_OFFSET)  # apart from the data order
    noise: list[tuple[int, dict[str, float]]] = []  # (step, measurement) pairs

    def measure_noise(step: int) -> dict[str, float]:
        if not spec.measure_noise_scale:
            return {}
        found = gradient_noise_scale(model, loss_fn, data.x_train, data.y_train, spec.batch_size,
                                     NOISE_BATCHES, noise_rng)
        noise.append((step, found))
        return found

    curve: list[dict] = []
    first = _evaluate(model, data, train_probe, loss_fn)
    model.train()
    curve.append({"step": 0, "examples": 0, "epoch": 0.0, "lr": base_lr * schedule.factor(0),
                  "train_loss_ema": float("nan"), **first, **measure_noise(0), "elapsed_s": 0.0})
    # The divergence reference is the training loss (with the labels or targets trained on, outliers included).
    initial_loss = first["train_loss"]
    smoothed = None
    best = (first[score], 0, first, None)  # (score, step, metrics, state)
    bad_evals = 0
    status, diverged_step, reason = TrialStatus.COMPLETED, None, None
    steps_to_target = None
    grad_norms_init: list[float] = []
    grad_ratio = float("nan")
    train_time = 0.0
    step = 0
    perm = None
    model.train()
    while step < total:
        t0 = time.perf_counter()
        # --- one step
        pos = step % steps_per_epoch
        if pos == 0:
            perm = torch.randperm(n_train, generator=order_rng).to(device)
        idx = perm[pos * spec.batch_size:(pos + 1) * spec.batch_size]
        lr = base_lr * schedule.factor(step)
        for group in opt.param_groups:
            group["lr"] = lr
        loss = loss_fn(model(data.x_train[idx]), data.y_train[idx], "mean")
        value = loss.item()
        smoothed = value if smoothed is None else (1 - EMA) * smoothed + EMA * value
        if not math.isfinite(value):
            status, diverged_step, reason = TrialStatus.DIVERGED, step, "non-finite training loss"
            break
        if smoothed > spec.divergence_factor * initial_loss:
            status, diverged_step, reason = TrialStatus.DIVERGED, step, (
                f"smoothed training loss {smoothed:.3g} > {spec.divergence_factor:g} x initial {initial_loss:.3g}")
            break
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if step == 0 or step + 1 in eval_at:  # raw gradients, before clipping; not timed as training
            t_measure = time.perf_counter()
            norms = _grad_norms(layers)
            if step == 0:
                grad_norms_init = norms
            grad_ratio = _ratio(norms)
            t0 += time.perf_counter() - t_measure
        clip_gradients(spec, params)
        opt.step()
        step += 1
        train_time += time.perf_counter() - t0
        if inject_error:
            raise RuntimeError("injected fault (CLAIMBENCH_FAULTS raise)")

        # --- evaluation
        if step in eval_at:
            m = _evaluate(model, data, train_probe, loss_fn)
            model.train()  # _evaluate left it in eval mode
            curve.append({"step": step, "examples": step * spec.batch_size, "epoch": step / steps_per_epoch,
                          "lr": lr, "train_loss_ema": smoothed, "grad_ratio": grad_ratio, **m,
                          **measure_noise(step), "elapsed_s": train_time})
            if not math.isfinite(m["val_loss"]):
                status, diverged_step, reason = TrialStatus.DIVERGED, step, "non-finite validation loss"
                break
            schedule.on_eval(m["val_loss"])
            if spec.target and steps_to_target is None and m[score] >= spec.target:
                steps_to_target = step
            if m[score] > best[0]:
                state = copy.deepcopy(model.state_dict()) if spec.patience and spec.restore_best else None
                best, bad_evals = (m[score], step, m, state), 0
            else:
                bad_evals += 1
            if spec.patience and bad_evals >= spec.patience:
                break

    stopped_early = status is TrialStatus.COMPLETED and step < total
    if status is TrialStatus.DIVERGED:
        metrics: dict[str, float] = {}  # a diverged trial has no final metrics: never fill them in
    else:
        if spec.patience and spec.restore_best:
            metrics = dict(best[2])
            if best[3] is not None:
                model.load_state_dict(best[3])
        else:
            metrics = {k: curve[-1][k] for k in first}
        if grad_norms_init:
            metrics["grad_ratio_init"] = _ratio(grad_norms_init)
        if spec.measure_latency:
            metrics["forward_latency_s"] = forward_latency(model, data.x_val[:LATENCY_BATCH])
        metrics.update(noise_scale_summary(noise, steps_to_target))
    return TrialRecord(
        trial_id=spec.trial_id, spec=spec.to_dict(), status=status, metrics=metrics, curve=curve,
        diverged_step=diverged_step, divergence_reason=reason, steps_done=step,
        examples_done=step * spec.batch_size, steps_to_target=steps_to_target,
        examples_to_target=steps_to_target * spec.batch_size if steps_to_target is not None else None,
        best_step=best[1], stopped_early=stopped_early,
        time_per_step_s=train_time / step if step else None,
        examples_per_s=step * spec.batch_size / train_time if train_time > 0 else None,
        grad_norms_init=grad_norms_init,
    )


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


def noise_scale_summary(noise: list[tuple[int, dict[str, float]]], steps_to_target: int | None) -> dict[str, float]:
    """``b_simple`` (mean tr Sigma / mean |G|^2 over the measurements after step 0) and ``b_simple_at_target``
    (the same over steps in [steps_to_target / 2, steps_to_target]); a key is absent when it has no
    measurement or its mean |G|^2 is not positive."""
    def ratio(points: list[dict[str, float]]) -> float | None:
        points = [p for p in points if p]
        if not points:
            return None
        g2 = sum(p["noise_g2"] for p in points) / len(points)
        trace = sum(p["noise_trace"] for p in points) / len(points)
        return trace / g2 if g2 > 0 and math.isfinite(trace / g2) else None

    out = {}
    overall = ratio([m for step, m in noise if step > 0])
    if overall is not None:
        out["b_simple"] = overall
    if steps_to_target is not None:
        at = ratio([m for step, m in noise if steps_to_target / 2 <= step <= steps_to_target])
        if at is not None:
            out["b_simple_at_target"] = at
    return out


@torch.no_grad()
def _grad_norms(layers: list[list[torch.nn.Parameter]]) -> list[float]:
    """The L2 norm of each layer's gradient (all its weight tensors together); 0 for a layer without one."""
    out = []
    for params in layers:
        sq = [p.grad.detach().pow(2).sum() for p in params if p.grad is not None]
        out.append(float(torch.stack(sq).sum().sqrt()) if sq else 0.0)
    return out


def _ratio(norms: list[float]) -> float:
    """First layer's gradient norm / the head's; NaN when the head's is 0 (or there are no layers)."""
    return norms[0] / norms[-1] if norms and norms[-1] > 0 else float("nan")


@torch.no_grad()
def forward_latency(model: torch.nn.Module, x: torch.Tensor) -> float:
    """Median seconds of one eval-mode forward of ``x`` (after warm-up; CUDA synchronized)."""
    model.eval()
    sync = torch.cuda.synchronize if x.is_cuda else (lambda: None)
    for _ in range(LATENCY_WARMUP):
        model(x)
    sync()
    times = []
    for _ in range(LATENCY_REPEATS):
        t = time.perf_counter()
        model(x)
        sync()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


@torch.no_grad()
def _evaluate(model: torch.nn.Module, data: Dataset, train_probe: torch.Tensor, loss_fn: LossFn) -> dict[str, float]:
    """Per split: ``loss`` (the training loss function); ``acc`` (classification) or ``mse`` and ``r2`` (regression;
    R^2 = 1 - SSE / SS around the split's own mean)."""
    model.eval()
    out = {}
    classification = data.task == "classification"
    for split, x, y in (("train", data.x_train[train_probe], data.y_train[train_probe]),
                        ("val", data.x_val, data.y_val), ("test", data.x_test, data.y_test)):
        loss_sum, correct, sse = 0.0, 0, 0.0
        for i in range(0, len(y), EVAL_CHUNK):
            outputs, targets = model(x[i:i + EVAL_CHUNK]), y[i:i + EVAL_CHUNK]
            loss_sum += loss_fn(outputs, targets, "sum").item()
            if classification:
                correct += (outputs.argmax(1) == targets).sum().item()
            else:
                sse += F.mse_loss(outputs.squeeze(1), targets, reduction="sum").item()
        out[f"{split}_loss"] = loss_sum / len(y)
        if classification:
            out[f"{split}_acc"] = correct / len(y)
        else:
            sst = float(((y - y.mean()) ** 2).sum())
            out[f"{split}_mse"] = sse / len(y)
            out[f"{split}_r2"] = 1.0 - sse / sst if sst > 0 else float("nan")
    return out


def range_test(spec: TrialSpec, data: Dataset, device: torch.device) -> dict:
    """The LR range test (see the module docstring). Returns ``curve`` (list of {lr, loss, smoothed}),
    ``suggested_lr`` (None when no finite loss was seen), ``min_loss_lr`` and ``stop_lr`` (the LR at which
    it stopped: where the smoothed loss passed 4x its minimum or the loss was non-finite; else the last LR)."""
    n_train = len(data.y_train)
    if spec.batch_size > n_train:
        raise ValueError(f"batch_size {spec.batch_size} exceeds the {n_train} training examples of {spec.dataset}")
    loss_fn = make_loss(spec, data)
    torch.manual_seed(spec.seed)
    order_rng = torch.Generator().manual_seed(spec.seed)
    model = build_model(spec, data.input_shape, data.n_outputs).to(device)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = make_optimizer(spec, params)
    steps_per_epoch = n_train // spec.batch_size
    n = spec.range_steps
    growth = (spec.range_lr_max / spec.range_lr_min) ** (1 / max(n - 1, 1))
    curve: list[dict[str, float]] = []
    avg, best, best_lr, stop_lr = 0.0, math.inf, None, None
    perm = None
    model.train()
    for i in range(n):
        pos = i % steps_per_epoch
        if pos == 0:
            perm = torch.randperm(n_train, generator=order_rng).to(device)
        idx = perm[pos * spec.batch_size:(pos + 1) * spec.batch_size]
        lr = spec.range_lr_min * growth ** i
        for group in opt.param_groups:
            group["lr"] = lr
        loss = loss_fn(model(data.x_train[idx]), data.y_train[idx], "mean")
        value = loss.item()
        if not math.isfinite(value):
            stop_lr = lr
            break
        avg = RANGE_BETA * avg + (1 - RANGE_BETA) * value
        smoothed = avg / (1 - RANGE_BETA ** (i + 1))  # bias-corrected
        curve.append({"lr": lr, "loss": value, "smoothed": smoothed})
        if smoothed < best:
            best, best_lr = smoothed, lr
        if i > 0 and smoothed > RANGE_STOP * best:
            stop_lr = lr
            break
        opt.zero_grad(set_to_none=True)
        loss.backward()
        clip_gradients(spec, params)
        opt.step()
    return {"curve": curve, "suggested_lr": best_lr / RANGE_DIVISOR if best_lr is not None else None,
            "min_loss_lr": best_lr, "stop_lr": stop_lr if stop_lr is not None else curve[-1]["lr"] if curve else None}


def _range_test_then_train(spec: TrialSpec, data: Dataset, device: torch.device, inject_error: bool) -> TrialRecord:
    found = range_test(spec, data, device)
    if found["suggested_lr"] is None:
        return TrialRecord(trial_id=spec.trial_id, spec=spec.to_dict(), status=TrialStatus.DIVERGED,
                           diverged_step=0, divergence_reason="range test: no finite loss at any LR",
                           range_curve=found["curve"])
    record = _train(spec, data, device, inject_error, lr=found["suggested_lr"])
    record.range_curve = found["curve"]
    # Measured before the training run, so kept even when that run diverged.
    record.metrics.update(range_suggested_lr=found["suggested_lr"], range_min_loss_lr=found["min_loss_lr"],
                          range_stop_lr=found["stop_lr"])
    return record

