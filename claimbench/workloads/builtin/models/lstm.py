"""``lstm``: depth LSTM layers (gates i, f, g, o as ``nn.LSTM``) -> Linear head on the last step. Examples
are read as sequences as the rnn reads them (layers.as_sequence); dropout (standard or alpha) follows
each layer; there is no BatchNorm, and the gates' activations are fixed. Recurrent layers keep PyTorch's
default initialization; ``init`` and ``init_dist`` set the head (layers.SequenceModel)."""

from __future__ import annotations

from typing import Any

from claimbench.workloads.builtin.datasets import BuiltinDataset
from claimbench.workloads.builtin.models import Family
from claimbench.workloads.builtin.geometry import layer_widths, sequence_features


def check(spec: Any, dataset: BuiltinDataset | None) -> None:
    if spec.batchnorm:
        raise ValueError("model lstm has no batchnorm; set batchnorm = false")


def build(s: Any, input_shape: tuple[int, ...], n_out: int):
    from claimbench.workloads.builtin.layers import SequenceModel  # torch loads when a model is built

    if s.batchnorm:
        raise ValueError("model lstm has no batchnorm; set batchnorm = false")
    return SequenceModel("lstm", input_shape, n_out, layer_widths(s.depth, s.width, s.shape), s.activation, s.init,
                         s.init_dist, s.dropout, s.dropout_kind)


def param_count(s: Any, input_shape: tuple[int, ...], n_out: int) -> int:
    """Four gates' input and hidden weights and two biases per layer; then the head on the last step."""
    total, features = 0, sequence_features(input_shape)
    for w in layer_widths(s.depth, s.width, s.shape):
        total += 4 * (features * w + w * w + 2 * w)
        features = w
    return total + features * n_out + n_out


FAMILY = Family(name="lstm", build=build, param_count=param_count, check=check, packed="claimbench.train.packed.engine")
