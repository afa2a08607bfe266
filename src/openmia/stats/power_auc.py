"""Sample sizes for AUC: Hanley-McNeil and Obuchowski variances, one model or two (paired) — see
:mod:`openmia.stats.power` for the formulas and their sources."""

from __future__ import annotations

import math
from typing import Any, Callable, Sequence

import numpy as np
from scipy.special import ndtr, ndtri

from openmia.errors import ConfigError
from openmia.stats.power_base import PlanResult, VARIANCES, _check_alpha, _check_alternative, _check_half_width, _check_ns, _check_power, _check_prevalence, _grid, _num, _open_interval, _z_alpha


# ----------------------------------------------------------------------------------------------
# AUC


def hanley_mcneil_se(auc: Any, n_pos: Any, n_neg: Any) -> np.ndarray:
    """Hanley & McNeil (1982) standard error of an AUC estimated from ``n_pos`` positive and
    ``n_neg`` negative cases (exponential-model ``Q1``, ``Q2``). Broadcasts over its arguments."""
    a = np.asarray(auc, dtype=float)
    n1 = np.asarray(n_pos, dtype=float)
    n0 = np.asarray(n_neg, dtype=float)
    q1, q2 = a / (2 - a), 2 * a * a / (1 + a)
    var = (a * (1 - a) + (n1 - 1) * (q1 - a * a) + (n0 - 1) * (q2 - a * a)) / (n1 * n0)
    return np.sqrt(var)


def obuchowski_variance(auc: Any, kappa: Any) -> np.ndarray:
    """Obuchowski's variance function ``V(A) = n_pos Var(A)`` for a binormal ROC curve with equal
    variances (Obuchowski et al. 2004, formula 3, with the published constants 0.0099 and 1.414,
    as pROC); ``kappa = n_neg / n_pos``."""
    a = 1.414 * ndtri(np.asarray(auc, dtype=float))
    k = np.asarray(kappa, dtype=float)
    return 0.0099 * np.exp(-a * a / 2) * ((5 * a * a + 8) + (a * a + 8) / k)


def _binormal_f_g(a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    # dA/da and dA/db of A = Phi(a / sqrt(1 + b^2)) at b = 1 (Obuchowski & McClish 1997, table 1)
    e = np.exp(-a * a / 4)
    return e / np.sqrt(4 * np.pi), -a * e / np.sqrt(16 * np.pi)


def auc_estimate_correlation(auc_a: float, auc_b: float, r: float, kappa: float) -> float:
    """Correlation of two AUC estimates from the same cases when the two models' scores correlate
    with ``r`` in positives and in negatives (binormal, b = 1): Obuchowski & McClish's (1997) eq. 5
    covariance over the delta-method variances it is consistent with (``r = 1``, equal AUCs: 1)."""
    if r == 0:
        return 0.0
    a1 = math.sqrt(2) * float(ndtri(auc_a))
    a2 = math.sqrt(2) * float(ndtri(auc_b))
    f1, g1 = _binormal_f_g(np.float64(a1))
    f2, g2 = _binormal_f_g(np.float64(a2))
    k = kappa

    def cov(f1, g1, a1, f2, g2, a2, ra, rn):  # eq. 5 with b1 = b2 = 1
        return (f1 * f2 * (ra + rn / k + ra * ra * a1 * a2 / 2) + g1 * g2 * (rn * rn + k * ra * ra) / (2 * k)
                + f1 * g2 * ra * ra * a1 / 2 + f2 * g1 * ra * ra * a2 / 2)

    c12 = cov(f1, g1, a1, f2, g2, a2, r, r)
    v1 = cov(f1, g1, a1, f1, g1, a1, 1.0, 1.0)
    v2 = cov(f2, g2, a2, f2, g2, a2, 1.0, 1.0)
    return float(np.clip(c12 / math.sqrt(v1 * v2), -1.0, 1.0))


def auc_se(auc: Any, n_pos: Any, n_neg: Any, variance: str = "hanley-mcneil") -> np.ndarray:
    """Standard error of an AUC at ``n_pos`` / ``n_neg`` cases with the chosen variance."""
    if variance == "hanley-mcneil":
        return hanley_mcneil_se(auc, n_pos, n_neg)
    if variance == "obuchowski":
        n1 = np.asarray(n_pos, dtype=float)
        return np.sqrt(obuchowski_variance(auc, np.asarray(n_neg, dtype=float) / n1) / n1)
    raise ConfigError(f"--variance must be one of {', '.join(VARIANCES)}, got {variance!r}")


def auc_half_width(auc: Any, n_pos: Any, n_neg: Any, alpha: float = 0.05, variance: str = "hanley-mcneil") -> np.ndarray:
    """Half-width ``z_{1-alpha/2} SE`` of the normal (DeLong-type) CI of an AUC."""
    return _z_alpha(alpha) * auc_se(auc, n_pos, n_neg, variance)


def _auc_diff_ses(n_pos: Any, auc: float, auc_b: float | None, null: float | None, r: float, kappa: float,
                  variance: str) -> tuple[np.ndarray, np.ndarray]:
    """(SE under H0, SE under H1) of the test statistic's numerator at ``n_pos`` positives."""
    n1 = np.asarray(n_pos, dtype=float)
    n0 = kappa * n1
    if auc_b is None:  # one model against a fixed AUC
        return auc_se(null, n1, n0, variance), auc_se(auc, n1, n0, variance)
    s1, s2 = auc_se(auc, n1, n0, variance), auc_se(auc_b, n1, n0, variance)
    rho0 = auc_estimate_correlation(auc, auc, r, kappa)
    rho1 = auc_estimate_correlation(auc, auc_b, r, kappa)
    se0 = np.sqrt(np.maximum(2 * s1 * s1 * (1 - rho0), 0.0))
    se1 = np.sqrt(np.maximum(s1 * s1 + s2 * s2 - 2 * rho1 * s1 * s2, 0.0))
    return se0, se1


def auc_power(n_pos: Any, auc: float, *, auc_b: float | None = None, null: float | None = None, correlation: float = 0.0,
              kappa: float = 1.0, alpha: float = 0.05, variance: str = "hanley-mcneil",
              alternative: str = "two-sided") -> np.ndarray:
    """Power ``Phi((|delta| - z_alpha SE0) / SE1)`` to detect ``auc_b - auc`` (two models, scores
    correlated ``correlation``) or ``auc - null`` (one model against a fixed AUC) with
    ``n_pos`` positives and ``kappa * n_pos`` negatives (the far tail is ignored, as in
    Obuchowski & McClish 1997 and pROC)."""
    delta = abs((auc_b if auc_b is not None else null) - auc)
    se0, se1 = _auc_diff_ses(n_pos, auc, auc_b, null, correlation, kappa, variance)
    z = _z_alpha(alpha, alternative)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = ndtr((delta - z * se0) / se1)
    return np.where(se1 > 0, out, np.where(delta > z * se0, 1.0, 0.0))


def _auc_inputs(auc: Any, prevalence: Any, variance: str, alpha: Any) -> tuple[float, float, float]:
    a = _open_interval(auc, 0.5, 1.0, "--auc", " (an AUC to plan for must beat chance and be below 1)")
    p = _check_prevalence(prevalence)
    if variance not in VARIANCES:
        raise ConfigError(f"--variance must be one of {', '.join(VARIANCES)}, got {variance!r}")
    return a, p, _check_alpha(alpha)


def _auc_split(total: int, prevalence: float) -> tuple[int, int]:
    n1 = min(max(1, int(round(total * prevalence))), total - 1)
    return n1, total - n1


def _auc_method(variance: str) -> str:
    return ("Hanley & McNeil (1982) AUC standard error" if variance == "hanley-mcneil"
            else "Obuchowski (Obuchowski, Lieber & Wians 2004, formula 3) binormal AUC variance")


def plan_auc(auc: float, *, half_width: float | None = None, delta: float | None = None, null: float | None = None,
             power: float | None = None, prevalence: float = 0.5, correlation: float = 0.0, alpha: float = 0.05,
             variance: str = "hanley-mcneil", alternative: str = "two-sided", ns: Sequence[int] | None = None) -> PlanResult:
    """Cases needed to estimate an AUC to a CI half-width (``half_width``), to detect a difference
    ``delta`` between two models on the same cases (``correlation`` = correlation of their scores;
    0 = independent samples), or to show one model's AUC differs from ``null``.

    ``prevalence`` sets ``kappa = (1 - prevalence) / prevalence`` negatives per positive.
    """
    a, prev, alpha = _auc_inputs(auc, prevalence, variance, alpha)
    goals = [g for g, v in (("--half-width", half_width), ("--delta", delta), ("--null", null)) if v is not None]
    if len(goals) != 1:
        raise ConfigError("plan auc needs exactly one of --half-width W (estimate the AUC to +-W), --delta D "
                          "(detect AUC_B - AUC_A = D between two models) or --null A0 (show the AUC differs from A0)"
                          + (f"; got {', '.join(goals)}" if goals else ""))
    kappa = (1 - prev) / prev
    ns = _check_ns(ns, minimum=2)
    params: dict[str, Any] = {"auc": a, "prevalence": prev, "alpha": alpha, "variance": variance}
    notes: list[str] = []
    if half_width is not None:
        if power is not None:
            raise ConfigError("--power belongs to --delta/--null (a test); --half-width plans a CI, which has no power")
        w = _check_half_width(half_width, upper=0.5)
        s2 = (w / _z_alpha(alpha)) ** 2
        if variance == "obuchowski":
            n1 = float(obuchowski_variance(a, kappa)) / s2
        else:  # SE^2 = [q0 + (n1-1) q1 + (k n1-1) q2] / (k n1^2): a quadratic in n1
            q0, q1, q2 = a * (1 - a), a / (2 - a) - a * a, 2 * a * a / (1 + a) - a * a
            b = q1 + kappa * q2
            n1 = (b + math.sqrt(b * b + 4 * kappa * s2 * (q0 - q1 - q2))) / (2 * kappa * s2)
        value: Callable[[Any, Any], np.ndarray] = lambda n1_, n0_: auc_half_width(a, n1_, n0_, alpha, variance)  # noqa: E731
        goal, target = "half-width", w
        params["half_width"] = w
        method = f"{_auc_method(variance)}; CI half-width z_(1-alpha/2) * SE"
    else:
        power = 0.8 if power is None else _check_power(power)
        _check_alternative(alternative)
        corr = _num(correlation, "--correlation")
        if not -1 < corr <= 1:
            raise ConfigError(f"--correlation must lie in (-1, 1] (the correlation of the two models' scores), got {corr:g}")
        if delta is not None:
            d = _num(delta, "--delta")
            if d == 0:
                raise ConfigError("--delta must not be 0 (the AUC difference to detect)")
            auc_b = _open_interval(a + d, 0.5, 1.0, "--auc + --delta", " (the second model's AUC)")
            nul = None
            params.update(delta=d, auc_b=auc_b, correlation=corr)
            method = (f"{_auc_method(variance)}; two models on the same cases: Var(A1-A2) = V1 + V2 - 2 rho SE1 SE2 "
                      f"(Hanley & McNeil 1983), rho from the score correlation r = {corr:g} via Obuchowski & McClish "
                      "(1997) eq. 5; n from Obuchowski & McClish (1997) eq. 2")
            if corr == 0:
                notes.append("--correlation 0: the two AUCs are treated as independent (different cases, or "
                             "uncorrelated models); two models scored on the same cases usually correlate (r ~ 0.3-0.7), "
                             "which lowers the n needed")
        else:
            if correlation not in (0, 0.0):
                raise ConfigError("--correlation applies to --delta (two models); --null compares one model to a fixed AUC")
            nul = _open_interval(null, 0.0, 1.0, "--null", " (the AUC under the null hypothesis)")
            if nul == a:
                raise ConfigError("--null must differ from --auc")
            auc_b = None
            params.update(null=nul)
            method = (f"{_auc_method(variance)}; one model against a fixed AUC, n from Obuchowski & McClish (1997) "
                      "eq. 2 (pROC power.roc.test with a given AUC)")
        params.update(power=power, alternative=alternative)
        z_a, z_b = _z_alpha(alpha, alternative), float(ndtri(power))
        diff = abs((auc_b if auc_b is not None else nul) - a)
        if variance == "obuchowski":  # SE ∝ 1/sqrt(n1): closed form
            se0, se1 = _auc_diff_ses(1.0, a, auc_b, nul, corr, kappa, variance)
            n1 = (z_a * float(se0) + z_b * float(se1)) ** 2 / diff ** 2
        else:
            from scipy.optimize import brentq

            def gap(n1_: float) -> float:
                s0, s1 = _auc_diff_ses(n1_, a, auc_b, nul, corr, kappa, variance)
                return diff - z_a * float(s0) - z_b * float(s1)

            lo = max(1.0, 1.0 / kappa) + 1e-9
            if gap(lo) >= 0:
                n1 = lo
            else:
                hi = lo * 2
                while gap(hi) < 0:
                    hi *= 2
                    if hi > 1e12:
                        raise ConfigError("the AUC difference is too small to detect with any feasible number of cases")
                n1 = brentq(gap, lo, hi, xtol=1e-10, rtol=1e-12)
        value = lambda n1_, n0_: auc_power(n1_, a, auc_b=auc_b, null=nul, correlation=corr, kappa=n0_ / n1_,  # noqa: E731
                                           alpha=alpha, variance=variance, alternative=alternative)
        goal, target = "power", power
    n_pos, n_neg = int(math.ceil(n1 - 1e-9)), int(math.ceil(kappa * n1 - 1e-9))
    # integer sizes: rounding both up never lowers the precision/power (checked, never assumed)
    while not _reached(goal, float(value(n_pos, n_neg)), target):
        n_pos, n_neg = n_pos + 1, int(math.ceil(kappa * (n_pos + 1)))
    rows, curve_n, curve_v = [], [], []
    grid = ns if ns is not None else _grid((n_pos + n_neg), 2, None)
    for total in grid:
        n1_, n0_ = (n_pos, n_neg) if total == n_pos + n_neg else _auc_split(total, prev)
        v = float(value(n1_, n0_))
        rows.append([total, n1_, n0_, v])
    for total in np.unique(np.geomspace(max(4, 0.15 * (n_pos + n_neg)), 2.5 * (n_pos + n_neg) + 4, 80).astype(int)):
        n1_, n0_ = _auc_split(int(total), prev)
        curve_n.append(int(total))
        curve_v.append(float(value(n1_, n0_)))
    params["kappa"] = kappa
    return PlanResult("auc", goal, target, n_pos + n_neg, method, params,
                      ["n", "positives", "negatives", "CI half-width" if goal == "half-width" else "power"], rows,
                      {"n": curve_n, "value": curve_v}, n_positive=n_pos, n_negative=n_neg,
                      exact={"n_positive": n1, "n_negative": kappa * n1}, notes=notes)


def _reached(goal: str, value: float, target: float) -> bool:
    return value <= target + 1e-12 if goal == "half-width" else value >= target - 1e-12


