"""scikit-learn's 8x8 handwritten digits (1,797 images, 10 classes); one example is a 1x8x8 image,
standardized per pixel (as an MLP expects). A stratified 20% becomes the test split."""

from __future__ import annotations

import math

from claimbench.workloads.builtin.datasets import BuiltinDataset, DataParams, Raw


def build(p: DataParams) -> Raw:
    from sklearn.datasets import load_digits  # scikit-learn loads when the dataset is built
    from sklearn.model_selection import train_test_split

    x, y = load_digits(return_X_y=True)
    if p.n_samples and p.n_samples < len(y):
        x, _, y, _ = train_test_split(x, y, train_size=p.n_samples, stratify=y, random_state=p.seed)
    x_tr, x_te, y_tr, y_te = train_test_split(x, y, test_size=0.2, stratify=y, random_state=p.seed)
    return Raw(x_tr, y_tr, x_te, y_te, "classification", (1, 8, 8))


DATASET = BuiltinDataset(
    name="digits", task="classification", shape=(1, 8, 8), n_outputs=10, build=build, default_n=1797,
    available=1797, image=True,
    n_test=lambda n: math.ceil(n * 0.2),  # scikit-learn's test_size rounds up
)
