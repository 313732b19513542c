"""What a built-in spec's data and model measure, known without building them (torch-free): the hidden
layers' widths, one example's shape and the outputs, the examples and the training split, the model's
parameters; and the size checks the suite loader runs on them (``check_sizes``, the built-in workload's
``check``). The models, the limits and the packing rules all ask here, and the dataset and model-family
modules answer (builtin/datasets, builtin/models).

``check_sizes`` refuses, one line each, naming the file and the key:

- ``n_samples`` beyond a file dataset's training examples (``BuiltinDataset.available``), or beyond the
  ``samples`` limit;
- a ``batch_size`` larger than the training split (``train_size``: the dataset's examples, less the test
  split, less the validation fifth);
- a trial whose memory passes ``memory_mb``: 16 bytes per model parameter (weights, gradients, two
  optimizer states in float32; ``param_count``) plus 16 bytes per input value of the dataset (float64
  while it is built, then float32 copies).
"""

from __future__ import annotations

import math
from typing import Any, Callable, Mapping

from claimbench.limits import LimitError, raise_text
from claimbench.workloads.builtin import datasets, models
from claimbench.workloads.builtin.files import check_available
from claimbench.workloads.builtin.models import as_shape
from claimbench.workloads.settings import check_param

#: The part of the training examples that becomes the validation split (workloads.data.build_dataset's).
VAL_FRACTION = 0.2


def input_shape(spec: Any) -> tuple[int, ...]:
    """One example's shape for the spec's built-in dataset (e.g. (40,), (1, 28, 28); adding: (seq_len, 2))."""
    return datasets.get(spec.dataset).input_shape(spec)


def n_outputs(spec: Any) -> int:
    """The spec's built-in dataset's outputs: classes, or 1 for regression."""
    return datasets.get(spec.dataset).n_outputs


def io_shape(spec: Any) -> tuple[tuple[int, ...], int] | None:
    """(input shape, outputs) of the spec's dataset; None when it is not a built-in one."""
    found = datasets.find(spec.dataset)
    return (found.input_shape(spec), found.n_outputs) if found is not None else None


def param_count(spec: Any, n_in: int | tuple[int, ...] | None = None, n_out: int | None = None) -> int:
    """Trainable parameters of the spec's model, computed without building it.

    ``n_in``: features (int) or input shape (tuple); ``n_out``: outputs. Either, left out, comes from
    the spec's dataset. Counts BatchNorm's scale and shift and PReLU's slope, not BatchNorm's running
    statistics (buffers)."""
    shape = input_shape(spec) if n_in is None else as_shape(n_in)
    outs = n_outputs(spec) if n_out is None else n_out
    return models.get(spec.model).param_count(spec, shape, outs)


def examples(spec: Any) -> int:
    """The examples the spec's dataset is built from (before the test split, for generated data)."""
    found = datasets.find(spec.dataset)
    if found is None:
        return 0
    n = spec.n_samples or found.n_default(spec)
    return min(n, found.available) if found.available else n


def train_size(spec: Any) -> int:
    """The training examples of the spec's dataset, after the test and validation splits."""
    found = datasets.find(spec.dataset)
    if found is None:
        return 0
    n = examples(spec)
    n -= found.n_test(n)
    return n if found.own_validation else n - int(round(n * VAL_FRACTION))


def check_sizes(spec: Any, limits: Mapping[str, int], where: Callable[[str], str]) -> None:
    """Refuse a spec whose dataset cannot hold its batch or n_samples, or whose model and data do not fit
    the memory limit. ``where(param)`` names the file and the key a parameter's value comes from."""
    found = datasets.find(spec.dataset)
    if found is None:
        return
    if found.available:
        check_available(spec.dataset, spec.n_samples, found.available, where("n_samples"))
    check_param("n_samples", spec.n_samples, limits, where("n_samples"))
    n_train = train_size(spec)
    if spec.batch_size > n_train:
        raise LimitError(f"batch_size = {spec.batch_size} is more than the {n_train} training examples of "
                         f"{spec.dataset} (n_samples = {spec.n_samples or 'default'})", where=where("batch_size"),
                         fix=f"use batch_size <= {n_train}, or more n_samples")
    params = param_count(spec)
    data_values = examples(spec) * math.prod(input_shape(spec))
    mib = (16 * params + 16 * data_values) / 2**20
    if mib > limits["memory_mb"]:
        raise LimitError(f"one trial needs about {mib:,.0f} MiB ({params:,} parameters of {spec.model} "
                         f"depth {spec.depth} width {spec.width}; {data_values:,} input values), above the "
                         f"memory limit of {limits['memory_mb']} MiB", where=where("width"),
                         fix=raise_text("memory_mb", math.ceil(mib)))
