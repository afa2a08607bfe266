"""Confidence intervals for a binomial proportion."""

from __future__ import annotations

import math

from scipy.stats import beta, norm


def wilson(successes: float, n: float, alpha: float = 0.05) -> tuple[float, float]:
    """Wilson score interval (Wilson 1927) — good coverage also near 0 and 1, unlike the Wald interval."""
    if n <= 0:
        return math.nan, math.nan
    z = norm.ppf(1 - alpha / 2)
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def clopper_pearson(successes: int, n: int, alpha: float = 0.05) -> tuple[float, float]:
    """Exact (Clopper–Pearson 1934) interval from beta quantiles; conservative."""
    if n <= 0:
        return math.nan, math.nan
    lo = 0.0 if successes == 0 else float(beta.ppf(alpha / 2, successes, n - successes + 1))
    hi = 1.0 if successes == n else float(beta.ppf(1 - alpha / 2, successes + 1, n - successes))
    return lo, hi
