"""Sample sizes for evaluation studies (``openmia plan``, DESIGN §4): how many test cases are needed
to estimate a metric to a confidence-interval half-width ``w``, or to detect a difference ``d``
between two models with power ``1 - beta`` at level ``alpha``.

Closed forms (all normal approximations, as in their sources):

* **AUC** — Hanley & McNeil (1982, Radiology 143:29) standard error
  ``SE^2 = [A(1-A) + (nA-1)(Q1-A^2) + (nN-1)(Q2-A^2)] / (nA nN)``, ``Q1 = A/(2-A)``,
  ``Q2 = 2A^2/(1+A)``; or Obuchowski's binormal variance function (Obuchowski, Lieber & Wians 2004,
  Clin Chem 50:1118, formula 3, as pROC's ``power.roc.test``) ``nA Var(A) = V(A) =
  0.0099 exp(-a^2/2) [(5a^2 + 8) + (a^2 + 8)/kappa]`` with ``a = 1.414 Phi^-1(A)`` and
  ``kappa = nN/nA``. Sample size for a test (Obuchowski & McClish 1997, Stat Med 16:1529, eq. 2):
  ``nA = [z_alpha sqrt(V0) + z_beta sqrt(VA)]^2 / delta^2`` with ``V0`` the variance under H0 and
  ``VA`` under H1. Two models on the same cases: ``Var(A1 - A2) = V1 + V2 - 2 rho SE1 SE2`` (Hanley &
  McNeil 1983, Radiology 148:839), where ``rho``, the correlation of the two AUC *estimates*, follows
  from the correlation ``r`` of the two models' scores through Obuchowski & McClish's (1997, eq. 5)
  binormal covariance and the matching delta-method variance (so ``r = 0`` is two independent
  samples and ``r = 1`` with equal AUCs gives ``Var = 0``).
* **Proportions** — Wilson (1927) score-interval half-width
  ``z sqrt(p(1-p)/n + z^2/(4n^2)) / (1 + z^2/n)``, solved for ``n`` in closed form (a quadratic).
* **McNemar** (paired accuracy) — Connor (1987, Biometrics 43:207)
  ``n = [z_alpha sqrt(psi) + z_beta sqrt(psi - delta^2)]^2 / delta^2``, or Miettinen (1968,
  Biometrics 24:339) ``n = [z_alpha psi + z_beta sqrt(psi^2 - delta^2 (3+psi)/4)]^2 / (psi delta^2)``,
  with ``psi = p10 + p01`` (discordant pairs) and ``delta = p10 - p01``.

Per-case metrics (Dice, HD95, ...) have no closed form: the pilot's per-case values (or the paired
differences of two pilots on the same cases) are resampled with replacement at each candidate
``n`` (``resamples`` simulated studies, drawn as multinomial *counts* over the pilot cases, so the cost
does not grow with ``n``). Each simulated study gets the t-interval half-width of its mean (the
first-order equivalent of the evaluator's BCa interval), or the paired test ``openmia compare`` runs
— the Wilcoxon signed-rank test with Pratt's zero handling, normal approximation with the tie
correction, exactly as ``scipy.stats.wilcoxon(d, zero_method="pratt")`` computes it once ties are
present — or a paired t-test. The random stream of each ``n`` is seeded by ``(seed, n)``, so a value
does not depend on which other sizes were evaluated.

Everything here is numpy + ``scipy.special``; matplotlib is imported only by :func:`plan_figure`.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
from scipy.special import ndtr, ndtri, stdtr, stdtrit

from openmia.errors import ConfigError, PredictionError

SCHEMA = "openmia.plan/1"
VARIANCES = ("hanley-mcneil", "obuchowski")
MCNEMAR_METHODS = ("connor", "miettinen")
PAIRED_TESTS = ("wilcoxon", "t")
ALTERNATIVES = ("two-sided", "one-sided")
_TABLE_FACTORS = (0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 2.0)
_MAX_CELLS = 4_000_000  # resampling works in chunks of at most this many counts


# ----------------------------------------------------------------------------------------------
# the result


@dataclass
class PlanResult:
    """A sample-size plan: the required size, the table of sizes around it and the curve behind
    the figure.

    Attributes:
        kind: ``auc``, ``proportion``, ``mcnemar`` or ``metric``.
        goal: ``half-width`` (estimate to a CI half-width) or ``power`` (detect a difference).
        target: the half-width ``w`` or the power ``1 - beta`` asked for.
        n: cases (pairs for McNemar) needed in total; None when not reached up to ``max_n``.
        n_positive, n_negative: for AUC (and proportions of positives/negatives), the split of ``n``.
        exact: the unrounded solution of the closed form (comparable with pROC / published tables).
        columns, rows: the table printed by the CLI (``rows[i][0]`` is a total size).
        curve: ``{"n": [...], "value": [...]}`` — half-width or power against total size.
        method: the formula or simulation used, with its source.
        params: the inputs, as given.
        notes: caveats worth printing (e.g. few discordant pairs, Monte-Carlo error).
    """

    kind: str
    goal: str
    target: float
    n: int | None
    method: str
    params: dict[str, Any]
    columns: list[str]
    rows: list[list[Any]]
    curve: dict[str, list[float]]
    n_positive: int | None = None
    n_negative: int | None = None
    exact: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def value_label(self) -> str:
        return "CI half-width" if self.goal == "half-width" else "power"

    def to_dict(self) -> dict[str, Any]:
        """The JSON-serialisable form written to ``plan.json`` (schema ``openmia.plan/1``)."""
        return {"schema": SCHEMA, "kind": self.kind, "goal": self.goal, "target": self.target, "n": self.n,
                "n_positive": self.n_positive, "n_negative": self.n_negative, "exact": self.exact,
                "method": self.method, "params": self.params, "notes": self.notes,
                "table": {"columns": self.columns, "rows": self.rows}, "curve": self.curve}

    def summary_line(self) -> str:
        """One sentence: what is needed for what."""
        what = (f"a {100 * (1 - self.params.get('alpha', 0.05)):g}% CI half-width <= {self.target:g}"
                if self.goal == "half-width" else f"power >= {self.target:g} at alpha = {self.params.get('alpha', 0.05):g}")
        unit = "pairs of results (cases)" if self.kind == "mcnemar" else "cases"
        if self.n is None:
            return f"{what}: not reached with up to {self.params.get('max_n')} {unit}"
        among = self.params.get("among", "all")
        if self.kind == "proportion" and among != "all":
            k = self.n_positive if among == "positives" else self.n_negative
            return (f"{what}: n = {k} {among}" if self.params.get("prevalence") is None
                    else f"{what}: n = {self.n} {unit} ({k} {among} at prevalence {self.params['prevalence']:g})")
        split = (f" ({self.n_positive} positive + {self.n_negative} negative)"
                 if self.n_positive is not None and self.n_negative is not None else "")
        return f"{what}: n = {self.n} {unit}{split}"


# ----------------------------------------------------------------------------------------------
# validation helpers: every message names the option


def _num(x: Any, flag: str) -> float:
    try:
        v = float(x)
    except (TypeError, ValueError):
        raise ConfigError(f"{flag} must be a number, got {x!r}") from None
    if not math.isfinite(v):
        raise ConfigError(f"{flag} must be a finite number, got {x!r}")
    return v


def _open_interval(x: Any, lo: float, hi: float, flag: str, what: str = "") -> float:
    v = _num(x, flag)
    if not lo < v < hi:
        raise ConfigError(f"{flag} must lie strictly between {lo:g} and {hi:g}{what}, got {v:g}")
    return v


def _check_alpha(alpha: Any) -> float:
    return _open_interval(alpha, 0.0, 0.5, "--alpha", " (the significance level, e.g. 0.05)")


def _check_power(power: Any) -> float:
    return _open_interval(power, 0.0, 1.0, "--power", " (1 - beta, e.g. 0.8)")


def _check_half_width(w: Any, upper: float | None = None) -> float:
    v = _num(w, "--half-width")
    if v <= 0:
        raise ConfigError(f"--half-width must be > 0 (the CI half-width to reach), got {v:g}")
    if upper is not None and v >= upper:
        raise ConfigError(f"--half-width must be < {upper:g} for this quantity, got {v:g}")
    return v


def _check_alternative(alternative: str) -> str:
    if alternative not in ALTERNATIVES:
        raise ConfigError(f"alternative must be one of {', '.join(ALTERNATIVES)}, got {alternative!r}")
    return alternative


def _z_alpha(alpha: float, alternative: str = "two-sided") -> float:
    return float(ndtri(1 - alpha / 2)) if alternative == "two-sided" else float(ndtri(1 - alpha))


def _check_prevalence(p: Any) -> float:
    return _open_interval(p, 0.0, 1.0, "--prevalence", " (the share of positive cases)")


def _check_ns(ns: Sequence[int] | None, minimum: int = 1) -> list[int] | None:
    if ns is None:
        return None
    out = []
    for x in ns:
        try:
            v = int(x)
            if v != float(x):
                raise ValueError
        except (TypeError, ValueError):
            raise ConfigError(f"--n must be whole numbers of cases, got {x!r}") from None
        if v < minimum:
            raise ConfigError(f"--n values must be >= {minimum}, got {v}")
        out.append(v)
    if not out:
        raise ConfigError("--n needs at least one size")
    return sorted(set(out))


def _grid(n_star: float | None, minimum: int, ns: list[int] | None) -> list[int]:
    """Table sizes: the user's, or fractions and multiples of the solution."""
    if ns is not None:
        return ns
    if n_star is None:
        return []
    return sorted({max(minimum, int(math.ceil(f * n_star))) for f in _TABLE_FACTORS} | {max(minimum, int(math.ceil(n_star)))})


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


# ----------------------------------------------------------------------------------------------
# proportions


def wilson_half_width(p: Any, n: Any, alpha: float = 0.05) -> np.ndarray:
    """Half-width of the Wilson (1927) score interval for an expected proportion ``p`` at ``n``:
    ``z sqrt(p(1-p)/n + z^2/(4 n^2)) / (1 + z^2/n)``."""
    z = _z_alpha(alpha)
    p = np.asarray(p, dtype=float)
    n = np.asarray(n, dtype=float)
    return z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)


def wilson_n(p: float, half_width: float, alpha: float = 0.05) -> float:
    """The (real) ``n`` at which the Wilson half-width equals ``half_width``: the larger root of
    ``w^2 (n + z^2)^2 = z^2 (p(1-p) n + z^2/4)``."""
    z2 = _z_alpha(alpha) ** 2
    w2 = half_width * half_width
    b = 2 * w2 * z2 - z2 * p * (1 - p)
    c = w2 * z2 * z2 - z2 * z2 / 4
    disc = b * b - 4 * w2 * c
    return (-b + math.sqrt(max(disc, 0.0))) / (2 * w2)


def plan_proportion(p: float, *, half_width: float, alpha: float = 0.05, prevalence: float | None = None,
                    among: str = "all", ns: Sequence[int] | None = None) -> PlanResult:
    """Cases needed to estimate a proportion (accuracy, sensitivity, specificity) to a Wilson CI
    half-width. For sensitivity (``among="positives"``) or specificity (``"negatives"``) the count is
    of those cases; with ``prevalence`` it is also converted into total cases."""
    p = _num(p, "--p")
    if not 0 <= p <= 1:
        raise ConfigError(f"--p must lie in [0, 1] (the expected proportion), got {p:g}")
    alpha = _check_alpha(alpha)
    w = _check_half_width(half_width, upper=0.5)
    if among not in ("all", "positives", "negatives"):
        raise ConfigError(f"--among must be all, positives or negatives, got {among!r}")
    prev = None if prevalence is None else _check_prevalence(prevalence)
    if among == "all" and prev is not None:
        raise ConfigError("--prevalence only applies with --among positives (sensitivity) or --among negatives (specificity)")
    ns = _check_ns(ns)
    exact = wilson_n(p, w, alpha)
    n = max(1, int(math.ceil(exact - 1e-9)))
    while float(wilson_half_width(p, n, alpha)) > w + 1e-12:
        n += 1
    while n > 1 and float(wilson_half_width(p, n - 1, alpha)) <= w:
        n -= 1
    share = None if prev is None else (prev if among == "positives" else 1 - prev)
    params: dict[str, Any] = {"p": p, "half_width": w, "alpha": alpha, "among": among, "prevalence": prev}
    notes = []
    if among != "all":
        notes.append(f"the half-width is that of a proportion among {n} {among}" + (
            "; give --prevalence to convert into total cases" if share is None else
            f"; with prevalence {prev:g} that takes {int(math.ceil(n / share))} cases in all"))
    total = n if share is None else int(math.ceil(n / share))
    cols = ["n" if among == "all" else f"n {among}"] + ([] if share is None else ["n total"]) + ["CI half-width"]
    grid = ns if ns is not None else _grid(n, 1, None)
    rows = [[k] + ([] if share is None else [int(math.ceil(k / share))]) + [float(wilson_half_width(p, k, alpha))] for k in grid]
    cn = np.unique(np.geomspace(max(2, 0.1 * n), 2.5 * n + 4, 80).astype(int))
    return PlanResult("proportion", "half-width", w, total, "Wilson (1927) score interval half-width, solved for n",
                      params, cols, rows, {"n": [int(k) for k in cn], "value": [float(v) for v in wilson_half_width(p, cn, alpha)]},
                      n_positive=n if among == "positives" else None, n_negative=n if among == "negatives" else None,
                      exact={"n": exact}, notes=notes)


# ----------------------------------------------------------------------------------------------
# McNemar


def _mcnemar_terms(p10: float, p01: float, method: str) -> tuple[float, float, float]:
    """(null sd, alternative sd, |delta|) per sqrt(pair): power = Phi((|d| sqrt(n) - z sd0) / sd1)."""
    psi, d = p10 + p01, p10 - p01
    if method == "connor":
        return math.sqrt(psi), math.sqrt(max(psi - d * d, 0.0)), abs(d)
    if method == "miettinen":  # Miettinen (1968): |d| sqrt(n psi) vs z psi and sqrt(psi^2 - d^2 (3 + psi) / 4)
        return math.sqrt(psi), math.sqrt(max(psi * psi - d * d * (3 + psi) / 4, 0.0)) / math.sqrt(psi), abs(d)
    raise ConfigError(f"--method must be one of {', '.join(MCNEMAR_METHODS)}, got {method!r}")


def mcnemar_power(n: Any, p10: float, p01: float, alpha: float = 0.05, method: str = "connor",
                  alternative: str = "two-sided") -> np.ndarray:
    """Power of McNemar's test with ``n`` pairs when the discordant-pair proportions are ``p10``
    (model A right, B wrong) and ``p01`` (A wrong, B right); normal approximation of Connor (1987)
    or Miettinen (1968), far tail ignored."""
    s0, s1, d = _mcnemar_terms(p10, p01, method)
    z = _z_alpha(alpha, alternative)
    n = np.asarray(n, dtype=float)
    with np.errstate(divide="ignore"):
        return ndtr((d * np.sqrt(n) - z * s0) / s1) if s1 > 0 else np.where(d * np.sqrt(n) > z * s0, 1.0, 0.0)


def mcnemar_n(p10: float, p01: float, power: float = 0.8, alpha: float = 0.05, method: str = "connor",
              alternative: str = "two-sided") -> float:
    """The (real) number of pairs for McNemar's test: Connor (1987)
    ``[z_a sqrt(psi) + z_b sqrt(psi - d^2)]^2 / d^2`` or Miettinen (1968)
    ``[z_a psi + z_b sqrt(psi^2 - d^2 (3+psi)/4)]^2 / (psi d^2)``."""
    s0, s1, d = _mcnemar_terms(p10, p01, method)
    return (_z_alpha(alpha, alternative) * s0 + float(ndtri(power)) * s1) ** 2 / (d * d)


def plan_mcnemar(*, p10: float | None = None, p01: float | None = None, acc_a: float | None = None,
                 acc_b: float | None = None, discordant: float | None = None, power: float = 0.8, alpha: float = 0.05,
                 method: str = "connor", alternative: str = "two-sided", ns: Sequence[int] | None = None) -> PlanResult:
    """Cases needed for McNemar's test to detect a difference in accuracy (sensitivity, ...)
    between two models on the same cases, from the discordant-pair proportions ``p10``/``p01`` or
    from the two accuracies and the share of cases on which the models disagree (``discordant``)."""
    given_cells = p10 is not None or p01 is not None
    given_marg = acc_a is not None or acc_b is not None or discordant is not None
    if given_cells == given_marg:
        raise ConfigError("plan mcnemar needs either --p10 and --p01 (shares of cases only model A / only model B gets "
                          "right) or --acc-a, --acc-b and --discordant (the two accuracies and the share of cases on "
                          "which the models disagree)")
    if given_cells:
        if p10 is None or p01 is None:
            raise ConfigError("give both --p10 and --p01")
        p10 = _num(p10, "--p10")
        p01 = _num(p01, "--p01")
        for v, flag in ((p10, "--p10"), (p01, "--p01")):
            if not 0 <= v < 1:
                raise ConfigError(f"{flag} must lie in [0, 1), got {v:g}")
    else:
        if acc_a is None or acc_b is None or discordant is None:
            raise ConfigError("give all of --acc-a, --acc-b and --discordant")
        aa = _open_interval(acc_a, 0.0, 1.0, "--acc-a")
        ab = _open_interval(acc_b, 0.0, 1.0, "--acc-b")
        psi = _open_interval(discordant, 0.0, 1.0, "--discordant", " (share of cases the two models disagree on)")
        if psi < abs(aa - ab) or psi > min(aa + ab, 2 - aa - ab):
            raise ConfigError(f"--discordant {psi:g} is impossible with accuracies {aa:g} and {ab:g}: it must lie between "
                              f"|acc-a - acc-b| = {abs(aa - ab):g} and {min(aa + ab, 2 - aa - ab):g}")
        p10, p01 = (psi + aa - ab) / 2, (psi - aa + ab) / 2
    if p10 + p01 > 1:
        raise ConfigError(f"--p10 + --p01 must be <= 1, got {p10 + p01:g}")
    if p10 == p01:
        raise ConfigError("--p10 equals --p01: the two models are equally accurate, there is no difference to detect")
    alpha = _check_alpha(alpha)
    power = _check_power(power)
    _check_alternative(alternative)
    if method not in MCNEMAR_METHODS:
        raise ConfigError(f"--method must be one of {', '.join(MCNEMAR_METHODS)}, got {method!r}")
    ns = _check_ns(ns)
    exact = mcnemar_n(p10, p01, power, alpha, method, alternative)
    n = max(1, int(math.ceil(exact - 1e-9)))
    psi = p10 + p01
    notes = []
    if n * psi < 20:
        notes.append(f"only ~{n * psi:.0f} discordant pairs expected at n = {n}: the normal approximation is rough "
                     "there; openmia compare runs the exact McNemar test, which needs somewhat more cases")
    grid = ns if ns is not None else _grid(n, 1, None)
    rows = [[k, k * psi, float(mcnemar_power(k, p10, p01, alpha, method, alternative))] for k in grid]
    cn = np.unique(np.geomspace(max(2, 0.1 * n), 2.5 * n + 4, 80).astype(int))
    src = "Connor (1987)" if method == "connor" else "Miettinen (1968)"
    params = {"p10": p10, "p01": p01, "discordant": psi, "delta": p10 - p01, "power": power, "alpha": alpha,
              "method": method, "alternative": alternative}
    return PlanResult("mcnemar", "power", power, n, f"McNemar test sample size, {src} normal approximation", params,
                      ["n", "discordant pairs", "power"], rows,
                      {"n": [int(k) for k in cn], "value": [float(v) for v in mcnemar_power(cn, p10, p01, alpha, method, alternative)]},
                      exact={"n": exact}, notes=notes)


# ----------------------------------------------------------------------------------------------
# per-case metrics from a pilot


def read_pilot(path: str | Path, metric: str, label: str = "all", option: str = "--pilot") -> dict[str, float]:
    """Per-case values of ``metric`` for ``label`` from a pilot ``per_case.csv`` (see :func:`load_pilot`)."""
    return load_pilot(path, metric, label, option)[0]


def load_pilot(path: str | Path, metric: str, label: str = "all",
               option: str = "--pilot") -> tuple[dict[str, float], list[str] | None]:
    """Per-case values of ``metric`` for ``label`` from a pilot ``per_case.csv``.

    Accepts the evaluator's long form (``case_id,label,metric,value``) and wide tables
    (``case_id[,label],<one column per metric>``). ``label="all"`` takes rows labelled ``all``
    (classification, counting, ...); a file without them (segmentation: one row per foreground
    label) gives each case's mean over its labels (NaNs, e.g. both masks empty, left out of that
    mean). NaN values are kept (the caller drops them, and says how many); anything else that is
    not a number, or a case listed twice, is an error naming the file and case.

    Returns:
        ``{case_id: value}`` and the labels averaged per case (None when one label was used).
    """
    path = Path(path)
    if not path.is_file():
        raise PredictionError(f"{option} {path}: no such file (expected a per_case.csv written by openmia evaluate)")
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            reader = csv.DictReader(f)
            header = [h.strip() for h in (reader.fieldnames or [])]
            rows = [{(k or "").strip(): (v or "").strip() for k, v in r.items()} for r in reader]
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise PredictionError(f"{option} {path}: cannot be read as CSV ({exc})") from exc
    if "case_id" not in header:
        raise PredictionError(f"{option} {path}: no case_id column (columns: {', '.join(header) or 'none'}); "
                              "expected openmia's per_case.csv (case_id,label,metric,value)")
    long_form = "metric" in header and "value" in header
    if long_form:
        metrics = sorted({r["metric"] for r in rows})
        rows = [r for r in rows if r["metric"] == metric]
        get = lambda r: r["value"]  # noqa: E731
        if not rows:
            raise PredictionError(f"{option} {path}: no rows with metric {metric!r} in its metric column; "
                                  f"metrics in the file: {', '.join(metrics) or 'none'} (--metric)")
    else:
        if metric not in header:
            others = [h for h in header if h not in ("case_id", "label", "patient_id")]
            raise PredictionError(f"{option} {path}: no column {metric!r}; metric columns: {', '.join(others) or 'none'} (--metric)")
        get = lambda r: r[metric]  # noqa: E731
    has_label = "label" in header
    labels = sorted({r["label"] for r in rows}) if has_label else ["all"]
    if label == "all" and has_label and "all" not in labels:
        use, mean_over = rows, True
    else:
        if label not in labels:
            raise PredictionError(f"{option} {path}: no rows for label {label!r} of metric {metric!r}; "
                                  f"labels: {', '.join(labels)} (--label)")
        use, mean_over = ([r for r in rows if r["label"] == label] if has_label else rows), False
    per_case: dict[str, list[float]] = {}
    seen: set[tuple[str, str]] = set()
    for r in use:
        cid = r["case_id"]
        lab = r.get("label", "all")
        if (cid, lab) in seen:
            raise PredictionError(f"{option} {path}: case {cid!r} is listed twice for metric {metric!r}, label {lab!r}")
        seen.add((cid, lab))
        raw = get(r)
        try:
            v = float(raw) if raw.lower() not in ("", "nan") else math.nan
        except ValueError:
            raise PredictionError(f"{option} {path}: case {cid!r}: {metric} value {raw!r} is not a number") from None
        if math.isinf(v):
            raise PredictionError(f"{option} {path}: case {cid!r}: {metric} is infinite; a pilot needs finite values")
        per_case.setdefault(cid, []).append(v)
    out = {}
    for cid, vals in per_case.items():
        finite = [v for v in vals if not math.isnan(v)]
        out[cid] = (sum(finite) / len(finite) if finite else math.nan) if mean_over else vals[0]
    return out, (labels if mean_over else None)


def _finite(values: dict[str, float], path: Any, option: str, minimum: int = 3) -> tuple[list[str], np.ndarray, int]:
    ids = [c for c, v in values.items() if not math.isnan(v)]
    dropped = len(values) - len(ids)
    if len(ids) < minimum:
        raise PredictionError(f"{option} {path}: only {len(ids)} case(s) with a defined value; a pilot needs at least "
                              f"{minimum} (NaN values, e.g. both masks empty, are left out)")
    return ids, np.array([values[c] for c in ids], dtype=float), dropped


def _resample_counts(rng: np.random.Generator, m: int, n: int, size: int) -> np.ndarray:
    """``(size, m)`` counts of each pilot case in ``size`` resamples of ``n`` cases with replacement."""
    if n < m:  # cheaper from indices when the study is smaller than the pilot
        idx = rng.integers(0, m, size=(size, n)) + (m * np.arange(size))[:, None]
        return np.bincount(idx.ravel(), minlength=size * m).reshape(size, m)
    return rng.multinomial(n, np.full(m, 1.0 / m), size=size)


def _chunks(resamples: int, m: int, n: int) -> list[int]:
    per = max(1, _MAX_CELLS // max(m, min(n, _MAX_CELLS)))
    return [min(per, resamples - s) for s in range(0, resamples, per)]


def _rng(seed: int, n: int) -> np.random.Generator:
    return np.random.default_rng([int(seed), int(n)])


def simulate_half_width(values: Any, n: int, *, alpha: float = 0.05, resamples: int = 2000, seed: int = 0) -> np.ndarray:
    """Half-widths ``t_{1-alpha/2, n-1} s / sqrt(n)`` of the mean's CI in ``resamples`` studies of
    ``n`` cases drawn with replacement from the pilot ``values`` (shape ``(resamples,)``)."""
    v = np.asarray(values, dtype=float)
    v = v - v.mean()  # centred: the sums below lose no precision
    m, rng, out = v.size, _rng(seed, n), []
    t = float(stdtrit(n - 1, 1 - alpha / 2))
    for size in _chunks(resamples, m, n):
        c = _resample_counts(rng, m, n, size).astype(float)
        s1, s2 = c @ v, c @ (v * v)
        var = np.maximum(s2 - s1 * s1 / n, 0.0) / (n - 1)
        out.append(t * np.sqrt(var / n))
    return np.concatenate(out)


class _SignedRankGroups:
    """The pilot's differences grouped by |d| (ties), for signed-rank statistics from counts."""

    def __init__(self, d: np.ndarray) -> None:
        a = np.abs(d)
        self.order = np.argsort(a, kind="stable")
        sa = a[self.order]
        self.starts = np.flatnonzero(np.r_[True, sa[1:] != sa[:-1]])  # first case of each |d| group
        self.positive = (d[self.order] > 0).astype(float)
        self.has_zero = bool(sa[0] == 0)

    def p_values(self, counts: np.ndarray) -> np.ndarray:
        """Two-sided p of ``scipy.stats.wilcoxon(x, zero_method="pratt", method="asymptotic",
        correction=False)`` for each resample ``x`` given as a row of counts."""
        c = counts[:, self.order].astype(float)
        g = np.add.reduceat(c, self.starts, axis=1)  # (R, K) cases per |d| group
        gpos = np.add.reduceat(c * self.positive, self.starts, axis=1)
        n = g.sum(axis=1)
        avg_rank = np.cumsum(g, axis=1) - (g - 1) / 2  # ranks 1..n, ties averaged, zeros ranked (Pratt)
        r_plus = np.sum(avg_rank * gpos, axis=1)
        n0 = g[:, 0] if self.has_zero else np.zeros_like(n)
        mn = n * (n + 1) / 4 - n0 * (n0 + 1) / 4
        var = n * (n + 1) * (2 * n + 1) - n0 * (n0 + 1) * (2 * n0 + 1)
        tie = g[:, 1:] if self.has_zero else g  # zeros are not tie-corrected (Pratt)
        var = (var - np.sum(tie ** 3 - tie, axis=1) / 2) / 24
        with np.errstate(divide="ignore", invalid="ignore"):
            z = (r_plus - mn) / np.sqrt(var)
        return np.where(var > 0, 2 * ndtr(-np.abs(z)), 1.0)


def _paired_t_p(counts: np.ndarray, d: np.ndarray) -> np.ndarray:
    c = counts.astype(float)
    n = c.sum(axis=1)
    s1, s2 = c @ d, c @ (d * d)
    mean = s1 / n
    sd = np.sqrt(np.maximum(s2 - s1 * mean, 0.0) / (n - 1))
    with np.errstate(divide="ignore", invalid="ignore"):
        t = np.abs(mean) / (sd / np.sqrt(n))
        p = 2 * stdtr(n - 1, -t)
    return np.where(sd > 0, p, np.where(mean != 0, 0.0, 1.0))


def simulate_power(differences: Any, n: int, *, alpha: float = 0.05, test: str = "wilcoxon", resamples: int = 2000,
                   seed: int = 0) -> float:
    """Share of ``resamples`` studies of ``n`` pairs, drawn with replacement from the pilot's paired
    ``differences``, in which the two-sided paired test (``wilcoxon``: signed-rank with Pratt's
    zero handling, as ``openmia compare``; ``t``: paired t-test) rejects at ``alpha``."""
    d = np.asarray(differences, dtype=float)
    if test not in PAIRED_TESTS:
        raise ConfigError(f"--test must be one of {', '.join(PAIRED_TESTS)}, got {test!r}")
    groups = _SignedRankGroups(d) if test == "wilcoxon" else None
    rng, rejected = _rng(seed, n), 0
    for size in _chunks(resamples, d.size, n):
        counts = _resample_counts(rng, d.size, n, size)
        p = groups.p_values(counts) if groups is not None else _paired_t_p(counts, d)
        rejected += int(np.sum(p < alpha))
    return rejected / resamples


def _smallest_n(ok: Callable[[int], bool], guess: int, n_min: int, n_max: int) -> int | None:
    """Smallest n in [n_min, n_max] with ok(n), assuming ok is monotone (False ... False True ...)."""
    g = int(min(max(guess, n_min), n_max))
    if ok(g):
        hi, lo = g, n_min - 1
        step = max(1, g // 2)
        while hi - step >= n_min and ok(hi - step):
            hi -= step
            step *= 2
        lo = max(n_min - 1, hi - step)
    else:
        lo, hi = g, None
        nxt = g
        while hi is None:
            if nxt >= n_max:
                return None
            nxt = min(n_max, max(nxt + 1, int(nxt * 1.6)))
            if ok(nxt):
                hi = nxt
            else:
                lo = nxt
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if ok(mid):
            hi = mid
        else:
            lo = mid
    return hi


def plan_metric(pilot: str | Path, *, metric: str, pilot_b: str | Path | None = None, label: str = "all",
                half_width: float | None = None, power: float | None = None, delta: float | None = None,
                test: str = "wilcoxon", alpha: float = 0.05, resamples: int = 2000, seed: int = 0,
                max_n: int = 100_000, ns: Sequence[int] | None = None) -> PlanResult:
    """Cases needed for a per-case metric (Dice, HD95, NSD, ...) by resampling a pilot.

    One pilot + ``half_width``: the mean's CI half-width. Two pilots (``pilot_b``: the other model's
    ``per_case.csv`` on the same cases): the paired differences ``A - B``, for a CI half-width of the
    mean difference or for the power of the paired test (``test``: ``wilcoxon`` or ``t``). ``delta``
    shifts the pilot's differences so that their mean is ``delta`` (a location-shift alternative);
    without it the observed differences are used as they are.
    """
    alpha = _check_alpha(alpha)
    if not metric:
        raise ConfigError("--metric is required (a metric column of the pilot, e.g. dice or hd95)")
    try:
        resamples, seed, max_n = int(resamples), int(seed), int(max_n)
    except (TypeError, ValueError):
        raise ConfigError("--resamples, --seed and --max-n must be whole numbers") from None
    if resamples < 100:
        raise ConfigError(f"--resamples must be >= 100 (Monte-Carlo error), got {resamples}")
    if max_n < 3:
        raise ConfigError(f"--max-n must be >= 3, got {max_n}")
    if test not in PAIRED_TESTS:
        raise ConfigError(f"--test must be one of {', '.join(PAIRED_TESTS)}, got {test!r}")
    if half_width is not None and (power is not None or delta is not None):
        raise ConfigError("give either --half-width (precision of an estimate) or --power/--delta (a paired test), not both")
    ns = _check_ns(ns, minimum=3)
    a, averaged = load_pilot(pilot, metric, label, "--pilot")
    notes: list[str] = []
    params: dict[str, Any] = {"pilot": str(pilot), "pilot_b": None if pilot_b is None else str(pilot_b), "metric": metric,
                              "label": label, "alpha": alpha, "resamples": resamples, "seed": seed, "max_n": max_n}
    if pilot_b is None:
        if half_width is None:
            raise ConfigError("a power calculation needs paired differences: give --pilot-b (the other model's "
                              "per_case.csv on the same cases), or --half-width W to plan the precision of one model's mean")
        ids, values, dropped = _finite(a, pilot, "--pilot")
        what = f"mean {metric}"
    else:
        b, _ = load_pilot(pilot_b, metric, label, "--pilot-b")
        only_a, only_b = sorted(set(a) - set(b)), sorted(set(b) - set(a))
        if only_a or only_b:
            def show(x: list[str]) -> str:
                return ", ".join(x[:5]) + (f" and {len(x) - 5} more" if len(x) > 5 else "")
            raise PredictionError("--pilot and --pilot-b must hold the same cases (paired design): "
                                  + "; ".join(s for s in (f"only in {pilot}: {show(only_a)}" if only_a else "",
                                                          f"only in {pilot_b}: {show(only_b)}" if only_b else "") if s))
        diff = {c: (a[c] - b[c]) for c in a}
        ids, values, dropped = _finite(diff, f"{pilot} - {pilot_b}", "--pilot/--pilot-b")
        what = f"mean paired difference of {metric} (A - B)"
    if averaged is not None:
        notes.append(f"--label all: each case's mean {metric} over labels {', '.join(averaged)} (the pilot has no "
                     "'all' rows); give --label L to plan for one label")
        params["labels_averaged"] = averaged
    if dropped:
        notes.append(f"{dropped} pilot case(s) with an undefined (NaN) value left out, as the evaluator leaves them out of the mean")
    m = values.size
    params.update(pilot_cases=m, pilot_mean=float(values.mean()), pilot_sd=float(values.std(ddof=1)))
    if m < 10:
        notes.append(f"the pilot has only {m} cases: its spread, and so the plan, is uncertain")
    cache: dict[int, float] = {}
    if half_width is not None:
        w = _check_half_width(half_width)
        sd = float(values.std(ddof=1))
        params["half_width"] = w

        def val(n: int) -> float:
            if n not in cache:
                cache[n] = float(np.mean(simulate_half_width(values, n, alpha=alpha, resamples=resamples, seed=seed)))
            return cache[n]

        guess = int(math.ceil((float(ndtri(1 - alpha / 2)) * sd / w) ** 2)) if sd > 0 else 3
        n = _smallest_n(lambda k: val(k) <= w, guess, 3, max_n)
        goal, target = "half-width", w
        method = (f"pilot resampling ({resamples} simulated studies per n, seeded): expected t-interval half-width of the "
                  f"{what}")
        probs: dict[int, float] = {}

        def extra(k: int) -> float:
            if k not in probs:
                probs[k] = float(np.mean(simulate_half_width(values, k, alpha=alpha, resamples=resamples, seed=seed) <= w))
            return probs[k]
        cols = ["n", "CI half-width", f"P(half-width <= {w:g})"]
    else:
        power = 0.8 if power is None else _check_power(power)
        d = values
        if delta is not None:
            dv = _num(delta, "--delta")
            d = values - values.mean() + dv
            params["delta"] = dv
            notes.append(f"pilot differences shifted by {dv - values.mean():+.4g} so that their mean is --delta {dv:g} "
                         "(their spread is the pilot's)")
        if np.all(d == 0):
            raise PredictionError(f"the paired differences of {metric} are all 0: the pilots show no difference to "
                                  "detect; give --delta D to plan for a difference of D")
        params.update(power=power, test=test)

        def val(n: int) -> float:
            if n not in cache:
                cache[n] = simulate_power(d, n, alpha=alpha, test=test, resamples=resamples, seed=seed)
            return cache[n]

        mean, sd = float(d.mean()), float(d.std(ddof=1))
        z = float(ndtri(1 - alpha / 2)) + float(ndtri(power))
        guess = int(math.ceil((z * sd / abs(mean)) ** 2)) if mean != 0 and sd > 0 else 10
        n = _smallest_n(lambda k: val(k) >= power, guess, 5, max_n)
        goal, target = "power", power
        name = ("Wilcoxon signed-rank test (Pratt zeros, normal approximation with tie correction: the test openmia "
                "compare runs)" if test == "wilcoxon" else "paired t-test")
        method = (f"pilot resampling of paired differences ({resamples} simulated studies per n, seeded): power of the "
                  f"two-sided {name}")
        se = math.sqrt(power * (1 - power) / resamples)
        notes.append(f"simulated power has a Monte-Carlo standard error of about {se:.3f} at {resamples} resamples; "
                     "raise --resamples for a steadier n")
        extra = None
        cols = ["n", "power"]
    grid = ns if ns is not None else (_grid(n, 3 if goal == "half-width" else 5, None) if n is not None
                                      else sorted(cache)[-7:])
    rows = []
    for k in grid:
        rows.append([k, val(k)] + ([extra(k)] if extra is not None else []))
    if n is None:
        notes.append(f"not reached with up to --max-n {max_n} cases")
    keys = sorted(cache)
    return PlanResult("metric", goal, target, n, method, params, cols, rows,
                      {"n": keys, "value": [cache[k] for k in keys]}, notes=notes)


# ----------------------------------------------------------------------------------------------
# dispatch and outputs

KINDS: dict[str, Callable[..., PlanResult]] = {"auc": plan_auc, "proportion": plan_proportion, "mcnemar": plan_mcnemar,
                                               "metric": plan_metric}


def plan_study(kind: str, **options: Any) -> PlanResult:
    """Run the planner of ``kind`` (auc, proportion, mcnemar, metric) with its keyword options."""
    if kind not in KINDS:
        raise ConfigError(f"unknown plan kind {kind!r}; expected one of {', '.join(KINDS)}")
    return KINDS[kind](**options)


def plan_figure(result: PlanResult, path: str | Path) -> Path:
    """Draw the power (or half-width) curve against n, with the target and the solution marked."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from openmia.fileio import save_figure

    fig = Figure(figsize=(6.0, 4.0))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    x, y = result.curve["n"], result.curve["value"]
    ax.plot(x, y, "-" if result.kind != "metric" else "o-", color="tab:blue", ms=3, lw=1.5)
    if result.rows:
        vi = 1 if result.kind == "metric" else -1  # the value column of the table
        ax.plot([r[0] for r in result.rows], [r[vi] for r in result.rows], "o", color="tab:blue", ms=4)
    ax.axhline(result.target, color="tab:red", ls="--", lw=1, label=f"target {result.value_label} {result.target:g}")
    if result.n is not None:
        ax.axvline(result.n, color="tab:green", ls=":", lw=1.2, label=f"n = {result.n}")
    ax.set_xlabel("pairs of results (cases)" if result.kind == "mcnemar" else "cases (n)")
    ax.set_ylabel(result.value_label)
    if result.goal == "power":
        ax.set_ylim(0, 1.02)
    ax.set_title(f"openmia plan {result.kind}", fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8, loc="best")
    return save_figure(fig, path)


def write_plan(result: PlanResult, out: str | Path) -> dict[str, Path]:
    """Write ``plan.json`` and ``plan.png`` into ``out`` as one set (atomic folder swap); the
    folder is expected to be checked first with :func:`openmia.fileio.prepare_output_dir`."""
    from openmia import fileio

    with fileio.atomic_dir(out) as tmp:
        fileio.write_json(tmp / "plan.json", result.to_dict())
        plan_figure(result, tmp / "plan.png")
    out = Path(out)
    return {"json": out / "plan.json", "figure": out / "plan.png"}
