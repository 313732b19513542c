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
    input feature), "channel" (each image channel over all its pixels) or "none". ``x_val``, ``y_val``:
    a validation split of the builder's own (a corpus split by document, not by window); data.py then
    takes it as given and splits nothing off ``x``.

    Task "lm" (next-byte prediction): ``x`` is (n, seq_len) byte tokens (uint8 or int64), ``y`` the same
    shape, the next byte at each position (int64); ``input_shape = (seq_len,)``, ``standardize = "none"``."""

    x: Any
    y: Any
    x_test: Any
    y_test: Any
    task: str
    input_shape: tuple[int, ...]
    standardize: str = "feature"
    x_val: Any = None
    y_val: Any = None
