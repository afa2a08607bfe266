"""The classification evaluator: probabilities + truth -> per-case table + summary with CIs.

Model-agnostic: it scores arrays or CSV files from any tool. CI methods (docs/evaluation.md):
AUC -> DeLong; single proportions (ACC, per-class sensitivity/specificity) -> Wilson; everything
else -> BCa bootstrap over cases. With patient ids every CI is a cluster bootstrap over patients,
since DeLong and Wilson assume independent cases.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import numpy as np

from openmia.metrics import classification as M
from openmia.metrics._checks import check_classification
from openmia.stats import delong
from openmia.stats.bootstrap import bootstrap_ci, resample_weights
from openmia.stats.proportions import wilson
from openmia.evaluation.result import EvaluationResult, write_outputs  # noqa: F401 (re-exported)

SCHEMA = "openmia.summary/1"
METRICS = ("auc", "ap", "acc", "balanced_acc", "f1", "mcc", "kappa", "sensitivity", "specificity", "ece", "brier", "nll")


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


def evaluate_classification(probs, y_true, case_ids, *, task_type: str, label_names: list[str] | None = None,
                            patient_ids=None, n_resamples: int = 2000, seed: int = 0, threshold: float | None = None,
                            alpha: float = 0.05, missing_cases: list[str] | None = None) -> ClassificationResult:
    """Score classification predictions with the evaluation standard.

    Args:
        probs: ``(N, K)`` probabilities (binary: ``(N,)`` scores for class 1 or ``(N, 2)``).
        y_true: ``(N,)`` class indices, or ``(N, L)`` 0/1 for multi-label.
        case_ids: ``N`` unique case identifiers (used in every error message).
        task_type: binary | multi-class | ordinal | multi-label.
        label_names: class names (default ``"0".."K-1"``).
        patient_ids: optional ``N`` patient ids -> cluster bootstrap over patients for all CIs.
        threshold: decision threshold for binary/multi-label (default 0.5).
    """
    case_ids = [str(c) for c in case_ids]
    probs, y = check_classification(probs, y_true, task_type, case_ids=case_ids, label_names=label_names)
    n, k = probs.shape
    names = [str(x) for x in (label_names or range(k))]
    groups = None if patient_ids is None else np.asarray([str(p) for p in patient_ids])
    pred = M.predict(probs, task_type, threshold=threshold)
    W = resample_weights(n, n_resamples, seed, groups)  # shared by all bootstrapped metrics
    rows: list[dict[str, Any]] = []

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

    def add(metric: str, label: str, stat: Callable[[np.ndarray], np.ndarray], *, ci: str = "bca",
            proportion: tuple[float, float] | None = None, auc_infl: tuple[float, np.ndarray] | None = None) -> None:
        """One summary row; ``ci`` chooses the interval unless patients force the cluster bootstrap."""
        n_nan = 0
        if ci == "wilson" and groups is None and proportion is not None:
            x, m = proportion
            value = x / m if m > 0 else np.nan
            lo, hi = wilson(x, m, alpha) if m > 0 else (np.nan, np.nan)
            method = "wilson"
        elif ci == "delong" and groups is None and auc_infl is not None:
            value, psi = auc_infl
            lo, hi, _ = delong.auc_ci(value, psi, alpha)
            method = "delong"
        else:
            r = bootstrap_ci(stat, n, weights=W, groups=groups, seed=seed, alpha=alpha)
            value, lo, hi, n_nan = r.value, r.ci_low, r.ci_high, r.n_dropped
            method = "bca_bootstrap" + ("_patients" if groups is not None else "")
        desc = _describe(per_case_values.get(metric) if label == "all" else None)
        rows.append({"metric": metric, "label": label, "value": _num(value), "ci_low": _num(lo), "ci_high": _num(hi),
                     "ci_method": method, "n": n, "n_nan": n_nan, **desc})

    # ---- AUC (DeLong) — undefined when a class is absent
    try:
        macro_auc, macro_psi, class_auc, class_psi = delong.influence_ovr(y, probs, task_type)
        auc_infl = (macro_auc, macro_psi)
    except Exception:  # PredictionError: a class has no positive or no negative case
        class_auc = class_psi = None
        auc_infl = None
    if auc_infl is not None:
        add("auc", "all", lambda w: M.auc(y, probs, task_type, w), ci="delong", auc_infl=auc_infl)
    else:
        rows.append({"metric": "auc", "label": "all", "value": None, "ci_low": None, "ci_high": None,
                     "ci_method": "undefined: a class has no positive or no negative case", "n": n, "n_nan": 1,
                     **_describe(None)})
    add("ap", "all", lambda w: M.average_precision(y, probs, task_type, w))

    # ---- threshold metrics
    if task_type == "multi-label":
        cms = [lambda w, j=j: M.confusion(y[:, j], pred[:, j], 2, w) for j in range(k)]
        add("acc", "all", lambda w: np.mean([M.accuracy_cm(c(w)) for c in cms], axis=0))
        add("balanced_acc", "all", lambda w: np.mean([M.balanced_accuracy_cm(c(w)) for c in cms], axis=0))
        add("f1", "all", lambda w: np.mean([M.f1_per_class(c(w))[:, 1] for c in cms], axis=0))
        add("mcc", "all", lambda w: np.mean([M.mcc_cm(c(w)) for c in cms], axis=0))
        add("kappa", "all", lambda w: np.mean([M.kappa_cm(c(w)) for c in cms], axis=0))
        add("sensitivity", "all", lambda w: np.mean([M.recall_per_class(c(w))[:, 1] for c in cms], axis=0))
        add("specificity", "all", lambda w: np.mean([M.recall_per_class(c(w))[:, 0] for c in cms], axis=0))
    else:
        cm = lambda w: M.confusion(y, pred, k, w)  # noqa: E731
        add("acc", "all", lambda w: M.accuracy_cm(cm(w)), ci="wilson", proportion=(float(correct_i.sum()), n))
        add("balanced_acc", "all", lambda w: M.balanced_accuracy_cm(cm(w)))
        if task_type == "binary":
            tp, npos = float(((pred == 1) & (y == 1)).sum()), float((y == 1).sum())
            tn, nneg = float(((pred == 0) & (y == 0)).sum()), float((y == 0).sum())
            add("f1", "all", lambda w: M.f1_per_class(cm(w))[:, 1])
            add("mcc", "all", lambda w: M.mcc_cm(cm(w)))
            add("kappa", "all", lambda w: M.kappa_cm(cm(w)))
            add("sensitivity", "all", lambda w: M.recall_per_class(cm(w))[:, 1], ci="wilson", proportion=(tp, npos))
            add("specificity", "all", lambda w: M.recall_per_class(cm(w))[:, 0], ci="wilson", proportion=(tn, nneg))
        else:
            add("f1", "all", lambda w: np.nanmean(M.f1_per_class(cm(w)), axis=1))
            add("mcc", "all", lambda w: M.mcc_cm(cm(w)))
            kw = "quadratic" if task_type == "ordinal" else None
            add("kappa", "all", lambda w: M.kappa_cm(cm(w), weights=kw))
            add("sensitivity", "all", lambda w: np.nanmean(M.recall_per_class(cm(w)), axis=1))
            add("specificity", "all", lambda w: np.nanmean(M.specificity_per_class(cm(w)), axis=1))

    # ---- calibration and proper scores
    add("ece", "all", lambda w: M.ece(y, probs, task_type, w))
    if task_type != "binary":
        add("classwise_ece", "all", lambda w: M.classwise_ece(y, probs, task_type, w).mean(1))
    add("brier", "all", lambda w: (w @ brier_i) / w.sum(1))
    add("nll", "all", lambda w: (w @ nll_i) / w.sum(1))

    # ---- per class (multi-class, ordinal, multi-label)
    if task_type != "binary":
        for j, name in enumerate(names):
            t = y[:, j] if task_type == "multi-label" else (y == j).astype(np.int64)
            pj = pred[:, j] if task_type == "multi-label" else (pred == j).astype(np.int64)
            if class_auc is not None:
                add("auc", name, lambda w, t=t, j=j: M.binary_auc(t, probs[:, j], w), ci="delong",
                    auc_infl=(float(class_auc[j]), class_psi[j]))
            add("ap", name, lambda w, t=t, j=j: M.binary_ap(t, probs[:, j], w))
            cmj = lambda w, t=t, pj=pj: M.confusion(t, pj, 2, w)  # noqa: E731
            add("sensitivity", name, lambda w, c=cmj: M.recall_per_class(c(w))[:, 1], ci="wilson",
                proportion=(float(((pj == 1) & (t == 1)).sum()), float((t == 1).sum())))
            add("specificity", name, lambda w, c=cmj: M.recall_per_class(c(w))[:, 0], ci="wilson",
                proportion=(float(((pj == 0) & (t == 0)).sum()), float((t == 0).sum())))
            add("f1", name, lambda w, c=cmj: M.f1_per_class(c(w))[:, 1])

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
        },
    }
    return ClassificationResult(per_case, summary, {"probs": probs, "y": y, "pred": pred})


def evaluate_files(pred_csv: str | Path, truth_csv: str | Path, out_dir: str | Path | None = None, *,
                   task_type: str | None = None, label_names: list[str] | None = None,
                   patients_csv: str | Path | None = None, allow_missing: bool = False, n_resamples: int = 2000,
                   seed: int = 0, threshold: float | None = None) -> ClassificationResult:
    """Score a prediction CSV against a truth CSV (formats in docs/evaluation.md)."""
    from openmia.evaluation.io import align_classification

    data = align_classification(pred_csv, truth_csv, task_type=task_type, patients_csv=patients_csv,
                                allow_missing=allow_missing)
    res = evaluate_classification(
        data.probs, data.y, data.case_ids, task_type=data.task_type, label_names=label_names or data.label_names,
        patient_ids=data.patient_ids, n_resamples=n_resamples, seed=seed, threshold=threshold,
        missing_cases=data.missing,
    )
    if out_dir is not None:
        write_outputs(res, out_dir, provenance={"pred": str(pred_csv), "truth": str(truth_csv),
                                                "pred_sha256": data.pred_sha256, "truth_sha256": data.truth_sha256})
    return res
