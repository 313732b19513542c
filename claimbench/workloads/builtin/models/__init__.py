"""The built-in model families: one module per family in this package, found without a list to edit.

A family is one file, ``<name>.py`` here, that defines ``FAMILY = Family(...)``: its name (the module's,
and the spec's ``model``), ``build`` (the ``nn.Module`` for a spec, an input shape and a number of
outputs; it imports torch when it runs), ``param_count`` (the same model's trainable parameters,
computed without torch, for the size limits and the packing rules), an optional ``check`` that refuses
a spec it cannot train when the suite loads, whether it implements muP, and ``packed``: the module of the
packed engine (train/) that trains K of its trials at once, or "" when only the single-trial engine
trains it. Modules whose names start with ``_`` are helpers. ``register`` adds a family defined
elsewhere (a test's own module) to the same table.

Torch-free, like the datasets' table: the shared torch blocks are in builtin/layers.py, and the widths,
input shapes and parameter counts in builtin/shapes.py.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable

from claimbench.workloads.builtin.catalog import Catalog

if TYPE_CHECKING:
    from torch import nn

    from claimbench.workloads.builtin.datasets import BuiltinDataset



@dataclass(frozen=True)
class Family:
    """One built-in model family (see the module docstring). ``build(spec, input_shape, n_outputs)`` and
    ``param_count(spec, input_shape, n_outputs)`` take one example's shape; inputs arrive flattened to
    ``(n, prod(input_shape))`` rows. ``check(spec, dataset)`` raises ValueError naming the fix (``dataset``:
    the spec's built-in dataset, None when unknown)."""

    name: str
    build: Callable[[Any, tuple[int, ...], int], "nn.Module"]
    param_count: Callable[[Any, tuple[int, ...], int], int]
    check: Callable[[Any, "BuiltinDataset | None"], None] | None = None
    mup: bool = False  # implements parameterization = "mup" (the settings' muP rules then apply)
    packed: str = ""  # the packed engine's module that trains it ("": the single-trial engine only)
    lm: bool = False  # trains task lm (next-byte prediction), and only it; other families train the other tasks
    muon: bool = False  # marks its hidden matrices (a parameter's ``muon`` attribute) for optimizer muon


_CATALOG: Catalog[Family] = Catalog(__name__, __path__, "FAMILY", Family, "a model family", "model")
table, names, find, get = _CATALOG.table, _CATALOG.names, _CATALOG.find, _CATALOG.get
register, unregister = _CATALOG.register, _CATALOG.unregister


def build_model(spec: Any, n_in: int | tuple[int, ...], n_out: int) -> "nn.Module":
    """The model a spec names, for inputs of ``n_in`` features (an int) or of shape ``n_in`` (a tuple: the
    dataset's ``input_shape``, which cnn, rnn and lstm need), and ``n_out`` outputs."""
    return get(spec.model).build(spec, as_shape(n_in), n_out)


def as_shape(n_in: int | tuple[int, ...] | list[int]) -> tuple[int, ...]:
    """An input shape: a tuple as given, a feature count as (count,)."""
    return tuple(int(d) for d in n_in) if isinstance(n_in, (tuple, list)) else (int(n_in),)
