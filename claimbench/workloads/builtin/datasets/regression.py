"""Synthetic regression: 20 Gaussian features; target = a fixed random linear teacher plus a mild
nonlinearity (0.5 sin of a second projection, 0.3 x0*x1), plus Gaussian noise of std 0.2.
The noise-free part has variance about 1.2, so the best reachable R^2 is about 0.97. The first fifth
of the examples is the test split."""

from __future__ import annotations

import numpy as np

from claimbench.workloads.builtin.datasets import BuiltinDataset, DataParams, Raw

D, DEFAULT_N = 20, 5000


def build(p: DataParams) -> Raw:
    n = p.n_samples or DEFAULT_N
    rng = np.random.default_rng(p.seed)
    w = rng.normal(0, 1 / np.sqrt(D), D)
    v = rng.normal(0, 1 / np.sqrt(D), D)
    x = rng.normal(size=(n, D))
    y = x @ w + 0.5 * np.sin(2 * (x @ v)) + 0.3 * x[:, 0] * x[:, 1] + rng.normal(0, 0.2, n)
    n_test = n // 5
    return Raw(x[n_test:], y[n_test:], x[:n_test], y[:n_test], "regression", (D,))


DATASET = BuiltinDataset(
    name="regression", task="regression", shape=(D,), n_outputs=1, build=build, default_n=DEFAULT_N,
    n_test=lambda n: n // 5,
)
