"""Datasets, built locally (no download), split into train/val/test by ``data_seed``.

Each builder returns numpy arrays; ``Dataset`` holds them as tensors on a
device. Features are standardized with the training split's statistics. A
worker builds each dataset once (``DataCache``) and slices batches by index.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch


@dataclass
class Dataset:
    name: str
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_val: torch.Tensor
    y_val: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    n_classes: int

    @property
    def n_features(self) -> int:
        return int(self.x_train.shape[1])

    def to(self, device: torch.device | str) -> "Dataset":
        moved = {k: (v.to(device) if isinstance(v, torch.Tensor) else v) for k, v in self.__dict__.items()}
        return Dataset(**moved)


Arrays = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]  # x, y, x_test, y_test


def _mnist1d(n_samples: int, seed: int) -> Arrays:
    from mnist1d.data import get_dataset_args, make_dataset

    args = get_dataset_args()
    args.num_samples = n_samples or 5000
    args.seed = seed
    state = np.random.get_state()  # mnist1d seeds numpy's global RNG; leave it as we found it
    try:
        d = make_dataset(args)
    finally:
        np.random.set_state(state)
    return d["x"], d["y"], d["x_test"], d["y_test"]


def _digits(n_samples: int, seed: int) -> Arrays:
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    x, y = load_digits(return_X_y=True)
    if n_samples and n_samples < len(y):
        x, _, y, _ = train_test_split(x, y, train_size=n_samples, stratify=y, random_state=seed)
    x_tr, x_te, y_tr, y_te = train_test_split(x, y, test_size=0.2, stratify=y, random_state=seed)
    return x_tr, y_tr, x_te, y_te


def _teacher(n_samples: int, seed: int) -> Arrays:
    """Teacher-student classification: a fixed random tanh MLP labels Gaussian inputs (10 classes, 20 features)."""
    n = n_samples or 6000
    rng = np.random.default_rng(seed)
    d_in, d_hidden, n_classes = 20, 32, 10
    w1 = rng.normal(0, 1 / np.sqrt(d_in), (d_in, d_hidden))
    w2 = rng.normal(0, 1 / np.sqrt(d_hidden), (d_hidden, n_classes))
    x = rng.normal(size=(n, d_in))
    y = np.argmax(np.tanh(x @ w1) @ w2, axis=1)
    n_test = n // 5
    return x[n_test:], y[n_test:], x[:n_test], y[:n_test]


BUILDERS: dict[str, Callable[[int, int], Arrays]] = {
    "mnist1d": _mnist1d,
    "digits": _digits,
    "teacher": _teacher,
}


def build_dataset(name: str, n_samples: int = 0, data_seed: int = 0, val_fraction: float = 0.2) -> Dataset:
    """Build ``name``; a ``val_fraction`` of the training split (chosen by ``data_seed``) becomes validation."""
    x, y, x_test, y_test = BUILDERS[name](n_samples, data_seed)
    x, y, x_test, y_test = (np.asarray(a) for a in (x, y, x_test, y_test))
    order = np.random.default_rng(data_seed + 1).permutation(len(y))
    n_val = int(round(len(y) * val_fraction))
    val, train = order[:n_val], order[n_val:]
    mean = x[train].mean(axis=0)
    std = x[train].std(axis=0) + 1e-8

    def xt(a):
        return torch.as_tensor((a - mean) / std, dtype=torch.float32)

    def yt(a):
        return torch.as_tensor(a, dtype=torch.long)

    return Dataset(name=name, x_train=xt(x[train]), y_train=yt(y[train]), x_val=xt(x[val]), y_val=yt(y[val]),
                   x_test=xt(x_test), y_test=yt(y_test), n_classes=int(max(y.max(), y_test.max()) + 1))


class DataCache:
    """Datasets built once per worker and kept on its device."""

    def __init__(self) -> None:
        self._data: dict[tuple, Dataset] = {}

    def get(self, name: str, n_samples: int, data_seed: int, device: torch.device | str = "cpu") -> Dataset:
        key = (name, n_samples, data_seed, str(device))
        if key not in self._data:
            self._data[key] = build_dataset(name, n_samples, data_seed).to(device)
        return self._data[key]
