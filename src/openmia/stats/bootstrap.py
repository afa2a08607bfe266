"""Bootstrap confidence intervals over cases, or over patients (cluster bootstrap).

Statistics are functions of case *weights*: ``stat(w)`` takes ``(B, N)`` multiplicities (how often
each case is in each resample) and returns ``(B,)`` values, so all resamples are evaluated at
once. Resampling patients draws whole patients with replacement and gives each of their cases the
patient's multiplicity — cases of one patient are not independent, so they must move together.

BCa (bias-corrected and accelerated, Efron 1987) is the default; the acceleration comes from the
jackknife (leave one case out, or one patient out).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
from scipy.stats import norm

Stat = Callable[[np.ndarray], np.ndarray]


@dataclass
class BootstrapResult:
    value: float
    ci_low: float
    ci_high: float
    method: str  # "bca" | "percentile"
    n_resamples: int
    n_dropped: int  # resamples where the statistic was undefined (NaN), excluded


def resample_weights(n: int, n_resamples: int, seed: int, groups: np.ndarray | None = None) -> np.ndarray:
    """Multiplicity matrix ``(B, N)`` for case (or cluster) resampling; deterministic from ``seed``."""
    rng = np.random.default_rng(seed)
    if groups is None:
        return rng.multinomial(n, np.full(n, 1.0 / n), size=n_resamples).astype(float)
    _, inv = np.unique(groups, return_inverse=True)
    g = inv.max() + 1
    counts = rng.multinomial(g, np.full(g, 1.0 / g), size=n_resamples).astype(float)
    return counts[:, inv]


def jackknife_weights(n: int, groups: np.ndarray | None = None) -> np.ndarray:
    """Leave-one-out weights ``(G, N)`` (one row per left-out case or cluster)."""
    if groups is None:
        return 1.0 - np.eye(n)
    _, inv = np.unique(groups, return_inverse=True)
    return (inv[None, :] != np.arange(inv.max() + 1)[:, None]).astype(float)


def _apply(stat: Stat, w: np.ndarray, chunk: int = 512) -> np.ndarray:
    return np.concatenate([np.asarray(stat(w[i : i + chunk]), dtype=float) for i in range(0, len(w), chunk)])


def bootstrap_ci(stat: Stat, n: int, *, n_resamples: int = 2000, seed: int = 0, alpha: float = 0.05,
                 method: str = "bca", groups: np.ndarray | None = None, weights: np.ndarray | None = None) -> BootstrapResult:
    """Bootstrap CI of ``stat`` over ``n`` cases.

    Args:
        stat: weights ``(B, N)`` -> values ``(B,)``.
        groups: optional cluster id per case (e.g. patient id) for the cluster bootstrap.
        weights: precomputed resample weights (used for paired comparisons: the same resamples
            for two models).
    """
    if method not in ("bca", "percentile"):
        raise ValueError(f"bootstrap method must be 'bca' or 'percentile', found {method!r}")
    theta = float(_apply(stat, np.ones((1, n)))[0])
    w = resample_weights(n, n_resamples, seed, groups) if weights is None else weights
    boot = _apply(stat, w)
    ok = np.isfinite(boot)
    dropped = int((~ok).sum())
    boot = boot[ok]
    if not np.isfinite(theta) or boot.size == 0:
        return BootstrapResult(theta, np.nan, np.nan, method, len(w), dropped)
    if np.ptp(boot) == 0:  # degenerate: every resample gives the same value
        return BootstrapResult(theta, float(boot[0]), float(boot[0]), method, len(w), dropped)
    lo_q, hi_q = alpha / 2, 1 - alpha / 2
    if method == "bca":
        # bias correction: proportion of resamples below the estimate (ties count half)
        prop = (np.sum(boot < theta) + 0.5 * np.sum(boot == theta)) / boot.size
        prop = min(max(prop, 1.0 / (boot.size + 1)), 1 - 1.0 / (boot.size + 1))
        z0 = norm.ppf(prop)
        jack = _apply(stat, jackknife_weights(n, groups))
        jack = jack[np.isfinite(jack)]
        d = jack.mean() - jack
        denom = 6.0 * (np.sum(d**2) ** 1.5)
        a = float(np.sum(d**3) / denom) if denom > 0 else 0.0
        za, zb = norm.ppf(lo_q), norm.ppf(hi_q)
        lo_q = float(norm.cdf(z0 + (z0 + za) / (1 - a * (z0 + za))))
        hi_q = float(norm.cdf(z0 + (z0 + zb) / (1 - a * (z0 + zb))))
    lo, hi = np.quantile(boot, [lo_q, hi_q])
    return BootstrapResult(theta, float(lo), float(hi), method, len(w), dropped)


def paired_bootstrap_diff(stat_a: Stat, stat_b: Stat, n: int, **kwargs) -> BootstrapResult:
    """CI of ``stat_a - stat_b`` with the same resamples for both (a paired comparison)."""
    return bootstrap_ci(lambda w: stat_a(w) - stat_b(w), n, **kwargs)
