"""DeLong's method for ROC AUC (DeLong, DeLong & Clarke-Pearson, Biometrics 1988) with the fast
midrank algorithm of Sun & Xu (IEEE SPL 2014): O(N log N) instead of O(m n).

Everything is expressed through per-case *influence values* psi: for a positive case i,
psi_i = (V10_i - AUC) / sqrt(m (m - 1)); for a negative case j, psi_j = (V01_j - AUC) / sqrt(n (n - 1)),
where V10_i is the fraction of negatives scored below positive i (ties 1/2) and V01_j the fraction of
positives scored above negative j. Then

    Var(AUC) = sum psi^2                                  (exactly DeLong's S10/m + S01/n)
    Var(AUC_a - AUC_b) = sum (psi_a - psi_b)^2             (DeLong's paired test)

and a macro one-vs-rest AUC over K classes has Var = sum_i (mean_k psi_k,i)^2 — DeLong's covariance
where partitions coincide, its influence-function generalisation where they differ.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.stats import norm, rankdata

from openmia.errors import PredictionError


def placements(y: np.ndarray, score: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """AUC and the structural components V10 (positives) and V01 (negatives), via midranks."""
    y = np.asarray(y).astype(bool)
    score = np.asarray(score, dtype=float)
    x, z = score[y], score[~y]
    m, n = len(x), len(z)
    if m == 0 or n == 0:
        raise PredictionError(f"AUC is undefined: {m} positive and {n} negative cases (both classes are needed)")
    r_all = rankdata(np.concatenate([x, z]))
    rx, rz = rankdata(x), rankdata(z)
    v10 = (r_all[:m] - rx) / n
    v01 = 1.0 - (r_all[m:] - rz) / m
    return float(v10.mean()), v10, v01


def influence(y: np.ndarray, score: np.ndarray) -> tuple[float, np.ndarray]:
    """AUC and per-case influence values ``(N,)`` (see module docstring)."""
    y = np.asarray(y).astype(bool)
    auc, v10, v01 = placements(y, score)
    m, n = len(v10), len(v01)
    psi = np.empty(len(y))
    psi[y] = (v10 - auc) / math.sqrt(m * (m - 1)) if m > 1 else 0.0
    psi[~y] = (v01 - auc) / math.sqrt(n * (n - 1)) if n > 1 else 0.0
    return auc, psi


def influence_ovr(y: np.ndarray, probs: np.ndarray, task_type: str) -> tuple[float, np.ndarray, np.ndarray, np.ndarray]:
    """Macro AUC with its influence values; also per-class AUCs ``(K,)`` and influences ``(K, N)``.

    Binary: the AUC of ``probs[:, 1]``. Multi-class/ordinal: one-vs-rest. Multi-label: per label.
    """
    if task_type == "binary":
        a, psi = influence(y, probs[:, 1])
        return a, psi, np.array([a]), psi[None]
    aucs, psis = [], []
    for k in range(probs.shape[1]):
        t = y[:, k] if task_type == "multi-label" else (y == k)
        a, p = influence(t, probs[:, k])
        aucs.append(a)
        psis.append(p)
    psis = np.array(psis)
    return float(np.mean(aucs)), psis.mean(axis=0), np.array(aucs), psis


def auc_ci(auc: float, psi: np.ndarray, alpha: float = 0.05) -> tuple[float, float, float]:
    """Normal-theory CI ``(low, high, se)`` on the AUC scale, clipped to [0, 1] (as pROC's default)."""
    se = float(np.sqrt(np.sum(psi**2)))
    z = norm.ppf(1 - alpha / 2)
    return max(0.0, auc - z * se), min(1.0, auc + z * se), se


def delong_ci(y: np.ndarray, score: np.ndarray, alpha: float = 0.05) -> tuple[float, float, float]:
    """AUC and its DeLong ``1 - alpha`` CI for a binary problem: ``(auc, low, high)``."""
    a, psi = influence(y, score)
    lo, hi, _ = auc_ci(a, psi, alpha)
    return a, lo, hi


def paired_test_from_influence(auc_a: float, psi_a: np.ndarray, auc_b: float, psi_b: np.ndarray,
                               alpha: float = 0.05) -> dict[str, float]:
    """Two-sided z-test of AUC_a - AUC_b on the same cases, with its CI."""
    diff = auc_a - auc_b
    se = float(np.sqrt(np.sum((psi_a - psi_b) ** 2)))
    zc = norm.ppf(1 - alpha / 2)
    if se == 0:
        p = 1.0 if diff == 0 else 0.0
        z = 0.0 if diff == 0 else math.copysign(math.inf, diff)
    else:
        z = diff / se
        p = float(2 * norm.sf(abs(z)))
    return {"auc_a": auc_a, "auc_b": auc_b, "diff": diff, "se": se, "z": z, "p_value": p,
            "ci_low": diff - zc * se, "ci_high": diff + zc * se}


def delong_paired_test(y: np.ndarray, score_a: np.ndarray, score_b: np.ndarray, alpha: float = 0.05) -> dict[str, float]:
    """DeLong's paired test of two binary classifiers' AUCs on the same cases (diff = a - b)."""
    aa, pa = influence(y, score_a)
    ab, pb = influence(y, score_b)
    return paired_test_from_influence(aa, pa, ab, pb, alpha)


def delong_paired_test_ovr(y: np.ndarray, probs_a: np.ndarray, probs_b: np.ndarray, task_type: str | None = None,
                           alpha: float = 0.05) -> dict[str, float]:
    """Paired DeLong test of macro (one-vs-rest) AUCs; binary when ``probs`` have 2 columns and ``y`` is 0/1."""
    probs_a, probs_b = np.asarray(probs_a, float), np.asarray(probs_b, float)
    if task_type is None:
        task_type = "binary" if probs_a.shape[1] == 2 else "multi-class"
    aa, pa, _, _ = influence_ovr(y, probs_a, task_type)
    ab, pb, _, _ = influence_ovr(y, probs_b, task_type)
    return paired_test_from_influence(aa, pa, ab, pb, alpha)
