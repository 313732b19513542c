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

from dataclasses import dataclass
from typing import Any, Callable

from claimbench.workloads.builtin.catalog import Catalog

from claimbench.workloads.builtin.raw import DataParams, Raw  # noqa: F401  (a dataset module names them here)



@dataclass(frozen=True)
class BuiltinDataset:
    """One built-in dataset (see the module docstring)."""

    name: str
    task: str  # "classification" | "regression" | "lm" (next-byte prediction; n_outputs 256)
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


_CATALOG: Catalog[BuiltinDataset] = Catalog(__name__, __path__, "DATASET", BuiltinDataset, "a dataset", "dataset")
table, names, find, get = _CATALOG.table, _CATALOG.names, _CATALOG.find, _CATALOG.get
register, unregister = _CATALOG.register, _CATALOG.unregister
