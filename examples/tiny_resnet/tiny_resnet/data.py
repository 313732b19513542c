"""scikit-learn's digits as (1, size, size) images: no download. Split into train/val/test by the data
seed (20% test, then 20% of the rest for validation), standardized with the training split's mean and
std; ``n_samples`` (0: all 1797) subsamples before the split, stratified."""

from __future__ import annotations

import random

import numpy as np
import torch
import torch.nn.functional as F


def load_digits_splits(size: int = 8, n_samples: int = 0, seed: int = 0) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    x, y = load_digits(return_X_y=True)
    if n_samples and n_samples < len(y):
        x, _, y, _ = train_test_split(x, y, train_size=n_samples, stratify=y, random_state=seed)
    x_rest, x_test, y_rest, y_test = train_test_split(x, y, test_size=0.2, stratify=y, random_state=seed)
    x_train, x_val, y_train, y_val = train_test_split(x_rest, y_rest, test_size=0.2, stratify=y_rest,
                                                      random_state=seed + 1)
    mean, std = x_train.mean(), x_train.std()

    def images(a: np.ndarray) -> torch.Tensor:
        t = torch.as_tensor((a - mean) / std, dtype=torch.float32).view(-1, 1, 8, 8)
        return F.interpolate(t, size=(size, size), mode="nearest") if size != 8 else t

    return {split: (images(a), torch.as_tensor(b, dtype=torch.long))
            for split, a, b in (("train", x_train, y_train), ("val", x_val, y_val), ("test", x_test, y_test))}


def random_shift(x: torch.Tensor, generator: torch.Generator, pad: int = 1) -> torch.Tensor:
    """Each image of a batch (N, C, H, W) shifted by up to ``pad`` pixels each way (zero padding, random crop)."""
    n, _, h, w = x.shape
    padded = F.pad(x, (pad, pad, pad, pad))
    dx = torch.randint(0, 2 * pad + 1, (n,), generator=generator).tolist()
    dy = torch.randint(0, 2 * pad + 1, (n,), generator=generator).tolist()
    return torch.stack([padded[i, :, dy[i]:dy[i] + h, dx[i]:dx[i] + w] for i in range(n)])


class ShiftedDigits(torch.utils.data.Dataset):
    """A split as a torch Dataset; with ``augment``, each item is shifted by up to one pixel each way
    (zero padding, random crop), drawn from its own seeded generator."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor, augment: bool = False, seed: int = 0):
        self.x, self.y, self.augment = x, y, augment
        self.padded = F.pad(x, (1, 1, 1, 1))
        self.rng = random.Random(seed)

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, i: int):
        if not self.augment:
            return self.x[i], self.y[i]
        h, w = self.x.shape[2:]
        dy, dx = self.rng.randrange(3), self.rng.randrange(3)
        return self.padded[i, :, dy:dy + h, dx:dx + w], self.y[i]
