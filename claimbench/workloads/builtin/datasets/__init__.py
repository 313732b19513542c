"""The built-in datasets: one module per dataset in this package, found without a list to edit.

A dataset is one file, ``<name>.py`` here, that defines ``DATASET = BuiltinDataset(...)``: its name (the
module's), task, the shape of one example, its outputs, the size facts the suite loader checks before
anything is built (``default_n``, ``available``, ``n_test``), and ``build``, the function that makes its
examples (numpy arrays, as a ``Raw``). Modules whose names start with ``_`` are helpers, not datasets.
``register`` adds a dataset defined elsewhere (a test's own module) to the same table.

Torch-free: the suite loader reads this table (``names``, ``find``) without importing torch; a builder
imports what it needs (scikit-learn, mnist1d) when it runs. workloads/data.py turns a ``Raw`` into
tensors (the validation split, standardization, label noise and outliers: the same for every dataset).
"""

from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass
from typing import Any, Callable

from claimbench.workloads.builtin.raw import DataParams, Raw  # noqa: F401  (a dataset module names them here)

#: Datasets found in this package (filled on first use) and datasets added with ``register``.
_FOUND: dict[str, "BuiltinDataset"] = {}
_ADDED: dict[str, "BuiltinDataset"] = {}


@dataclass(frozen=True)
class BuiltinDataset:
    """One built-in dataset (see the module docstring)."""

    name: str
    task: str  # "classification" | "regression"
    shape: tuple[int, ...] | Callable[[Any], tuple[int, ...]]  # one example's shape, or a function of the spec
    n_outputs: int  # classes, or 1 for a scalar regression target
    build: Callable[[DataParams], Raw]
    default_n: int  # examples when n_samples = 0 (train + test for generated data; the training files else)
    n_test: Callable[[int], int]  # of the n examples built, how many the builder sets apart for testing
    available: int | None = None  # a file dataset's training examples (n_samples beyond is refused); None: generated
    image: bool = False  # examples are images (C, H, W): the datasets a cnn accepts
    settings: tuple[str, ...] = ()  # spec settings (settings.py) its examples depend on, besides size and seed

    def input_shape(self, spec: Any) -> tuple[int, ...]:
        """One example's shape for ``spec`` (which needs only the dataset's ``settings`` as attributes)."""
        return tuple(self.shape(spec)) if callable(self.shape) else tuple(self.shape)


def _discovered() -> dict[str, BuiltinDataset]:
    if not _FOUND:
        for module in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
            if module.name.startswith("_"):
                continue
            dataset = getattr(importlib.import_module(f"{__name__}.{module.name}"), "DATASET", None)
            if not isinstance(dataset, BuiltinDataset) or dataset.name != module.name:
                raise TypeError(f"{__name__}.{module.name} must define DATASET = BuiltinDataset(name="
                                f"{module.name!r}, ...); a helper module's name starts with _")
            _FOUND[dataset.name] = dataset
    return _FOUND


def table() -> dict[str, BuiltinDataset]:
    """Every built-in dataset by name: this package's, in name order, then the registered ones."""
    return {**_discovered(), **_ADDED} if _ADDED else _discovered()


def names() -> tuple[str, ...]:
    return tuple(table())


def find(name: str) -> BuiltinDataset | None:
    """The dataset ``name``, or None when there is none (another workload's spec has dataset "")."""
    return table().get(name)


def get(name: str) -> BuiltinDataset:
    found = find(name)
    if found is None:
        raise ValueError(f"unknown dataset {name!r}; use one of: {', '.join(names())}")
    return found


def register(dataset: BuiltinDataset) -> BuiltinDataset:
    """Add a dataset defined outside this package (a test's module) to the table, for this process."""
    if not isinstance(dataset, BuiltinDataset):
        raise TypeError(f"register takes a BuiltinDataset, got {type(dataset).__name__}")
    if table().get(dataset.name, dataset) is not dataset:
        raise ValueError(f"a dataset named {dataset.name!r} is already registered")
    _ADDED[dataset.name] = dataset
    return dataset


def unregister(name: str) -> None:
    """Remove a dataset that ``register`` added (the package's own stay)."""
    _ADDED.pop(name, None)
