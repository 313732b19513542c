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

import importlib
import pkgutil
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable

if TYPE_CHECKING:
    from torch import nn

    from claimbench.workloads.builtin.datasets import BuiltinDataset

#: Families found in this package (filled on first use) and families added with ``register``.
_FOUND: dict[str, "Family"] = {}
_ADDED: dict[str, "Family"] = {}


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


def _discovered() -> dict[str, Family]:
    if not _FOUND:
        for module in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
            if module.name.startswith("_"):
                continue
            family = getattr(importlib.import_module(f"{__name__}.{module.name}"), "FAMILY", None)
            if not isinstance(family, Family) or family.name != module.name:
                raise TypeError(f"{__name__}.{module.name} must define FAMILY = Family(name={module.name!r}, ...); "
                                "a helper module's name starts with _")
            _FOUND[family.name] = family
    return _FOUND


def table() -> dict[str, Family]:
    """Every built-in model family by name: this package's, in name order, then the registered ones."""
    return {**_discovered(), **_ADDED} if _ADDED else _discovered()


def names() -> tuple[str, ...]:
    return tuple(table())


def find(name: str) -> Family | None:
    """The family ``name``, or None when there is none (another workload's spec has model "")."""
    return table().get(name)


def get(name: str) -> Family:
    found = find(name)
    if found is None:
        raise ValueError(f"unknown model {name!r}; use one of: {', '.join(names())}")
    return found


def register(family: Family) -> Family:
    """Add a family defined outside this package (a test's module) to the table, for this process."""
    if not isinstance(family, Family):
        raise TypeError(f"register takes a Family, got {type(family).__name__}")
    if table().get(family.name, family) is not family:
        raise ValueError(f"a model family named {family.name!r} is already registered")
    _ADDED[family.name] = family
    return family


def unregister(name: str) -> None:
    """Remove a family that ``register`` added (the package's own stay)."""
    _ADDED.pop(name, None)


def build_model(spec: Any, n_in: int | tuple[int, ...], n_out: int) -> "nn.Module":
    """The model a spec names, for inputs of ``n_in`` features (an int) or of shape ``n_in`` (a tuple: the
    dataset's ``input_shape``, which cnn, rnn and lstm need), and ``n_out`` outputs."""
    return get(spec.model).build(spec, as_shape(n_in), n_out)


def as_shape(n_in: int | tuple[int, ...] | list[int]) -> tuple[int, ...]:
    """An input shape: a tuple as given, a feature count as (count,)."""
    return tuple(int(d) for d in n_in) if isinstance(n_in, (tuple, list)) else (int(n_in),)
