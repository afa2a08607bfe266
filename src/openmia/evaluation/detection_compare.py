"""``openmia compare --task detection``: detectors scored on the same images (DESIGN §4.4).

AP-type metrics are not per-image means, so they are compared with a **paired bootstrap over
images**: every resample re-weights the images (the same resamples for both models, drawn once
from the seed), both models' statistics are recomputed on it, and

- the CI is the BCa interval of the difference ``estimate_a - estimate_b`` over those resamples;
- the two-sided p-value is the share of resampled differences, centred at the observed one, that
  are at least as far from it as the observed difference is from 0:
  ``(1 + #{|d*_b - d| >= |d|}) / (B + 1)`` (the bootstrap test of Hall & Wilson 1991; Efron &
  Tibshirani 1993, §16.4), never 0.

Counts are per-image values, compared like every per-case metric of ``compare`` (Wilcoxon
signed-rank and a paired BCa bootstrap of the mean difference): ``count_abs_error`` of an image =
|number of predictions with score >= ``score_threshold`` - number of truth objects| (label
``all``: all classes together; a class label: that class).

Metrics: ``ap50``, ``ap75``, ``map``, ``ar``, ``ap_small``/``ap_medium``/``ap_large`` (2D
boxes), ``ap`` (at the main IoU / distance), ``froc``, ``f1``, ``precision``, ``recall`` (labels
``all`` or a class for ``ap50``/``ap75``/``map``/``ar``/``ap``), ``count_abs_error``. Defaults: boxes ``ap50, map,
count_abs_error``; points ``ap, froc, count_abs_error``.
"""

from __future__ import annotations

import hashlib
from typing import Any, Callable

import numpy as np

from openmia.errors import PredictionError

AGGREGATE_METRICS = ("ap", "ap50", "ap75", "map", "ar", "ap_small", "ap_medium", "ap_large", "froc", "f1",
                     "precision", "recall")
DEFAULTS = {"box": ("ap50", "map", "count_abs_error"), "point": ("ap", "froc", "count_abs_error")}


def _digest(w: np.ndarray) -> bytes:
    w = np.ascontiguousarray(w, dtype=float)
    return hashlib.blake2b(w.tobytes(), digest_size=16).digest() + bytes(str(w.shape), "ascii")


class _Cached:
    """A statistic ``w (B, n) -> (B,)`` that remembers its values per resample row, so the CI, the
    p-value and the ranking (which asks one row at a time) evaluate each resample once."""

    def __init__(self, f: Callable[[np.ndarray], np.ndarray]) -> None:
        self.f, self.rows = f, {}

    def __call__(self, w: np.ndarray) -> np.ndarray:
        w = np.atleast_2d(np.asarray(w, dtype=float))
        keys = [_digest(r) for r in w]
        todo = [i for i, k in enumerate(keys) if k not in self.rows]
        if todo:
            vals = np.asarray(self.f(w[todo]), dtype=float)
            self.rows.update(zip((keys[i] for i in todo), vals))
        return np.array([self.rows[k] for k in keys])


def detection_models(truth, preds: dict[str, Any], *, patients_csv=None, iou_threshold: float = 0.5,
                     distance: float = 5.0, spacing=None, score_threshold: float = 0.5, max_dets: int | None = None,
                     froc_interpolation: str = "step", format: str = "auto", **_: Any) -> tuple[list, dict]:
    """Every model matched against the truth: per-image counts and cached aggregate statistics."""
    from openmia.evaluation.model_predictions import ModelPredictions
    from openmia.evaluation.detection import match_inputs, metric_stats, per_image_counts, read_inputs

    if patients_csv is not None:
        raise PredictionError("--patients is not supported for compare --task detection in this version "
                              "(the bootstrap resamples images)")
    models, images, kind = [], None, None
    for name, path in preds.items():
        d = read_inputs(path, truth, format)
        if images is None:
            images, kind = d["images"], d["kind"]
        cm, main = match_inputs(d, iou_threshold=iou_threshold, distance=distance, spacing=spacing, max_dets=max_dets)
        fs = metric_stats(cm, main, score_threshold=score_threshold, froc_interpolation=froc_interpolation)
        if kind == "box":  # per class also AP75 and AR (the summary has AP50 and mAP per class)
            from openmia.metrics import detection_coco as C

            for lab in C.labels_with_truth(cm):
                fs[("ap75", str(lab))] = lambda w, lab=lab: C.class_ap(cm, lab, thresholds=(0.75,), w=w)
                fs[("ar", str(lab))] = lambda w, lab=lab: C.coco_ar(cm, label=lab, w=w)
        stats = {k: _Cached(f) for k, f in fs.items()}
        c = per_image_counts(cm, main, score_threshold)
        per_case = {("count_abs_error", "all"): np.abs(c["n_pred"].sum(1) - c["n_truth"].sum(1)).astype(float)}
        for k, lab in enumerate(cm.labels):
            per_case[("count_abs_error", str(lab))] = np.abs(c["n_pred"][:, k] - c["n_truth"][:, k]).astype(float)
        models.append(ModelPredictions(name, per_case, extras={"stats": stats, "n_images": len(images), "kind": kind}))
    return models, {"case_ids": images, "y": None, "task_type": None, "groups": None, "default_metrics": DEFAULTS[kind]}


def paired_bootstrap(stat_a, stat_b, n: int, *, n_resamples: int = 2000, seed: int = 0, alpha: float = 0.05,
                     groups=None) -> dict[str, Any]:
    """Paired bootstrap comparison of two image-weight statistics (see the module docstring)."""
    from openmia.stats.bootstrap import bootstrap_ci, resample_weights

    W = resample_weights(n, n_resamples, seed, groups)

    def diff(w):
        return stat_a(w) - stat_b(w)

    ones = np.ones((1, n))
    ea, eb = float(stat_a(ones)[0]), float(stat_b(ones)[0])
    r = bootstrap_ci(diff, n, weights=W, seed=seed, alpha=alpha, groups=groups)
    boot = np.concatenate([diff(w) for w in W.chunks()])
    boot = boot[np.isfinite(boot)]
    d = ea - eb
    p = float((1 + np.sum(np.abs(boot - d) >= abs(d))) / (boot.size + 1)) if boot.size and np.isfinite(d) else float("nan")
    return {"estimate_a": ea, "estimate_b": eb, "diff": d, "ci_low": r.ci_low, "ci_high": r.ci_high,
            "test": "paired_bootstrap", "p_value": min(p, 1.0)}


def compare_row(ma, mb, key: tuple[str, str], *, n_resamples: int, seed: int, alpha: float, groups=None) -> dict[str, Any]:
    """The ``comparisons.csv`` fields of an aggregate detection metric for models ``ma``, ``mb``."""
    return paired_bootstrap(ma.extras["stats"][key], mb.extras["stats"][key], ma.extras["n_images"],
                            n_resamples=n_resamples, seed=seed, alpha=alpha, groups=groups)


def rank_aggregate(models, key: tuple[str, str], *, higher_is_better: bool, n_resamples: int, seed: int,
                   groups=None) -> tuple[dict[str, Any], np.ndarray]:
    """Rank stability of an aggregate metric (every resample ranks the models' statistics on it);
    returns (the :func:`~openmia.stats.ranking.rank_stability` result, the full-data scores)."""
    from openmia.stats.bootstrap import resample_weights
    from openmia.stats.ranking import _rank, rank_stability

    n = models[0].extras["n_images"]
    stats = [m.extras["stats"][key] for m in models]
    for block in resample_weights(n, n_resamples, seed, groups).chunks():  # fill the caches block-wise
        for s in stats:
            s(block)

    def ranker(w: np.ndarray) -> np.ndarray:
        return _rank(np.array([float(s(w)[0]) for s in stats]), higher_is_better)

    stab = rank_stability(np.zeros((n, len(models))), "aggregate-then-rank", higher_is_better=higher_is_better,
                          n_resamples=n_resamples, seed=seed, groups=groups, ranker=ranker)
    return stab, np.array([float(s(np.ones((1, n)))[0]) for s in stats])
