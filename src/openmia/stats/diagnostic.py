"""Confidence intervals for diagnostic-accuracy ratios from a 2 x 2 table.

Likelihood ratios: LR+ = sens / (1 - spec), LR- = (1 - sens) / spec, with the log method of Simel,
Samsa & Matchar (J Clin Epidemiol 1991; 44: 763-770), the one epiR's ``epi.tests`` and most
calculators use:

    SE(ln LR+) = sqrt(1/TP - 1/(TP + FN) + 1/FP - 1/(FP + TN))
    SE(ln LR-) = sqrt(1/FN - 1/(TP + FN) + 1/TN - 1/(FP + TN))
    CI = exp(ln LR +- z_{1 - alpha/2} SE)

When a count the SE divides by (TP or FP for LR+, FN or TN for LR-) is 0, the log is undefined;
then 0.5 is added to all four cells for that interval (Haldane-Anscombe), while the point estimate
stays the uncorrected ratio (``inf`` when there is no false positive for LR+ / no true negative for
LR-, reported as undefined).
"""

from __future__ import annotations

import math

from scipy.stats import norm


def _lr(a: float, b: float, c: float, d: float) -> float:
    """(a / (a + b)) / (c / (c + d)): NaN when a group is empty, inf when only the denominator is 0."""
    if a + b <= 0 or c + d <= 0:
        return math.nan
    num, den = a / (a + b), c / (c + d)
    if den == 0:
        return math.nan if num == 0 else math.inf
    return num / den


def _log_ci(a: float, b: float, c: float, d: float, alpha: float) -> tuple[float, float, bool]:
    """CI of (a/(a+b)) / (c/(c+d)) by the log method; ``corrected`` when 0.5 was added to every cell."""
    corrected = a == 0 or c == 0  # the log (and 1/a, 1/c) is undefined only then
    if corrected:
        a, b, c, d = a + 0.5, b + 0.5, c + 0.5, d + 0.5
    if a + b <= 0 or c + d <= 0:
        return math.nan, math.nan, corrected
    est = (a / (a + b)) / (c / (c + d))
    se = math.sqrt(1 / a - 1 / (a + b) + 1 / c - 1 / (c + d))
    z = norm.ppf(1 - alpha / 2)
    return est * math.exp(-z * se), est * math.exp(z * se), corrected


def likelihood_ratios(tp: float, fp: float, fn: float, tn: float, alpha: float = 0.05) -> dict[str, float | bool]:
    """LR+ and LR- of a 2 x 2 table with their ``1 - alpha`` log-method (Simel 1991) intervals.

    Returns ``lr_pos, lr_pos_low, lr_pos_high, lr_neg, lr_neg_low, lr_neg_high`` and
    ``lr_pos_corrected`` / ``lr_neg_corrected`` (0.5 added to each cell for that interval).
    """
    # LR+ = [TP / (TP + FN)] / [FP / (FP + TN)];  LR- = [FN / (TP + FN)] / [TN / (FP + TN)]
    lo_p, hi_p, cp = _log_ci(tp, fn, fp, tn, alpha)
    lo_n, hi_n, cn = _log_ci(fn, tp, tn, fp, alpha)
    return {"lr_pos": _lr(tp, fn, fp, tn), "lr_pos_low": lo_p, "lr_pos_high": hi_p, "lr_pos_corrected": cp,
            "lr_neg": _lr(fn, tp, tn, fp), "lr_neg_low": lo_n, "lr_neg_high": hi_n, "lr_neg_corrected": cn}
