"""COCO evaluation of detections as pycocotools' ``COCOeval`` does it: a cap of ``max_dets``
detections, object-size (area) ranges with ignored objects, crowd regions, AP at IoU 0.50 / 0.75 /
0.50:0.95, AR and per-class mAP, each a function of image weights (bootstrap over images).

It builds on :mod:`openmia.metrics.detection` (``Detections``, IoU, the 101-point AP, FROC, F1),
whose conventions hold unless said otherwise here.

Conventions (named, fixed, tested in tests/metrics/test_detection_coco.py against pycocotools
``COCOeval`` with the same ``maxDets`` and ``areaRng``)
--------------------------------------------------------------------------------------------------
- **max_dets** (COCO's 100 by default for boxes; no cap by default for points, where an image may
  hold thousands of cells): the predictions of one image *and class* are sorted by decreasing score
  (ties in row order, a stable sort) and only the first ``max_dets`` are kept; the rest are dropped
  before matching, from every metric, and counted (``n_over_max_dets``). COCO's documentation says
  "per image", but ``COCOeval.evaluateImg`` applies the cap per image and category
  (cocodataset/cocoapi#321); openmia does what the code does, so its values equal pycocotools'.
  ``None`` or 0 = no cap.
- **Area ranges** (2D boxes only): all = [0, 1e5²], small = [0, 32²], medium = [32², 96²],
  large = [96², 1e5²] pixels², both ends inclusive (COCO's ``areaRng``; an object of area exactly
  32² belongs to small and medium). The area of a truth object is its ``area`` (from a COCO
  annotations file: the annotation's ``area`` field, which COCOeval uses — for instance masks the
  mask area, not the box area) or else its box area; of a prediction, its box area. Within a range a
  truth object outside it is *ignored*: a prediction matched to it counts neither as a hit nor as a
  false positive, and an unmatched prediction outside the range is ignored too.
- **Crowd regions** (``iscrowd=1`` in a COCO annotations file): always ignored objects; the overlap
  of a prediction with a crowd region is intersection / prediction area, and a crowd region can
  absorb any number of predictions.
- **Matching** per image and class in decreasing score: each prediction takes the best still
  unmatched non-ignored truth with IoU >= t (the last of equally good ones); only if there is
  none, the best ignored one (and is then ignored). ``t`` = min(threshold, 1 - 1e-10) as COCOeval.
- **Ties across images**: predictions of a class are pooled over images in decreasing score, tied
  scores in image order and then in row order within the image (COCOeval's ``accumulate``: a
  stable sort of the scores concatenated image by image). So AP does not depend on the order of the
  rows of a file; within one image tied predictions keep their file order (as COCOeval).
- ``ap_small``/``ap_medium``/``ap_large`` = mAP@[.50:.95] within the range (COCO's APs/APm/APl);
  ``ar`` = recall with all kept predictions (at most ``max_dets`` per image and class), averaged
  over IoU 0.50:0.05:0.95 and over the classes with truth objects (COCO's AR@maxDets, area all).
  A class without (non-ignored) truth objects in a range is left out of that range's mean; none at
  all gives NaN (COCO prints -1).
- Images: every image counts, as in :mod:`openmia.metrics.detection`. (COCOeval skips images the
  truth file does not list; the file evaluator refuses them.)
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from openmia.errors import PredictionError
from openmia.metrics import detection as D

MAX_DETS = 100  # COCOeval's largest maxDets
AREA_RANGES: dict[str, tuple[float, float]] = {
    "all": (0.0, 1e5**2), "small": (0.0, 32.0**2), "medium": (32.0**2, 96.0**2), "large": (96.0**2, 1e5**2)}
SIZE_AREAS = ("small", "medium", "large")


@dataclass
class CocoMatch:
    """COCOeval-style matching of a data set at every threshold and area range.

    ``tp`` and ``ignored`` are ``(A, T, P)`` flags of the kept predictions (``pred_index`` = their
    rows in the input, ascending) per area range ``areas[a]`` and threshold ``thresholds[t]``;
    ``truth_ignored`` ``(A, G)`` flags the truth objects ignored in each range (crowd or outside).
    """

    n_images: int
    kind: str
    labels: list
    thresholds: tuple[float, ...]
    areas: tuple[str, ...]
    pred_index: np.ndarray
    pred_image: np.ndarray
    pred_label: np.ndarray
    score: np.ndarray
    tp: np.ndarray
    ignored: np.ndarray
    truth_image: np.ndarray
    truth_label: np.ndarray
    truth_ignored: np.ndarray
    max_dets: int | None
    n_over_max_dets: int
    _cache: dict = field(default_factory=dict, repr=False)


def _max_dets(max_dets: Any) -> int | None:
    if max_dets is None or (not isinstance(max_dets, bool) and isinstance(max_dets, (int, np.integer)) and max_dets == 0):
        return None
    if isinstance(max_dets, bool) or not isinstance(max_dets, (int, np.integer)) or max_dets < 0:
        raise PredictionError(f"max_dets must be a whole number >= 0 (0 = no cap), found {max_dets!r}")
    return int(max_dets)


def resolve_max_dets(kind: str, max_dets: Any) -> int | None:
    """The cap the file evaluator and :func:`coco_metrics` use: ``None`` = the default (COCO's 100
    for boxes, no cap for points), 0 = no cap, else the positive integer given."""
    if max_dets is None:
        return MAX_DETS if kind == "box" else None
    return _max_dets(max_dets)


def _areas(values: Any, coords: np.ndarray, role: str) -> np.ndarray:
    if values is None:
        lo, hi = D._corners(coords)
        return (hi - lo).prod(-1) if len(coords) else np.zeros(0)
    a = np.asarray(values, dtype=float).reshape(-1)
    if len(a) != len(coords) or not np.all(np.isfinite(a)) or np.any(a < 0):
        raise PredictionError(f"{role} areas must be {len(coords)} finite numbers >= 0 (one per row), "
                              f"found {len(a)} values" + ("" if len(a) != len(coords) else " with a negative or non-finite one"))
    return a


def _box_sim(dt: np.ndarray, gt: np.ndarray, crowd: np.ndarray) -> np.ndarray:
    """IoU ``(P, G)``; for a crowd truth intersection / prediction area (COCO's ``iscrowd`` IoU)."""
    a_lo, a_hi = D._corners(dt)
    b_lo, b_hi = D._corners(gt)
    inter = np.clip(np.minimum(a_hi[:, None], b_hi[None]) - np.maximum(a_lo[:, None], b_lo[None]), 0, None).prod(-1)
    da = (a_hi - a_lo).prod(-1)[:, None]
    union = np.where(crowd[None], da, da + (b_hi - b_lo).prod(-1)[None] - inter)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(union > 0, inter / np.where(union > 0, union, 1.0), 0.0)


def _match_group(sim: np.ndarray, thr: np.ndarray, ig: np.ndarray, crowd: np.ndarray) -> np.ndarray:
    """COCOeval's matching loop for one image and class, all rows (threshold x ignore pattern) at once.

    Args:
        sim: ``(P, G)`` similarity of the predictions in decreasing score order.
        thr: ``(R,)`` minimum similarity per row; ``ig``: ``(R, G)`` ignored truths per row.

    Returns:
        ``(R, P)`` index of the truth each prediction took, -1 for none.
    """
    R, G = ig.shape
    P = sim.shape[0]
    out = np.full((R, P), -1, dtype=np.int64)
    taken = np.zeros((R, G), dtype=bool)
    rows = np.arange(R)
    free_crowd = crowd[None, :]
    for i in range(P):
        s = np.where(taken & ~free_crowd, -np.inf, sim[i][None, :])
        reg = np.where(ig, -np.inf, s)
        jr = G - 1 - np.argmax(reg[:, ::-1], axis=1)  # the last of equally good truths, as COCOeval
        ok = reg[rows, jr] >= thr
        j = np.where(ok, jr, -1)
        if not ok.all():
            ign = np.where(ig, s, -np.inf)
            ji = G - 1 - np.argmax(ign[:, ::-1], axis=1)
            j = np.where(~ok & (ign[rows, ji] >= thr), ji, j)
        hit = j >= 0
        taken[rows[hit], j[hit]] = True
        out[:, i] = j
        if not crowd.any() and taken.all():
            break
    return out


def coco_match(pred: D.Detections, truth: D.Detections, n_images: int, *, kind: str = "box",
               thresholds: Sequence[float] | None = None, max_dets: int | None = MAX_DETS,
               area_ranges: Mapping[str, tuple[float, float]] | None = None, pred_area: Any = None,
               truth_area: Any = None, truth_crowd: Any = None, spacing: Sequence[float] | None = None) -> CocoMatch:
    """Match predictions to truth as COCOeval (see the module docstring).

    Args:
        pred, truth: the detections (``pred.score`` required); rows may come in any order.
        n_images: number of images; row image indices lie in ``0..n_images - 1`` (image order =
            the order ties are broken in).
        kind: ``"box"`` (thresholds are IoUs) or ``"point"`` (thresholds are distances).
        thresholds: default IoU 0.50:0.05:0.95 for boxes; required for points.
        max_dets: predictions kept per image and class (highest scores); None or 0: all.
        area_ranges: name -> (min, max) area, both inclusive; default COCO's four ranges for 2D
            boxes and ``{"all"}`` without any area test otherwise (3D boxes, points).
        pred_area, truth_area: optional areas per row (default: the 2D box area).
        truth_crowd: optional bool per truth row (COCO ``iscrowd``; boxes only).
        spacing: points only, as in :func:`openmia.metrics.detection.match_detections`.
    """
    if kind not in D.KINDS:
        raise PredictionError(f"kind must be one of {D.KINDS}, found {kind!r}")
    if isinstance(n_images, bool) or not isinstance(n_images, (int, np.integer)) or n_images < 0:
        raise PredictionError(f"n_images must be a non-negative integer, found {n_images!r}")
    cap = _max_dets(max_dets)
    pred = D._check_detections(pred, n_images, kind, "prediction", True)
    truth = D._check_detections(truth, n_images, kind, "truth", False)
    k = truth.coords.shape[1] if len(truth.coords) else pred.coords.shape[1]
    if len(pred.coords) and len(truth.coords) and pred.coords.shape[1] != truth.coords.shape[1]:
        raise PredictionError(f"predictions have {pred.coords.shape[1]} coordinate columns but the truth has "
                              f"{truth.coords.shape[1]}; expected the same")
    if thresholds is None:
        if kind != "box":
            raise PredictionError("points need a matching distance: thresholds=(distance,)")
        thresholds = tuple(float(t) for t in D.IOU_THRESHOLDS)
    ths = tuple(float(t) for t in thresholds)
    for t in ths:
        if not np.isfinite(t) or t <= 0 or (kind == "box" and t > 1):
            raise PredictionError(("IoU thresholds must lie in (0, 1]" if kind == "box" else "distances must be > 0") + f", found {t}")
    if kind == "box" and spacing is not None:
        raise PredictionError("spacing applies to points only (IoU does not depend on it); pass spacing=None for boxes")
    sp = D._spacing(spacing, k) if kind == "point" else None
    planar = kind == "box" and k == 4
    if area_ranges is None:
        area_ranges = AREA_RANGES if planar else {"all": (-np.inf, np.inf)}
    elif not planar and any(np.isfinite(v).any() for v in area_ranges.values()):
        raise PredictionError("area ranges apply to 2D boxes only (COCO's areas are in pixels²)")
    areas = tuple(area_ranges)
    bounds = np.array([area_ranges[a] for a in areas], dtype=float)  # (A, 2)
    if planar:
        p_area, t_area = _areas(pred_area, pred.coords, "prediction"), _areas(truth_area, truth.coords, "truth")
    else:
        p_area, t_area = np.zeros(len(pred.coords)), np.zeros(len(truth.coords))
    crowd = np.zeros(len(truth.coords), bool) if truth_crowd is None else np.asarray(truth_crowd, dtype=bool).reshape(-1)
    if len(crowd) != len(truth.coords):
        raise PredictionError(f"truth_crowd needs one flag per truth row ({len(truth.coords)}), found {len(crowd)}")
    if crowd.any() and kind != "box":
        raise PredictionError("crowd regions apply to boxes only")

    labels = sorted(set(truth.label.tolist()) | set(pred.label.tolist()), key=str)
    lid = {lab: i for i, lab in enumerate(labels)}
    K = max(len(labels), 1)
    p_key = pred.image * K + np.array([lid[x] for x in pred.label.tolist()], dtype=np.int64).reshape(-1)
    t_key = truth.image * K + np.array([lid[x] for x in truth.label.tolist()], dtype=np.int64).reshape(-1)
    order = np.lexsort((-pred.score, p_key))  # by image and class, then decreasing score, ties in row order
    sk = p_key[order]
    start = np.r_[0, np.flatnonzero(sk[1:] != sk[:-1]) + 1] if len(sk) else np.zeros(0, np.int64)
    rank = np.arange(len(sk)) - np.repeat(start, np.diff(np.r_[start, len(sk)]))
    keep_sorted = rank < cap if cap is not None else np.ones(len(sk), bool)
    kept = np.sort(order[keep_sorted])
    pos = np.full(len(pred.score), -1, dtype=np.int64)
    pos[kept] = np.arange(len(kept))
    A, T, P = len(areas), len(ths), len(kept)

    def outside(a: np.ndarray) -> np.ndarray:  # (A, n) area outside each range
        return (a[None, :] < bounds[:, :1]) | (a[None, :] > bounds[:, 1:])

    t_ig = outside(t_area) | crowd[None, :]  # (A, G)
    p_out = outside(p_area)  # (A, n_pred)
    tp = np.zeros((A, T, P), dtype=bool)
    ignored = np.repeat(p_out[:, None, kept], T, axis=1)  # unmatched predictions outside the range
    thr = np.array([min(t, 1 - 1e-10) if kind == "box" else -t for t in ths])
    t_order = np.argsort(t_key, kind="stable")
    tk_sorted = t_key[t_order]
    groups = np.split(order[keep_sorted], np.flatnonzero(np.diff(sk[keep_sorted])) + 1) if P else []
    for rows in groups:
        key = p_key[rows[0]]
        lo, hi = np.searchsorted(tk_sorted, key, "left"), np.searchsorted(tk_sorted, key, "right")
        if lo == hi:
            continue  # no truth of this class in this image: all false positives (or ignored)
        g = t_order[lo:hi]  # truth rows in row order
        if kind == "box":
            sim = _box_sim(pred.coords[rows], truth.coords[g], crowd[g])
        else:
            sim = -D._dist(pred.coords[rows], truth.coords[g], sp)
        ig = t_ig[:, g]  # (A, Gg)
        # a uniform pattern (all ignored or none) matches like "none ignored": one run serves both
        canon = np.where(ig.all(1, keepdims=True), False, ig)
        pats, inv = np.unique(canon, axis=0, return_inverse=True)
        inv = inv.reshape(-1)
        U = len(pats)
        j = _match_group(sim, np.tile(thr, U), np.repeat(pats, T, axis=0), crowd[g]).reshape(U, T, len(rows))[inv]
        hit = j >= 0
        det_ig = np.where(hit, np.take_along_axis(np.broadcast_to(ig[:, None, :], (A, T, ig.shape[1])),
                                                  np.maximum(j, 0), axis=2), p_out[:, None, rows])
        tp[:, :, pos[rows]] = hit & ~det_ig
        ignored[:, :, pos[rows]] = det_ig
    return CocoMatch(int(n_images), kind, labels, ths, areas, kept, pred.image[kept], pred.label[kept], pred.score[kept],
                     tp, ignored, truth.image, truth.label, t_ig, cap, int(len(pred.score) - P))


# ----------------------------------------------------------------------------- statistics


def _ti(cm: CocoMatch, threshold: float) -> int:
    for i, t in enumerate(cm.thresholds):
        if abs(t - float(threshold)) < 1e-9:
            return i
    raise PredictionError(f"the matching was done at thresholds {list(cm.thresholds)}, not at {threshold}; "
                          "pass it in coco_match(..., thresholds=...)")


def _ai(cm: CocoMatch, area: str) -> int:
    if area not in cm.areas:
        raise PredictionError(f"area range {area!r} was not evaluated; available: {list(cm.areas)}")
    return cm.areas.index(area)


def match_result(cm: CocoMatch, threshold: float, area: str = "all") -> D.MatchResult:
    """The non-ignored predictions and truths of one threshold and area range as a
    :class:`~openmia.metrics.detection.MatchResult` (for ``froc``, ``f1_at``, ``average_precision``)."""
    a, ti = _ai(cm, area), _ti(cm, threshold)
    key = ("mr", a, ti)
    if key not in cm._cache:
        keep, tkeep = ~cm.ignored[a, ti], ~cm.truth_ignored[a]
        t = cm.thresholds[ti]
        cm._cache[key] = D.MatchResult(cm.n_images, cm.pred_image[keep], cm.pred_label[keep], cm.score[keep],
                                       {t: cm.tp[a, ti][keep]}, cm.truth_image[tkeep], cm.truth_label[tkeep],
                                       cm.labels, cm.kind)
    return cm._cache[key]


def _thresholds(cm: CocoMatch, thresholds: Sequence[float] | None) -> tuple[float, ...]:
    if thresholds is not None:
        return tuple(float(t) for t in thresholds)
    if cm.kind != "box":
        return cm.thresholds
    return tuple(float(t) for t in D.IOU_THRESHOLDS)


def _nanmean0(x: np.ndarray) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # an all-NaN column is NaN on purpose
        return np.nanmean(x, axis=0)


def labels_with_truth(cm: CocoMatch, area: str = "all") -> list:
    """The classes with at least one non-ignored truth object in ``area``."""
    present = set(cm.truth_label[~cm.truth_ignored[_ai(cm, area)]].tolist())
    return [lab for lab in cm.labels if lab in present]


def _running(op: np.ufunc, x: np.ndarray) -> np.ndarray:
    """``op.accumulate(x, axis=0)`` in place; for many columns a loop over rows, which numpy runs
    several times faster than its own accumulate along the first axis (the same additions in the
    same order, so the same values)."""
    if x.shape[1] < 32:
        return op.accumulate(x, axis=0)
    for i in range(1, len(x)):
        op(x[i - 1], x[i], out=x[i])
    return x


def ap_sorted(W: np.ndarray, image: np.ndarray, tp: np.ndarray, n_gt: np.ndarray) -> np.ndarray:
    """COCO 101-point AP ``(B,)`` of predictions already in ranking order (``image``, ``tp`` ``(P,)``)
    under image weights ``W`` ``(B, n)`` with ``n_gt`` ``(B,)`` weighted truth objects.

    The same values as :func:`openmia.metrics.detection.average_precision` (tested to equality),
    computed in a (prediction, resample) layout whose running sums are contiguous, and without the
    predictions after the last hit (they only lower the precision after the final recall, which
    never enters the envelope or a recall sample).
    """
    hits = np.flatnonzero(tp)
    B = W.shape[0]
    if not hits.size:
        return np.where(n_gt > 0, 0.0, np.nan)
    image, tp = image[: hits[-1] + 1], tp[: hits[-1] + 1]
    P = len(image)
    pw = np.ascontiguousarray(W.T)[image]  # (P, B)
    n_c = _running(np.add, pw.copy())
    pw[~tp] = 0.0
    tp_c = _running(np.add, pw)
    recall = tp_c / np.where(n_gt > 0, n_gt, 1.0)[None, :]  # resamples without truth are NaN at the end
    prec = np.divide(tp_c, n_c, out=np.zeros_like(tp_c), where=n_c > 0)
    env = _running(np.maximum, prec[::-1])[::-1]
    # first prediction whose recall reaches each recall point, all resamples in one search (each
    # column offset by 2; recall lies in [0, 1])
    off = 2.0 * np.arange(B)
    idx = np.searchsorted((recall + off[None, :]).ravel(order="F"), (D.RECALL_POINTS[:, None] + off[None, :]).ravel(order="F"),
                          side="left").reshape(B, -1) - P * np.arange(B)[:, None]
    sampled = np.where(idx < P, np.take_along_axis(env.T, np.minimum(idx, P - 1), axis=1), 0.0)
    return np.where(n_gt > 0, sampled.mean(1), np.nan)


class _Stats:
    """AP of each (area, threshold, class) computed once per block of weights and reused by every
    statistic asking for it (mAP, AP50, per-class mAP, AP by size share them), so a bootstrap of a
    dozen summary rows costs one pass over the distinct APs."""

    def __init__(self, cm: CocoMatch) -> None:
        self.cm = cm
        self.prep: dict[tuple, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
        self.memo: dict[bytes, dict[tuple, np.ndarray]] = {}
        self.last: tuple[Any, bytes] = (None, b"")

    def _prepared(self, a: int, ti: int, label: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        key = (a, ti, label)
        if key not in self.prep:
            cm = self.cm
            sel = ~cm.ignored[a, ti] & (cm.pred_label == label)
            img, sc = cm.pred_image[sel], cm.score[sel]
            order = np.lexsort((img, -sc))  # decreasing score; ties in image order, then row order (stable)
            t_sel = ~cm.truth_ignored[a] & (cm.truth_label == label)
            self.prep[key] = (img[order], cm.tp[a, ti][sel][order], cm.truth_image[t_sel])
        return self.prep[key]

    def ap(self, W: np.ndarray, a: int, ti: int, label: Any) -> np.ndarray:
        import hashlib

        if self.last[0] is not W:  # one statistic asks many APs of the same weights: hash them once
            self.last = (W, hashlib.blake2b(np.ascontiguousarray(W).tobytes(), digest_size=16).digest() + bytes(str(W.shape), "ascii"))
        memo = self.memo.setdefault(self.last[1], {})
        if len(self.memo) > 32:  # a bootstrap visits a handful of blocks; keep the recent ones
            self.memo.pop(next(iter(self.memo)))
        key = (a, ti, label)
        if key not in memo:
            img, tp, t_img = self._prepared(a, ti, label)
            memo[key] = ap_sorted(W, img, tp, W[:, t_img].sum(1))
        return memo[key]


def _stats(cm: CocoMatch) -> _Stats:
    if "stats" not in cm._cache:
        cm._cache["stats"] = _Stats(cm)
    return cm._cache["stats"]


def class_ap(cm: CocoMatch, label: Any, *, area: str = "all", thresholds: Sequence[float] | None = None,
             w: np.ndarray | None = None) -> np.ndarray:
    """AP ``(B,)`` of one class averaged over ``thresholds`` (default IoU 0.50:0.95 = its mAP; the
    matching distance for points); NaN where the class has no truth object (in the resample)."""
    W, st, a = D._weights(w, cm.n_images), _stats(cm), _ai(cm, area)
    return np.mean([st.ap(W, a, _ti(cm, t), label) for t in _thresholds(cm, thresholds)], axis=0)


def coco_ap(cm: CocoMatch, *, area: str = "all", thresholds: Sequence[float] | None = None,
            w: np.ndarray | None = None) -> np.ndarray:
    """Mean ``(B,)`` over the classes with truth in ``area`` of their AP averaged over ``thresholds``
    (default IoU 0.50:0.95: COCO's AP; ``thresholds=(0.5,)``: AP50)."""
    labs = labels_with_truth(cm, area)
    if not labs:
        return np.full(D._weights(w, cm.n_images).shape[0], np.nan)
    return _nanmean0(np.vstack([class_ap(cm, lab, area=area, thresholds=thresholds, w=w) for lab in labs]))


def coco_ar(cm: CocoMatch, *, area: str = "all", thresholds: Sequence[float] | None = None, label: Any = None,
            w: np.ndarray | None = None) -> np.ndarray:
    """COCO's AR ``(B,)``: recall with every kept prediction, averaged over ``thresholds`` (default
    IoU 0.50:0.95) and over the classes with truth in ``area`` (or of one ``label``)."""
    W = D._weights(w, cm.n_images)
    a = _ai(cm, area)
    labs = labels_with_truth(cm, area) if label is None else [label]
    if not labs:
        return np.full(len(W), np.nan)
    tkeep = ~cm.truth_ignored[a]
    ti, tl = cm.truth_image[tkeep], cm.truth_label[tkeep]
    per = []
    for lab in labs:
        n_gt = W[:, ti[tl == lab]].sum(1)
        sel = cm.pred_label == lab
        rec = []
        for t in _thresholds(cm, thresholds):
            hit = cm.tp[a, _ti(cm, t)] & sel
            with np.errstate(invalid="ignore", divide="ignore"):
                rec.append(np.where(n_gt > 0, W[:, cm.pred_image[hit]].sum(1) / np.where(n_gt > 0, n_gt, 1), np.nan))
        per.append(np.mean(rec, axis=0))
    return _nanmean0(np.vstack(per))


# ----------------------------------------------------------------------------- entry point


def coco_metrics(pred: D.Detections | Mapping | Sequence, truth: D.Detections | Mapping | Sequence,
                 n_images: int | None = None, *, kind: str | None = None, iou_threshold: float = 0.5,
                 distance: float = 5.0, spacing: Sequence[float] | None = None, max_dets: int | None = None,
                 truth_area: Any = None, truth_crowd: Any = None) -> dict[str, Any]:
    """Point estimates of the COCO metrics (conventions in the module docstring).

    Inputs as :func:`openmia.metrics.detection.detection_metrics` (``Detections`` with
    ``n_images``, or per-image dicts). ``max_dets``: None = COCO's 100 for boxes and no cap for
    points, 0 = no cap (as the file evaluator's ``--max-dets``).

    Returns:
        boxes: ``ap`` (at ``iou_threshold``), ``ap50``, ``ap75``, ``map``, ``ar``, for 2D boxes
        ``ap_small``, ``ap_medium``, ``ap_large``; ``map_per_class``, ``ap_per_class`` (at
        ``iou_threshold``), ``ar_per_class`` (NaN for a class without truth). Points: ``ap``,
        ``ap_per_class``. Both: ``max_dets``, ``n_over_max_dets``, ``kind``, ``threshold``.
    """
    if isinstance(pred, D.Detections) or isinstance(truth, D.Detections):
        if not (isinstance(pred, D.Detections) and isinstance(truth, D.Detections)) or n_images is None:
            raise PredictionError("Detections input needs both pred and truth as Detections and n_images")
        kind = kind or "box"
    else:
        pred, truth, images, kind = D.detections_from_dicts(pred, truth, kind=kind)
        n_images = len(images)
    main = float(iou_threshold if kind == "box" else distance)
    ths = sorted({*(float(t) for t in D.IOU_THRESHOLDS), main}) if kind == "box" else [main]
    cm = coco_match(pred, truth, n_images, kind=kind, thresholds=ths, max_dets=resolve_max_dets(kind, max_dets), truth_area=truth_area,
                    truth_crowd=truth_crowd, spacing=spacing)

    def one(x: np.ndarray) -> float:
        return float(x[0])

    out: dict[str, Any] = {"kind": kind, "threshold": main, "max_dets": cm.max_dets, "n_over_max_dets": cm.n_over_max_dets,
                           "ap": one(coco_ap(cm, thresholds=(main,)))}
    out["ap_per_class"] = {D._py(lab): one(class_ap(cm, lab, thresholds=(main,))) for lab in cm.labels}
    if kind == "box":
        out.update(ap50=one(coco_ap(cm, thresholds=(0.5,))), ap75=one(coco_ap(cm, thresholds=(0.75,))),
                   map=one(coco_ap(cm)), ar=one(coco_ar(cm)))
        for area in SIZE_AREAS:
            if area in cm.areas:
                out[f"ap_{area}"] = one(coco_ap(cm, area=area))
        with_truth = set(labels_with_truth(cm))
        out["map_per_class"] = {D._py(lab): one(class_ap(cm, lab)) for lab in cm.labels}
        out["ar_per_class"] = {D._py(lab): one(coco_ar(cm, label=lab)) if lab in with_truth else float("nan")
                               for lab in cm.labels}
    return out
