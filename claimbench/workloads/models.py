"""Models, registered by name. The MLP: depth x [Linear -> (BatchNorm) -> activation -> (Dropout)] -> Linear."""

from __future__ import annotations

import math
from typing import Callable

import torch
from torch import nn

ACTIVATIONS: dict[str, Callable[[], nn.Module]] = {
    "logistic": nn.Sigmoid,
    "tanh": nn.Tanh,
    "relu": nn.ReLU,
    "leaky_relu": lambda: nn.LeakyReLU(0.01),
    "elu": nn.ELU,
    "selu": nn.SELU,
    "gelu": nn.GELU,
}

# Variance of the initial weights given (fan_in, fan_out).
INITS: dict[str, Callable[[int, int], float]] = {
    "he": lambda fan_in, fan_out: 2.0 / fan_in,
    "lecun": lambda fan_in, fan_out: 1.0 / fan_in,
    "glorot": lambda fan_in, fan_out: 2.0 / (fan_in + fan_out),
}
INIT_DISTS = ("normal", "uniform")


def init_linear(layer: nn.Linear, init: str, dist: str) -> None:
    """Weights with the variance the scheme prescribes (normal, or uniform with the same variance); zero bias."""
    fan_out, fan_in = layer.weight.shape
    std = math.sqrt(INITS[init](fan_in, fan_out))
    with torch.no_grad():
        if dist == "normal":
            layer.weight.normal_(0.0, std)
        else:
            bound = math.sqrt(3.0) * std
            layer.weight.uniform_(-bound, bound)
        layer.bias.zero_()


def mlp(n_in: int, n_out: int, depth: int, width: int, activation: str, init: str = "he",
        init_dist: str = "normal", batchnorm: bool = False, dropout: float = 0.0) -> nn.Sequential:
    layers: list[nn.Module] = []
    fan_in = n_in
    for _ in range(depth):
        linear = nn.Linear(fan_in, width)
        init_linear(linear, init, init_dist)
        layers.append(linear)
        if batchnorm:
            layers.append(nn.BatchNorm1d(width))
        layers.append(ACTIVATIONS[activation]())
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        fan_in = width
    head = nn.Linear(fan_in, n_out)
    init_linear(head, init, init_dist)
    layers.append(head)
    return nn.Sequential(*layers)


def build_model(spec, n_in: int, n_out: int) -> nn.Module:
    """The model a spec names, for ``n_in`` features and ``n_out`` classes."""
    return MODELS[spec.model](spec, n_in, n_out)


MODELS: dict[str, Callable[..., nn.Module]] = {
    "mlp": lambda s, n_in, n_out: mlp(n_in, n_out, s.depth, s.width, s.activation, s.init, s.init_dist,
                                      s.batchnorm, s.dropout),
}
