"""Teacher-student classification: a fixed random tanh MLP labels Gaussian inputs (10 classes, 20
features); the first fifth of the examples is the test split."""

from __future__ import annotations

import numpy as np

from claimbench.workloads.builtin.datasets import BuiltinDataset, DataParams, Raw

D_IN, D_HIDDEN, N_CLASSES, DEFAULT_N = 20, 32, 10, 6000


def build(p: DataParams) -> Raw:
    n = p.n_samples or DEFAULT_N
    rng = np.random.default_rng(p.seed)
    w1 = rng.normal(0, 1 / np.sqrt(D_IN), (D_IN, D_HIDDEN))
    w2 = rng.normal(0, 1 / np.sqrt(D_HIDDEN), (D_HIDDEN, N_CLASSES))
    x = rng.normal(size=(n, D_IN))
    y = np.argmax(np.tanh(x @ w1) @ w2, axis=1)
    n_test = n // 5
    return Raw(x[n_test:], y[n_test:], x[:n_test], y[:n_test], "classification", (D_IN,))


DATASET = BuiltinDataset(
    name="teacher", task="classification", shape=(D_IN,), n_outputs=N_CLASSES, build=build, default_n=DEFAULT_N,
    n_test=lambda n: n // 5,
)
