"""claimbench: training-performance claims as experiment matrices, run on Ray, answered with verdicts.

Public API: ``load_results(run_dir)`` (one row per trial), ``load_verdicts(run_dir)``
(one row per claim and stratum), ``load_suite``, ``expand``, ``run_suite``, ``evaluate_run``. Heavy modules load lazily.
"""

from __future__ import annotations

__version__ = "0.1.0"


def __getattr__(name):
    if name in ("load_suite", "expand", "parse_suite"):
        from claimbench import suite
        return getattr(suite, name)
    if name in ("run_suite", "evaluate_run", "load_verdicts", "load_results"):
        from claimbench import api
        return getattr(api, name)
    raise AttributeError(f"module 'claimbench' has no attribute {name!r}")
