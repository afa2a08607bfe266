"""Classification metrics as pure functions.

Every metric takes ``y`` and ``probs`` and optional case weights ``w`` of shape ``(B, N)`` (one row
per bootstrap resample: how often each case was drawn) and returns ``(B,)`` values. Without ``w``
a single row of ones is used, i.e. the plain metric. Writing the metrics this way lets the
bootstrap evaluate thousands of resamples with a few matrix products instead of a Python loop.

Conventions (docs/evaluation.md):
- ``probs`` is ``(N, K)``: class probabilities (rows sum to 1) or, for multi-label, one independent
  probability per label. Binary problems use K = 2; the score is ``probs[:, 1]``.
- Predicted class: argmax (multi-class, ordinal); ``P(class 1) >= threshold`` (binary, default 0.5);
  per label ``p >= threshold`` (multi-label).
- Macro averages give every class the same weight; a class absent from ``y`` (in a resample)
  makes AUC/AP undefined (NaN), never silently 0 or 1.
"""

from __future__ import annotations

import numpy as np

from openmia.metrics._checks import as_weights

ECE_BINS = 15


# ----------------------------------------------------------------------------- predictions


def predict(probs: np.ndarray, task_type: str, *, threshold: float | None = None) -> np.ndarray:
    """Predicted labels: ``(N,)`` ints, or ``(N, L)`` 0/1 for multi-label."""
    if task_type == "multi-label":
        return (probs >= (0.5 if threshold is None else threshold)).astype(np.int64)
    if task_type == "binary":
        return (probs[:, 1] >= (0.5 if threshold is None else threshold)).astype(np.int64)
    return probs.argmax(axis=1)


def confusion(y: np.ndarray, pred: np.ndarray, k: int, w: np.ndarray | None = None) -> np.ndarray:
    """Weighted confusion matrices ``(B, K, K)``, rows = truth, columns = prediction."""
    w = as_weights(w, len(y))
    onehot = np.zeros((len(y), k * k))
    onehot[np.arange(len(y)), y * k + pred] = 1.0
    return (w @ onehot).reshape(-1, k, k)


# ----------------------------------------------------------------------------- confusion-based


def _safe_div(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(b > 0, a / np.where(b > 0, b, 1), np.nan)


def accuracy_cm(cm: np.ndarray) -> np.ndarray:
    return _safe_div(np.trace(cm, axis1=1, axis2=2), cm.sum((1, 2)))


def recall_per_class(cm: np.ndarray) -> np.ndarray:
    """Sensitivity of each class (one-vs-rest), ``(B, K)``."""
    return _safe_div(np.diagonal(cm, axis1=1, axis2=2), cm.sum(2))


def ovr_counts(cm: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """One-vs-rest ``(TP, FP, FN, TN)`` of each class, each ``(B, K)``, from confusion matrices
    ``(B, K, K)`` (rows = truth, columns = prediction)."""
    tp = np.diagonal(cm, axis1=1, axis2=2)
    fp = cm.sum(1) - tp
    fn = cm.sum(2) - tp
    return tp, fp, fn, cm.sum((1, 2))[:, None] - tp - fp - fn


def specificity_per_class(cm: np.ndarray) -> np.ndarray:
    """Specificity of each class (one-vs-rest), ``(B, K)``: TN / (TN + FP)."""
    _, fp, _, tn = ovr_counts(cm)
    return _safe_div(tn, tn + fp)


def f1_per_class(cm: np.ndarray) -> np.ndarray:
    """F1 of each class, ``(B, K)``: 2 TP / (2 TP + FP + FN); NaN when the class never occurs nor is predicted."""
    tp = np.diagonal(cm, axis1=1, axis2=2)
    return _safe_div(2 * tp, cm.sum(1) + cm.sum(2))


def balanced_accuracy_cm(cm: np.ndarray) -> np.ndarray:
    """Mean recall over the classes present in the truth (as scikit-learn)."""
    return np.nanmean(recall_per_class(cm), axis=1) if cm.shape[0] else np.array([])


def mcc_cm(cm: np.ndarray) -> np.ndarray:
    """Matthews correlation coefficient (multi-class R_K of Gorodkin 2004); 0 when undefined (as scikit-learn)."""
    t = cm.sum(2)  # true counts per class
    p = cm.sum(1)  # predicted counts per class
    c = np.trace(cm, axis1=1, axis2=2)
    s = cm.sum((1, 2))
    cov_ytyp = c * s - (t * p).sum(1)
    cov_ypyp = s**2 - (p * p).sum(1)
    cov_ytyt = s**2 - (t * t).sum(1)
    denom = np.sqrt(cov_ytyt * cov_ypyp)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(denom > 0, cov_ytyp / np.where(denom > 0, denom, 1), 0.0)


def kappa_cm(cm: np.ndarray, *, weights: str | None = None) -> np.ndarray:
    """Cohen's kappa from confusion matrices; ``weights='quadratic'`` for ordinal grades."""
    k = cm.shape[1]
    if weights is None:
        wm = 1.0 - np.eye(k)
    elif weights == "quadratic":
        i = np.arange(k)
        wm = (i[:, None] - i[None, :]) ** 2 / max((k - 1) ** 2, 1)
    elif weights == "linear":
        i = np.arange(k)
        wm = np.abs(i[:, None] - i[None, :]) / max(k - 1, 1)
    else:
        raise ValueError(f"kappa weights must be None, 'linear' or 'quadratic', found {weights!r}")
    s = cm.sum((1, 2))[:, None, None]
    expected = cm.sum(2)[:, :, None] * cm.sum(1)[:, None, :] / np.where(s > 0, s, 1)
    obs = (wm * cm).sum((1, 2))
    exp = (wm * expected).sum((1, 2))
    return 1.0 - _safe_div(obs, exp)


# ----------------------------------------------------------------------------- ranking metrics


def binary_auc(y: np.ndarray, score: np.ndarray, w: np.ndarray | None = None) -> np.ndarray:
    """Weighted ROC AUC for binary ``y`` ``(N,)`` 0/1 and ``score`` ``(N,)``; ties count 1/2.

    AUC = sum_{i pos, j neg} w_i w_j [s_i > s_j] + 1/2 [s_i = s_j]  /  (W_pos W_neg). NaN when a
    resample has no positive or no negative case.
    """
    w = as_weights(w, len(y))
    order = np.argsort(score, kind="mergesort")
    s, yy, ww = score[order], y[order].astype(bool), w[:, order]
    # group tied scores
    new = np.r_[True, s[1:] != s[:-1]]
    gid = np.cumsum(new) - 1
    ng = gid[-1] + 1 if len(s) else 0
    neg_w = np.zeros((w.shape[0], ng))
    pos_w = np.zeros((w.shape[0], ng))
    np.add.at(neg_w.T, gid[~yy], ww[:, ~yy].T)
    np.add.at(pos_w.T, gid[yy], ww[:, yy].T)
    neg_below = np.cumsum(neg_w, axis=1) - neg_w
    num = (pos_w * (neg_below + 0.5 * neg_w)).sum(1)
    return _safe_div(num, pos_w.sum(1) * neg_w.sum(1))


def binary_ap(y: np.ndarray, score: np.ndarray, w: np.ndarray | None = None) -> np.ndarray:
    """Weighted average precision (step-wise area under the PR curve, as scikit-learn).

    AP = sum over distinct thresholds of (R_t - R_{t-1}) P_t, thresholds in decreasing score.
    """
    w = as_weights(w, len(y))
    order = np.argsort(-score, kind="mergesort")
    s, yy = score[order], y[order].astype(bool)
    ww = w[:, order]
    last = np.r_[s[1:] != s[:-1], True]  # last index of each tied group
    allc = np.cumsum(ww, axis=1)[:, last]  # weight scored >= each threshold
    ww *= yy  # in place: from here on only positive weight matters
    tp = np.cumsum(ww, axis=1)[:, last]
    p_tot = tp[:, -1]
    # AP = (1/P) sum_t (TP_t - TP_{t-1}) * TP_t / ALL_t; groups without new positives add 0
    dtp = np.diff(tp, axis=1, prepend=0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        prec = np.where(allc > 0, tp / np.where(allc > 0, allc, 1.0), 0.0)
        ap = (dtp * prec).sum(axis=1) / p_tot
    return np.where(p_tot > 0, ap, np.nan)


def _ovr_targets(y: np.ndarray, probs: np.ndarray, task_type: str) -> list[tuple[np.ndarray, np.ndarray]]:
    """(binary truth, score) per class (multi-class/ordinal: one-vs-rest) or per label."""
    if task_type == "multi-label":
        return [(y[:, k], probs[:, k]) for k in range(probs.shape[1])]
    return [((y == k).astype(np.int64), probs[:, k]) for k in range(probs.shape[1])]


def auc_per_class(y, probs, task_type: str, w=None) -> np.ndarray:
    """``(B, K)`` one-vs-rest AUC per class (per label for multi-label)."""
    return np.stack([binary_auc(t, s, w) for t, s in _ovr_targets(y, probs, task_type)], axis=1)


def ap_per_class(y, probs, task_type: str, w=None) -> np.ndarray:
    return np.stack([binary_ap(t, s, w) for t, s in _ovr_targets(y, probs, task_type)], axis=1)


def auc(y, probs, task_type: str, w=None) -> np.ndarray:
    """AUC: binary on P(class 1); macro one-vs-rest for multi-class/ordinal; macro over labels."""
    if task_type == "binary":
        return binary_auc(y, probs[:, 1], w)
    return _nanmean_strict(auc_per_class(y, probs, task_type, w))


def average_precision(y, probs, task_type: str, w=None) -> np.ndarray:
    if task_type == "binary":
        return binary_ap(y, probs[:, 1], w)
    return _nanmean_strict(ap_per_class(y, probs, task_type, w))


def _nanmean_strict(x: np.ndarray) -> np.ndarray:
    """Macro mean that is NaN when any class is undefined (a macro over fewer classes is another metric)."""
    return x.mean(axis=1)


# ----------------------------------------------------------------------------- probabilistic


def brier_per_case(y, probs, task_type: str) -> np.ndarray:
    """Per-case Brier score ``(N,)``.

    binary: (P(class 1) - y)^2; multi-class/ordinal: sum_k (p_k - [y = k])^2 (Brier's original,
    range 0-2); multi-label: mean over labels of (p_l - y_l)^2.
    """
    if task_type == "binary":
        return (probs[:, 1] - y) ** 2
    if task_type == "multi-label":
        return ((probs - y) ** 2).mean(axis=1)
    onehot = np.eye(probs.shape[1])[y]
    return ((probs - onehot) ** 2).sum(axis=1)


def nll_per_case(y, probs, task_type: str, eps: float = 1e-15) -> np.ndarray:
    """Per-case negative log-likelihood (natural log; probabilities clipped to [eps, 1-eps] as scikit-learn)."""
    p = np.clip(probs, eps, 1 - eps)
    if task_type == "multi-label":
        return -(y * np.log(p) + (1 - y) * np.log(1 - p)).mean(axis=1)
    return -np.log(p[np.arange(len(y)), y])


def calibration_features(y, probs, task_type: str, *, n_bins: int = ECE_BINS) -> np.ndarray:
    """Per-case features whose weighted sums give ECE and MCE: ``(N, 2 * n_bins)`` (multi-label
    ``(N, L * 2 * n_bins)``, label by label) = [bin indicator, bin indicator * (correct - confidence)]
    of the top-label confidence (binary: max(p, 1-p); bins (0, 1/B], ..., ((B-1)/B, 1], right-closed
    so confidence 1 falls in the last bin)."""
    if task_type == "multi-label":
        return np.hstack([calibration_features(y[:, k], np.column_stack([1 - probs[:, k], probs[:, k]]), "binary",
                                               n_bins=n_bins) for k in range(probs.shape[1])])
    conf = probs.max(axis=1)
    correct = (probs.argmax(axis=1) == y).astype(float)
    b = np.clip(np.ceil(conf * n_bins).astype(int) - 1, 0, n_bins - 1)
    ind = np.zeros((len(y), n_bins))
    ind[np.arange(len(y)), b] = 1.0
    return np.hstack([ind, ind * (correct - conf)[:, None]])


def _calibration_gaps(S: np.ndarray, n_bins: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-bin weighted counts and |sum(correct) - sum(confidence)|, ``(B, L, n_bins)`` each, from
    the sums ``(B, L * 2 * n_bins)`` of :func:`calibration_features`."""
    S = S.reshape(len(S), -1, 2, n_bins)
    return S[:, :, 0], np.abs(S[:, :, 1])


def ece_from_sums(S: np.ndarray, *, n_bins: int = ECE_BINS) -> np.ndarray:
    """ECE ``(B,)`` from weighted sums of :func:`calibration_features` (multi-label: mean over labels)."""
    cnt, gap = _calibration_gaps(S, n_bins)
    return (gap.sum(2) / cnt.sum(2)).mean(1)


def mce_from_sums(S: np.ndarray, *, n_bins: int = ECE_BINS) -> np.ndarray:
    """MCE ``(B,)`` from weighted sums of :func:`calibration_features` (multi-label: mean over labels)."""
    cnt, gap = _calibration_gaps(S, n_bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        per_bin = np.where(cnt > 0, gap / np.where(cnt > 0, cnt, 1.0), 0.0)
    return np.where(cnt.sum(2) > 0, per_bin.max(axis=2), np.nan).mean(1)


def ece(y, probs, task_type: str, w=None, *, n_bins: int = ECE_BINS) -> np.ndarray:
    """Expected calibration error of the top-label confidence, ``n_bins`` equal-width bins.

    ECE = sum_b (n_b / n) |acc_b - conf_b|. Binary: confidence of the predicted class
    (max(p, 1-p)); multi-label: the mean of the per-label (binary) ECEs.
    """
    return ece_from_sums(as_weights(w, len(y)) @ calibration_features(y, probs, task_type, n_bins=n_bins), n_bins=n_bins)


def classwise_ece(y, probs, task_type: str, w=None, *, n_bins: int = ECE_BINS) -> np.ndarray:
    """Class-wise ECE ``(B, K)``: each class's probability as a binary forecast of that class,
    sum_b (n_b / n) |freq_b - mean p_b| over ``n_bins`` equal-width bins (Kull et al. 2019)."""
    w = as_weights(w, len(y))
    out = []
    for t, s in _ovr_targets(y, probs, task_type if task_type == "multi-label" else "multi-class"):
        b = np.clip(np.ceil(s * n_bins).astype(int) - 1, 0, n_bins - 1)
        ind = np.zeros((len(s), n_bins))
        ind[np.arange(len(s)), b] = 1.0
        out.append(np.abs(w @ (ind * t[:, None]) - w @ (ind * s[:, None])).sum(1) / w.sum(1))
    return np.stack(out, axis=1)


def reliability_curve(y, probs, task_type: str, *, n_bins: int = ECE_BINS) -> dict[str, list]:
    """Reliability-diagram data for the top-label confidence: per bin count, mean confidence, accuracy."""
    if task_type == "multi-label":
        probs = probs.reshape(-1, 1)
        probs = np.column_stack([1 - probs[:, 0], probs[:, 0]])
        y = y.reshape(-1)
    conf = probs.max(axis=1)
    correct = probs.argmax(axis=1) == y
    b = np.clip(np.ceil(conf * n_bins).astype(int) - 1, 0, n_bins - 1)
    out = {"bin_lower": [], "bin_upper": [], "count": [], "confidence": [], "accuracy": []}
    for k in range(n_bins):
        m = b == k
        out["bin_lower"].append(k / n_bins)
        out["bin_upper"].append((k + 1) / n_bins)
        out["count"].append(int(m.sum()))
        out["confidence"].append(float(conf[m].mean()) if m.any() else None)
        out["accuracy"].append(float(correct[m].mean()) if m.any() else None)
    return out


# ----------------------------------------------------------------------------- predictive values, likelihood ratios


def precision_per_class(cm: np.ndarray) -> np.ndarray:
    """Positive predictive value of each class (one-vs-rest), ``(B, K)``: TP / (TP + FP); NaN if never predicted."""
    return _safe_div(np.diagonal(cm, axis1=1, axis2=2), cm.sum(1))


def npv_per_class(cm: np.ndarray) -> np.ndarray:
    """Negative predictive value of each class (one-vs-rest), ``(B, K)``: TN / (TN + FN)."""
    _, _, fn, tn = ovr_counts(cm)
    return _safe_div(tn, tn + fn)


def likelihood_ratios_cm(cm: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """LR+ = sens / (1 - spec) and LR- = (1 - sens) / spec of binary confusion matrices ``(B, 2, 2)``
    (class 1 positive). ``inf`` where the denominator is 0 and the numerator not; NaN for 0/0 or
    when a class is absent."""
    tn, fp, fn, tp = cm[:, 0, 0], cm[:, 0, 1], cm[:, 1, 0], cm[:, 1, 1]
    sens, spec = _safe_div(tp, tp + fn), _safe_div(tn, tn + fp)
    with np.errstate(invalid="ignore", divide="ignore"):
        return sens / (1 - spec), (1 - sens) / spec



# ----------------------------------------------------------------------------- more AUC averages (multi-class, multi-label)


def _onehot(y: np.ndarray, k: int, task_type: str) -> np.ndarray:
    return y.astype(float) if task_type == "multi-label" else np.eye(k)[y]


def auc_micro(y, probs, task_type: str, w=None) -> np.ndarray:
    """Micro-average AUC: one ROC curve over all N x K (case, class) pairs of the one-hot truth and
    the probabilities (scikit-learn ``average='micro'``)."""
    n, k = probs.shape
    w = as_weights(w, n)
    return binary_auc(_onehot(y, k, task_type).ravel().astype(np.int64), probs.ravel(), np.repeat(w, k, axis=1))


def auc_weighted(y, probs, task_type: str, w=None) -> np.ndarray:
    """Prevalence-weighted mean of the one-vs-rest (per-label) AUCs, weights = (weighted) number of
    positives per class (scikit-learn ``average='weighted'``). NaN when a class is undefined."""
    n, k = probs.shape
    w = as_weights(w, n)
    support = w @ _onehot(y, k, task_type)
    per = auc_per_class(y, probs, task_type, w)
    return (per * support).sum(1) / support.sum(1)


def auc_ovo(y, probs, w=None) -> np.ndarray:
    """Hand & Till (2001) multi-class AUC M: the mean over class pairs (j, k) of
    (A(j|k) + A(k|j)) / 2, A(j|k) = AUC of p_j separating class j from class k on the cases of these
    two classes only (scikit-learn ``multi_class='ovo'``). NaN when a class has no case."""
    n, k = probs.shape
    w = as_weights(w, n)
    vals = []
    for a in range(k):
        for b in range(a + 1, k):
            m = (y == a) | (y == b)
            wa = w[:, m]
            vals.append((binary_auc((y[m] == a).astype(np.int64), probs[m, a], wa)
                         + binary_auc((y[m] == b).astype(np.int64), probs[m, b], wa)) / 2)
    return np.mean(vals, axis=0)


# ----------------------------------------------------------------------------- top-k accuracy, maximum calibration error


def top_k_correct(y: np.ndarray, probs: np.ndarray, k: int) -> np.ndarray:
    """Per case 1.0 when the true class is among the ``k`` most probable ones, else 0.0.

    Ties are broken towards the lower class index, as argmax does, so top-1 equals ``acc``
    (scikit-learn's ``top_k_accuracy_score`` breaks ties towards the higher index instead).
    """
    p_true = probs[np.arange(len(y)), y][:, None]
    rank = (probs > p_true).sum(1) + ((probs == p_true) & (np.arange(probs.shape[1])[None, :] < y[:, None])).sum(1)
    return (rank < k).astype(float)


def top_k_accuracy(y, probs, k: int, w=None) -> np.ndarray:
    w = as_weights(w, len(y))
    return (w @ top_k_correct(y, probs, k)) / w.sum(1)


def mce(y, probs, task_type: str, w=None, *, n_bins: int = ECE_BINS) -> np.ndarray:
    """Maximum calibration error (Naeini et al. 2015): max over non-empty bins of |acc_b - conf_b|,
    same bins and top-label confidence as :func:`ece`; multi-label: the mean of the per-label MCEs."""
    return mce_from_sums(as_weights(w, len(y)) @ calibration_features(y, probs, task_type, n_bins=n_bins), n_bins=n_bins)


# the ROC operating points live in their own module; importable from here as before
from openmia.metrics.roc_points import (  # noqa: E402,F401
    DCA_THRESHOLDS, RATE_TOL, SortedRankStats, binary_roc_summary, check_fpr_range, mcclish, net_benefit, operating_point, partial_auc, sensitivity_at_specificity, specificity_at_sensitivity, target_key, weighted_roc, youden, _pauc_raw,
)
