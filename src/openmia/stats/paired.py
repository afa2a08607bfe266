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


def _n_extreme(null: np.ndarray, obs: float, alternative: str) -> int:
    """How many null statistics are at least as extreme as ``obs`` (floating ties count)."""
    tol = 1e-12 * max(1.0, abs(obs))
    if alternative == "two-sided":
        return int(np.count_nonzero(np.abs(null) >= abs(obs) - tol))
    if alternative == "greater":
        return int(np.count_nonzero(null >= obs - tol))
    return int(np.count_nonzero(null <= obs + tol))


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
    extreme = _n_extreme(null, obs, alternative)
    p = extreme / len(null) if n <= 16 else (1 + extreme) / (1 + len(null))
    return {"estimate": obs, "p_value": float(min(1.0, p)), "n": n, "n_dropped": dropped, "method": method}


def nanmean_difference_permutation_test(a, b, *, n_resamples: int = 10000, seed: int = 0,
                                        alternative: str = "two-sided", chunk: int = 1024) -> dict:
    """Paired swap-permutation test of ``nanmean(a) - nanmean(b)``: each model's mean over its own
    defined cases, for per-case values where a case may be defined (finite) for one model only.

    Such cases carry information a test on complete pairs would throw away: a segmentation case
    with an empty truth is NaN for a model that predicted nothing (both masks empty) and Dice 0 for
    one that predicted a lesion there. Under H0 the two models' values of a case are exchangeable,
    so each case's pair is swapped with probability 1/2 and the statistic recomputed. Exact (all
    2^n swap patterns) for n <= 16 cases defined for either model, otherwise ``n_resamples``
    random patterns in chunks; Monte Carlo p = (1 + #extreme) / (1 + n_resamples). With identical
    NaN patterns this is :func:`paired_permutation_test` of the mean difference.

    Args:
        a, b: ``(N,)`` per-case values of the two models, NaN where undefined.
    Returns:
        estimate (the observed difference), p_value, n (cases defined for either model),
        n_one_sided (cases defined for one model only), method.
    """
    if alternative not in ("two-sided", "greater", "less"):
        raise PredictionError(f"alternative must be two-sided, greater or less, found {alternative!r}")
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a.shape != b.shape or a.ndim != 1:
        raise PredictionError(f"paired values must be two 1-D arrays of equal length, found shapes {a.shape} and {b.shape}")
    oka, okb = np.isfinite(a), np.isfinite(b)
    keep = oka | okb
    oka, okb = oka[keep].astype(float), okb[keep].astype(float)
    a0, b0 = np.where(oka > 0, a[keep], 0.0), np.where(okb > 0, b[keep], 0.0)
    n, one_sided = int(keep.sum()), int((oka != okb).sum())
    if not oka.any() or not okb.any():
        return {"estimate": float("nan"), "p_value": float("nan"), "n": n, "n_one_sided": one_sided, "method": "none"}

    def stat(swap: np.ndarray) -> np.ndarray:
        """(R, n) 0/1 swap patterns -> (R,) differences of the two means (NaN where a side is empty)."""
        stay = 1.0 - swap
        with np.errstate(invalid="ignore", divide="ignore"):
            return ((stay @ a0 + swap @ b0) / (stay @ oka + swap @ okb)
                    - (stay @ b0 + swap @ a0) / (stay @ okb + swap @ oka))

    obs = float(stat(np.zeros((1, n)))[0])
    exact = n <= 16
    if exact:
        patterns = [np.array(list(itertools.product((0.0, 1.0), repeat=n)))]
        method = "exact swap permutation of nanmean difference"
    else:
        rng = np.random.default_rng(seed)
        sizes = [min(chunk, n_resamples - i) for i in range(0, n_resamples, chunk)]
        patterns = (rng.integers(0, 2, size=(s, n)).astype(float) for s in sizes)
        method = f"swap permutation of nanmean difference ({n_resamples} resamples)"
    extreme = total = 0
    for swap in patterns:
        null = stat(swap)
        null = null[np.isfinite(null)]  # a pattern that leaves a model no defined case has no statistic
        total += len(null)
        extreme += _n_extreme(null, obs, alternative)
    p = extreme / total if exact else (1 + extreme) / (1 + total)
    return {"estimate": obs, "p_value": float(min(1.0, p)), "n": n, "n_one_sided": one_sided, "method": method}
