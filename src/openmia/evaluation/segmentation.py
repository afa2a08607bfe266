"""The segmentation evaluator: label-map folders (or arrays) -> per-case table + summary with CIs.

Model-agnostic: it scores NIfTI/PNG/NPY label maps written by any tool (nnU-Net, MONAI, openmia).
One module-level function, :func:`score_case`, reads a case and computes every selected metric; it
runs in this process or, with ``workers`` > 1, in worker processes (:mod:`openmia.evaluation.parallel`),
each reading its own files so memory stays at a few cases at a time. Results are identical either way.
"""

from __future__ import annotations

import warnings
from functools import partial
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

import numpy as np

from openmia.errors import PredictionError
from openmia.evaluation.aggregate import summarise_per_case
from openmia.evaluation.result import EvaluationResult, write_outputs
from openmia.metrics.segmentation import BOUNDARY_METRICS, LESION_METRICS, OVERLAP_METRICS, segmentation_case_metrics
from openmia.metrics.segmentation_more import (CASE_METRICS, EXTRA_METRICS, MORE_LABEL_METRICS, apply_empty_truth,
                                               check_extra_metrics, check_surface, metric_conventions,
                                               more_case_metrics)

SCHEMA = "openmia.summary/1"
# the metrics aggregated into the summary (lesion counts stay per case)
SUMMARY_METRICS = (*OVERLAP_METRICS, *BOUNDARY_METRICS, *MORE_LABEL_METRICS, "lesion_f1", "lesion_dice")


class SegmentationResult(EvaluationResult):
    """Result of :func:`evaluate_segmentation`; ``table()`` shows every label by default."""

    def table(self, metrics: list[str] | None = None, label: str | None = None) -> str:
        from openmia.evaluation.table import summary_table

        labels = [label] if label else self.summary["labels"]
        return "\n\n".join(f"label {lab}\n" + summary_table(self.summary, metrics=metrics, label=lab) for lab in labels)


def parse_tolerance(text: str | float | Mapping[int, float] | None) -> float | dict[int, float]:
    """``1.5`` or ``"1=1.5,2=2.0"`` -> a tolerance in mm, or one per label."""
    if text is None:
        return 1.0
    if isinstance(text, Mapping):
        return {int(k): float(v) for k, v in text.items()}
    if isinstance(text, (int, float)):
        return float(text)
    s = str(text).strip()
    try:
        if "=" not in s:
            return float(s)
        out = {}
        for part in s.split(","):
            k, v = part.split("=")
            out[int(k)] = float(v)
        return out
    except ValueError:
        raise PredictionError(f"--nsd-tolerance: expected mm as '1.5' or per label as '1=1.5,2=2.0', found {text!r}") from None


def _label_name(lab: int, names: Mapping[int, str] | None) -> str:
    return names.get(lab, str(lab)) if names else str(lab)


def score_case(cid: str, load: Callable[[str], tuple], *, fixed: list[int] | None,
               tolerance: float | Mapping[int, float], percentile: float, lesions: bool,
               boundary_iou_distance: float | None, empty_truth: str, surface: str = "voxel",
               extra_metrics: Sequence[str] = (),
               ) -> tuple[dict[int, dict[str, float]], set[int], set[int], tuple[float, ...], dict[str, float], dict[str, Any]]:
    """Read case ``cid`` with ``load`` and compute every selected metric of every label.

    Module-level (picklable) so :func:`evaluate_segmentation` can run it in worker processes.
    ``load(cid)`` returns ``(pred, truth, spacing)`` or ``(pred, truth, spacing, info)`` with
    ``info`` a dict of per-case notes (e.g. ``{"geometry": "reoriented"}``).

    Returns:
        ``(per-label metrics, truth labels, predicted labels, spacing, per-case metrics, info)``.
    """
    loaded = load(cid)
    pred, truth, spacing = loaded[:3]
    info = dict(loaded[3]) if len(loaded) > 3 and loaded[3] else {}
    tvals = {int(v) for v in np.unique(truth)} - {0}
    pvals = {int(v) for v in np.unique(pred)} - {0}
    use = fixed if fixed is not None else sorted(tvals | pvals)
    if fixed is not None:
        for role, vals in (("prediction", pvals), ("truth", tvals)):
            bad = sorted(vals - set(fixed))
            if bad:
                raise PredictionError(f"case {cid!r}: {role} contains label(s) {bad} outside the labels {fixed}")
    # surfel mode: the boundary metrics come from more_case_metrics (surface elements) instead
    m = segmentation_case_metrics(pred, truth, labels=use, spacing=spacing, tolerance=tolerance,
                                  percentile=percentile, boundary=surface == "voxel", lesions=lesions, directed=True,
                                  case=cid)
    more, case_m = more_case_metrics(pred, truth, labels=use, spacing=spacing,
                                     boundary_iou_distance=boundary_iou_distance, surface=surface, tolerance=tolerance,
                                     percentile=percentile, extra=extra_metrics, case=cid)
    for lab in m:
        m[lab].update(more[lab])
    apply_empty_truth(m, case_m, tvals, empty_truth)
    return m, tvals, pvals, tuple(float(s) for s in spacing), case_m, info


def evaluate_segmentation(
    cases: Sequence[str],
    load: Callable[[str], tuple[np.ndarray, np.ndarray, Sequence[float]]],
    *,
    labels: Iterable[int] | None = None,
    label_names: Mapping[int, str] | None = None,
    tolerance: float | Mapping[int, float] = 1.0,
    percentile: float = 95.0,
    lesions: bool = False,
    patient_ids: Sequence[str] | None = None,
    missing_cases: Sequence[str] = (),
    n_resamples: int = 2000,
    seed: int = 0,
    alpha: float = 0.05,
    workers: int | str | None = 1,
    progress: Callable[[int, int], None] | None = None,
    empty_truth: str = "worst",
    boundary_iou_distance: float | None = None,
    surface: str = "voxel",
    extra_metrics: Sequence[str] = (),
    worst_cases: int = 3,
    load_image: Callable[[str], np.ndarray] | None = None,
) -> SegmentationResult:
    """Score segmentation cases with the evaluation standard.

    Args:
        cases: case ids, in output order.
        load: ``case_id -> (pred, truth, spacing[, info])`` label maps ``(H, W)`` / ``(D, H, W)``
            and mm per axis (``info``: a dict of per-case notes, kept in ``extras["case_info"]``).
            Called in worker processes when ``workers`` > 1, so it must then be picklable.
        labels: foreground labels to score; default = every non-zero label in any truth map.
            Predicted labels outside this set are an error naming the case.
        tolerance: NSD tolerance in mm, one value or ``{label: mm}``.
        missing_cases: cases whose prediction was missing and are loaded as an empty map (worst
            case, reported in the summary).
        workers: processes scoring cases in parallel: 1 (default) = in this process, 0 or
            ``"auto"`` = the available CPUs (:mod:`openmia.evaluation.parallel`). Same results.
        empty_truth: ``"worst"`` (DESIGN §4.2) or ``"nan"`` (MONAI ``ignore_empty``: a label whose
            truth is empty in a case is NaN there, excluded and counted).
        boundary_iou_distance: band width of ``boundary_iou`` in mm (default 2 x the smallest voxel size).
        surface: ``"voxel"`` (default: boundary voxels, weight 1 each) or ``"surfel"`` (surface
            elements weighted by their area/length, DeepMind ``surface-distance`` conventions,
            :mod:`openmia.metrics.surfel`) for HD, HD95, ASSD, MASD, NSD and the directed values.
        extra_metrics: opt-in metric groups: ``"cldice"`` (clDice and its topology precision /
            sensitivity) and ``"panoptic"`` (lesion-wise PQ, SQ, RQ and TP/FP/FN counts at IoU > 0.5).
        worst_cases: how many of the lowest-Dice cases the report shows as overlays (0 = none);
            their slices are kept in ``extras["worst_cases"]`` (:mod:`openmia.evaluation.overlays`).
        load_image: ``case_id -> image`` of the truth's shape (or with a trailing channel axis),
            the overlays' background; default: none (a blank background).
    """
    cases = [str(c) for c in cases]
    if not cases:
        raise PredictionError("no cases to evaluate")
    if len(set(cases)) != len(cases):
        dup = sorted({c for c in cases if cases.count(c) > 1})
        raise PredictionError(f"duplicate case id(s): {', '.join(dup[:5])}")
    fixed = None if labels is None else sorted(int(v) for v in labels)
    if fixed is not None and (not fixed or min(fixed) < 1):
        raise PredictionError(f"labels must be foreground labels >= 1, found {fixed}")
    apply_empty_truth({}, {}, set(), empty_truth)  # an unknown policy fails before any case is read

    from openmia.evaluation.parallel import map_cases

    surface = check_surface(surface)
    extra_metrics = check_extra_metrics(extra_metrics)  # bad names fail before any case is read
    scorer = partial(score_case, load=load, fixed=fixed, tolerance=tolerance, percentile=percentile, lesions=lesions,
                     boundary_iou_distance=boundary_iou_distance, empty_truth=empty_truth, surface=surface,
                     extra_metrics=extra_metrics)
    results: list[Any] = map_cases(scorer, cases, workers=workers, progress=progress)

    truth_labels = sorted(set().union(*(r[1] for r in results)))
    pred_labels = sorted(set().union(*(r[2] for r in results)))
    if fixed is None:
        extra = sorted(set(pred_labels) - set(truth_labels))
        if extra:
            where = [c for c, r in zip(cases, results) if set(r[2]) & set(extra)]
            raise PredictionError(
                f"prediction label(s) {extra} never occur in the truth (case(s) {', '.join(where[:5])}); "
                "pass --labels to score them explicitly"
            )
    all_labels = fixed if fixed is not None else truth_labels
    if not all_labels:
        raise PredictionError("no foreground label in any truth map; pass --labels to score empty cases explicitly")

    metrics = [k for k in SUMMARY_METRICS if lesions or not k.startswith("lesion_")]
    metrics += [k for e in extra_metrics for k in EXTRA_METRICS[e][0]]
    counts = [*(LESION_METRICS[2:] if lesions else ()), *(k for e in extra_metrics for k in EXTRA_METRICS[e][1])]
    per_case: list[tuple[str, str, str, float]] = []
    table: dict[tuple[str, str], np.ndarray] = {}
    nan = float("nan")
    for lab in all_labels:  # a label absent from both maps of a case is NaN there (both empty)
        lname = _label_name(lab, label_names)
        for k in metrics:
            table[(k, lname)] = np.array([r[0][lab][k] if lab in r[0] else nan for r in results])
    for i, c in enumerate(cases):
        for lab in all_labels:
            lname = _label_name(lab, label_names)
            for k in metrics:
                per_case.append((c, lname, k, float(table[(k, lname)][i])))
            if counts and lab in results[i][0]:  # per-case counts (lesions, panoptic): not aggregated
                for k in counts:
                    per_case.append((c, lname, k, float(results[i][0][lab][k])))
    for k in metrics:  # label "all": per case the mean over labels with a defined value (one label: that label)
        stack = np.vstack([table[(k, _label_name(lab, label_names))] for lab in all_labels])
        with warnings.catch_warnings():  # all-NaN columns are expected (NaN result)
            warnings.simplefilter("ignore", RuntimeWarning)
            table[(k, "all")] = np.nanmean(stack, axis=0)
    for k in CASE_METRICS:  # one value per case over its labels (generalised Dice): label "all" only
        table[(k, "all")] = np.array([r[4][k] for r in results])
        per_case.extend((c, "all", k, float(v)) for c, v in zip(cases, table[(k, "all")]))

    groups = None if patient_ids is None else np.asarray([str(p) for p in patient_ids])
    rows = summarise_per_case(table, groups=groups, n_resamples=n_resamples, seed=seed, alpha=alpha)
    spacings = sorted({r[3] for r in results})
    summary = {
        "schema": SCHEMA,
        "task": "segmentation",
        "n_cases": len(cases),
        "n_patients": None if groups is None else int(len(np.unique(groups))),
        "labels": [_label_name(lab, label_names) for lab in all_labels] + ["all"],
        "label_values": all_labels,
        "metrics": rows,
        "bootstrap": {"method": "bca", "n_resamples": n_resamples, "seed": seed,
                      "unit": "patient" if groups is not None else "case", "alpha": alpha},
        "missing_cases": list(missing_cases),
        "spacings": [list(s) for s in spacings[:20]],
        "nsd_tolerance_mm": tolerance if not isinstance(tolerance, Mapping) else {str(k): v for k, v in tolerance.items()},
        "hd_percentile": percentile,
        "surface": surface,
        "extra_metrics": list(extra_metrics),
        "boundary_iou_distance_mm": boundary_iou_distance if boundary_iou_distance is not None else "2 x smallest voxel size",
        "empty_truth": {"policy": empty_truth, "n_cases": {_label_name(lab, label_names): sum(lab not in r[1] for r in results)
                                                           for lab in all_labels}},
        "conventions": {
            "boundary": "mask XOR erosion with the face-connected element, outside = background (as MONAI get_mask_edges)",
            "hd95": "max of the two directed 95th percentiles (linear interpolation) of boundary distances, mm",
            "assd": "mean of all boundary distances of both directions pooled (MONAI symmetric ASD)",
            "masd": "mean of the two directed mean boundary distances (Metrics Reloaded)",
            "nsd": "boundary voxels within the tolerance, both directions, over all boundary voxels",
            "empty": "both empty: NaN (counted in n_nan, excluded); one empty: Dice 0, NSD 0, distances = image diagonal",
            "empty_truth": ("worst: only the truth empty scores as one empty" if empty_truth == "worst" else
                            "nan: a label whose truth is empty in a case is NaN there (MONAI ignore_empty), counted in n_nan"),
            "gen_dice": "per case over its foreground labels, weights 1/|T|^2, empty-truth labels get the largest weight "
                        "(Sudre 2017, MONAI compute_generalized_dice sum_over_classes); label all only",
            "boundary_iou": "IoU of the mask voxels within d mm (Euclidean, voxel centre to nearest background voxel centre, "
                            "outside = background) of each contour (Cheng 2021)",
            "directed_hd": "hd/hd95_pred_to_truth and _truth_to_pred: the two directed maxima/percentiles behind hd/hd95",
            "precision_recall": "precision NaN for an empty prediction, recall NaN for an empty truth",
            "all": "per case, the mean over labels with a defined value; then the mean over cases",
            "ci": "BCa bootstrap of the mean over cases (patients when given)",
        },
    }
    summary["conventions"].update(metric_conventions(surface, extra_metrics))
    # the aligned per-case table (labels and "all") and patients, for paired comparisons
    # nan_rank: a NaN here is a label absent from both maps (or, policy "nan", from the truth: the same
    # cases for every model), never a failure, so rankings within a case put it first
    extras: dict[str, Any] = {"cases": cases, "table": table, "patient_ids": patient_ids, "nan_rank": "best",
                              "case_info": {c: r[5] for c, r in zip(cases, results) if r[5]}}
    if worst_cases > 0:  # the report's overlays: a few small 2D slices, read again after scoring
        from openmia.evaluation.overlays import worst_case_slices

        extras["worst_cases"] = worst_case_slices(cases, table[("dice", "all")], load, k=worst_cases,
                                                  load_image=load_image)
    return SegmentationResult(per_case, summary, extras)


class FolderCaseLoader:
    """``case_id -> (pred, truth, spacing, info)`` for prediction and truth folders.

    A module-level class (not a closure) so that worker processes can unpickle it: it carries
    only paths and options. ``info["geometry"]`` says when the prediction was reoriented or
    resampled onto the truth's grid (see :func:`evaluate_folders`).
    """

    def __init__(self, preds: Mapping[str, Path], truths: Mapping[str, Path], *, spacing: Sequence[float] | None,
                 resample_pred: bool) -> None:
        self.preds, self.truths = dict(preds), dict(truths)
        self.spacing = tuple(spacing) if spacing is not None else None
        self.resample_pred = resample_pred

    def __call__(self, cid: str) -> tuple[np.ndarray, np.ndarray, tuple[float, ...], dict[str, Any]]:
        from openmia.evaluation.label_maps import LabelMap, align_prediction, read_label_map, resolve_spacing

        t = read_label_map(self.truths[cid], cid)
        info: dict[str, Any] = {}
        if cid in self.preds:
            p, action = align_prediction(cid, read_label_map(self.preds[cid], cid), t, resample=self.resample_pred)
            if action is not None:
                info["geometry"] = action
            if p.array.shape != t.array.shape:
                raise PredictionError(f"case {cid!r}: prediction shape {p.array.shape} differs from truth shape {t.array.shape}")
        else:  # --allow-missing: an empty prediction scores as the worst case
            p = LabelMap(np.zeros_like(t.array), None)
        sp = resolve_spacing(cid, p, t, self.spacing, t.array.ndim)
        return p.array, t.array, sp, info


def evaluate_folders(
    pred_dir: str | Path,
    truth_dir: str | Path,
    out_dir: str | Path | None = None,
    *,
    spacing: Sequence[float] | None = None,
    patients_csv: str | Path | None = None,
    allow_missing: bool = False,
    pred_pattern: str | None = None,
    truth_pattern: str | None = None,
    resample_pred: bool = False,
    images_dir: str | Path | None = None,
    **kwargs: Any,
) -> SegmentationResult:
    """Score a folder of predicted label maps against a folder of truth label maps.

    ``pred_pattern``/``truth_pattern``: the file layout under each folder, e.g.
    ``"{case}/{case}_seg.nii.gz"`` (MONAI SaveImage); default ``<case_id>.<suffix>``. A prediction
    stored with another axis order or flipped axes than its truth (same physical grid, per the
    affines) is reoriented to the truth's voxel order; any other grid difference is an error unless
    ``resample_pred`` (nearest neighbour onto the truth grid). Both are listed in the summary under
    ``geometry``. ``images_dir``: a folder of ``<case_id>.<suffix>`` images, the background of the
    report's worst-case overlays (each of the truth's voxel grid; a trailing channel axis is allowed).
    ``workers`` (in ``kwargs``) > 1 scores the cases in worker processes.
    """
    import logging

    from openmia.evaluation.label_maps import LABEL_SUFFIXES, index_folder, index_pattern

    preds = (index_pattern(pred_dir, pred_pattern, "prediction", "--pred-pattern") if pred_pattern
             else index_folder(pred_dir, "prediction", LABEL_SUFFIXES))
    truths = (index_pattern(truth_dir, truth_pattern, "truth", "--truth-pattern") if truth_pattern
              else index_folder(truth_dir, "truth", LABEL_SUFFIXES))
    missing = sorted(set(truths) - set(preds))
    extra = sorted(set(preds) - set(truths))
    if extra:
        raise PredictionError(f"prediction folder {pred_dir}: case(s) {', '.join(extra[:5])}"
                              f"{' and more' if len(extra) > 5 else ''} have no truth in {truth_dir}")
    if missing and not allow_missing:
        raise PredictionError(f"prediction folder {pred_dir}: missing case(s) {', '.join(missing[:5])}"
                              f"{f' and {len(missing) - 5} more' if len(missing) > 5 else ''}; "
                              "pass --allow-missing to score them as empty predictions (worst case)")
    cases = sorted(truths)
    load = FolderCaseLoader(preds, truths, spacing=spacing, resample_pred=resample_pred)
    load_image = None
    if images_dir is not None:
        from openmia.evaluation.overlays import FolderImageLoader

        load_image = FolderImageLoader(images_dir, cases)  # every case needs an image: checked before scoring

    patient_ids = None
    if patients_csv is not None:
        from openmia.evaluation.io import read_csv

        tab = read_csv(patients_csv, ("case_id", "patient_id"))
        ci, pi = tab.header.index("case_id"), tab.header.index("patient_id")
        mp = {r[ci]: r[pi] for r in tab.rows}
        lacking = [c for c in cases if c not in mp]
        if lacking:
            raise PredictionError(f"{patients_csv}: no patient_id for case(s) {', '.join(lacking[:5])}")
        patient_ids = [mp[c] for c in cases]
    res = evaluate_segmentation(cases, load, patient_ids=patient_ids, missing_cases=missing, load_image=load_image, **kwargs)
    info = res.extras.get("case_info", {})
    res.summary["geometry"] = {k: sorted(c for c, i in info.items() if i.get("geometry") == k) for k in ("reoriented", "resampled")}
    log = logging.getLogger(__name__)
    for action, how in (("reoriented", "stored with another axis order or flipped axes than their truth were reoriented "
                                       "to the truth's voxel order"),
                        ("resampled", "on another voxel grid were resampled onto the truth grid (nearest neighbour)")):
        done = res.summary["geometry"][action]
        if done:
            log.info("%d prediction(s) %s: %s%s (summary.json: geometry.%s)", len(done), how, ", ".join(done[:5]),
                     " ..." if len(done) > 5 else "", action)
    if out_dir is not None:
        write_outputs(res, out_dir, provenance={"pred": str(pred_dir), "truth": str(truth_dir)})
    return res
