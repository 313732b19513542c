"""The calibration harness that measures the decision rules' error rates (with a negative control: the old
percentile rule must fail it), and ``claimbench calibrate``."""

from __future__ import annotations

import math

import numpy as np
import pytest

from claimbench.calibrate import format_row, run
from claimbench.analysis.inference import ALPHA, Decision
from claimbench.claims import comparison
from claimbench.cli import main


def _percentile_rule(values, h, alpha=ALPHA, n_boot=500):
    """The rule the project used before: a percentile bootstrap over seeds of the mean (the negative control)."""
    x = np.asarray(values, dtype=float)
    x = x[np.isfinite(x)]
    rng = np.random.default_rng(0)
    means = x[rng.integers(0, x.size, (n_boot, x.size))].mean(axis=1)
    lo, hi = float(np.quantile(means, alpha)), float(np.quantile(means, 1 - alpha))
    verdict = "supported" if lo > h.support else "refuted" if hi < h.refute else "inconclusive"
    return Decision(verdict, float(x.mean()), (lo, hi), 0.0 if verdict == "supported" else 1.0,
                    0.0 if verdict == "refuted" else 1.0, x.size, "percentile bootstrap")


def _null_error(rows):
    null = [r for r in rows if r.null]
    return max(r.supported + r.refuted for r in null), null


def test_calibration_harness_passes_the_t_rule_and_catches_the_percentile_rule(monkeypatch):
    reps = 80
    bound = 2 * ALPHA + 3 * math.sqrt(2 * ALPHA * (1 - 2 * ALPHA) / reps)  # both sides, loose
    rows = run(["paired_comparison"], seeds=[3], reps=reps, nulls_only=True)
    error, null = _null_error(rows)
    assert null and error <= bound, [format_row(r) for r in null]
    # the same harness, with the old percentile bootstrap in place of the t interval, must fail
    monkeypatch.setattr(comparison, "decide_mean", _percentile_rule)
    old_error, _ = _null_error(run(["paired_comparison"], seeds=[3], reps=reps, nulls_only=True))
    assert old_error > bound


def test_calibrate_cli_prints_the_table(tmp_path):
    out = tmp_path / "cal.md"
    try:
        main(["calibrate", "ranking", "--seeds", "3", "--reps", "10", "--markdown", str(out), "--quiet"])
    except SystemExit as e:  # 1: a null row over the bound (possible at 10 reps); anything else is a bug
        assert e.code == 1
    text = out.read_text()
    assert "| ranking |" in text and "null: no trend" in text and "Power for a 2-SD effect" in text
    with pytest.raises(SystemExit) as e:
        main(["calibrate", "no_such_kind"])
    assert e.value.code == 2
