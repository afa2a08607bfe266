"""Segmentation metrics: hand-computed values, DESIGN §4.2 edge cases, cross-checks against scipy's
exact distance transform and MONAI, and properties."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import ndimage

from openmia.errors import PredictionError
from openmia.metrics.segmentation import (
    boundary,
    hausdorff,
    lesion_metrics,
    overlap_metrics,
    segmentation_case_metrics,
    surface_distances,
)


def _squares(shift: int = 1) -> tuple[np.ndarray, np.ndarray]:
    truth = np.zeros((10, 10), dtype=np.uint8)
    truth[2:6, 2:6] = 1
    pred = np.zeros_like(truth)
    pred[2:6, 2 + shift : 6 + shift] = 1
    return pred, truth


def test_hand_computed_shifted_square():
    # truth = 4x4 square rows 2-5, cols 2-5; pred = the same square one column to the right.
    # overlap 4x3 = 12: Dice = 24/32 = 0.75, IoU = 12/20 = 0.6.
    # Each square has 16 - 4 interior = 12 boundary pixels. pred -> truth: the 6 pred boundary
    # pixels on truth's top/bottom rows (cols 3-5) and ... are at 0; (2,6), (5,6), (3,6), (4,6) are 1
    # column from truth's right edge, (3,3), (4,3) are 1 from truth's left edge: six 0s, six 1s.
    # The configuration is mirror-symmetric, so truth -> pred is the same.
    pred, truth = _squares()
    m = segmentation_case_metrics(pred, truth, tolerance=0.5)[1]
    assert m["dice"] == pytest.approx(0.75) and m["iou"] == pytest.approx(0.6)
    assert m["precision"] == pytest.approx(0.75) and m["recall"] == pytest.approx(0.75)
    assert m["vol_diff"] == 0 and m["rel_vol_diff"] == 0
    assert m["hd"] == 1 and m["hd95"] == 1
    assert m["assd"] == pytest.approx(12 / 24) and m["masd"] == pytest.approx(0.5)
    assert m["nsd"] == pytest.approx(0.5)  # only the twelve zeros are within 0.5
    assert segmentation_case_metrics(pred, truth, tolerance=1.0)[1]["nsd"] == 1.0


def test_hand_computed_anisotropic_spacing():
    # spacing (1, 3): a column step is 3 mm, a row step 1 mm. pred -> truth distances:
    # six 0s; (3,3) -> (2,3) = 1 mm; (4,3) -> (5,3) = 1 mm; (2,6), (5,6), (3,6), (4,6) -> 3 mm.
    # Sorted: [0]*6 + [1, 1, 3, 3, 3, 3]; the mirror direction is the same multiset.
    pred, truth = _squares()
    sd = surface_distances(pred, truth, spacing=(1, 3))
    assert sorted(sd.pred_to_truth) == [0] * 6 + [1, 1, 3, 3, 3, 3]
    m = segmentation_case_metrics(pred, truth, spacing=(1, 3), tolerance=1.0, percentile=50)[1]
    assert m["hd"] == 3
    # 50th percentile of the 12 values with linear interpolation: position 5.5 between 0 and 1
    assert m["hd95"] == pytest.approx(0.5)
    assert m["assd"] == pytest.approx(28 / 24) and m["masd"] == pytest.approx(14 / 12)
    assert m["nsd"] == pytest.approx(16 / 24)
    assert m["vol_diff"] == 0 and overlap_metrics(pred, truth, spacing=(1, 3))["dice"] == pytest.approx(0.75)
    assert segmentation_case_metrics(pred, truth, spacing=(1, 3), percentile=95)[1]["hd95"] == pytest.approx(3)


def test_hand_computed_3d_cube():
    # a 3x3x3 cube has 27 - 1 = 26 boundary voxels; a 1-voxel shift along z, spacing 2 mm on z:
    # overlap 18 -> Dice = 36/54 = 2/3; the largest distance is one z step = 2 mm.
    truth = np.zeros((7, 7, 7), np.uint8)
    truth[2:5, 2:5, 2:5] = 1
    pred = np.roll(truth, 1, axis=0)
    assert boundary(truth).sum() == 26
    m = segmentation_case_metrics(pred, truth, spacing=(2, 1, 1))[1]
    assert m["dice"] == pytest.approx(2 / 3) and m["hd"] == pytest.approx(2.0)
    assert m["vol_diff"] == 0


def test_empty_conventions():
    z = np.zeros((10, 20), np.uint8)
    one = z.copy()
    one[3, 4] = 1
    both = segmentation_case_metrics(z, z, labels=[1])[1]
    assert all(math.isnan(v) for k, v in both.items()), both
    diag = math.hypot(10 * 2.0, 20 * 0.5)
    miss = segmentation_case_metrics(z, one, spacing=(2.0, 0.5))[1]  # empty prediction
    assert miss["dice"] == 0 and miss["iou"] == 0 and miss["nsd"] == 0 and miss["recall"] == 0
    assert math.isnan(miss["precision"])
    assert miss["hd"] == miss["hd95"] == miss["assd"] == miss["masd"] == pytest.approx(diag)
    ghost = segmentation_case_metrics(one, z, spacing=(2.0, 0.5))[1]  # empty truth
    assert ghost["dice"] == 0 and ghost["precision"] == 0 and math.isnan(ghost["recall"])
    assert math.isnan(ghost["rel_vol_diff"]) and ghost["vol_diff"] == pytest.approx(1.0)
    assert ghost["hd95"] == pytest.approx(diag)


def test_single_voxel():
    a = np.zeros((5, 5, 5), np.uint8)
    a[2, 2, 2] = 1
    b = np.zeros_like(a)
    b[2, 2, 4] = 1
    m = segmentation_case_metrics(a, a)[1]
    assert m["dice"] == 1 and m["hd"] == 0 and m["nsd"] == 1
    m = segmentation_case_metrics(a, b, spacing=(1, 1, 0.7))[1]
    assert m["dice"] == 0 and m["hd"] == pytest.approx(1.4) and m["hd95"] == pytest.approx(1.4)


def test_multiclass_and_per_class_tolerance():
    truth = np.zeros((12, 12), np.uint8)
    truth[1:5, 1:5] = 1
    truth[6:11, 6:11] = 2
    pred = truth.copy()
    pred[6:11, 7:12] = 2  # class 2 shifted by one column (and class 1 perfect)
    pred[6:11, 6] = 0
    out = segmentation_case_metrics(pred, truth, tolerance={1: 0.0, 2: 0.5})
    assert set(out) == {1, 2}
    assert out[1]["dice"] == 1 and out[1]["hd"] == 0 and out[1]["nsd"] == 1
    assert out[2]["dice"] == pytest.approx(2 * 20 / 50) and out[2]["nsd"] < 1
    with pytest.raises(PredictionError, match="no NSD tolerance given for label 2"):
        segmentation_case_metrics(pred, truth, tolerance={1: 1.0})
    # a requested class present in neither map is NaN
    assert math.isnan(segmentation_case_metrics(pred, truth, labels=[3])[3]["dice"])


def _naive_distances(pred, truth, spacing):
    """Independent reference: scipy's exact Euclidean distance transform of the full (uncropped)
    inverted boundary, read at the other boundary (the dense-EDT path MONAI used before 1.6)."""
    bp = pred ^ ndimage.binary_erosion(pred, border_value=0)
    bt = truth ^ ndimage.binary_erosion(truth, border_value=0)
    d_pt = ndimage.distance_transform_edt(~bt, sampling=spacing)[bp]
    d_tp = ndimage.distance_transform_edt(~bp, sampling=spacing)[bt]
    return d_pt, d_tp


@pytest.mark.parametrize("seed", range(4))
def test_matches_dense_distance_transform(seed):
    rng = np.random.default_rng(seed)
    shape = (24, 30, 18)
    spacing = (2.5, 0.7, 1.1)
    noise = ndimage.gaussian_filter(rng.standard_normal(shape), 2)
    noise /= noise.std()
    truth = noise > 0.8  # several blobs, some touching the image border
    pred = ndimage.gaussian_filter(noise + 0.5 * rng.standard_normal(shape), 1) > 0.7
    assert truth.any() and pred.any() and truth[0].any()  # blobs, one touching the border
    sd = surface_distances(pred, truth, spacing=spacing)
    d_pt, d_tp = _naive_distances(pred, truth, spacing)
    np.testing.assert_allclose(np.sort(sd.pred_to_truth), np.sort(d_pt), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(np.sort(sd.truth_to_pred), np.sort(d_tp), rtol=1e-12, atol=1e-12)


def test_cross_check_monai():
    """Source: MONAI 1.6 compute_hausdorff_distance / compute_average_surface_distance /
    compute_surface_dice (float32 results, hence rtol 1e-6)."""
    torch = pytest.importorskip("torch")
    monai_metrics = pytest.importorskip("monai.metrics")
    rng = np.random.default_rng(7)
    shape, spacing = (40, 36, 28), (1.5, 0.8, 0.8)
    field = ndimage.gaussian_filter(rng.standard_normal(shape), 3)
    field /= field.std()
    truth = np.digitize(field, [0.3, 1.2]).astype(np.uint8)  # labels 0, 1, 2
    pred = np.digitize(ndimage.gaussian_filter(field + 0.3 * rng.standard_normal(shape), 1), [0.35, 1.1]).astype(np.uint8)
    assert all((truth == k).sum() > 50 and (pred == k).sum() > 50 for k in (1, 2))
    ours = segmentation_case_metrics(pred, truth, spacing=spacing, tolerance={1: 1.0, 2: 2.0})

    def onehot(a):
        return torch.as_tensor(np.stack([a == k for k in range(3)])[None].astype(np.float32))

    P, T = onehot(pred), onehot(truth)
    hd = monai_metrics.compute_hausdorff_distance(P, T, include_background=False, spacing=spacing)[0]
    hd95 = monai_metrics.compute_hausdorff_distance(P, T, include_background=False, percentile=95, spacing=spacing)[0]
    asd = monai_metrics.compute_average_surface_distance(P, T, include_background=False, symmetric=True, spacing=spacing)[0]
    nsd = monai_metrics.compute_surface_dice(P, T, [1.0, 2.0], include_background=False, spacing=spacing)[0]
    dice = monai_metrics.compute_dice(P, T, include_background=False)[0]
    for i, lab in enumerate((1, 2)):
        assert ours[lab]["hd"] == pytest.approx(float(hd[i]), rel=1e-6)
        assert ours[lab]["hd95"] == pytest.approx(float(hd95[i]), rel=1e-6)
        assert ours[lab]["assd"] == pytest.approx(float(asd[i]), rel=1e-6)
        assert ours[lab]["nsd"] == pytest.approx(float(nsd[i]), rel=1e-6)
        assert ours[lab]["dice"] == pytest.approx(float(dice[i]), rel=1e-6)


masks = st.lists(st.booleans(), min_size=64, max_size=64).map(lambda v: np.array(v, dtype=bool).reshape(8, 8))


@settings(max_examples=60, deadline=None)
@given(masks, masks)
def test_symmetries(a, b):
    ma = segmentation_case_metrics(a.astype(np.uint8), b.astype(np.uint8), labels=[1], spacing=(1.0, 2.0))[1]
    mb = segmentation_case_metrics(b.astype(np.uint8), a.astype(np.uint8), labels=[1], spacing=(1.0, 2.0))[1]
    for k in ("dice", "iou", "hd", "hd95", "assd", "masd", "nsd"):
        assert ma[k] == pytest.approx(mb[k], nan_ok=True), k
    assert ma["precision"] == pytest.approx(mb["recall"], nan_ok=True)
    if a.any() or b.any():
        assert 0 <= ma["dice"] <= 1 and ma["hd95"] <= ma["hd"] + 1e-12


def test_lesion_metrics_hand_computed():
    # truth: lesion A (2x2 at rows 1-2, cols 1-2) and lesion B (single pixel at (7, 7));
    # pred: a 2x3 block rows 1-2, cols 1-3 (touches A) and a false-positive pixel at (5, 0).
    # TP = 1 (A), FN = 1 (B), FP = 1. F1 = 2/(2+1+1) = 0.5.
    # Dice(A, its component) = 2*4/(4+6) = 0.8; lesion Dice = (0.8 + 0) / (2 lesions + 1 FP) = 0.8/3.
    truth = np.zeros((9, 9), bool)
    truth[1:3, 1:3] = True
    truth[7, 7] = True
    pred = np.zeros_like(truth)
    pred[1:3, 1:4] = True
    pred[5, 0] = True
    m = lesion_metrics(pred, truth)
    assert (m["lesion_tp"], m["lesion_fp"], m["lesion_fn"]) == (1, 1, 1)
    assert m["lesion_f1"] == pytest.approx(0.5) and m["lesion_dice"] == pytest.approx(0.8 / 3)
    # min_size=2 drops lesion B and the FP pixel: one perfect detection, Dice 0.8
    m2 = lesion_metrics(pred, truth, min_size=2)
    assert (m2["lesion_tp"], m2["lesion_fp"], m2["lesion_fn"]) == (1, 0, 0) and m2["lesion_dice"] == pytest.approx(0.8)
    # diagonal neighbours are one lesion (full connectivity)
    diag = np.eye(4, dtype=bool)
    assert lesion_metrics(diag, diag)["lesion_tp"] == 1
    assert math.isnan(lesion_metrics(np.zeros((4, 4), bool), np.zeros((4, 4), bool))["lesion_f1"])


def test_bad_inputs_name_the_case():
    a = np.zeros((4, 4), np.uint8)
    with pytest.raises(PredictionError, match="case 'c7'.*shape"):
        segmentation_case_metrics(a, np.zeros((4, 5), np.uint8), case="c7")
    with pytest.raises(PredictionError, match="case 'c7'.*spacing"):
        segmentation_case_metrics(a, a, spacing=(1, 0), case="c7")
    with pytest.raises(PredictionError, match="case 'c7'.*NaN"):
        segmentation_case_metrics(np.full((4, 4), np.nan), a, case="c7")
    with pytest.raises(PredictionError, match="case 'c7'.*non-integer"):
        segmentation_case_metrics(np.full((4, 4), 0.5), a, case="c7")
    with pytest.raises(PredictionError, match="2D or 3D"):
        segmentation_case_metrics(np.zeros(4), np.zeros(4))
    assert hausdorff(a, a) != hausdorff(a, a)  # NaN for two empty masks
