"""What "the same result" means between the packed and the single-trial engine: the same outcome, steps and
curve points, losses within RTOL and accuracies within one example. Batched matmuls, grouped convolutions
and per-row reductions sum in a different order than the unpacked kernels, so values agree to a
tolerance, not bit for bit."""

from __future__ import annotations

import math

import pytest

RTOL = 1e-5  # relative, on every loss of every curve point and on the final metrics
LOSS_KEYS = ("train_loss", "val_loss", "test_loss", "train_loss_ema")


def close(a: float, b: float, rtol: float = RTOL, atol: float = 1e-7) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return abs(a - b) <= atol + rtol * abs(b)


def metric_close(key: str, a: float, b: float, rtol: float = 1e-4) -> bool:
    """Two values of one metric within ``rtol`` of its error scale. An R² is 1 − mse / var: its rounding is
    the mse's, relative to 1 − R², so it is compared there; near R² = 0 (an untrained regressor) a tolerance
    relative to R² itself would be far below rounding (−7.04e-5 against −7.03e-5 failed at rtol 1e-4 on an
    AVX-512 CPU and passed on another). Everything else is compared relative to its own size."""
    if key.endswith("_r2"):
        return close(1.0 - a, 1.0 - b, rtol=rtol)
    return close(a, b, rtol=rtol)


def assert_match(packed, unpacked, n_eval: int = 150) -> float:
    """Same outcome, steps and curve; losses within RTOL, accuracies within one example. Returns the
    largest relative loss difference seen."""
    assert packed.trial_id == unpacked.trial_id
    assert packed.status is unpacked.status, (packed.error, packed.divergence_reason, unpacked.divergence_reason)
    for name in ("diverged_step", "steps_done", "examples_done", "steps_to_target", "best_step", "stopped_early"):
        assert getattr(packed, name) == getattr(unpacked, name), name
    assert (packed.divergence_reason is None) == (unpacked.divergence_reason is None)
    assert [p["step"] for p in packed.curve] == [p["step"] for p in unpacked.curve]
    assert set(packed.metrics) == set(unpacked.metrics)
    worst = 0.0
    for p, u in zip(packed.curve, unpacked.curve):
        assert set(p) == set(u)
        for key in LOSS_KEYS:
            if key not in u:  # the test split where nothing reads it (both engines leave it out alike)
                continue
            assert close(p[key], u[key]), (key, p["step"], p[key], u[key])
            if not math.isnan(u[key]):
                worst = max(worst, abs(p[key] - u[key]) / abs(u[key]))
        for key in p:
            if key.endswith("_acc"):
                assert abs(p[key] - u[key]) <= 1.0 / n_eval + 1e-12, (key, p["step"])
            elif key.endswith(("_mse", "_r2")) or key in ("lr", "grad_ratio"):
                assert metric_close(key, p[key], u[key]), (key, p["step"], p[key], u[key])
    for key, value in unpacked.metrics.items():
        if key.endswith("_acc"):
            assert abs(packed.metrics[key] - value) <= 1.0 / n_eval + 1e-12
        elif key != "forward_latency_s":
            assert metric_close(key, packed.metrics[key], value), (key, packed.metrics[key], value)
    assert packed.grad_norms_init == pytest.approx(unpacked.grad_norms_init, rel=1e-5)
    assert packed.time_per_step_s is None or packed.time_per_step_s > 0
    return worst
