"""Practice-level statistics for the supervisor view: rates with Wilson intervals, the pre–post
effect size with its confidence interval, and percentiles of response times.

Plain Python (``math`` only, no Django), so that it can move into the engine's analytics module
when that lands; every formula names its source, and ``tests/web/test_workspace_stats.py``
checks each against an independent implementation (R's ``prop.test`` and ``metafor::escalc``,
statsmodels, NumPy).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = [
    "Z95",
    "PrePostEffect",
    "Proportion",
    "percentile",
    "prepost_effect",
    "wilson",
]

# The 97.5th percentile of the standard normal distribution (two-sided 95 %).
Z95 = 1.959963984540054


@dataclass(frozen=True)
class Proportion:
    """``k`` of ``n`` with a confidence interval for the underlying rate."""

    k: int
    n: int
    estimate: float
    low: float
    high: float
    method: str = "wilson_1927"


def wilson(k: int, n: int, z: float = Z95) -> Proportion:
    """The Wilson score interval for a binomial proportion.

    Notes
    -----
    With p = k/n::

        centre = (p + z²/2n) / (1 + z²/n)
        half   = z·√(p(1−p)/n + z²/4n²) / (1 + z²/n)

    Wilson (1927), J Am Stat Assoc 22:209–212; recommended for small samples by Newcombe (1998),
    Stat Med 17:857–872 (his method 3). Equals R's ``prop.test(k, n, correct = FALSE)$conf.int``.
    """
    if n <= 0:
        raise ValueError("a proportion needs n > 0")
    if not 0 <= k <= n:
        raise ValueError("k must lie between 0 and n")
    p = k / n
    z2 = z * z
    denom = 1 + z2 / n
    centre = (p + z2 / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / denom
    return Proportion(k, n, p, max(0.0, centre - half), min(1.0, centre + half))


@dataclass(frozen=True)
class PrePostEffect:
    """A standardised mean change (positive = improvement) with its confidence interval."""

    d: float
    low: float
    high: float
    n: int
    r: float
    mean_pre: float
    mean_post: float
    sd_pre: float
    method: str = "smcr_becker_1988"


def _mean(xs: Sequence[float]) -> float:
    return sum(xs) / len(xs)


def _sd(xs: Sequence[float], mean: float) -> float:
    return math.sqrt(sum((x - mean) ** 2 for x in xs) / (len(xs) - 1))


def _bias_correction(m: int) -> float:
    """Hedges' exact small-sample correction c(m) = Γ(m/2) / (√(m/2) · Γ((m−1)/2))."""
    return math.exp(math.lgamma(m / 2) - 0.5 * math.log(m / 2) - math.lgamma((m - 1) / 2))


def prepost_effect(
    pre: Sequence[float], post: Sequence[float], *, direction: str, z: float = Z95
) -> PrePostEffect | None:
    """The pre–post effect size of a group of clients on one instrument, or ``None`` when it
    cannot be estimated (fewer than three clients, or no spread at intake).

    Notes
    -----
    The standardised mean change with raw-score (pre-treatment SD) standardisation, the kind of
    pre–post effect size that routine practice is benchmarked with (Minami et al. 2007, J Consult
    Clin Psychol 75:232)::

        d = c(n−1) · (M_pre − M_post) / SD_pre      (sign flipped when higher is better)
        v = 2(1 − r)/n + d²/(2n)                    r = pre–post correlation
        95 % CI = d ± 1.96 √v

    Becker (1988), Br J Math Stat Psychol 41:257–278 (variance); c(m) is Hedges' (1981) exact
    bias correction. Equals ``metafor::escalc(measure = "SMCR")``.
    """
    if direction not in ("higher_is_worse", "higher_is_better"):
        raise ValueError("direction is higher_is_worse or higher_is_better")
    if len(pre) != len(post):
        raise ValueError("pre and post must pair up")
    n = len(pre)
    if n < 3:
        return None
    m_pre, m_post = _mean(pre), _mean(post)
    sd_pre, sd_post = _sd(pre, m_pre), _sd(post, m_post)
    if sd_pre == 0:
        return None
    if sd_post == 0:
        r = 0.0  # no spread after treatment: the correlation is undefined; 0 widens the interval
    else:
        cov = sum((a - m_pre) * (b - m_post) for a, b in zip(pre, post, strict=True)) / (n - 1)
        r = cov / (sd_pre * sd_post)
    change = (m_pre - m_post) if direction == "higher_is_worse" else (m_post - m_pre)
    d = _bias_correction(n - 1) * change / sd_pre
    se = math.sqrt(2 * (1 - r) / n + d * d / (2 * n))
    return PrePostEffect(d, d - z * se, d + z * se, n, r, m_pre, m_post, sd_pre)


def percentile(values: Sequence[float], q: float) -> float | None:
    """The ``q``-th quantile (0–1) by linear interpolation between order statistics
    (Hyndman & Fan 1996 type 7: R's default ``quantile``, NumPy's default)."""
    if not 0 <= q <= 1:
        raise ValueError("q lies between 0 and 1")
    xs = sorted(values)
    if not xs:
        return None
    h = (len(xs) - 1) * q
    lo = math.floor(h)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (h - lo) * (xs[hi] - xs[lo])
