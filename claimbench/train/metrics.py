"""Losses and evaluation metrics, written once for one model or K stacked models.

Losses (``spec.loss``; auto = ce for classification and lm, mse for regression): ``ce`` cross-entropy
(for lm, of the next byte at each position, averaged over the example's positions: ``next_token_ce``);
``mse`` for classification is the classic baseline: the squared error between the raw outputs (no
softmax) and the one-hot target, averaged over classes and examples; for regression ``mse``, ``mae``
and ``huber`` (delta 1.0) on standardized targets.

Every engine hands its outputs here as ``(K, N, n_outputs)`` (lm: ``(K, N, seq_len, 256)``): K models
(1 for the single-trial engine), N examples. With K = 1 the reductions are torch's own ``mean``/``sum`` over the N examples
(the arithmetic ``train_trial`` always used); with K > 1 each model's per-example losses are
reduced along its own row, so nothing mixes across models.

Evaluation (``evaluate``) per split asked for (train = a fixed probe of training examples, with the
labels or targets trained on; val; test: the policy asks for test only where a reader needs it,
``policy.state``): ``{split}_loss`` (the training loss function), and ``{split}_acc``
for classification, ``{split}_mse`` and ``{split}_r2`` for regression (R^2 = 1 - SSE / SS around the
split's own mean); for lm ``{split}_acc`` (next-byte accuracy over every position) and ``{split}_bpb``
(bits per byte: the loss / ln 2). ``forward_latency``: the median of 20 timed eval-mode forwards after 3 warm-ups.
"""

from __future__ import annotations

import math
import statistics
import time
from typing import Callable

import torch
import torch.nn.functional as F

from claimbench.workloads.builtin import TrialSpec
from claimbench.workloads.data import Dataset

EVAL_CHUNK = 8192  # examples per evaluation forward
LM_EVAL_FLOATS = 2**23  # task lm: output floats (K x examples x positions x vocabulary) per evaluation forward
SPLITS = ("train", "val", "test")
LATENCY_BATCH, LATENCY_WARMUP, LATENCY_REPEATS = 256, 3, 20

#: ``loss(outputs (N, n_outputs), targets (N,), reduction)``; reduction "mean", "sum" or "none" (per example).
LossFn = Callable[[torch.Tensor, torch.Tensor, str], torch.Tensor]


def make_loss(spec: TrialSpec, data: Dataset) -> LossFn:
    """The spec's loss for ``data``'s task (see the module docstring); ValueError when it does not apply."""
    name = spec.loss if spec.loss != "auto" else ("mse" if data.task == "regression" else "ce")
    if data.task == "lm":
        if name == "ce":
            return next_token_ce
    elif data.task == "classification":
        if name == "ce":
            return lambda out, y, red: F.cross_entropy(out, y, reduction=red)
        if name == "mse":
            n = data.n_outputs

            def mse_onehot(out, y, red):
                err = F.mse_loss(out, F.one_hot(y, n).to(out.dtype), reduction=red)
                if red == "none":
                    return err.mean(1)
                return err if red == "mean" else err / n  # mean over classes either way
            return mse_onehot
    else:
        regression = {"mse": F.mse_loss, "mae": F.l1_loss,
                      "huber": lambda a, b, reduction: F.huber_loss(a, b, reduction=reduction, delta=1.0)}
        if name in regression:
            fn = regression[name]
            return lambda out, y, red: fn(out.squeeze(1), y, reduction=red)
    raise ValueError(f"loss {name!r} does not apply to {data.name} ({data.task})")


def next_token_ce(out: torch.Tensor, y: torch.Tensor, reduction: str) -> torch.Tensor:
    """Task lm: cross-entropy of the next byte, averaged over an example's positions (out (N, T, V), y (N, T)):
    "none" gives each example's mean over its T positions; "mean" the mean over every position; "sum" the sum
    of the examples' means."""
    n, t, v = out.shape
    if reduction == "none":
        return F.cross_entropy(out.reshape(n * t, v), y.reshape(n * t), reduction="none").view(n, t).mean(1)
    total = F.cross_entropy(out.reshape(n * t, v), y.reshape(n * t), reduction=reduction)
    return total if reduction == "mean" else total / t


def _rows(loss_fn: LossFn, out: torch.Tensor, y: torch.Tensor, reduction: str) -> torch.Tensor:
    """Per model (K,): ``reduction`` ("mean" or "sum") of the loss over its N examples. out: (K, N, ...,
    n_out); y: (K, N, ...) or, shared by the K models, (N, ...)."""
    k, n = out.shape[0], out.shape[1]
    if k == 1:
        return loss_fn(out[0], y.reshape(n, *out.shape[2:-1]), reduction).unsqueeze(0)
    y = y if y.dim() == out.dim() - 1 else y.unsqueeze(0).expand(k, *y.shape)
    per_example = loss_fn(out.reshape(k * n, *out.shape[2:]), y.reshape(k * n, *y.shape[2:]), "none").view(k, n)
    return per_example.mean(1) if reduction == "mean" else per_example.sum(1)


def batch_losses(loss_fn: LossFn, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """The training loss of each of K models on its minibatch: (K,), differentiable. out: (K, B, n_out)."""
    return _rows(loss_fn, out, y, "mean")


@torch.no_grad()
def evaluate(forward: Callable[[torch.Tensor], torch.Tensor], k: int, data: Dataset, train_probe: torch.Tensor,
             loss_fn: LossFn, chunk: int = EVAL_CHUNK, splits: tuple[str, ...] = SPLITS) -> list[dict[str, float]]:
    """Metrics of K models on ``splits`` (of ``SPLITS``), one dict per model (see the module docstring).

    ``forward(x)`` returns the K models' eval-mode outputs ``(K, N, n_out)`` on shared inputs x: one
    batched pass per chunk of ``chunk`` examples for all K."""
    out: list[dict[str, float]] = [{} for _ in range(k)]
    classification = data.task in ("classification", "lm")
    lm = data.task == "lm"
    if lm:  # K x chunk x seq_len x 256 output floats: keep them to LM_EVAL_FLOATS
        chunk = max(1, min(chunk, LM_EVAL_FLOATS // (k * data.n_features * data.n_outputs)))
    positions = data.n_features if lm else 1  # predictions per example
    sources = {"train": lambda: (data.x_train[train_probe], data.y_train[train_probe]),
               "val": lambda: (data.x_val, data.y_val), "test": lambda: (data.x_test, data.y_test)}
    for split in splits:
        x, y = sources[split]()
        loss_sum, correct, sse = [0.0] * k, [0] * k, [0.0] * k
        for i in range(0, len(y), chunk):
            outputs, targets = forward(x[i:i + chunk]), y[i:i + chunk]
            loss_sum = [a + b for a, b in zip(loss_sum, _rows(loss_fn, outputs, targets, "sum").tolist())]
            if classification:
                hits = (outputs.argmax(-1) == targets.unsqueeze(0)).flatten(1).sum(1).tolist()
                correct = [a + b for a, b in zip(correct, hits)]
            else:
                pred = outputs.squeeze(2)
                err = [F.mse_loss(pred[0], targets, reduction="sum").item()] if k == 1 else \
                    F.mse_loss(pred, targets.unsqueeze(0).expand_as(pred), reduction="none").sum(1).tolist()
                sse = [a + b for a, b in zip(sse, err)]
        sst = 0.0 if classification else float(((y - y.mean()) ** 2).sum())
        for j in range(k):
            out[j][f"{split}_loss"] = loss_sum[j] / len(y)
            if classification:
                out[j][f"{split}_acc"] = correct[j] / (len(y) * positions)
                if lm:
                    out[j][f"{split}_bpb"] = out[j][f"{split}_loss"] / math.log(2)
            else:
                out[j][f"{split}_mse"] = sse[j] / len(y)
                out[j][f"{split}_r2"] = 1.0 - sse[j] / sst if sst > 0 else float("nan")
    return out


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
