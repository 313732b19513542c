"""A training function with its own optimizer and schedule, reporting its own LR, epoch and a metric.

The example of docs/extending.md ("A training function's records"): ``tests/workloads/test_function_records.py``
installs this file as the package ``recipe_loop`` (a dist-info folder on the path) and runs a suite of it.
The loop reads ``lr`` (its peak LR), ``batch_size`` and ``steps`` from ``ctx.spec``; its AdamW, its linear
warmup and cosine decay, and its clipping are its own, so claimbench's optimizer, schedule and clip do not
apply to it, and its records say so.
"""

from __future__ import annotations

import math

import torch

from claimbench.workloads.spec import Param, Workload

N_TRAIN = 96  # training examples: an epoch is N_TRAIN / batch_size steps
WARMUP = 0.25  # the share of the budget spent warming up


def lr_at(step: int, peak: float, total: int) -> float:
    """The loop's LR for the update after ``step`` updates: linear warmup to ``peak``, then cosine to 0."""
    warm = max(1, round(WARMUP * total))
    if step < warm:
        return peak * (step + 1) / warm
    return 0.5 * peak * (1 + math.cos(math.pi * (step - warm) / max(1, total - warm)))


def train(params, ctx):
    spec = ctx.spec
    g = torch.Generator().manual_seed(spec.data_seed)
    x = torch.randn(N_TRAIN + 64, 4, generator=g)
    y = (x[:, 0] - params["tilt"] * x[:, 1] > 0).long()
    xt, yt, xv, yv = x[:N_TRAIN], y[:N_TRAIN], x[N_TRAIN:], y[N_TRAIN:]
    torch.manual_seed(spec.seed)
    model = torch.nn.Sequential(torch.nn.Linear(4, 16), torch.nn.ReLU(), torch.nn.Linear(16, 2))
    opt = torch.optim.AdamW(model.parameters(), lr=lr_at(0, spec.lr, ctx.total_steps), weight_decay=0.01)
    loss_fn = torch.nn.CrossEntropyLoss()

    def measured() -> dict[str, float]:
        with torch.no_grad():
            out_t, out_v = model(xt), model(xv)
            return {"train_loss": loss_fn(out_t, yt).item(), "val_loss": loss_fn(out_v, yv).item(),
                    "val_acc": (out_v.argmax(1) == yv).float().mean().item()}

    ctx.report(step=0, lr=opt.param_groups[0]["lr"], epoch=0.0, **measured())
    order, seen = torch.randperm(N_TRAIN, generator=g), 0
    for step in range(1, ctx.total_steps + 1):
        batch = order[(seen + torch.arange(spec.batch_size)) % N_TRAIN]  # the data cycle: epochs = seen / N_TRAIN
        opt.zero_grad()
        loss_fn(model(xt[batch]), yt[batch]).backward()
        grad_norm = float(torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0))
        lr = opt.param_groups[0]["lr"]  # the LR of the step just taken
        opt.step()
        seen += spec.batch_size
        for group in opt.param_groups:
            group["lr"] = lr_at(step, spec.lr, ctx.total_steps)
        if step in ctx.eval_steps:
            ctx.report(step=step, examples=seen, lr=lr, epoch=seen / N_TRAIN, grad_norm=grad_norm, **measured())
            if ctx.should_stop():
                return


WORKLOAD = Workload(name="recipe.loop", task="classification", train=train, uses=("lr", "batch_size"),
                    params=(Param("tilt", float, 0.5, low=0.0, high=2.0, help="the class boundary's slope"),))
