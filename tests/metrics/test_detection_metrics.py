"""Detection metrics: hand-computed AP/FROC/F1, 3D boxes, points, errors, pycocotools cross-check."""

from __future__ import annotations

import math

import numpy as np
import pytest

from openmia.errors import PredictionError
from openmia.metrics.detection import (
    Detections,
    average_precision,
    box_iou,
    check_boxes,
    detection_metrics,
    froc,
    greedy_match,
    match_detections,
)


def _det(image, label, coords, score=None):
    return Detections(np.asarray(image), np.asarray(label), np.asarray(coords, float),
                      None if score is None else np.asarray(score, float))


def test_box_iou_hand_computed_2d_3d():
    # [0,0,2,2] vs [1,1,3,3]: overlap 1, union 4 + 4 - 1 = 7
    assert box_iou([[0, 0, 2, 2]], [[1, 1, 3, 3]])[0, 0] == pytest.approx(1 / 7)
    # 3D (x1,y1,x2,y2,z1,z2): unit cubes offset by 0.5 in z: overlap 0.5, union 1.5
    assert box_iou([[0, 0, 1, 1, 0, 1]], [[0, 0, 1, 1, 0.5, 1.5]])[0, 0] == pytest.approx(1 / 3)
    assert box_iou([[0, 0, 1, 1]], [[2, 2, 3, 3]])[0, 0] == 0


def test_greedy_matching_prefers_high_scores():
    # two predictions overlap the same truth; the higher-scored one takes it
    sim = np.array([[0.6], [0.9]])
    assert greedy_match(np.array([0.9, 0.3]), sim, 0.5).tolist() == [True, False]


def test_ap_hand_computed():
    # one image, 3 truths, 4 predictions by decreasing score: TP, FP, TP, FP (IoU 1 or 0)
    # precision: 1, 1/2, 2/3, 1/2; recall: 1/3, 1/3, 2/3, 2/3. Envelope: 1, 2/3, 2/3, 1/2.
    # 101-point: recall points 0..0.33 (34 points) -> 1; 0.34..0.66 (33 points) -> 2/3; rest 0.
    # AP = (34 * 1 + 33 * 2/3) / 101 = 56 / 101
    truth = _det([0, 0, 0], [1, 1, 1], [[0, 0, 1, 1], [2, 2, 3, 3], [4, 4, 5, 5]])
    pred = _det([0] * 4, [1] * 4, [[0, 0, 1, 1], [9, 9, 10, 10], [2, 2, 3, 3], [7, 7, 8, 8]], [0.9, 0.8, 0.7, 0.6])
    m = match_detections(pred, truth, 1, thresholds=(0.5,))
    assert m.tp[0.5].tolist() == [True, False, True, False]
    assert average_precision(m, threshold=0.5)[0] == pytest.approx(56 / 101)
    res = detection_metrics(pred, truth, 1)
    assert res["ap50"] == pytest.approx(56 / 101) and res["map"] == pytest.approx(56 / 101)
    # F1 at score >= 0.5: TP 2, FP 2, FN 1 -> 4 / 7
    assert res["f1"] == pytest.approx(4 / 7) and res["precision"] == 0.5 and res["recall"] == pytest.approx(2 / 3)


def test_froc_hand_computed():
    # 2 images, 2 truths; predictions by score: TP (img0), FP (img1), FP (img0), TP (img1)
    # operating points (FP/image, sensitivity): (0, 0), (0, .5), (.5, .5), (1, .5), (1, 1)
    # at 1/8 and 1/4 FP/image: 0.5; at 1/2: 0.5; at 1, 2, 4, 8: 1.0 -> score = (4*0.5 + 4*1... ) see below
    truth = _det([0, 1], [1, 1], [[0, 0, 1, 1], [0, 0, 1, 1]])
    pred = _det([0, 1, 0, 1], [1, 1, 1, 1], [[0, 0, 1, 1], [5, 5, 6, 6], [7, 7, 8, 8], [0, 0, 1, 1]], [0.9, 0.8, 0.7, 0.6])
    m = match_detections(pred, truth, 2, thresholds=(0.5,))
    fr = froc(m, threshold=0.5)
    assert fr["sensitivity"][0].tolist() == [0.5, 0.5, 0.5, 1.0, 1.0, 1.0, 1.0]
    assert fr["score"][0] == pytest.approx((3 * 0.5 + 4 * 1.0) / 7)


def test_empty_cases():
    truth = _det([0], [1], [[0, 0, 1, 1]])
    none = _det(np.zeros(0, int), np.zeros(0, int), np.zeros((0, 4)), np.zeros(0))
    res = detection_metrics(none, truth, 2)
    assert res["ap50"] == 0 and res["froc"] == 0 and res["recall"] == 0 and math.isnan(res["precision"])
    only_fp = detection_metrics(_det([1], [1], [[5, 5, 6, 6]], [0.9]), _det(np.zeros(0, int), np.zeros(0, int), np.zeros((0, 4))), 2)
    assert math.isnan(only_fp["ap50"]) and only_fp["precision"] == 0


def test_points_with_anisotropic_spacing():
    # truth at (10, 10, 10); prediction 3 voxels away in z with z-spacing 2 mm -> 6 mm
    truth = _det([0], [1], [[10, 10, 10]])
    pred = _det([0], [1], [[10, 10, 13]], [0.9])
    assert detection_metrics(pred, truth, 1, kind="point", distance=5.0, spacing=(1, 1, 2))["ap"] == 0
    assert detection_metrics(pred, truth, 1, kind="point", distance=5.0)["ap"] == 1.0  # 3 voxels without spacing


def test_bad_box_names_the_case():
    with pytest.raises(PredictionError, match="case 'img3'.*x1 <= x2"):
        check_boxes(np.array([[0, 0, 1, 1], [5, 0, 2, 1]]), ["img2", "img3"], "prediction")


def test_bootstrap_weights_equal_duplicated_images():
    # weighting image 0 twice equals the data set with image 0 duplicated
    truth = _det([0, 1], [1, 1], [[0, 0, 1, 1], [0, 0, 1, 1]])
    pred = _det([0, 0, 1], [1, 1, 1], [[0, 0, 1, 1], [3, 3, 4, 4], [0.2, 0, 1.2, 1]], [0.5, 0.9, 0.7])
    m = match_detections(pred, truth, 2, thresholds=(0.5,))
    w = average_precision(m, threshold=0.5, w=np.array([[2.0, 1.0]]))[0]
    truth2 = _det([0, 1, 2], [1, 1, 1], [[0, 0, 1, 1], [0, 0, 1, 1], [0, 0, 1, 1]])
    pred2 = _det([0, 0, 1, 2, 2], [1] * 5, [[0, 0, 1, 1], [3, 3, 4, 4], [0.2, 0, 1.2, 1], [0, 0, 1, 1], [3, 3, 4, 4]],
                 [0.5, 0.9, 0.7, 0.5, 0.9])
    m2 = match_detections(pred2, truth2, 3, thresholds=(0.5,))
    assert w == pytest.approx(average_precision(m2, threshold=0.5)[0])


def test_cross_check_pycocotools():
    """Source: pycocotools COCOeval (bbox, maxDets 100, areaRng all) on random boxes, 2 classes."""
    pytest.importorskip("pycocotools")
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    rng = np.random.default_rng(0)
    images, gts, dts = [], [], []
    t_img, t_lab, t_box, p_img, p_lab, p_box, p_sc = [], [], [], [], [], [], []
    for i in range(12):
        images.append({"id": i + 1, "width": 200, "height": 200})
        for _ in range(rng.integers(0, 5)):
            x, y, w, h = rng.uniform(0, 150), rng.uniform(0, 150), rng.uniform(10, 40), rng.uniform(10, 40)
            lab = int(rng.integers(1, 3))
            gts.append({"id": len(gts) + 1, "image_id": i + 1, "category_id": lab, "bbox": [x, y, w, h], "area": w * h, "iscrowd": 0})
            t_img.append(i), t_lab.append(lab), t_box.append([x, y, x + w, y + h])
            for _ in range(rng.integers(0, 3)):  # jittered detections of it
                jx, jy = rng.normal(0, 4, 2)
                s = float(rng.random())
                dts.append({"image_id": i + 1, "category_id": lab, "bbox": [x + jx, y + jy, w, h], "score": s})
                p_img.append(i), p_lab.append(lab), p_box.append([x + jx, y + jy, x + jx + w, y + jy + h]), p_sc.append(s)
        for _ in range(rng.integers(0, 3)):  # false positives
            x, y = rng.uniform(0, 150, 2)
            lab, s = int(rng.integers(1, 3)), float(rng.random())
            dts.append({"image_id": i + 1, "category_id": lab, "bbox": [x, y, 20, 20], "score": s})
            p_img.append(i), p_lab.append(lab), p_box.append([x, y, x + 20, y + 20]), p_sc.append(s)
    coco = COCO()
    coco.dataset = {"images": images, "annotations": gts, "categories": [{"id": 1}, {"id": 2}]}
    coco.createIndex()
    ev = COCOeval(coco, coco.loadRes(dts), "bbox")
    ev.params.areaRng, ev.params.areaRngLbl = [[0, 1e10]], ["all"]
    ev.evaluate()
    ev.accumulate()
    prec = ev.eval["precision"][:, :, :, 0, -1]  # (T, R, K) at maxDets 100
    coco_map = float(np.mean(prec[prec > -1]))
    coco_ap50 = float(np.mean(prec[0][prec[0] > -1]))
    ours = detection_metrics(_det(p_img, p_lab, p_box, p_sc), _det(t_img, t_lab, t_box), 12)
    # COCO adds +0 to box sizes (continuous coordinates) like openmia
    assert ours["ap50"] == pytest.approx(coco_ap50, abs=1e-9)
    assert ours["map"] == pytest.approx(coco_map, abs=1e-9)
