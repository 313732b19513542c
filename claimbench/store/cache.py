"""The shared trial cache: records by trial id, across run dirs and CI runners.

``--cache DIR`` (or ``CLAIMBENCH_CACHE``) names a local folder or any fsspec URL (``s3://bucket/prefix``,
``gs://...``, ``memory://...``). A record lives at ``<root>/<id[:2]>/<id>.json``, sealed with the same digest
as in a run dir (``records.record_digest``). A run reads the cache before training: a pending trial whose
record is there and verifies (its file name, its spec's hash and its digest, ``records.record_problem``)
is copied into the run dir instead of trained; a record that fails verification is ignored, never trusted,
and the trial trains. Every final record a run trains is written back. The trial id hashes the spec and the
code fingerprint, so a cache never serves a record of other code.
"""

from __future__ import annotations

import json
import os
import uuid
from typing import Any, Iterable

from claimbench.errors import StoreError
from claimbench.store.records import DIGEST_KEY, MAX_RECORD_BYTES, plain_id, record_digest, record_problem
from claimbench.trial import TrialRecord, TrialStatus

ENV = "CLAIMBENCH_CACHE"
FIX = "pass --cache with a folder or an fsspec URL this machine can read and write (e.g. .claimbench-cache)"


class TrialCache:
    """Records by trial id at ``url``: ``get`` the verified ones, ``put`` final ones."""

    def __init__(self, url: str) -> None:
        import fsspec  # the object-store backends load only when a cache is used

        self.url = url
        try:
            self.fs, root = fsspec.core.url_to_fs(url)
        except (ImportError, ValueError) as e:  # an unknown protocol, or its backend not installed
            raise StoreError(f"cannot open the trial cache: {e}", where=f"--cache {url}", fix=FIX) from None
        self.root = root.rstrip("/")
        self.hits = self.rejected = self.written = 0

    def _path(self, trial_id: str) -> str:
        tid = plain_id(trial_id)
        return f"{self.root}/{tid[:2]}/{tid}.json"

    def get_many(self, ids: Iterable[str], accept_halted: bool = True) -> dict[str, TrialRecord]:
        """The verified final records of ``ids`` found in the cache; a halted record only when
        ``accept_halted`` (an exhaustive run trains it whole)."""
        out = {}
        for tid in ids:
            record = self.get(tid)
            if record is not None and record.status.is_final(accept_halted):
                out[tid] = record
        return out

    def get(self, trial_id: str) -> TrialRecord | None:
        path = self._path(trial_id)
        try:
            if not self.fs.exists(path):
                return None
            if self.fs.size(path) > MAX_RECORD_BYTES:
                self.rejected += 1
                return None
            data: Any = json.loads(self.fs.cat_file(path))
        except (OSError, ValueError, RecursionError):
            self.rejected += 1
            return None
        if record_problem(data, plain_id(trial_id)):
            self.rejected += 1
            return None
        record = TrialRecord.from_dict(data)
        if not record.status.is_final():
            return None
        self.hits += 1
        return record

    def sample(self, limit: int) -> list[TrialRecord]:
        """Up to ``limit`` verified final records of the cache, of any code version, spread over its files in
        name order (what trials of this machine took: the cost model's samples, ``runner.cost``)."""
        try:
            paths = sorted(p for p in self.fs.find(self.root) if p.endswith(".json"))
        except OSError:
            return []
        step = max(1, len(paths) // max(1, limit))
        out = []
        hits, rejected = self.hits, self.rejected  # a sample is no hit: the counters say what a run reused
        for path in paths[::step][:limit]:
            name = path.rsplit("/", 1)[-1][:-5]
            if len(name) == 16 and all(c in "0123456789abcdef" for c in name):
                record = self.get(name)
                if record is not None:
                    out.append(record)
        self.hits, self.rejected = hits, rejected
        return out

    def put(self, record: TrialRecord) -> None:
        """Write a final record (whole or not at all: a temporary name, then a move)."""
        if not record.status.is_final():
            return
        if record.status is TrialStatus.HALTED and self.fs.exists(self._path(record.trial_id)):
            return  # a halted record never replaces a record of the same trial (it may be a whole one)
        data = json.loads(json.dumps(record.to_dict(), default=str))
        data[DIGEST_KEY] = record_digest(data)
        path = self._path(record.trial_id)
        tmp = f"{path}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp"
        try:
            self.fs.makedirs(path.rsplit("/", 1)[0], exist_ok=True)
            self.fs.pipe_file(tmp, json.dumps(data).encode())
            self.fs.mv(tmp, path)
        except OSError as e:
            raise StoreError(f"cannot write to the trial cache ({e})", where=f"--cache {self.url}", fix=FIX) from None
        self.written += 1


def open_cache(url: str | None) -> TrialCache | None:
    """The cache ``url`` names (``--cache``), else ``CLAIMBENCH_CACHE``'s, else None."""
    url = url or os.environ.get(ENV) or None
    return TrialCache(url) if url else None
