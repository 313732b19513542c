"""Claim kinds: pure predicates over trial frames -> ClaimResult.

Importing this package registers every kind in ``KINDS``: the modules imported below, then every other
module of the package (by name), so that a new kind is one module that calls ``base.register`` (its
statistic, and what its figure draws: ``ClaimResult.estimates``, ``band``, ``selected``,
``figure_data``) plus one figure module in ``claimbench/report/figures/`` decorated with
``register_figures`` (found the same way): one place each, no list to edit.
"""

import importlib as _importlib
import pkgutil as _pkgutil

from claimbench.claims import best_level, range_width  # noqa: F401  (registers the kinds)
from claimbench.claims import comparison, equivalence, ranking, ratio, trend, width_comparison  # noqa: F401
from claimbench.claims import scaling  # noqa: F401  (critical_batch, linear_scaling: batch-size scaling)
from claimbench.claims import frontier  # noqa: F401  (power_law_slope, lr_surge, noise_scale_growth)
for _module in sorted(m.name for m in _pkgutil.iter_modules(__path__)):  # a kind module not imported above
    _importlib.import_module(f"claimbench.claims.{_module}")
from claimbench.claims.arms import check_params  # noqa: E402
from claimbench.claims.base import (KINDS, VERDICTS, Claim, ClaimKind, ClaimResult, Design, Param, Scenario,  # noqa: E402
                                    Truth, evidence, reads)


def evaluate_claims(claims, frame, design, curves=None, variants: bool = True) -> list[ClaimResult]:
    """Each claim's result on the frame, in the order given, judged under its protocol (diagnostics, limits
    and robustness: ``claims/protocol.py``); ``curves`` (one row per trial and evaluation) feed the
    convergence, failed-to-learn and checkpoint diagnostics."""
    from claimbench.claims.protocol import judge

    return judge(claims, frame, design, curves, variants)


__all__ = ["KINDS", "VERDICTS", "Claim", "ClaimKind", "ClaimResult", "Design", "Param", "check_params",
           "Scenario", "Truth", "evaluate_claims", "evidence", "reads"]
