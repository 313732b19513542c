"""A model family written as a built-in one is: this file could be claimbench/workloads/builtin/models/linear.py
unchanged (the package would find it); here a test registers it (tests/workloads/test_recipes.py).

``linear``: one Linear layer from the flattened example to the outputs (logistic or linear regression).
It has no hidden layer (depth and width mean nothing to it), so it refuses BatchNorm and dropout; no
packed engine trains it (``packed`` is empty)."""

from __future__ import annotations

import math
from typing import Any

from claimbench.workloads.builtin.datasets import BuiltinDataset
from claimbench.workloads.builtin.models import Family


def check(spec: Any, dataset: BuiltinDataset | None) -> None:
    if spec.batchnorm or spec.dropout:
        raise ValueError("model linear has no hidden layer: set batchnorm = false and dropout = 0")


def build(spec: Any, input_shape: tuple[int, ...], n_out: int):
    from torch import nn  # torch loads when a model is built: the family's declaration stays torch-free

    from claimbench.workloads.builtin.layers import init_linear

    layer = nn.Linear(math.prod(input_shape), n_out)
    init_linear(layer, spec.init, spec.init_dist)
    return nn.Sequential(layer)


def param_count(spec: Any, input_shape: tuple[int, ...], n_out: int) -> int:
    return math.prod(input_shape) * n_out + n_out


FAMILY = Family(name="linear", build=build, param_count=param_count, check=check)
