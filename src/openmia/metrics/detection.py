"""Detection metrics for 2D/3D boxes and points (DESIGN §4.2).

Conventions (COCO / LUNA16):

- Boxes are ``x1, y1, x2, y2`` (2D) or ``x1, y1, x2, y2, z1, z2`` (3D) in pixel/voxel coordinates,
  continuous (area = (x2 - x1)(y2 - y1), no +1). Points are ``x, y[, z]``; a point prediction
  matches a truth point within ``distance`` (in mm when ``spacing`` is given).
- Matching is greedy per image and class: predictions in decreasing score (stable order for
  ties); each takes the unmatched truth with the highest IoU >= threshold (nearest point within
  the distance); otherwise it is a false positive.
- AP is COCO's 101-point interpolated AP: precision made monotone from the right, sampled at
  recall 0, 0.01, ..., 1 (0 beyond the largest recall). ``ap50`` at IoU 0.5, ``map`` the mean
  over IoU 0.50:0.05:0.95; both the mean over classes that have truth objects (a class with
  predictions but no truth is NaN and excluded).
- FROC (class-agnostic, LUNA16/CAMELYON): sensitivity at 1/8, 1/4, 1/2, 1, 2, 4, 8 false
  positives per image — the highest sensitivity reached at a score threshold whose FP/image
  does not exceed the target (0 if none) — and the FROC score, their mean.
- F1, precision and recall at an operating score threshold (default 0.5) and IoU 0.5.

All statistics accept image weights ``(B, n_images)`` so the bootstrap over images is vectorised:
matching never crosses images, so resampling images only re-weights each prediction and truth.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from openmia.errors import PredictionError

IOU_THRESHOLDS = np.round(np.arange(0.5, 0.951, 0.05), 2)
FROC_FPS = (0.125, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0)
RECALL_POINTS = np.linspace(0.0, 1.0, 101)


def _as_minmax(boxes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Corner arrays ``(n, d)`` from 2D ``(x1,y1,x2,y2)`` or 3D ``(x1,y1,x2,y2,z1,z2)`` rows."""
    b = np.asarray(boxes, dtype=float).reshape(-1, np.shape(boxes)[-1] if np.ndim(boxes) == 2 else 4)
    if b.shape[1] == 4:
        return b[:, :2], b[:, 2:]
    if b.shape[1] == 6:
        return b[:, [0, 1, 4]], b[:, [2, 3, 5]]
    raise PredictionError(f"boxes need 4 (x1,y1,x2,y2) or 6 (x1,y1,x2,y2,z1,z2) coordinates, found {b.shape[1]}")


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise IoU ``(n, m)`` of 2D or 3D boxes ``(n, 4|6)`` and ``(m, 4|6)``."""
    a_lo, a_hi = _as_minmax(a)
    b_lo, b_hi = _as_minmax(b)
    if a_lo.shape[1] != b_lo.shape[1]:
        raise PredictionError("cannot compare 2D boxes with 3D boxes")
    inter = np.clip(np.minimum(a_hi[:, None], b_hi[None]) - np.maximum(a_lo[:, None], b_lo[None]), 0, None).prod(-1)
    va, vb = (a_hi - a_lo).prod(-1), (b_hi - b_lo).prod(-1)
    union = va[:, None] + vb[None] - inter
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(union > 0, inter / np.where(union > 0, union, 1.0), 0.0)


def check_boxes(boxes: np.ndarray, ids: Sequence[str], role: str) -> None:
    """Every box must have x2 >= x1, y2 >= y1 (z2 >= z1) and finite coordinates."""
    lo, hi = _as_minmax(boxes)
    bad = np.flatnonzero(~(np.isfinite(lo).all(1) & np.isfinite(hi).all(1)) | (hi < lo).any(1))
    if bad.size:
        i = bad[0]
        raise PredictionError(f"{role} box of case {ids[i]!r} (row {i + 1}) has a max corner below its min corner or a "
                              f"non-finite coordinate: {np.asarray(boxes)[i].tolist()}; expected x1 <= x2, y1 <= y2[, z1 <= z2]")


def greedy_match(scores: np.ndarray, sim: np.ndarray, threshold: float) -> np.ndarray:
    """TP flags ``(n_pred,)`` of one image and class: predictions in decreasing score take the
    unmatched truth with the highest similarity >= ``threshold`` (``sim`` is ``(n_pred, n_truth)``)."""
    order = np.argsort(-np.asarray(scores, float), kind="mergesort")
    taken = np.zeros(sim.shape[1], dtype=bool)
    tp = np.zeros(len(scores), dtype=bool)
    for i in order:
        if sim.shape[1] == 0:
            break
        s = np.where(taken, -np.inf, sim[i])
        j = int(np.argmax(s))
        if s[j] >= threshold:
            taken[j] = True
            tp[i] = True
    return tp


@dataclass
class Detections:
    """Flattened detections of a data set.

    ``image`` int index per row into the image list, ``label`` class per row, ``coords`` boxes or
    points ``(n, k)``, ``score`` per prediction row (``None`` for truth).
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
    pred_label: np.ndarray
    score: np.ndarray
    tp: dict[float, np.ndarray]  # threshold -> (P,) bool
    truth_image: np.ndarray  # (G,)
    truth_label: np.ndarray
    labels: list


def match_detections(pred: Detections, truth: Detections, n_images: int, *, kind: str = "box",
                     thresholds: Sequence[float] = tuple(IOU_THRESHOLDS), spacing: Sequence[float] | None = None) -> MatchResult:
    """Greedy matching per image and class at every threshold (IoU for boxes, distance for points)."""
    if kind not in ("box", "point"):
        raise PredictionError(f"kind must be box or point, found {kind!r}")
    tps = {float(t): np.zeros(len(pred.image), dtype=bool) for t in thresholds}
    labels = sorted(set(truth.label.tolist()) | set(pred.label.tolist()), key=str)
    sp = None if spacing is None else np.asarray(spacing, float)
    # group rows by (image, label)
    key_p = {}
    for i, k in enumerate(zip(pred.image.tolist(), pred.label.tolist())):
        key_p.setdefault(k, []).append(i)
    key_t = {}
    for i, k in enumerate(zip(truth.image.tolist(), truth.label.tolist())):
        key_t.setdefault(k, []).append(i)
    for k, pidx in key_p.items():
        tidx = key_t.get(k, [])
        pidx = np.array(pidx)
        if not tidx:
            continue
        tidx = np.array(tidx)
        if kind == "box":
            sim = box_iou(pred.coords[pidx], truth.coords[tidx])
        else:
            d = pred.coords[pidx][:, None, :] - truth.coords[tidx][None, :, :]
            if sp is not None:
                d = d * sp
            sim = -np.sqrt((d**2).sum(-1))  # higher = closer
        for t in tps:
            thr = t if kind == "box" else -t
            tps[t][pidx] = greedy_match(pred.score[pidx], sim, thr)
    return MatchResult(n_images, pred.image, pred.label, pred.score, tps, truth.image, truth.label, labels)


def _weights(w: np.ndarray | None, n_images: int) -> np.ndarray:
    if w is None:
        return np.ones((1, n_images))
    w = np.asarray(w, dtype=float)
    return w[None] if w.ndim == 1 else w


def average_precision(m: MatchResult, *, threshold: float, label=None, w: np.ndarray | None = None) -> np.ndarray:
    """COCO 101-point AP ``(B,)`` at one threshold, for one class (``label``) or all rows pooled."""
    W = _weights(w, m.n_images)
    sel_p = np.ones(len(m.score), bool) if label is None else (m.pred_label == label)
    sel_t = np.ones(len(m.truth_image), bool) if label is None else (m.truth_label == label)
    n_gt = W[:, m.truth_image[sel_t]].sum(1)  # (B,)
    order = np.argsort(-m.score[sel_p], kind="mergesort")
    img = m.pred_image[sel_p][order]
    tp = m.tp[float(threshold)][sel_p][order]
    pw = W[:, img]  # (B, P) weight of each prediction
    tp_c = np.cumsum(pw * tp, axis=1)
    fp_c = np.cumsum(pw * ~tp, axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        recall = tp_c / n_gt[:, None]
        prec = np.where(tp_c + fp_c > 0, tp_c / np.where(tp_c + fp_c > 0, tp_c + fp_c, 1), 0.0)
    if prec.shape[1] == 0:
        return np.where(n_gt > 0, 0.0, np.nan)
    env = np.maximum.accumulate(prec[:, ::-1], axis=1)[:, ::-1]  # precision envelope
    # first prediction index whose recall reaches each recall point (recall is non-decreasing)
    # vectorised over resamples: rows are offset by 2 so one searchsorted serves all of them
    B, P = recall.shape
    off = 2.0 * np.arange(B)[:, None]
    flat = (np.nan_to_num(recall) + off).ravel()
    idx = np.searchsorted(flat, (RECALL_POINTS[None, :] + off).ravel(), side="left").reshape(B, -1)
    idx -= P * np.arange(B)[:, None]  # (B, 101) first index with recall >= each point
    ok = idx < prec.shape[1]
    sampled = np.where(ok, np.take_along_axis(env, np.minimum(idx, prec.shape[1] - 1), axis=1), 0.0)
    return np.where(n_gt > 0, sampled.mean(1), np.nan)


def mean_ap(m: MatchResult, *, thresholds: Sequence[float], w: np.ndarray | None = None) -> np.ndarray:
    """Mean over classes with truth objects (and over ``thresholds``) of the per-class AP."""
    per = []
    for lab in m.labels:
        if not np.any(m.truth_label == lab):
            continue
        per.append(np.mean([average_precision(m, threshold=t, label=lab, w=w) for t in thresholds], axis=0))
    if not per:
        return np.full(_weights(w, m.n_images).shape[0], np.nan)
    return np.nanmean(np.vstack(per), axis=0) if len(per) > 1 else per[0]


def froc(m: MatchResult, *, threshold: float, w: np.ndarray | None = None, fps: Sequence[float] = FROC_FPS) -> dict[str, np.ndarray]:
    """Class-agnostic FROC: sensitivities ``(B, len(fps))`` and the score ``(B,)``; curve data for B = 1."""
    W = _weights(w, m.n_images)
    n_gt = W[:, m.truth_image].sum(1)
    n_img = W.sum(1)
    order = np.argsort(-m.score, kind="mergesort")
    img, tp = m.pred_image[order], m.tp[float(threshold)][order]
    s = m.score[order]
    pw = W[:, img]
    tp_c, fp_c = np.cumsum(pw * tp, axis=1), np.cumsum(pw * ~tp, axis=1)
    # operating points are the ends of tied-score groups (a threshold keeps all of a tie or none)
    ends = np.r_[s[1:] != s[:-1], True] if len(s) else np.zeros(0, bool)
    sens = np.concatenate([np.zeros((len(W), 1)), tp_c[:, ends]], axis=1) / np.where(n_gt > 0, n_gt, np.nan)[:, None]
    fppi = np.concatenate([np.zeros((len(W), 1)), fp_c[:, ends]], axis=1) / n_img[:, None]
    at = np.stack([np.where(fppi <= f + 1e-12, sens, 0.0).max(1) for f in fps], axis=1)
    out = {"sensitivity": at, "score": at.mean(1), "fps": np.asarray(fps)}
    if len(W) == 1:
        out["curve_fppi"], out["curve_sensitivity"] = fppi[0], sens[0]
    return out


def f1_at(m: MatchResult, *, threshold: float, score_threshold: float = 0.5, w: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Precision, recall and F1 ``(B,)`` of the predictions with score >= ``score_threshold``."""
    W = _weights(w, m.n_images)
    keep = m.score >= score_threshold
    tp = (W[:, m.pred_image[keep]] * m.tp[float(threshold)][keep]).sum(1)
    fp = (W[:, m.pred_image[keep]] * ~m.tp[float(threshold)][keep]).sum(1)
    n_gt = W[:, m.truth_image].sum(1)
    fn = n_gt - tp
    with np.errstate(invalid="ignore", divide="ignore"):
        prec = np.where(tp + fp > 0, tp / (tp + fp), np.nan)
        rec = np.where(n_gt > 0, tp / n_gt, np.nan)
        f1 = np.where(2 * tp + fp + fn > 0, 2 * tp / (2 * tp + fp + fn), np.nan)
    return {"precision": prec, "recall": rec, "f1": f1}


def detection_metrics(pred: Detections, truth: Detections, n_images: int, *, kind: str = "box", iou_threshold: float = 0.5,
                      distance: float = 5.0, spacing: Sequence[float] | None = None,
                      score_threshold: float = 0.5) -> dict[str, float]:
    """Point estimates of every detection metric (see the module docstring)."""
    if kind == "box":
        m = match_detections(pred, truth, n_images, kind="box", thresholds=sorted({*IOU_THRESHOLDS, iou_threshold}))
        main, many = float(iou_threshold), tuple(float(t) for t in IOU_THRESHOLDS)
    else:
        m = match_detections(pred, truth, n_images, kind="point", thresholds=(distance,), spacing=spacing)
        main, many = float(distance), (float(distance),)
    out = {"ap50" if kind == "box" else "ap": float(mean_ap(m, thresholds=(main,))[0])}
    if kind == "box":
        out["map"] = float(mean_ap(m, thresholds=many)[0])
    fr = froc(m, threshold=main)
    out["froc"] = float(fr["score"][0])
    for f, s in zip(FROC_FPS, fr["sensitivity"][0]):
        out[f"sens_at_{f:g}fp"] = float(s)
    out.update({k: float(v[0]) for k, v in f1_at(m, threshold=main, score_threshold=score_threshold).items()})
    for lab in m.labels:
        if np.any(m.truth_label == lab):
            out[f"ap_class_{lab}"] = float(average_precision(m, threshold=main, label=lab)[0])
    return out
