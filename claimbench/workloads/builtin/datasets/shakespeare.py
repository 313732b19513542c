"""shakespeare: tiny-shakespeare (40,000 lines of Shakespeare's plays, 1,115,394 bytes), as distributed in
one plain-text file, ``input.txt``, read from ``<data_dir>/tinyshakespeare/input.txt`` (files.py) for
next-byte prediction (task "lm"). Placed there by hand: nothing is downloaded at run time.

Documents are the blocks the file separates by blank lines (a speaker's name and speech); a block's
split is fixed by its bytes (_corpus.py: 90/5/5 by document); each split is its blocks in file order,
each followed by the blank line that separated it, cut into windows of ``seq_len + 1`` bytes.
``n_samples`` (0: all) training windows are drawn by the data seed.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from claimbench.workloads.builtin.datasets import BuiltinDataset, DataParams, Raw
from claimbench.workloads.builtin.datasets._corpus import SPLIT, VOCAB, corpus_raw, n_windows, split_streams
from claimbench.workloads.builtin.files import data_dir, missing_files_error

FOLDER, FILE = "tinyshakespeare", "input.txt"
URL = "https://raw.githubusercontent.com/karpathy/char-rnn/master/data/tinyshakespeare/input.txt"
#: The size of the file as distributed: the size checks' estimate before it is read (the builder counts).
DISTRIBUTED_BYTES = 1115394


def read(path: Path) -> dict[str, bytes]:
    """The split streams of a tiny-shakespeare file."""
    text = path.read_bytes().replace(b"\r\n", b"\n")
    blocks = [b.strip(b"\n") for b in re.split(rb"\n[ \t]*\n", text) if b.strip()]
    return split_streams(((b, b) for b in blocks), separator=b"\n\n")


def require(root: Path) -> None:
    """The missing-files error unless ``<root>/tinyshakespeare/input.txt`` is there."""
    folder = root / FOLDER
    if not (folder / FILE).is_file():
        raise missing_files_error("shakespeare", folder, (FILE,),
                                  f"download {URL} into {folder}/ (mkdir -p {folder}; curl -o {folder / FILE} {URL})")


def build(p: DataParams) -> Raw:
    root = data_dir(p.data_dir)
    require(root)
    return corpus_raw("shakespeare", read(root / FOLDER / FILE), p)


def train_windows(spec: Any) -> int:
    """The training windows of the distributed file at the spec's ``seq_len``, for the size checks."""
    return n_windows(DISTRIBUTED_BYTES * SPLIT[0] // 100, spec.seq_len)


DATASET = BuiltinDataset(
    name="shakespeare", task="lm", shape=lambda spec: (spec.seq_len,), n_outputs=VOCAB, build=build,
    default_n=train_windows, n_test=lambda n: 0, settings=("seq_len",), own_validation=True, require=require,  # test documents of its own
)
