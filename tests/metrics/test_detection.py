"""Detection metrics (openmia.metrics.detection): hand-computed IoU / AP / mAP / FROC / F1 values,
edge cases, error messages, and cross-checks against independent implementations:

- pycocotools ``COCOeval`` (the COCO reference code) for AP@0.5, AP@0.75 and mAP@0.5:0.95 on
  random 2D boxes, and for the order-dependence of tied scores;
- a slow reference written in this file that follows COCOeval's ``evaluateImg`` / ``accumulate``
  loops literally (for 3D boxes and points, which pycocotools cannot score);
- a literal FROC threshold sweep written in this file (step rule of the module docstring);
- MONAI's ``compute_froc_curve_data`` / ``compute_froc_score`` (derived from the official
  CAMELYON16 evaluation code) for the FROC curve and its linear interpolation.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from openmia.errors import PredictionError
from openmia.metrics.detection import (
    FROC_FPS,
    IOU_THRESHOLDS,
    Detections,
    average_precision,
    box_iou,
    detection_metrics,
    detections_from_dicts,
    f1_at,
    froc,
    greedy_assign,
    map_coco,
    match_detections,
    mean_ap,
    point_distance,
)

NAN = float("nan")


# ----------------------------------------------------------------------------- geometry


def test_box_iou_2d_hand_computed():
    a = [[0, 0, 2, 2], [0, 0, 4, 4], [0, 0, 1, 1]]
    b = [[1, 1, 3, 3], [0, 0, 2, 2], [1, 0, 2, 1]]
    iou = box_iou(a, b)
    assert iou.shape == (3, 3)
    assert iou[0, 0] == pytest.approx(1 / 7)  # overlap 1, union 4 + 4 - 1
    assert iou[1, 1] == pytest.approx(4 / 16)  # contained box: 4 / 16
    assert iou[0, 1] == pytest.approx(1.0)  # identical
    assert iou[2, 2] == 0.0  # touching edges do not overlap
    # vectorised matrix == scalar computation per pair
    for i in range(3):
        for j in range(3):
            assert iou[i, j] == pytest.approx(box_iou([a[i]], [b[j]])[0, 0])
    # a zero-size box overlaps nothing, itself included (COCO's convention)
    assert box_iou([[1, 1, 1, 3]], [[1, 1, 1, 3]])[0, 0] == 0.0
    assert box_iou(np.zeros((0, 4)), b).shape == (0, 3)


def test_box_iou_3d_uses_file_column_order():
    # columns x1,y1,x2,y2,z1,z2: two unit-square prisms of height 4, z-ranges [0, 4] and [2, 6]
    # overlap 1 * 1 * 2 = 2, union 4 + 4 - 2 = 6 -> 1/3 (read as x1,y1,z1,x2,y2,z2 it would be 0)
    assert box_iou([[0, 0, 1, 1, 0, 4]], [[0, 0, 1, 1, 2, 6]])[0, 0] == pytest.approx(1 / 3)
    # cubes of side 2 shifted by 1 along every axis: overlap 1, union 8 + 8 - 1 = 15
    assert box_iou([[0, 0, 2, 2, 0, 2]], [[1, 1, 3, 3, 1, 3]])[0, 0] == pytest.approx(1 / 15)


def test_point_distance_anisotropic_spacing():
    # spacing is given in the x, y, z order of the columns: 0.5 mm in x and y, 3 mm in z
    d = point_distance([[10, 10, 10]], [[10, 10, 11], [14, 10, 10]], spacing=(0.5, 0.5, 3.0))
    assert d.tolist() == [[3.0, 2.0]]  # 1 voxel in z = 3 mm; 4 voxels in x = 2 mm
    assert point_distance([[0, 0]], [[3, 4]])[0, 0] == 5.0


@pytest.mark.parametrize("boxes, message", [
    ([[0, 0, 1, 1], [3, 0, 2, 1]], r"row 1 is invalid: x2 < x1 \(x1=3, x2=2\)"),
    ([[0, 0, 1, 1, 5, 2]], r"row 0 is invalid: z2 < z1"),
    ([[0, 0, 1, 1], [0, 0, 1, 1], [0, np.nan, 1, 1]], r"row 2 is invalid: a non-finite coordinate"),
    ([[0, 0, 1, 1, 1]], r"\(n, 4\) x1,y1,x2,y2 or \(n, 6\) x1,y1,x2,y2,z1,z2, found shape \(1, 5\)"),
])
def test_box_iou_rejects_bad_boxes_naming_the_row(boxes, message):
    with pytest.raises(PredictionError, match=message):
        box_iou(boxes, [[0, 0, 1, 1]])


def test_box_iou_rejects_2d_against_3d():
    with pytest.raises(PredictionError, match="cannot compare 2D boxes with 3D boxes"):
        box_iou([[0, 0, 1, 1]], [[0, 0, 1, 1, 0, 1]])


# ----------------------------------------------------------------------------- matching


def test_greedy_matching_by_score():
    # the 0.9 prediction is matched first and takes truth 0 (IoU 0.7); the 0.3 prediction then gets
    # truth 1 (0.6), although its own best truth was 0 - greedy, not optimal, assignment
    sim = np.array([[0.8, 0.6], [0.7, 0.0]])
    assert greedy_assign(np.array([0.3, 0.9]), sim, 0.5).tolist() == [1, 0]
    # ties in score: input row order decides (stable sort, as COCOeval), not the better overlap
    assert greedy_assign(np.array([0.5, 0.5]), np.array([[0.6], [0.9]]), 0.5).tolist() == [0, -1]
    # equally good truths: the last one (as COCOeval); the threshold is inclusive
    assert greedy_assign(np.array([0.5]), np.array([[0.7, 0.7]]), 0.5).tolist() == [1]
    assert greedy_assign(np.array([0.5]), np.array([[0.5]]), 0.5).tolist() == [0]
    assert greedy_assign(np.array([0.5]), np.array([[0.49]]), 0.5).tolist() == [-1]


def test_wrong_class_is_a_false_positive_and_a_miss():
    truth = {"a": {"boxes": [[0, 0, 10, 10]], "labels": [1]}}
    pred = {"a": {"boxes": [[0, 0, 10, 10]], "scores": [0.9], "labels": [2]}}
    r = detection_metrics(pred, truth)
    assert r["ap"] == 0.0 and r["tp"] == 0 and r["fp"] == 1 and r["fn"] == 1
    assert r["ap_per_class"][1] == 0.0 and math.isnan(r["ap_per_class"][2]) and r["n_classes_without_truth"] == 1


# ----------------------------------------------------------------------------- AP / mAP golden values


def _ap_example(p4_score):
    truth = {"A": {"boxes": [[0, 0, 10, 10], [20, 20, 30, 30]]}, "B": {"boxes": [[0, 0, 10, 10]]}}
    pred = {
        "A": {"boxes": [[0, 0, 10, 10], [0, 0, 10, 10], [100, 100, 110, 110]], "scores": [0.95, 0.80, 0.60]},
        "B": {"boxes": [[50, 50, 60, 60], [0, 0, 10, 10]], "scores": [0.90, p4_score]},
    }
    return pred, truth


def test_ap_hand_computed():
    # 3 truths (2 in A, 1 in B). By score: A .95 TP, B .90 FP, A .80 FP (duplicate of the found
    # truth), A .60 FP, B .55 TP.
    # precision 1, 1/2, 1/3, 1/4, 2/5; recall 1/3, 1/3, 1/3, 1/3, 2/3
    # envelope (max to the right): 1, 2/5, 2/5, 2/5, 2/5
    # recall points 0.00..0.33 (34 points) -> 1; 0.34..0.66 (33 points) -> 2/5; 0.67..1 (34) -> 0
    # AP = (34 + 33 * 2/5) / 101 = 47.2 / 101
    pred, truth = _ap_example(0.55)
    r = detection_metrics(pred, truth)
    assert r["ap"] == pytest.approx(47.2 / 101) and r["ap50"] == pytest.approx(47.2 / 101)
    # every match has IoU 1, so every IoU threshold gives the same AP
    assert r["map"] == pytest.approx(47.2 / 101) and r["ap75"] == pytest.approx(47.2 / 101)
    # same detections, the B hit scored .70 (before the A .60 FP): order TP FP FP TP FP
    # precision 1, 1/2, 1/3, 1/2, 2/5 -> envelope 1, 1/2, 1/2, 1/2, 2/5
    # AP = (34 * 1 + 33 * 1/2) / 101 = 50.5 / 101
    pred, truth = _ap_example(0.70)
    assert detection_metrics(pred, truth)["ap"] == pytest.approx(50.5 / 101)


def test_f1_precision_recall_at_score_threshold():
    pred, truth = _ap_example(0.55)
    # score >= 0.5 keeps all 5: TP 2, FP 3, FN 1 -> P 2/5, R 2/3, F1 = 4 / (4 + 3 + 1) = 1/2
    r = detection_metrics(pred, truth)
    assert (r["tp"], r["fp"], r["fn"]) == (2, 3, 1)
    assert r["precision"] == pytest.approx(2 / 5) and r["recall"] == pytest.approx(2 / 3) and r["f1"] == pytest.approx(1 / 2)
    # score >= 0.75 keeps .95 (TP), .90 (FP), .80 (FP): P 1/3, R 1/3, F1 = 2 / (2 + 2 + 2) = 1/3
    r = detection_metrics(pred, truth, score_threshold=0.75)
    assert r["precision"] == pytest.approx(1 / 3) and r["recall"] == pytest.approx(1 / 3) and r["f1"] == pytest.approx(1 / 3)


def test_map_over_iou_thresholds_and_classes():
    # class 1: IoU 72/100 = 0.72 -> a hit at IoU 0.50, 0.55, 0.60, 0.65, 0.70 (5 of 10) -> mAP 0.5
    # class 2: IoU 0.87 -> a hit at 0.50 ... 0.85 (8 of 10) -> mAP 0.8
    # class 3: a prediction without truth -> AP NaN, excluded from the means and counted
    truth = {"a": {"boxes": [[0, 0, 10, 10], [50, 50, 60, 60]], "labels": [1, 2]}}
    pred = {"a": {"boxes": [[0, 0, 10, 7.2], [50, 50, 60, 58.7], [80, 80, 90, 90]], "scores": [0.9, 0.8, 0.7],
                  "labels": [1, 2, 3]}}
    r = detection_metrics(pred, truth)
    assert r["map_per_class"][1] == pytest.approx(0.5) and r["map_per_class"][2] == pytest.approx(0.8)
    assert math.isnan(r["map_per_class"][3]) and math.isnan(r["ap_per_class"][3])
    assert r["map"] == pytest.approx((0.5 + 0.8) / 2)
    assert r["ap50"] == 1.0 and r["ap75"] == pytest.approx(0.5)  # class 1 misses at 0.75, class 2 hits
    assert r["n_classes"] == 3 and r["n_classes_without_truth"] == 1
    # the same through the lower-level functions
    det_p, det_t, images, kind = detections_from_dicts(pred, truth)
    m = match_detections(det_p, det_t, len(images))
    assert map_coco(m)[0] == pytest.approx(0.65)
    assert average_precision(m, threshold=0.7, label=1)[0] == 1.0 and average_precision(m, threshold=0.75, label=1)[0] == 0.0


def test_iou_threshold_option_3d_boxes():
    # 3D truth prism z 0..4; prediction z 2..6: IoU 1/3 -> a miss at 0.5, a hit at 0.3
    truth = {"ct1": {"boxes": [[0, 0, 1, 1, 0, 4]]}}
    pred = {"ct1": {"boxes": [[0, 0, 1, 1, 2, 6]], "scores": [0.9]}}
    assert detection_metrics(pred, truth)["ap50"] == 0.0
    r = detection_metrics(pred, truth, iou_threshold=0.3)
    assert r["ap"] == 1.0 and r["ap50"] == 0.0 and r["f1"] == 1.0 and r["threshold"] == 0.3


# ----------------------------------------------------------------------------- FROC golden values


def test_froc_hand_computed_staircase():
    # 4 images, one truth each (the one of d is never found). By score:
    # .9 TP(a)  .8 FP(b)  .7 FP(c)  .6 TP(b)  .5 FP(d)  .4 FP(a)  .3 TP(c)
    # operating points (FP/image, sensitivity): (0,0) (0,.25) (.25,.25) (.5,.25) (.5,.5) (.75,.5) (1,.5) (1,.75)
    # step: 1/8 -> .25 (point (0,.25)); 1/4 -> .25; 1/2 -> .5; 1, 2, 4, 8 -> .75
    # FROC = (.25 + .25 + .5 + 4 * .75) / 7 = 4/7
    truth = {c: {"points": [[10, 10]]} for c in "abcd"}
    hit, far = [10, 10], [90, 90]
    pred = {"a": {"points": [hit, far], "scores": [0.9, 0.4]}, "b": {"points": [far, hit], "scores": [0.8, 0.6]},
            "c": {"points": [far, hit], "scores": [0.7, 0.3]}, "d": {"points": [far], "scores": [0.5]}}
    r = detection_metrics(pred, truth, distance=2.0)
    assert [r[f"sens_at_{f:g}fp"] for f in FROC_FPS] == pytest.approx([0.25, 0.25, 0.5, 0.75, 0.75, 0.75, 0.75])
    assert r["froc_score"] == pytest.approx(4 / 7) and r["froc"] == r["froc_score"]
    assert r["froc_curve"]["fppi"].tolist() == pytest.approx([0, 0, 0.25, 0.5, 0.5, 0.75, 1, 1])
    assert r["froc_curve"]["sensitivity"].tolist() == pytest.approx([0, 0.25, 0.25, 0.25, 0.5, 0.5, 0.5, 0.75])
    assert r["froc_curve"]["threshold"].tolist() == pytest.approx([np.inf, 0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3])
    # on a staircase (no tied scores) linear interpolation gives the same values
    assert detection_metrics(pred, truth, distance=2.0, froc_interpolation="linear")["froc_score"] == pytest.approx(4 / 7)


def test_froc_tied_scores_step_vs_linear():
    # 2 images, 1 truth each. .9 TP(a); then a tie at .5: FP(a), FP(b), TP(b) - kept or dropped together
    # operating points: (0,0) (0,.5) (1,1) (the tie is one diagonal step)
    # step:   1/8, 1/4, 1/2 -> .5; 1, 2, 4, 8 -> 1          FROC = (3 * .5 + 4) / 7 = 11/14
    # linear: 1/8 -> .5 + .125 * .5 = .5625; 1/4 -> .625; 1/2 -> .75; then 1
    #         FROC = (.5625 + .625 + .75 + 4) / 7 = 95/112
    truth = {"a": {"points": [[0, 0]]}, "b": {"points": [[0, 0]]}}
    pred = {"a": {"points": [[0, 0], [50, 50]], "scores": [0.9, 0.5]}, "b": {"points": [[50, 50], [0, 0]], "scores": [0.5, 0.5]}}
    r = detection_metrics(pred, truth, distance=1.0)
    assert r["froc_curve"]["fppi"].tolist() == [0, 0, 1] and r["froc_curve"]["sensitivity"].tolist() == [0, 0.5, 1]
    assert r["froc_score"] == pytest.approx(11 / 14)
    lin = detection_metrics(pred, truth, distance=1.0, froc_interpolation="linear")
    assert [lin[f"sens_at_{f:g}fp"] for f in FROC_FPS] == pytest.approx([0.5625, 0.625, 0.75, 1, 1, 1, 1])
    assert lin["froc_score"] == pytest.approx(95 / 112)


# ----------------------------------------------------------------------------- edge cases


def test_no_predictions():
    truth = {"a": {"boxes": [[0, 0, 1, 1]]}, "b": {}}
    r = detection_metrics({}, truth)
    assert r["n_images"] == 2 and r["n_pred"] == 0 and r["n_truth"] == 1
    assert r["ap"] == 0 and r["map"] == 0 and r["froc_score"] == 0 and r["recall"] == 0 and r["f1"] == 0
    assert math.isnan(r["precision"])  # no prediction kept: precision undefined


def test_no_ground_truth():
    pred = {"a": {"boxes": [[0, 0, 1, 1]], "scores": [0.9]}}
    r = detection_metrics(pred, {"a": {}})
    assert math.isnan(r["ap"]) and math.isnan(r["map"]) and math.isnan(r["froc_score"]) and math.isnan(r["recall"])
    assert r["precision"] == 0 and r["f1"] == 0 and r["n_classes_without_truth"] == 1


def test_both_empty():
    r = detection_metrics({}, {"a": {}, "b": {"boxes": np.zeros((0, 4))}})
    assert r["n_images"] == 2 and r["n_classes"] == 0
    for k in ("ap", "ap50", "map", "froc_score", "f1", "precision", "recall"):
        assert math.isnan(r[k]), k


def test_images_missing_from_predictions_or_truth():
    # image b has truth but no prediction: its object is a miss -> recall 1/2
    # one TP at recall 1/2: recall points 0..0.5 (51 of 101) -> precision 1: AP = 51/101
    truth = {"a": {"boxes": [[0, 0, 1, 1]]}, "b": {"boxes": [[0, 0, 1, 1]]}}
    r = detection_metrics({"a": {"boxes": [[0, 0, 1, 1]], "scores": [0.9]}}, truth)
    assert r["recall"] == 0.5 and r["precision"] == 1 and r["ap"] == pytest.approx(51 / 101)
    # image z has a prediction but is not in the truth: an image without objects -> a FP, and it
    # counts in the FP/image denominator
    pred = {"a": {"boxes": [[0, 0, 1, 1]], "scores": [0.9]}, "z": {"boxes": [[0, 0, 1, 1]], "scores": [0.8]}}
    r = detection_metrics(pred, {"a": {"boxes": [[0, 0, 1, 1]]}})
    assert r["n_images"] == 2 and r["precision"] == 0.5 and r["ap"] == 1.0
    assert r["froc_curve"]["fppi"].tolist() == [0, 0, 0.5] and r["froc_score"] == 1.0


def test_tied_scores():
    # one truth, two predictions with the same score, one hit and one miss. As in COCOeval the
    # input row order orders the tie: hit first -> AP 1; miss first -> precision 0, 1/2 -> AP 1/2
    truth = {"a": {"boxes": [[0, 0, 1, 1]]}}
    hit_first = {"a": {"boxes": [[0, 0, 1, 1], [5, 5, 6, 6]], "scores": [0.8, 0.8]}}
    miss_first = {"a": {"boxes": [[5, 5, 6, 6], [0, 0, 1, 1]], "scores": [0.8, 0.8]}}
    assert detection_metrics(hit_first, truth)["ap"] == 1.0
    assert detection_metrics(miss_first, truth)["ap"] == pytest.approx(0.5)
    # FROC keeps or drops a tie as a whole, so it does not depend on the order: points (0,0), (1,1)
    for pred in (hit_first, miss_first):
        r = detection_metrics(pred, truth)
        assert r["froc_curve"]["fppi"].tolist() == [0, 1] and r["froc_score"] == pytest.approx(4 / 7)


def test_tied_scores_match_pycocotools():
    """Source: pycocotools COCOeval orders tied detections like openmia (row order)."""
    pytest.importorskip("pycocotools")
    truth = {1: {"boxes": [[0, 0, 1, 1]]}}
    for pred, expected in (({1: {"boxes": [[0, 0, 1, 1], [5, 5, 6, 6]], "scores": [0.8, 0.8]}}, 1.0),
                           ({1: {"boxes": [[5, 5, 6, 6], [0, 0, 1, 1]], "scores": [0.8, 0.8]}}, 0.5)):
        coco = _coco_eval(pred, truth, n_classes=1)
        assert coco["ap50"] == pytest.approx(expected) == detection_metrics(pred, truth)["ap50"]


def test_points_anisotropic_spacing():
    # truth (10, 10, 10); predictions A (10, 10, 11) score .9 and B (14, 10, 10) score .8
    # spacing (x, y, z) = (0.5, 0.5, 3) mm: A is 3 mm away, B 2 mm; distance 2.5 mm
    #   -> A a FP, B a hit: precision 0, 1/2 at recall 0, 1 -> AP = 1/2
    # without spacing (voxels): A 1 away -> hit; B 4 away -> FP: AP = 1
    truth = {"ct": {"points": [[10, 10, 10]]}}
    pred = {"ct": {"points": [[10, 10, 11], [14, 10, 10]], "scores": [0.9, 0.8]}}
    mm = detection_metrics(pred, truth, distance=2.5, spacing=(0.5, 0.5, 3.0))
    assert mm["kind"] == "point" and mm["ap"] == pytest.approx(0.5) and "map" not in mm
    assert detection_metrics(pred, truth, distance=2.5)["ap"] == 1.0
    # the distance is inclusive: B at exactly 2 mm matches with distance 2
    assert detection_metrics(pred, truth, distance=2.0, spacing=(0.5, 0.5, 3.0))["ap"] == pytest.approx(0.5)
    # spacing in numpy's (z, y, x) order would be a different (wrong) geometry: A 0.5 mm, B 12 mm
    assert detection_metrics(pred, truth, distance=2.5, spacing=(3.0, 0.5, 0.5))["ap"] == 1.0


def test_dict_list_and_detections_inputs_agree():
    pred, truth = _ap_example(0.55)
    r_dict = detection_metrics(pred, truth)
    r_list = detection_metrics([pred["A"], pred["B"]], [truth["A"], truth["B"]])
    det_p, det_t, images, _ = detections_from_dicts(pred, truth)
    r_det = detection_metrics(det_p, det_t, len(images))
    for k in ("ap", "map", "froc_score", "f1", "precision", "recall", "n_images"):
        assert r_dict[k] == pytest.approx(r_list[k]) == pytest.approx(r_det[k]), k


def test_image_weights_equal_duplicated_images():
    # the bootstrap re-weights images: weight 2 on image A == the data set with A duplicated
    pred, truth = _ap_example(0.55)
    det_p, det_t, images, _ = detections_from_dicts(pred, truth)
    m = match_detections(det_p, det_t, 2)
    w = np.array([[2.0, 1.0]])
    dup_p, dup_t, dup_images, _ = detections_from_dicts({**pred, "A2": pred["A"]}, {**truth, "A2": truth["A"]})
    m2 = match_detections(dup_p, dup_t, 3)
    assert map_coco(m, w=w)[0] == pytest.approx(map_coco(m2)[0])
    assert froc(m, threshold=0.5, w=w)["score"][0] == pytest.approx(froc(m2, threshold=0.5)["score"][0])
    assert f1_at(m, threshold=0.5, w=w)["f1"][0] == pytest.approx(f1_at(m2, threshold=0.5)["f1"][0])
    # several resamples at once: (B, n_images) -> (B,)
    assert mean_ap(m, thresholds=(0.5,), w=np.array([[1, 1], [0, 1], [2, 1]])).shape == (3,)


# ----------------------------------------------------------------------------- errors


@pytest.mark.parametrize("pred, truth, message", [
    ({"a": {"boxes": [[0, 0, 1, 1]], "scores": [0.9]}},
     {"a": {"boxes": [[0, 0, 1, 1]]}, "b": {"boxes": [[0, 0, 1, 1], [2, 2, 1, 3]]}},
     r"truth box row 1 of case 'b' is invalid: x2 < x1 \(x1=2, x2=1\)"),
    ({"a": {"boxes": [[0, 0, 1, 1, 3, 2]], "scores": [0.9]}}, {"a": {"boxes": [[0, 0, 1, 1, 0, 1]]}},
     r"prediction box row 0 of case 'a' is invalid: z2 < z1"),
    ({"a": {"boxes": [[0, 0, 1, 1]]}}, {"a": {}}, r"prediction case 'a': 'scores' is missing"),
    ({"a": {"boxes": [[0, 0, 1, 1], [0, 0, 2, 2]], "scores": [0.9, np.nan]}}, {"a": {}},
     r"prediction case 'a' row 1: score is nan"),
    ({"a": {"boxes": [[0, 0, 1, 1]], "scores": [0.9], "labels": [1, 2]}}, {"a": {}},
     r"case 'a': 1 boxes but 2 labels"),
    ({"a": {"points": [[0, 0]], "scores": [0.9]}}, {"a": {"boxes": [[0, 0, 1, 1]]}},
     r"some cases give 'boxes' and others 'points'"),
    ({"a": {"boxes": [[0, 0, 1, 1]], "scores": [0.9]}}, {"a": {"boxes": [[0, 0, 1, 1, 0, 1]]}},
     r"mix coordinate widths \[4, 6\]"),
    ({"a": {"box": [[0, 0, 1, 1]], "scores": [0.9]}}, {"a": {}}, r"neither 'boxes' nor 'points'.*'box'"),
    ([{}], [{}, {}], r"1 prediction dicts but 2 truth dicts"),
])
def test_bad_dict_input_names_case_and_row(pred, truth, message):
    with pytest.raises(PredictionError, match=message):
        detection_metrics(pred, truth)


def test_bad_options_and_detections():
    pts = {"a": {"points": [[0, 0, 0]], "scores": [0.9]}}
    with pytest.raises(PredictionError, match=r"spacing must be 3 positive numbers"):
        detection_metrics(pts, {"a": {"points": [[0, 0, 0]]}}, spacing=(1.0, 1.0))
    with pytest.raises(PredictionError, match=r"kind='box' but the dicts hold points"):
        detection_metrics(pts, {"a": {}}, kind="box")
    with pytest.raises(PredictionError, match=r"IoU thresholds must lie in \(0, 1\], found 1.5"):
        detection_metrics({}, {"a": {}}, iou_threshold=1.5)
    with pytest.raises(PredictionError, match=r"FROC interpolation must be 'step' or 'linear'"):
        detection_metrics({}, {"a": {}}, froc_interpolation="cubic")
    det = Detections(np.array([5]), np.array([1]), np.array([[0.0, 0, 1, 1]]), np.array([0.9]))
    empty = Detections(np.zeros(0, int), np.zeros(0, int), np.zeros((0, 4)))
    with pytest.raises(PredictionError, match=r"prediction row 0: image index 5 outside 0..1"):
        detection_metrics(det, empty, 2)
    with pytest.raises(PredictionError, match=r"n_images is required"):
        detection_metrics(det, empty)
    no_pred = Detections(np.zeros(0, int), np.zeros(0, int), np.zeros((0, 4)), np.zeros(0))
    m = match_detections(no_pred, empty, 1, thresholds=(0.5,))
    with pytest.raises(PredictionError, match=r"not at 0.75; pass it in match_detections"):
        average_precision(m, threshold=0.75)


# ----------------------------------------------------------------------------- cross-checks


def _random_set(rng, n_images, n_classes, dims=2, kind="box", scale=200.0, tie_decimals=None):
    """Random truth and jittered / spurious predictions as per-image dicts (integer case ids from 1)."""
    truth, pred = {}, {}
    for i in range(1, n_images + 1):
        tb, tl, pb, ps, pl = [], [], [], [], []
        for _ in range(rng.integers(0, 5)):
            lab = int(rng.integers(1, n_classes + 1))
            lo = rng.uniform(0, scale * 0.75, dims)
            size = rng.uniform(10, 40, dims)
            obj = np.r_[lo[:2], lo[:2] + size[:2], lo[2:], lo[2:] + size[2:]] if kind == "box" else lo
            tb.append(obj), tl.append(lab)
            for _ in range(rng.integers(0, 3)):  # detections of it, some of them duplicates
                jit = rng.normal(0, 4, dims)
                pb.append(np.r_[obj[:2] + jit[:2], obj[2:4] + jit[:2], obj[4:] + np.repeat(jit[2:], 2)] if kind == "box"
                          else obj + jit / 2)
                ps.append(rng.random()), pl.append(lab)
        for _ in range(rng.integers(0, 3)):  # false positives, some of a class without any truth
            lo = rng.uniform(0, scale * 0.75, dims)
            pb.append(np.r_[lo[:2], lo[:2] + 20, lo[2:], lo[2:] + 20] if kind == "box" else lo)
            ps.append(rng.random()), pl.append(int(rng.integers(1, n_classes + 2)))
        k = (4 if dims == 2 else 6) if kind == "box" else dims
        key = "boxes" if kind == "box" else "points"
        truth[i] = {key: np.reshape(tb, (-1, k)), "labels": np.asarray(tl, int)}
        sc = np.asarray(ps, float)
        if tie_decimals is not None:
            sc = np.round(sc, tie_decimals)
        pred[i] = {key: np.reshape(pb, (-1, k)), "scores": sc, "labels": np.asarray(pl, int)}
    return pred, truth


def _coco_eval(pred, truth, n_classes):
    """pycocotools COCOeval (bbox, area range 'all', maxDets 100) -> ap50, ap75, map, per-class mAP."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    images, gts, dts = [], [], []
    for img in truth:
        images.append({"id": img, "width": 1000, "height": 1000})
        for b, lab in zip(np.reshape(truth[img]["boxes"], (-1, 4)), truth[img].get("labels", [1] * len(truth[img]["boxes"]))):
            w, h = b[2] - b[0], b[3] - b[1]
            gts.append({"id": len(gts) + 1, "image_id": img, "category_id": int(lab), "bbox": [b[0], b[1], w, h],
                        "area": w * h, "iscrowd": 0})
        for b, s, lab in zip(np.reshape(pred[img]["boxes"], (-1, 4)), pred[img]["scores"],
                             pred[img].get("labels", [1] * len(pred[img]["scores"]))):
            dts.append({"image_id": img, "category_id": int(lab), "bbox": [b[0], b[1], b[2] - b[0], b[3] - b[1]], "score": float(s)})
    coco = COCO()
    coco.dataset = {"images": images, "annotations": gts, "categories": [{"id": k} for k in range(1, n_classes + 2)]}
    coco.createIndex()
    ev = COCOeval(coco, coco.loadRes(dts), "bbox")
    ev.params.areaRng, ev.params.areaRngLbl = [[0, 1e10]], ["all"]
    import contextlib
    import io

    with contextlib.redirect_stdout(io.StringIO()):
        ev.evaluate()
        ev.accumulate()
    prec = ev.eval["precision"][:, :, :, 0, -1]  # (T, R, K) at maxDets 100; -1 = class without truth
    t75 = int(np.argmin(np.abs(ev.params.iouThrs - 0.75)))
    per_class = {cat: float(np.mean(prec[:, :, k])) for k, cat in enumerate(ev.params.catIds) if np.all(prec[:, :, k] > -1)}
    return {"ap50": float(np.mean(prec[0][prec[0] > -1])), "ap75": float(np.mean(prec[t75][prec[t75] > -1])),
            "map": float(np.mean(prec[prec > -1])), "map_per_class": per_class}


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_cross_check_pycocotools(seed):
    """Source: pycocotools COCOeval, the COCO reference implementation (random 2D boxes, 3 classes,
    duplicates, images without truth, a class with predictions only)."""
    pytest.importorskip("pycocotools")
    pred, truth = _random_set(np.random.default_rng(seed), n_images=25, n_classes=3)
    coco = _coco_eval(pred, truth, n_classes=3)
    ours = detection_metrics(pred, truth)
    assert ours["ap50"] == pytest.approx(coco["ap50"], abs=1e-9)
    assert ours["ap75"] == pytest.approx(coco["ap75"], abs=1e-9)
    assert ours["map"] == pytest.approx(coco["map"], abs=1e-9)
    with_truth = {k: v for k, v in ours["map_per_class"].items() if not math.isnan(v)}
    assert with_truth == pytest.approx(coco["map_per_class"], abs=1e-9)


# A slow reference that follows COCOeval.evaluateImg / accumulate literally (loops, no numpy
# tricks), with its own scalar IoU written per axis for the x1,y1,x2,y2[,z1,z2] column order.


def _ref_iou(a, b):
    axes = [(0, 2), (1, 3)] + ([(4, 5)] if len(a) == 6 else [])
    inter = va = vb = 1.0
    for lo, hi in axes:
        inter *= max(0.0, min(a[hi], b[hi]) - max(a[lo], b[lo]))
        va *= a[hi] - a[lo]
        vb *= b[hi] - b[lo]
    union = va + vb - inter
    return inter / union if union > 0 else 0.0


def _ref_match(pred, truth, kind, thr, spacing=None):
    """Per class: list of (score, is_tp) in COCO's accumulate order and the truth count."""
    out = {}
    labels = set()
    for img in truth:
        labels |= set(np.asarray(truth[img].get("labels", [])).tolist()) | set(np.asarray(pred[img].get("labels", [])).tolist())
    key = "boxes" if kind == "box" else "points"
    for c in labels:
        dets, npig = [], 0
        for img in truth:
            gts = [g for g, lab in zip(truth[img][key], truth[img]["labels"]) if lab == c]
            dts = [(s, d) for d, s, lab in zip(pred[img][key], pred[img]["scores"], pred[img]["labels"]) if lab == c]
            order = sorted(range(len(dts)), key=lambda i: -dts[i][0])  # Python's sort is stable
            npig += len(gts)
            gtm = [False] * len(gts)
            for di in order:
                s, d = dts[di]
                best, m = (min(thr, 1 - 1e-10) if kind == "box" else -thr), -1
                for gi, g in enumerate(gts):
                    if gtm[gi]:
                        continue
                    if kind == "box":
                        sim = _ref_iou(list(d), list(g))
                    else:
                        sp = spacing if spacing is not None else [1.0] * len(d)
                        sim = -math.sqrt(sum(((d[k] - g[k]) * sp[k]) ** 2 for k in range(len(d))))
                    if sim < best:
                        continue
                    best, m = sim, gi
                if m > -1:
                    gtm[m] = True
                dets.append((s, m > -1))
        out[c] = (dets, npig)
    return out


def _ref_ap(dets, npig):
    if npig == 0:
        return NAN
    order = sorted(range(len(dets)), key=lambda i: -dets[i][0])
    tp = fp = 0
    rc, pr = [], []
    for i in order:
        tp += dets[i][1]
        fp += not dets[i][1]
        rc.append(tp / npig)
        pr.append(tp / (tp + fp + np.spacing(1)))
    for i in range(len(pr) - 1, 0, -1):
        if pr[i] > pr[i - 1]:
            pr[i - 1] = pr[i]
    q = [0.0] * 101
    for ri, r in enumerate(np.linspace(0, 1, 101)):
        pi = int(np.searchsorted(rc, r, side="left"))
        if pi < len(pr):
            q[ri] = pr[pi]
    return float(np.mean(q))


def _ref_map(pred, truth, kind, thresholds, spacing=None):
    per_class = {}
    for t in thresholds:
        for c, (dets, npig) in _ref_match(pred, truth, kind, t, spacing).items():
            per_class.setdefault(c, []).append(_ref_ap(dets, npig))
    vals = [np.mean(v) for v in per_class.values() if not math.isnan(v[0])]
    return float(np.mean(vals)) if vals else NAN


def test_cross_check_reference_3d_boxes():
    """Source: the literal COCOeval reference above (pycocotools has no 3D boxes)."""
    pred, truth = _random_set(np.random.default_rng(10), n_images=15, n_classes=2, dims=3)
    ours = detection_metrics(pred, truth)
    assert ours["ap50"] == pytest.approx(_ref_map(pred, truth, "box", [0.5]), abs=1e-9)
    assert ours["map"] == pytest.approx(_ref_map(pred, truth, "box", [float(t) for t in IOU_THRESHOLDS]), abs=1e-9)


def test_cross_check_reference_points_with_spacing():
    """Source: the literal COCOeval-style reference above, with distance matching in mm."""
    pred, truth = _random_set(np.random.default_rng(11), n_images=15, n_classes=2, dims=3, kind="point")
    sp = (0.7, 0.7, 2.5)
    ours = detection_metrics(pred, truth, distance=6.0, spacing=sp)
    assert ours["ap"] == pytest.approx(_ref_map(pred, truth, "point", [6.0], spacing=sp), abs=1e-9)


def _ref_froc(pred, truth, kind, thr, n_images, spacing=None):
    """Literal sweep: every distinct score t keeps the predictions with score >= t; the sensitivity
    at f is the best one among thresholds (and 'keep nothing') with FP/image <= f."""
    flat = [d for dets, _ in _ref_match(pred, truth, kind, thr, spacing).values() for d in dets]
    n_gt = sum(len(truth[i]["labels"]) for i in truth)
    points = [(0.0, 0.0)]
    for t in sorted({s for s, _ in flat}, reverse=True):
        tp = sum(ok for s, ok in flat if s >= t)
        fp = sum(not ok for s, ok in flat if s >= t)
        points.append((fp / n_images, tp / n_gt))
    sens = [max(s for f_, s in points if f_ <= f + 1e-12) for f in FROC_FPS]
    return sens, float(np.mean(sens))


@pytest.mark.parametrize("seed", [0, 1])
def test_cross_check_froc_reference_sweep(seed):
    """Source: the literal threshold sweep above, on data with many tied scores (1 decimal)."""
    pred, truth = _random_set(np.random.default_rng(20 + seed), n_images=20, n_classes=2, tie_decimals=1)
    ours = detection_metrics(pred, truth)
    sens, score = _ref_froc(pred, truth, "box", 0.5, n_images=20)
    assert [ours[f"sens_at_{f:g}fp"] for f in FROC_FPS] == pytest.approx(sens, abs=1e-12)
    assert ours["froc_score"] == pytest.approx(score, abs=1e-12)


@pytest.mark.parametrize("decimals", [None, 1])
def test_cross_check_froc_monai(decimals):
    """Source: MONAI compute_froc_curve_data / compute_froc_score, modified from the official
    CAMELYON16 evaluation code (linear interpolation between operating points).

    The data avoid the conventions that differ on purpose: each truth is hit at most once (MONAI
    ignores extra hits, greedy matching counts them as FPs) and one truth is always missed (MONAI's
    curve starts at the second-lowest probability, which then is the lowest score)."""
    pytest.importorskip("monai")
    from monai.metrics.froc import compute_froc_curve_data, compute_froc_score

    rng = np.random.default_rng(30 + (decimals or 0))
    n_images, truth, pred, tp_probs, fp_probs = 12, {}, {}, [], []
    for i in range(n_images):
        gt = [[100.0 * k, 100.0 * i] for k in range(rng.integers(1 if i == 0 else 0, 4))]
        pts, scores = [], []
        for k, g in enumerate(gt):
            hit = rng.random() < 0.7 and not (i == 0 and k == 0)  # truth 0 of image 0 is always missed
            s = float(np.round(rng.uniform(0.06, 1), decimals) if decimals else rng.uniform(0.06, 1))
            if hit:
                pts.append([g[0] + 1, g[1]]), scores.append(s)
            tp_probs.append(s if hit else 0.0)
        for _ in range(rng.integers(0, 4)):
            s = float(np.round(rng.uniform(0.06, 1), decimals) if decimals else rng.uniform(0.06, 1))
            pts.append([50.0 + 100 * rng.integers(0, 3), 100.0 * i + 50]), scores.append(s)
            fp_probs.append(s)
        truth[i] = {"points": np.reshape(gt, (-1, 2))}
        pred[i] = {"points": np.reshape(pts, (-1, 2)), "scores": np.asarray(scores)}
    fps, sens = compute_froc_curve_data(np.asarray(fp_probs), np.asarray(tp_probs), len(tp_probs), n_images)
    ours = detection_metrics(pred, truth, distance=5.0, froc_interpolation="linear")
    curve = sorted(zip(ours["froc_curve"]["fppi"].round(12), ours["froc_curve"]["sensitivity"].round(12)))
    assert curve == sorted(zip(np.round(fps, 12), np.round(sens, 12)))
    assert ours["froc_score"] == pytest.approx(float(compute_froc_score(fps, sens, FROC_FPS)), abs=1e-12)
    if decimals is None:  # no ties: a staircase, where the step rule equals the linear one
        assert detection_metrics(pred, truth, distance=5.0)["froc_score"] == pytest.approx(ours["froc_score"], abs=1e-12)
