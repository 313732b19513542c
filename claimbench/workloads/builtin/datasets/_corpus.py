"""Text corpora for next-byte prediction (task "lm"): the rules every corpus dataset shares.

- **Split by document**, never by character: a document's split is fixed by the sha256 of its key (a file's
  relative path, or a speech's or a story's own bytes, so that a repeated text never lies on both sides),
  ``SPLIT`` percent train / validation / test (``split_of``).
- **Windows**: each split is the concatenation of its documents, in the corpus's order, cut into
  non-overlapping windows of ``seq_len + 1`` bytes; ``x`` is a window's first ``seq_len`` bytes (uint8
  tokens), ``y`` the same shifted by one (int64: the next byte at each position). A last, shorter piece is
  dropped.
- **Size**: ``n_samples`` (0: the corpus's default) is the number of training windows, drawn by the data
  seed (files.subsample); more than the corpus holds is refused in one line (files.check_available).

Torch-free (numpy only).
"""

from __future__ import annotations

import dataclasses
import hashlib
from typing import Iterable

import numpy as np

from claimbench.errors import UserError
from claimbench.workloads.builtin.files import check_available, subsample
from claimbench.workloads.builtin.raw import DataParams, Raw

#: Percent of the documents in the training, validation and test splits.
SPLIT = (90, 5, 5)
#: The splits, in ``SPLIT``'s order.
SPLITS = ("train", "val", "test")
#: Every corpus is bytes: 256 tokens.
VOCAB = 256


def split_of(key: bytes, percent: tuple[int, ...] = SPLIT) -> str:
    """The split of the document whose key is ``key``: its sha256 as a number in [0, 100), against ``percent``."""
    bucket = int.from_bytes(hashlib.sha256(key).digest()[:8], "big") % 100
    edge = 0
    for name, share in zip(SPLITS, percent):
        edge += share
        if bucket < edge:
            return name
    return SPLITS[len(percent) - 1]


def n_windows(n_bytes: int, seq_len: int) -> int:
    """The windows of ``seq_len + 1`` bytes in a split of ``n_bytes`` bytes."""
    return n_bytes // (seq_len + 1)


def windows(stream: bytes, seq_len: int) -> tuple[np.ndarray, np.ndarray]:
    """``stream`` cut into non-overlapping windows of ``seq_len + 1`` bytes: x (n, seq_len) uint8 and
    y (n, seq_len) int64, the next byte of each position."""
    n = n_windows(len(stream), seq_len)
    cut = np.frombuffer(stream, np.uint8, count=n * (seq_len + 1)).reshape(n, seq_len + 1)
    return cut[:, :-1].copy(), cut[:, 1:].astype(np.int64)


def corpus_raw(name: str, streams: dict[str, bytes], p: DataParams, default_n: int = 0) -> Raw:
    """A corpus's ``Raw`` from its three split streams (``SPLITS``: the documents of each, concatenated).

    ``n_samples`` training windows drawn by the data seed; 0 takes ``default_n`` of them, or all when
    ``default_n`` is 0. Validation and test are every window of their split."""
    seq_len = int(p.settings["seq_len"])
    cut = {}
    for split in SPLITS:
        if n_windows(len(streams[split]), seq_len) == 0:
            raise UserError(f"{name}'s {split} split ({len(streams[split])} bytes) holds no window of seq_len + 1 = "
                            f"{seq_len + 1} bytes", where=f"dataset {name}: seq_len",
                            fix="use a smaller seq_len, or a larger corpus")
        cut[split] = windows(streams[split], seq_len)
    x, y = cut["train"]
    check_available(name, p.n_samples, len(x), f"dataset {name} at seq_len {seq_len}: n_samples",
                    f"training windows of {seq_len + 1} bytes")
    x, y = subsample(x, y, dataclasses.replace(p, n_samples=p.n_samples or default_n))
    (x_val, y_val), (x_test, y_test) = cut["val"], cut["test"]
    return Raw(x, y, x_test, y_test, task="lm", input_shape=(seq_len,), standardize="none", x_val=x_val, y_val=y_val)


def split_streams(documents: Iterable[tuple[bytes, bytes]], separator: bytes = b"",
                  percent: tuple[int, ...] = SPLIT) -> dict[str, bytes]:
    """The three split streams of ``documents``, (key, text) pairs in the corpus's order: each text goes
    to ``split_of(key)`` and is followed by ``separator`` there."""
    parts: dict[str, list[bytes]] = {split: [] for split in SPLITS}
    for key, text in documents:
        parts[split_of(key, percent)].append(text + separator)
    return {split: b"".join(texts) for split, texts in parts.items()}
