"""Dataset files: where they live, the one error for a missing file, and the IDX format of MNIST-like
datasets.

Datasets read from files (MNIST, Fashion-MNIST, CIFAR-10, the text corpora a user has) find them in a
data directory (``data_dir``: $CLAIMBENCH_DATA_DIR, else ~/.cache/claimbench/data). Nothing is
downloaded at run time: a missing file is a one-line error naming the path it was looked for at, where
to get it and where to put it (``missing_files_error``). Torch-free (numpy only).
"""

from __future__ import annotations

import gzip
import os
from pathlib import Path
from typing import Callable

import numpy as np

from claimbench.errors import UserError
from claimbench.limits import LimitError
from claimbench.workloads.builtin.raw import DataParams, Raw

DATA_DIR_ENV = "CLAIMBENCH_DATA_DIR"
#: The four files of an MNIST-like dataset (train images and labels, test images and labels), gzipped or not.
MNIST_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")


def data_dir(path: str | os.PathLike | None = None) -> Path:
    """The directory of dataset files: ``path``, else $CLAIMBENCH_DATA_DIR, else ~/.cache/claimbench/data."""
    return Path(path or os.environ.get(DATA_DIR_ENV) or "~/.cache/claimbench/data").expanduser()


def missing_files_error(name: str, folder: Path, files: tuple[str, ...], get: str) -> UserError:
    """The one-line error of a dataset whose files are not in ``folder``: the path, the files expected there,
    ``get`` (how to obtain them: a URL and the command that unpacks them) and where else they may lie."""
    return UserError(f"{name} files not found: expected {', '.join(str(folder / f) for f in files)}",
                     where=str(folder),
                     fix=f"{get}; or set {DATA_DIR_ENV} to a directory holding {folder.name}/ with them "
                         f"(claimbench never downloads at run time)")


def check_available(name: str, n_samples: int, available: int, where: str, what: str = "training examples") -> None:
    """Refuse ``n_samples`` beyond the ``available`` training examples of dataset ``name`` (one line)."""
    if n_samples > available:
        raise LimitError(f"n_samples = {n_samples} is more than the {available} {what} {name} has", where=where,
                         fix=f"set n_samples <= {available} (0: all of them)")


def subsample(x: np.ndarray, y: np.ndarray, p: DataParams) -> tuple[np.ndarray, np.ndarray]:
    """``n_samples`` training examples chosen by the seed (all when 0 or more than there are)."""
    if p.n_samples and p.n_samples < len(y):
        keep = np.sort(np.random.default_rng([p.seed, 3]).permutation(len(y))[:p.n_samples])
        return x[keep], y[keep]
    return x, y


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


def idx_require(name: str, url: str) -> Callable[[Path], None]:
    """The files check of an MNIST-like dataset: ``MNIST_FILES`` (gzipped or not) in ``<root>/<name>/``, else
    the missing-files error; ``url``: the folder they are published in."""
    def require(root: Path) -> None:
        folder = root / name
        if any(_idx_path(folder, b) is None for b in MNIST_FILES):
            raise missing_files_error(name, folder, tuple(f"{b}.gz" for b in MNIST_FILES),
                                      f"download the four files from {url} into {folder}/ (mkdir -p {folder}; "
                                      f"cd {folder}; for f in {' '.join(b + '.gz' for b in MNIST_FILES)}; "
                                      f"do curl -O {url}$f; done)")

    return require


def idx_dataset(name: str, url: str) -> Callable[[DataParams], Raw]:
    """The builder of an MNIST-like dataset: ``MNIST_FILES`` in ``<data_dir>/<name>/`` (``idx_require``)."""
    require = idx_require(name, url)

    def build(p: DataParams) -> Raw:
        folder = data_dir(p.data_dir) / name
        require(folder.parent)
        x, y, x_test, y_test = (read_idx(_idx_path(folder, b)) for b in MNIST_FILES)
        x, y = subsample(x, y, p)
        return Raw(x.reshape(len(x), -1), y, x_test.reshape(len(x_test), -1), y_test, "classification",
                   (1, *x.shape[1:]), standardize="channel")

    return build
