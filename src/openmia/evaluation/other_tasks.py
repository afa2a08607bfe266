"""Evaluators for counting, clustering and inpainting files (DESIGN §4.1); detection is in
:mod:`openmia.evaluation.detection` (its names are still importable from here).

Formats:
  counting    ``case_id,count[,label]`` for both sides.
  clustering  predictions ``case_id,cluster``, truth ``case_id,label``; optional embeddings
              ``case_id,<feature columns>`` for the silhouette.
  inpainting  folders of images ``<case_id>.npy|.png|.nii.gz`` and optional mask folder; the
              intensity ``data_range`` is required.

CIs: counting and
inpainting — BCa bootstrap of the per-case means; clustering — BCa bootstrap over cases
(recomputing the partition scores per resample).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from openmia.errors import PredictionError
from openmia.evaluation.io import read_csv
from openmia.evaluation.result import write_outputs

from openmia.evaluation.task_result import SCHEMA, TaskResult, _float_cell, _num, _row  # noqa: F401


# ----------------------------------------------------------------------------- detection
# The detection evaluator lives in openmia.evaluation.detection; its names stay importable from here.

_MOVED = ("evaluate_detection_files", "_read_detections", "BOX_COLS", "POINT_COLS")


def __getattr__(name: str) -> Any:
    if name in _MOVED:
        from openmia.evaluation import detection

        return getattr(detection, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# ----------------------------------------------------------------------------- counting


def _read_keyed(path, value_col: str, *, role: str, numeric: bool = True) -> tuple[dict[tuple[str, str], Any], str]:
    t = read_csv(path, ("case_id", value_col))
    h = t.header
    ci, vi = h.index("case_id"), h.index(value_col)
    li = h.index("label") if "label" in h and value_col != "label" else None
    out: dict[tuple[str, str], Any] = {}
    for line, r in enumerate(t.rows, start=2):
        key = (r[ci], r[li] if li is not None else "all")
        if key in out:
            raise PredictionError(f"{t.path}, line {line}: duplicate case {key[0]!r}" + (f" label {key[1]!r}" if li is not None else ""))
        out[key] = _float_cell(t, line, value_col, r[vi]) if numeric else r[vi]
    return out, t.sha256


def _align(pred: dict, truth: dict, pred_path, allow_missing: bool) -> list:
    missing = [k for k in truth if k not in pred]
    extra = [k for k in pred if k not in truth]
    if extra:
        raise PredictionError(f"{pred_path}: case(s) {', '.join(k[0] for k in extra[:5])} are not in the truth")
    if missing and not allow_missing:
        raise PredictionError(f"{pred_path}: missing case(s) {', '.join(k[0] for k in missing[:5])}"
                              f"{f' and {len(missing) - 5} more' if len(missing) > 5 else ''}; pass --allow-missing to score them as worst case")
    return missing


def evaluate_counting_files(pred_csv, truth_csv, out_dir=None, *, allow_missing: bool = False, n_resamples: int = 2000,
                            seed: int = 0, alpha: float = 0.05, **_: Any) -> TaskResult:
    """MAE, RMSE, mean relative error (per label and overall) with BCa CIs over cases.

    A missing prediction (``--allow-missing``) is scored as a count of 0 (the worst case for a
    counter that reported nothing).
    """
    from openmia.evaluation.aggregate import describe, weighted_nanmean
    from openmia.metrics.counting import count_errors
    from openmia.stats.bootstrap import bootstrap_ci, resample_weights

    truth, t_sha = _read_keyed(truth_csv, "count", role="truth")
    pred, p_sha = _read_keyed(pred_csv, "count", role="prediction")
    missing = _align(pred, truth, pred_csv, allow_missing)
    keys = list(truth)
    p = np.array([pred.get(k, 0.0) for k in keys])
    t = np.array([truth[k] for k in keys])
    e = count_errors(p, t, case_ids=[k[0] for k in keys])
    per_case = [(k[0], k[1], name, float(e[name][i])) for i, k in enumerate(keys)
                for name in ("count_abs_error", "count_sq_error", "count_rel_error", "count_error")]
    labels = sorted({k[1] for k in keys})
    rows = []
    for lab in (["all"] if labels == ["all"] else ["all", *labels]):
        sel = np.array([lab == "all" or k[1] == lab for k in keys])
        cases = np.array([k[0] for k in keys])[sel]
        # bootstrap over cases (a case with several labels moves as a unit)
        groups = cases if len(set(cases)) < len(cases) else None
        nsel = int(sel.sum())
        W = resample_weights(nsel, n_resamples, seed, groups)
        ae, se, re_, d = (e[k][sel] for k in ("count_abs_error", "count_sq_error", "count_rel_error", "count_error"))
        for name, vals, stat in (("mae", ae, weighted_nanmean(ae)),
                                 ("rmse", se, lambda w, se=se: np.sqrt(weighted_nanmean(se)(w))),
                                 ("mre", re_, weighted_nanmean(re_)), ("bias", d, weighted_nanmean(d))):
            r = bootstrap_ci(stat, nsel, weights=W, groups=groups, seed=seed, alpha=alpha)
            desc = describe(vals)
            row = _row(name, lab, r.value, r.ci_low, r.ci_high, "bca_bootstrap", nsel, desc["n_nan"])
            if name != "rmse":
                row.update({k: desc[k] for k in ("mean", "median", "q1", "q3")})
            rows.append(row)
    summary = {"schema": SCHEMA, "task": "counting", "n_cases": len({k[0] for k in keys}), "labels": ["all", *[x for x in labels if x != "all"]],
               "metrics": rows, "missing_cases": [k[0] for k in missing],
               "bootstrap": {"method": "bca", "n_resamples": n_resamples, "seed": seed, "unit": "case", "alpha": alpha},
               "conventions": {"mre": "|p - t| / t over cases with t > 0 (t = 0 counted in n_nan)",
                               "missing": "a missing prediction counts as 0 (worst case)"}}
    res = TaskResult(per_case, summary)
    if out_dir is not None:
        write_outputs(res, out_dir, {"pred": str(pred_csv), "truth": str(truth_csv), "pred_sha256": p_sha, "truth_sha256": t_sha})
    return res


# ----------------------------------------------------------------------------- clustering


def evaluate_clustering_files(pred_csv, truth_csv, out_dir=None, *, embeddings_csv=None, n_resamples: int = 500,
                              seed: int = 0, alpha: float = 0.05, allow_missing: bool = False, **_: Any) -> TaskResult:
    """ARI, AMI, NMI, homogeneity, completeness, V-measure, purity (+ silhouette) with bootstrap CIs.

    Partition scores are not per-case means, so each resample recomputes them on the resampled
    cases (a loop over resamples, default 500; duplicated cases stay in their clusters).
    """
    from openmia.metrics.clustering import clustering_metrics
    from openmia.stats.bootstrap import bootstrap_ci, resample_weights

    if allow_missing:
        raise PredictionError("--allow-missing has no worst case for clustering; every case needs a cluster")
    truth, t_sha = _read_keyed(truth_csv, "label", role="truth", numeric=False)
    pred, p_sha = _read_keyed(pred_csv, "cluster", role="prediction", numeric=False)
    _align(pred, truth, pred_csv, False)
    keys = list(truth)
    t = np.array([truth[k] for k in keys])
    p = np.array([pred[k] for k in keys])
    emb = None
    if embeddings_csv is not None:
        et = read_csv(embeddings_csv, ("case_id",))
        idx = et.header.index("case_id")
        feats = {r[idx]: [_float_cell(et, i + 2, "feature", v) for j, v in enumerate(r) if j != idx] for i, r in enumerate(et.rows)}
        lacking = [k[0] for k in keys if k[0] not in feats]
        if lacking:
            raise PredictionError(f"{embeddings_csv}: no embedding for case(s) {', '.join(lacking[:5])}")
        emb = np.array([feats[k[0]] for k in keys])
    full = clustering_metrics(t, p, embeddings=emb, case_ids=[k[0] for k in keys])
    n = len(keys)
    names = ["ari", "ami", "nmi", "homogeneity", "completeness", "v_measure", "purity"] + (["silhouette"] if emb is not None else [])

    # every metric is bootstrapped on the same resamples (and jackknife rows): the partition
    # scores of a resample are computed once and shared by all metrics
    cache: dict[bytes, dict[str, float]] = {}

    def scores(row) -> dict[str, float] | None:
        key = row.astype(np.uint32).tobytes()
        if key not in cache:
            idx = np.repeat(np.arange(n), row.astype(int))
            cache[key] = None if len(np.unique(idx)) < 2 else clustering_metrics(t[idx], p[idx])
        return cache[key]

    def stat_for(name):
        def stat(w):
            out = []
            for row in np.atleast_2d(w):
                sc = scores(row)
                out.append(np.nan if sc is None else sc[name])
            return np.array(out)
        return stat

    W = resample_weights(n, n_resamples, seed)
    rows = []
    for name in names:
        if name == "silhouette":  # O(n^2) per resample: point estimate only
            rows.append(_row(name, "all", full[name], None, None, "none (O(n^2) per resample)", n))
            continue
        r = bootstrap_ci(stat_for(name), n, weights=W, seed=seed, alpha=alpha, method="percentile" if n > 2000 else "bca")
        rows.append(_row(name, "all", full[name], r.ci_low, r.ci_high, f"{r.method}_bootstrap", n, r.n_dropped))
    per_case = [(k[0], "all", "cluster_size", float(np.sum(p == p[i]))) for i, k in enumerate(keys)]
    summary = {"schema": SCHEMA, "task": "clustering", "n_cases": n, "n_clusters": full["n_clusters"],
               "n_classes": int(len(np.unique(t))), "labels": ["all"], "metrics": rows, "missing_cases": [],
               "bootstrap": {"method": "bca", "n_resamples": n_resamples, "seed": seed, "unit": "case", "alpha": alpha}}
    res = TaskResult(per_case, summary)
    if out_dir is not None:
        write_outputs(res, out_dir, {"pred": str(pred_csv), "truth": str(truth_csv), "pred_sha256": p_sha, "truth_sha256": t_sha})
    return res


# ----------------------------------------------------------------------------- inpainting


def evaluate_inpainting_folders(pred_dir, truth_dir, out_dir=None, *, data_range: float | None = None, mask_dir=None,
                                allow_missing: bool = False, n_resamples: int = 2000, seed: int = 0, alpha: float = 0.05,
                                **_: Any) -> TaskResult:
    """PSNR, SSIM and MAE per case (whole image, and inside the mask when masks are given)."""
    from openmia.evaluation.aggregate import summarise_per_case
    from openmia.evaluation.generative import score_case
    from openmia.evaluation.label_maps import index_folder

    if data_range is None:
        raise PredictionError("inpainting needs --data-range (the intensity scale, e.g. 1.0 or 255); it is never guessed from the dtype")
    if allow_missing:
        raise PredictionError("--allow-missing has no defined worst case for inpainting; every case needs a prediction")
    preds, truths = index_folder(pred_dir, "prediction"), index_folder(truth_dir, "truth")
    masks = index_folder(mask_dir, "mask") if mask_dir is not None else None
    extra, missing = sorted(set(preds) - set(truths)), sorted(set(truths) - set(preds))
    if extra:
        raise PredictionError(f"prediction folder {pred_dir}: case(s) {', '.join(extra[:5])} have no truth")
    if missing:
        raise PredictionError(f"prediction folder {pred_dir}: missing case(s) {', '.join(missing[:5])}")
    cases = sorted(truths)
    values: dict[str, list[float]] = {}
    per_case = []
    for cid in cases:
        if masks is not None and cid not in masks:
            raise PredictionError(f"mask folder {mask_dir}: no mask for case {cid!r}")
        # colour images (RGB PNG, channels-last arrays): openmia.evaluation.generative's convention
        m = score_case(preds[cid], truths[cid], masks[cid] if masks is not None else None, cid, data_range)
        for k, v in m.items():
            values.setdefault(k, []).append(v)
            per_case.append((cid, "all", k, v))
    table = {(k, "all"): np.array(v) for k, v in values.items()}
    rows = summarise_per_case(table, n_resamples=n_resamples, seed=seed, alpha=alpha)
    summary = {"schema": SCHEMA, "task": "inpainting", "n_cases": len(cases), "labels": ["all"], "metrics": rows,
               "data_range": data_range, "missing_cases": [],
               "bootstrap": {"method": "bca", "n_resamples": n_resamples, "seed": seed, "unit": "case", "alpha": alpha},
               "conventions": {"psnr": "10 log10(data_range^2 / MSE); identical images give inf, counted in n_nan",
                               "ssim": "scikit-image structural_similarity (7-px window); masked = mean of the SSIM map in the mask",
                               "channels": "colour: PSNR/MAE pool every channel of the scored pixels; SSIM per channel, "
                                           "averaged (channel axis last; the mask is shared by the channels)"}}
    res = TaskResult(per_case, summary)
    if out_dir is not None:
        write_outputs(res, out_dir, {"pred": str(pred_dir), "truth": str(truth_dir), "mask": str(mask_dir) if mask_dir else None})
    return res
