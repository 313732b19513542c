"""The team's own training loop: a DataLoader with augmentation, SGD, evaluation at claimbench's points.

claimbench passes ``params`` (this workload's parameters) and ``ctx``: ``ctx.spec`` carries the shared
settings this loop reads (lr, momentum, weight_decay, batch_size, batchnorm, width, seed, data_seed,
steps), ``ctx.eval_steps`` says when to report, and ``ctx.should_stop()`` when to return. claimbench
derives divergence, steps-to-target, the best step and early stopping from the reports.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from tiny_resnet.data import ShiftedDigits, load_digits_splits
from tiny_resnet.model import TinyResNet


@torch.no_grad()
def evaluate(model: torch.nn.Module, splits: dict) -> dict[str, float]:
    model.eval()
    out = {}
    for split, (x, y) in splits.items():
        logits = model(x)
        out[f"{split}_loss"] = F.cross_entropy(logits, y).item()
        out[f"{split}_acc"] = (logits.argmax(1) == y).float().mean().item()
    model.train()
    return out


def train(params: dict, ctx) -> None:
    spec, device = ctx.spec, ctx.device
    data = load_digits_splits(params["size"], spec.n_samples, spec.data_seed)
    x, y = data["train"]
    n_val = len(data["val"][1])  # train metrics on a probe of as many training examples as validation has
    probe = {split: (a.to(device), b.to(device))
             for split, (a, b) in {"train": (x[:n_val], y[:n_val]), "val": data["val"], "test": data["test"]}.items()}
    loader = torch.utils.data.DataLoader(ShiftedDigits(x, y, augment=params["augment"], seed=spec.seed),
                                         batch_size=spec.batch_size, shuffle=True, drop_last=True,
                                         generator=torch.Generator().manual_seed(spec.seed))
    torch.manual_seed(spec.seed)
    model = TinyResNet(1, 10, spec.width, params["blocks"], spec.batchnorm).to(device)
    opt = torch.optim.SGD(model.parameters(), lr=spec.lr, momentum=spec.momentum, weight_decay=spec.weight_decay)
    evals = set(ctx.eval_steps)
    ctx.report(step=0, **evaluate(model, probe))
    step = 0
    while not ctx.should_stop():
        for xb, yb in loader:
            loss = F.cross_entropy(model(xb.to(device)), yb.to(device))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            step += 1
            if step in evals:
                ctx.report(step=step, examples=step * spec.batch_size, **evaluate(model, probe))
                if ctx.should_stop():
                    return
