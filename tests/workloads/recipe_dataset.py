"""A dataset written as a built-in one is: this file could be claimbench/workloads/builtin/datasets/blobs.py
unchanged (the package would find it); here a test registers it (tests/workloads/test_recipes.py).

Two Gaussian blobs in 8 dimensions, one per class, 1.5 standard deviations apart on every axis."""

from __future__ import annotations

import numpy as np

from claimbench.workloads.builtin.datasets import BuiltinDataset, DataParams, Raw

D, DEFAULT_N = 8, 400


def build(p: DataParams) -> Raw:
    n = p.n_samples or DEFAULT_N
    rng = np.random.default_rng(p.seed)
    y = rng.integers(0, 2, n)
    x = rng.normal(size=(n, D)) + 1.5 * y[:, None]
    n_test = n // 5
    return Raw(x[n_test:], y[n_test:], x[:n_test], y[:n_test], "classification", (D,))


DATASET = BuiltinDataset(name="blobs", task="classification", shape=(D,), n_outputs=2, build=build,
                         default_n=DEFAULT_N, n_test=lambda n: n // 5)
