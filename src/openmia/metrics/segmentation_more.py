"""More segmentation metrics (issue 22 §2): generalised Dice, boundary IoU, directed Hausdorff, and
the empty-truth policy.

Conventions (each has a hand-computed test and an independent cross-check in
``tests/metrics/test_segmentation_more.py``):

- ``gen_dice`` (one value per case, over its foreground labels; Sudre et al. 2017):
  2 Σ_l w_l |P_l∩T_l| / Σ_l w_l (|P_l| + |T_l|) with w_l = 1 / |T_l|² (voxel counts). A label
  with an empty truth gets the largest weight of the others (as MONAI ``compute_generalized_dice``,
  ``weight_type="square"``, ``sum_over_classes=True``). Every truth label empty: 0 when the
  prediction has a label (worst case), NaN when both are empty (MONAI gives 1.0 there).
- ``boundary_iou`` (Cheng et al. 2021): IoU of the two inner boundary bands, where the band of a
  mask is its voxels within distance ``d`` mm of the contour: Euclidean distance (physical units)
  from the voxel centre to the nearest background voxel centre ≤ d, outside the image counting as
  background. A voxel touching the background along an axis of spacing s is at distance s, so
  ``d`` = 2 voxel sizes keeps two layers. Default ``d`` = 2 × the smallest voxel size of the case
  ("2 px"; Cheng et al. use 2 % of the image diagonal and the chessboard distance, which differs
  from the Euclidean band only at corners). Both empty: NaN; exactly one empty: 0.
- ``hd_pred_to_truth``, ``hd_truth_to_pred`` (directed maxima) and ``hd95_pred_to_truth``,
  ``hd95_truth_to_pred`` (directed percentiles, linear interpolation) of the boundary distances
  of :mod:`openmia.metrics.segmentation` (HD = max of the two maxima, HD95 = max of the two
  percentiles). MONAI ``compute_hausdorff_distance(directed=True)`` is pred → truth. Exactly one
  mask empty: the image diagonal (worst case); both empty: NaN.
- Empty-truth policy ``worst`` (default; DESIGN §4.2: both empty NaN, only the truth empty = the
  worst value) or ``nan`` (MONAI ``ignore_empty=True``): every metric of a label whose truth is
  empty in a case is NaN there (excluded from the means, counted in ``n_nan``).
- ``cldice`` (opt-in, Shit et al., CVPR 2021): topology precision ``cldice_tprec`` = |S(P) ∩ T| /
  |S(P)| and sensitivity ``cldice_tsens`` = |S(T) ∩ P| / |S(T)|, S = the skeleton
  (``skimage.morphology.skeletonize``: Zhang-Suen in 2D, Lee in 3D; voxel counts, the spacing is
  not used), clDice = their harmonic mean (0 when both are 0). A non-empty mask whose skeleton
  vanishes (a 2×2×2 block in 3D) is its own skeleton. Both empty: NaN; prediction empty: tprec
  NaN, tsens 0, clDice 0; truth empty: tprec 0, tsens NaN, clDice 0.
- Surfel surface distances (``surface="surfel"``): :mod:`openmia.metrics.surfel`; lesion-wise
  panoptic quality (opt-in ``panoptic``): :mod:`openmia.metrics.lesions`.
"""

from __future__ import annotations

from typing import Iterable, Mapping, Sequence

import numpy as np

from openmia.errors import PredictionError
from openmia.metrics.segmentation import (  # noqa: F401 (DIRECTED_METRICS, directed_from_distances re-exported)
    DIRECTED_METRICS,
    SurfaceDistances,
    bounding_box,
    case_labels,
    check_pair,
    check_spacing,
    directed_from_distances,
    surface_distances,
)

MORE_LABEL_METRICS = ("boundary_iou", *DIRECTED_METRICS)
CASE_METRICS = ("gen_dice",)  # one value per case (label "all")
CLDICE_METRICS = ("cldice", "cldice_tprec", "cldice_tsens")
# opt-in metric groups (evaluate --extra-metrics): name -> (summary metrics, per-case counts)
EXTRA_METRICS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "cldice": (CLDICE_METRICS, ()),
    "panoptic": (("lesion_pq", "lesion_sq", "lesion_rq"), ("lesion_pq_tp", "lesion_pq_fp", "lesion_pq_fn")),
}
EMPTY_TRUTH_POLICIES = ("worst", "nan")
_REL = 1e-9  # distances within this relative margin of d count as inside the band
_BALL_MAX = 729  # voxels in the box around the erosion ball (9³); wider bands use the KD-tree


def generalized_dice(pred: np.ndarray, truth: np.ndarray, *, labels: Iterable[int] | None = None, case: str = "") -> float:
    """Generalised Dice of two label maps over their foreground ``labels`` (weights 1/|T_l|²)."""
    pred, truth = check_pair(pred, truth, case=case)
    labs = case_labels(pred, truth, labels)
    if not labs:
        return float("nan")
    inter = np.array([np.count_nonzero((pred == lab) & (truth == lab)) for lab in labs], dtype=float)
    vt = np.array([np.count_nonzero(truth == lab) for lab in labs], dtype=float)
    vp = np.array([np.count_nonzero(pred == lab) for lab in labs], dtype=float)
    if not vt.any():  # no truth label at all: worst case (NaN when the prediction is empty too)
        return float("nan") if not vp.any() else 0.0
    w = np.zeros_like(vt)
    w[vt > 0] = 1.0 / vt[vt > 0] ** 2
    w[vt == 0] = w.max()
    return float(2.0 * np.sum(w * inter) / np.sum(w * (vt + vp)))


def _default_distance(sp: np.ndarray) -> float:
    return 2.0 * float(sp.min())


def boundary_band(mask: np.ndarray, *, spacing: Sequence[float] | float | None = None, distance: float | None = None) -> np.ndarray:
    """Voxels of ``mask`` within ``distance`` mm of its contour (see the module conventions).

    Small bands (the default): ``mask AND NOT erosion(mask, ball)``, the ball = every voxel offset
    of physical length <= ``distance`` (exact, outside the image = background). Wide bands: the
    nearest background voxel of a mask voxel always has a mask voxel among its full-connectivity
    neighbours, so only those background voxels go into one KD-tree, queried by the mask voxels
    that have a background voxel inside the box of half-width ``distance`` per axis.
    """
    from scipy import ndimage

    mask = np.asarray(mask, dtype=bool)
    sp = check_spacing(spacing, mask.ndim)
    d = _default_distance(sp) if distance is None else float(distance)
    if not np.isfinite(d) or d < 0:
        raise PredictionError(f"boundary IoU distance must be a non-negative number of mm, found {distance}")
    out = np.zeros(mask.shape, dtype=bool)
    box = bounding_box(mask)
    if box is None:
        return out
    reach = d * (1 + _REL)
    k = np.floor(reach / sp).astype(int)
    if np.prod(2 * k + 1) <= _BALL_MAX:
        grids = np.meshgrid(*[np.arange(-n, n + 1) for n in k], indexing="ij")
        ball = sum((g * s) ** 2 for g, s in zip(grids, sp)) <= reach**2
        m = mask[box]
        out[box] = m & ~ndimage.binary_erosion(m, structure=ball, border_value=0)
        return out
    from scipy.spatial import cKDTree

    m = np.pad(mask[box], 1)  # the nearest background voxel lies within one voxel of the box
    deep = ndimage.minimum_filter(m, size=tuple(2 * k + 1), mode="constant", cval=False)
    cand = m & ~deep  # some background voxel within the per-axis box: maybe within d
    outer = ndimage.binary_dilation(m, structure=np.ones((3,) * m.ndim, bool)) & ~m
    band = np.zeros(m.shape, dtype=bool)
    if cand.any():
        tree = cKDTree(np.argwhere(outer) * sp, leafsize=32, balanced_tree=False, compact_nodes=False)
        band[cand] = tree.query(np.argwhere(cand) * sp, k=1, distance_upper_bound=reach * (1 + 1e-6))[0] <= reach
    out[box] = band[(slice(1, -1),) * m.ndim]
    return out


def boundary_iou(pred: np.ndarray, truth: np.ndarray, *, spacing: Sequence[float] | float | None = None,
                 distance: float | None = None, case: str = "") -> float:
    """Boundary IoU of two binary masks: IoU of their bands within ``distance`` mm of the contour."""
    pred, truth = check_pair(pred, truth, case=case)
    p, t = pred.astype(bool, copy=False), truth.astype(bool, copy=False)
    sp = check_spacing(spacing, p.ndim, case=case)
    box = bounding_box(p | t)
    if box is None:
        return float("nan")
    if not p.any() or not t.any():
        return 0.0
    bp = boundary_band(p[box], spacing=sp, distance=distance)
    bt = boundary_band(t[box], spacing=sp, distance=distance)
    return float(np.count_nonzero(bp & bt) / np.count_nonzero(bp | bt))


def directed_hausdorff(pred: np.ndarray, truth: np.ndarray, *, spacing: Sequence[float] | float | None = None,
                       percentile: float = 95.0) -> dict[str, float]:
    """Directed Hausdorff maxima and percentiles, both directions, of two binary masks."""
    return directed_from_distances(surface_distances(pred, truth, spacing=spacing), percentile=percentile)


def more_case_metrics(pred: np.ndarray, truth: np.ndarray, *, labels: Iterable[int] | None = None,
                      spacing: Sequence[float] | float | None = None, boundary_iou_distance: float | None = None,
                      surface: str = "voxel", tolerance: float | Mapping[int, float] = 1.0, percentile: float = 95.0,
                      extra: Iterable[str] = (), case: str = "") -> tuple[dict[int, dict[str, float]], dict[str, float]]:
    """``({label: {metric: v}}, {"gen_dice": v})`` for one case: ``boundary_iou`` always, the
    opt-in groups ``extra`` (``cldice``, ``panoptic``), and with ``surface="surfel"`` the surfel
    HD/HD95/ASSD/MASD/NSD and directed Hausdorff values (at ``tolerance`` mm, ``percentile``). In
    voxel mode those come from :func:`openmia.metrics.segmentation.segmentation_case_metrics`
    with ``directed=True``."""
    from openmia.metrics.lesions import panoptic_quality

    pred, truth = check_pair(pred, truth, case=case)
    sp = check_spacing(spacing, pred.ndim, case=case)
    check_surface(surface)
    extra = check_extra_metrics(extra)
    labs = case_labels(pred, truth, labels)
    per_label = {}
    for lab in labs:
        p, t = pred == lab, truth == lab
        m = {"boundary_iou": boundary_iou(p, t, spacing=sp, distance=boundary_iou_distance)}
        if surface == "surfel":
            from openmia.metrics.surfel import surfel_metrics

            tol = tolerance.get(lab) if isinstance(tolerance, Mapping) else tolerance
            if tol is None:
                raise PredictionError(f"no NSD tolerance given for label {lab} (have {sorted(tolerance)})")
            m.update(surfel_metrics(p, t, spacing=sp, tolerance=float(tol), percentile=percentile, case=case))
        if "cldice" in extra:
            m.update(cldice(p, t, case=case))
        if "panoptic" in extra:
            m.update(panoptic_quality(p, t, case=case))
        per_label[lab] = m
    return per_label, {"gen_dice": generalized_dice(pred, truth, labels=labs)}


def skeleton(mask: np.ndarray) -> np.ndarray:
    """Skeleton of a binary mask ``(H, W)`` / ``(D, H, W)`` (skimage; the mask itself if that vanishes)."""
    from skimage.morphology import skeletonize

    mask = np.asarray(mask, dtype=bool)
    sk = skeletonize(mask)
    return sk if sk.any() or not mask.any() else mask.copy()


def cldice(pred: np.ndarray, truth: np.ndarray, *, case: str = "") -> dict[str, float]:
    """clDice and its topology precision/sensitivity of two binary masks (module conventions)."""
    pred, truth = check_pair(pred, truth, case=case)
    p, t = pred.astype(bool, copy=False), truth.astype(bool, copy=False)
    nan = float("nan")
    box = bounding_box(p | t)
    if box is None:
        return {k: nan for k in CLDICE_METRICS}
    p, t = np.pad(p[box], 1), np.pad(t[box], 1)  # skeletons see the same background margin as uncropped
    sp_, st = skeleton(p), skeleton(t)
    tprec = float(np.count_nonzero(sp_ & t) / np.count_nonzero(sp_)) if p.any() else nan
    tsens = float(np.count_nonzero(st & p) / np.count_nonzero(st)) if t.any() else nan
    if not p.any() or not t.any():
        return {"cldice": 0.0, "cldice_tprec": tprec, "cldice_tsens": tsens}
    s = tprec + tsens
    return {"cldice": 2 * tprec * tsens / s if s > 0 else 0.0, "cldice_tprec": tprec, "cldice_tsens": tsens}


def check_extra_metrics(extra: Iterable[str]) -> tuple[str, ...]:
    """Validate opt-in metric group names (``cldice``, ``panoptic``)."""
    extra = tuple(dict.fromkeys(str(e).strip() for e in extra if str(e).strip()))
    bad = [e for e in extra if e not in EXTRA_METRICS]
    if bad:
        raise PredictionError(f"--extra-metrics: unknown metric group(s) {bad}; choose from {', '.join(EXTRA_METRICS)}")
    return extra


def check_surface(surface: str) -> str:
    """Validate the surface mode (``voxel`` or ``surfel``)."""
    from openmia.metrics.surfel import SURFACE_MODES

    if surface not in SURFACE_MODES:
        raise PredictionError(f"--surface: expected one of {', '.join(SURFACE_MODES)}, found {surface!r}")
    return surface


def metric_conventions(surface: str, extra: Iterable[str]) -> dict[str, str]:
    """summary.json ``conventions`` entries of the surface mode and the opt-in groups (overriding
    the voxel-mode boundary entries in surfel mode)."""
    out: dict[str, str] = {"surface": surface}
    if surface == "surfel":
        out.update({
            "boundary": "surface elements: cells of the grid between voxel centres (mask padded with background) whose "
                        "corners are mixed; measure = length (2D marching squares) / area (3D Lorensen-Cline marching "
                        "cubes) of the contour piece in the cell, in mm (DeepMind surface-distance, MONAI use_subvoxels)",
            "hd95": "max of the two directed 95th weighted percentiles (smallest distance whose cumulative element "
                    "measure reaches 95 %, no interpolation; DeepMind compute_robust_hausdorff), mm",
            "assd": "element-measure-weighted mean of all distances of both directions pooled",
            "masd": "mean of the two directed measure-weighted means (DeepMind compute_average_surface_distance)",
            "nsd": "measure of the elements within the tolerance, both directions, over the total measure of both "
                   "surfaces (DeepMind compute_surface_dice_at_tolerance, MONAI compute_surface_dice use_subvoxels=True)",
        })
    for e in extra:
        out[e] = {
            "cldice": "clDice = harmonic mean of tprec = |skel(P) & T| / |skel(P)| and tsens = |skel(T) & P| / |skel(T)| "
                      "(Shit 2021; skimage skeletonize, voxel counts); both empty NaN, one empty 0",
            "panoptic": "lesions = 26/8-connected components; match IoU > 0.5 (unique); PQ = sum matched IoU / "
                        "(TP + FP/2 + FN/2), SQ = mean matched IoU (0 without a match), RQ = lesion F1; no lesion in "
                        "either map: NaN (Kirillov 2019)",
        }[e]
    return out


def apply_empty_truth(per_label: Mapping[int, dict[str, float]], case_values: dict[str, float], truth_labels: set[int],
                      policy: str) -> list[int]:
    """Apply the empty-truth ``policy`` in place; returns the labels whose truth is empty in the case.

    ``nan``: every value of such a label is NaN, and the case metrics are NaN when no label has a truth.
    """
    if policy not in EMPTY_TRUTH_POLICIES:
        raise PredictionError(f"empty-truth policy must be one of {', '.join(EMPTY_TRUTH_POLICIES)}, found {policy!r}")
    empty = [lab for lab in per_label if lab not in truth_labels]
    if policy == "nan":
        for lab in empty:
            per_label[lab].update({k: float("nan") for k in per_label[lab]})
        if not set(per_label) & truth_labels:
            case_values.update({k: float("nan") for k in case_values})
    return empty
