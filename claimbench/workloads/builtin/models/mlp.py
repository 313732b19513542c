"""``mlp``: depth x block (Linear, BatchNorm, activation, dropout: layers.block) -> Linear head, on
flattened examples. ``width`` is the first hidden layer's units; ``shape = "pyramid"`` halves it at each
successive hidden layer, down to 4.

``parameterization = "mup"`` (shape equal, Adam or AdamW): the Maximal Update Parametrization of
Yang et al. 2022, "Tensor Programs V" (arXiv 2203.03466), in the form of its Table 8 (the one
``microsoft/mup`` implements with ``MuReadout`` and ``MuAdam``), with width_mult m = width / base_width,
so that at width = base_width the model and its optimizer are exactly SP's:

- input weights and all biases: SP's init variance (``init``, fan_in = the inputs), multiplier 1, Adam LR lr;
- hidden weights: SP's init variance (``init``: var ~ 1 / fan_in), multiplier 1, Adam LR lr / m;
- output weights: SP's init variance at base_width (constant in width), multiplier 1 / m on the layer's
  input (``layers.Readout``), Adam LR lr.

Table 3's equivalent form (output init var ~ 1 / fan_in^2, multiplier 1, Adam LR ~ 1 / fan_in) gives the
same function and the same Adam updates. BatchNorm's scale and shift and PReLU's slope are vector-like
(LR x 1). Weight decay on a hidden weight is x m, as ``MuAdam`` scales it (so AdamW's decoupled decay,
lr x weight_decay, is the same at every width). The LR and decay multipliers ride on the parameters
(``lr_scale``, ``wd_scale``; ``layers.param_scales``), which both engines read.
"""

from __future__ import annotations

import math
from typing import Any

from claimbench.workloads.builtin.models import Family
from claimbench.workloads.builtin.geometry import layer_widths


def mlp(n_in: int, n_out: int, depth: int, width: int, activation: str, init: str = "he",
        init_dist: str = "normal", batchnorm: bool = False, dropout: float = 0.0, *,
        dropout_position: str = "after_act", dropout_kind: str = "standard", shape: str = "equal",
        parameterization: str = "sp", base_width: int = 0):
    """The MLP; ``parameterization = "mup"`` applies the module docstring's table (width_mult = width /
    base_width), with the same random draws as SP (so at width = base_width it is SP's model)."""
    import torch  # torch loads when a model is built: the family's declaration stays torch-free
    from torch import nn

    from claimbench.workloads.builtin.layers import INITS, Readout, block, init_linear

    mup = parameterization == "mup"
    if mup and (shape != "equal" or base_width <= 0):
        raise ValueError(f"parameterization mup needs shape equal and base_width > 0, got {shape}, {base_width}")
    mult = width / base_width if mup else 1.0
    layers: list[nn.Module] = []
    fan_in = n_in
    for i, w in enumerate(layer_widths(depth, width, shape)):
        linear = nn.Linear(fan_in, w)
        init_linear(linear, init, init_dist)
        if mup and i > 0:  # hidden weights: Adam LR / m (decay x m, as MuAdam)
            linear.weight.lr_scale, linear.weight.wd_scale = 1.0 / mult, mult
        layers += block(linear, nn.BatchNorm1d(w) if batchnorm else None, activation, dropout, dropout_kind,
                        dropout_position)
        fan_in = w
    head = Readout(fan_in, n_out, 1.0 / mult) if mup else nn.Linear(fan_in, n_out)
    init_linear(head, init, init_dist)
    if mup:  # SP's variance at the base width: constant in width
        with torch.no_grad():
            head.weight.mul_(math.sqrt(INITS[init](base_width, n_out) / INITS[init](fan_in, n_out)))
    layers.append(head)
    return nn.Sequential(*layers)


def build(s: Any, input_shape: tuple[int, ...], n_out: int):
    return mlp(math.prod(input_shape), n_out, s.depth, s.width, s.activation, s.init, s.init_dist, s.batchnorm,
               s.dropout, dropout_position=s.dropout_position, dropout_kind=s.dropout_kind, shape=s.shape,
               parameterization=getattr(s, "parameterization", "sp"), base_width=getattr(s, "base_width", 0))


def param_count(s: Any, input_shape: tuple[int, ...], n_out: int) -> int:
    """Linear weights and biases, BatchNorm's scale and shift, PReLU's slope, per layer; then the head."""
    per_unit = 2 if s.batchnorm else 0
    slope = 1 if s.activation == "prelu" else 0
    total, fan_in = 0, math.prod(input_shape)
    for w in layer_widths(s.depth, s.width, s.shape):
        total += fan_in * w + w + per_unit * w + slope
        fan_in = w
    return total + fan_in * n_out + n_out


FAMILY = Family(name="mlp", build=build, param_count=param_count, mup=True, packed="claimbench.train.packed.engine")
