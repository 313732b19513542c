"""A trial record as the store keeps it: sealed with a digest of its content, verified when read.

A record file is verified (``record_problem``) when read: it parses, its ``trial_id`` is its file's name
and the hash of its own spec, its fields have their types, and its ``digest`` is the hash of its content
(``record_digest``), so that an edited metric is found.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from claimbench.errors import StoreError
from claimbench.trial import RECORD_SCHEMA, TrialStatus
from claimbench.workloads.builtin import TrialSpec

#: The largest record file read (a record is a few KiB; its curve grows with ``evals``).
MAX_RECORD_BYTES = 64 * 2**20
#: The key of a record's content digest (``record_digest``), written beside its fields.
DIGEST_KEY = "digest"


def record_digest(data: dict[str, Any]) -> str:
    """The sha256 of a record's every field but the digest itself, as canonical JSON (sorted keys, no
    spaces): written with the record, checked when it is read, so an edited result is found."""
    body = {k: v for k, v in data.items() if k != DIGEST_KEY}
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def plain_id(trial_id: str) -> str:
    """A trial id is 16 hex digits; anything else would be a path."""
    if not (isinstance(trial_id, str) and len(trial_id) == 16 and all(c in "0123456789abcdef" for c in trial_id)):
        raise StoreError(f"trial id {trial_id!r} is not 16 hex digits", where="trials/",
                         fix="this is a bug: report it")
    return trial_id


_INT, _NUM, _STR = "int", "number", "str"
_FIELD_TYPES: dict[str, tuple[str, bool]] = {  # field -> (type, may be null)
    "diverged_step": (_INT, True), "divergence_reason": (_STR, True), "steps_done": (_INT, False),
    "examples_done": (_INT, False), "steps_to_target": (_INT, True), "examples_to_target": (_INT, True),
    "tokens_done": (_INT, True), "tokens_to_target": (_INT, True),
    "best_step": (_INT, True), "time_per_step_s": (_NUM, True), "examples_per_s": (_NUM, True),
    "wall_s": (_NUM, False), "device": (_STR, False), "host": (_STR, False), "node_id": (_STR, False),
    "attempts": (_INT, False), "error": (_STR, True),
}


def _is(value: Any, kind: str) -> bool:
    if isinstance(value, bool):
        return False
    if kind == _INT:
        return isinstance(value, int)
    if kind == _NUM:
        return isinstance(value, (int, float))
    return isinstance(value, str)


def record_problem(data: Any, stem: str) -> str:
    """Why ``data`` (a parsed record file named ``stem``.json) is not a verified record; "" when it is."""
    if not isinstance(data, dict):
        return f"not a JSON object ({type(data).__name__})"
    if data.get("schema") != RECORD_SCHEMA:
        return f"no record schema (got {data.get('schema')!r})"
    tid = data.get("trial_id")
    if not isinstance(tid, str):
        return "no trial_id"
    if tid != stem:
        return f"holds the record of trial {tid[:40]!r}, not of {stem!r} (a copied or swapped file)"
    spec = data.get("spec")
    if not isinstance(spec, dict):
        return "no spec"
    try:
        real = TrialSpec.from_dict(spec).trial_id
    except (TypeError, ValueError, KeyError, AttributeError) as e:
        return f"its spec does not resolve ({type(e).__name__})"
    if real != tid:
        return f"its spec hashes to {real}, not to its trial_id (an edited record)"
    status = data.get("status")
    if not isinstance(status, str) or status not in {s.value for s in TrialStatus}:
        return f"unknown status {str(data.get('status'))[:40]!r}"
    metrics = data.get("metrics", {})
    if not isinstance(metrics, dict) or not all(isinstance(k, str) and (_is(v, _NUM) or v is None) for k, v in metrics.items()):
        return "metrics must be an object of numbers"
    for key in ("curve", "range_curve"):
        points = data.get(key, [])
        if not isinstance(points, list) or not all(
                isinstance(pt, dict) and all(_is(v, _NUM) or v is None or isinstance(v, bool) for v in pt.values())
                for pt in points):
            return f"{key} must be a list of objects of numbers"
    norms = data.get("grad_norms_init", [])
    if not isinstance(norms, list) or not all(_is(v, _NUM) for v in norms):
        return "grad_norms_init must be a list of numbers"
    for key, (kind, nullable) in _FIELD_TYPES.items():
        if key in data and not (_is(data[key], kind) or (nullable and data[key] is None)):
            return f"{key} must be {'a ' + kind if kind != _INT else 'an integer'}{' or null' if nullable else ''}"
    na = data.get("not_applicable", [])
    if not isinstance(na, list) or not all(isinstance(k, str) for k in na):
        return "not_applicable must be a list of setting names"
    if "stopped_early" in data and not isinstance(data["stopped_early"], bool):
        return "stopped_early must be true or false"
    digest = data.get(DIGEST_KEY)
    if not isinstance(digest, str):
        return "no content digest (edited, or written before records carried one)"
    if digest != record_digest(data):
        return "its content does not match its digest (an edited record)"
    return ""
