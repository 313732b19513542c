"""Fail closed (issue 29): every claim parameter checked at load through its kind's one declaration;
`check` that fails when trials failed, tracked values are missing or the evidence is smaller than the
baseline's; trial timeouts on both executors; one writer per baseline file; storage errors as one line;
records read without blocking and verified by a digest of their content; bounded `-k` parsing."""

from __future__ import annotations

import math
import textwrap
from pathlib import Path

import pytest

from claimbench.claims import KINDS
from claimbench.claims.base import REQUIRED, ParamError
from tests.conftest import TINY_SUITE, cli


def one_line(code: int, err: str, *words: str) -> str:
    """Exit 2, one stderr line starting ``claimbench: error:``, no traceback, each word in it."""
    lines = err.strip().splitlines()
    assert code == 2, err
    assert len(lines) == 1 and lines[0].startswith("claimbench: error: "), err
    assert "Traceback" not in err
    for w in words:
        assert w in lines[0], (w, lines[0])
    return lines[0]


# ---------------------------------------------------------------- claim parameters at load

def _filled(kind) -> dict:
    """The least a kind needs: a value for each required parameter that its declaration accepts."""
    out = {}
    for key, p in kind.params.items():
        if p.default is not REQUIRED:
            continue
        types = p.type if isinstance(p.type, tuple) else (p.type,)
        if p.metric:
            out[key] = "val_acc"
        elif p.choices:
            out[key] = p.choices[0]
        elif str in types:
            out[key] = "batch_size"
        elif dict in types:
            out[key] = {}
        elif list in types:
            out[key] = []
        else:
            out[key] = 1.0
    return out


FLOAT_PARAMS = [(name, key) for name, kind in sorted(KINDS.items()) for key, p in kind.params.items()
                if p.type is float]


@pytest.mark.parametrize("kind,key", FLOAT_PARAMS, ids=[f"{k}.{p}" for k, p in FLOAT_PARAMS])
def test_every_number_of_every_kind_refuses_nan(kind, key):
    given = {**_filled(KINDS[kind]), key: math.nan}
    with pytest.raises(ParamError) as e:
        KINDS[kind].resolve_params(given)
    assert e.value.key == key and "nan" in str(e.value)


def test_infinity_only_where_declared_and_bounds_in_order():
    slope = KINDS["power_law_slope"]
    assert slope.resolve_params({"axis": "batch_size", "of": "lr", "low": 0.5})["high"] == math.inf
    with pytest.raises(ParamError, match="cannot both be infinite"):  # its defaults alone bound nothing: it
        slope.resolve_params({"axis": "batch_size", "of": "lr"})      # raised after training, now at load
    for kind, given in (("best_level_in_range", {"axis": "b", "low": 2, "high": math.inf}),
                        ("paired_comparison", {"a": {}, "b": {}, "margin": math.inf}),
                        ("equivalence", {"a": {}, "b": {}, "margin": -math.inf})):
        with pytest.raises(ParamError):
            KINDS[kind].resolve_params(given)
    assert KINDS["ratio_in_range"].resolve_params({"num": {}, "den": {}, "low": 2, "high": math.inf})["high"] == math.inf
    with pytest.raises(ParamError, match="low <= high"):
        KINDS["ratio_in_range"].resolve_params({"num": {}, "den": {}, "low": 3, "high": 2})


def _suite_with(claim: str, tmp_path: Path) -> Path:
    text = TINY_SUITE.split("[[claims]]")[0] + textwrap.dedent(claim)
    path = tmp_path / "suite.toml"
    path.write_text(textwrap.dedent(text).replace("[axes.lr]", "[axes.optimizer]\nrole = \"fixed\"\n"
                                                   "values = [\"sgd\", \"adam\"]\n\n[axes.lr]"), encoding="utf-8")
    return path


BAD_PARAMS = [  # the probe's cases (a NaN margin decided a claim; NaN and inverted bounds loaded) and their kin
    ('kind = "paired_comparison"\nparams = { a = { optimizer = "adam" }, b = { optimizer = "sgd" }, margin = nan }',
     "params.margin", "nan"),
    ('kind = "equivalence"\nparams = { a = { optimizer = "adam" }, b = { optimizer = "sgd" }, margin = nan }',
     "params.margin", "nan"),
    ('kind = "best_level_in_range"\nparams = { axis = "batch_size", low = nan, high = 32 }', "params.low", "nan"),
    ('kind = "best_level_in_range"\nparams = { axis = "batch_size", low = 64, high = 32 }', "params.low",
     "low <= high"),
    ('kind = "best_level_in_range"\nparams = { axis = "batch_size", low = 2, high = inf }', "params.high", "finite"),
    ('kind = "best_level_in_range"\nparams = { axis = "batch_size", low = 2, high = 32, confidence = 1.5 }',
     "params.confidence", "< 1"),
    ('kind = "best_level_in_range"\nparams = { axis = "batch_size", low = 2, high = 32, select = "val_speed" }',
     "params.select", "direction"),
    ('kind = "monotone_trend"\nparams = { axis = "batch_size", direction = "sideways" }', "params.direction",
     "one of"),
    ('kind = "range_width_trend"\nparams = { axis = "batch_size", range_axis = "lr", tolerance = -0.1 }',
     "params.tolerance", ">= 0"),
    ('kind = "ratio_in_range"\nparams = { num = { where = { batch_size = 4 } }, den = { where = { batch_size = 64 } }, '
     'low = 2, high = -inf }', "params.", "high"),
]


@pytest.mark.parametrize("claim,where,words", [(c, w, x) for c, w, x in BAD_PARAMS],
                         ids=[f"{i}" for i in range(len(BAD_PARAMS))])
def test_a_bad_claim_parameter_exits_2_naming_the_key_before_any_training(claim, where, words, tmp_path):
    path = _suite_with(f'[[claims]]\nid = "X1"\n{claim}\n', tmp_path)
    out = tmp_path / "out"
    code, _, err = cli("run", str(path), "--executor", "local", "--quiet", "--out", str(out))
    one_line(code, err, str(path), f"claims[0].{where}", words, "fix:")
    assert not out.exists()  # refused before a run dir, a lock or a trial


def test_select_on_a_loss_loads_and_means_lower_is_better(tmp_path):
    from claimbench.suite import load_suite

    path = _suite_with('[[claims]]\nid = "X1"\nkind = "best_level_in_range"\n'
                       'params = { axis = "batch_size", low = 2, high = 32, select = "val_loss" }\n', tmp_path)
    assert load_suite(path).claims[0].params["select"] == "val_loss"
