"""Every interval, p-value and verdict: the one place where per-seed values become a decision.

Claim kinds compute a statistic; this module decides. Seeds are the replicates: one value per seed
(or one row per seed, paired across levels by seed: the same init and data order). Every rule here
is calibrated by simulation at the seed counts the tiers ship (``calibrate/``,
``claimbench calibrate``, ``reports/calibration.md``).

What a claim says of its statistic θ is a :class:`Hypothesis`:

- ``greater(support, refute)``: supported when θ > ``support`` is shown, refuted when θ < ``refute`` is
  shown (``refute <= support``; between the two the claim is neither true nor false);
- ``less(support, refute)``: the mirror image;
- ``band(low, high)``: supported when low <= θ <= high is shown (both one-sided tests, TOST), refuted
  when θ outside the band is shown.

A :class:`Decision` holds the verdict, the estimate, a 95% interval (each side at one-sided error
``ALPHA`` = 2.5%), the two one-sided p-values against the claim's boundary (``p_supported``: the chance
of evidence this strong for the claim if θ sat exactly on the supported boundary; ``p_refuted``: the
same for the refuting side), and the minimum detectable effect: how far beyond the decision boundary
θ must lie for the design to decide with 80% power.

Methods (each states itself in ``Decision.method``):

- :func:`decide_mean` — a statistic that is a mean of per-seed values (paired differences, log ratios,
  per-seed rank correlations): the Student t interval on the per-seed values (exact under normal
  per-seed noise at any n >= 2). When the values do not vary, t is undefined; the exact sign-flip test
  decides instead (p = 2^-n when every seed agrees), so identical seeds never claim certainty.
- :func:`decide_max_min` — θ = max over arms i in A of min over arms j in B of (μ_i − μ_j): "the best
  of A beats the best of B" (A = levels inside a range, B = levels outside) and "a is as good as the
  best level" (A = {a}). Per pair a paired t bound; the lower bound of θ takes the Bonferroni
  correction over A, the upper bound over B, so both sides hold for any configuration of the means
  (a conservative rule: its error is at most ALPHA per side, measured lower).
- :func:`decide_rank_trend` — a rank correlation between the levels' order and the values (Spearman
  rho, Kendall tau): per seed, then averaged over seeds. Against no trend (margin 0) the decision is
  the within-seed permutation test of level labels (exact under "every level the same": levels are
  exchangeable within a seed); the interval is Student t over the per-seed correlations. With a margin
  the t test decides.
- :func:`decide_change` — the CI gate: a tracked quantity's change from its baseline, against the
  gate's tolerance band (paired by seed: Student t on the per-seed changes; otherwise Welch's t).
- :func:`combine` — several results in one claim: all must hold (strata; the intersection-union test:
  the largest p), or any one refutes (several arms: Bonferroni over the arms).
- :func:`adjust` — Holm's step-down over every one-sided hypothesis of a report.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Iterable, Sequence

import numpy as np
from scipy import stats as sps

#: One-sided error rate per side: a 95% two-sided interval.
ALPHA = 0.025
#: The power at which the minimum detectable effect is stated.
POWER = 0.8
VERDICTS = ("supported", "refuted", "inconclusive")

#: Relative tolerance under which two values count as equal (per-seed values that differ only by floating-point
#: rounding, e.g. slopes of ±1e-15 where the best value is the same at every level): never decided on the sign of
#: the rounding.
ROUNDING = 1e-9

T_METHOD = "Student t interval over seeds of the per-seed values (exact sign-flip test when they do not vary)"
MAX_MIN_METHOD = ("paired Student t bounds per pair of levels, Bonferroni-corrected over the levels chosen "
                  "between (conservative; valid for any configuration of the level means)")


@dataclass(frozen=True)
class Hypothesis:
    """What a claim says of its statistic θ; see the module docstring."""

    kind: str  # greater | less | band
    support: float = 0.0
    refute: float = 0.0
    low: float = -math.inf
    high: float = math.inf

    @classmethod
    def greater(cls, support: float = 0.0, refute: float | None = None) -> "Hypothesis":
        refute = support if refute is None else refute
        if refute > support:
            raise ValueError(f"refute <= support must hold, got refute={refute!r}, support={support!r}")
        return cls("greater", support=support, refute=refute)

    @classmethod
    def less(cls, support: float = 0.0, refute: float | None = None) -> "Hypothesis":
        refute = support if refute is None else refute
        if refute < support:
            raise ValueError(f"refute >= support must hold, got refute={refute!r}, support={support!r}")
        return cls("less", support=support, refute=refute)

    @classmethod
    def band(cls, low: float, high: float) -> "Hypothesis":
        if not low <= high:
            raise ValueError(f"low <= high must hold, got low={low!r}, high={high!r}")
        return cls("band", low=low, high=high)

    def text(self, fmt=lambda x: f"{x:+.4g}") -> str:
        if self.kind == "band":
            return f"inside [{fmt(self.low)}, {fmt(self.high)}]"
        op = ">" if self.kind == "greater" else "<"
        out = f"{op} {fmt(self.support)}"
        if self.refute != self.support:
            out += f" (refuted {'<' if self.kind == 'greater' else '>'} {fmt(self.refute)})"
        return out


@dataclass
class Decision:
    """A verdict with its evidence: the estimate, the 95% interval and the one-sided p-values."""

    verdict: str
    estimate: float
    ci: tuple[float, float]
    p_supported: float
    p_refuted: float
    n: int
    method: str
    mde: float = float("nan")  # beyond the decision boundary, in the statistic's units, at POWER
    notes: list[str] = field(default_factory=list)


# ------------------------------------------------------------------ one-sided pieces

def _t_quantile(q: float, df: int) -> float:
    return float(sps.t.ppf(q, df))


def _p_above(mean: float, se: float, df: int, bound: float, signs: np.ndarray | None = None) -> float:
    """One-sided p-value of H0: θ <= bound against θ > bound."""
    if not np.isfinite(mean) or not np.isfinite(bound) and bound > 0:
        return 1.0
    if not np.isfinite(bound):  # bound = -inf: nothing to show
        return 0.0
    if se > 0:
        return float(sps.t.sf((mean - bound) / se, df))
    # no spread: the exact sign-flip test on the values minus the bound (all equal): 2^-n when above by more
    # than rounding (ROUNDING), else no evidence either way
    above = mean - bound > ROUNDING * max(1.0, abs(mean), abs(bound))
    return float(0.5 ** (df + 1)) if above else 1.0


def _p_below(mean: float, se: float, df: int, bound: float) -> float:
    """One-sided p-value of H0: θ >= bound against θ < bound."""
    return _p_above(-mean, se, df, -bound)


def _ps(mean: float, se: float, df: int, h: Hypothesis) -> tuple[float, float]:
    """(p_supported, p_refuted) for a statistic with a t-distributed estimate."""
    if h.kind == "greater":
        return _p_above(mean, se, df, h.support), _p_below(mean, se, df, h.refute)
    if h.kind == "less":
        return _p_below(mean, se, df, h.support), _p_above(mean, se, df, h.refute)
    p_sup = max(_p_above(mean, se, df, h.low), _p_below(mean, se, df, h.high))
    p_ref = min(_p_below(mean, se, df, h.low), _p_above(mean, se, df, h.high))
    return p_sup, p_ref


def verdict_of(p_supported: float, p_refuted: float, alpha: float = ALPHA) -> str:
    if p_supported < alpha:
        return "supported"
    if p_refuted < alpha:
        return "refuted"
    return "inconclusive"


def _mde(se: float, df: int, alpha: float = ALPHA, power: float = POWER) -> float:
    """How far beyond a one-sided boundary the truth must lie to be shown with ``power``."""
    if not (np.isfinite(se) and df >= 1):
        return float("nan")
    return float((_t_quantile(1 - alpha, df) + _t_quantile(power, df)) * se)


def t_interval(values: Sequence[float], alpha: float = ALPHA) -> tuple[float, float, float, int]:
    """(mean, lo, hi, n) of the finite ``values``: the Student t interval, each side at ``alpha``."""
    x = np.asarray(values, dtype=float)
    x = x[np.isfinite(x)]
    n = int(x.size)
    if n == 0:
        return float("nan"), float("nan"), float("nan"), 0
    mean = float(x.mean())
    if n < 2:
        return mean, float("nan"), float("nan"), n
    half = _t_quantile(1 - alpha, n - 1) * float(x.std(ddof=1)) / math.sqrt(n)
    return mean, mean - half, mean + half, n


def welch_interval(a: Sequence[float], b: Sequence[float], alpha: float = ALPHA) -> tuple[float, float, float, int]:
    """(mean(a) − mean(b), lo, hi, df) for two unpaired samples: Welch's t interval (Satterthwaite df)."""
    x, y = (np.asarray(v, dtype=float) for v in (a, b))
    x, y = x[np.isfinite(x)], y[np.isfinite(y)]
    if x.size < 2 or y.size < 2:
        d = float(x.mean() - y.mean()) if x.size and y.size else float("nan")
        return d, float("nan"), float("nan"), 0
    vx, vy = x.var(ddof=1) / x.size, y.var(ddof=1) / y.size
    d = float(x.mean() - y.mean())
    se = math.sqrt(vx + vy)
    if se == 0:
        return d, d, d, x.size + y.size - 2
    df = (vx + vy) ** 2 / (vx ** 2 / (x.size - 1) + vy ** 2 / (y.size - 1))
    half = float(sps.t.ppf(1 - alpha, df)) * se
    return d, d - half, d + half, int(round(df))


# ------------------------------------------------------------------ decisions

def _se(x: np.ndarray) -> float:
    """Standard error of the mean; exactly 0 when the values agree to rounding (so the sign-flip rule decides)."""
    sd = float(x.std(ddof=1))
    scale = max(1.0, float(np.abs(x).max()))
    return 0.0 if sd <= 1e-12 * scale else sd / math.sqrt(x.size)


def decide_mean(values: Sequence[float], h: Hypothesis, alpha: float = ALPHA) -> Decision:
    """Decide on the mean of per-seed values (NaN left out): Student t; see the module docstring."""
    x = np.asarray(values, dtype=float)
    x = x[np.isfinite(x)]
    n = int(x.size)
    if n < 2:
        est = float(x.mean()) if n else float("nan")
        return Decision("inconclusive", est, (float("nan"), float("nan")), 1.0, 1.0, n, T_METHOD,
                        notes=[f"{n} seed(s) with a value: an interval needs 2"])
    mean = float(x.mean())
    se = _se(x)
    df = n - 1
    half = _t_quantile(1 - alpha, df) * se
    p_sup, p_ref = _ps(mean, se, df, h)
    return Decision(verdict_of(p_sup, p_ref, alpha), mean, (mean - half, mean + half), p_sup, p_ref, n, T_METHOD,
                    mde=_mde(se, df, alpha))


def decide_max_min(a: np.ndarray, b: np.ndarray, h: Hypothesis, alpha: float = ALPHA) -> Decision:
    """Decide on θ = max_i min_j (μ_a[i] − μ_b[j]) from (seeds x A) and (seeds x B) tables paired by seed.

    ``h`` is ``greater`` or ``less``. Per pair (i, j) the per-seed differences give a paired t bound;
    the lower bound of θ is max_i min_j L_ij with L at alpha / |A| (union over i), the upper bound
    max_i min_j U_ij with U at alpha / |B| (one j per i suffices). p-values match the bounds.
    """
    if h.kind == "band":
        raise ValueError("decide_max_min takes a one-sided hypothesis (greater or less)")
    a, b = np.atleast_2d(np.asarray(a, dtype=float)), np.atleast_2d(np.asarray(b, dtype=float))
    na, nb = a.shape[1], b.shape[1]
    means = np.full((na, nb), np.nan)
    lo = np.full((na, nb), np.nan)
    hi = np.full((na, nb), np.nan)
    p_gt = np.ones((na, nb))  # p of H0: d_ij <= bound, per pair, for the lower side
    p_lt = np.ones((na, nb))  # p of H0: d_ij >= bound, for the upper side
    ses, ns = [], []
    lower_bound = h.support if h.kind == "greater" else h.refute
    upper_bound = h.refute if h.kind == "greater" else h.support
    for i in range(na):
        for j in range(nb):
            d = a[:, i] - b[:, j]
            d = d[np.isfinite(d)]
            if d.size < 2:
                if d.size == 1:
                    means[i, j] = float(d[0])
                continue
            n = d.size
            m, se = float(d.mean()), _se(d)
            means[i, j] = m
            lo[i, j] = m - _t_quantile(1 - alpha / na, n - 1) * se
            hi[i, j] = m + _t_quantile(1 - alpha / nb, n - 1) * se
            p_gt[i, j] = _p_above(m, se, n - 1, lower_bound)
            p_lt[i, j] = _p_below(m, se, n - 1, upper_bound)
            ses.append(se)
            ns.append(n)
    with np.errstate(all="ignore"):
        estimate = _max_min(means)
        ci = (_max_min(lo), _max_min(hi))
    n = int(min(ns)) if ns else 0
    if not ns:
        return Decision("inconclusive", estimate, (float("nan"), float("nan")), 1.0, 1.0, n, MAX_MIN_METHOD,
                        notes=["no pair of levels has 2 seeds with values: no interval"])
    # lower side: some i beats every j; upper side: every i is beaten by some j
    p_lower = float(min(1.0, na * np.min(np.max(p_gt, axis=1))))
    p_upper = float(min(1.0, nb * np.max(np.min(p_lt, axis=1))))
    p_sup, p_ref = (p_lower, p_upper) if h.kind == "greater" else (p_upper, p_lower)
    mde = _mde(float(np.median(ses)), n - 1, alpha / max(na, nb))
    return Decision(verdict_of(p_sup, p_ref, alpha), estimate, ci, p_sup, p_ref, n, MAX_MIN_METHOD, mde=mde)


CHANGE_METHOD = ("Student t interval over seeds of the per-seed changes (paired by seed; exact sign-flip test when "
                 "they do not vary), or Welch's t interval when the seeds differ")
#: The gate's test in words, for every output that states it (check, JUnit, Markdown).
CHANGE_TEST = f"95% interval, {CHANGE_METHOD}, of the change now − baseline of the mean over seeds"


def change_hypothesis(tolerance: float, direction: str = "both") -> Hypothesis:
    """The gate's tolerance band as a Hypothesis on Δ = current − baseline: it *holds* inside the band and is
    *refuted* (a regression) when Δ beyond it on the gated side is shown."""
    if direction == "decrease":
        return Hypothesis.greater(-tolerance)
    if direction == "increase":
        return Hypothesis.less(tolerance)
    if direction != "both":
        raise ValueError(f"direction must be both, increase or decrease, got {direction!r}")
    return Hypothesis.band(-tolerance, tolerance)


def decide_change(baseline: Sequence[float], current: Sequence[float], tolerance: float, direction: str = "both",
                  paired: bool = True, alpha: float = ALPHA) -> Decision:
    """The gate's decision on a tracked quantity: ``refuted`` means a regression beyond ``tolerance`` on the
    gated side is shown. ``paired``: ``baseline`` and ``current`` are per-seed values of the same seeds, in
    the same order (NaN pairs left out)."""
    h = change_hypothesis(tolerance, direction)
    b, c = (np.asarray(v, dtype=float) for v in (baseline, current))
    if paired:
        d = decide_mean(c - b, h, alpha)
        d.method = CHANGE_METHOD
        return d
    b, c = b[np.isfinite(b)], c[np.isfinite(c)]
    if b.size < 2 or c.size < 2:
        est = float(c.mean() - b.mean()) if b.size and c.size else float("nan")
        return Decision("inconclusive", est, (float("nan"), float("nan")), 1.0, 1.0, int(min(b.size, c.size)),
                        CHANGE_METHOD, notes=["an unpaired interval needs 2 seeds on each side"])
    vb, vc = b.var(ddof=1) / b.size, c.var(ddof=1) / c.size
    est, se = float(c.mean() - b.mean()), math.sqrt(vb + vc)
    if se <= ROUNDING * max(1.0, abs(est)):
        se, df = 0.0, int(b.size + c.size - 2)
    else:
        df = max(1, int(round((vb + vc) ** 2 / (vb ** 2 / (b.size - 1) + vc ** 2 / (c.size - 1)))))
    half = _t_quantile(1 - alpha, df) * se
    p_sup, p_ref = _ps(est, se, df, h)
    return Decision(verdict_of(p_sup, p_ref, alpha), est, (est - half, est + half), p_sup, p_ref,
                    int(min(b.size, c.size)), CHANGE_METHOD, mde=_mde(se, df, alpha))


RANK_METHOD = ("within-seed permutation test of level labels on the mean per-seed rank correlation (against no "
               "trend); interval: Student t over seeds of the per-seed correlations")
N_PERM = 4000


def spearman_rows(x: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Spearman rho of each row of ``x`` (N x k, distinct values: level positions) with ``v`` (k values,
    ties get average ranks, as scipy's spearmanr); 0 where ``v`` does not vary."""
    rv = sps.rankdata(v)
    rv = rv - rv.mean()
    rx = x - x.mean(axis=1, keepdims=True)
    den = np.sqrt((rx ** 2).sum(axis=1) * (rv ** 2).sum())
    with np.errstate(all="ignore"):
        out = (rx * rv).sum(axis=1) / den
    return np.where(den > 0, out, 0.0)


def kendall_rows(x: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Kendall tau-b of each row of ``x`` (N x k, distinct) with ``v`` (k values; as scipy's kendalltau)."""
    k = v.size
    iu = np.triu_indices(k, 1)
    sv = np.sign(v[:, None] - v[None, :])[iu]
    sx = np.sign(x[:, :, None] - x[:, None, :])[:, iu[0], iu[1]]
    n0 = len(sv)
    den = math.sqrt(n0 * np.count_nonzero(sv)) if n0 else 0.0
    return (sx * sv).sum(axis=1) / den if den > 0 else np.zeros(len(x))


def decide_rank_trend(positions: np.ndarray, values: np.ndarray, h: Hypothesis, statistic: str = "spearman",
                      alpha: float = ALPHA, n_perm: int = N_PERM, seed: int = 0) -> Decision:
    """Decide on the mean over seeds of a per-seed rank correlation between ``positions`` (one per
    level: the claimed order) and each seed's row of ``values`` (seeds x levels; NaN levels of a seed
    are left out of that seed, which needs 3 levels with values for Spearman, 2 for Kendall)."""
    rows_fn = spearman_rows if statistic == "spearman" else kendall_rows
    need = 3 if statistic == "spearman" else 2
    pos = np.asarray(positions, dtype=float)
    rng = np.random.default_rng(seed)
    observed, perms = [], []
    for row in np.atleast_2d(np.asarray(values, dtype=float)):
        keep = np.isfinite(row)
        if keep.sum() < need:
            continue
        x, v = pos[keep], row[keep]
        observed.append(float(rows_fn(x[None, :], v)[0]))
        shuffled = np.take_along_axis(np.broadcast_to(x, (n_perm, x.size)),
                                      np.argsort(rng.random((n_perm, x.size)), axis=1), axis=1)
        perms.append(rows_fn(shuffled, v))
    n = len(observed)
    if n < 2:
        est = float(np.mean(observed)) if n else float("nan")
        return Decision("inconclusive", est, (float("nan"), float("nan")), 1.0, 1.0, n, RANK_METHOD,
                        notes=[f"{n} seed(s) with {need} levels with values: an interval needs 2"])
    t_decision = decide_mean(observed, h, alpha)
    if h.kind == "band" or h.support != 0 or h.refute != 0:
        t_decision.method = T_METHOD + " (of the per-seed rank correlations; a margin other than 0)"
        return t_decision
    stat = float(np.mean(observed))
    null = np.mean(perms, axis=0)
    eps = 1e-12
    p_ge = (1 + int(np.sum(null >= stat - eps))) / (1 + n_perm)
    p_le = (1 + int(np.sum(null <= stat + eps))) / (1 + n_perm)
    p_sup, p_ref = (p_ge, p_le) if h.kind == "greater" else (p_le, p_ge)
    return Decision(verdict_of(p_sup, p_ref, alpha), stat, t_decision.ci, p_sup, p_ref, n, RANK_METHOD,
                    mde=t_decision.mde)


def _max_min(m: np.ndarray) -> float:
    if m.size == 0 or not np.isfinite(m).any():
        return float("nan")
    rows = np.where(np.isfinite(m), m, np.inf).min(axis=1)
    rows = rows[np.isfinite(rows)]
    return float(rows.max()) if rows.size else float("nan")


# ------------------------------------------------------------------ several results in one claim

@dataclass(frozen=True)
class Evidence:
    """The part of a result that combines: its verdict and its two p-values."""

    verdict: str
    p_supported: float
    p_refuted: float


def combine(parts: Iterable[Evidence], how: str = "all") -> Evidence:
    """One verdict from several.

    ``how = "all"`` (strata): the claim holds only if it holds in every part; supported when all are
    supported, refuted when all are refuted, else inconclusive (the verdict depends on the part); both
    p-values are the largest of the parts' (intersection-union test: exact level, no correction).
    ``how = "any"`` (several arms compared with one claim): supported when all are supported (the
    largest p), refuted when any one is refuted, with Bonferroni over the k parts (k x the smallest p):
    a false refutation needs only one of k tests to err.
    """
    parts = list(parts)
    if not parts:
        return Evidence("inconclusive", 1.0, 1.0)
    verdicts = [p.verdict for p in parts]
    p_sup = max(_finite_p(p.p_supported) for p in parts)
    if how == "all":
        p_ref = max(_finite_p(p.p_refuted) for p in parts)
        verdict = verdicts[0] if len(set(verdicts)) == 1 else "inconclusive"
        return Evidence(verdict, p_sup, p_ref)
    if how != "any":
        raise ValueError(f"how must be 'all' or 'any', got {how!r}")
    k = len(parts)
    p_ref = min(1.0, k * min(_finite_p(p.p_refuted) for p in parts))
    verdict = "supported" if all(v == "supported" for v in verdicts) else verdict_of(1.0, p_ref)
    return Evidence(verdict, p_sup, p_ref)


def _finite_p(p: float | None) -> float:
    return 1.0 if p is None or not math.isfinite(p) else float(p)


def bonferroni_alpha(k: int, alpha: float = ALPHA) -> float:
    """The per-part error for a refutation that any of ``k`` parts can give (``combine(..., "any")``)."""
    return alpha / max(1, k)


# ------------------------------------------------------------------ a report's multiplicity

def adjust(evidence: Sequence[Evidence], alpha: float = ALPHA) -> list[str]:
    """Holm-adjusted verdicts: Holm's step-down over the 2 x len(evidence) one-sided hypotheses
    (each claim's supported and refuted side) controls the chance of any false decision in the report
    at ``alpha`` per side. A decided verdict whose Holm-adjusted p is not below ``alpha`` becomes
    inconclusive; no verdict changes direction."""
    ps = []
    for i, e in enumerate(evidence):
        ps.append((_finite_p(e.p_supported), i, "supported"))
        ps.append((_finite_p(e.p_refuted), i, "refuted"))
    m = len(ps)
    ps.sort(key=lambda t: t[0])
    rejected: set[tuple[int, str]] = set()
    running = 0.0
    for rank, (p, i, side) in enumerate(ps):
        running = max(running, min(1.0, (m - rank) * p))
        if running < alpha:
            rejected.add((i, side))
        else:
            break
    out = []
    for i, e in enumerate(evidence):
        out.append(e.verdict if e.verdict in ("supported", "refuted") and (i, e.verdict) in rejected
                   else "inconclusive")
    return out


def chance_decisions(n_claims: int, alpha: float = ALPHA) -> float:
    """Expected decided verdicts from chance alone if every claim sat on its boundaries: 2 sides x alpha."""
    return 2 * alpha * n_claims
