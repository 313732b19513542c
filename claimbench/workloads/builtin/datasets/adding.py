"""The adding problem (Hochreiter & Schmidhuber 1997): ``seq_len`` steps of (value ~ U[0, 1], marker);
one marker in the first half, one in the second; target = the sum of the two marked values.
Predicting the mean (1.0) gives R^2 = 0; inputs are left as they are (not standardized). The first
fifth of the examples is the test split.

Its one setting beyond size and seed is ``seq_len`` (settings.py): it shapes the examples, (seq_len, 2),
and the data a worker keeps (one dataset per sequence length)."""

from __future__ import annotations

import numpy as np

from claimbench.workloads.builtin.datasets import BuiltinDataset, DataParams, Raw

DEFAULT_N = 6000


def build(p: DataParams) -> Raw:
    n, t = p.n_samples or DEFAULT_N, p.settings["seq_len"]
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


DATASET = BuiltinDataset(
    name="adding", task="regression", shape=lambda spec: (spec.seq_len, 2), n_outputs=1, build=build,
    default_n=DEFAULT_N, n_test=lambda n: n // 5, settings=("seq_len",),
)
