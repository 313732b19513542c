"""The built-in datasets: one module per dataset in this package, found without a list to edit.

A dataset is one file, ``<name>.py`` here, that defines ``DATASET = BuiltinDataset(...)``: its name (the
module's), task, the shape of one example, its outputs, the size facts the suite loader checks before
anything is built (``default_n``, ``available``, ``n_test``), and ``build``, the function that makes its
examples (numpy arrays, as a ``Raw``). Modules whose names start with ``_`` are helpers, not datasets.
``register`` adds a dataset defined elsewhere (a test's own module) to the same table.

A dataset whose bytes ship with the installation (the ``pysource`` corpus: the pinned torch's sources)
declares ``content_hash``; ``content_hash(name)`` is what suite.expand writes into each trial's
``data_hash``, so that other bytes make other trial ids. A dataset read from files a user places
declares ``require``, the check its builder starts with; ``require_files`` runs it before a run trains.

Torch-free: the suite loader reads this table (``names``, ``find``) without importing torch; a builder
imports what it needs (scikit-learn, mnist1d) when it runs. workloads/data.py turns a ``Raw`` into
tensors (the validation split, standardization, label noise and outliers: the same for every dataset).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable

from claimbench.workloads.builtin.catalog import Catalog
from claimbench.workloads.builtin.files import data_dir

from claimbench.workloads.builtin.raw import DataParams, Raw  # noqa: F401  (a dataset module names them here)



@dataclass(frozen=True)
class BuiltinDataset:
    """One built-in dataset (see the module docstring)."""

    name: str
    task: str  # "classification" | "regression" | "lm" (next-byte prediction; n_outputs 256)
    shape: tuple[int, ...] | Callable[[Any], tuple[int, ...]]  # one example's shape, or a function of the spec
    n_outputs: int  # classes, or 1 for a scalar regression target
    build: Callable[[DataParams], Raw]
    # examples when n_samples = 0 (train + test for generated data; the training files else), or a function of
    # the spec (a text corpus: its training windows at the spec's seq_len)
    default_n: int | Callable[[Any], int]
    n_test: Callable[[int], int]  # of the n examples built, how many the builder sets apart for testing
    available: int | None = None  # a file dataset's training examples (n_samples beyond is refused); None: generated
    image: bool = False  # examples are images (C, H, W): the datasets a cnn accepts
    settings: tuple[str, ...] = ()  # spec settings (settings.py) its examples depend on, besides size and seed
    content_hash: Callable[[], str] | None = None  # a hash of the bytes it is made of (cached by the dataset)
    require: Callable[[Path], None] | None = None  # files a user places: the missing-files error unless in the folder
    own_validation: bool = False  # the builder returns its own validation split (Raw.x_val): none is cut off x

    def input_shape(self, spec: Any) -> tuple[int, ...]:
        """One example's shape for ``spec`` (which needs only the dataset's ``settings`` as attributes)."""
        return tuple(self.shape(spec)) if callable(self.shape) else tuple(self.shape)

    def n_default(self, spec: Any) -> int:
        """The examples it is built from when ``n_samples`` is 0, for ``spec`` (its ``settings`` as attributes)."""
        return int(self.default_n(spec)) if callable(self.default_n) else self.default_n


_CATALOG: Catalog[BuiltinDataset] = Catalog(__name__, __path__, "DATASET", BuiltinDataset, "a dataset", "dataset")
table, names, find, get = _CATALOG.table, _CATALOG.names, _CATALOG.find, _CATALOG.get
register, unregister = _CATALOG.register, _CATALOG.unregister


def content_hash(name: str) -> str:
    """The hash of the bytes dataset ``name`` is made of, "" for one that declares none (generated data,
    files a user places) or for a name that is no built-in dataset: a trial's ``data_hash``."""
    found = find(name)
    return found.content_hash() if found is not None and found.content_hash is not None else ""


def require_files(names: Iterable[str], path: Path | str | None = None) -> None:
    """The missing-files error (files.py) of the first of the built-in datasets ``names`` whose files are not
    in the data directory (``files.data_dir(path)``): before trials train on this machine."""
    root = data_dir(path)
    for name in sorted(set(names)):
        found = find(name)
        if found is not None and found.require is not None:
            found.require(root)
