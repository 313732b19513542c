"""The text corpora for next-byte prediction (datasets pysource, shakespeare, tinystories; _corpus.py), at
the Raw (numpy) level: split by document, windows of seq_len + 1 bytes, n_samples drawn by the data seed
and refused beyond the corpus, the files a user places read from small files written here in the real
formats, the one-line missing-files error (and exit 2 from ``claimbench run``), and the shipped corpus's
content hash in the trial ids."""

from __future__ import annotations

import dataclasses
import tomllib

import numpy as np
import pytest

from claimbench.errors import UserError
from claimbench.limits import LimitError
from claimbench.suite import expand, parse_suite
from claimbench.workloads.builtin import TrialSpec, datasets
from claimbench.workloads.builtin.datasets import DataParams, _corpus, pysource, shakespeare, tinystories
from tests.conftest import assert_refused, run_cli, write
from tests.workloads import recipe_dataset


def params(seq_len: int, n: int = 0, seed: int = 0, data_dir=None) -> DataParams:
    return DataParams(n, seed, data_dir, {"seq_len": seq_len})


def stream_of(x: np.ndarray, y: np.ndarray) -> bytes:
    """The bytes the windows were cut from: each window's x and its last y byte."""
    return b"".join(bytes(a) + bytes([int(b[-1])]) for a, b in zip(x, y))


def check_lm(raw, seq_len: int) -> None:
    assert raw.task == "lm" and raw.input_shape == (seq_len,) and raw.standardize == "none"
    for x, y in ((raw.x, raw.y), (raw.x_val, raw.y_val), (raw.x_test, raw.y_test)):
        assert len(x) > 0 and x.shape == y.shape == (len(x), seq_len)
        assert x.dtype == np.uint8 and y.dtype == np.int64
        assert np.array_equal(x[:, 1:], y[:, :-1])  # y is x shifted by one: the next byte


# ---------------------------------------------------------------- pysource: the shipped corpus

def test_pysource_is_the_torch_sources_split_by_file_in_windows():
    streams, digest = pysource.corpus()
    raw = pysource.build(params(32))
    check_lm(raw, 32)
    # every window, in order: each split is its files concatenated, cut without overlap or gap
    for split, (x, y) in {"train": (raw.x, raw.y), "val": (raw.x_val, raw.y_val), "test": (raw.x_test, raw.y_test)}.items():
        cut = stream_of(x, y)
        assert streams[split].startswith(cut) and len(streams[split]) - len(cut) < 33
    # a file lies whole in the split its path names, and in no other
    root = pysource.torch_dir()
    for rel in ("nn/modules/linear.py", "optim/adam.py", "autograd/function.py"):
        text = (root / rel).read_bytes()
        home = _corpus.split_of(rel.encode())
        assert [s for s in _corpus.SPLITS if text in streams[s]] == [home]
    assert len(digest) == 16 and pysource.content_hash() == digest
    assert pysource.train_windows(TrialSpec(steps=1, seq_len=32)) == len(raw.x)


def test_pysource_takes_whole_files_in_path_order_within_its_bound_and_hashes_their_bytes(tmp_path, monkeypatch):
    for rel, text in {"nn/a.py": "import a\n" * 50, "nn/b.py": "x = 1\n" * 50, "optim/c.py": "y = 2\n" * 50,
                      "nn/skip.txt": "not python\n"}.items():
        write(tmp_path / rel, text)
    streams, first = pysource._corpus(str(tmp_path))
    assert sum(map(len, streams.values())) == 450 + 300 + 300  # the three .py files
    monkeypatch.setattr(pysource, "MAX_BYTES", 800)
    pysource._corpus.cache_clear()
    bounded, _ = pysource._corpus(str(tmp_path))
    assert sum(map(len, bounded.values())) == 450 + 300  # nn/a.py, nn/b.py; optim/c.py passes the bound
    monkeypatch.setattr(pysource, "MAX_BYTES", 4 * 2**20)
    (tmp_path / "nn/b.py").write_text("x = 3\n" * 50)
    pysource._corpus.cache_clear()
    assert pysource._corpus(str(tmp_path))[1] != first  # other bytes, another hash
    pysource._corpus.cache_clear()


def test_n_samples_draws_training_windows_by_the_data_seed_and_is_refused_beyond_the_corpus():
    full = pysource.build(params(64))
    a, b, c = (pysource.build(params(64, 500, seed)) for seed in (0, 0, 1))
    assert len(a.x) == 500 and np.array_equal(a.x, b.x) and not np.array_equal(a.x, c.x)
    rows = {bytes(r) for r in full.x}
    assert all(bytes(r) in rows for r in a.x)
    assert np.array_equal(a.x_val, full.x_val) and np.array_equal(a.x_test, full.x_test)  # never subsampled
    with pytest.raises(LimitError) as err:
        pysource.build(params(64, len(full.x) + 1))
    text = str(err.value)
    assert "\n" not in text and f"n_samples = {len(full.x) + 1}" in text and f"n_samples <= {len(full.x)}" in text


def test_a_split_too_small_for_one_window_is_one_line():
    with pytest.raises(UserError, match="holds no window"):
        _corpus.corpus_raw("tiny", {"train": b"a" * 100, "val": b"b" * 10, "test": b"c" * 100}, params(20))


def test_split_of_is_fixed_by_the_key_and_near_its_shares():
    keys = [f"doc{i}".encode() for i in range(4000)]
    splits = [_corpus.split_of(k) for k in keys]
    assert splits == [_corpus.split_of(k) for k in keys]
    share = {s: splits.count(s) / len(keys) for s in _corpus.SPLITS}
    assert abs(share["train"] - 0.90) < 0.03 and abs(share["val"] - 0.05) < 0.02 and abs(share["test"] - 0.05) < 0.02


# ---------------------------------------------------------------- files a user places

SPEECH = "{name}:\nWhat say you, {i}? I pray you speak {i} times,\nand {word} the rest.\n"


def write_shakespeare(root) -> list[str]:
    speeches = [SPEECH.format(name=("FIRST CITIZEN", "MENENIUS", "ALL")[i % 3], i=i, word=("mark", "heed")[i % 2])
                for i in range(300)]
    write(root / "tinyshakespeare" / "input.txt", "\n".join(speeches))  # blocks separated by a blank line
    return speeches


def test_shakespeare_reads_input_txt_split_by_speech(tmp_path):
    speeches = write_shakespeare(tmp_path)
    raw = shakespeare.build(params(16, data_dir=tmp_path))
    check_lm(raw, 16)
    streams = shakespeare.read(tmp_path / "tinyshakespeare" / "input.txt")
    for speech in speeches[:40]:
        block = speech.strip().encode()
        assert [s for s in _corpus.SPLITS if block in streams[s]] == [_corpus.split_of(block)]
    assert stream_of(raw.x_test, raw.y_test) == streams["test"][:len(raw.x_test) * 17]
    assert sum(map(len, streams.values())) == sum(len(s.strip()) + 2 for s in speeches)


def write_tinystories(root, n_train: int = 400, n_valid: int = 60) -> None:
    story = "Once upon a time, {who} number {i} found a {thing}. It was happy. The end."
    train = "\n<|endoftext|>\n".join(story.format(who="Lily", i=i, thing="ball") for i in range(n_train))
    valid = "\n<|endoftext|>\n".join(story.format(who="Tom", i=i, thing="stick") for i in range(n_valid))
    write(root / "tinystories" / "TinyStories-train.txt", train + "\n")
    write(root / "tinystories" / "TinyStories-valid.txt", valid + "\n")


def test_tinystories_trains_on_the_train_file_and_tests_on_the_valid_file(tmp_path):
    write_tinystories(tmp_path)
    raw = tinystories.build(params(24, data_dir=tmp_path))
    check_lm(raw, 24)
    train, val, test = (stream_of(x, y) for x, y in ((raw.x, raw.y), (raw.x_val, raw.y_val), (raw.x_test, raw.y_test)))
    assert b"Lily" in train and b"Tom" not in train and b"Lily" in val and b"Tom" not in val
    assert b"Tom" in test and b"Lily" not in test
    assert b"<|endoftext|>" in train  # stories keep the line that ends them
    assert abs(len(raw.x_test) - len(raw.x_val)) <= 2  # the valid file is read as far as the validation split


def test_tinystories_reads_the_train_file_only_as_far_as_n_samples_needs(tmp_path):
    write_tinystories(tmp_path)
    small = tinystories.build(params(24, 50, data_dir=tmp_path))
    assert len(small.x) == 50
    whole = tinystories.build(params(24, data_dir=tmp_path))
    assert len(small.x_val) < len(whole.x_val)  # fewer stories read, so fewer fell to validation
    with pytest.raises(LimitError, match=f"n_samples <= {len(whole.x)}"):
        tinystories.build(params(24, len(whole.x) + 1, data_dir=tmp_path))


@pytest.mark.parametrize("name, where, expected, source", [
    ("shakespeare", "tinyshakespeare", "input.txt", shakespeare.URL),
    ("tinystories", "tinystories", "TinyStories-valid.txt", tinystories.URL + "TinyStories-train.txt"),
])
def test_a_missing_corpus_is_one_line_naming_the_path_where_to_get_it_and_the_fix(tmp_path, monkeypatch, name,
                                                                                   where, expected, source):
    monkeypatch.setenv("CLAIMBENCH_DATA_DIR", str(tmp_path / "data"))
    with pytest.raises(UserError) as err:
        datasets.get(name).build(params(16))
    text = str(err.value)
    assert "\n" not in text and str(tmp_path / "data" / where / expected) in text
    assert source in text and "CLAIMBENCH_DATA_DIR" in text
    assert not (tmp_path / "data").exists()


def test_run_stops_with_exit_2_before_training_when_a_data_file_is_missing(tmp_path):
    suite = write(tmp_path / "cifar.toml", """
        [suite]
        name = "cifar"
        seeds = 1

        [workload]
        dataset = "cifar10"
        model = "cnn"
        depth = 1
        width = 4

        [budget]
        steps = 2
        """)
    data = tmp_path / "data"
    done = run_cli("run", str(suite), "--executor", "local", "--out", str(tmp_path / "run"),
                   env={"CLAIMBENCH_DATA_DIR": str(data)})
    assert_refused(done.returncode, done.stderr, str(data / "cifar-10-batches-py" / "data_batch_1"),
                   "cifar-10-python.tar.gz", "CLAIMBENCH_DATA_DIR")
    assert not (tmp_path / "run").exists()


# ---------------------------------------------------------------- the content hash in the trial ids

SUITE = """
[suite]
name = "hashed"
seeds = 1

[workload]
dataset = "blobs"
n_samples = 100
depth = 1
width = 8

[budget]
steps = 4
"""


def test_a_datasets_content_hash_is_part_of_its_trials_ids(monkeypatch):
    digest = ["aaaa"]
    hashed = dataclasses.replace(recipe_dataset.DATASET, content_hash=lambda: digest[0])
    datasets.register(recipe_dataset.DATASET)
    try:
        plain = expand(parse_suite(tomllib.loads(SUITE), "hashed.toml", "smoke"))
        assert plain[0].data_hash == "" and "data_hash" not in plain[0].canonical_json()  # ids as before
        datasets.unregister("blobs")
        datasets.register(hashed)
        first = expand(parse_suite(tomllib.loads(SUITE), "hashed.toml", "smoke"))
        digest[0] = "bbbb"
        second = expand(parse_suite(tomllib.loads(SUITE), "hashed.toml", "smoke"))
    finally:
        datasets.unregister("blobs")
    assert first[0].data_hash == "aaaa" and second[0].data_hash == "bbbb"
    assert len({plain[0].trial_id, first[0].trial_id, second[0].trial_id}) == 3
    assert datasets.content_hash("pysource") == pysource.content_hash() and datasets.content_hash("teacher") == ""


def test_a_node_whose_corpus_differs_from_the_planned_one_refuses_to_train_in_one_line():
    from claimbench.workloads.data import DataCache

    digest = ["aaaa"]
    hashed = dataclasses.replace(recipe_dataset.DATASET, content_hash=lambda: digest[0])
    datasets.register(hashed)
    try:
        spec = expand(parse_suite(tomllib.loads(SUITE), "hashed.toml", "smoke"))[0]
        assert DataCache().for_spec(spec).x_train.shape[0] > 0  # the same bytes: it trains
        digest[0] = "bbbb"  # another node, other files
        with pytest.raises(UserError, match="hashes to bbbb, the run planned aaaa.*fix: install the same"):
            DataCache().for_spec(spec)
    finally:
        datasets.unregister("blobs")
