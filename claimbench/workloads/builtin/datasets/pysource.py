"""pysource: the pinned torch's own Python sources as a byte-level text corpus (task "lm"), the default
corpus: it ships with the installation, so it needs no download and holds the same bytes for everyone
on the pin.

Documents are the ``.py`` files of the hand-written subpackages ``SUBPACKAGES`` of the installed torch,
in the order of their relative paths (``nn/modules/linear.py``), taken while they fit in ``MAX_BYTES``
(a few MB: built in well under a second). A file's split is fixed by its relative path (_corpus.py:
90/5/5 by document); each split is its files concatenated, cut into windows of ``seq_len + 1`` bytes.
``n_samples`` (0: all) training windows are drawn by the data seed.

The corpus's ``content_hash`` (the sha256 of every file's path and bytes) is part of each trial's id
(``data_hash``): a torch with other sources gives other trials. The corpus is read once per process.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
from pathlib import Path
from typing import Any

from claimbench.errors import UserError
from claimbench.workloads.builtin.datasets import BuiltinDataset, DataParams, Raw
from claimbench.workloads.builtin.datasets._corpus import VOCAB, corpus_raw, n_windows, split_streams

#: The subpackages of torch whose sources make the corpus: library code written by hand (not generated).
SUBPACKAGES = ("autograd", "distributions", "nn", "optim")
#: At most this many bytes of source, whole files in path order.
MAX_BYTES = 4 * 2**20


def torch_dir() -> Path:
    """The installed torch package's folder, found without importing torch."""
    found = importlib.util.find_spec("torch")
    if found is None or not found.submodule_search_locations:
        raise UserError("the pysource corpus is the installed torch's source files, and torch is not installed",
                        where="dataset pysource", fix="install claimbench with its pinned torch")
    return Path(list(found.submodule_search_locations)[0])


@functools.lru_cache(maxsize=4)
def _corpus(root: str) -> tuple[dict[str, bytes], str]:
    """The split streams of the corpus under torch folder ``root`` and its content hash."""
    base = Path(root)
    paths = sorted((p.relative_to(base).as_posix(), p) for sub in SUBPACKAGES for p in (base / sub).rglob("*.py"))
    documents, total, digest = [], 0, hashlib.sha256()
    for rel, path in paths:
        text = path.read_bytes()
        if total + len(text) > MAX_BYTES:
            break
        total += len(text)
        documents.append((rel.encode(), text))
        digest.update(rel.encode() + b"\0" + text + b"\0")
    return split_streams(documents), digest.hexdigest()[:16]


def corpus() -> tuple[dict[str, bytes], str]:
    """(the split streams, the content hash) of the installed torch's corpus, read once per process."""
    return _corpus(str(torch_dir()))


def content_hash() -> str:
    return corpus()[1]


def train_windows(spec: Any) -> int:
    """The training windows at the spec's ``seq_len``: the size checks' count before anything is built."""
    return n_windows(len(corpus()[0]["train"]), spec.seq_len)


def build(p: DataParams) -> Raw:
    return corpus_raw("pysource", corpus()[0], p)


DATASET = BuiltinDataset(
    name="pysource", task="lm", shape=lambda spec: (spec.seq_len,), n_outputs=VOCAB, build=build,
    default_n=train_windows, n_test=lambda n: 0,  # test documents of its own
    settings=("seq_len",), own_validation=True, content_hash=content_hash,
)
