"""The built-in datasets (workloads/builtin/datasets): generated ones split by data_seed and standardized,
their sizes known without building them, dataset files (MNIST/Fashion-MNIST IDX, CIFAR-10 pickles) read
from tiny files in the real formats, the missing-files error (nothing is downloaded at run time: a socket
that is opened fails the test), and training-set corruption (label noise, outliers)."""

from __future__ import annotations

import gzip
import math
import pickle
import socket
import struct
from pathlib import Path

import numpy as np
import pytest
import torch

from claimbench.errors import UserError
from claimbench.train.single import train_trial
from claimbench.trial import TrialStatus
from claimbench.workloads.builtin import TrialSpec
from claimbench.workloads.data import DataCache, build_dataset
from claimbench.workloads.builtin.files import MNIST_FILES, read_idx
from claimbench.workloads.data import corrupted_indices
from claimbench.workloads.builtin import CHOICES, datasets, files, shapes
from claimbench.workloads.builtin.datasets import DataParams, adding

N_TRAIN, N_TEST = 60, 20


@pytest.fixture(autouse=True)
def offline(monkeypatch):
    """Every test here runs offline: opening a network connection is recorded and fails, as on a machine
    without network; the loaders must never try."""
    calls = []

    def no_network(*args, **kwargs):
        calls.append(args)
        raise OSError("network is unreachable")
    monkeypatch.setattr(socket, "create_connection", no_network)
    monkeypatch.setattr(socket.socket, "connect", no_network)
    return calls


def write_idx(path: Path, array: np.ndarray, compress: bool = True) -> None:
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    payload = header + array.astype(np.uint8).tobytes()
    if compress:
        with gzip.open(path.with_name(path.name + ".gz"), "wb") as f:
            f.write(payload)
    else:
        path.write_bytes(payload)


def labels(n: int) -> np.ndarray:
    return np.arange(n) % 10


def images(n: int, shape: tuple[int, ...], seed: int) -> np.ndarray:
    """Images whose brightness encodes the label, so that a short run can learn them."""
    rng = np.random.default_rng(seed)
    y = labels(n)
    base = (y * 25).reshape(n, *([1] * len(shape)))
    return np.clip(base + rng.integers(0, 20, (n, *shape)), 0, 255).astype(np.uint8)


def write_mnist(root: Path, name: str = "mnist", compress: bool = True) -> Path:
    folder = root / name
    folder.mkdir(parents=True)
    arrays = (images(N_TRAIN, (28, 28), 0), labels(N_TRAIN), images(N_TEST, (28, 28), 1), labels(N_TEST))
    for base, array in zip(MNIST_FILES, arrays):
        write_idx(folder / base, array, compress)
    return folder


def write_cifar(root: Path) -> Path:
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    per_batch = N_TRAIN // 5
    for i in range(1, 6):
        x = images(per_batch, (3 * 32 * 32,), i)
        with open(folder / f"data_batch_{i}", "wb") as f:
            pickle.dump({b"data": x, b"labels": labels(per_batch).tolist(), b"batch_label": b"x"}, f)
    with open(folder / "test_batch", "wb") as f:
        pickle.dump({b"data": images(N_TEST, (3 * 32 * 32,), 9), b"labels": labels(N_TEST).tolist()}, f)
    return folder


@pytest.mark.parametrize("name", ["mnist", "fashion_mnist"])
@pytest.mark.parametrize("compress", [True, False])
def test_idx_files_are_read(tmp_path, monkeypatch, offline, name, compress):
    write_mnist(tmp_path, name, compress)
    monkeypatch.setenv("CLAIMBENCH_DATA_DIR", str(tmp_path))
    d = build_dataset(name, data_seed=0)
    assert d.task == "classification" and d.input_shape == (1, 28, 28) and d.n_outputs == 10
    assert len(d.y_train) + len(d.y_val) == N_TRAIN and len(d.y_test) == N_TEST
    assert d.x_train.shape[1] == 28 * 28 and d.x_train.dtype == torch.float32
    assert torch.equal(d.y_test, torch.as_tensor(labels(N_TEST)))
    assert abs(float(d.x_train.mean())) < 0.05 and abs(float(d.x_train.std()) - 1) < 0.05  # per-channel standardized
    assert offline == []  # the files were there: no download attempted


def test_read_idx_checks_the_magic_and_the_size(tmp_path):
    write_idx(tmp_path / "a", np.zeros((2, 3, 3)), compress=False)
    assert read_idx(tmp_path / "a").shape == (2, 3, 3)
    (tmp_path / "bad").write_bytes(b"\x00\x00\x0d\x01" + struct.pack(">I", 1) + b"\x00\x00\x00\x00")
    with pytest.raises(UserError, match="IDX"):
        read_idx(tmp_path / "bad")
    (tmp_path / "short").write_bytes(struct.pack(">BBBB", 0, 0, 8, 1) + struct.pack(">I", 10) + b"\x01")
    with pytest.raises(UserError, match="truncated"):
        read_idx(tmp_path / "short")


def test_cifar_batches_are_read(tmp_path, monkeypatch):
    write_cifar(tmp_path)
    monkeypatch.setenv("CLAIMBENCH_DATA_DIR", str(tmp_path))
    d = build_dataset("cifar10")
    assert d.input_shape == (3, 32, 32) and d.n_outputs == 10
    assert len(d.y_train) + len(d.y_val) == N_TRAIN and len(d.y_test) == N_TEST
    assert d.x_train.shape[1] == 3 * 32 * 32


def test_cifar_reader_refuses_a_pickle_that_runs_code(tmp_path, monkeypatch):
    folder = write_cifar(tmp_path)

    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))
    with open(folder / "test_batch", "wb") as f:
        pickle.dump({b"data": Evil(), b"labels": []}, f)
    monkeypatch.setenv("CLAIMBENCH_DATA_DIR", str(tmp_path))
    with pytest.raises(pickle.UnpicklingError, match="refusing"):
        build_dataset("cifar10")


def test_n_samples_subsamples_the_training_set(tmp_path):
    write_mnist(tmp_path)
    d = build_dataset("mnist", n_samples=30, data_dir=tmp_path)
    assert len(d.y_train) + len(d.y_val) == 30 and len(d.y_test) == N_TEST


@pytest.mark.parametrize("name, model", [("mnist", "cnn"), ("fashion_mnist", "mlp"), ("cifar10", "cnn")])
def test_a_short_training_run_on_image_files(tmp_path, name, model):
    if name == "cifar10":
        write_cifar(tmp_path)
    else:
        write_mnist(tmp_path, name)
    spec = TrialSpec(dataset=name, model=model, depth=1, width=8, batch_size=8, lr=0.05, momentum=0.9, steps=12,
                     evals=2)
    rec = train_trial(spec, DataCache(tmp_path))
    assert rec.status is TrialStatus.COMPLETED, rec.error
    assert len(rec.curve) == 3 and "val_acc" in rec.metrics


@pytest.mark.parametrize("name, where, expected, source", [
    ("mnist", "mnist", "train-images-idx3-ubyte.gz", "https://ossci-datasets.s3.amazonaws.com/mnist/"),
    ("fashion_mnist", "fashion_mnist", "t10k-labels-idx1-ubyte.gz", "fashion-mnist"),
    ("cifar10", "cifar-10-batches-py", "data_batch_1", "cifar-10-python.tar.gz"),
])
def test_missing_files_error_is_one_line_naming_the_paths_where_to_get_them_and_the_fix(
        tmp_path, monkeypatch, offline, name, where, expected, source):
    monkeypatch.setenv("CLAIMBENCH_DATA_DIR", str(tmp_path / "data"))
    with pytest.raises(UserError) as err:
        build_dataset(name)
    text = str(err.value)
    assert "\n" not in text
    assert str(tmp_path / "data" / where / expected) in text and source in text
    assert "CLAIMBENCH_DATA_DIR" in text
    assert offline == [] and not (tmp_path / "data").exists()  # nothing fetched, nothing written


def test_cifar_error_gives_the_tar_command_that_makes_the_folder(tmp_path):
    with pytest.raises(UserError) as err:
        build_dataset("cifar10", data_dir=tmp_path)
    assert f"tar -xzf cifar-10-python.tar.gz -C {tmp_path}" in str(err.value)


def test_missing_files_error_survives_the_training_loop_as_one_line_and_is_not_retried(tmp_path, monkeypatch):
    cache = DataCache(tmp_path)
    spec = TrialSpec(dataset="mnist", model="cnn", steps=5)
    looks = []
    monkeypatch.setattr(files, "_idx_path", lambda folder, base: looks.append(base))  # each look finds nothing
    rec = train_trial(spec, cache)
    assert rec.status is TrialStatus.FAILED
    assert rec.error.startswith("UserError: ") and "\n" not in rec.error
    assert str(tmp_path / "mnist") in rec.error and "CLAIMBENCH_DATA_DIR" in rec.error
    tries = len(looks)
    again = train_trial(spec, cache)  # the same worker does not look for the files again
    assert again.status is TrialStatus.FAILED and tries > 0 and len(looks) == tries


def test_data_dir_defaults(monkeypatch):
    monkeypatch.delenv("CLAIMBENCH_DATA_DIR", raising=False)
    assert files.data_dir() == Path("~/.cache/claimbench/data").expanduser()
    monkeypatch.setenv("CLAIMBENCH_DATA_DIR", "/somewhere")
    assert files.data_dir() == Path("/somewhere") and files.data_dir("/else") == Path("/else")


SYNTHETIC = [d for d in CHOICES["dataset"] if d not in ("mnist", "fashion_mnist", "cifar10")  # files: above
             and datasets.get(d).task != "lm"]  # text corpora: test_corpora.py


@pytest.mark.parametrize("name", SYNTHETIC)
def test_generated_datasets_split_by_data_seed_and_are_standardized(name):
    a = build_dataset(name, n_samples=1000 if name != "digits" else 0, data_seed=0)
    b = build_dataset(name, n_samples=1000 if name != "digits" else 0, data_seed=0)
    c = build_dataset(name, n_samples=1000 if name != "digits" else 0, data_seed=1)
    assert torch.equal(a.x_val, b.x_val) and not torch.equal(a.x_val, c.x_val)
    spec = TrialSpec(steps=1, dataset=name)
    assert a.task == spec.task and (a.input_shape, a.n_outputs) == shapes.io_shape(spec)
    assert a.n_features == math.prod(a.input_shape)
    if a.task == "classification":
        assert a.n_classes == 10 and a.y_train.dtype == torch.long
    else:
        assert a.n_classes == 0 and a.y_train.dtype == torch.float32
        assert abs(float(a.y_train.mean())) < 0.1 and abs(float(a.y_train.std()) - 1) < 0.1  # standardized targets
    assert len(a.y_train) > len(a.y_val) > 0 and len(a.y_test) > 0
    if name != "adding":  # the adding problem keeps its raw (value, marker) inputs
        assert abs(float(a.x_train.mean())) < 0.1  # standardized on the training split
    assert torch.isfinite(a.x_test).all() and float(a.x_test.abs().max()) < 100  # constant features are not blown up


def test_the_training_split_is_known_without_building_the_data():
    for dataset, n in [("teacher", 300), ("regression", 501), ("digits", 0), ("digits", 400), ("adding", 250),
                       ("mnist1d", 500)]:
        spec = TrialSpec(steps=1, dataset=dataset, n_samples=n, seq_len=10)
        data = build_dataset(dataset, n, 0, seq_len=10)
        assert shapes.train_size(spec) == len(data.y_train), dataset
        assert shapes.io_shape(spec) == (data.input_shape, data.n_outputs)
        assert math.prod(shapes.input_shape(spec)) == data.x_train.shape[1]


# ---------------------------------------------------------------- corruption

def test_label_noise_corrupts_exactly_that_fraction_of_training_labels_only():
    clean = build_dataset("teacher", n_samples=1000, data_seed=3)
    noisy = build_dataset("teacher", n_samples=1000, data_seed=3, label_noise=0.3)
    changed = (clean.y_train != noisy.y_train)
    assert int(changed.sum()) == round(0.3 * len(clean.y_train))  # always another class
    assert torch.equal(clean.y_val, noisy.y_val) and torch.equal(clean.y_test, noisy.y_test)
    assert torch.equal(clean.x_train, noisy.x_train)
    # fixed by data_seed; a larger fraction corrupts a superset
    again = build_dataset("teacher", n_samples=1000, data_seed=3, label_noise=0.3)
    assert torch.equal(again.y_train, noisy.y_train)
    more = build_dataset("teacher", n_samples=1000, data_seed=3, label_noise=0.5)
    assert bool(((more.y_train != clean.y_train) | ~changed).all())
    # the new labels are spread over the other classes
    assert len(set(noisy.y_train[changed].tolist())) == 10


def test_outliers_only_in_training_targets():
    clean = build_dataset("regression", n_samples=1000, data_seed=2)
    dirty = build_dataset("regression", n_samples=1000, data_seed=2, outlier_frac=0.1)
    shift = (dirty.y_train - clean.y_train).abs()
    moved = shift > 1e-6
    assert int(moved.sum()) == round(0.1 * len(clean.y_train))
    assert float(shift[moved].min()) >= 5 - 1e-4 and float(shift[moved].max()) <= 30 + 1e-4  # in target stds
    assert float(shift[moved].median()) > 7
    assert torch.equal(clean.y_val, dirty.y_val) and torch.equal(clean.y_test, dirty.y_test)


def test_cache_builds_once_and_corrupts_a_copy():
    cache = DataCache()
    clean = cache.get("teacher", 500, 0)
    noisy = cache.get("teacher", 500, 0, label_noise=0.2)
    assert noisy.x_train is clean.x_train and noisy.y_train is not clean.y_train
    assert cache.get("teacher", 500, 0) is clean and cache.get("teacher", 500, 0, label_noise=0.2) is noisy
    spec = TrialSpec(steps=1, dataset="teacher", n_samples=500, label_noise=0.2)
    assert cache.for_spec(spec) is noisy


def test_corrupted_indices_are_nested():
    small, large = corrupted_indices(100, 0.1, 0, 1), corrupted_indices(100, 0.3, 0, 1)
    assert len(small) == 10 and len(large) == 30 and set(small) <= set(large)


def test_adding_problem_targets_are_the_sum_of_the_marked_values():
    d = build_dataset("adding", n_samples=200, seq_len=12, data_seed=0)
    raw = adding.build(DataParams(200, 0, settings={"seq_len": 12}))
    x = raw.x.reshape(-1, 12, 2)
    assert (x[:, :, 1].sum(1) == 2).all() and (x[:, :6, 1].sum(1) == 1).all()
    assert np.allclose((x[:, :, 0] * x[:, :, 1]).sum(1), raw.y)
    assert d.input_shape == (12, 2) and d.task == "regression"
