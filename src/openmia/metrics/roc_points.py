"""The operating points of a binary ROC curve (sample-weighted, for the bootstrap): Youden's J and
its threshold, sensitivity at a fixed specificity and the reverse, partial AUC with the McClish
correction, and net benefit for decision-curve analysis. Re-exported by
:mod:`openmia.metrics.classification`."""

from __future__ import annotations

import numpy as np

from openmia.metrics._checks import as_weights

ECE_BINS = 15


def target_key(prefix: str, target: float) -> str:
    """Metric id of an operating point at a fixed rate: ``target_key("sens_at_spec", 0.9) == "sens_at_spec_0.9"``."""
    return f"{prefix}_{float(target):g}"


RATE_TOL = 1e-9  # a rate within this of a target counts as reaching it (0.9 is not exactly 1 - 1/10 in floats)


def weighted_roc(y: np.ndarray, score: np.ndarray, w: np.ndarray | None = None):
    """Weighted empirical ROC curve, one row per weight row.

    Returns ``(thresholds (G+1,), tpr, fpr, tp, fp)``, the last four ``(B, G+1)``: point 0 is the
    origin (threshold +inf), point g >= 1 predicts positive every case with ``score >= thresholds[g]``
    (the distinct scores in decreasing order, as scikit-learn's ``roc_curve(drop_intermediate=False)``);
    ``tp``/``fp`` are the weighted counts. Rows without a positive (negative) case have NaN tpr (fpr).
    """
    w = as_weights(w, len(y))
    order = np.argsort(-score, kind="mergesort")
    s, yy = score[order], np.asarray(y)[order].astype(bool)
    last = np.r_[s[1:] != s[:-1], True] if len(s) else np.zeros(0, bool)
    ww = w[:, order]
    tpw = ww * yy
    tp = np.cumsum(tpw, axis=1, out=tpw)[:, last]
    fp = np.cumsum(ww, axis=1, out=ww)[:, last] - tp
    zero = np.zeros((w.shape[0], 1))
    tp, fp = np.hstack([zero, tp]), np.hstack([zero, fp])
    with np.errstate(invalid="ignore", divide="ignore"):
        tpr = tp / np.where(tp[:, -1:] > 0, tp[:, -1:], np.nan)
        fpr = fp / np.where(fp[:, -1:] > 0, fp[:, -1:], np.nan)
    return np.r_[np.inf, s[last]], tpr, fpr, tp, fp


def _pauc_raw(fpr: np.ndarray, tpr: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """Area under the piecewise-linear ROC curve between FPR ``lo`` and ``hi`` (linear interpolation at the ends)."""
    x0, x1, y0, y1 = fpr[:, :-1], fpr[:, 1:], tpr[:, :-1], tpr[:, 1:]
    a, b = np.clip(x0, lo, hi), np.clip(x1, lo, hi)
    dx = x1 - x0
    with np.errstate(invalid="ignore", divide="ignore"):
        slope = np.where(dx > 0, (y1 - y0) / np.where(dx > 0, dx, 1.0), 0.0)
    ya, yb = y0 + slope * (a - x0), y0 + slope * (b - x0)
    return ((b - a) * (ya + yb) / 2).sum(axis=1)


def mcclish(pauc_raw: np.ndarray | float, lo: float, hi: float):
    """McClish (1989) standardisation of a partial AUC over FPR [lo, hi]: 0.5 = the chance diagonal,
    1 = perfect: (1 + (pAUC - min) / (max - min)) / 2 with min = (hi^2 - lo^2) / 2 (area under the
    diagonal) and max = hi - lo (as pROC's ``partial.auc.correct`` and scikit-learn's ``max_fpr``)."""
    mn, mx = (hi**2 - lo**2) / 2, hi - lo
    return 0.5 * (1 + (pauc_raw - mn) / (mx - mn))


def check_fpr_range(fpr_range) -> tuple[float, float]:
    lo, hi = (float(v) for v in fpr_range)
    if not 0 <= lo < hi <= 1:
        raise ValueError(f"partial AUC FPR range must satisfy 0 <= low < high <= 1, found {fpr_range!r}")
    return lo, hi


def binary_roc_summary(y: np.ndarray, score: np.ndarray, w: np.ndarray | None = None, *,
                       sens_at_spec: tuple[float, ...] = (), spec_at_sens: tuple[float, ...] = (),
                       pauc_fpr: tuple[float, float] | None = None,
                       dca_thresholds: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Every ROC-derived statistic of a binary problem from one pass over the sorted scores.

    Keys (each ``(B,)`` unless noted):

    - ``youden_j``: max over thresholds of sensitivity + specificity - 1; ``youden_threshold``: the
      score threshold reaching it (``score >= t`` is positive; ties -> the highest threshold;
      NaN when no threshold beats the origin, J = 0).
    - ``sens_at_spec_<t>``: the highest sensitivity at a threshold whose specificity is >= t;
      ``spec_at_sens_<t>``: the highest specificity at a threshold whose sensitivity is >= t
      (empirical operating points, no interpolation between them).
    - ``pauc_raw``, ``pauc``: area under the ROC curve for FPR in ``pauc_fpr`` (trapezoids, linear
      interpolation at the ends), and its McClish standardisation.
    - ``net_benefit``, ``net_benefit_all`` ``(B, T)``: decision-curve net benefit of treating when
      ``score >= p_t`` and of treating everyone, at each ``dca_thresholds`` p_t (Vickers & Elkin 2006):
      TP/n - FP/n * p_t / (1 - p_t).
    """
    thr, tpr, fpr, tp, fp = weighted_roc(y, score, w)
    out: dict[str, np.ndarray] = {}
    valid = np.isfinite(tpr[:, -1]) & np.isfinite(fpr[:, -1])
    j = np.where(valid[:, None], tpr - fpr, -np.inf)
    best = j.argmax(axis=1)
    rows = np.arange(len(best))
    out["youden_j"] = np.where(valid, j[rows, best], np.nan)
    t = thr[best]
    out["youden_threshold"] = np.where(valid & np.isfinite(t), t, np.nan)
    for target in sens_at_spec:
        ok = fpr <= (1 - target) + RATE_TOL
        out[target_key("sens_at_spec", target)] = np.where(valid, np.where(ok, tpr, -np.inf).max(axis=1), np.nan)
    for target in spec_at_sens:
        ok = tpr >= target - RATE_TOL
        out[target_key("spec_at_sens", target)] = np.where(valid, 1 - np.where(ok, fpr, np.inf).min(axis=1), np.nan)
    if pauc_fpr is not None:
        lo, hi = check_fpr_range(pauc_fpr)
        raw = np.where(valid, _pauc_raw(np.nan_to_num(fpr), np.nan_to_num(tpr), lo, hi), np.nan)
        out["pauc_raw"], out["pauc"] = raw, mcclish(raw, lo, hi)
    if dca_thresholds is not None:
        pt = np.asarray(dca_thresholds, dtype=float)
        # number of distinct scores >= p_t (thr[1:] is decreasing), i.e. the ROC point index
        k = np.searchsorted(-thr[1:], -pt, side="right")
        n = tp[:, -1:] + fp[:, -1:]
        odds = pt / (1 - pt)
        with np.errstate(invalid="ignore", divide="ignore"):
            out["net_benefit"] = (tp[:, k] - fp[:, k] * odds) / n
            out["net_benefit_all"] = (tp[:, -1:] - fp[:, -1:] * odds) / n
    return out


def operating_point(y: np.ndarray, score: np.ndarray, kind: str, target: float | None = None) -> dict[str, float | None]:
    """The threshold, sensitivity and specificity of one operating point on all cases (no weights):
    ``kind`` = ``youden``, ``sens_at_spec`` or ``spec_at_sens`` (with ``target``); ties as in
    :func:`binary_roc_summary` (Youden: highest threshold; sens_at_spec: the first point reaching the
    best sensitivity; spec_at_sens: the last point keeping the best specificity)."""
    thr, tpr, fpr, _, _ = weighted_roc(y, score)
    tpr, fpr = tpr[0], fpr[0]
    if not (np.isfinite(tpr[-1]) and np.isfinite(fpr[-1])):
        return {"threshold": None, "sensitivity": None, "specificity": None}
    if kind == "youden":
        g = int(np.argmax(tpr - fpr))
    elif kind == "sens_at_spec":
        ok = np.flatnonzero(fpr <= (1 - target) + RATE_TOL)
        g = int(ok[np.argmax(tpr[ok])])
    elif kind == "spec_at_sens":
        ok = np.flatnonzero(tpr >= target - RATE_TOL)
        best = fpr[ok].min()
        g = int(ok[fpr[ok] == best][-1])
    else:
        raise ValueError(f"unknown operating point {kind!r}")
    t = float(thr[g])
    return {"threshold": t if np.isfinite(t) else None, "sensitivity": float(tpr[g]), "specificity": float(1 - fpr[g])}


def youden(y, score, w=None) -> tuple[np.ndarray, np.ndarray]:
    """Youden's J = max_t (sensitivity + specificity - 1) and its threshold, ``(B,)`` each."""
    r = binary_roc_summary(y, score, w)
    return r["youden_j"], r["youden_threshold"]


def sensitivity_at_specificity(y, score, target: float, w=None) -> np.ndarray:
    return binary_roc_summary(y, score, w, sens_at_spec=(target,))[target_key("sens_at_spec", target)]


def specificity_at_sensitivity(y, score, target: float, w=None) -> np.ndarray:
    return binary_roc_summary(y, score, w, spec_at_sens=(target,))[target_key("spec_at_sens", target)]


def partial_auc(y, score, fpr_range: tuple[float, float], w=None, *, mcclish_correct: bool = True) -> np.ndarray:
    """Partial AUC over FPR ``fpr_range``; McClish-standardised unless ``mcclish_correct=False``."""
    r = binary_roc_summary(y, score, w, pauc_fpr=fpr_range)
    return r["pauc"] if mcclish_correct else r["pauc_raw"]


def net_benefit(y, score, thresholds, w=None) -> tuple[np.ndarray, np.ndarray]:
    """Decision-curve net benefit of the model and of treat-all, ``(B, T)`` each (treat-none is 0)."""
    r = binary_roc_summary(y, score, w, dca_thresholds=np.asarray(thresholds, float))
    return r["net_benefit"], r["net_benefit_all"]


DCA_THRESHOLDS = np.round(np.arange(1, 100) / 100, 2)  # 0.01 ... 0.99
