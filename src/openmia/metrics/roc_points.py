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


class SortedRankStats:
    """Average precision and every :func:`binary_roc_summary` statistic from integer case counts
    given in decreasing-score order — the bootstrap's fast path: two integer cumulative sums per
    chunk of resamples, no sort and no gather.

    The cases must be ordered as ``np.argsort(-score, kind="mergesort")``. Only the ends of tied
    groups holding a positive case are visited for AP, Youden's J and the fixed-rate operating
    points: the TP count changes only there, so AP's terms elsewhere are 0; the earliest maximum of
    J (J rises only where a positive enters), the last point within a specificity bound and the
    first point reaching a sensitivity are all among them (or are the origin). Results equal
    :func:`binary_ap` and :func:`binary_roc_summary` on the same weights (to rounding).
    """

    def __init__(self, y_sorted: np.ndarray, score_sorted: np.ndarray, *, sens_at_spec: tuple[float, ...] = (),
                 spec_at_sens: tuple[float, ...] = (), pauc_fpr: tuple[float, float] | None = None,
                 dca_thresholds: np.ndarray | None = None) -> None:
        s = np.asarray(score_sorted, dtype=float)
        if len(s) > 1 and np.any(s[1:] > s[:-1]):
            raise ValueError("SortedRankStats needs the scores in decreasing order")
        self.pos = np.asarray(y_sorted).astype(bool)
        new = np.r_[True, s[1:] != s[:-1]] if len(s) else np.zeros(0, bool)
        self.ends = np.flatnonzero(np.r_[new[1:], True]) if len(s) else np.zeros(0, np.int64)  # last case of each group
        self.thr = np.r_[np.inf, s[self.ends]]
        gid = np.cumsum(new) - 1
        has_pos = np.zeros(len(self.ends), bool)
        has_pos[gid[self.pos]] = True
        self.pcols, self.pthr = self.ends[has_pos], s[self.ends[has_pos]]
        self.sens_at_spec, self.spec_at_sens, self.pauc_fpr = sens_at_spec, spec_at_sens, pauc_fpr
        self.dca = None
        if dca_thresholds is not None:
            pt = np.asarray(dca_thresholds, dtype=float)
            k = np.searchsorted(-self.thr[1:], -pt, side="right")  # ROC point index (0 = origin)
            self.dca = (k, self.ends[np.maximum(k - 1, 0)], pt / (1 - pt))

    def __call__(self, w: np.ndarray) -> dict[str, np.ndarray]:
        w = np.asarray(w)
        w = w[None] if w.ndim == 1 else w
        # a few rows at a time: the temporaries stay in cache (and are not fresh pages each time)
        step = max(1, 2**20 // max(w.shape[1], 1))
        parts = [self._rows(w[i:i + step]) for i in range(0, len(w), step)]
        return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]} if parts else {}

    def _rows(self, w: np.ndarray) -> dict[str, np.ndarray]:
        if w.dtype.kind in "ub":  # integer counts: exact integer cumulative sums
            acc = np.int32 if w.shape[1] * np.iinfo(w.dtype if w.dtype.kind == "u" else np.uint8).max < 2**31 else np.int64
        else:
            acc = np.float64
        tp = np.cumsum(w * self.pos, axis=1, dtype=acc)
        al = np.cumsum(w, axis=1, dtype=acc)
        P, N = tp[:, -1].astype(float), (al[:, -1] - tp[:, -1]).astype(float)
        valid = (P > 0) & (N > 0)
        rows = np.arange(len(w))
        tpc, alc = tp[:, self.pcols], al[:, self.pcols]
        out: dict[str, np.ndarray] = {}
        with np.errstate(invalid="ignore", divide="ignore"):
            # AP = (1/P) sum dTP * TP / ALL over the groups with a positive (ALL = 0 only where TP = dTP = 0)
            prec = tpc / np.where(alc > 0, alc, 1)
            dtp = np.empty_like(tpc)
            if dtp.shape[1]:
                dtp[:, 0] = tpc[:, 0]
                np.subtract(tpc[:, 1:], tpc[:, :-1], out=dtp[:, 1:])
            np.multiply(prec, dtp, out=prec)
            out["ap"] = np.where(P > 0, prec.sum(axis=1) / P, np.nan)
            del prec, dtp
            tpr = tpc / P[:, None]
            fpr = np.subtract(alc, tpc, out=alc) / N[:, None]
            j = tpr - fpr
            best = j.argmax(axis=1) if j.shape[1] else np.zeros(len(w), np.int64)
            jb = j[rows, best] if j.shape[1] else np.zeros(len(w))
            del j
            above = valid & (jb > 0)  # otherwise the origin (J = 0, threshold +inf) is the earliest maximum
            out["youden_j"] = np.where(valid, np.where(above, jb, 0.0), np.nan)
            out["youden_threshold"] = np.where(above, self.pthr[best] if len(self.pthr) else np.nan, np.nan)
            for target in self.sens_at_spec:
                ok = fpr <= (1 - target) + RATE_TOL
                best_tpr = np.maximum(np.where(ok, tpr, -np.inf).max(axis=1, initial=-np.inf), 0.0)  # origin: tpr 0
                out[target_key("sens_at_spec", target)] = np.where(valid, best_tpr, np.nan)
            for target in self.spec_at_sens:
                ok = tpr >= target - RATE_TOL
                low = np.where(ok, fpr, np.inf).min(axis=1, initial=np.inf)
                if target - RATE_TOL <= 0:
                    low = np.minimum(low, 0.0)
                out[target_key("spec_at_sens", target)] = np.where(valid, 1 - low, np.nan)
            if self.pauc_fpr is not None:
                lo, hi = check_fpr_range(self.pauc_fpr)
                tpe, ale = tp[:, self.ends], al[:, self.ends]
                zero = np.zeros((len(w), 1))
                tpr_all = np.hstack([zero, tpe / P[:, None]])
                fpr_all = np.hstack([zero, (ale - tpe) / N[:, None]])
                raw = np.where(valid, _pauc_raw(np.nan_to_num(fpr_all), np.nan_to_num(tpr_all), lo, hi), np.nan)
                out["pauc_raw"], out["pauc"] = raw, mcclish(raw, lo, hi)
            if self.dca is not None:
                k, col, odds = self.dca
                tpk = np.where(k > 0, tp[:, col], 0).astype(float)
                fpk = np.where(k > 0, al[:, col], 0) - tpk
                n = (P + N)[:, None]
                out["net_benefit"] = (tpk - fpk * odds) / n
                out["net_benefit_all"] = (P[:, None] - N[:, None] * odds) / n
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
