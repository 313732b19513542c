"""Claim kinds: pure predicates over trial frames -> ClaimResult.

Importing this package registers every kind in ``KINDS``.
"""

from claimbench.claims import best_level, range_width  # noqa: F401  (registers the kinds)
from claimbench.claims import comparison, equivalence, ranking, ratio, trend, width_comparison  # noqa: F401
from claimbench.claims import scaling  # noqa: F401  (critical_batch, linear_scaling: batch-size scaling)
from claimbench.claims import frontier  # noqa: F401  (power_law_slope, lr_surge, noise_scale_growth: issue 16)
from claimbench.claims.arms import check_params
from claimbench.claims.base import KINDS, VERDICTS, Claim, ClaimKind, ClaimResult, Design, Param, evidence


def evaluate_claims(claims, frame, design) -> list[ClaimResult]:
    """Each claim's result on the frame, in the order given."""
    return [KINDS[c.kind].evaluate(c, frame, design) for c in claims]


__all__ = ["KINDS", "VERDICTS", "Claim", "ClaimKind", "ClaimResult", "Design", "Param", "check_params",
           "evaluate_claims", "evidence"]
