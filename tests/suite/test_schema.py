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
