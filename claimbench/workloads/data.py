"""Data on a device: the ``Dataset`` an engine trains on, built once per worker (``DataCache``) and
sliced into batches by index.

A built-in dataset (workloads/builtin/datasets: one module each) gives numpy arrays and says what they
are (a ``Raw``): the task, the shape of one example, and how inputs are standardized. ``build_dataset``
splits a validation part off its training examples (chosen by ``data_seed``; a builder may give its own,
``Raw.x_val``, as a corpus split by document does), standardizes, and holds
them as tensors, inputs flattened to ``(n, prod(input_shape))`` (models reshape them). Statistics come
from the training split only. Regression targets are standardized too (with the clean training
targets' mean and std), so that losses, Huber's delta and outlier sizes are in units of the target's
std. Task "lm" keeps inputs and targets as long byte tokens, unstandardized. Another workload's data (workloads/spec.py ``Data``) become a ``Dataset`` through ``as_dataset``.

Corruption applies to the training split only, after the split, and is fixed
by ``data_seed``: ``label_noise`` sets that fraction of training labels to a
uniformly random *other* class; ``outlier_frac`` shifts that fraction of
training targets by ``sign * min(5 + 5|t_3|, 30)`` target stds (t_3: Student's
t with 3 degrees of freedom; median shift about 9 stds). The corrupted examples
are the first ones of one permutation, so a larger fraction corrupts a superset.
Validation and test stay clean.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from claimbench.errors import UserError
from claimbench.workloads import registry
from claimbench.workloads.builtin import datasets
from claimbench.workloads.builtin.datasets import DataParams
from claimbench.workloads.builtin.files import data_dir
from claimbench.workloads.settings import FIELDS
from claimbench.workloads.spec import Config, Data


@dataclass
class Dataset:
    name: str
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_val: torch.Tensor
    y_val: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    task: str  # "classification" (y: long class indices) | "regression" (y: float targets, standardized)
    #            | "lm" (x and y: (n, seq_len) long byte tokens, y the next byte at each position)
    input_shape: tuple[int, ...]  # one example: (features,), (channels, height, width) or (steps, features)
    n_outputs: int  # classes, or 1 for a scalar regression target

    @property
    def n_classes(self) -> int:
        """Classes of a classification dataset; 0 for regression."""
        return self.n_outputs if self.task == "classification" else 0

    @property
    def n_features(self) -> int:
        return int(self.x_train.shape[1])

    def to(self, device: torch.device | str) -> "Dataset":
        moved = {k: (v.to(device) if isinstance(v, torch.Tensor) else v) for k, v in self.__dict__.items()}
        return Dataset(**moved)


# ---------------------------------------------------------------- building and corrupting

def build_dataset(name: str, n_samples: int = 0, data_seed: int = 0, val_fraction: float = 0.2, *,
                  label_noise: float = 0.0, outlier_frac: float = 0.0, data_dir: str | os.PathLike | None = None,
                  **settings: Any) -> Dataset:
    """Build the built-in dataset ``name``; a ``val_fraction`` of the training split (chosen by ``data_seed``)
    becomes validation; then corrupt the training split as asked (see the module docstring). ``settings``:
    values of the dataset's own settings (e.g. the adding problem's ``seq_len``; their defaults otherwise)."""
    info = datasets.get(name)
    own = {key: settings.get(key, FIELDS[key].default) for key in info.settings}
    raw = info.build(DataParams(n_samples, data_seed, Path(data_dir) if data_dir else None, own))
    x, y, x_test, y_test = (np.asarray(a) for a in (raw.x, raw.y, raw.x_test, raw.y_test))
    if raw.x_val is not None:  # the builder's own validation split (a corpus: by document)
        x_train, y_train, x_val, y_val = x, y, np.asarray(raw.x_val), np.asarray(raw.y_val)
    else:
        order = np.random.default_rng(data_seed + 1).permutation(len(y))
        n_val = int(round(len(y) * val_fraction))
        val, train = order[:n_val], order[n_val:]
        x_train, y_train, x_val, y_val = x[train], y[train], x[val], y[val]
    if raw.task == "lm":  # byte tokens in and out: long indices, never standardized
        def tokens(a):
            return torch.as_tensor(a.astype(np.int64))

        clean = Dataset(name=name, x_train=tokens(x_train), y_train=tokens(y_train), x_val=tokens(x_val),
                        y_val=tokens(y_val), x_test=tokens(x_test), y_test=tokens(y_test), task="lm",
                        input_shape=tuple(raw.input_shape), n_outputs=info.n_outputs)
        return corrupt(clean, label_noise, outlier_frac, data_seed)
    mean, std = _input_stats(x_train, raw.input_shape, raw.standardize)

    def xt(a):
        return torch.as_tensor(((a - mean) / std).astype(np.float32))

    if raw.task == "classification":
        n_out = int(max(y.max(), y_test.max()) + 1)

        def yt(a):
            return torch.as_tensor(a, dtype=torch.long)
    else:
        n_out = 1
        y_mean, y_std = float(y_train.mean()), float(y_train.std()) + 1e-8

        def yt(a):
            return torch.as_tensor((a - y_mean) / y_std, dtype=torch.float32)

    clean = Dataset(name=name, x_train=xt(x_train), y_train=yt(y_train), x_val=xt(x_val), y_val=yt(y_val),
                    x_test=xt(x_test), y_test=yt(y_test), task=raw.task, input_shape=tuple(raw.input_shape),
                    n_outputs=n_out)
    return corrupt(clean, label_noise, outlier_frac, data_seed)


def corrupt(data: Dataset, label_noise: float, outlier_frac: float, data_seed: int) -> Dataset:
    """``data`` with its training labels or targets corrupted (a copy; validation and test untouched)."""
    if label_noise <= 0 and outlier_frac <= 0:
        return data
    if label_noise > 0 and data.task != "classification":
        raise ValueError(f"label_noise applies to classification, but {data.name} is {data.task}")
    if outlier_frac > 0 and data.task != "regression":
        raise ValueError(f"outlier_frac applies to regression, but {data.name} is {data.task}")
    y = data.y_train.cpu().numpy()
    y = _noisy_labels(y, data.n_outputs, label_noise, data_seed) if label_noise > 0 \
        else _with_outliers(y.astype(np.float64), outlier_frac, data_seed).astype(np.float32)
    return dataclasses.replace(data, y_train=torch.as_tensor(y).to(data.y_train.device))


def _input_stats(x: np.ndarray, shape: tuple[int, ...], mode: str) -> tuple[np.ndarray, np.ndarray]:
    """Mean and std to standardize with (broadcastable against flattened examples)."""
    if mode == "none":
        return np.zeros(x.shape[1]), np.ones(x.shape[1])
    if mode == "feature":  # a feature constant in training (an always-blank pixel) is centred, not scaled
        std = x.std(axis=0)
        return x.mean(axis=0), np.where(std > 1e-8, std, 1.0)
    # channel: one mean and std per image channel, over all its pixels (in float64, without a float copy)
    channels = x.reshape(len(x), shape[0], -1)
    mean = np.array([channels[:, c].mean(dtype=np.float64) for c in range(shape[0])])
    std = np.array([channels[:, c].std(dtype=np.float64) for c in range(shape[0])]) + 1e-8
    per_pixel = int(np.prod(shape[1:]))
    return np.repeat(mean, per_pixel), np.repeat(std, per_pixel)


def corrupted_indices(n: int, fraction: float, data_seed: int, salt: int) -> np.ndarray:
    """The first ``round(fraction * n)`` of a permutation fixed by (data_seed, salt)."""
    k = int(round(fraction * n))
    return np.random.default_rng([data_seed, salt]).permutation(n)[:k]


def _noisy_labels(y: np.ndarray, n_classes: int, fraction: float, data_seed: int) -> np.ndarray:
    if fraction <= 0:
        return y
    y = y.copy()
    idx = corrupted_indices(len(y), fraction, data_seed, salt=101)
    shift = np.random.default_rng([data_seed, 102]).integers(1, n_classes, len(y))  # never 0: another class
    y[idx] = (y[idx] + shift[idx]) % n_classes
    return y


def _with_outliers(y: np.ndarray, fraction: float, data_seed: int) -> np.ndarray:
    """``y`` in target-std units; the chosen fraction shifted by sign * min(5 + 5|t_3|, 30)."""
    if fraction <= 0:
        return y
    y = y.copy()
    idx = corrupted_indices(len(y), fraction, data_seed, salt=201)
    rng = np.random.default_rng([data_seed, 202])
    sign = rng.choice([-1.0, 1.0], len(y))
    size = np.minimum(5 + 5 * np.abs(rng.standard_t(3, len(y))), 30)
    y[idx] += sign[idx] * size[idx]
    return y


class DataCache:
    """Datasets built once per worker and kept on its device.

    ``data_dir`` is where the image files are (default: ``files.data_dir()``, read once here).
    A dataset that failed to build fails again at once, without a second attempt.
    """

    def __init__(self, data_dir_path: str | os.PathLike | None = None) -> None:
        self.data_dir = data_dir(data_dir_path)
        self._data: dict[tuple, Dataset] = {}
        self._errors: dict[tuple, Exception] = {}

    def get(self, name: str, n_samples: int, data_seed: int, device: torch.device | str = "cpu", *,
            label_noise: float = 0.0, outlier_frac: float = 0.0, **settings: Any) -> Dataset:
        """The built-in dataset ``name``; ``settings``: values of its own settings (build_dataset), which
        alone of the spec's other settings make another dataset."""
        own = tuple((key, settings.get(key, FIELDS[key].default)) for key in datasets.get(name).settings)
        key = (name, n_samples, data_seed, own, str(device))
        if key in self._errors:
            raise self._errors[key]
        if key not in self._data:
            try:
                self._data[key] = build_dataset(name, n_samples, data_seed, data_dir=self.data_dir,
                                                **dict(own)).to(device)
            except UserError as e:
                self._errors[key] = e
                raise
        if label_noise <= 0 and outlier_frac <= 0:
            return self._data[key]
        noisy_key = (*key, label_noise, outlier_frac)
        if noisy_key not in self._data:
            self._data[noisy_key] = corrupt(self._data[key], label_noise, outlier_frac, data_seed)
        return self._data[noisy_key]

    def for_spec(self, spec, device: torch.device | str = "cpu") -> Dataset:
        """The dataset a TrialSpec trains on: a built-in one, or its workload's (``workload_data``)."""
        if not spec.builtin:
            return self.workload_data(spec, device)
        own = {key: getattr(spec, key) for key in datasets.get(spec.dataset).settings}
        here = datasets.content_hash(spec.dataset) if spec.data_hash else ""
        if here != spec.data_hash:
            raise UserError(f"dataset {spec.dataset} on this machine hashes to {here}, "
                            f"the run planned {spec.data_hash}", where=f"trial {spec.trial_id}",
                            fix="install the same pinned packages (the corpus is their files) on every node")
        return self.get(spec.dataset, spec.n_samples, spec.data_seed, device, label_noise=spec.label_noise,
                        outlier_frac=spec.outlier_frac, **own)

    def workload_data(self, spec, device: torch.device | str = "cpu") -> Dataset:
        """A components workload's data (workloads/spec.py ``Data``), built once per value of its data
        parameters, n_samples and data_seed, kept on ``device``; then label noise or outliers as asked."""
        workload = registry.get(spec.workload)
        params = spec.params
        data_params = tuple(sorted((p.name, params.get(p.name, p.default)) for p in workload.params if p.data))
        key = ("workload", spec.workload, spec.code, data_params, spec.n_samples, spec.data_seed, str(device))
        if key not in self._data:
            raw = workload.data(Config(spec, params))
            self._data[key] = as_dataset(raw, spec.workload, workload.task).to(device)
        data = self._data[key]
        if spec.label_noise <= 0 and spec.outlier_frac <= 0:
            return data
        noisy_key = (*key, spec.label_noise, spec.outlier_frac)
        if noisy_key not in self._data:
            self._data[noisy_key] = corrupt(data, spec.label_noise, spec.outlier_frac, spec.data_seed)
        return self._data[noisy_key]


def as_dataset(raw, name: str, task: str) -> Dataset:
    """A workload's ``Data`` as a Dataset; ValueError naming what breaks the contract (workloads/spec.py)."""
    if not isinstance(raw, Data):
        raise ValueError(f"workload {name!r}: data() must return claimbench.workloads.spec.Data, "
                         f"got {type(raw).__name__}")
    splits = {}
    for split in ("train", "val", "test"):
        x, y = getattr(raw, f"x_{split}"), getattr(raw, f"y_{split}")
        if not (isinstance(x, torch.Tensor) and isinstance(y, torch.Tensor)) or len(x) != len(y) or not len(y):
            raise ValueError(f"workload {name!r}: data() split {split} needs tensors x and y of the same, "
                             f"non-zero length")
        if task == "classification" and y.dtype != torch.long:
            raise ValueError(f"workload {name!r}: classification targets y_{split} must be class indices "
                             f"(torch.long), got {y.dtype}")
        splits[split] = (x.float() if not x.is_floating_point() else x,
                         y.float() if task == "regression" else y)
    return Dataset(name=name, x_train=splits["train"][0], y_train=splits["train"][1], x_val=splits["val"][0],
                   y_val=splits["val"][1], x_test=splits["test"][0], y_test=splits["test"][1], task=task,
                   input_shape=tuple(splits["train"][0].shape[1:]), n_outputs=int(raw.n_outputs))
