"""Seed statistics: the paired percentile bootstrap over seeds.

Seeds are the replicates. A statistic is a function of a wide table (rows:
seeds, columns: levels); the bootstrap resamples whole rows, so that levels
stay paired by seed (same init and data seed), and recomputes the statistic.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import pandas as pd

DEFAULT_BOOT = 2000


def bootstrap(wide: pd.DataFrame, statistic: Callable[[np.ndarray], float], n_boot: int = DEFAULT_BOOT,
              seed: int = 0) -> np.ndarray:
    """The statistic on ``n_boot`` resamples of the rows of ``wide`` (with replacement).

    ``statistic`` takes a (seeds x levels) float array whose columns are ``wide.columns``.
    """
    rng = np.random.default_rng(seed)
    values = wide.to_numpy(dtype=float)
    n = len(values)
    return np.array([statistic(values[rng.integers(0, n, n)]) for _ in range(n_boot)])


def percentile_ci(samples: np.ndarray, confidence: float = 0.95) -> tuple[float, float]:
    """Percentile interval of bootstrap samples; NaN samples are dropped."""
    s = samples[np.isfinite(samples)]
    if s.size == 0:
        return (float("nan"), float("nan"))
    alpha = (1 - confidence) / 2
    return (float(np.quantile(s, alpha)), float(np.quantile(s, 1 - alpha)))


def seed_mean_ci(wide: pd.DataFrame, confidence: float = 0.95, n_boot: int = DEFAULT_BOOT,
                 seed: int = 0) -> pd.DataFrame:
    """Per column: mean over seeds, its bootstrap percentile CI, and n (non-NaN seeds)."""
    rng = np.random.default_rng(seed)
    rows = []
    for col in wide.columns:
        x = wide[col].to_numpy(dtype=float)
        x = x[np.isfinite(x)]
        if x.size == 0:
            rows.append({"level": col, "mean": np.nan, "lo": np.nan, "hi": np.nan, "n": 0})
            continue
        means = x[rng.integers(0, x.size, (n_boot, x.size))].mean(axis=1)
        lo, hi = percentile_ci(means, confidence)
        rows.append({"level": col, "mean": float(x.mean()), "lo": lo, "hi": hi, "n": int(x.size)})
    return pd.DataFrame(rows)


def verdict_from_ci(ci: tuple[float, float], margin: float = 0.0, claimed: str = "greater") -> str:
    """``supported`` when the CI lies beyond the margin on the claimed side, ``refuted`` when it
    lies wholly on the other side, else ``inconclusive``; a NaN CI is inconclusive."""
    lo, hi = ci
    if not (np.isfinite(lo) and np.isfinite(hi)):
        return "inconclusive"
    if claimed == "greater":
        return "supported" if lo > margin else "refuted" if hi < margin else "inconclusive"
    return "supported" if hi < -margin else "refuted" if lo > -margin else "inconclusive"
