"""What a built-in dataset's builder takes and returns (``DataParams`` -> ``Raw``): numpy arrays, torch-free."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping


@dataclass(frozen=True)
class DataParams:
    """What a builder reads: the size (0: its default), the seed, where data files are (None: the default
    folder, ``files.data_dir``) and the values of the dataset's own ``settings`` (e.g. ``seq_len``)."""

    n_samples: int = 0
    seed: int = 0
    data_dir: Path | None = None
    settings: Mapping[str, Any] = field(default_factory=dict)


@dataclass
class Raw:
    """A builder's output: training examples (train and validation: data.py splits off the validation
    part) and test examples, inputs flattened to one row per example. ``standardize``: "feature" (each
    input feature), "channel" (each image channel over all its pixels) or "none"."""

    x: Any
    y: Any
    x_test: Any
    y_test: Any
    task: str
    input_shape: tuple[int, ...]
    standardize: str = "feature"
