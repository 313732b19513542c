"""A model as a program of ops: each layer of a model, in forward order, with its parameters' places in
one flat parameter vector per trial (``plan``). Which layers the packed engine can stack is decided here:
a model with any other layer is refused with the reason.

The flat vector holds each parameter in the model's order, each in the layout its op computes with: a
Linear's weight as (in, out), the transpose of ``nn.Linear``'s (out, in), so that its batched matmul
takes it as it is and its gradient comes out contiguous; every other parameter as its module holds it.
``to_row`` and ``load_row`` convert between a model and its vector; nothing else may copy parameters
between the two engines."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from claimbench.workloads.builtin.layers import AlphaDropout, Dropout, Readout, SequenceModel

RRELU_LOWER, RRELU_UPPER = 1.0 / 8, 1.0 / 3  # nn.RReLU's defaults

Place = tuple[int, int, tuple[int, ...]]  # (offset, size, shape) of one parameter in the flat vector


@dataclass
class Op:
    kind: str  # linear | bn | bn2d | act | prelu | rrelu | dropout | image | conv | maxpool | gap | sequence | rnn | lstm | last
    params: tuple[Place, ...] = ()  # in the module's parameter order
    index: int = 0  # bn: which running buffers; rnn, lstm: which weight layer
    module: nn.Module | None = None  # act: the (stateless, elementwise) activation module
    nonlinearity: str = "tanh"  # rnn
    scale: float = 1.0  # linear: a multiplier on its input (muP's readout, models.Readout)
    transposed: bool = False  # linear: its weight (params[0]) is held as (in, out), nn.Linear's transposed


_PARAMETER_FREE = {Dropout: "dropout", AlphaDropout: "alpha_dropout", nn.Unflatten: "image",
                   nn.MaxPool2d: "maxpool", nn.AdaptiveAvgPool2d: "gap"}


def plan(model: nn.Module) -> tuple[list[Op], list[int], list[list[Place]]]:
    """The ops of a model in forward order, each with its parameters' places in the flat vector; the
    width of each BatchNorm layer; and the weight layers' places (as models.weight_layers)."""
    ops: list[Op] = []
    bn_widths: list[int] = []
    weights: list[list[Place]] = []
    offset = 0

    def take(*tensors: torch.Tensor) -> tuple[Place, ...]:
        nonlocal offset
        places = []
        for p in tensors:
            places.append((offset, p.numel(), tuple(p.shape)))
            offset += p.numel()
        return tuple(places)

    def block(m: nn.Module) -> None:
        if isinstance(m, nn.Linear):
            ops.append(Op("linear", take(m.weight.t(), m.bias), scale=m.multiplier if isinstance(m, Readout) else 1.0,
                          transposed=True))
            weights.append([ops[-1].params[0]])
        elif isinstance(m, nn.Conv2d):
            if m.kernel_size != (3, 3) or m.padding != (1, 1) or m.stride != (1, 1) or m.groups != 1:
                raise ValueError(f"packed training stacks 3x3 same-padding convolutions, not {m}")
            ops.append(Op("conv", take(m.weight, m.bias)))
            weights.append([ops[-1].params[0]])
        elif isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
            kind = "bn" if isinstance(m, nn.BatchNorm1d) else "bn2d"
            ops.append(Op(kind, take(m.weight, m.bias), index=len(bn_widths)))
            bn_widths.append(m.num_features)
        elif isinstance(m, nn.PReLU):
            if m.num_parameters != 1:
                raise ValueError("packed training stacks PReLU with one slope per layer")
            ops.append(Op("prelu", take(m.weight)))
        elif isinstance(m, nn.RReLU):
            if (m.lower, m.upper) != (RRELU_LOWER, RRELU_UPPER):
                raise ValueError("packed training draws RReLU slopes from nn.RReLU's default range")
            ops.append(Op("rrelu"))
        elif type(m) in _PARAMETER_FREE:
            ops.append(Op(_PARAMETER_FREE[type(m)]))
        elif isinstance(m, nn.Flatten):
            pass  # gap already leaves (K, B, C)
        elif isinstance(m, (nn.ReLU, nn.LeakyReLU, nn.ELU, nn.SELU, nn.GELU, nn.Sigmoid, nn.Tanh)):
            ops.append(Op("act", module=m))
        else:
            raise ValueError(f"packed training cannot stack {type(m).__name__}")

    if isinstance(model, SequenceModel):
        ops.append(Op("sequence"))
        for layer in model.layers:
            kind = "lstm" if isinstance(layer, nn.LSTM) else "rnn"
            if layer.num_layers != 1 or layer.bidirectional or not layer.batch_first or layer.proj_size:
                raise ValueError(f"packed training stacks one-layer batch-first recurrences, not {layer}")
            ops.append(Op(kind, take(layer.weight_ih_l0, layer.weight_hh_l0, layer.bias_ih_l0, layer.bias_hh_l0),
                           index=len(weights), nonlinearity=getattr(layer, "nonlinearity", "tanh")))
            weights.append(list(ops[-1].params[:2]))
            for m in model.drop:
                block(m)
        ops.append(Op("last"))
        block(model.head)
    elif isinstance(model, nn.Sequential):
        for m in model:
            block(m)
    else:
        raise ValueError(f"packed training cannot stack {type(model).__name__}")
    assert offset == sum(p.numel() for p in model.parameters()), "the plan must cover every parameter in order"
    return ops, bn_widths, weights


def _held(ops: list[Op]) -> list[tuple[Place, bool]]:
    """Each parameter's place, and whether it is held transposed, in the model's parameter order."""
    return [(place, op.transposed and i == 0) for op in ops for i, place in enumerate(op.params)]


def to_row(model: nn.Module, ops: list[Op]) -> torch.Tensor:
    """One trial's flat parameter vector (P,) from its model, each parameter in its place's layout."""
    return torch.cat([(p.detach().t() if t else p.detach()).reshape(-1)
                      for p, (_, t) in zip(model.parameters(), _held(ops), strict=True)])


def load_row(row: torch.Tensor, model: nn.Module, ops: list[Op]) -> None:
    """Copy a flat parameter vector (P,) into ``model``'s parameters (the inverse of ``to_row``)."""
    with torch.no_grad():
        for p, ((offset, size, shape), t) in zip(model.parameters(), _held(ops), strict=True):
            value = row[offset:offset + size].view(shape)
            p.copy_(value.t() if t else value)


def view(theta: torch.Tensor, place: Place) -> torch.Tensor:
    offset, size, shape = place
    return theta[:, offset:offset + size].view(theta.shape[0], *shape)
