"""Paired tests on per-case values of two models: Wilcoxon signed-rank and a sign-flip permutation test."""

from __future__ import annotations

import itertools

import numpy as np

from openmia.errors import PredictionError


def _paired(a, b) -> tuple[np.ndarray, int]:
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a.shape != b.shape or a.ndim != 1:
        raise PredictionError(f"paired values must be two 1-D arrays of equal length, found shapes {a.shape} and {b.shape}")
    ok = np.isfinite(a) & np.isfinite(b)
    return a[ok] - b[ok], int((~ok).sum())


def wilcoxon_signed_rank(a, b) -> dict[str, float | int | str]:
    """Two-sided Wilcoxon signed-rank test of ``a - b`` (per-case paired values).

    Zero differences use Pratt's method (kept for ranking, dropped from the statistic), which is
    consistent when many cases tie exactly (e.g. Dice = 1 for both models). Pairs with a NaN are
    dropped and counted in ``n_dropped``. With no non-zero difference the p-value is 1.
    """
    from scipy.stats import wilcoxon

    d, dropped = _paired(a, b)
    n = int(d.size)
    est = float(np.median(d)) if n else float("nan")
    if n == 0 or not np.any(d != 0):
        return {"estimate": est, "statistic": float("nan"), "p_value": 1.0 if n else float("nan"), "n": n,
                "n_dropped": dropped, "method": "wilcoxon_signed_rank(pratt)"}
    r = wilcoxon(d, zero_method="pratt", alternative="two-sided")
    return {"estimate": est, "statistic": float(r.statistic), "p_value": float(r.pvalue), "n": n, "n_dropped": dropped,
            "method": "wilcoxon_signed_rank(pratt)"}


def paired_permutation_test(a, b, *, n_resamples: int = 10000, seed: int = 0, alternative: str = "two-sided") -> dict:
    """Sign-flip permutation test of the mean paired difference ``mean(a - b)``.

    Under H0 each difference is equally likely to have either sign. Exact (all 2^n sign patterns)
    for n <= 16, otherwise ``n_resamples`` random patterns, vectorised; the Monte Carlo p-value is
    (1 + #extreme) / (1 + n_resamples) so it is never 0.
    """
    if alternative not in ("two-sided", "greater", "less"):
        raise PredictionError(f"alternative must be two-sided, greater or less, found {alternative!r}")
    d, dropped = _paired(a, b)
    n = int(d.size)
    if n == 0:
        return {"estimate": float("nan"), "p_value": float("nan"), "n": 0, "n_dropped": dropped, "method": "none"}
    obs = float(d.mean())
    if n <= 16:
        signs = np.array(list(itertools.product((1.0, -1.0), repeat=n)))
        method = "exact sign-flip permutation"
    else:
        rng = np.random.default_rng(seed)
        signs = rng.choice((1.0, -1.0), size=(n_resamples, n))
        method = f"sign-flip permutation ({n_resamples} resamples)"
    null = signs @ d / n
    tol = 1e-12 * max(1.0, abs(obs))  # floating ties count as extreme
    if alternative == "two-sided":
        extreme = np.count_nonzero(np.abs(null) >= abs(obs) - tol)
    elif alternative == "greater":
        extreme = np.count_nonzero(null >= obs - tol)
    else:
        extreme = np.count_nonzero(null <= obs + tol)
    p = extreme / len(null) if n <= 16 else (1 + extreme) / (1 + len(null))
    return {"estimate": obs, "p_value": float(min(1.0, p)), "n": n, "n_dropped": dropped, "method": method}
