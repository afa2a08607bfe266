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
from scipy.stats import t as student_t

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


ALTERNATIVES = ("two-sided", "greater", "less")


def _check_alternative(alternative: str) -> None:
    if alternative not in ALTERNATIVES:
        raise ValueError(f"alternative must be one of {ALTERNATIVES}, found {alternative!r}")


def z_test(diff: float, se: float, alpha: float = 0.05, alternative: str = "two-sided",
           df: float | None = None) -> dict[str, float]:
    """z-test of a difference of AUCs with standard error ``se``, and the matching ``1 - alpha`` CI
    (with ``df``: Student's t with ``df`` degrees of freedom instead of the normal distribution).

    ``alternative``: ``two-sided`` (H1: diff != 0), ``greater`` (H1: diff > 0, p = P(Z >= z)) or
    ``less`` (H1: diff < 0, p = P(Z <= z)), as pROC's ``roc.test``. One-sided tests get the one-sided
    interval, closed at the end of the range of a difference of AUCs: ``greater`` ->
    [diff - z_{1-alpha} se, 1], ``less`` -> [-1, diff + z_{1-alpha} se]. With se = 0 and diff = 0
    the p-value is 1 (no evidence either way).
    """
    _check_alternative(alternative)
    dist = norm if df is None or not np.isfinite(df) else student_t(df)
    if se == 0:
        z = 0.0 if diff == 0 else math.copysign(math.inf, diff)
        if diff == 0:
            p = 1.0
        elif alternative == "two-sided":
            p = 0.0
        else:
            p = 0.0 if (diff > 0) == (alternative == "greater") else 1.0
    else:
        z = diff / se
        p = float(2 * dist.sf(abs(z))) if alternative == "two-sided" else \
            float(dist.sf(z) if alternative == "greater" else dist.cdf(z))
    if alternative == "two-sided":
        zc = dist.ppf(1 - alpha / 2)
        lo, hi = diff - zc * se, diff + zc * se
    elif alternative == "greater":
        lo, hi = diff - dist.ppf(1 - alpha) * se, 1.0
    else:
        lo, hi = -1.0, diff + dist.ppf(1 - alpha) * se
    return {"diff": diff, "se": se, "z": z, "p_value": p, "ci_low": lo, "ci_high": hi}


def paired_test_from_influence(auc_a: float, psi_a: np.ndarray, auc_b: float, psi_b: np.ndarray,
                               alpha: float = 0.05, alternative: str = "two-sided") -> dict[str, float]:
    """z-test of AUC_a - AUC_b on the same cases, with its CI (two-sided unless ``alternative``)."""
    se = float(np.sqrt(np.sum((psi_a - psi_b) ** 2)))
    t = z_test(auc_a - auc_b, se, alpha, alternative)
    out = {"auc_a": auc_a, "auc_b": auc_b, **t}
    if alternative != "two-sided":
        out["alternative"] = alternative
    return out


def unpaired_test_from_influence(auc_a: float, psi_a: np.ndarray, auc_b: float, psi_b: np.ndarray,
                                 alpha: float = 0.05, alternative: str = "two-sided") -> dict[str, float]:
    """Test of AUC_a - AUC_b on two independent test sets, as pROC's ``roc.test(paired = FALSE,
    method = "delong")``: D = diff / sqrt(V_a + V_b) (no covariance), referred to Student's t with
    the Welch-Satterthwaite degrees of freedom df = (V_a + V_b)^2 / (V_a^2 / (N_a - 1) + V_b^2 / (N_b - 1)),
    N = the number of cases of each set. ``z`` holds D; ``df`` is returned too."""
    va, vb = float(np.sum(psi_a**2)), float(np.sum(psi_b**2))
    se = math.sqrt(va + vb)
    na, nb = len(psi_a), len(psi_b)
    den = va**2 / max(na - 1, 1) + vb**2 / max(nb - 1, 1)
    df = (va + vb) ** 2 / den if den > 0 else math.inf
    return {"auc_a": auc_a, "auc_b": auc_b, **z_test(auc_a - auc_b, se, alpha, alternative, df=df), "df": df,
            "alternative": alternative}


def delong_paired_test(y: np.ndarray, score_a: np.ndarray, score_b: np.ndarray, alpha: float = 0.05,
                       alternative: str = "two-sided") -> dict[str, float]:
    """DeLong's paired test of two binary classifiers' AUCs on the same cases (diff = a - b)."""
    aa, pa = influence(y, score_a)
    ab, pb = influence(y, score_b)
    return paired_test_from_influence(aa, pa, ab, pb, alpha, alternative)


def delong_paired_test_ovr(y: np.ndarray, probs_a: np.ndarray, probs_b: np.ndarray, task_type: str | None = None,
                           alpha: float = 0.05, alternative: str = "two-sided") -> dict[str, float]:
    """Paired DeLong test of macro (one-vs-rest) AUCs; binary when ``probs`` have 2 columns and ``y`` is 0/1."""
    probs_a, probs_b = np.asarray(probs_a, float), np.asarray(probs_b, float)
    if task_type is None:
        task_type = "binary" if probs_a.shape[1] == 2 else "multi-class"
    aa, pa, _, _ = influence_ovr(y, probs_a, task_type)
    ab, pb, _, _ = influence_ovr(y, probs_b, task_type)
    return paired_test_from_influence(aa, pa, ab, pb, alpha, alternative)


def delong_unpaired_test(y_a: np.ndarray, score_a: np.ndarray, y_b: np.ndarray, score_b: np.ndarray,
                         alpha: float = 0.05, alternative: str = "two-sided") -> dict[str, float]:
    """DeLong test of two binary AUCs from two independent test sets (different cases, e.g. two
    hospitals): D = (AUC_a - AUC_b) / sqrt(Var_a + Var_b), each Var DeLong's, with pROC's t reference
    distribution (see :func:`unpaired_test_from_influence`)."""
    aa, pa = influence(y_a, score_a)
    ab, pb = influence(y_b, score_b)
    return unpaired_test_from_influence(aa, pa, ab, pb, alpha, alternative)


def delong_unpaired_test_ovr(y_a: np.ndarray, probs_a: np.ndarray, y_b: np.ndarray, probs_b: np.ndarray,
                             task_type: str | None = None, alpha: float = 0.05,
                             alternative: str = "two-sided") -> dict[str, float]:
    """Unpaired DeLong test of macro (one-vs-rest) AUCs on two independent test sets."""
    probs_a, probs_b = np.asarray(probs_a, float), np.asarray(probs_b, float)
    if task_type is None:
        task_type = "binary" if probs_a.shape[1] == 2 else "multi-class"
    aa, pa, _, _ = influence_ovr(np.asarray(y_a), probs_a, task_type)
    ab, pb, _, _ = influence_ovr(np.asarray(y_b), probs_b, task_type)
    return unpaired_test_from_influence(aa, pa, ab, pb, alpha, alternative)


def influence_weighted(y: np.ndarray, probs: np.ndarray, task_type: str) -> tuple[float, np.ndarray]:
    """Prevalence-weighted one-vs-rest AUC (scikit-learn ``average='weighted'``) and its influence
    values: psi = sum_k pi_k psi_k with pi_k = n_k / sum n_k held fixed (DeLong conditions on the
    class sizes, as for a single AUC)."""
    _, _, aucs, psis = influence_ovr(y, probs, task_type)
    counts = (y.sum(axis=0) if task_type == "multi-label" else np.bincount(y, minlength=probs.shape[1])).astype(float)
    pi = counts / counts.sum()
    return float(pi @ aucs), pi @ psis


def influence_ovo(y: np.ndarray, probs: np.ndarray) -> tuple[float, np.ndarray]:
    """Hand & Till (2001) one-vs-one AUC M and its influence values: the mean over class pairs of
    (A(j|k) + A(k|j)) / 2, each pairwise AUC's DeLong influence living on the cases of its pair."""
    y = np.asarray(y)
    k = probs.shape[1]
    psi = np.zeros(len(y))
    aucs = []
    for a in range(k):
        for b in range(a + 1, k):
            idx = np.flatnonzero((y == a) | (y == b))
            a1, p1 = influence(y[idx] == a, probs[idx, a])
            a2, p2 = influence(y[idx] == b, probs[idx, b])
            aucs.append((a1 + a2) / 2)
            psi[idx] += (p1 + p2) / 2
    return float(np.mean(aucs)), psi / len(aucs)
