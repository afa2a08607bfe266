"""The classification evaluator: probabilities + truth -> per-case table + summary with CIs.

Model-agnostic: it scores arrays or CSV files from any tool. CI methods (docs/evaluation.md):
AUC -> DeLong; single proportions (ACC, sensitivity/specificity, PPV/NPV, top-k accuracy) -> Wilson;
likelihood ratios -> the log method (Simel et al. 1991); everything else -> BCa bootstrap over cases.
With patient ids every CI is a cluster bootstrap over patients, since DeLong, Wilson and the log
method assume independent cases. Binary tasks also get a decision curve (net benefit against
treat-all and treat-none, with percentile bootstrap bands) in ``summary["decision_curve"]``.

All bootstrapped statistics share one pass over the resamples (``stats.bootstrap.bootstrap_many``):
confusion-matrix metrics, ECE/MCE and mean scores are functions of weighted sums (one matrix
product per chunk, closed-form jackknife), and binary rank statistics (AP, Youden, operating
points, pAUC, net benefit) come from integer cumulative sums over the cases sorted once by score.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from openmia.metrics import classification as M
from openmia.errors import PredictionError
from openmia.metrics._checks import check_classification
from openmia.stats import delong
from openmia.stats.bootstrap import LinearStat, Replicates, bootstrap_many
from openmia.stats.diagnostic import likelihood_ratios
from openmia.stats.proportions import wilson
from openmia.evaluation.result import EvaluationResult, write_outputs  # noqa: F401 (re-exported)

SCHEMA = "openmia.summary/1"
METRICS = ("auc", "ap", "acc", "balanced_acc", "f1", "mcc", "kappa", "sensitivity", "specificity", "ece", "brier", "nll")
TOP_K = (2, 3)  # top-k accuracies reported for multi-class/ordinal tasks with more than k classes


class ClassificationResult(EvaluationResult):
    """Result of :func:`evaluate_classification` (``extras``: probs, y, pred)."""


def _describe(values: np.ndarray | None) -> dict[str, Any]:
    if values is None:
        return {"mean": None, "median": None, "q1": None, "q3": None}
    v = values[np.isfinite(values)]
    if v.size == 0:
        return {"mean": None, "median": None, "q1": None, "q3": None}
    q1, med, q3 = np.quantile(v, [0.25, 0.5, 0.75])
    return {"mean": float(v.mean()), "median": float(med), "q1": float(q1), "q3": float(q3)}


def _num(x: float) -> float | None:
    return None if x is None or not np.isfinite(x) else float(x)


def _cells(y: np.ndarray, pred: np.ndarray, k: int) -> np.ndarray:
    """One-hot confusion cells ``(N, k * k)`` (truth-major): their weighted sums are the confusion
    matrices :func:`openmia.metrics.classification.confusion` returns."""
    F = np.zeros((len(y), k * k))
    F[np.arange(len(y)), y * k + pred] = 1.0
    return F


def _targets(x: float | Sequence[float] | None, option: str) -> tuple[float, ...]:
    if x is None:
        return ()
    vals = (float(x),) if np.isscalar(x) else tuple(float(v) for v in x)
    for v in vals:
        if not 0 < v < 1:
            raise PredictionError(f"{option} must lie strictly between 0 and 1, found {v}")
    return vals


def evaluate_classification(probs, y_true, case_ids, *, task_type: str, label_names: list[str] | None = None,
                            patient_ids=None, n_resamples: int = 2000, seed: int = 0, threshold: float | None = None,
                            alpha: float = 0.05, missing_cases: list[str] | None = None,
                            sens_at_spec: float | Sequence[float] | None = None,
                            spec_at_sens: float | Sequence[float] | None = None,
                            pauc_fpr: tuple[float, float] | None = None, top_k: Sequence[int] = TOP_K,
                            dca_thresholds: Sequence[float] | None = None,
                            sampler: str = "poissonized") -> ClassificationResult:
    """Score classification predictions with the evaluation standard.

    Args:
        probs: ``(N, K)`` probabilities (binary: ``(N,)`` scores for class 1 or ``(N, 2)``).
        y_true: ``(N,)`` class indices, or ``(N, L)`` 0/1 for multi-label.
        case_ids: ``N`` unique case identifiers (used in every error message).
        task_type: binary | multi-class | ordinal | multi-label.
        label_names: class names (default ``"0".."K-1"``).
        patient_ids: optional ``N`` patient ids -> cluster bootstrap over patients for all CIs.
        threshold: decision threshold for binary/multi-label (default 0.5).
        sens_at_spec, spec_at_sens: binary: also report the sensitivity at specificity >= each
            target (and vice versa), e.g. ``0.9`` or ``(0.9, 0.95)``, with BCa bootstrap CIs.
        pauc_fpr: binary: also report the partial AUC over this FPR range, e.g. ``(0, 0.2)``
            (``pauc``: McClish-standardised; ``pauc_raw``: the area), BCa bootstrap CIs.
        top_k: multi-class/ordinal: the k of the top-k accuracies (those with k < K are reported).
        dca_thresholds: binary: threshold probabilities of the decision curve (default 0.01..0.99).
        sampler: how resamples are drawn (``stats.bootstrap``): ``poissonized`` (exact, fast) or
            ``multinomial`` (numpy's, the resamples of ``bootstrap_ci`` for the same seed, applied
            to the cases in decreasing order of the binary score).
    """
    case_ids = [str(c) for c in case_ids]
    sens_targets, spec_targets = _targets(sens_at_spec, "sens_at_spec"), _targets(spec_at_sens, "spec_at_sens")
    if pauc_fpr is not None:
        try:
            pauc_fpr = M.check_fpr_range(pauc_fpr)
        except (ValueError, TypeError):
            raise PredictionError(f"pauc_fpr (--pauc-fpr) must be two numbers 0 <= low < high <= 1, found {pauc_fpr!r}") from None
    dca_t = M.DCA_THRESHOLDS if dca_thresholds is None else np.asarray(dca_thresholds, dtype=float)
    if dca_t.ndim != 1 or not dca_t.size or not np.all((dca_t > 0) & (dca_t < 1)):
        raise PredictionError("decision-curve thresholds must lie strictly between 0 and 1")
    probs, y = check_classification(probs, y_true, task_type, case_ids=case_ids, label_names=label_names)
    n, k = probs.shape
    names = [str(x) for x in (label_names or range(k))]
    groups = None if patient_ids is None else np.asarray([str(p) for p in patient_ids])
    pred = M.predict(probs, task_type, threshold=threshold)
    rows: list[dict[str, Any]] = []
    op_points: dict[str, dict[str, float | None]] = {}

    # ---- per-case values
    brier_i = M.brier_per_case(y, probs, task_type)
    nll_i = M.nll_per_case(y, probs, task_type)
    if task_type == "multi-label":
        correct_i = (pred == y).mean(axis=1)
        p_true = None
    else:
        correct_i = (pred == y).astype(float)
        p_true = probs[np.arange(n), y]
    per_case: list[tuple[str, str, str, float]] = []
    for i, c in enumerate(case_ids):
        per_case += [(c, "all", "correct", float(correct_i[i])), (c, "all", "brier", float(brier_i[i])),
                     (c, "all", "nll", float(nll_i[i]))]
        if p_true is not None:
            per_case.append((c, "all", "p_true", float(p_true[i])))
    per_case_values = {"acc": correct_i, "brier": brier_i, "nll": nll_i}

    # ---- the bootstrap sees the cases in decreasing order of the binary score (ties in input
    # order), so the rank statistics need no sort per resample; every other statistic is order-free
    order = np.argsort(-probs[:, 1], kind="mergesort") if task_type == "binary" else np.arange(n)
    yb, pb, predb = y[order], probs[order], pred[order]
    groups_b = None if groups is None else groups[order]
    boot_stats: dict[str, Callable[[np.ndarray], np.ndarray]] = {}  # bootstrapped in one pass at the end
    pending: list[tuple[dict[str, Any], str]] = []  # (summary row, key of its replicates)
    ranks: M.SortedRankStats | None = None

    def mean_of(values: np.ndarray) -> LinearStat:
        return LinearStat(np.column_stack([np.ones(n), values]), lambda S: S[:, 1] / S[:, 0])

    def add(metric: str, label: str, stat: Callable[[np.ndarray], np.ndarray] | str, *, ci: str = "bca",
            proportion: tuple[float, float] | None = None, auc_infl: tuple[float, np.ndarray] | None = None,
            closed: tuple[float, float, float, str] | None = None) -> None:
        """One summary row; ``ci`` chooses the interval unless patients force the cluster bootstrap
        (``closed``: a precomputed ``(value, low, high, method)`` for independent cases). ``stat``:
        weights -> values on the bootstrap order, or the name of a rank statistic (``ranks``)."""
        value = lo = hi = None
        if closed is not None and groups is None:
            value, lo, hi, method = closed
        elif ci == "wilson" and groups is None and proportion is not None:
            x, m = proportion
            value = x / m if m > 0 else np.nan
            lo, hi = wilson(x, m, alpha) if m > 0 else (np.nan, np.nan)
            method = "wilson"
        elif ci == "delong" and groups is None and auc_infl is not None:
            value, psi = auc_infl
            lo, hi, _ = delong.auc_ci(value, psi, alpha)
            method = "delong"
        else:
            method = "bca_bootstrap" + ("_patients" if groups is not None else "")
        desc = _describe(per_case_values.get(metric) if label == "all" else None)
        rows.append({"metric": metric, "label": label, "value": _num(value), "ci_low": _num(lo), "ci_high": _num(hi),
                     "ci_method": method, "n": n, "n_nan": 0, **desc})
        if method.startswith("bca_bootstrap"):
            key = stat if isinstance(stat, str) else f"{metric}:{label}"
            if not isinstance(stat, str):
                boot_stats[key] = stat
            pending.append((rows[-1], key))

    def undefined(metric: str, reason: str, label: str = "all") -> None:
        rows.append({"metric": metric, "label": label, "value": None, "ci_low": None, "ci_high": None,
                     "ci_method": f"undefined: {reason}", "n": n, "n_nan": 1, **_describe(None)})

    # ---- AUC (DeLong) — undefined when a class is absent
    try:
        macro_auc, macro_psi, class_auc, class_psi = delong.influence_ovr(y, probs, task_type)
        auc_infl = (macro_auc, macro_psi)
    except Exception:  # PredictionError: a class has no positive or no negative case
        class_auc = class_psi = None
        auc_infl = None
    if task_type == "binary":  # every ROC-derived statistic from integer cumulative sums in score order
        ranks = M.SortedRankStats(yb, pb[:, 1], sens_at_spec=sens_targets, spec_at_sens=spec_targets,
                                  pauc_fpr=pauc_fpr, dca_thresholds=dca_t)
    if auc_infl is not None:
        add("auc", "all", lambda w: M.auc(yb, pb, task_type, w), ci="delong", auc_infl=auc_infl)
    else:
        rows.append({"metric": "auc", "label": "all", "value": None, "ci_low": None, "ci_high": None,
                     "ci_method": "undefined: a class has no positive or no negative case", "n": n, "n_nan": 1,
                     **_describe(None)})
    add("ap", "all", "ap" if ranks is not None else (lambda w: M.average_precision(yb, pb, task_type, w)))

    # ---- AUC averages beyond the macro one (multi-class, ordinal, multi-label)
    if task_type != "binary":
        try:
            add("auc_weighted", "all", lambda w: M.auc_weighted(yb, pb, task_type, w), ci="delong",
                auc_infl=delong.influence_weighted(y, probs, task_type))
        except Exception:  # PredictionError: a class has no positive or no negative case
            undefined("auc_weighted", "a class has no positive or no negative case")
        add("auc_micro", "all", lambda w: M.auc_micro(yb, pb, task_type, w))
        if task_type != "multi-label":
            try:
                add("auc_ovo", "all", lambda w: M.auc_ovo(yb, pb, w), ci="delong", auc_infl=delong.influence_ovo(y, probs))
            except Exception:
                undefined("auc_ovo", "a class has no case")

    # ---- threshold metrics: functions of weighted confusion matrices (one matrix product for all)
    if task_type == "multi-label":
        F_ml = np.hstack([_cells(yb[:, j], predb[:, j], 2) for j in range(k)])  # label j: columns 4j..4j+3
        per = lambda f: LinearStat(F_ml, lambda S: np.mean([f(S[:, 4 * j:4 * j + 4].reshape(-1, 2, 2))  # noqa: E731
                                                            for j in range(k)], axis=0))
        per_rows = lambda f: LinearStat(F_ml, lambda S: _nanmean_rows(np.stack(  # noqa: E731
            [f(S[:, 4 * j:4 * j + 4].reshape(-1, 2, 2)) for j in range(k)], axis=1)))
        add("acc", "all", per(M.accuracy_cm))
        add("balanced_acc", "all", per(M.balanced_accuracy_cm))
        add("f1", "all", per(lambda c: M.f1_per_class(c)[:, 1]))
        add("mcc", "all", per(M.mcc_cm))
        add("kappa", "all", per(M.kappa_cm))
        add("sensitivity", "all", per(lambda c: M.recall_per_class(c)[:, 1]))
        add("specificity", "all", per(lambda c: M.recall_per_class(c)[:, 0]))
        add("ppv", "all", per_rows(lambda c: M.precision_per_class(c)[:, 1]))
        add("npv", "all", per_rows(lambda c: M.npv_per_class(c)[:, 1]))
    else:
        F_cm = _cells(yb, predb, k)
        cm = lambda f: LinearStat(F_cm, lambda S: f(S.reshape(-1, k, k)))  # noqa: E731
        add("acc", "all", cm(M.accuracy_cm), ci="wilson", proportion=(float(correct_i.sum()), n))
        add("balanced_acc", "all", cm(M.balanced_accuracy_cm))
        if task_type == "binary":
            tp, npos = float(((pred == 1) & (y == 1)).sum()), float((y == 1).sum())
            tn, nneg = float(((pred == 0) & (y == 0)).sum()), float((y == 0).sum())
            add("f1", "all", cm(lambda c: M.f1_per_class(c)[:, 1]))
            add("mcc", "all", cm(M.mcc_cm))
            add("kappa", "all", cm(M.kappa_cm))
            add("sensitivity", "all", cm(lambda c: M.recall_per_class(c)[:, 1]), ci="wilson", proportion=(tp, npos))
            add("specificity", "all", cm(lambda c: M.recall_per_class(c)[:, 0]), ci="wilson", proportion=(tn, nneg))
            fp, fn = nneg - tn, npos - tp
            add("ppv", "all", cm(lambda c: M.precision_per_class(c)[:, 1]), ci="wilson", proportion=(tp, tp + fp))
            add("npv", "all", cm(lambda c: M.npv_per_class(c)[:, 1]), ci="wilson", proportion=(tn, tn + fn))
            lr = likelihood_ratios(tp, fp, fn, tn, alpha)
            for key, idx in (("lr_pos", 0), ("lr_neg", 1)):
                method = "log_simel" + ("_haldane" if lr[f"{key}_corrected"] else "")
                add(key, "all", cm(lambda c, idx=idx: M.likelihood_ratios_cm(c)[idx]),
                    closed=(lr[key], lr[f"{key}_low"], lr[f"{key}_high"], method))
            score = probs[:, 1]
            add("youden_j", "all", "youden_j")
            add("youden_threshold", "all", "youden_threshold")
            op_points["youden"] = M.operating_point(y, score, "youden")
            for prefix, targets in (("sens_at_spec", sens_targets), ("spec_at_sens", spec_targets)):
                for target in targets:
                    key = M.target_key(prefix, target)
                    add(key, "all", key)
                    op_points[key] = M.operating_point(y, score, prefix, target)
            if pauc_fpr is not None:
                add("pauc", "all", "pauc")
                add("pauc_raw", "all", "pauc_raw")
        else:
            add("f1", "all", cm(lambda c: np.nanmean(M.f1_per_class(c), axis=1)))
            add("mcc", "all", cm(M.mcc_cm))
            kw = "quadratic" if task_type == "ordinal" else None
            add("kappa", "all", cm(lambda c: M.kappa_cm(c, weights=kw)))
            add("sensitivity", "all", cm(lambda c: np.nanmean(M.recall_per_class(c), axis=1)))
            add("specificity", "all", cm(lambda c: np.nanmean(M.specificity_per_class(c), axis=1)))
            add("ppv", "all", cm(lambda c: _nanmean_rows(M.precision_per_class(c))))
            add("npv", "all", cm(lambda c: _nanmean_rows(M.npv_per_class(c))))
            for kk in sorted({int(v) for v in top_k}):
                if 1 < kk < k:
                    hit = M.top_k_correct(y, probs, kk)
                    add(f"top{kk}_acc", "all", mean_of(hit[order]), ci="wilson", proportion=(float(hit.sum()), n))

    # ---- calibration and proper scores
    F_cal = M.calibration_features(yb, pb, task_type)
    add("ece", "all", LinearStat(F_cal, M.ece_from_sums))
    add("mce", "all", LinearStat(F_cal, M.mce_from_sums))
    if task_type != "binary":
        add("classwise_ece", "all", lambda w: M.classwise_ece(yb, pb, task_type, w).mean(1))
    F_scores = np.column_stack([np.ones(n), brier_i[order], nll_i[order]])
    add("brier", "all", LinearStat(F_scores, lambda S: S[:, 1] / S[:, 0]))
    add("nll", "all", LinearStat(F_scores, lambda S: S[:, 2] / S[:, 0]))

    # ---- per class (multi-class, ordinal, multi-label)
    if task_type != "binary":
        for j, name in enumerate(names):
            t = y[:, j] if task_type == "multi-label" else (y == j).astype(np.int64)
            pj = pred[:, j] if task_type == "multi-label" else (pred == j).astype(np.int64)
            tb, pjb = t[order], pj[order]
            if class_auc is not None:
                add("auc", name, lambda w, tb=tb, j=j: M.binary_auc(tb, pb[:, j], w), ci="delong",
                    auc_infl=(float(class_auc[j]), class_psi[j]))
            add("ap", name, lambda w, tb=tb, j=j: M.binary_ap(tb, pb[:, j], w))
            F_j = _cells(tb, pjb, 2)
            cmj = lambda f, F_j=F_j: LinearStat(F_j, lambda S: f(S.reshape(-1, 2, 2)))  # noqa: E731
            add("sensitivity", name, cmj(lambda c: M.recall_per_class(c)[:, 1]), ci="wilson",
                proportion=(float(((pj == 1) & (t == 1)).sum()), float((t == 1).sum())))
            add("specificity", name, cmj(lambda c: M.recall_per_class(c)[:, 0]), ci="wilson",
                proportion=(float(((pj == 0) & (t == 0)).sum()), float((t == 0).sum())))
            add("f1", name, cmj(lambda c: M.f1_per_class(c)[:, 1]))
            add("ppv", name, cmj(lambda c: M.precision_per_class(c)[:, 1]), ci="wilson",
                proportion=(float(((pj == 1) & (t == 1)).sum()), float((pj == 1).sum())))
            add("npv", name, cmj(lambda c: M.npv_per_class(c)[:, 1]), ci="wilson",
                proportion=(float(((pj == 0) & (t == 0)).sum()), float((pj == 0).sum())))

    # ---- every bootstrapped statistic in one pass over the resamples (stats.bootstrap.bootstrap_many)
    reps = bootstrap_many(boot_stats, n, block_stats=[ranks] if ranks is not None else [], n_resamples=n_resamples,
                          seed=seed, groups=groups_b, sampler=sampler)
    for row, key in pending:
        r = reps[key].ci(alpha)
        row.update(value=_num(r.value), ci_low=_num(r.ci_low), ci_high=_num(r.ci_high), n_nan=r.n_dropped)
    decision_curve = None
    if ranks is not None:  # binary
        decision_curve = _decision_curve(reps, dca_t, alpha, "patient" if groups is not None else "case", n_resamples)

    summary = {
        "schema": SCHEMA,
        "task": "classification",
        "task_type": task_type,
        "n_cases": n,
        "n_patients": None if groups is None else int(len(np.unique(groups))),
        "labels": names,
        "threshold": 0.5 if threshold is None and task_type in ("binary", "multi-label") else threshold,
        "metrics": rows,
        "bootstrap": {"method": "bca", "n_resamples": n_resamples, "seed": seed,
                      "unit": "patient" if groups is not None else "case", "alpha": alpha},
        "missing_cases": list(missing_cases or []),
        "reliability": M.reliability_curve(y, probs, task_type),
        "conventions": {
            "auc": "binary: P(class 1); multi-class/ordinal: one-vs-rest macro; multi-label: macro over labels",
            "acc": "argmax (multi-class/ordinal); P >= threshold (binary, multi-label: mean over labels)",
            "kappa": "quadratic-weighted for ordinal, unweighted otherwise",
            "ece": f"{M.ECE_BINS} equal-width bins of the top-label confidence",
            "brier": "binary (p - y)^2; multi-class sum_k (p_k - y_k)^2; multi-label mean over labels",
            "ci": "AUC DeLong; single proportions Wilson; others BCa bootstrap over cases (patients when given)",
            "ppv_npv": "TP/(TP+FP), TN/(TN+FN) at the decision threshold (one-vs-rest per class; 'all' = mean over "
                       "classes/labels with a defined value); Wilson CI",
            "mce": f"max over non-empty bins of |accuracy - confidence|, the {M.ECE_BINS} bins of ece",
        },
    }
    if task_type == "binary":
        summary["conventions"].update({
            "likelihood_ratios": "LR+ = sens/(1-spec), LR- = (1-sens)/spec at the decision threshold; CI by the log "
                                 "method (Simel et al. 1991), 0.5 added to each cell when a count it divides by is 0",
            "youden": "J = max over thresholds of sens + spec - 1; positive when P(class 1) >= threshold; "
                      "ties -> the highest threshold",
            "operating_points": "sens_at_spec_<t>: highest sensitivity at a threshold with specificity >= t "
                                "(spec_at_sens_<t> likewise), empirical ROC points, no interpolation",
            "decision_curve": "net benefit = TP/n - FP/n * pt/(1-pt), treat when P(class 1) >= pt (Vickers & Elkin "
                              "2006); treat-none = 0; percentile bootstrap bands, pointwise",
        })
        if pauc_fpr is not None:
            summary["conventions"]["pauc"] = (f"partial AUC for FPR in [{pauc_fpr[0]:g}, {pauc_fpr[1]:g}] (trapezoids, "
                                              "linear interpolation at the ends); pauc: McClish-standardised "
                                              "(0.5 chance, 1 perfect; pROC partial.auc.correct), pauc_raw: the area")
        summary["operating_points"] = op_points
        summary["decision_curve"] = decision_curve
    elif task_type in ("multi-class", "ordinal"):
        summary["conventions"].update({
            "auc_variants": "auc_weighted: one-vs-rest weighted by class prevalence (DeLong, prevalences fixed); "
                            "auc_micro: one ROC over all (case, class) pairs (bootstrap); auc_ovo: Hand & Till 2001 M",
            "top_k": "true class among the k most probable; ties broken towards the lower class index (as argmax)",
        })
    else:
        summary["conventions"]["auc_variants"] = ("auc_weighted: labels weighted by their positives (DeLong, "
                                                  "weights fixed); auc_micro: one ROC over all (case, label) pairs")
    return ClassificationResult(per_case, summary, {"probs": probs, "y": y, "pred": pred})


def _nanmean_rows(x: np.ndarray) -> np.ndarray:
    """Mean over columns ignoring NaN; NaN (no warning) for a row without any defined value."""
    ok = np.isfinite(x)
    cnt = ok.sum(1)
    return np.where(cnt > 0, np.where(ok, x, 0.0).sum(1) / np.maximum(cnt, 1), np.nan)


def _decision_curve(reps: dict[str, Replicates], thresholds: np.ndarray, alpha: float, unit: str,
                    n_resamples: int) -> dict[str, Any]:
    """Net benefit of the model and of treat-all at each threshold with pointwise percentile
    bootstrap bands (the resamples of every other metric, from the same pass)."""
    bands = {}
    for key in ("net_benefit", "net_benefit_all"):
        boot = reps[key].boot
        boot = boot[np.isfinite(boot).all(axis=1)]
        bands[key] = (np.quantile(boot, [alpha / 2, 1 - alpha / 2], axis=0) if len(boot)
                      else np.full((2, len(thresholds)), np.nan))
    point = {key: reps[key].theta for key in ("net_benefit", "net_benefit_all")}
    rows = []
    for i, t in enumerate(thresholds):
        rows.append({"threshold": float(t),
                     "net_benefit": _num(point["net_benefit"][i]),
                     "ci_low": _num(bands["net_benefit"][0, i]), "ci_high": _num(bands["net_benefit"][1, i]),
                     "treat_all": _num(point["net_benefit_all"][i]),
                     "treat_all_ci_low": _num(bands["net_benefit_all"][0, i]),
                     "treat_all_ci_high": _num(bands["net_benefit_all"][1, i]),
                     "treat_none": 0.0})
    return {"rule": "treat when P(class 1) >= threshold", "net_benefit": "TP/n - FP/n * threshold / (1 - threshold)",
            "ci_method": "percentile_bootstrap_pointwise" + ("_patients" if unit == "patient" else ""),
            "n_resamples": n_resamples, "rows": rows}


def evaluate_files(pred_csv: str | Path, truth_csv: str | Path, out_dir: str | Path | None = None, *,
                   task_type: str | None = None, label_names: list[str] | None = None,
                   patients_csv: str | Path | None = None, allow_missing: bool = False, n_resamples: int = 2000,
                   seed: int = 0, threshold: float | None = None, **options: Any) -> ClassificationResult:
    """Score a prediction CSV against a truth CSV (formats in docs/evaluation.md); ``options``
    (``sens_at_spec``, ``spec_at_sens``, ``pauc_fpr``, ``top_k``, ``dca_thresholds``) go to
    :func:`evaluate_classification`."""
    from openmia.evaluation.io import align_classification

    data = align_classification(pred_csv, truth_csv, task_type=task_type, patients_csv=patients_csv,
                                allow_missing=allow_missing)
    res = evaluate_classification(
        data.probs, data.y, data.case_ids, task_type=data.task_type, label_names=label_names or data.label_names,
        patient_ids=data.patient_ids, n_resamples=n_resamples, seed=seed, threshold=threshold,
        missing_cases=data.missing, **options,
    )
    if out_dir is not None:
        write_outputs(res, out_dir, provenance={"pred": str(pred_csv), "truth": str(truth_csv),
                                                "pred_sha256": data.pred_sha256, "truth_sha256": data.truth_sha256})
    return res
