"""Surface distances on surface elements ("surfels"), DeepMind ``surface-distance`` conventions.

``--surface surfel`` of the segmentation evaluator. The voxel mode of
:mod:`openmia.metrics.segmentation` treats every boundary voxel as one point of weight 1; here the
surface is the marching-squares contour (2D) / marching-cubes surface (3D) of the mask:

- The mask is padded with one background voxel on every side (outside = background). Every 2×2
  (2D) / 2×2×2 (3D) block of voxel centres is one cell of the sub-voxel grid (cell corners at the
  voxel centres, so the grid has n + 1 cells per axis). A cell whose corners are neither all
  inside nor all outside holds a surface element, placed at the cell centre.
- Its measure (length in 2D, area in 3D, mm / mm²) is that of the piece of the iso-0.5 contour /
  surface inside the cell, vertices at the edge midpoints, scaled by the spacing: 2D marching
  squares (a corner cut = half a cell diagonal, a straight cut = one cell side, a saddle = two
  corner cuts); 3D the original Lorensen-Cline 15 cases with complementary symmetry (a cell
  with more than four inside corners takes the surface of its complement). The tables are built
  here with ``skimage.measure`` (``find_contours``, ``marching_cubes(method="lorensen")`` on the
  minority corners); they equal DeepMind's ``lookup_tables`` entry by entry (test).
- Distances: Euclidean (mm) from each element of one mask to the nearest element of the other.
  NSD = (measure of the elements within the tolerance, both directions) / (total measure of
  both surfaces); ASSD = measure-weighted mean of all distances of both directions pooled; MASD =
  mean of the two directed weighted means (DeepMind ``compute_average_surface_distance``); HD =
  the largest distance; HD95 = max of the two directed weighted percentiles, each the smallest
  distance whose cumulative measure fraction reaches 95 % (DeepMind ``compute_robust_hausdorff``:
  no interpolation). NSD equals MONAI ``compute_surface_dice(use_subvoxels=True)``.
- Empty masks as in voxel mode: both empty NaN; exactly one empty NSD 0, distances = the image
  diagonal.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Sequence

import numpy as np

from openmia.errors import PredictionError
from openmia.metrics.segmentation import (
    BOUNDARY_METRICS,
    DIRECTED_METRICS,
    _diagonal,
    _directed,
    bounding_box,
    check_pair,
    check_spacing,
)

SURFACE_MODES = ("voxel", "surfel")


@lru_cache(maxsize=2)
def _unit_pieces(ndim: int) -> tuple[np.ndarray, ...]:
    """Per neighbour code, the contour segments ``(k, 2, 2)`` / triangles ``(k, 3, 3)`` in a unit cell.

    Code bit ``b`` = corner ``np.unravel_index(b, (2,) * ndim)`` of the cell is inside.
    """
    from skimage import measure

    n = 2**ndim  # corners of a cell
    out = []
    for code in range(2**n):
        bits = np.array([(code >> b) & 1 for b in range(n)], dtype=float)
        if bits.sum() in (0, n):  # no surface in a uniform cell
            out.append(np.zeros((0, ndim, ndim)))
            continue
        if ndim == 2:
            # each contour is a polyline of edge midpoints; a saddle cell gives two one-segment contours
            segs = [np.stack([c[:-1], c[1:]], axis=1) for c in measure.find_contours(bits.reshape(2, 2), 0.5)]
            out.append(np.concatenate(segs))
        else:
            # the Lorensen-Cline cases are complement-symmetric: triangulate the minority corners
            cube = (bits if bits.sum() <= n // 2 else 1.0 - bits).reshape(2, 2, 2)
            verts, faces, _, _ = measure.marching_cubes(cube, 0.5, method="lorensen")
            out.append(verts[faces])
    return tuple(out)


@lru_cache(maxsize=2)
def _stacked_pieces(ndim: int) -> tuple[np.ndarray, np.ndarray]:
    """All pieces of :func:`_unit_pieces` in one array, and the code of each."""
    pieces = _unit_pieces(ndim)
    return np.concatenate(pieces), np.repeat(np.arange(len(pieces)), [len(p) for p in pieces])


@lru_cache(maxsize=64)
def _measure_table(spacing: tuple[float, ...]) -> np.ndarray:
    sp = np.asarray(spacing, dtype=float)
    pieces, codes = _stacked_pieces(len(sp))
    p = pieces * sp  # vertices in mm
    if len(sp) == 2:
        size = np.linalg.norm(p[:, 1] - p[:, 0], axis=1)
    else:
        size = 0.5 * np.linalg.norm(np.cross(p[:, 1] - p[:, 0], p[:, 2] - p[:, 0]), axis=1)
    return np.bincount(codes, weights=size, minlength=2 ** (2 ** len(sp)))


def element_measure_table(spacing: Sequence[float]) -> np.ndarray:
    """Length (2D, 16 codes) or area (3D, 256 codes) of the surface piece of each neighbour code, in mm / mm²."""
    sp = check_spacing(spacing, len(spacing))
    if sp.size not in (2, 3):
        raise PredictionError(f"surfel tables exist for 2D and 3D, found spacing {list(sp)}")
    table = _measure_table(tuple(float(s) for s in sp))
    table.flags.writeable = False  # shared through the cache
    return table


def neighbour_codes(mask: np.ndarray) -> np.ndarray:
    """Neighbour code of every cell of the sub-voxel grid of a binary mask ``(n_0, ..., n_k)``.

    Returns ``(n_0 + 1, ..., n_k + 1)`` uint8 codes (outside the mask = background); cell ``i``
    has the voxel centres ``i - 1`` and ``i`` per axis as corners.
    """
    m = np.pad(np.asarray(mask, dtype=np.uint8), 1)
    shape = tuple(s - 1 for s in m.shape)
    codes = np.zeros(shape, dtype=np.uint8)
    for b, corner in enumerate(np.ndindex(*(2,) * m.ndim)):
        codes |= m[tuple(slice(c, c + s) for c, s in zip(corner, shape))] << b
    return codes


@dataclass(frozen=True)
class SurfelDistances:
    """Directed surface-element distances (mm) and element measures (mm or mm²) of one mask pair.

    ``pred_to_truth`` / ``pred_measure`` ``(n_pred_elements,)``; ``truth_to_pred`` /
    ``truth_measure`` ``(n_truth_elements,)``; ``diagonal`` = the image diagonal (worst case).
    """

    pred_to_truth: np.ndarray
    truth_to_pred: np.ndarray
    pred_measure: np.ndarray
    truth_measure: np.ndarray
    diagonal: float


def surfel_distances(pred: np.ndarray, truth: np.ndarray, *, spacing: Sequence[float] | float | None = None,
                     case: str = "") -> SurfelDistances:
    """Surface elements of two binary masks ``(H, W)`` / ``(D, H, W)`` and their distances."""
    pred, truth = check_pair(pred, truth, case=case)
    pred, truth = pred.astype(bool, copy=False), truth.astype(bool, copy=False)
    sp = check_spacing(spacing, pred.ndim, case=case)
    diag = _diagonal(pred.shape, sp)
    box = bounding_box(pred | truth)
    empty = np.zeros(0)
    if box is None:
        return SurfelDistances(empty, empty, empty, empty, diag)
    table = element_measure_table(sp)
    full = len(table) - 1
    # exact: cells outside the union's box (plus its one-cell rim, added by the padding) are uniform
    cp, ct = neighbour_codes(pred[box]), neighbour_codes(truth[box])
    ep, et = (cp != 0) & (cp != full), (ct != 0) & (ct != full)
    mp, mt = table[cp[ep]], table[ct[et]]  # argwhere (C) order, as the distances below
    if not ep.any() or not et.any():
        return SurfelDistances(np.full(mp.size, np.inf), np.full(mt.size, np.inf), mp, mt, diag)
    shared = ep & et  # elements in the same cell are at distance 0
    return SurfelDistances(_directed(ep, et, shared, sp), _directed(et, ep, shared, sp), mp, mt, diag)


def weighted_percentile(distances: np.ndarray, weights: np.ndarray, percentile: float) -> float:
    """The smallest distance whose cumulative weight fraction reaches ``percentile`` % (no interpolation)."""
    order = np.argsort(distances, kind="stable")
    d, w = distances[order], weights[order]
    cum = np.cumsum(w) / w.sum()
    return float(d[min(int(np.searchsorted(cum, percentile / 100.0)), d.size - 1)])


def surfel_metrics_from_distances(sd: SurfelDistances, *, tolerance: float = 1.0, percentile: float = 95.0) -> dict[str, float]:
    """HD, HD95 (``percentile``), ASSD, MASD, NSD and the directed Hausdorff values (module conventions)."""
    if not 0 <= percentile <= 100:
        raise PredictionError(f"percentile must be in [0, 100], found {percentile}")
    if not np.isfinite(tolerance) or tolerance < 0:
        raise PredictionError(f"NSD tolerance must be a non-negative number of mm, found {tolerance}")
    keys = (*BOUNDARY_METRICS, *DIRECTED_METRICS)
    a, b, wa, wb = sd.pred_to_truth, sd.truth_to_pred, sd.pred_measure, sd.truth_measure
    if a.size == 0 and b.size == 0:
        return {k: float("nan") for k in keys}
    if a.size == 0 or b.size == 0:  # exactly one empty: worst case
        return {**{k: sd.diagonal for k in keys}, "nsd": 0.0}
    pa, pb = weighted_percentile(a, wa, percentile), weighted_percentile(b, wb, percentile)
    total = wa.sum() + wb.sum()
    return {
        "hd": float(max(a.max(), b.max())),
        "hd95": max(pa, pb),
        "assd": float((wa @ a + wb @ b) / total),
        "masd": float((wa @ a / wa.sum() + wb @ b / wb.sum()) / 2),
        "nsd": float((wa[a <= tolerance].sum() + wb[b <= tolerance].sum()) / total),
        "hd_pred_to_truth": float(a.max()), "hd_truth_to_pred": float(b.max()),
        "hd95_pred_to_truth": pa, "hd95_truth_to_pred": pb,
    }


def surfel_metrics(pred: np.ndarray, truth: np.ndarray, *, spacing: Sequence[float] | float | None = None,
                   tolerance: float = 1.0, percentile: float = 95.0, case: str = "") -> dict[str, float]:
    """Surfel HD/HD95/ASSD/MASD/NSD and directed Hausdorff values of two binary masks."""
    return surfel_metrics_from_distances(surfel_distances(pred, truth, spacing=spacing, case=case),
                                         tolerance=tolerance, percentile=percentile)
