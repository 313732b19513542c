"""The JSON schema of suite files: the shipped file is current, the shipped suites match it, and it rejects what
the loader rejects."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
import tomllib

from claimbench.suite import TIERS, expand, json_schema, load_suite, suite_names, suites_dir
from tests.conftest import TINY_SUITE

SCHEMA_FILE = Path(__file__).parents[2] / "claimbench" / "suite.schema.json"


def test_shipped_schema_file_is_current():
    assert json.loads(SCHEMA_FILE.read_text()) == json_schema(), "regenerate: claimbench schema -o claimbench/suite.schema.json"


def test_shipped_suites_load_in_every_tier_and_match_the_schema(validate_suite):
    names = suite_names()
    assert "batch_size" in names
    for name in names:
        raw = tomllib.loads((suites_dir() / f"{name}.toml").read_text())
        validate_suite(raw)
        for tier in TIERS:
            assert expand(load_suite(name, tier))


def test_schema_rejects_what_the_loader_rejects():
    raw = tomllib.loads(TINY_SUITE)
    jsonschema.validate(raw, json_schema())
    raw["workload"]["widht"] = 3
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(raw, json_schema())
    for bad in ({"suite": {**raw["suite"], "name": "../x"}}, {"limits": {"trials": 0}}, {"limits": {"colour": 1}}):
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate({**tomllib.loads(TINY_SUITE), **bad}, json_schema())


def test_the_claim_kinds_reference_is_current_and_the_schema_checks_each_kinds_params():
    from claimbench.suite.schema import claims_reference

    doc = Path(__file__).resolve().parents[2] / "docs" / "claims.md"
    assert doc.read_text(encoding="utf-8") == claims_reference(), "regenerate: claimbench schema --claims -o docs/claims.md"
    schema = json_schema()
    good = {"suite": {"name": "s"}, "budget": {"steps": 10}, "claims": [
        {"id": "B2", "kind": "best_level_in_range", "params": {"axis": "batch_size", "low": 2, "high": 32}}]}
    jsonschema.validate(good, schema)
    for params in ({"axis": "batch_size", "low": 2}, {"axis": "batch_size", "low": 2, "high": 32, "lows": 1},
                   {"axis": "batch_size", "low": "2", "high": 32}):
        bad = {**good, "claims": [{**good["claims"][0], "params": params}]}
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(bad, schema)
