"""``rnn``: depth recurrent layers (``nn.RNN``, tanh or relu) -> Linear head on the last step. A (T, F)
example is T steps of F features; an image is read row by row (H steps of C*W); a flat (D,) example is D
steps of one feature. Dropout (standard or alpha) follows each recurrent layer; there is no BatchNorm.
Recurrent layers keep PyTorch's default initialization (uniform +-1/sqrt(hidden)); ``init`` and
``init_dist`` set the head (layers.SequenceModel)."""

from __future__ import annotations

from typing import Any

from claimbench.workloads.builtin.datasets import BuiltinDataset
from claimbench.workloads.builtin.models import Family
from claimbench.workloads.builtin.geometry import layer_widths, sequence_features
from claimbench.workloads.settings import FIELDS

#: The activations nn.RNN implements.
ACTIVATIONS = ("tanh", "relu")


def check(spec: Any, dataset: BuiltinDataset | None) -> None:
    if spec.activation in FIELDS["activation"].choices and spec.activation not in ACTIVATIONS:
        raise ValueError(f"model rnn takes activation tanh or relu, got {spec.activation}")
    if spec.batchnorm:
        raise ValueError("model rnn has no batchnorm; set batchnorm = false")


def build(s: Any, input_shape: tuple[int, ...], n_out: int):
    from claimbench.workloads.builtin.layers import SequenceModel  # torch loads when a model is built

    if s.batchnorm:
        raise ValueError("model rnn has no batchnorm; set batchnorm = false")
    return SequenceModel("rnn", input_shape, n_out, layer_widths(s.depth, s.width, s.shape), s.activation, s.init,
                         s.init_dist, s.dropout, s.dropout_kind)


def param_count(s: Any, input_shape: tuple[int, ...], n_out: int) -> int:
    """Input and hidden weights and two biases per layer; then the head on the last step."""
    total, features = 0, sequence_features(input_shape)
    for w in layer_widths(s.depth, s.width, s.shape):
        total += features * w + w * w + 2 * w
        features = w
    return total + features * n_out + n_out


FAMILY = Family(name="rnn", build=build, param_count=param_count, check=check, packed="claimbench.train.packed.engine")
