"""THE training loop. One spec in, one TrialRecord out; never raises.

Read top to bottom: seed, build, then per step — set the LR, take a batch,
forward, check for divergence, backward, clip, step — and at each evaluation
point measure train/val/test, update the schedule, check the target and early
stopping. Divergence (a non-finite loss, or a smoothed training loss above
``divergence_factor`` x the initial validation loss) ends the trial as a
result with the step it happened at. Any exception becomes a ``failed`` record.
"""

from __future__ import annotations

import copy
import math
import socket
import time
import traceback

import torch
import torch.nn.functional as F

from claimbench.train.optim import Schedule, clip_gradients, make_optimizer
from claimbench.trial import TrialRecord, TrialSpec, TrialStatus
from claimbench.workloads import DataCache, Dataset, build_model

EMA = 0.1  # weight of the newest minibatch loss in the smoothed training loss
EVAL_CHUNK = 8192


def train_trial(spec: TrialSpec, cache: DataCache | None = None, device: str | torch.device = "cpu",
                inject_error: bool = False) -> TrialRecord:
    """Train one trial; every outcome, including an error, is a record.

    ``inject_error`` makes training raise after its first step (fault injection, see faults.py).
    """
    start = time.perf_counter()
    try:
        data = (cache or DataCache()).get(spec.dataset, spec.n_samples, spec.data_seed, device)
        record = _train(spec, data, torch.device(device), inject_error)
    except Exception as e:  # a failure is a result, with its reason
        tb = traceback.extract_tb(e.__traceback__)[-1]
        record = TrialRecord.failed(spec, f"{type(e).__name__}: {e} (at {tb.filename.rsplit('/', 1)[-1]}:{tb.lineno})")
    record.wall_s = time.perf_counter() - start
    record.host = socket.gethostname()
    record.device = str(device)
    return record


def _train(spec: TrialSpec, data: Dataset, device: torch.device, inject_error: bool = False) -> TrialRecord:
    n_train = len(data.y_train)
    if spec.batch_size > n_train:
        raise ValueError(f"batch_size {spec.batch_size} exceeds the {n_train} training examples of {spec.dataset}")
    torch.manual_seed(spec.seed)  # init and dropout masks
    order_rng = torch.Generator().manual_seed(spec.seed)  # data order
    model = build_model(spec, data.n_features, data.n_classes).to(device)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = make_optimizer(spec, params)
    steps_per_epoch = n_train // spec.batch_size  # drop the last partial batch: every step sees batch_size
    total = spec.steps or spec.epochs * steps_per_epoch
    schedule = Schedule(spec, total)
    eval_at = sorted({round(total * i / spec.evals) for i in range(1, spec.evals + 1)})
    train_probe = torch.arange(min(n_train, len(data.y_val)), device=device)  # fixed subset for train metrics

    curve: list[dict] = []
    first = _evaluate(model, data, train_probe)
    curve.append({"step": 0, "examples": 0, "epoch": 0.0, "lr": spec.lr * schedule.factor(0),
                  "train_loss_ema": float("nan"), **first, "elapsed_s": 0.0})
    initial_loss = first["val_loss"]
    smoothed = None
    best = (first["val_acc"], 0, first, None)  # (val_acc, step, metrics, state)
    bad_evals = 0
    status, diverged_step, reason = TrialStatus.COMPLETED, None, None
    steps_to_target = None
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
        lr = spec.lr * schedule.factor(step)
        for group in opt.param_groups:
            group["lr"] = lr
        loss = F.cross_entropy(model(data.x_train[idx]), data.y_train[idx])
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
        clip_gradients(spec, params)
        opt.step()
        step += 1
        train_time += time.perf_counter() - t0
        if inject_error:
            raise RuntimeError("injected fault (CLAIMBENCH_FAULTS raise)")

        # --- evaluation
        if step in eval_at:
            m = _evaluate(model, data, train_probe)
            model.train()  # _evaluate left it in eval mode
            curve.append({"step": step, "examples": step * spec.batch_size, "epoch": step / steps_per_epoch,
                          "lr": lr, "train_loss_ema": smoothed, **m, "elapsed_s": train_time})
            if not math.isfinite(m["val_loss"]):
                status, diverged_step, reason = TrialStatus.DIVERGED, step, "non-finite validation loss"
                break
            schedule.on_eval(m["val_loss"])
            if spec.target and steps_to_target is None and m["val_acc"] >= spec.target:
                steps_to_target = step
            if m["val_acc"] > best[0]:
                state = copy.deepcopy(model.state_dict()) if spec.patience and spec.restore_best else None
                best, bad_evals = (m["val_acc"], step, m, state), 0
            else:
                bad_evals += 1
            if spec.patience and bad_evals >= spec.patience:
                break

    stopped_early = status is TrialStatus.COMPLETED and step < total
    if status is TrialStatus.DIVERGED:
        metrics: dict[str, float] = {}  # a diverged trial has no final metrics: never fill them in
    elif spec.patience and spec.restore_best:
        metrics = dict(best[2])
        if best[3] is not None:
            model.load_state_dict(best[3])
    else:
        metrics = {k: curve[-1][k] for k in first}
    return TrialRecord(
        trial_id=spec.trial_id, spec=spec.to_dict(), status=status, metrics=metrics, curve=curve,
        diverged_step=diverged_step, divergence_reason=reason, steps_done=step,
        examples_done=step * spec.batch_size, steps_to_target=steps_to_target,
        examples_to_target=steps_to_target * spec.batch_size if steps_to_target is not None else None,
        best_step=best[1], stopped_early=stopped_early,
        time_per_step_s=train_time / step if step else None,
        examples_per_s=step * spec.batch_size / train_time if train_time > 0 else None,
    )


@torch.no_grad()
def _evaluate(model: torch.nn.Module, data: Dataset, train_probe: torch.Tensor) -> dict[str, float]:
    model.eval()
    out = {}
    for split, x, y in (("train", data.x_train[train_probe], data.y_train[train_probe]),
                        ("val", data.x_val, data.y_val), ("test", data.x_test, data.y_test)):
        loss_sum, correct = 0.0, 0
        for i in range(0, len(y), EVAL_CHUNK):
            logits = model(x[i:i + EVAL_CHUNK])
            loss_sum += F.cross_entropy(logits, y[i:i + EVAL_CHUNK], reduction="sum").item()
            correct += (logits.argmax(1) == y[i:i + EVAL_CHUNK]).sum().item()
        out[f"{split}_loss"] = loss_sum / len(y)
        out[f"{split}_acc"] = correct / len(y)
    return out
