"""Detection metrics for 2D/3D boxes and points (DESIGN §4.2): IoU, greedy matching, COCO AP/mAP,
FROC, and F1/precision/recall at an operating point. Pure numpy.

Inputs
------
Two equivalent representations of a data set's detections:

- ``Detections``: flat rows, as the evaluator builds them from the CSV files
  ``case_id,label,score,x1,y1,x2,y2[,z1,z2]`` / ``case_id,label,score,x,y[,z]``: ``image`` (index
  into a list of ``n_images`` images), ``label``, ``coords`` ``(n, k)`` and, for predictions,
  ``score``.
- per-image dicts, the model output contract of DESIGN §2: a mapping
  ``case_id -> {"boxes" | "points": (n, k), "scores": (n,), "labels": (n,)}`` (or two equally long
  sequences of such dicts, image ``i`` = position ``i``). ``labels`` is optional (all class 0);
  ``scores`` is required for predictions and ignored for truth; other keys are ignored; an empty
  dict is an image without objects. ``detections_from_dicts`` flattens them.

Error messages name rows by their 0-based index in the array given (within the case for dicts).

Conventions (named, fixed, tested in tests/metrics/test_detection.py)
--------------------------------------------------------------------
- Boxes are ``x1, y1, x2, y2`` (2D) or ``x1, y1, x2, y2, z1, z2`` (3D; the column order of the file
  format) in continuous pixel/voxel coordinates: area = (x2 - x1)(y2 - y1), no "+1" (as COCO).
  x1 <= x2, y1 <= y2, z1 <= z2 and finite values are required (a PredictionError names the row);
  a zero-size box is allowed and overlaps nothing (IoU 0, as COCO).
- Points are ``x, y[, z]``; the distance is Euclidean, multiplied per axis by ``spacing`` (mm per
  pixel/voxel, **given in the same x, y[, z] order as the coordinates**, not numpy's (z, y, x))
  when it is given. A point matches when its distance is <= ``distance`` (inclusive).
- Matching is greedy per image and class (COCOeval): predictions in decreasing score, ties in
  input row order (stable sort, as COCOeval's mergesort); each takes the still unmatched truth
  with the highest IoU >= the threshold (the nearest point within ``distance``); between equally
  good truths the last in row order (as COCOeval). A prediction that finds none is a false
  positive - duplicates of an already found object included. Unlike COCOeval there is no cap of
  100 detections per image, no area ranges and no crowd/ignore regions here; ``detection_coco``
  adds them (the file evaluator uses it).
- AP is COCO's 101-point interpolated AP: predictions of a class pooled over images in decreasing
  score, ties in image order and then in row order within the image (COCOeval's ``accumulate``; so
  the order of the rows across images never changes AP, the order of tied rows of one image can);
  precision P_i = TP_i / i after the i-th, made monotone from the right; sampled at recall
  r = 0, 0.01, ..., 1 at the first prediction whose recall is >= r (0 if recall never reaches r);
  AP = the mean of the 101 samples. A class with truth but no predictions has AP 0; a class with
  no truth object has AP NaN.
- ``ap`` = AP at the main threshold (``iou_threshold`` or ``distance``), ``ap50`` / ``ap75`` at IoU
  0.5 / 0.75, ``map`` = AP averaged over IoU 0.50:0.05:0.95 (COCO mAP). Every one is the mean over
  the classes that have truth objects: classes without truth (NaN) are excluded from the mean and
  counted in ``n_classes_without_truth``; no truth at all gives NaN.
- FROC is class-agnostic (matched per class, then pooled). Each distinct score is an operating
  point (tied predictions are kept or dropped together) giving (FP per image, sensitivity), plus
  (0, 0) for "keep nothing". The sensitivity at a target rate f (1/8, 1/4, 1/2, 1, 2, 4, 8) is
  read at the operating point with the largest FP/image <= f, i.e. the highest sensitivity any
  score threshold reaches without exceeding f FP/image ("step", the default: every reported value
  is achieved by a real threshold). The LUNA16 and CAMELYON16 scripts (and MONAI's
  ``compute_froc_score``) interpolate linearly between operating points (``np.interp``;
  ``interpolation="linear"`` here). With distinct scores the curve is a staircase and both rules
  give the same values; they differ only along a tied-score group holding both hits and false
  positives (a diagonal segment), where "step" keeps the value at its start. Beyond the last
  operating point both keep the final sensitivity. Those scripts also ignore further hits on an
  already found lesion, whereas greedy matching counts them as false positives. FROC score = mean
  of the 7 sensitivities; NaN without truth objects.
- F1, precision and recall use the predictions with score >= ``score_threshold`` (default 0.5) at
  the main threshold, pooled over images and classes: precision = TP / (TP + FP) (NaN when no
  prediction is kept), recall = TP / n_truth (NaN without truth), F1 = 2 TP / (2 TP + FP + FN) (NaN
  only when there is neither truth nor a kept prediction).
- Images: every image of the truth and the predictions counts in ``n_images`` (the FP/image
  denominator). An image in the truth without predictions contributes only misses; an image that
  has predictions but is missing from the truth (dict input) is an image without objects, so its
  predictions are false positives. (The file evaluator is stricter: every case must be listed in
  the truth file.) No truth and no predictions: every metric is NaN.

Image weights: every statistic accepts ``w`` ``(B, n_images)`` (how often each image is drawn in
each bootstrap resample; ``None`` = one row of ones) and returns ``(B,)`` values. Matching never
crosses images, so resampling images only re-weights each prediction and truth object.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from openmia.errors import PredictionError

IOU_THRESHOLDS = np.round(np.arange(0.5, 0.951, 0.05), 2)  # (10,): 0.50, 0.55, ..., 0.95
FROC_FPS = (0.125, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0)
RECALL_POINTS = np.linspace(0.0, 1.0, 101)  # exactly COCOeval's recThrs
KINDS = ("box", "point")
BOX_COLUMNS = {4: "x1,y1,x2,y2", 6: "x1,y1,x2,y2,z1,z2"}
POINT_COLUMNS = {2: "x,y", 3: "x,y,z"}
_AXES = "xyz"


# ----------------------------------------------------------------------------- geometry


def _as_coords(coords: Any, kind: str, role: str) -> np.ndarray:
    """``(n, k)`` float array with k valid for ``kind``; an empty input becomes ``(0, k)``."""
    cols = BOX_COLUMNS if kind == "box" else POINT_COLUMNS
    c = np.asarray(coords, dtype=float)
    if c.size == 0:
        return c.reshape(0, c.shape[-1] if c.ndim == 2 and c.shape[-1] in cols else min(cols))
    if c.ndim != 2 or c.shape[1] not in cols:
        expected = " or ".join(f"(n, {k}) {v}" for k, v in cols.items())
        raise PredictionError(f"{role}: {kind} coordinates must be an array {expected}, found shape {c.shape}")
    return c


def _corners(b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Min and max corners ``(n, d)`` of boxes ``(n, 4|6)`` (3D columns x1,y1,x2,y2,z1,z2)."""
    if b.shape[1] == 4:
        return b[:, :2], b[:, 2:]
    return b[:, [0, 1, 4]], b[:, [2, 3, 5]]


def _first_bad_box(b: np.ndarray) -> tuple[int, str] | None:
    """(row, reason) of the first box with a non-finite value or a max corner below its min corner."""
    lo, hi = _corners(b)
    finite = np.isfinite(b).all(1)
    inverted = hi < lo
    bad = np.flatnonzero(~finite | inverted.any(1))
    if not bad.size:
        return None
    i = int(bad[0])
    if not finite[i]:
        return i, f"a non-finite coordinate {b[i].tolist()}"
    ax = int(np.flatnonzero(inverted[i])[0])
    a = _AXES[ax]
    return i, f"{a}2 < {a}1 ({a}1={lo[i, ax]:g}, {a}2={hi[i, ax]:g}) in {b[i].tolist()}"


def check_boxes(boxes: np.ndarray, ids: Sequence[Any] | None = None, role: str = "box") -> None:
    """Raise a PredictionError naming the first invalid box (row and, given ``ids``, its case).

    Args:
        boxes: ``(n, 4|6)`` boxes ``x1,y1,x2,y2[,z1,z2]``.
        ids: optional case id per row, used in the message.
        role: what the boxes are ("prediction", "truth", ...), used in the message.
    """
    b = _as_coords(boxes, "box", role)
    found = _first_bad_box(b)
    if found is not None:
        i, why = found
        where = f"row {i}" + (f" of case {ids[i]!r}" if ids is not None else "")
        raise PredictionError(f"{role} box {where} is invalid: {why}; expected x1 <= x2, y1 <= y2[, z1 <= z2] "
                              "and finite coordinates")


def _check_points(p: np.ndarray, ids: Sequence[Any] | None, role: str) -> None:
    bad = np.flatnonzero(~np.isfinite(p).all(1))
    if bad.size:
        i = int(bad[0])
        where = f"row {i}" + (f" of case {ids[i]!r}" if ids is not None else "")
        raise PredictionError(f"{role} point {where} has a non-finite coordinate {p[i].tolist()}; expected finite x, y[, z]")


def _iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise IoU of validated boxes ``(N, 4|6)`` x ``(M, 4|6)`` -> ``(N, M)``."""
    a_lo, a_hi = _corners(a)
    b_lo, b_hi = _corners(b)
    inter = np.clip(np.minimum(a_hi[:, None], b_hi[None]) - np.maximum(a_lo[:, None], b_lo[None]), 0, None).prod(-1)
    union = (a_hi - a_lo).prod(-1)[:, None] + (b_hi - b_lo).prod(-1)[None] - inter
    # union 0 only for two zero-size boxes: they overlap nothing (COCO's convention)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(union > 0, inter / np.where(union > 0, union, 1.0), 0.0)


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise IoU ``(N, M)`` of 2D boxes ``(N, 4)`` x ``(M, 4)`` or 3D boxes ``(N, 6)`` x ``(M, 6)``.

    Raises:
        PredictionError naming the row of an invalid box (x2 < x1 etc., non-finite), or when 2D
        boxes are compared with 3D boxes.
    """
    a = _as_coords(a, "box", "box_iou first argument")
    b = _as_coords(b, "box", "box_iou second argument")
    check_boxes(a, role="box_iou first argument")
    check_boxes(b, role="box_iou second argument")
    if len(a) and len(b) and a.shape[1] != b.shape[1]:
        raise PredictionError(f"box_iou: cannot compare {a.shape[1] // 2}D boxes with {b.shape[1] // 2}D boxes")
    if not len(a) or not len(b):
        return np.zeros((len(a), len(b)))
    return _iou(a, b)


def _spacing(spacing: Sequence[float] | None, k: int) -> np.ndarray | None:
    if spacing is None:
        return None
    sp = np.asarray(spacing, dtype=float).reshape(-1)
    if sp.size != k or not np.all(np.isfinite(sp)) or np.any(sp <= 0):
        raise PredictionError(f"spacing must be {k} positive numbers (mm per unit along {', '.join(_AXES[:k])}, "
                              f"in the order of the point columns), found {np.asarray(spacing).tolist()}")
    return sp


def _dist(a: np.ndarray, b: np.ndarray, sp: np.ndarray | None) -> np.ndarray:
    d = a[:, None, :] - b[None, :, :]
    if sp is not None:
        d = d * sp
    return np.sqrt((d**2).sum(-1))


def point_distance(a: np.ndarray, b: np.ndarray, *, spacing: Sequence[float] | None = None) -> np.ndarray:
    """Pairwise Euclidean distances ``(N, M)`` of points ``(N, 2|3)`` and ``(M, 2|3)`` (x, y[, z]).

    Args:
        spacing: size of a pixel/voxel along x, y[, z] (same order as the columns); distances are
            then in mm. ``None``: in pixel/voxel units.
    """
    a = _as_coords(a, "point", "point_distance first argument")
    b = _as_coords(b, "point", "point_distance second argument")
    _check_points(a, None, "point_distance first argument")
    _check_points(b, None, "point_distance second argument")
    if len(a) and len(b) and a.shape[1] != b.shape[1]:
        raise PredictionError(f"point_distance: cannot compare {a.shape[1]}D points with {b.shape[1]}D points")
    if not len(a) or not len(b):
        return np.zeros((len(a), len(b)))
    return _dist(a, b, _spacing(spacing, a.shape[1]))


# ----------------------------------------------------------------------------- matching


def greedy_assign(scores: np.ndarray, sim: np.ndarray, threshold: float) -> np.ndarray:
    """Greedy COCO matching of one image and class.

    Args:
        scores: ``(P,)`` prediction scores.
        sim: ``(P, G)`` similarity, higher = better (IoU, or minus the distance for points).
        threshold: minimum similarity of a match (inclusive).

    Returns:
        ``(P,)`` index of the truth each prediction matched, -1 for a false positive.
    """
    scores = np.asarray(scores, dtype=float)
    match = np.full(len(scores), -1, dtype=np.int64)
    n_truth = sim.shape[1]
    if n_truth == 0:
        return match
    taken = np.zeros(n_truth, dtype=bool)
    for i in np.argsort(-scores, kind="mergesort"):
        s = np.where(taken, -np.inf, sim[i])
        j = n_truth - 1 - int(np.argmax(s[::-1]))  # the last of equally good truths, as COCOeval
        if s[j] >= threshold:
            taken[j] = True
            match[i] = j
            if taken.all():
                break
    return match


def greedy_match(scores: np.ndarray, sim: np.ndarray, threshold: float) -> np.ndarray:
    """TP flags ``(P,)`` of one image and class (see ``greedy_assign``)."""
    return greedy_assign(scores, sim, threshold) >= 0


@dataclass
class Detections:
    """Flattened detections of a data set (one row per object).

    Attributes:
        image: ``(n,)`` int index of each row's image into the list of ``n_images`` images.
        label: ``(n,)`` class of each row (ints or strings).
        coords: ``(n, k)`` boxes (k = 4 or 6) or points (k = 2 or 3).
        score: ``(n,)`` prediction scores; ``None`` for truth.
    """

    image: np.ndarray
    label: np.ndarray
    coords: np.ndarray
    score: np.ndarray | None = None


@dataclass
class MatchResult:
    """Per-prediction TP flags at each threshold and the bookkeeping the statistics need."""

    n_images: int
    pred_image: np.ndarray  # (P,)
    pred_label: np.ndarray  # (P,)
    score: np.ndarray  # (P,)
    tp: dict[float, np.ndarray]  # threshold -> (P,) bool
    truth_image: np.ndarray  # (G,)
    truth_label: np.ndarray  # (G,)
    labels: list  # every class of truth or predictions, sorted by str
    kind: str = "box"
    matched_truth: dict[float, np.ndarray] = field(default_factory=dict)  # threshold -> (P,) truth row or -1


def _check_detections(d: Detections, n_images: int, kind: str, role: str, with_score: bool) -> Detections:
    """Validated copy with ``image`` int ``(n,)``, ``label`` ``(n,)``, ``coords`` ``(n, k)``, ``score`` ``(n,)``."""
    image = np.asarray(d.image).reshape(-1)
    label = np.asarray(d.label).reshape(-1)
    coords = _as_coords(d.coords, kind, f"{role} coords")
    n = len(coords)
    if len(image) != n or len(label) != n:
        raise PredictionError(f"{role}: {n} coordinate rows but {len(image)} image indices and {len(label)} labels; "
                              "expected one of each per row")
    if n and not np.issubdtype(image.dtype, np.integer):
        raise PredictionError(f"{role}: image indices must be integers, found dtype {image.dtype}")
    image = image.astype(np.int64)
    bad = np.flatnonzero((image < 0) | (image >= n_images))
    if bad.size:
        raise PredictionError(f"{role} row {bad[0]}: image index {image[bad[0]]} outside 0..{n_images - 1} "
                              f"(n_images = {n_images})")
    if kind == "box":
        check_boxes(coords, image.tolist(), role)
    else:
        _check_points(coords, image.tolist(), role)
    score = None
    if with_score:
        if d.score is None:
            raise PredictionError(f"{role}: scores are required for predictions, found None")
        score = np.asarray(d.score, dtype=float).reshape(-1)
        if len(score) != n:
            raise PredictionError(f"{role}: {n} coordinate rows but {len(score)} scores")
        bad = np.flatnonzero(~np.isfinite(score))
        if bad.size:
            raise PredictionError(f"{role} row {bad[0]} (image {image[bad[0]]}): score is {score[bad[0]]}; expected a finite number")
    return Detections(image, label, coords, score)


def match_detections(pred: Detections, truth: Detections, n_images: int, *, kind: str = "box",
                     thresholds: Sequence[float] = tuple(IOU_THRESHOLDS), spacing: Sequence[float] | None = None) -> MatchResult:
    """Greedy matching per image and class at every threshold.

    Args:
        pred, truth: the detections (``pred.score`` required).
        n_images: number of images; row image indices must lie in ``0..n_images - 1``.
        kind: ``"box"`` (thresholds are IoUs) or ``"point"`` (thresholds are distances).
        thresholds: IoU thresholds in (0, 1] or distances > 0 (in mm when ``spacing`` is given).
        spacing: points only: size of a pixel/voxel along x, y[, z].

    Returns:
        MatchResult with TP flags ``(P,)`` per threshold.
    """
    if kind not in KINDS:
        raise PredictionError(f"kind must be one of {KINDS}, found {kind!r}")
    if isinstance(n_images, bool) or not isinstance(n_images, (int, np.integer)) or n_images < 0:
        raise PredictionError(f"n_images must be a non-negative integer, found {n_images!r}")
    pred = _check_detections(pred, n_images, kind, "prediction", True)
    truth = _check_detections(truth, n_images, kind, "truth", False)
    if len(pred.coords) and len(truth.coords) and pred.coords.shape[1] != truth.coords.shape[1]:
        cols = " or ".join((BOX_COLUMNS if kind == "box" else POINT_COLUMNS).values())
        raise PredictionError(f"predictions have {pred.coords.shape[1]} coordinate columns but the truth has "
                              f"{truth.coords.shape[1]}; expected the same ({cols})")
    ths = [float(t) for t in thresholds]
    for t in ths:
        if not np.isfinite(t) or t <= 0 or (kind == "box" and t > 1):
            rule = "IoU thresholds must lie in (0, 1]" if kind == "box" else "distances must be > 0"
            raise PredictionError(f"{rule}, found {t}")
    if kind == "box" and spacing is not None:
        raise PredictionError("spacing applies to points only (IoU does not depend on it); pass spacing=None for boxes")
    sp = _spacing(spacing, truth.coords.shape[1] if len(truth.coords) else pred.coords.shape[1]) if kind == "point" else None
    matched = {t: np.full(len(pred.image), -1, dtype=np.int64) for t in ths}
    labels = sorted(set(truth.label.tolist()) | set(pred.label.tolist()), key=str)
    key_t: dict[tuple, list[int]] = {}
    for i, k in enumerate(zip(truth.image.tolist(), truth.label.tolist())):
        key_t.setdefault(k, []).append(i)
    key_p: dict[tuple, list[int]] = {}
    for i, k in enumerate(zip(pred.image.tolist(), pred.label.tolist())):
        key_p.setdefault(k, []).append(i)
    for k, pidx in key_p.items():
        tidx = key_t.get(k)
        if not tidx:
            continue  # all false positives
        pidx_a, tidx_a = np.array(pidx), np.array(tidx)
        if kind == "box":
            sim = _iou(pred.coords[pidx_a], truth.coords[tidx_a])
        else:
            sim = -_dist(pred.coords[pidx_a], truth.coords[tidx_a], sp)  # higher = closer
        for t in ths:
            j = greedy_assign(pred.score[pidx_a], sim, t if kind == "box" else -t)
            matched[t][pidx_a] = np.where(j >= 0, tidx_a[np.maximum(j, 0)], -1)
    tp = {t: m >= 0 for t, m in matched.items()}
    return MatchResult(n_images, pred.image, pred.label, pred.score, tp, truth.image, truth.label, labels, kind, matched)


def _tp(m: MatchResult, threshold: float) -> np.ndarray:
    """TP flags at ``threshold``; a clear error when the matching did not use it."""
    t = float(threshold)
    if t in m.tp:
        return m.tp[t]
    for k, v in m.tp.items():
        if abs(k - t) < 1e-9:
            return v
    raise PredictionError(f"the matching was done at thresholds {sorted(m.tp)}, not at {t}; "
                          "pass it in match_detections(..., thresholds=...)")


def _weights(w: np.ndarray | None, n_images: int) -> np.ndarray:
    if w is None:
        return np.ones((1, n_images))
    w = np.asarray(w, dtype=float)
    w = w[None] if w.ndim == 1 else w
    if w.ndim != 2 or w.shape[1] != n_images:
        raise PredictionError(f"image weights must have shape (B, {n_images}), found {w.shape}")
    return w


# ----------------------------------------------------------------------------- statistics


def average_precision(m: MatchResult, *, threshold: float, label: Any = None, w: np.ndarray | None = None) -> np.ndarray:
    """COCO 101-point AP ``(B,)`` at one threshold for one class (``label``), or all rows pooled.

    NaN when there is no truth object (of that class, in that resample); 0 when there is truth but
    no prediction.
    """
    W = _weights(w, m.n_images)
    sel_p = np.ones(len(m.score), bool) if label is None else (m.pred_label == label)
    sel_t = np.ones(len(m.truth_image), bool) if label is None else (m.truth_label == label)
    n_gt = W[:, m.truth_image[sel_t]].sum(1)  # (B,)
    order = np.lexsort((m.pred_image[sel_p], -m.score[sel_p]))  # ties: image order, then row order (stable)
    tp = _tp(m, threshold)[sel_p][order]
    pw = W[:, m.pred_image[sel_p][order]]  # (B, P) weight of each prediction
    B, P = pw.shape
    if P == 0:
        return np.where(n_gt > 0, 0.0, np.nan)
    tp_c = np.cumsum(pw * tp, axis=1)
    fp_c = np.cumsum(pw * ~tp, axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        recall = np.nan_to_num(tp_c / n_gt[:, None])
        prec = np.where(tp_c + fp_c > 0, tp_c / np.where(tp_c + fp_c > 0, tp_c + fp_c, 1), 0.0)
    env = np.maximum.accumulate(prec[:, ::-1], axis=1)[:, ::-1]  # precision envelope
    # first prediction whose recall reaches each recall point (recall is non-decreasing); one
    # searchsorted serves all resamples because rows are offset by 2 (recall lies in [0, 1])
    off = 2.0 * np.arange(B)[:, None]
    idx = np.searchsorted((recall + off).ravel(), (RECALL_POINTS[None, :] + off).ravel(), side="left").reshape(B, -1)
    idx -= P * np.arange(B)[:, None]
    sampled = np.where(idx < P, np.take_along_axis(env, np.minimum(idx, P - 1), axis=1), 0.0)
    return np.where(n_gt > 0, sampled.mean(1), np.nan)


def ap_per_class(m: MatchResult, *, thresholds: Sequence[float], w: np.ndarray | None = None) -> dict[Any, np.ndarray]:
    """AP ``(B,)`` of every class, averaged over ``thresholds``; NaN for a class without truth."""
    return {lab: np.mean([average_precision(m, threshold=t, label=lab, w=w) for t in thresholds], axis=0)
            for lab in m.labels}


def _nanmean_rows(x: np.ndarray) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN column -> NaN is the intended result
        return np.nanmean(x, axis=0)


def mean_ap(m: MatchResult, *, thresholds: Sequence[float], w: np.ndarray | None = None) -> np.ndarray:
    """Mean ``(B,)`` over the classes with truth objects of the per-class AP averaged over ``thresholds``.

    A class whose truth objects all fall out of a resample is NaN there and left out of that mean.
    """
    with_truth = [lab for lab in m.labels if np.any(m.truth_label == lab)]
    if not with_truth:
        return np.full(_weights(w, m.n_images).shape[0], np.nan)
    per = [np.mean([average_precision(m, threshold=t, label=lab, w=w) for t in thresholds], axis=0) for lab in with_truth]
    return _nanmean_rows(np.vstack(per))


def map_coco(m: MatchResult, *, w: np.ndarray | None = None) -> np.ndarray:
    """COCO mAP ``(B,)``: mean over classes with truth of the AP averaged over IoU 0.50:0.05:0.95.

    ``m`` must have been matched at every IoU of ``IOU_THRESHOLDS`` (the default of ``match_detections``).
    """
    if m.kind != "box":
        raise PredictionError("map_coco averages over IoU thresholds and needs boxes; for points use mean_ap at a distance")
    return mean_ap(m, thresholds=tuple(float(t) for t in IOU_THRESHOLDS), w=w)


def froc(m: MatchResult, *, threshold: float, w: np.ndarray | None = None, fps: Sequence[float] = FROC_FPS,
         interpolation: str = "step") -> dict[str, np.ndarray]:
    """Class-agnostic FROC (see the module docstring).

    Args:
        threshold: the IoU / distance at which predictions count as hits.
        fps: target false positives per image (default 1/8 ... 8).
        interpolation: ``"step"`` (sensitivity of the operating point with the largest FP/image
            <= target) or ``"linear"`` (``np.interp`` between operating points, as the LUNA16 /
            CAMELYON16 scripts).

    Returns:
        ``sensitivity`` ``(B, len(fps))``, ``score`` ``(B,)`` (their mean), ``fps``; for B = 1 also the
        curve: ``curve_fppi``, ``curve_sensitivity`` and ``curve_threshold`` (score threshold of each
        operating point, +inf for "keep nothing"), ordered by decreasing threshold.
    """
    if interpolation not in ("step", "linear"):
        raise PredictionError(f"FROC interpolation must be 'step' or 'linear', found {interpolation!r}")
    targets = np.asarray(fps, dtype=float)
    W = _weights(w, m.n_images)
    n_gt = W[:, m.truth_image].sum(1)
    n_img = W.sum(1)
    order = np.argsort(-m.score, kind="mergesort")
    s = m.score[order]
    tp = _tp(m, threshold)[order]
    pw = W[:, m.pred_image[order]]
    tp_c, fp_c = np.cumsum(pw * tp, axis=1), np.cumsum(pw * ~tp, axis=1)
    # operating points are the ends of tied-score groups (a threshold keeps all of a tie or none)
    ends = np.r_[s[1:] != s[:-1], True] if len(s) else np.zeros(0, bool)
    with np.errstate(invalid="ignore", divide="ignore"):
        sens = np.concatenate([np.zeros((len(W), 1)), tp_c[:, ends]], axis=1) / np.where(n_gt > 0, n_gt, np.nan)[:, None]
        fppi = np.concatenate([np.zeros((len(W), 1)), fp_c[:, ends]], axis=1) / np.where(n_img > 0, n_img, np.nan)[:, None]
    # both coordinates are non-decreasing along the curve, so the last point with FP/image <= f has
    # the highest sensitivity among those (the tolerance absorbs float noise of weighted sums)
    last = np.stack([np.maximum((fppi <= f + 1e-12).sum(1) - 1, 0) for f in targets], axis=1)  # (B, F)
    at = np.take_along_axis(sens, last, axis=1)
    if interpolation == "linear":
        nxt = np.minimum(last + 1, sens.shape[1] - 1)
        x0, x1 = np.take_along_axis(fppi, last, axis=1), np.take_along_axis(fppi, nxt, axis=1)
        y1 = np.take_along_axis(sens, nxt, axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            frac = np.where((nxt > last) & (x1 > x0), (targets[None, :] - x0) / np.where(x1 > x0, x1 - x0, 1), 0.0)
        at = at + np.clip(frac, 0, 1) * (y1 - at)
    out = {"sensitivity": at, "score": at.mean(1), "fps": targets}
    if len(W) == 1:
        out["curve_fppi"], out["curve_sensitivity"] = fppi[0], sens[0]
        out["curve_threshold"] = np.r_[np.inf, s[ends]]
    return out


def f1_at(m: MatchResult, *, threshold: float, score_threshold: float = 0.5, w: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Precision, recall, F1 and the TP/FP/FN counts ``(B,)`` of the predictions with score >= ``score_threshold``.

    Matching ran over all predictions, but greedily in decreasing score, so the kept (higher-scored)
    predictions were matched before any dropped one: this equals matching the kept ones alone.
    """
    W = _weights(w, m.n_images)
    keep = m.score >= score_threshold
    hit = _tp(m, threshold)[keep]
    pw = W[:, m.pred_image[keep]]
    tp, fp = (pw * hit).sum(1), (pw * ~hit).sum(1)
    n_gt = W[:, m.truth_image].sum(1)
    fn = n_gt - tp
    with np.errstate(invalid="ignore", divide="ignore"):
        prec = np.where(tp + fp > 0, tp / np.where(tp + fp > 0, tp + fp, 1), np.nan)
        rec = np.where(n_gt > 0, tp / np.where(n_gt > 0, n_gt, 1), np.nan)
        den = 2 * tp + fp + fn
        f1 = np.where(den > 0, 2 * tp / np.where(den > 0, den, 1), np.nan)
    return {"precision": prec, "recall": rec, "f1": f1, "tp": tp, "fp": fp, "fn": fn}


# ----------------------------------------------------------------------------- per-image dicts


def _entry(entry: Any, cid: Any, role: str,
           with_score: bool) -> tuple[str | None, np.ndarray | None, np.ndarray | None, np.ndarray | None]:
    """(kind, coords, labels, scores) of one image's dict; kind None for an image without objects."""
    if not isinstance(entry, Mapping):
        raise PredictionError(f"{role} case {cid!r}: expected a dict with 'boxes' or 'points', 'scores' and 'labels', "
                              f"found {type(entry).__name__}")
    keys = [k for k in ("boxes", "points") if k in entry]
    if len(keys) == 2:
        raise PredictionError(f"{role} case {cid!r}: has both 'boxes' and 'points'; expected one of them")
    if not keys:
        if any(k in entry and np.size(entry[k]) for k in ("scores", "labels")):
            raise PredictionError(f"{role} case {cid!r}: has scores/labels but neither 'boxes' nor 'points' "
                                  f"(keys found: {sorted(map(str, entry))})")
        return None, None, None, None
    kind = "box" if keys[0] == "boxes" else "point"
    coords = _as_coords(entry[keys[0]], kind, f"{role} case {cid!r} {keys[0]!r}")
    n = len(coords)
    labels = entry.get("labels")
    labels = np.zeros(n, dtype=np.int64) if labels is None else np.asarray(labels).reshape(-1)
    if len(labels) != n:
        raise PredictionError(f"{role} case {cid!r}: {n} {keys[0]} but {len(labels)} labels; expected one label per row")
    scores = None
    if with_score:
        if entry.get("scores") is None:
            raise PredictionError(f"{role} case {cid!r}: 'scores' is missing; predictions need one score per row")
        scores = np.asarray(entry["scores"], dtype=float).reshape(-1)
        if len(scores) != n:
            raise PredictionError(f"{role} case {cid!r}: {n} {keys[0]} but {len(scores)} scores; expected one score per row")
        bad = np.flatnonzero(~np.isfinite(scores))
        if bad.size:
            raise PredictionError(f"{role} case {cid!r} row {bad[0]}: score is {scores[bad[0]]}; expected a finite number")
    ids = [cid] * n
    if kind == "box":
        check_boxes(coords, ids, role)
    else:
        _check_points(coords, ids, role)
    return kind, coords, labels, scores


def detections_from_dicts(pred: Mapping | Sequence, truth: Mapping | Sequence, *,
                          kind: str | None = None) -> tuple[Detections, Detections, list, str]:
    """Flatten per-image dicts (see the module docstring) into ``Detections``.

    Returns:
        (pred, truth, image ids, kind). Images are the truth's keys in order, then the images that
        only the predictions have; for sequences, the positions 0..n-1.
    """
    if kind is not None and kind not in KINDS:
        raise PredictionError(f"kind must be one of {KINDS} or None, found {kind!r}")
    if isinstance(pred, Mapping) and isinstance(truth, Mapping):
        images = list(truth) + [k for k in pred if k not in truth]
        get_p, get_t = (lambda c: pred.get(c, {})), (lambda c: truth.get(c, {}))
    elif (isinstance(pred, Sequence) and isinstance(truth, Sequence)
          and not isinstance(pred, (str, bytes)) and not isinstance(truth, (str, bytes))):
        if len(pred) != len(truth):
            raise PredictionError(f"{len(pred)} prediction dicts but {len(truth)} truth dicts; lists are paired by "
                                  "position, so they must be equally long (use dicts keyed by case id otherwise)")
        images = list(range(len(truth)))
        get_p, get_t = pred.__getitem__, truth.__getitem__
    else:
        raise PredictionError(f"predictions and truth must both be mappings case_id -> dict or both lists of dicts, "
                              f"found {type(pred).__name__} and {type(truth).__name__}")
    parts: dict[str, list] = {"pred": [], "truth": []}
    kinds, ncols = set(), set()
    for i, cid in enumerate(images):
        for role, get, with_score in (("pred", get_p, True), ("truth", get_t, False)):
            k, c, lab, sc = _entry(get(cid), cid, "prediction" if role == "pred" else "truth", with_score)
            if k is None:
                continue
            kinds.add(k)
            if len(c):
                ncols.add(c.shape[1])
                parts[role].append((i, c, lab, sc))
    if len(kinds) > 1:
        raise PredictionError("some cases give 'boxes' and others 'points'; expected one kind for all cases")
    found = kinds.pop() if kinds else None
    if kind is not None and found is not None and found != kind:
        raise PredictionError(f"kind={kind!r} but the dicts hold {'boxes' if found == 'box' else 'points'}")
    kind = kind or found or "box"
    if len(ncols) > 1:
        raise PredictionError(f"cases mix coordinate widths {sorted(ncols)}; expected all 2D or all 3D "
                              f"({' or '.join((BOX_COLUMNS if kind == 'box' else POINT_COLUMNS).values())})")
    k = ncols.pop() if ncols else (4 if kind == "box" else 2)

    def flat(rows: list, with_score: bool) -> Detections:
        if not rows:
            return Detections(np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros((0, k)), np.zeros(0) if with_score else None)
        return Detections(np.concatenate([np.full(len(c), i, dtype=np.int64) for i, c, _, _ in rows]),
                          np.concatenate([lab for _, _, lab, _ in rows]),
                          np.concatenate([c for _, c, _, _ in rows]),
                          np.concatenate([sc for _, _, _, sc in rows]) if with_score else None)

    return flat(parts["pred"], True), flat(parts["truth"], False), images, kind


# ----------------------------------------------------------------------------- entry point


def _py(x: Any) -> Any:
    return x.item() if isinstance(x, np.generic) else x


def detection_metrics(pred: Detections | Mapping | Sequence, truth: Detections | Mapping | Sequence,
                      n_images: int | None = None, *, kind: str | None = None, iou_threshold: float = 0.5,
                      distance: float = 5.0, spacing: Sequence[float] | None = None,
                      score_threshold: float = 0.5, froc_interpolation: str = "step") -> dict[str, Any]:
    """Point estimates of every detection metric (conventions in the module docstring).

    Args:
        pred, truth: ``Detections`` (then ``n_images`` is required) or per-image dicts
            ``case_id -> {"boxes"|"points", "scores", "labels"}`` (or two lists of such dicts).
        n_images: number of images for ``Detections`` input; for dicts ``None`` or the number of
            distinct case ids.
        kind: ``"box"`` or ``"point"``; ``None`` = from the dict keys ("box" for ``Detections``).
        iou_threshold: main IoU for ``ap``, FROC and F1 (boxes).
        distance: main matching distance for points (mm when ``spacing`` is given).
        spacing: points only: pixel/voxel size along x, y[, z].
        score_threshold: operating point for F1, precision and recall (score >= threshold kept).
        froc_interpolation: ``"step"`` or ``"linear"`` (see ``froc``).

    Returns:
        ``ap``, ``ap_per_class`` {label: AP} (NaN for classes without truth), and for boxes
        ``ap50``, ``ap75``, ``map``, ``map_per_class``; ``froc_score`` (also as ``froc``),
        ``sens_at_<f>fp`` for each FROC rate, ``froc_curve`` {fppi, sensitivity, threshold};
        ``f1``, ``precision``, ``recall``, ``tp``, ``fp``, ``fn`` at ``score_threshold``; counts
        ``n_images``, ``n_truth``, ``n_pred``, ``n_classes``, ``n_classes_without_truth``; and the
        settings used (``kind``, ``threshold``, ``score_threshold``).
    """
    if isinstance(pred, Detections) or isinstance(truth, Detections):
        if not (isinstance(pred, Detections) and isinstance(truth, Detections)):
            raise PredictionError(f"pred and truth must both be Detections or both be per-image dicts, "
                                  f"found {type(pred).__name__} and {type(truth).__name__}")
        if n_images is None:
            raise PredictionError("n_images is required with Detections input (it is the FP-per-image denominator "
                                  "and counts images without any row)")
        kind = kind or "box"
    else:
        pred, truth, images, kind = detections_from_dicts(pred, truth, kind=kind)
        if n_images is not None and n_images != len(images):
            raise PredictionError(f"n_images={n_images} but the dicts hold {len(images)} distinct cases")
        n_images = len(images)
    if kind not in KINDS:
        raise PredictionError(f"kind must be one of {KINDS}, found {kind!r}")
    if not np.isfinite(score_threshold):
        raise PredictionError(f"score_threshold must be a finite number, found {score_threshold}")
    if kind == "box":
        main = float(iou_threshold)
        ths = sorted({*(float(t) for t in IOU_THRESHOLDS), main})
        m = match_detections(pred, truth, n_images, kind="box", thresholds=ths)
    else:
        main = float(distance)
        m = match_detections(pred, truth, n_images, kind="point", thresholds=(main,), spacing=spacing)
    out: dict[str, Any] = {"kind": kind, "threshold": main, "score_threshold": float(score_threshold)}
    out["ap"] = float(mean_ap(m, thresholds=(main,))[0])
    out["ap_per_class"] = {_py(k): float(v[0]) for k, v in ap_per_class(m, thresholds=(main,)).items()}
    if kind == "box":
        out["ap50"] = float(mean_ap(m, thresholds=(0.5,))[0])
        out["ap75"] = float(mean_ap(m, thresholds=(0.75,))[0])
        out["map"] = float(map_coco(m)[0])
        out["map_per_class"] = {_py(k): float(v[0]) for k, v in
                                ap_per_class(m, thresholds=tuple(float(t) for t in IOU_THRESHOLDS)).items()}
    fr = froc(m, threshold=main, interpolation=froc_interpolation)
    out["froc_score"] = out["froc"] = float(fr["score"][0])
    for f, s in zip(FROC_FPS, fr["sensitivity"][0]):
        out[f"sens_at_{f:g}fp"] = float(s)
    out["froc_curve"] = {"fppi": fr["curve_fppi"], "sensitivity": fr["curve_sensitivity"], "threshold": fr["curve_threshold"]}
    out.update({k: float(v[0]) for k, v in f1_at(m, threshold=main, score_threshold=score_threshold).items()})
    with_truth = set(m.truth_label.tolist())
    out.update({"n_images": int(n_images), "n_truth": int(len(m.truth_image)), "n_pred": int(len(m.score)),
                "n_classes": len(m.labels), "n_classes_without_truth": sum(k not in with_truth for k in m.labels)})
    return out
