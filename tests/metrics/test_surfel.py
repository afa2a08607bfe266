"""Surfel surface distances (openmia.metrics.surfel): hand-computed cases and cross-checks against
DeepMind's ``surface-distance`` package (``surface_distance``, PyPI ``surface-distance`` 0.1) and
MONAI ``compute_surface_dice(use_subvoxels=True)`` / ``get_code_to_measure_table``."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from scipy import ndimage

from openmia.errors import PredictionError
from openmia.metrics.surfel import (
    element_measure_table,
    neighbour_codes,
    surfel_distances,
    surfel_metrics,
    weighted_percentile,
)

# surface_distance 0.1 imports distance_transform_edt from a deprecated scipy namespace
pytestmark = pytest.mark.filterwarnings("ignore:Please import:DeprecationWarning")
SPACINGS_3D = [(1.0, 1.0, 1.0), (0.7, 1.3, 2.1), (3.0, 0.5, 0.9)]


def _blobs(shape, seed, sigma=2.0):
    rng = np.random.default_rng(seed)
    return [ndimage.gaussian_filter(rng.random(shape), sigma) > 0.5 for _ in range(2)]


# ----------------------------------------------------------------------------- hand-computed


def test_square_contour_length_by_hand():
    # a k x k square of voxel centres: the iso-0.5 contour runs through the edge midpoints, so its
    # straight sides have (k - 1) cell sides each and its 4 corners are cut by half cell diagonals:
    # length = 2 (k - 1) (s0 + s1) + 4 * 0.5 * sqrt(s0^2 + s1^2)
    s0, s1 = 0.8, 1.7
    for k in (1, 3, 5):
        m = np.zeros((9, 9), bool)
        m[2:2 + k, 2:2 + k] = True
        sd = surfel_distances(m, m, spacing=(s0, s1))
        assert sd.truth_measure.sum() == pytest.approx(2 * (k - 1) * (s0 + s1) + 2 * math.hypot(s0, s1))
        assert sd.truth_measure.size == 4 * k  # 4 corner cells + 4 (k - 1) side cells
        assert np.all(sd.truth_to_pred == 0) and surfel_metrics(m, m, spacing=(s0, s1))["nsd"] == 1.0


def test_single_voxel_area_by_hand():
    # one voxel: 8 corner cells, each a triangle with vertices at (s0/2, 0, 0), (0, s1/2, 0), (0, 0, s2/2):
    # area = |cross| / 2 = sqrt((s1 s2)^2 + (s0 s2)^2 + (s0 s1)^2) / 8, total = 8 x that
    for s0, s1, s2 in SPACINGS_3D:
        m = np.zeros((3, 3, 3), bool)
        m[1, 1, 1] = True
        sd = surfel_distances(m, m, spacing=(s0, s1, s2))
        assert sd.truth_measure.size == 8
        assert sd.truth_measure.sum() == pytest.approx(math.sqrt((s1 * s2) ** 2 + (s0 * s2) ** 2 + (s0 * s1) ** 2))
    # a 2 x 3 face of a block (unit spacing): the flat part of the surface has area (2-1)(3-1) inside cells
    block = np.zeros((6, 6, 6), bool)
    block[1:4, 1:4, 1:4] = True
    table = element_measure_table((1.0, 1.0, 1.0))
    assert table[0] == 0 and table[255] == 0
    codes = neighbour_codes(block)
    flat = table[codes[codes != 0]][np.isclose(table[codes[codes != 0]], 1.0)]
    assert flat.size == 6 * 4  # each of the 6 faces: (3 - 1)^2 cells whose surface piece is a unit square


def test_shifted_square_by_hand():
    # truth: 3x3 square, columns 0..2; prediction: the same square one column over (spacing s1).
    # Cells (r, c) have the voxel centres r-1..r, c-1..c as corners. Truth elements and their distance
    # to the nearest prediction element:
    #   4 corners (each half diagonal h): (0,3),(3,3) shared -> 0; (0,0),(3,0) -> s1
    #   top/bottom sides (s1 each): (0,1),(0,2),(3,1),(3,2) shared -> 0
    #   left side (s0 each): (1,0),(2,0) -> s1;  right side (s0 each): (1,3),(2,3) -> min(s0, s1)
    # and the prediction mirrors this. So with tolerance < min(s0, s1):
    #   NSD = (4 s1 + 2h) / (4 s0 + 4 s1 + 4h) and ASSD = (2h s1 + 2 s0 s1 + 2 s0 min) / (4 s0 + 4 s1 + 4h)
    s0, s1 = 0.8, 1.7
    h = 0.5 * math.hypot(s0, s1)
    t = np.zeros((7, 8), bool)
    t[2:5, 2:5] = True
    p = np.roll(t, 1, axis=1)
    m = surfel_metrics(p, t, spacing=(s0, s1), tolerance=0.5)
    total = 4 * s0 + 4 * s1 + 4 * h
    assert m["nsd"] == pytest.approx((4 * s1 + 2 * h) / total)
    assert m["assd"] == pytest.approx((2 * h * s1 + 2 * s0 * s1 + 2 * s0 * min(s0, s1)) / total)
    assert m["masd"] == pytest.approx(m["assd"])  # symmetric case: both directed means are equal
    assert m["hd"] == pytest.approx(s1) and m["hd_pred_to_truth"] == pytest.approx(s1)
    # 95th weighted percentile: the zero distances hold (4 s1 + 2h) / total = 63 % of the measure,
    # min(s0, s1) = s0 another 12 %: the 95 % point lies in the s1 group
    assert m["hd95"] == pytest.approx(s1)
    # (tolerance just above s1: the distance s1 comes out of the KD-tree as 1.7000000000000006)
    assert surfel_metrics(p, t, spacing=(s0, s1), tolerance=s1 + 1e-9)["nsd"] == pytest.approx(1.0)
    # a tolerance between s0 and s1 also accepts the right-side elements (distance s0)
    assert surfel_metrics(p, t, spacing=(s0, s1), tolerance=1.0)["nsd"] == pytest.approx((4 * s1 + 2 * h + 2 * s0) / total)


def test_weighted_percentile_by_hand():
    d, w = np.array([3.0, 1.0, 2.0]), np.array([1.0, 2.0, 1.0])  # sorted: 1 (50 %), 2 (75 %), 3 (100 %)
    assert weighted_percentile(d, w, 50) == 1.0
    assert weighted_percentile(d, w, 60) == 2.0
    assert weighted_percentile(d, w, 95) == 3.0
    assert weighted_percentile(d, w, 0) == 1.0


def test_empty_masks():
    z = np.zeros((5, 6), bool)
    one = z.copy()
    one[2, 2] = True
    assert all(math.isnan(v) for v in surfel_metrics(z, z).values())
    worst = surfel_metrics(one, z, spacing=(2.0, 1.0))
    assert worst["nsd"] == 0.0 and worst["hd95"] == pytest.approx(math.hypot(10.0, 6.0))
    assert worst["assd"] == worst["hd_truth_to_pred"] == pytest.approx(math.hypot(10.0, 6.0))


def test_bad_input():
    m = np.ones((4, 4), bool)
    with pytest.raises(PredictionError, match="spacing"):
        surfel_metrics(m, m, spacing=(1.0, -1.0))
    with pytest.raises(PredictionError, match="tolerance"):
        surfel_metrics(m, m, tolerance=-1)
    with pytest.raises(PredictionError, match="percentile"):
        surfel_metrics(m, m, percentile=101)
    with pytest.raises(PredictionError, match="shape"):
        surfel_metrics(m, np.ones((4, 5), bool))


# ----------------------------------------------------------------------------- cross-checks


def test_tables_equal_deepmind_and_monai():
    """Every neighbour code's length/area equals DeepMind's lookup tables and MONAI's (3 spacings)."""
    from monai.metrics.utils import ENCODING_KERNEL, get_code_to_measure_table

    lt = pytest.importorskip("surface_distance.lookup_tables")
    for sp in [(0.8, 1.7), (1.0, 1.0), *SPACINGS_3D]:
        nd = len(sp)
        ours = element_measure_table(sp)
        dm = (lt.create_table_neighbour_code_to_contour_length(sp) if nd == 2
              else lt.create_table_neighbour_code_to_surface_area(np.asarray(sp)))
        dm_kernel = np.array(lt.ENCODE_NEIGHBOURHOOD_2D_KERNEL if nd == 2 else lt.ENCODE_NEIGHBOURHOOD_3D_KERNEL)
        mon = get_code_to_measure_table(sp)[0].numpy()
        mon_kernel = np.array(ENCODING_KERNEL[nd])
        codes = np.arange(2 ** 2 ** nd)
        cells = (codes[:, None] >> np.arange(2 ** nd)) & 1  # our bit order: bit b = corner unravel(b) of the cell
        assert len(set(cells @ dm_kernel.ravel())) == len(codes) == len(set(cells @ mon_kernel.ravel()))
        np.testing.assert_allclose(ours, dm[cells @ dm_kernel.ravel()], rtol=0, atol=1e-9, err_msg=str(sp))
        np.testing.assert_allclose(ours, mon[cells @ mon_kernel.ravel()], rtol=1e-5, atol=1e-6, err_msg=str(sp))


@pytest.mark.parametrize("shape,spacing", [((30, 40), (0.8, 1.7)), ((20, 25, 18), (2.5, 0.7, 1.1))])
def test_metrics_match_deepmind_and_monai(shape, spacing):
    import torch
    from monai.metrics import compute_surface_dice

    sdm = pytest.importorskip("surface_distance")
    for seed in range(3):
        p, t = _blobs(shape, seed)
        for tol in (0.5, 1.5, 3.0):
            ours = surfel_metrics(p, t, spacing=spacing, tolerance=tol, percentile=95)
            d = sdm.compute_surface_distances(t, p, spacing)  # DeepMind: (gt, pred)
            assert ours["nsd"] == pytest.approx(sdm.compute_surface_dice_at_tolerance(d, tol), abs=1e-12)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                mon = compute_surface_dice(torch.tensor(p)[None, None].float(), torch.tensor(t)[None, None].float(), [tol],
                                           include_background=True, spacing=spacing, use_subvoxels=True).item()
            assert ours["nsd"] == pytest.approx(mon, abs=1e-6)  # MONAI: float32
        assert ours["hd"] == pytest.approx(sdm.compute_robust_hausdorff(d, 100), abs=1e-12)
        for q in (50, 95):
            dq = {"hd95": sdm.compute_robust_hausdorff(d, q)}
            assert surfel_metrics(p, t, spacing=spacing, percentile=q)["hd95"] == pytest.approx(dq["hd95"], abs=1e-12)
        gt_to_pred, pred_to_gt = sdm.compute_average_surface_distance(d)
        assert ours["masd"] == pytest.approx((gt_to_pred + pred_to_gt) / 2, abs=1e-12)
        wa, wb = d["surfel_areas_pred"], d["surfel_areas_gt"]
        pooled = (wa @ d["distances_pred_to_gt"] + wb @ d["distances_gt_to_pred"]) / (wa.sum() + wb.sum())
        assert ours["assd"] == pytest.approx(pooled, abs=1e-12)


def test_differs_from_voxel_mode():
    """The two conventions give different numbers on the same pair (why the mode is reported)."""
    from openmia.metrics.segmentation import boundary_metrics_from_distances, surface_distances

    p, t = _blobs((30, 40), 5)
    vox = boundary_metrics_from_distances(surface_distances(p, t, spacing=(0.8, 1.7)), tolerance=1.0)
    sur = surfel_metrics(p, t, spacing=(0.8, 1.7), tolerance=1.0)
    assert abs(vox["nsd"] - sur["nsd"]) > 1e-3
