"""Models, registered by name. Every model takes flattened examples ``(n, prod(input_shape))``.

- ``mlp``: depth x block -> Linear head. A block is Linear -> (BatchNorm) -> activation -> (Dropout)
  with ``dropout_position = "after_act"``, or Linear -> (Dropout) -> (BatchNorm) -> activation with
  ``"before_bn"`` (the variance-shift setting of Li et al. 2019).
- ``cnn``: for images (C, H, W): depth x [3x3 conv block, ordered as the MLP's, then 2x2 max-pooling
  while the feature map is at least 2x2] -> global average pooling -> Linear head.
- ``rnn`` / ``lstm``: depth recurrent layers (tanh or relu for rnn; LSTM's gates are fixed) ->
  Linear head on the last step. A (T, F) example is T steps of F features; an image is read row by
  row (H steps of C*W); a flat (D,) example is D steps of one feature. Dropout (standard or alpha)
  follows each recurrent layer; there is no BatchNorm. Recurrent layers keep PyTorch's default
  initialization (uniform +-1/sqrt(hidden)); ``init`` and ``init_dist`` set the head.

``width`` is the first hidden layer's units (channels, hidden size); ``shape = "pyramid"`` halves
it at each successive hidden layer, down to 4. ``dropout_kind = "alpha"`` uses AlphaDropout
(for SELU). ``prelu`` has one learned slope per layer; ``rrelu`` draws random slopes in training
and uses their mean in evaluation.

``parameterization = "mup"`` (MLP, shape equal, Adam or AdamW): the Maximal Update Parametrization of
Yang et al. 2022, "Tensor Programs V" (arXiv 2203.03466), in the form of its Table 8 (the one
``microsoft/mup`` implements with ``MuReadout`` and ``MuAdam``), with width_mult m = width / base_width,
so that at width = base_width the model and its optimizer are exactly SP's:

- input weights and all biases: SP's init variance (``init``, fan_in = the inputs), multiplier 1, Adam LR lr;
- hidden weights: SP's init variance (``init``: var ~ 1 / fan_in), multiplier 1, Adam LR lr / m;
- output weights: SP's init variance at base_width (constant in width), multiplier 1 / m on the layer's
  input (``Readout``), Adam LR lr.

Table 3's equivalent form (output init var ~ 1 / fan_in^2, multiplier 1, Adam LR ~ 1 / fan_in) gives the
same function and the same Adam updates. BatchNorm's scale and shift and PReLU's slope are vector-like
(LR x 1). Weight decay on a hidden weight is x m, as ``MuAdam`` scales it (so AdamW's decoupled decay,
lr x weight_decay, is the same at every width). The LR and decay multipliers ride on the parameters
(``lr_scale``, ``wd_scale``; ``param_scales``), which both engines read.
"""

from __future__ import annotations

import math
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from claimbench.workloads.registry import DATASET_INFO

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
MIN_PYRAMID_WIDTH = 4


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


def layer_widths(depth: int, width: int, shape: str = "equal") -> list[int]:
    """Each hidden layer's width: all ``width`` (equal), or halving from ``width`` down to 4 (pyramid)."""
    if shape == "equal":
        return [width] * depth
    if shape == "pyramid":
        return [max(width >> i, MIN_PYRAMID_WIDTH) for i in range(depth)]
    raise ValueError(f"unknown shape {shape!r}; use equal or pyramid")


def _dropout(p: float, kind: str) -> list[nn.Module]:
    if p <= 0:
        return []
    if kind == "standard":
        return [nn.Dropout(p)]
    if kind == "alpha":
        return [nn.AlphaDropout(p)]
    raise ValueError(f"unknown dropout_kind {kind!r}; use standard or alpha")


def _block(layer: nn.Module, norm: nn.Module | None, activation: str, dropout: float, dropout_kind: str,
           dropout_position: str) -> list[nn.Module]:
    norm_ = [norm] if norm is not None else []
    drop = _dropout(dropout, dropout_kind)
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


def mlp(n_in: int, n_out: int, depth: int, width: int, activation: str, init: str = "he",
        init_dist: str = "normal", batchnorm: bool = False, dropout: float = 0.0, *,
        dropout_position: str = "after_act", dropout_kind: str = "standard", shape: str = "equal",
        parameterization: str = "sp", base_width: int = 0) -> nn.Sequential:
    """The MLP; ``parameterization = "mup"`` applies the module docstring's table (width_mult = width /
    base_width), with the same random draws as SP (so at width = base_width it is SP's model)."""
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
        layers += _block(linear, nn.BatchNorm1d(w) if batchnorm else None, activation, dropout, dropout_kind,
                         dropout_position)
        fan_in = w
    head = Readout(fan_in, n_out, 1.0 / mult) if mup else nn.Linear(fan_in, n_out)
    init_linear(head, init, init_dist)
    if mup:  # SP's variance at the base width: constant in width
        with torch.no_grad():
            head.weight.mul_(math.sqrt(INITS[init](base_width, n_out) / INITS[init](fan_in, n_out)))
    layers.append(head)
    return nn.Sequential(*layers)


def param_scales(model: nn.Module) -> list[tuple[float, float]]:
    """(LR multiplier, weight-decay multiplier) of each parameter, in ``model.parameters()`` order: (1, 1)
    except muP's hidden weights (the module docstring)."""
    return [(getattr(p, "lr_scale", 1.0), getattr(p, "wd_scale", 1.0)) for p in model.parameters()]


def cnn(input_shape: tuple[int, ...], n_out: int, depth: int, width: int, activation: str, init: str = "he",
        init_dist: str = "normal", batchnorm: bool = False, dropout: float = 0.0, *,
        dropout_position: str = "after_act", dropout_kind: str = "standard", shape: str = "equal") -> nn.Sequential:
    if len(input_shape) != 3:
        raise ValueError(f"model cnn needs images (channels, height, width); this dataset's examples have "
                         f"shape {tuple(input_shape)}: use mlp, rnn or lstm")
    channels, size = input_shape[0], min(input_shape[1:])
    layers: list[nn.Module] = [nn.Unflatten(1, tuple(input_shape))]
    for c in layer_widths(depth, width, shape):
        conv = nn.Conv2d(channels, c, 3, padding=1)
        init_linear(conv, init, init_dist)
        layers += _block(conv, nn.BatchNorm2d(c) if batchnorm else None, activation, dropout, dropout_kind,
                         dropout_position)
        if size >= 2:
            layers.append(nn.MaxPool2d(2))
            size //= 2
        channels = c
    head = nn.Linear(channels, n_out)
    init_linear(head, init, init_dist)
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), head]
    return nn.Sequential(*layers)


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
                 init: str, init_dist: str, dropout: float, dropout_kind: str):
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
        self.drop = nn.Sequential(*_dropout(dropout, dropout_kind))
        self.head = nn.Linear(n_features, n_out)
        init_linear(self.head, init, init_dist)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = as_sequence(x, self.input_shape)
        for layer in self.layers:
            h, _ = layer(h)
            h = self.drop(h)
        return self.head(h[:, -1])


def _flat(input_shape) -> int:
    return int(math.prod(input_shape)) if isinstance(input_shape, (tuple, list)) else int(input_shape)


def _shape(input_shape) -> tuple[int, ...]:
    return tuple(input_shape) if isinstance(input_shape, (tuple, list)) else (int(input_shape),)


def _mlp(s, input_shape, n_out):
    return mlp(_flat(input_shape), n_out, s.depth, s.width, s.activation, s.init, s.init_dist, s.batchnorm, s.dropout,
               dropout_position=s.dropout_position, dropout_kind=s.dropout_kind, shape=s.shape,
               parameterization=getattr(s, "parameterization", "sp"), base_width=getattr(s, "base_width", 0))


def _cnn(s, input_shape, n_out):
    return cnn(_shape(input_shape), n_out, s.depth, s.width, s.activation, s.init, s.init_dist, s.batchnorm,
               s.dropout, dropout_position=s.dropout_position, dropout_kind=s.dropout_kind, shape=s.shape)


def _recurrent(cell: str):
    def build(s, input_shape, n_out):
        if s.batchnorm:
            raise ValueError(f"model {cell} has no batchnorm; set batchnorm = false")
        return SequenceModel(cell, _shape(input_shape), n_out, layer_widths(s.depth, s.width, s.shape), s.activation,
                             s.init, s.init_dist, s.dropout, s.dropout_kind)
    return build


MODELS: dict[str, Callable[..., nn.Module]] = {
    "mlp": _mlp,
    "cnn": _cnn,
    "rnn": _recurrent("rnn"),
    "lstm": _recurrent("lstm"),
}


def build_model(spec, n_in: int | tuple[int, ...], n_out: int) -> nn.Module:
    """The model a spec names, for inputs of ``n_in`` features (an int) or of shape ``n_in`` (a tuple: the
    dataset's ``input_shape``, which cnn, rnn and lstm need), and ``n_out`` outputs."""
    return MODELS[spec.model](spec, n_in, n_out)


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


def dataset_shape(name: str, seq_len: int = 30) -> tuple[tuple[int, ...], int]:
    """(input_shape, n_outputs) of a built-in dataset, without building it (registry.DATASETS)."""
    info = DATASET_INFO[name]
    return info.input_shape(seq_len), info.n_outputs


def param_count(spec, n_in: int | tuple[int, ...] | None = None, n_out: int | None = None) -> int:
    """Trainable parameters of the spec's model, computed without building it.

    ``n_in``: features (int) or input shape (tuple); ``n_out``: outputs. Either, left out, comes from
    the spec's dataset (``dataset_shape``). Counts BatchNorm's scale and shift and PReLU's slope,
    not BatchNorm's running statistics (buffers)."""
    shape, outs = dataset_shape(spec.dataset, spec.seq_len)
    n_in = shape if n_in is None else n_in
    n_out = outs if n_out is None else n_out
    widths = layer_widths(spec.depth, spec.width, spec.shape)
    per_layer_extra = (2 if spec.batchnorm and spec.model in ("mlp", "cnn") else 0)  # BN scale and shift, per unit
    act_params = 1 if spec.activation == "prelu" and spec.model in ("mlp", "cnn") else 0
    total = 0
    if spec.model == "mlp":
        fan_in = _flat(n_in)
        for w in widths:
            total += fan_in * w + w + per_layer_extra * w + act_params
            fan_in = w
        return total + fan_in * n_out + n_out
    if spec.model == "cnn":
        channels = _shape(n_in)[0]
        for c in widths:
            total += channels * c * 9 + c + per_layer_extra * c + act_params
            channels = c
        return total + channels * n_out + n_out
    if spec.model in ("rnn", "lstm"):
        gates = 4 if spec.model == "lstm" else 1
        shape_ = _shape(n_in)
        features = shape_[1] if len(shape_) == 2 else shape_[0] * shape_[2] if len(shape_) == 3 else 1
        for w in widths:
            total += gates * (features * w + w * w + 2 * w)  # input and hidden weights, two biases
            features = w
        return total + features * n_out + n_out
    raise ValueError(f"unknown model {spec.model!r}")
