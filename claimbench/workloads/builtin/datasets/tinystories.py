"""tinystories: TinyStories (Eldan & Li 2023), short stories in simple English, read from its two text
files in ``<data_dir>/tinystories/`` (files.py), ``TinyStories-train.txt`` (about 1.9 GB) and
``TinyStories-valid.txt``, for next-byte prediction (task "lm"). Placed there by hand: nothing is
downloaded at run time.

Documents are the stories, which the files separate by ``<|endoftext|>``. The training and validation
splits come from the train file, 95/5 by story (a story's split is fixed by its bytes, _corpus.py); the
test split comes from the valid file. The train file is read from its start only as far as needed: its
first stories until the training split holds ``n_samples`` windows (0: ``DEFAULT_BYTES`` of text) and the
validation split its 5% share of that, and the valid file's first stories until the test split holds as
many windows as the validation split.
Each split is its stories in file order, each followed by the ``<|endoftext|>`` line that ended it, cut
into windows of ``seq_len + 1`` bytes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator

from claimbench.workloads.builtin.datasets import BuiltinDataset, DataParams, Raw
from claimbench.workloads.builtin.datasets._corpus import VOCAB, corpus_raw, n_windows, split_of
from claimbench.workloads.builtin.files import data_dir, missing_files_error

FOLDER = "tinystories"
TRAIN_FILE, VALID_FILE = "TinyStories-train.txt", "TinyStories-valid.txt"
URL = "https://huggingface.co/datasets/roneneldan/TinyStories/resolve/main/"
END = b"<|endoftext|>"
#: Train / validation percent of the train file's stories.
TRAIN_VAL = (95, 5)
#: The training text when n_samples is 0: the first stories of the train file up to this many bytes.
DEFAULT_BYTES = 16 * 2**20
_CHUNK = 2**20


def stories(path: Path) -> Iterator[bytes]:
    """The stories of a TinyStories file, in order, read a chunk at a time (whitespace around each stripped)."""
    with open(path, "rb") as f:
        rest = b""
        while chunk := f.read(_CHUNK):
            parts = (rest + chunk).split(END)
            rest = parts.pop()
            yield from (s.strip() for s in parts if s.strip())
        if rest.strip():
            yield rest.strip()


def default_windows(spec: Any) -> int:
    """The training windows when n_samples is 0, at the spec's ``seq_len``."""
    return n_windows(DEFAULT_BYTES, spec.seq_len)


def read(folder: Path, n_train: int, seq_len: int) -> dict[str, bytes]:
    """The split streams: the train file's first stories until the training split holds ``n_train``
    windows of ``seq_len + 1`` bytes and the validation split its share of that, and the valid file's first
    stories until the test split holds as many windows as the validation split."""
    n_val = max(1, n_train * TRAIN_VAL[1] // TRAIN_VAL[0])  # the validation windows its share of n_train gives
    parts: dict[str, list[bytes]] = {"train": [], "val": [], "test": []}
    size = {"train": 0, "val": 0, "test": 0}
    for story in stories(folder / TRAIN_FILE):
        split = split_of(story, TRAIN_VAL)
        parts[split].append(story + b"\n" + END + b"\n")
        size[split] += len(parts[split][-1])
        if n_windows(size["train"], seq_len) >= n_train and n_windows(size["val"], seq_len) >= n_val:
            break
    for story in stories(folder / VALID_FILE):
        if n_windows(size["test"], seq_len) >= max(1, n_windows(size["val"], seq_len)):
            break
        parts["test"].append(story + b"\n" + END + b"\n")
        size["test"] += len(parts["test"][-1])
    return {split: b"".join(texts) for split, texts in parts.items()}


def require(root: Path) -> None:
    """The missing-files error unless both files are in ``<root>/tinystories/``."""
    folder = root / FOLDER
    if not all((folder / f).is_file() for f in (TRAIN_FILE, VALID_FILE)):
        raise missing_files_error("tinystories", folder, (TRAIN_FILE, VALID_FILE),
                                  f"download {URL}{TRAIN_FILE} and {URL}{VALID_FILE} into {folder}/ (mkdir -p "
                                  f"{folder}; cd {folder}; curl -LO {URL}{TRAIN_FILE}; curl -LO {URL}{VALID_FILE})")


def build(p: DataParams) -> Raw:
    root = data_dir(p.data_dir)
    require(root)
    folder = root / FOLDER
    seq_len = int(p.settings["seq_len"])
    default = n_windows(DEFAULT_BYTES, seq_len)
    return corpus_raw("tinystories", read(folder, p.n_samples or default, seq_len), p, default_n=default)


DATASET = BuiltinDataset(
    name="tinystories", task="lm", shape=lambda spec: (spec.seq_len,), n_outputs=VOCAB, build=build,
    default_n=default_windows, n_test=lambda n: 0, settings=("seq_len",), own_validation=True, require=require,  # test stories of its own
)
