"""Fashion-MNIST: 60,000 training and 10,000 test images of clothing (1x28x28, 10 classes), in MNIST's
IDX format in ``<data_dir>/fashion_mnist/`` (files.py), placed there by hand: the missing-files
error names the files and where to get them."""

from __future__ import annotations

from claimbench.workloads.builtin.datasets import BuiltinDataset
from claimbench.workloads.builtin.files import idx_dataset, idx_require

#: Where the four files are published.
URL = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"

DATASET = BuiltinDataset(
    name="fashion_mnist", task="classification", shape=(1, 28, 28), n_outputs=10,
    build=idx_dataset("fashion_mnist", URL),
    require=idx_require("fashion_mnist", URL), default_n=60000, available=60000, image=True,
    n_test=lambda n: 0,  # a test file of its own
)
