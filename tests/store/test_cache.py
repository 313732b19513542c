"""The shared trial cache (--cache DIR|URL, CLAIMBENCH_CACHE): a second run in a fresh run dir trains nothing;
a tampered record is not trusted; fsspec URLs work, an S3 bucket included (a moto server the test starts)."""

from __future__ import annotations

import json

import pytest

from claimbench.api import evaluate_run, run_suite
from claimbench.errors import UserError
from claimbench.store.cache import TrialCache, open_cache
from claimbench.suite import load_suite
from tests.conftest import TINY_SUITE

pytestmark = pytest.mark.usefixtures("one_thread")


def test_a_fresh_run_dir_with_the_cache_trains_nothing_and_gets_the_same_records(write_suite, tmp_path):
    suite = load_suite(write_suite(TINY_SUITE), "default")
    cache = str(tmp_path / "cache")
    first = run_suite(suite, tmp_path / "a", executor="local", progress=False, cache=cache)
    again = run_suite(suite, tmp_path / "b", executor="local", progress=False, cache=cache)
    assert first.trained == first.total and again.trained == 0 and again.from_cache == again.total
    a, b = (evaluate_run(tmp_path / d).frame.set_index("trial_id").sort_index() for d in "ab")
    assert a["test_acc"].equals(b["test_acc"]) and list(a.index) == list(b.index)


def test_a_tampered_cache_record_is_not_trusted_and_the_trial_retrains(write_suite, tmp_path):
    suite = load_suite(write_suite(TINY_SUITE), "default")
    cache = tmp_path / "cache"
    run_suite(suite, tmp_path / "a", executor="local", progress=False, cache=str(cache))
    victim = sorted(cache.rglob("*.json"))[0]
    data = json.loads(victim.read_text())
    data["metrics"]["test_acc"] = 1.0  # a better number than the trial earned: the digest no longer matches
    victim.write_text(json.dumps(data))
    again = run_suite(suite, tmp_path / "b", executor="local", progress=False, cache=str(cache))
    assert again.trained == 1 and again.from_cache == again.total - 1


def test_the_environment_variable_names_the_cache_and_a_bad_url_is_one_line(tmp_path, monkeypatch):
    monkeypatch.setenv("CLAIMBENCH_CACHE", str(tmp_path / "env-cache"))
    assert open_cache(None).root.endswith("env-cache")
    monkeypatch.delenv("CLAIMBENCH_CACHE")
    assert open_cache(None) is None
    with pytest.raises(UserError, match="cannot open the trial cache"):
        TrialCache("nosuchprotocol://x/y")


def test_an_s3_bucket_through_fsspec(write_suite, tmp_path, monkeypatch):
    pytest.importorskip("s3fs")
    server_mod = pytest.importorskip("moto.server")
    import boto3

    server = server_mod.ThreadedMotoServer(ip_address="127.0.0.1", port=0)
    server.start()
    try:
        host, port = server.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        for key, value in (("AWS_ACCESS_KEY_ID", "testing"), ("AWS_SECRET_ACCESS_KEY", "testing"),
                           ("AWS_DEFAULT_REGION", "us-east-1"), ("AWS_ENDPOINT_URL", endpoint)):
            monkeypatch.setenv(key, value)
        import fsspec.config

        monkeypatch.setitem(fsspec.config.conf, "s3", {"endpoint_url": endpoint})  # as FSSPEC_S3_ENDPOINT_URL would
        boto3.client("s3", endpoint_url=endpoint).create_bucket(Bucket="cb-cache")
        suite = load_suite(write_suite(TINY_SUITE), "smoke")
        first = run_suite(suite, tmp_path / "a", executor="local", progress=False, cache="s3://cb-cache/ci")
        again = run_suite(suite, tmp_path / "b", executor="local", progress=False, cache="s3://cb-cache/ci")
        assert first.trained == first.total > 0 and again.trained == 0 and again.from_cache == again.total
    finally:
        server.stop()
