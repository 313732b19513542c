"""The forward pass of K trials' models at once: the ops of ``plan`` run on stacked parameters, with each
trial's state outside its parameters (BatchNorm running statistics, dropout rate, random generator)."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from claimbench.train.packed.plan import RRELU_LOWER, RRELU_UPPER, load_row, plan, to_row
from claimbench.workloads.builtin.layers import as_sequence, dropout_noise


def _batch_norm(h: torch.Tensor, gamma: torch.Tensor, beta: torch.Tensor, mean: torch.Tensor, var: torch.Tensor,
                training: bool) -> torch.Tensor:
    """BatchNorm per trial: (K, B, C) seen as B examples of K*C channels, so torch's own kernel
    normalizes and tracks each trial's channels apart (momentum 0.1, eps 1e-5 as nn.BatchNorm1d)."""
    k, b, c = h.shape
    flat = h.transpose(0, 1).reshape(b, k * c)
    out = F.batch_norm(flat, mean.view(-1), var.view(-1), gamma.reshape(-1), beta.reshape(-1), training, 0.1, 1e-5)
    return out.view(b, k, c).transpose(0, 1)


class StackedModel:
    """K trials' models (rows 0..K-1) as one program of ops over their stacked parameters. ``template``:
    one trial's model (one with the dropout layers, when any trial has them), whose layers ``plan`` reads."""

    def __init__(self, template: nn.Module, input_shape: tuple[int, ...], dropout_p: list[float],
                 rngs: list[torch.Generator], device: torch.device):
        self.device, self.input_shape, self.rngs = device, tuple(input_shape), rngs
        self.ops, bn_widths, self.weight_places = plan(template)
        self.op_slices: list[slice] = []  # each op's parameters in the engine's params()
        n = 0
        for op in self.ops:
            self.op_slices.append(slice(n, n + len(op.params)))
            n += len(op.params)
        self.places = [place for op in self.ops for place in op.params]
        k = len(rngs)
        self.bn_mean = [torch.zeros(k, c, device=device) for c in bn_widths]
        self.bn_var = [torch.ones(k, c, device=device) for c in bn_widths]
        self.dropout_p = list(dropout_p)
        self.dropout_p_max = max(self.dropout_p)
        self.last_recurrent = max([op.index for op in self.ops if op.kind in ("rnn", "lstm")], default=-1)

    @property
    def k(self) -> int:
        return len(self.rngs)

    def to_row(self, model: nn.Module) -> torch.Tensor:
        """One trial's flat parameters (P,) in this program's layout (``plan.to_row``)."""
        return to_row(model, self.ops)

    def load_row(self, row: torch.Tensor, model: nn.Module) -> None:
        """Copy a flat row back into ``model`` (the inverse of ``to_row``)."""
        load_row(row, model, self.ops)

    def keep(self, index: torch.Tensor, rows: list[int]) -> None:
        """Keep rows ``rows`` (``index``: the same as a tensor) of every trial's state."""
        with torch.no_grad():
            self.bn_mean = [m[index].contiguous() for m in self.bn_mean]
            self.bn_var = [v[index].contiguous() for v in self.bn_var]
        self.rngs = [self.rngs[j] for j in rows]
        self.dropout_p = [self.dropout_p[j] for j in rows]

    def forward(self, params: list[torch.Tensor], x: torch.Tensor, training: bool,
                rows: torch.Tensor | None = None) -> torch.Tensor:
        """Outputs (K, N, n_out) of every trial's model on x: (K, N, D) per trial, or (N, D) shared by all.
        In evaluation, ``rows`` (an index tensor) runs only those trials, whose parameters ``params`` are.

        Layouts: "rows" (K, N, ...) per trial; "grouped" (N, K*C, H, W) for convolutions; "sequence"
        (K, N, T, H), a recurrent layer's outputs (which nn.RNN and nn.LSTM lay out time-major in memory);
        "shared" the inputs, the same for every trial, until a layer makes them per trial."""
        assert rows is None or not training, "a subset of rows runs only in evaluation"
        k = self.k if rows is None else len(rows)
        bn_mean = self.bn_mean if rows is None else [m[rows] for m in self.bn_mean]
        bn_var = self.bn_var if rows is None else [v[rows] for v in self.bn_var]
        h, layout = x, "rows" if x.dim() == 3 else "shared"
        for op, where in zip(self.ops, self.op_slices):
            kind, p = op.kind, params[where]
            if kind == "linear":
                if layout == "shared":
                    h, layout = h.unsqueeze(0).expand(k, *h.shape), "rows"
                if op.scale != 1.0:  # muP's readout: its input x 1 / width_mult (models.Readout)
                    h = h * op.scale
                h = torch.baddbmm(p[1].unsqueeze(1), h, p[0])  # weights held (in, out): see plan.Op
            elif kind == "image":
                c, height, width = self.input_shape
                if layout == "shared":  # the first convolution sees the same images for all K
                    h = h.reshape(-1, c, height, width)
                else:
                    h, layout = h.reshape(k, -1, c, height, width).transpose(0, 1).reshape(-1, k * c, height, width), \
                        "grouped"
                h = h.contiguous(memory_format=torch.channels_last)  # channels-last: see the package docstring
            elif kind == "conv":
                w, b = p[0].reshape(-1, *p[0].shape[2:]), p[1].reshape(-1)  # (K*C_out, C_in, 3, 3), (K*C_out,)
                w = w.contiguous(memory_format=torch.channels_last)
                h = F.conv2d(h, w, b, padding=1, groups=1 if layout == "shared" else k)
                layout = "grouped"
            elif kind == "bn":
                h = _batch_norm(h, p[0], p[1], bn_mean[op.index], bn_var[op.index], training)
            elif kind == "bn2d":  # (N, K*C, H, W): each trial's channels are its own
                h = F.batch_norm(h, bn_mean[op.index].view(-1), bn_var[op.index].view(-1), p[0].reshape(-1),
                                 p[1].reshape(-1), training, 0.1, 1e-5)
            elif kind == "act":
                h = op.module(h)
            elif kind == "prelu":
                h = torch.where(h > 0, h, h * self._per_trial(p[0], h, layout, k))
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

    @staticmethod
    def _per_trial(values: torch.Tensor, h: torch.Tensor, layout: str, k: int) -> torch.Tensor:
        """(K, 1) per-trial values of k trials, broadcastable against h in its layout."""
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
        """Each trial's mask from its own generator, drawn by ``layers.dropout_noise`` in the memory order of
        the trial's own activations, as its Dropout / AlphaDropout module draws it alone."""
        one, masks, shifts = self._one(h, layout), [], []
        for rng, p in zip(self.rngs, self.dropout_p):
            if p <= 0:
                masks.append(torch.ones(one, device=self.device))
                shifts.append(torch.zeros(one, device=self.device))
                continue
            scale, shift = dropout_noise(torch.empty(one, device=self.device), p, alpha, rng)
            masks.append(scale)
            shifts.append(shift)
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
