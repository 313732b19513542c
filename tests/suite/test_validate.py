"""Suite loading and validation: errors name the file and key, in one line; tiers; axes."""

from __future__ import annotations

import subprocess
import sys

import pytest

from claimbench.errors import SuiteError
from claimbench.suite import expand, load_suite
from tests.conftest import TINY_SUITE


def test_tier_overrides_levels_and_seeds(tiny_suite_path):
    smoke = expand(load_suite(tiny_suite_path, "smoke"))
    assert {s.batch_size for s in smoke} == {4, 64}
    assert {s.seed for s in smoke} == {0}
    # a tier that is not written in the file falls back to the base matrix
    assert len(expand(load_suite(tiny_suite_path, "full"))) == 18


def test_logspace_axis(write_suite):
    text = TINY_SUITE.replace("values = [0.01, 0.1, 100.0]", "logspace = { start = 0.001, stop = 1.0, num = 4 }")
    values = load_suite(write_suite(text)).axis("lr").values
    assert values == pytest.approx((0.001, 0.01, 0.1, 1.0))


@pytest.mark.parametrize("old, new, key", [
    ("[suite]", "[suite\n", "TOML syntax error"),
    ('title = "Tiny batch-size suite"', 'title = "x"\ncolour = "red"', "suite.colour"),
    ("width = 16", "widht = 16", "workload.widht"),
    ("width = 16", 'width = "16"', "workload.width"),
    ("momentum = 0.9", "momentum = true", "train.momentum"),
    ("values = [4, 16, 64]", "values = []", "axes.batch_size.values"),
    ("values = [4, 16, 64]", "values = [4, -16, 64]", "axes.batch_size.values[1]"),
    ("values = [4, 16, 64]", "values = [4, 0, 64]", "axes.batch_size.values[1]"),
    ("values = [0.01, 0.1, 100.0]", "values = [0.01, 0.0]", "axes.lr.values[1]"),
    ('dataset = "teacher"', 'dataset = "imagenet"', "workload.dataset"),
    ('width = 16', 'width = 16\nmodel = "gpt"', "workload.model"),
    ('kind = "best_level_in_range"', 'kind = "best_vibes"', "claims[0].kind"),
    ('role = "nuisance"', 'role = "tuned"', "axes.lr.role"),
    ("steps = 30", "steps = -5", "budget.steps"),
    ("seeds = 2", "seeds = 0", "suite.seeds"),
    ("params = { axis = \"batch_size\", low = 2", "params = { axis = \"width\", low = 2", "claims[0].params.axis"),
    ("params = { axis = \"batch_size\", low = 2", "params = { axis = \"batch_size\", lowest = 2", "claims[0].params"),
    ("[tiers.smoke]", "[tiers.quick]", "tiers.quick"),
])
def test_invalid_suites_name_file_and_key(write_suite, old, new, key):
    assert old in TINY_SUITE
    path = write_suite(TINY_SUITE.replace(old, new, 1))
    with pytest.raises(SuiteError) as err:
        load_suite(path)
    message = str(err.value)
    assert str(path) in message and key in message and "fix:" in message
    assert "\n" not in message


def test_unknown_tier_is_an_error(tiny_suite_path):
    with pytest.raises(SuiteError, match="unknown tier 'huge'.*smoke, ci, default, full"):
        load_suite(tiny_suite_path, "huge")


def test_missing_budget_is_an_error(write_suite):
    with pytest.raises(SuiteError, match="budget"):
        load_suite(write_suite(TINY_SUITE.replace("[budget]\nsteps = 30", "")))


def test_cli_exits_2_with_one_line_and_no_traceback(write_suite):
    path = write_suite(TINY_SUITE.replace("values = [4, 16, 64]", "values = [4, -16, 64]"))
    proc = subprocess.run([sys.executable, "-m", "claimbench", "run", str(path), "--executor", "local"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    assert str(path) in lines[0] and "batch_size" in lines[0] and "fix:" in lines[0]
    assert not (path.parent / "runs").exists()


def test_default_tier_of_batch_size_is_big_enough():
    suite = load_suite("batch_size", "default")
    assert len(suite.axis("batch_size").values) >= 8
    assert len(suite.axis("lr").values) >= 9
    assert len(suite.seeds) >= 3
    assert suite.axis("batch_size").values[0] == 2
