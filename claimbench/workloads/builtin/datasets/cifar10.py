"""CIFAR-10: 50,000 training and 10,000 test colour images (3x32x32, 10 classes), read from the python
batches in ``<data_dir>/cifar-10-batches-py/`` (files.py), placed there by hand (never downloaded at run
time: the missing-files error gives the URL and the tar command). The batches are pickles: the reader
loads numpy arrays and nothing that runs other code."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np

from claimbench.workloads.builtin.datasets import BuiltinDataset, DataParams, Raw
from claimbench.workloads.builtin.files import data_dir, missing_files_error, subsample

CIFAR_DIR = "cifar-10-batches-py"
CIFAR_FILES = tuple(f"data_batch_{i}" for i in range(1, 6)) + ("test_batch",)
CIFAR_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"


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


def require(root: Path) -> None:
    """The missing-files error unless the batches are in ``<root>/cifar-10-batches-py/``."""
    folder = root / CIFAR_DIR
    if not all((folder / f).is_file() for f in CIFAR_FILES):
        raise missing_files_error("cifar10", folder, CIFAR_FILES,
                                  f"download {CIFAR_URL} and unpack it in {root} (tar -xzf "
                                  f"cifar-10-python.tar.gz -C {root}), which makes {CIFAR_DIR}/")


def build(p: DataParams) -> Raw:
    root = data_dir(p.data_dir)
    require(root)
    folder = root / CIFAR_DIR
    parts = [read_cifar_batch(folder / f) for f in CIFAR_FILES[:5]]
    x, y = np.concatenate([a for a, _ in parts]), np.concatenate([b for _, b in parts])
    x_test, y_test = read_cifar_batch(folder / "test_batch")
    x, y = subsample(x, y, p)
    return Raw(x, y, x_test, y_test, "classification", (3, 32, 32), standardize="channel")


DATASET = BuiltinDataset(
    name="cifar10", task="classification", shape=(3, 32, 32), n_outputs=10, build=build, default_n=50000,
    available=50000, image=True, n_test=lambda n: 0, require=require,  # a test file of its own
)
