"""``cnn``: for images (C, H, W): depth x [3x3 conv block (layers.block, ordered as the MLP's), then 2x2
max-pooling while the feature map is at least 2x2] -> global average pooling -> Linear head. ``width``
is the first block's channels; ``shape = "pyramid"`` halves them at each successive block, down to 4.
It accepts only image datasets (``BuiltinDataset.image``)."""

from __future__ import annotations

from typing import Any

from claimbench.workloads.builtin import datasets
from claimbench.workloads.builtin.datasets import BuiltinDataset
from claimbench.workloads.builtin.models import Family
from claimbench.workloads.builtin.geometry import layer_widths


def check(spec: Any, dataset: BuiltinDataset | None) -> None:
    if dataset is not None and not dataset.image:
        images = [d.name for d in datasets.table().values() if d.image]
        raise ValueError(f"model cnn needs an image dataset ({', '.join(images)}), got {spec.dataset}")


def cnn(input_shape: tuple[int, ...], n_out: int, depth: int, width: int, activation: str, init: str = "he",
        init_dist: str = "normal", batchnorm: bool = False, dropout: float = 0.0, *,
        dropout_position: str = "after_act", dropout_kind: str = "standard", shape: str = "equal"):
    from torch import nn  # torch loads when a model is built: the family's declaration stays torch-free

    from claimbench.workloads.builtin.layers import block, init_linear

    if len(input_shape) != 3:
        raise ValueError(f"model cnn needs images (channels, height, width); this dataset's examples have "
                         f"shape {tuple(input_shape)}: use mlp, rnn or lstm")
    channels, size = input_shape[0], min(input_shape[1:])
    layers: list[nn.Module] = [nn.Unflatten(1, tuple(input_shape))]
    for c in layer_widths(depth, width, shape):
        conv = nn.Conv2d(channels, c, 3, padding=1)
        init_linear(conv, init, init_dist)
        layers += block(conv, nn.BatchNorm2d(c) if batchnorm else None, activation, dropout, dropout_kind,
                        dropout_position)
        if size >= 2:
            layers.append(nn.MaxPool2d(2))
            size //= 2
        channels = c
    head = nn.Linear(channels, n_out)
    init_linear(head, init, init_dist)
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), head]
    return nn.Sequential(*layers)


def build(s: Any, input_shape: tuple[int, ...], n_out: int):
    return cnn(input_shape, n_out, s.depth, s.width, s.activation, s.init, s.init_dist, s.batchnorm, s.dropout,
               dropout_position=s.dropout_position, dropout_kind=s.dropout_kind, shape=s.shape)


def param_count(s: Any, input_shape: tuple[int, ...], n_out: int) -> int:
    """3x3 filters and biases, BatchNorm's scale and shift, PReLU's slope, per block; then the head."""
    per_unit = 2 if s.batchnorm else 0
    slope = 1 if s.activation == "prelu" else 0
    total, channels = 0, input_shape[0]
    for c in layer_widths(s.depth, s.width, s.shape):
        total += channels * c * 9 + c + per_unit * c + slope
        channels = c
    return total + channels * n_out + n_out


FAMILY = Family(name="cnn", build=build, param_count=param_count, check=check, packed="claimbench.train.packed.engine")
