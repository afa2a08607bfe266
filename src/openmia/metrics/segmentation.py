"""Segmentation metrics for 2D and 3D label maps (DESIGN §4.2 conventions).

Overlap: Dice, IoU, precision, recall, volume difference. Boundary: Hausdorff (HD), HD95, ASSD,
MASD and NSD (normalised surface distance / surface Dice). Lesion-wise: detection F1 and
lesion-wise Dice on connected components (BraTS 2023 style).

Conventions (each has a test with a hand-computed value and a MONAI cross-check):

- Boundary = mask XOR its binary erosion with the face-connected (cross) structuring element,
  outside the image counting as background (MONAI ``get_mask_edges``).
- Distances are Euclidean between boundary-voxel centres in physical units (``spacing``, mm).
- HD = max of the two directed maxima; HD95 = max of the two directed 95th percentiles (linear
  interpolation, ``numpy.percentile``); ASSD = mean of all distances of both directions pooled
  (MONAI ``compute_average_surface_distance(symmetric=True)``); MASD = mean of the two directed
  means (Metrics Reloaded); NSD = boundary elements within the tolerance, both directions, over
  all boundary elements (MONAI ``compute_surface_dice``, ``use_subvoxels=False``).
- Both masks empty: every metric is NaN (counted, excluded from means). Exactly one empty:
  Dice = IoU = NSD = 0 and HD/HD95/ASSD/MASD = the image diagonal in physical units (the worst
  case). Precision = TP/|pred| is NaN when the prediction is empty, recall = TP/|truth| is NaN
  when the truth is empty (0/0 is undefined, not 0 or 1).

Speed: boundary metrics of one mask pair share a single computation — the masks are cropped to
the bounding box of their union (exact: boundaries never lie outside it), boundaries are found
once, boundary voxels shared by both masks have distance 0 and skip the search, and the rest are
matched with one KD-tree per direction. :func:`segmentation_case_metrics` returns every metric
for every class of a case from that one pass.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Mapping, Sequence

import numpy as np

from openmia.errors import PredictionError

OVERLAP_METRICS = ("dice", "iou", "precision", "recall", "vol_diff", "rel_vol_diff")
BOUNDARY_METRICS = ("hd", "hd95", "assd", "masd", "nsd")
LESION_METRICS = ("lesion_f1", "lesion_dice", "lesion_tp", "lesion_fp", "lesion_fn")


# ----------------------------------------------------------------------------- validation


def check_spacing(spacing: Sequence[float] | float | None, ndim: int, *, case: str = "") -> np.ndarray:
    """Spacing as a float array of length ``ndim`` (``None`` = 1 mm isotropic)."""
    where = f"case {case!r}: " if case else ""
    if spacing is None:
        return np.ones(ndim)
    sp = np.atleast_1d(np.asarray(spacing, dtype=float))
    if sp.size == 1:
        sp = np.full(ndim, float(sp[0]))
    if sp.shape != (ndim,) or not np.all(np.isfinite(sp)) or np.any(sp <= 0):
        raise PredictionError(f"{where}spacing must be {ndim} positive numbers (one per axis), found {list(np.atleast_1d(spacing))}")
    return sp


def check_pair(pred: np.ndarray, truth: np.ndarray, *, case: str = "") -> tuple[np.ndarray, np.ndarray]:
    """Validate a prediction/truth pair of masks or label maps of the same 2D/3D shape."""
    where = f"case {case!r}: " if case else ""
    pred, truth = np.asarray(pred), np.asarray(truth)
    if pred.shape != truth.shape:
        raise PredictionError(f"{where}prediction has shape {pred.shape}, truth has shape {truth.shape}; they must match")
    if pred.ndim not in (2, 3):
        raise PredictionError(f"{where}expected a 2D or 3D mask, found {pred.ndim} dimensions (shape {pred.shape})")
    for name, a in (("prediction", pred), ("truth", truth)):
        if a.dtype.kind == "f":
            if not np.all(np.isfinite(a)):
                raise PredictionError(f"{where}{name} contains NaN or infinite values; expected integer labels")
            if np.any(a != np.round(a)):
                raise PredictionError(f"{where}{name} contains non-integer values; expected integer labels (threshold probabilities first)")
        elif a.dtype.kind not in "biu":
            raise PredictionError(f"{where}{name} has dtype {a.dtype}; expected integer or boolean labels")
    return pred, truth


def _diagonal(shape: tuple[int, ...], spacing: np.ndarray) -> float:
    """Image diagonal in physical units: the worst-case distance when one mask is empty."""
    return float(np.sqrt(np.sum((np.asarray(shape) * spacing) ** 2)))


# ----------------------------------------------------------------------------- boundaries and distances


def bounding_box(mask: np.ndarray) -> tuple[slice, ...] | None:
    """Slices of the tightest box holding all True voxels, or ``None`` for an empty mask."""
    out = []
    for ax in range(mask.ndim):
        other = tuple(a for a in range(mask.ndim) if a != ax)
        hit = np.flatnonzero(mask.any(axis=other))
        if hit.size == 0:
            return None
        out.append(slice(int(hit[0]), int(hit[-1]) + 1))
    return tuple(out)


def boundary(mask: np.ndarray) -> np.ndarray:
    """Boundary voxels: ``mask XOR erosion(mask)`` with the cross element, outside = background."""
    from scipy import ndimage

    mask = np.asarray(mask, dtype=bool)
    return mask & ~ndimage.binary_erosion(mask, border_value=0)


@dataclass(frozen=True)
class SurfaceDistances:
    """Directed boundary distances of one mask pair, in physical units.

    ``pred_to_truth`` ``(n_pred_boundary,)``: each prediction boundary voxel to the nearest truth
    boundary voxel; ``truth_to_pred`` ``(n_truth_boundary,)`` the other way. ``diagonal`` is the
    image diagonal (the worst case when one mask is empty).
    """

    pred_to_truth: np.ndarray
    truth_to_pred: np.ndarray
    diagonal: float

    @property
    def pred_empty(self) -> bool:
        return self.pred_to_truth.size == 0

    @property
    def truth_empty(self) -> bool:
        return self.truth_to_pred.size == 0


def _directed(src: np.ndarray, dst: np.ndarray, shared: np.ndarray, spacing: np.ndarray, dst_tree=None):
    """Distances from every ``src`` boundary voxel to the nearest ``dst`` boundary voxel.

    Voxels on both boundaries (``shared``) are at distance 0 and skip the KD-tree search.
    """
    from scipy.spatial import cKDTree

    out = np.zeros(int(src.sum()), dtype=np.float64)
    todo = ~shared[src]  # which of src's boundary voxels (in argwhere order) need a search
    if todo.any():
        if dst_tree is None:
            dst_tree = cKDTree(np.argwhere(dst) * spacing, leafsize=32, balanced_tree=False, compact_nodes=False)
        out[todo] = dst_tree.query(np.argwhere(src & ~shared) * spacing, k=1)[0]
    return out


def surface_distances(pred: np.ndarray, truth: np.ndarray, *, spacing: Sequence[float] | float | None = None,
                      case: str = "") -> SurfaceDistances:
    """Boundary distances of two binary masks ``(H, W)`` or ``(D, H, W)`` (computed once, shared)."""
    pred, truth = check_pair(pred, truth, case=case)
    pred, truth = pred.astype(bool, copy=False), truth.astype(bool, copy=False)
    sp = check_spacing(spacing, pred.ndim, case=case)
    diag = _diagonal(pred.shape, sp)
    box = bounding_box(pred | truth)
    if box is None:
        empty = np.zeros(0)
        return SurfaceDistances(empty, empty, diag)
    # exact: every boundary voxel lies inside the union's box, and outside it is background
    bp, bt = boundary(pred[box]), boundary(truth[box])
    if not bp.any() or not bt.any():  # distances to an empty set are infinite
        return SurfaceDistances(np.full(int(bp.sum()), np.inf), np.full(int(bt.sum()), np.inf), diag)
    shared = bp & bt
    return SurfaceDistances(_directed(bp, bt, shared, sp), _directed(bt, bp, shared, sp), diag)


def boundary_metrics_from_distances(sd: SurfaceDistances, *, tolerance: float = 1.0, percentile: float = 95.0) -> dict[str, float]:
    """HD, HD95 (``percentile``), ASSD, MASD and NSD (at ``tolerance`` mm) from shared distances."""
    if not 0 <= percentile <= 100:
        raise PredictionError(f"percentile must be in [0, 100], found {percentile}")
    if not np.isfinite(tolerance) or tolerance < 0:
        raise PredictionError(f"NSD tolerance must be a non-negative number of mm, found {tolerance}")
    a, b = sd.pred_to_truth, sd.truth_to_pred
    if a.size == 0 and b.size == 0:
        return {k: float("nan") for k in BOUNDARY_METRICS}
    if a.size == 0 or b.size == 0:  # exactly one empty: worst case
        return {"hd": sd.diagonal, "hd95": sd.diagonal, "assd": sd.diagonal, "masd": sd.diagonal, "nsd": 0.0}
    return {
        "hd": float(max(a.max(), b.max())),
        "hd95": float(max(np.percentile(a, percentile), np.percentile(b, percentile))),
        "assd": float((a.sum() + b.sum()) / (a.size + b.size)),
        "masd": float((a.mean() + b.mean()) / 2),
        "nsd": float((np.count_nonzero(a <= tolerance) + np.count_nonzero(b <= tolerance)) / (a.size + b.size)),
    }


# ----------------------------------------------------------------------------- single metrics


def overlap_metrics(pred: np.ndarray, truth: np.ndarray, *, spacing: Sequence[float] | float | None = None,
                    case: str = "") -> dict[str, float]:
    """Dice, IoU, precision, recall and volume difference of two binary masks.

    ``vol_diff`` = (|pred| - |truth|) x voxel volume (mm³, mm² in 2D; signed: positive =
    over-segmentation); ``rel_vol_diff`` = (|pred| - |truth|) / |truth| (NaN for an empty truth).
    """
    pred, truth = check_pair(pred, truth, case=case)
    pred, truth = pred.astype(bool, copy=False), truth.astype(bool, copy=False)
    sp = check_spacing(spacing, pred.ndim, case=case)
    tp = float(np.count_nonzero(pred & truth))
    npred, ntruth = float(np.count_nonzero(pred)), float(np.count_nonzero(truth))
    return _overlap_from_counts(tp, npred, ntruth, float(np.prod(sp)))


def _overlap_from_counts(tp: float, npred: float, ntruth: float, voxel_volume: float) -> dict[str, float]:
    nan = float("nan")
    both_empty = npred == 0 and ntruth == 0
    return {
        "dice": nan if both_empty else 2 * tp / (npred + ntruth),
        "iou": nan if both_empty else tp / (npred + ntruth - tp),
        "precision": tp / npred if npred else nan,
        "recall": tp / ntruth if ntruth else nan,
        "vol_diff": nan if both_empty else (npred - ntruth) * voxel_volume,
        "rel_vol_diff": (npred - ntruth) / ntruth if ntruth else nan,
    }


def dice(pred: np.ndarray, truth: np.ndarray) -> float:
    """Dice = 2|P∩T| / (|P| + |T|) of two binary masks (NaN when both are empty)."""
    return overlap_metrics(pred, truth)["dice"]


def iou(pred: np.ndarray, truth: np.ndarray) -> float:
    """IoU (Jaccard) = |P∩T| / |P∪T| of two binary masks (NaN when both are empty)."""
    return overlap_metrics(pred, truth)["iou"]


def hausdorff(pred: np.ndarray, truth: np.ndarray, *, spacing=None, percentile: float | None = None) -> float:
    """Hausdorff distance (``percentile=None``) or its percentile variant, e.g. 95 = HD95."""
    sd = surface_distances(pred, truth, spacing=spacing)
    m = boundary_metrics_from_distances(sd, percentile=95.0 if percentile is None else percentile)
    return m["hd"] if percentile is None else m["hd95"]


def assd(pred: np.ndarray, truth: np.ndarray, *, spacing=None) -> float:
    """Average symmetric surface distance (both directions pooled)."""
    return boundary_metrics_from_distances(surface_distances(pred, truth, spacing=spacing))["assd"]


def masd(pred: np.ndarray, truth: np.ndarray, *, spacing=None) -> float:
    """Mean average surface distance: the mean of the two directed mean distances."""
    return boundary_metrics_from_distances(surface_distances(pred, truth, spacing=spacing))["masd"]


def nsd(pred: np.ndarray, truth: np.ndarray, *, spacing=None, tolerance: float = 1.0) -> float:
    """Normalised surface distance (surface Dice) at ``tolerance`` mm."""
    return boundary_metrics_from_distances(surface_distances(pred, truth, spacing=spacing), tolerance=tolerance)["nsd"]


# ----------------------------------------------------------------------------- lesion-wise


def lesion_metrics(pred: np.ndarray, truth: np.ndarray, *, min_size: int = 0, dilation: int = 0,
                   case: str = "") -> dict[str, float]:
    """Lesion-wise detection and Dice on connected components (BraTS 2023 style).

    Lesions are the full-connectivity (8 in 2D, 26 in 3D) components of ``truth``; those with
    fewer than ``min_size`` voxels are ignored (BraTS 2023 used 50 and also drops prediction
    components that small). A truth lesion is detected (TP) when any prediction voxel lies inside
    it after ``dilation`` binary dilations; prediction components touching no (dilated) truth
    lesion are false positives.

    Returns ``lesion_tp``, ``lesion_fp``, ``lesion_fn``, ``lesion_f1`` = 2TP / (2TP + FP + FN)
    and ``lesion_dice`` = (sum over truth lesions of Dice(lesion, prediction components that
    touch it)) / (number of truth lesions + FP), i.e. a missed lesion and a false positive each
    count as Dice 0. Both NaN when there are neither truth lesions nor prediction components.
    """
    from scipy import ndimage

    pred, truth = check_pair(pred, truth, case=case)
    pred, truth = pred.astype(bool, copy=False), truth.astype(bool, copy=False)
    if min_size < 0 or dilation < 0:
        raise PredictionError(f"min_size and dilation must be >= 0, found {min_size} and {dilation}")
    full = np.ones((3,) * pred.ndim, dtype=bool)
    tl, nt = ndimage.label(truth, structure=full)
    pl, npc = ndimage.label(pred, structure=full)
    if min_size > 0:
        for lab, n in ((tl, nt), (pl, npc)):
            sizes = np.bincount(lab.ravel(), minlength=n + 1)
            small = np.flatnonzero(sizes < min_size)
            lab[np.isin(lab, small[small > 0])] = 0
        tl, nt = ndimage.label(tl > 0, structure=full)
        pl, npc = ndimage.label(pl > 0, structure=full)
    if nt == 0 and npc == 0:
        nan = float("nan")
        return {"lesion_tp": 0.0, "lesion_fp": 0.0, "lesion_fn": 0.0, "lesion_f1": nan, "lesion_dice": nan}
    matched_pred: set[int] = set()
    dices, tp = [], 0
    # work on each lesion's bounding box (grown by the dilation) instead of the whole volume
    boxes = ndimage.find_objects(tl)
    pred_sizes = np.bincount(pl.ravel(), minlength=npc + 1)
    for i, box in enumerate(boxes, start=1):
        box = tuple(slice(max(0, b.start - dilation), min(n, b.stop + dilation)) for b, n in zip(box, tl.shape))
        les = tl[box] == i
        zone = ndimage.binary_dilation(les, structure=full, iterations=dilation) if dilation else les
        hits = np.unique(pl[box][zone & (pl[box] > 0)])
        if hits.size == 0:
            dices.append(0.0)
            continue
        tp += 1
        matched_pred.update(int(h) for h in hits)
        # touching components may extend beyond the box: their full sizes come from the bincount
        overlap = np.count_nonzero(np.isin(pl[box], hits) & les)
        dices.append(2.0 * overlap / (int(pred_sizes[hits].sum()) + np.count_nonzero(les)))
    fp = npc - len(matched_pred)
    fn = nt - tp
    return {
        "lesion_tp": float(tp), "lesion_fp": float(fp), "lesion_fn": float(fn),
        "lesion_f1": 2.0 * tp / (2 * tp + fp + fn),
        "lesion_dice": float(np.sum(dices)) / (nt + fp),
    }


# ----------------------------------------------------------------------------- a whole case


def case_labels(pred: np.ndarray, truth: np.ndarray, labels: Iterable[int] | None) -> list[int]:
    """Foreground labels to score: ``labels`` or every non-zero value in either map."""
    if labels is not None:
        return [int(v) for v in labels]
    return [int(v) for v in np.union1d(np.unique(pred), np.unique(truth)) if v != 0]


def segmentation_case_metrics(
    pred: np.ndarray,
    truth: np.ndarray,
    *,
    labels: Iterable[int] | None = None,
    spacing: Sequence[float] | float | None = None,
    tolerance: float | Mapping[int, float] = 1.0,
    percentile: float = 95.0,
    boundary: bool = True,
    lesions: bool = False,
    lesion_min_size: int = 0,
    directed: bool = False,
    case: str = "",
) -> dict[int, dict[str, float]]:
    """Every metric for every foreground class of one case.

    Args:
        pred, truth: integer label maps ``(H, W)`` or ``(D, H, W)``, 0 = background.
        labels: classes to score (default: all non-zero values present in either map). A class
            absent from both maps gives NaNs, which the evaluator counts.
        spacing: voxel size per axis in mm (same axis order as the arrays).
        tolerance: NSD tolerance in mm, one value or ``{label: mm}``.
        boundary: compute HD/HD95/ASSD/MASD/NSD (the expensive part).
        lesions: compute lesion-wise metrics too.
        directed: with ``boundary``, also the directed Hausdorff values of
            :mod:`openmia.metrics.segmentation_more` (from the same distances).

    Returns:
        ``{label: {metric: value}}``.
    """
    pred, truth = check_pair(pred, truth, case=case)
    sp = check_spacing(spacing, pred.ndim, case=case)
    vox = float(np.prod(sp))
    out: dict[int, dict[str, float]] = {}
    for lab in case_labels(pred, truth, labels):
        p, t = pred == lab, truth == lab
        tp = float(np.count_nonzero(p & t))
        m = _overlap_from_counts(tp, float(np.count_nonzero(p)), float(np.count_nonzero(t)), vox)
        if boundary:
            tol = tolerance.get(lab) if isinstance(tolerance, Mapping) else tolerance
            if tol is None:
                raise PredictionError(f"no NSD tolerance given for label {lab} (have {sorted(tolerance)})")
            sd = surface_distances(p, t, spacing=sp, case=case)
            m.update(boundary_metrics_from_distances(sd, tolerance=float(tol), percentile=percentile))
            if directed:
                m.update(directed_from_distances(sd, percentile=percentile))
        if lesions:
            m.update(lesion_metrics(p, t, min_size=lesion_min_size, case=case))
        out[lab] = m
    return out


DIRECTED_METRICS = ("hd_pred_to_truth", "hd_truth_to_pred", "hd95_pred_to_truth", "hd95_truth_to_pred")


def directed_from_distances(sd: SurfaceDistances, *, percentile: float = 95.0) -> dict[str, float]:
    """The four directed Hausdorff values of one mask pair from its shared boundary distances."""
    a, b = sd.pred_to_truth, sd.truth_to_pred
    if a.size == 0 and b.size == 0:
        return {k: float("nan") for k in DIRECTED_METRICS}
    if a.size == 0 or b.size == 0:  # exactly one empty: worst case
        return {k: sd.diagonal for k in DIRECTED_METRICS}
    return {"hd_pred_to_truth": float(a.max()), "hd_truth_to_pred": float(b.max()),
            "hd95_pred_to_truth": float(np.percentile(a, percentile)),
            "hd95_truth_to_pred": float(np.percentile(b, percentile))}
