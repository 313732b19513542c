"""Datasets, registered by name, split into train/val/test by ``data_seed``.

Synthetic and scikit-learn datasets are built locally. MNIST, Fashion-MNIST and
CIFAR-10 are read from their standard files in a data directory (see
``data_dir``), downloaded there from a public mirror when absent.

Each builder returns numpy arrays and says what they are (``Raw``): the task
(classification or regression), the shape of one example, and how inputs are
standardized. ``Dataset`` holds them as tensors on a device, inputs flattened
to ``(n, prod(input_shape))`` (models reshape them: see models.py). Statistics
come from the training split only. Regression targets are standardized too
(with the clean training targets' mean and std), so that losses, Huber's delta
and outlier sizes are in units of the target's std.

Corruption applies to the training split only, after the split, and is fixed
by ``data_seed``: ``label_noise`` sets that fraction of training labels to a
uniformly random *other* class; ``outlier_frac`` shifts that fraction of
training targets by ``sign * min(5 + 5|t_3|, 30)`` target stds (t_3: Student's
t with 3 degrees of freedom; median shift about 9 stds). The corrupted examples
are the first ones of one permutation, so a larger fraction corrupts a superset.
Validation and test stay clean. A worker builds each dataset once
(``DataCache``) and slices batches by index.
"""

from __future__ import annotations

import dataclasses
import gzip
import os
import pickle
import tarfile
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from claimbench.errors import UserError
from claimbench.workloads.registry import DATASETS

DATA_DIR_ENV = "CLAIMBENCH_DATA_DIR"
DOWNLOAD_TIMEOUT_S = 15


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


@dataclass(frozen=True)
class DataParams:
    """What a builder may read: the size, the seed, the sequence length, where the files are."""

    n_samples: int = 0
    seed: int = 0
    seq_len: int = 30
    data_dir: Path | None = None


@dataclass
class Raw:
    """A builder's output. ``standardize``: "feature" (each input feature), "channel"
    (each image channel over all its pixels) or "none"."""

    x: np.ndarray
    y: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    task: str
    input_shape: tuple[int, ...]
    standardize: str = "feature"


def data_dir(path: str | os.PathLike | None = None) -> Path:
    """The directory of dataset files: ``path``, else $CLAIMBENCH_DATA_DIR, else ~/.cache/claimbench/data."""
    return Path(path or os.environ.get(DATA_DIR_ENV) or "~/.cache/claimbench/data").expanduser()


# ---------------------------------------------------------------- synthetic and scikit-learn datasets

def _mnist1d(p: DataParams) -> Raw:
    from mnist1d.data import get_dataset_args, make_dataset

    args = get_dataset_args()
    args.num_samples = p.n_samples or 5000
    args.seed = p.seed
    state = np.random.get_state()  # mnist1d seeds numpy's global RNG; leave it as we found it
    try:
        d = make_dataset(args)
    finally:
        np.random.set_state(state)
    return Raw(d["x"], d["y"], d["x_test"], d["y_test"], "classification", (int(d["x"].shape[1]),))


def _digits(p: DataParams) -> Raw:
    """scikit-learn's 8x8 digits; one example is a 1x8x8 image (standardized per pixel, as an MLP expects)."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    x, y = load_digits(return_X_y=True)
    if p.n_samples and p.n_samples < len(y):
        x, _, y, _ = train_test_split(x, y, train_size=p.n_samples, stratify=y, random_state=p.seed)
    x_tr, x_te, y_tr, y_te = train_test_split(x, y, test_size=0.2, stratify=y, random_state=p.seed)
    return Raw(x_tr, y_tr, x_te, y_te, "classification", (1, 8, 8))


def _teacher(p: DataParams) -> Raw:
    """Teacher-student classification: a fixed random tanh MLP labels Gaussian inputs (10 classes, 20 features)."""
    n = p.n_samples or 6000
    rng = np.random.default_rng(p.seed)
    d_in, d_hidden, n_classes = 20, 32, 10
    w1 = rng.normal(0, 1 / np.sqrt(d_in), (d_in, d_hidden))
    w2 = rng.normal(0, 1 / np.sqrt(d_hidden), (d_hidden, n_classes))
    x = rng.normal(size=(n, d_in))
    y = np.argmax(np.tanh(x @ w1) @ w2, axis=1)
    n_test = n // 5
    return Raw(x[n_test:], y[n_test:], x[:n_test], y[:n_test], "classification", (d_in,))


def _regression(p: DataParams) -> Raw:
    """Synthetic regression: 20 Gaussian features; target = a fixed random linear teacher plus a mild
    nonlinearity (0.5 sin of a second projection, 0.3 x0*x1), plus Gaussian noise of std 0.2.
    The noise-free part has variance about 1.2, so the best reachable R^2 is about 0.97."""
    n = p.n_samples or 5000
    rng = np.random.default_rng(p.seed)
    d = 20
    w = rng.normal(0, 1 / np.sqrt(d), d)
    v = rng.normal(0, 1 / np.sqrt(d), d)
    x = rng.normal(size=(n, d))
    y = x @ w + 0.5 * np.sin(2 * (x @ v)) + 0.3 * x[:, 0] * x[:, 1] + rng.normal(0, 0.2, n)
    n_test = n // 5
    return Raw(x[n_test:], y[n_test:], x[:n_test], y[:n_test], "regression", (d,))


def _adding(p: DataParams) -> Raw:
    """The adding problem (Hochreiter & Schmidhuber 1997): ``seq_len`` steps of (value ~ U[0, 1], marker);
    one marker in the first half, one in the second; target = the sum of the two marked values.
    Predicting the mean (1.0) gives R^2 = 0; inputs are left as they are (not standardized)."""
    n, t = p.n_samples or 6000, p.seq_len
    if t < 2:
        raise ValueError(f"the adding problem needs seq_len >= 2, got {t}")
    rng = np.random.default_rng(p.seed)
    values = rng.uniform(0, 1, (n, t))
    first = rng.integers(0, t // 2, n)
    second = rng.integers(t // 2, t, n)
    markers = np.zeros((n, t))
    rows = np.arange(n)
    markers[rows, first] = 1.0
    markers[rows, second] = 1.0
    x = np.stack([values, markers], axis=2).reshape(n, 2 * t)
    y = values[rows, first] + values[rows, second]
    n_test = n // 5
    return Raw(x[n_test:], y[n_test:], x[:n_test], y[:n_test], "regression", (t, 2), standardize="none")


# ---------------------------------------------------------------- image files

MNIST_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
MIRRORS = {
    "mnist": ("https://ossci-datasets.s3.amazonaws.com/mnist/", "https://storage.googleapis.com/cvdf-datasets/mnist/"),
    "fashion_mnist": ("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",),
}
CIFAR_DIR = "cifar-10-batches-py"
CIFAR_FILES = tuple(f"data_batch_{i}" for i in range(1, 6)) + ("test_batch",)
CIFAR_URLS = ("https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",)


def _download(url: str, dest: Path, timeout: float = DOWNLOAD_TIMEOUT_S) -> None:
    """Fetch ``url`` into ``dest`` (written whole or not at all). Tests replace this function."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(dest.name + ".part")
    with urllib.request.urlopen(url, timeout=timeout) as response, open(tmp, "wb") as f:
        while chunk := response.read(1 << 20):
            f.write(chunk)
    tmp.replace(dest)


def _missing_files_error(name: str, folder: Path, files: tuple[str, ...], reason: str) -> UserError:
    return UserError(f"{name} files not found and the download failed ({reason}); expected {', '.join(files)}",
                     where=str(folder),
                     fix=f"download them into {folder}, or set {DATA_DIR_ENV} to a directory holding "
                         f"{folder.name}/ with them")


def _idx_path(folder: Path, base: str) -> Path | None:
    for candidate in (folder / f"{base}.gz", folder / base):
        if candidate.is_file():
            return candidate
    return None


def read_idx(path: Path) -> np.ndarray:
    """An IDX file (gzipped or not): magic 0x0000 <dtype 0x08 = ubyte> <ndim>, big-endian int32 dims, data."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        raw = f.read()
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise UserError(f"not an unsigned-byte IDX file (magic {raw[:4].hex()})", where=str(path),
                        fix="replace it with the original MNIST-format file")
    ndim = raw[3]
    dims = tuple(int(d) for d in np.frombuffer(raw, ">i4", count=ndim, offset=4))
    data = np.frombuffer(raw, np.uint8, offset=4 + 4 * ndim)
    if data.size != int(np.prod(dims)):
        raise UserError(f"IDX file holds {data.size} bytes of data, its header says {dims}", where=str(path),
                        fix="the file is truncated: download it again")
    return data.reshape(dims).copy()  # writable, for torch


def _idx_dataset(name: str) -> Callable[[DataParams], Raw]:
    def build(p: DataParams) -> Raw:
        folder = data_dir(p.data_dir) / name
        if any(_idx_path(folder, b) is None for b in MNIST_FILES):
            missing = [b for b in MNIST_FILES if _idx_path(folder, b) is None]
            try:
                for base in missing:
                    _download_any([m + base + ".gz" for m in MIRRORS[name]], folder / f"{base}.gz")
            except Exception as e:  # offline, or a mirror gone
                raise _missing_files_error(name, folder, tuple(f"{b}.gz" for b in MNIST_FILES),
                                           f"{type(e).__name__}: {e}") from None
        x, y, x_test, y_test = (read_idx(_idx_path(folder, b)) for b in MNIST_FILES)
        x, y = _subsample(x, y, p)
        return Raw(x.reshape(len(x), -1), y, x_test.reshape(len(x_test), -1), y_test, "classification",
                   (1, *x.shape[1:]), standardize="channel")

    return build


def _download_any(urls: list[str] | tuple[str, ...], dest: Path) -> None:
    errors = []
    for url in urls:
        try:
            _download(url, dest)
            return
        except Exception as e:
            errors.append(f"{url}: {e}")
    raise OSError("; ".join(errors))


class _ArrayUnpickler(pickle.Unpickler):
    """Loads the CIFAR batches (dicts of bytes, lists and numpy arrays) and nothing that runs other code."""

    ALLOWED = {("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
               ("numpy", "ndarray"), ("numpy", "dtype"), ("numpy.core.multiarray", "scalar"),
               ("numpy._core.multiarray", "scalar")}

    def find_class(self, module: str, name: str):
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name} from a CIFAR batch")
        return super().find_class(module, name)


def read_cifar_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """One CIFAR-10 python batch: (n, 3072) uint8 images (RGB planes of 32x32) and their labels."""
    with open(path, "rb") as f:
        d = _ArrayUnpickler(f, encoding="bytes").load()
    return np.asarray(d[b"data"], dtype=np.uint8).reshape(-1, 3 * 32 * 32), np.asarray(d[b"labels"], dtype=np.int64)


def _cifar10(p: DataParams) -> Raw:
    root = data_dir(p.data_dir)
    folder = root / CIFAR_DIR
    if not all((folder / f).is_file() for f in CIFAR_FILES):
        try:
            archive = root / "cifar-10-python.tar.gz"
            _download_any(CIFAR_URLS, archive)
            with tarfile.open(archive) as tar:
                tar.extractall(root, filter="data")
            archive.unlink()
        except Exception as e:
            raise _missing_files_error("cifar10", folder, CIFAR_FILES, f"{type(e).__name__}: {e}") from None
    parts = [read_cifar_batch(folder / f) for f in CIFAR_FILES[:5]]
    x, y = np.concatenate([a for a, _ in parts]), np.concatenate([b for _, b in parts])
    x_test, y_test = read_cifar_batch(folder / "test_batch")
    x, y = _subsample(x, y, p)
    return Raw(x, y, x_test, y_test, "classification", (3, 32, 32), standardize="channel")


def _subsample(x: np.ndarray, y: np.ndarray, p: DataParams) -> tuple[np.ndarray, np.ndarray]:
    """``n_samples`` training examples chosen by the seed (all when 0 or more than there are)."""
    if p.n_samples and p.n_samples < len(y):
        keep = np.sort(np.random.default_rng([p.seed, 3]).permutation(len(y))[:p.n_samples])
        return x[keep], y[keep]
    return x, y


_mnist = _idx_dataset("mnist")
_fashion_mnist = _idx_dataset("fashion_mnist")

#: Each built-in dataset's builder, from the one table (registry.DATASETS names them).
BUILDERS: dict[str, Callable[[DataParams], Raw]] = {d.name: globals()[d.builder.partition(":")[2]] for d in DATASETS}


# ---------------------------------------------------------------- building and corrupting

def build_dataset(name: str, n_samples: int = 0, data_seed: int = 0, val_fraction: float = 0.2, *,
                  seq_len: int = 30, label_noise: float = 0.0, outlier_frac: float = 0.0,
                  data_dir: str | os.PathLike | None = None) -> Dataset:
    """Build ``name``; a ``val_fraction`` of the training split (chosen by ``data_seed``) becomes validation;
    then corrupt the training split as asked (see the module docstring)."""
    raw = BUILDERS[name](DataParams(n_samples, data_seed, seq_len, Path(data_dir) if data_dir else None))
    x, y, x_test, y_test = (np.asarray(a) for a in (raw.x, raw.y, raw.x_test, raw.y_test))
    order = np.random.default_rng(data_seed + 1).permutation(len(y))
    n_val = int(round(len(y) * val_fraction))
    val, train = order[:n_val], order[n_val:]
    mean, std = _input_stats(x[train], raw.input_shape, raw.standardize)

    def xt(a):
        return torch.as_tensor(((a - mean) / std).astype(np.float32))

    if raw.task == "classification":
        n_out = int(max(y.max(), y_test.max()) + 1)

        def yt(a):
            return torch.as_tensor(a, dtype=torch.long)
    else:
        n_out = 1
        y_mean, y_std = float(y[train].mean()), float(y[train].std()) + 1e-8

        def yt(a):
            return torch.as_tensor((a - y_mean) / y_std, dtype=torch.float32)

    clean = Dataset(name=name, x_train=xt(x[train]), y_train=yt(y[train]), x_val=xt(x[val]), y_val=yt(y[val]),
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

    ``data_dir`` is where the image files are (default: ``data_dir()``, read once here).
    A dataset that failed to build fails again at once, without a second download attempt.
    """

    def __init__(self, data_dir_path: str | os.PathLike | None = None) -> None:
        self.data_dir = data_dir(data_dir_path)
        self._data: dict[tuple, Dataset] = {}
        self._errors: dict[tuple, Exception] = {}

    def get(self, name: str, n_samples: int, data_seed: int, device: torch.device | str = "cpu", *,
            seq_len: int = 30, label_noise: float = 0.0, outlier_frac: float = 0.0) -> Dataset:
        seq = seq_len if name == "adding" else 0  # seq_len shapes only the adding problem
        key = (name, n_samples, data_seed, seq, str(device))
        if key in self._errors:
            raise self._errors[key]
        if key not in self._data:
            try:
                self._data[key] = build_dataset(name, n_samples, data_seed, seq_len=seq_len,
                                                data_dir=self.data_dir).to(device)
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
        return self.get(spec.dataset, spec.n_samples, spec.data_seed, device, seq_len=spec.seq_len,
                        label_noise=spec.label_noise, outlier_frac=spec.outlier_frac)

    def workload_data(self, spec, device: torch.device | str = "cpu") -> Dataset:
        """A components workload's data (workloads/spec.py ``Data``), built once per value of its data
        parameters, n_samples and data_seed, kept on ``device``; then label noise or outliers as asked."""
        from claimbench.workloads import registry
        from claimbench.workloads.spec import Config

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
    from claimbench.workloads.spec import Data

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
