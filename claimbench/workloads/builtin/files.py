"""Dataset files: where they live, how they are downloaded, and the IDX format of MNIST-like datasets.

Datasets read from files (MNIST, Fashion-MNIST, CIFAR-10) find them in a data directory (``data_dir``),
and download them there from a public mirror when absent; offline, the error names the folder, the files
and the fix on one line. Torch-free (numpy only).
"""

from __future__ import annotations

import gzip
import os
import urllib.request
from pathlib import Path
from typing import Callable

import numpy as np

from claimbench.errors import UserError
from claimbench.workloads.builtin.raw import DataParams, Raw

DATA_DIR_ENV = "CLAIMBENCH_DATA_DIR"
DOWNLOAD_TIMEOUT_S = 15
#: The four files of an MNIST-like dataset (train images and labels, test images and labels), gzipped or not.
MNIST_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")


def data_dir(path: str | os.PathLike | None = None) -> Path:
    """The directory of dataset files: ``path``, else $CLAIMBENCH_DATA_DIR, else ~/.cache/claimbench/data."""
    return Path(path or os.environ.get(DATA_DIR_ENV) or "~/.cache/claimbench/data").expanduser()


def _download(url: str, dest: Path, timeout: float = DOWNLOAD_TIMEOUT_S) -> None:
    """Fetch ``url`` into ``dest`` (written whole or not at all). Tests replace this function."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(dest.name + ".part")
    with urllib.request.urlopen(url, timeout=timeout) as response, open(tmp, "wb") as f:
        while chunk := response.read(1 << 20):
            f.write(chunk)
    tmp.replace(dest)


def download_any(urls: list[str] | tuple[str, ...], dest: Path) -> None:
    """Fetch ``dest`` from the first of ``urls`` that answers; OSError naming every failure."""
    errors = []
    for url in urls:
        try:
            _download(url, dest)
            return
        except Exception as e:
            errors.append(f"{url}: {e}")
    raise OSError("; ".join(errors))


def missing_files_error(name: str, folder: Path, files: tuple[str, ...], reason: str) -> UserError:
    return UserError(f"{name} files not found and the download failed ({reason}); expected {', '.join(files)}",
                     where=str(folder),
                     fix=f"download them into {folder}, or set {DATA_DIR_ENV} to a directory holding "
                         f"{folder.name}/ with them")


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


def idx_dataset(name: str, mirrors: tuple[str, ...]) -> Callable[[DataParams], Raw]:
    """The builder of an MNIST-like dataset: ``MNIST_FILES`` in ``<data_dir>/<name>/``, downloaded from the
    first of ``mirrors`` (URL prefixes) that answers when absent."""
    def build(p: DataParams) -> Raw:
        folder = data_dir(p.data_dir) / name
        if any(_idx_path(folder, b) is None for b in MNIST_FILES):
            missing = [b for b in MNIST_FILES if _idx_path(folder, b) is None]
            try:
                for base in missing:
                    download_any([m + base + ".gz" for m in mirrors], folder / f"{base}.gz")
            except Exception as e:  # offline, or a mirror gone
                raise missing_files_error(name, folder, tuple(f"{b}.gz" for b in MNIST_FILES),
                                          f"{type(e).__name__}: {e}") from None
        x, y, x_test, y_test = (read_idx(_idx_path(folder, b)) for b in MNIST_FILES)
        x, y = subsample(x, y, p)
        return Raw(x.reshape(len(x), -1), y, x_test.reshape(len(x_test), -1), y_test, "classification",
                   (1, *x.shape[1:]), standardize="channel")

    return build
