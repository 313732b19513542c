"""The torch building blocks of the built-in model families (workloads/builtin/models): activations,
initializations, the layer block (layer, BatchNorm, activation, dropout, in the spec's order), muP's
readout, the recurrent stack, and the views the engines take of a built model.

- A block is layer -> (BatchNorm) -> activation -> (Dropout) with ``dropout_position = "after_act"``,
  or layer -> (Dropout) -> (BatchNorm) -> activation with ``"before_bn"`` (the variance-shift setting of
  Li et al. 2019). ``dropout_kind = "alpha"`` uses AlphaDropout (for SELU). Both are claimbench's own
  modules (``Dropout``, ``AlphaDropout``), whose masks follow one rule (``dropout_noise``) that the packed
  engine follows too. ``prelu`` has one learned
  slope per layer; ``rrelu`` draws random slopes in training and uses their mean in evaluation.
- ``init`` sets each weight's variance from its fans (He, LeCun, Glorot), drawn normal or uniform with
  that variance; biases start at zero.
- ``Readout`` is muP's output layer; muP's LR and weight-decay multipliers ride on the parameters
  (``lr_scale``, ``wd_scale``; ``param_scales``), which both engines read (models/mlp.py).
"""

from __future__ import annotations

import math
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

ACTIVATIONS: dict[str, Callable[[], nn.Module]] = {
    "logistic": nn.Sigmoid,
    "tanh": nn.Tanh,
    "relu": nn.ReLU,
    "leaky_relu": lambda: nn.LeakyReLU(0.01),
    "elu": nn.ELU,
    "selu": nn.SELU,
    "gelu": nn.GELU,
    "rrelu": nn.RReLU,
    "prelu": lambda: nn.PReLU(num_parameters=1),
}

# Variance of the initial weights given (fan_in, fan_out).
INITS: dict[str, Callable[[int, int], float]] = {
    "he": lambda fan_in, fan_out: 2.0 / fan_in,
    "lecun": lambda fan_in, fan_out: 1.0 / fan_in,
    "glorot": lambda fan_in, fan_out: 2.0 / (fan_in + fan_out),
}
INIT_DISTS = ("normal", "uniform")


def init_linear(layer: nn.Linear | nn.Conv2d, init: str, dist: str) -> None:
    """Weights with the variance the scheme prescribes (normal, or uniform with the same variance); zero bias.
    For a convolution, fans count the kernel's receptive field (channels x kernel area)."""
    receptive = int(math.prod(layer.weight.shape[2:]))
    fan_out, fan_in = layer.weight.shape[0] * receptive, layer.weight.shape[1] * receptive
    std = math.sqrt(INITS[init](fan_in, fan_out))
    with torch.no_grad():
        if dist == "normal":
            layer.weight.normal_(0.0, std)
        else:
            bound = math.sqrt(3.0) * std
            layer.weight.uniform_(-bound, bound)
        layer.bias.zero_()


ALPHA = 1.7580993408473766  # AlphaDropout's alpha (SELU's -lambda * alpha), as ATen's


def dropout_noise(out: torch.Tensor, p: float, alpha: bool,
                  generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
    """One dropout draw at rate ``p``, written into ``out`` (whose shape and memory order fix the order of
    the draws): a unit is kept where ``uniform_() < 1 - p``, one float draw per element from ``generator``
    (the global generator when None). Returns (scale, shift): dropout is ``x * scale``, AlphaDropout
    ``x * scale + shift`` (ATen's arithmetic: a = 1 / sqrt((alpha^2 p + 1)(1 - p)), kept units x a, dropped
    units at -alpha a, shifted by alpha a p). Both engines draw their masks here, so a packed trial and the
    same trial trained alone draw the same masks from the same generator state."""
    keep = out.uniform_(generator=generator).lt_(1 - p)
    if not alpha:
        return keep.div_(1 - p), None
    a = 1.0 / math.sqrt((ALPHA * ALPHA * p + 1) * (1 - p))
    shift = keep.add(-1).mul_(ALPHA * a).add_(ALPHA * a * p)
    return keep.mul_(a), shift


class Dropout(nn.Module):
    """Dropout at rate ``p`` in training (identity in evaluation), with ``dropout_noise``'s masks."""

    alpha = False

    def __init__(self, p: float):
        super().__init__()
        if not 0 <= p < 1:
            raise ValueError(f"dropout rate must be in [0, 1), got {p}")
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0:
            return x
        scale, shift = dropout_noise(torch.empty_like(x), self.p, self.alpha)
        return x * scale if shift is None else x * scale + shift

    def extra_repr(self) -> str:
        return f"p={self.p}"


class AlphaDropout(Dropout):
    """AlphaDropout (for SELU: keeps the mean and variance of its input), with ``dropout_noise``'s masks."""

    alpha = True


def dropout(p: float, kind: str) -> list[nn.Module]:
    """The dropout layer of rate ``p`` and ``kind`` (none when p is 0)."""
    if p <= 0:
        return []
    if kind == "standard":
        return [Dropout(p)]
    if kind == "alpha":
        return [AlphaDropout(p)]
    raise ValueError(f"unknown dropout_kind {kind!r}; use standard or alpha")


def block(layer: nn.Module, norm: nn.Module | None, activation: str, p: float, dropout_kind: str,
          dropout_position: str) -> list[nn.Module]:
    """``layer`` with its BatchNorm (or None), activation and dropout, in ``dropout_position``'s order."""
    norm_ = [norm] if norm is not None else []
    drop = dropout(p, dropout_kind)
    if dropout_position == "after_act":
        return [layer, *norm_, ACTIVATIONS[activation](), *drop]
    if dropout_position == "before_bn":
        return [layer, *drop, *norm_, ACTIVATIONS[activation]()]
    raise ValueError(f"unknown dropout_position {dropout_position!r}; use after_act or before_bn")


class Readout(nn.Linear):
    """muP's output layer (``microsoft/mup``'s ``MuReadout``): a Linear whose input is scaled by
    ``multiplier`` (1 / width_mult), so its bias is not."""

    def __init__(self, n_in: int, n_out: int, multiplier: float):
        super().__init__(n_in, n_out)
        self.multiplier = multiplier

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x * self.multiplier, self.weight, self.bias)


def param_scales(model: nn.Module) -> list[tuple[float, float]]:
    """(LR multiplier, weight-decay multiplier) of each parameter, in ``model.parameters()`` order: (1, 1)
    except muP's hidden weights (models/mlp.py)."""
    return [(getattr(p, "lr_scale", 1.0), getattr(p, "wd_scale", 1.0)) for p in model.parameters()]


def as_sequence(x: torch.Tensor, input_shape: tuple[int, ...]) -> torch.Tensor:
    """Flattened examples -> (n, steps, features): (T, F) as is, images row by row, flat vectors one value a step."""
    n = x.shape[0]
    if len(input_shape) == 2:
        return x.view(n, *input_shape)
    if len(input_shape) == 3:
        c, h, w = input_shape
        return x.view(n, c, h, w).permute(0, 2, 1, 3).reshape(n, h, c * w)
    return x.view(n, -1, 1)


class SequenceModel(nn.Module):
    """Stacked recurrent layers (``nn.RNN`` or ``nn.LSTM``, one module per layer) and a head on the last step."""

    def __init__(self, cell: str, input_shape: tuple[int, ...], n_out: int, widths: list[int], activation: str,
                 init: str, init_dist: str, p: float, dropout_kind: str):
        super().__init__()
        self.input_shape = tuple(input_shape)
        n_features = as_sequence(torch.zeros(1, int(math.prod(input_shape))), self.input_shape).shape[2]
        layers = []
        for w in widths:
            if cell == "rnn":
                if activation not in ("tanh", "relu"):
                    raise ValueError(f"model rnn takes activation tanh or relu, got {activation}")
                layers.append(nn.RNN(n_features, w, batch_first=True, nonlinearity=activation))
            else:
                layers.append(nn.LSTM(n_features, w, batch_first=True))
            n_features = w
        self.layers = nn.ModuleList(layers)
        self.drop = nn.Sequential(*dropout(p, dropout_kind))
        self.head = nn.Linear(n_features, n_out)
        init_linear(self.head, init, init_dist)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = as_sequence(x, self.input_shape)
        for layer in self.layers:
            h, _ = layer(h)
            h = self.drop(h)
        return self.head(h[:, -1])


def weight_layers(model: nn.Module) -> list[list[torch.nn.Parameter]]:
    """The weight tensors of each layer, in forward order: hidden layers, then the head last.
    A linear or convolutional layer's weight; a recurrent layer's input and hidden weights (no biases,
    no BatchNorm or PReLU parameters)."""
    out = []
    for module in model.modules():
        if isinstance(module, (nn.Linear, nn.Conv2d)):
            out.append([module.weight])
        elif isinstance(module, nn.RNNBase):
            out.append([p for name, p in module.named_parameters() if name.startswith("weight")])
    return out
