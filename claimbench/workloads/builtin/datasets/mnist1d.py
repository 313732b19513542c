"""MNIST-1D (Greydanus 2020): 40-feature one-dimensional digit templates, shifted, scaled and noised;
10 classes. The ``mnist1d`` package generates them; 20% become the test split."""

from __future__ import annotations

import numpy as np

from claimbench.workloads.builtin.datasets import BuiltinDataset, DataParams, Raw

DEFAULT_N = 5000


def build(p: DataParams) -> Raw:
    from mnist1d.data import get_dataset_args, make_dataset  # an optional dependency, needed only here

    args = get_dataset_args()
    args.num_samples = p.n_samples or DEFAULT_N
    args.seed = p.seed
    state = np.random.get_state()  # mnist1d seeds numpy's global RNG; leave it as we found it
    try:
        d = make_dataset(args)
    finally:
        np.random.set_state(state)
    return Raw(d["x"], d["y"], d["x_test"], d["y_test"], "classification", (int(d["x"].shape[1]),))


DATASET = BuiltinDataset(
    name="mnist1d", task="classification", shape=(40,), n_outputs=10, build=build, default_n=DEFAULT_N,
    n_test=lambda n: n - int(n * (1 - 0.2)),  # mnist1d's own train_split of 0.8
)
