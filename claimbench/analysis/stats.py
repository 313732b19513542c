"""Per-level summaries over seeds, for tables and figures (the decisions live in inference.py).

Seeds are the replicates. A wide table has one row per seed and one column per level; each
column's mean over seeds gets the Student t interval (``inference.t_interval``), the same method
the paired decisions use.
"""

from __future__ import annotations

import pandas as pd

from claimbench.analysis.inference import t_interval


def seed_mean_ci(wide: pd.DataFrame, confidence: float = 0.95) -> pd.DataFrame:
    """Per column: mean over seeds, its Student t interval (``confidence``, two-sided) and n (non-NaN seeds)."""
    alpha = (1 - confidence) / 2
    rows = []
    for col in wide.columns:
        mean, lo, hi, n = t_interval(wide[col].to_numpy(dtype=float), alpha)
        rows.append({"level": col, "mean": mean, "lo": lo, "hi": hi, "n": n})
    return pd.DataFrame(rows, columns=["level", "mean", "lo", "hi", "n"])
