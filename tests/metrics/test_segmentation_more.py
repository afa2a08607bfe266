"""Generalised Dice, boundary IoU, directed Hausdorff and the empty-truth policy (issue 22 §2):
hand-computed values and cross-checks against MONAI, scipy's distance transform and
scipy.spatial.distance.directed_hausdorff."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import ndimage
from scipy.spatial.distance import directed_hausdorff as scipy_directed_hausdorff

from openmia.errors import PredictionError
from openmia.evaluation.segmentation import evaluate_segmentation
from openmia.metrics.segmentation import boundary, segmentation_case_metrics
from openmia.metrics.segmentation_more import (
    boundary_band,
    boundary_iou,
    directed_hausdorff,
    generalized_dice,
)


def _random_maps(seed: int, shape=(30, 26, 20)):
    rng = np.random.default_rng(seed)
    field = ndimage.gaussian_filter(rng.standard_normal(shape), 3)
    field /= field.std()
    truth = np.digitize(field, [0.3, 1.2]).astype(np.uint8)  # labels 0, 1, 2
    pred = np.digitize(ndimage.gaussian_filter(field + 0.3 * rng.standard_normal(shape), 1), [0.35, 1.1]).astype(np.uint8)
    return pred, truth


# ----------------------------------------------------------------------------- generalised Dice


def test_generalized_dice_hand_computed():
    # label 1: truth 4 px, pred 2 px inside it (overlap 2); label 2: truth 2 px, pred 2 px, overlap 1.
    # w1 = 1/16, w2 = 1/4. GDS = 2 (2/16 + 1/4) / ((4+2)/16 + (2+2)/4) = 0.75 / 1.375 = 6/11.
    truth = np.zeros((4, 6), np.uint8)
    truth[0, 0:4] = 1
    truth[2, 0:2] = 2
    pred = np.zeros_like(truth)
    pred[0, 0:2] = 1
    pred[2, 1:3] = 2
    assert generalized_dice(pred, truth) == pytest.approx(6 / 11)
    assert generalized_dice(truth, truth) == 1.0
    # a label only in the prediction gets the largest weight of the others (1/4 here):
    # label 3: 1 pred px, no truth -> denominator += 1/4 * 1.  GDS = 0.75 / 1.625
    pred3 = pred.copy()
    pred3[3, 5] = 3
    assert generalized_dice(pred3, truth) == pytest.approx(0.75 / 1.625)
    z = np.zeros_like(truth)
    assert generalized_dice(pred, z) == 0.0 and math.isnan(generalized_dice(z, z))


def test_generalized_dice_cross_check_monai():
    """MONAI 1.6 compute_generalized_dice(include_background=False, weight_type="square",
    sum_over_classes=True): weights 1/|T_l|², an empty truth class gets the largest weight."""
    torch = pytest.importorskip("torch")
    monai_metrics = pytest.importorskip("monai.metrics")
    pred, truth = _random_maps(3)
    pred_fp = pred.copy()
    pred_fp[:3, :3, :3] = 3  # a class absent from the truth: weight = the largest other weight

    def onehot(a):
        return torch.as_tensor(np.stack([a == k for k in range(4)])[None].astype(np.float32))

    for p in (pred, pred_fp):
        ref = monai_metrics.compute_generalized_dice(onehot(p), onehot(truth), include_background=False,
                                                     weight_type="square", sum_over_classes=True)
        assert generalized_dice(p, truth, labels=[1, 2, 3]) == pytest.approx(float(ref.ravel()[0]), rel=1e-5)


# ----------------------------------------------------------------------------- boundary IoU


def test_boundary_iou_hand_computed():
    # 6x6 square (rows 2-7, cols 2-7) in a 12x12 image; d = 2 px keeps its two outer rings:
    # 36 - 4 (inner 2x2) = 32 band pixels. Pred = the same square shifted one column right:
    # its band is cols 3-8 minus its inner 2x2 (rows 4-5, cols 5-6).
    truth = np.zeros((12, 12), np.uint8)
    truth[2:8, 2:8] = 1
    pred = np.roll(truth, 1, axis=1)
    bt = boundary_band(truth.astype(bool))
    assert bt.sum() == 32 and not bt[4:6, 4:6].any()
    bp = np.zeros_like(bt)
    bp[2:8, 3:9] = True
    bp[4:6, 5:7] = False
    # intersection: cols 3-7 of the rows 2-7 (30 px) minus truth inner (rows 4-5, cols 4-5) and pred
    # inner (rows 4-5, cols 5-6): union of the two inner blocks in cols 3-7 = rows 4-5 x cols 4-6 = 6 -> 24.
    # union = 32 + 32 - 24 = 40.  Boundary IoU = 24 / 40 = 0.6 (mask IoU = 30/42).
    assert np.count_nonzero(bp & bt) == 24
    assert boundary_iou(pred, truth) == pytest.approx(0.6)
    # d = 1 px: only the contour rings (= the boundary of metrics.segmentation), 20 px each; they share
    # rows 2 and 7 at cols 3-7 = 10 px (truth's col 7 and pred's col 3 are inside the other ring's
    # interior). IoU = 10 / (20 + 20 - 10) = 1/3.
    assert np.array_equal(boundary_band(truth.astype(bool), distance=1.0), boundary(truth))
    assert boundary_iou(pred, truth, distance=1.0) == pytest.approx(1 / 3)
    # a huge d covers the whole masks: boundary IoU -> mask IoU
    assert boundary_iou(pred, truth, distance=100.0) == pytest.approx(30 / 42)
    # spacing (1, 2): column steps 2 mm, default d = 2 x 1 mm -> two row layers but one column layer
    band = boundary_band(truth.astype(bool), spacing=(1.0, 2.0))
    assert band.sum() == 36 - 2 * 4  # interior rows 4-5 x cols 3-6 stay out
    z = np.zeros_like(truth)
    assert boundary_iou(z, truth) == 0.0 and math.isnan(boundary_iou(z, z))
    with pytest.raises(PredictionError, match="distance"):
        boundary_iou(pred, truth, distance=-1)


def _edt_band(mask, spacing, d):
    """Independent reference: scipy's exact Euclidean distance transform of the zero-padded mask
    (distance of each mask voxel centre to the nearest background voxel centre)."""
    padded = np.pad(mask, 1)
    dist = ndimage.distance_transform_edt(padded, sampling=spacing)[(slice(1, -1),) * mask.ndim]
    return mask & (dist <= d * (1 + 1e-9))


# the first three use the erosion-with-a-ball path, the last two the KD-tree path (wide bands)
@pytest.mark.parametrize("seed,spacing,d", [(0, (1.0, 1.0, 1.0), None), (1, (2.5, 0.7, 1.1), 2.0), (2, (1.5, 0.8, 0.8), 3.3),
                                            (3, (1.0, 1.0, 1.0), 5.0), (4, (1.5, 0.8, 0.8), 6.0)])
def test_boundary_iou_matches_distance_transform(seed, spacing, d):
    pred, truth = _random_maps(seed)
    dd = 2 * min(spacing) if d is None else d
    for lab in (1, 2):
        p, t = pred == lab, truth == lab
        bp, bt = _edt_band(p, spacing, dd), _edt_band(t, spacing, dd)
        assert np.array_equal(boundary_band(p, spacing=spacing, distance=d), bp)
        assert boundary_iou(p, t, spacing=spacing, distance=d) == pytest.approx((bp & bt).sum() / (bp | bt).sum(), rel=1e-12)


# ----------------------------------------------------------------------------- directed Hausdorff


def test_directed_hausdorff_hand_computed():
    # truth 4x4 square; pred = truth plus a one-pixel spur 3 columns to the right of it (row 3, col 9):
    # pred -> truth max = distance from (3, 9) to (3, 5) = 4; truth -> pred max = 0 (truth ⊂ pred boundary).
    truth = np.zeros((10, 12), np.uint8)
    truth[2:6, 2:6] = 1
    pred = truth.copy()
    pred[3, 9] = 1
    m = directed_hausdorff(pred, truth, spacing=(1.0, 0.5))
    assert m["hd_pred_to_truth"] == pytest.approx(2.0) and m["hd_truth_to_pred"] == 0.0
    assert m["hd95_truth_to_pred"] == 0.0
    # pred boundary: 12 square pixels at 0 and the spur at 2 mm -> 95th percentile at 0.95 * 12 = 11.4
    assert m["hd95_pred_to_truth"] == pytest.approx(0.4 * 2.0)
    full = segmentation_case_metrics(pred, truth, spacing=(1.0, 0.5), directed=True)[1]
    assert full["hd"] == max(full["hd_pred_to_truth"], full["hd_truth_to_pred"])
    assert full["hd95"] == pytest.approx(max(full["hd95_pred_to_truth"], full["hd95_truth_to_pred"]))
    z = np.zeros_like(truth)
    diag = math.hypot(10 * 1.0, 12 * 0.5)
    assert directed_hausdorff(z, truth, spacing=(1.0, 0.5))["hd_truth_to_pred"] == pytest.approx(diag)
    assert all(math.isnan(v) for v in directed_hausdorff(z, z).values())


def test_directed_hausdorff_cross_checks():
    """scipy.spatial.distance.directed_hausdorff on the boundary point sets (max), and MONAI 1.6
    compute_hausdorff_distance(directed=True) (pred -> truth; truth -> pred by swapping)."""
    pred, truth = _random_maps(5)
    spacing = (1.5, 0.8, 0.8)
    ours = segmentation_case_metrics(pred, truth, spacing=spacing, directed=True)
    for lab in (1, 2):
        bp = np.argwhere(boundary(pred == lab)) * spacing
        bt = np.argwhere(boundary(truth == lab)) * spacing
        assert ours[lab]["hd_pred_to_truth"] == pytest.approx(scipy_directed_hausdorff(bp, bt)[0], rel=1e-12)
        assert ours[lab]["hd_truth_to_pred"] == pytest.approx(scipy_directed_hausdorff(bt, bp)[0], rel=1e-12)
    torch = pytest.importorskip("torch")
    monai_metrics = pytest.importorskip("monai.metrics")

    def onehot(a):
        return torch.as_tensor(np.stack([a == k for k in range(3)])[None].astype(np.float32))

    P, T = onehot(pred), onehot(truth)
    for a, b, suffix in ((P, T, "pred_to_truth"), (T, P, "truth_to_pred")):
        hd = monai_metrics.compute_hausdorff_distance(a, b, include_background=False, spacing=spacing, directed=True)[0]
        hd95 = monai_metrics.compute_hausdorff_distance(a, b, include_background=False, spacing=spacing, directed=True,
                                                        percentile=95)[0]
        for i, lab in enumerate((1, 2)):
            assert ours[lab][f"hd_{suffix}"] == pytest.approx(float(hd[i]), rel=1e-6)
            assert ours[lab][f"hd95_{suffix}"] == pytest.approx(float(hd95[i]), rel=1e-6)


# ----------------------------------------------------------------------------- the evaluator and --empty-truth


def _cases():
    t0 = np.zeros((8, 8), np.uint8)
    t0[1:5, 1:5] = 1
    p0 = t0.copy()  # perfect
    t1 = np.zeros((8, 8), np.uint8)  # empty truth, a false-positive prediction
    p1 = np.zeros_like(t1)
    p1[6, 6] = 1
    t2 = t0.copy()
    p2 = np.roll(t0, 1, axis=1)  # Dice 0.75
    return {"c0": (p0, t0, (1.0, 1.0)), "c1": (p1, t1, (1.0, 1.0)), "c2": (p2, t2, (1.0, 1.0))}


def test_evaluator_reports_new_metrics_and_empty_truth_policy():
    data = _cases()
    worst = evaluate_segmentation(list(data), data.__getitem__, labels=[1], n_resamples=200, workers=1)
    nanp = evaluate_segmentation(list(data), data.__getitem__, labels=[1], n_resamples=200, workers=1, empty_truth="nan")
    w = {(r["metric"], r["label"]): r for r in worst.summary["metrics"]}
    n = {(r["metric"], r["label"]): r for r in nanp.summary["metrics"]}
    # worst: c1 scores Dice 0 -> mean (1 + 0 + 0.75) / 3; nan: c1 excluded -> (1 + 0.75) / 2, counted in n_nan
    assert w[("dice", "1")]["value"] == pytest.approx(1.75 / 3) and w[("dice", "1")]["n_nan"] == 0
    assert n[("dice", "1")]["value"] == pytest.approx(1.75 / 2) and n[("dice", "1")]["n_nan"] == 1
    assert n[("hd95", "1")]["value"] == pytest.approx(0.5) and w[("hd95", "1")]["value"] == pytest.approx((0 + math.hypot(8, 8) + 1) / 3)
    assert nanp.summary["empty_truth"] == {"policy": "nan", "n_cases": {"1": 1}}
    for key in (("boundary_iou", "1"), ("hd_pred_to_truth", "1"), ("hd95_truth_to_pred", "all"), ("gen_dice", "all")):
        assert key in w and w[key]["ci_low"] is not None
    # gen_dice over one label = Dice: worst (1, 0, 0.75); nan: c1 NaN
    assert w[("gen_dice", "all")]["value"] == pytest.approx(1.75 / 3)
    assert n[("gen_dice", "all")]["value"] == pytest.approx(1.75 / 2) and n[("gen_dice", "all")]["n_nan"] == 1
    # c2: 4x4 squares, d = 2 px: band = 16 - 0 (a 4x4 has no voxel deeper than 2) -> boundary IoU = mask IoU = 12/20
    per = {(c, lab, k): v for c, lab, k, v in worst.per_case}
    assert per[("c2", "1", "boundary_iou")] == pytest.approx(0.6) and per[("c1", "1", "boundary_iou")] == 0.0
    assert per[("c2", "1", "hd_pred_to_truth")] == 1.0 and per[("c2", "all", "gen_dice")] == pytest.approx(0.75)
    # existing metrics are unchanged by the new ones
    assert per[("c2", "1", "dice")] == pytest.approx(0.75) and per[("c2", "1", "hd")] == 1.0
    with pytest.raises(PredictionError, match="empty-truth policy"):
        evaluate_segmentation(list(data), data.__getitem__, labels=[1], empty_truth="ignore")


def test_cli_empty_truth_option(tmp_path):
    import json

    from openmia.cli.main import main

    for cid, (p, t, _) in _cases().items():
        for side, arr in (("pred", p), ("truth", t)):
            (tmp_path / side).mkdir(exist_ok=True)
            np.save(tmp_path / side / f"{cid}.npy", arr)
    for policy, dice_mean in (("nan", 1.75 / 2), ("worst", 1.75 / 3)):
        out = tmp_path / f"out_{policy}"
        assert main(["-q", "evaluate", "--task", "segmentation", "--pred", str(tmp_path / "pred"), "--truth",
                     str(tmp_path / "truth"), "--out", str(out), "--labels", "1", "--resamples", "100",
                     "--empty-truth", policy]) == 0
        s = json.loads((out / "summary.json").read_text())
        assert s["empty_truth"]["policy"] == policy
        row = next(r for r in s["metrics"] if r["metric"] == "dice" and r["label"] == "1")
        assert row["value"] == pytest.approx(dice_mean)
