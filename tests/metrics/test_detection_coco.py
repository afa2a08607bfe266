"""COCO evaluation (openmia.metrics.detection_coco) and the detection evaluator's COCO features:
max-dets, AP75, AR, AP by object size, per-class mAP, crowd regions, ties across images, COCO JSON
in and out, FROC interpolation on the CLI.

Every metric has a hand-computed value here and is cross-checked against pycocotools ``COCOeval``
(the COCO reference implementation) with the same ``maxDets`` and ``areaRng``: on random data with
crowd regions, sizes in all three ranges, tied scores and small caps, and end to end on the COCO
files the evaluator writes.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import math

import numpy as np
import pytest

from openmia.cli.main import main
from openmia.errors import PredictionError
from openmia.evaluation.detection import evaluate_detection_files
from openmia.metrics import detection as D
from openmia.metrics import detection_coco as C

NAN = float("nan")


def _det(rows, scores=None):
    """Detections from rows (image, label, x1, y1, x2, y2)."""
    return D.Detections(np.array([r[0] for r in rows], dtype=np.int64).reshape(-1), np.array([r[1] for r in rows], dtype=object).astype(str),
                        np.array([r[2:] for r in rows], float).reshape(-1, 4), None if scores is None else np.asarray(scores, float))


def _csv(path, header, rows):
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)
    return path


# ----------------------------------------------------------------------------- hand-computed values


def test_max_dets_hand_computed_per_image_and_class():
    # image 0, class a: truths A, B; predictions FP .9, hit A .8, hit B .7; class b: truth C, hit .95
    truth = _det([(0, "a", 0, 0, 10, 10), (0, "a", 20, 20, 30, 30), (0, "b", 40, 40, 50, 50)])
    pred = _det([(0, "a", 50, 50, 60, 60), (0, "a", 0, 0, 10, 10), (0, "a", 20, 20, 30, 30), (0, "b", 40, 40, 50, 50)],
                [0.9, 0.8, 0.7, 0.95])
    # no cap, class a: precision 0, 1/2, 2/3 at recall 0, 1/2, 1 -> envelope 2/3 everywhere: AP 2/3; class b: 1
    full = C.coco_metrics(pred, truth, 1, max_dets=0)  # 0 = no cap
    assert full["map_per_class"] == pytest.approx({"a": 2 / 3, "b": 1.0}) and full["n_over_max_dets"] == 0
    assert full["ar"] == 1.0
    # max_dets=2 keeps the two best of class a (FP .9, hit .8) and class b's one (the cap is per
    # image AND class, as COCOeval.evaluateImg): class a precision 0, 1/2 at recall 0, 1/2 ->
    # AP = 51 * 1/2 / 101; recall 1/2 at every IoU -> AR = (1/2 + 1) / 2
    two = C.coco_metrics(pred, truth, 1, max_dets=2)
    assert two["map_per_class"] == pytest.approx({"a": 25.5 / 101, "b": 1.0}) and two["n_over_max_dets"] == 1
    assert two["ar"] == pytest.approx(0.75) and two["ar_per_class"] == pytest.approx({"a": 0.5, "b": 1.0})
    assert two["map"] == pytest.approx((25.5 / 101 + 1) / 2)
    # max_dets=1: class a keeps only the FP
    assert C.coco_metrics(pred, truth, 1, max_dets=1)["map_per_class"]["a"] == 0.0
    with pytest.raises(PredictionError, match="max_dets must be a whole number >= 0"):
        C.coco_metrics(pred, truth, 1, max_dets=-1)


def test_ap75_map_and_ar_hand_computed():
    # truths T1 = [0,0,10,10], T2 = [100,100,110,110]; q1 (.9) IoU 0.82 with T1, q2 (.8) IoU 0.62 with T2
    truth = _det([(0, "x", 0, 0, 10, 10), (0, "x", 100, 100, 110, 110)])
    pred = _det([(0, "x", 0, 0, 10, 8.2), (0, "x", 100, 100, 110, 106.2)], [0.9, 0.8])
    r = C.coco_metrics(pred, truth, 1)
    # IoU .50/.55/.60: both hits -> AP 1; .65-.80: q1 hit, q2 FP -> precision 1, 1/2 at recall 1/2 -> 51/101;
    # .85-.95: no hit -> 0
    assert r["ap50"] == 1.0 and r["ap75"] == pytest.approx(51 / 101)
    assert r["map"] == pytest.approx((3 * 1 + 4 * 51 / 101) / 10) == r["map_per_class"]["x"]
    # recall 1 (3 thresholds), 1/2 (4), 0 (3) -> AR = (3 + 2) / 10
    assert r["ar"] == pytest.approx(0.5)


def test_ap_by_object_size_hand_computed():
    # truth S (10x10, small) and L (100x100, large). Predictions by score:
    # .95 FP (10x10, small) | .9 = S | .8 = L | .6 FP (50x50, medium)
    truth = _det([(0, "x", 0, 0, 10, 10), (0, "x", 0, 200, 100, 300)])
    pred = _det([(0, "x", 500, 500, 510, 510), (0, "x", 0, 0, 10, 10), (0, "x", 0, 200, 100, 300), (0, "x", 300, 300, 350, 350)],
                [0.95, 0.9, 0.8, 0.6])
    r = C.coco_metrics(pred, truth, 1)
    # all: FP, TP, TP, FP -> precision 0, 1/2, 2/3, 1/2 at recall 0, 1/2, 1, 1 -> envelope 2/3 -> AP 2/3 at every IoU
    assert r["map"] == pytest.approx(2 / 3)
    # small: L is ignored, so is the prediction on it; the medium FP lies outside the range (ignored);
    # FP .95 then hit .9 -> precision 0, 1/2 at recall 0, 1 -> 1/2
    assert r["ap_small"] == pytest.approx(0.5)
    # large: S and both small predictions ignored, the medium FP too: one hit -> 1
    assert r["ap_large"] == 1.0
    # medium: no truth object in range -> NaN (COCO: -1)
    assert math.isnan(r["ap_medium"])
    # the boundary is inclusive at both ends (COCO's areaRng): a 32x32 object is small and medium
    edge = _det([(0, "x", 0, 0, 32, 32)])
    e = C.coco_metrics(_det([(0, "x", 0, 0, 32, 32)], [0.5]), edge, 1)
    assert e["ap_small"] == e["ap_medium"] == 1.0 and math.isnan(e["ap_large"])


def test_crowd_regions_absorb_predictions():
    # truth N (normal) and a crowd region; predictions by score: two inside the crowd, a hit on N, a FP
    truth = _det([(0, "x", 0, 0, 10, 10), (0, "x", 100, 100, 200, 200)])
    pred = _det([(0, "x", 110, 110, 120, 120), (0, "x", 150, 150, 160, 160), (0, "x", 0, 0, 10, 10), (0, "x", 300, 300, 310, 310)],
                [0.9, 0.8, 0.7, 0.6])
    crowd = [False, True]
    # both crowd predictions are ignored (overlap = intersection / prediction area = 1, and a crowd
    # region takes any number); then hit, FP -> AP 1; recall 1
    r = C.coco_metrics(pred, truth, 1, truth_crowd=crowd)
    assert r["map"] == 1.0 and r["ar"] == 1.0
    # as an ordinary object the region would make the first prediction a miss (IoU 0.01) -> AP < 1
    assert C.coco_metrics(pred, truth, 1)["map"] < 1.0
    cm = C.coco_match(pred, truth, 1, truth_crowd=crowd)
    mr = C.match_result(cm, 0.5)  # FROC / F1 see only the non-ignored rows
    assert len(mr.score) == 2 and len(mr.truth_image) == 1
    assert D.f1_at(mr, threshold=0.5)["precision"][0] == 0.5


def test_tied_scores_ordered_by_image_then_row():
    # image 0 holds the truth; image 1 a FP; both predictions score .8 and the FP comes first in the rows.
    # COCOeval orders the tie by image: hit then FP -> AP 1 (row order would give 1/2)
    truth = _det([(0, "x", 0, 0, 10, 10)])
    pred = _det([(1, "x", 50, 50, 60, 60), (0, "x", 0, 0, 10, 10)], [0.8, 0.8])
    assert C.coco_metrics(pred, truth, 2)["ap50"] == 1.0
    assert D.detection_metrics(pred, truth, 2)["ap"] == 1.0  # the point-estimate API uses the same rule
    # with the FP in the first image the tie goes the other way: precision 0, 1/2 -> 1/2
    assert C.coco_metrics(_det([(0, "x", 50, 50, 60, 60), (1, "x", 0, 0, 10, 10)], [0.8, 0.8]),
                          _det([(1, "x", 0, 0, 10, 10)]), 2)["ap50"] == pytest.approx(0.5)


def test_points_max_dets_and_distance():
    # points: one truth; three predictions, the hit last. The default has no cap for points.
    truth = D.Detections(np.array([0]), np.array(["c"]), np.array([[10.0, 10.0]]))
    pred = D.Detections(np.array([0, 0, 0]), np.array(["c"] * 3), np.array([[50.0, 50], [60, 60], [10, 11]]), np.array([0.9, 0.8, 0.7]))
    assert C.coco_metrics(pred, truth, 1, kind="point", distance=2.0, max_dets=None)["ap"] == pytest.approx(1 / 3)
    capped = C.coco_metrics(pred, truth, 1, kind="point", distance=2.0, max_dets=2)
    assert capped["ap"] == 0.0 and capped["n_over_max_dets"] == 1 and "map" not in capped
    with pytest.raises(PredictionError, match="area ranges apply to 2D boxes only"):
        C.coco_match(pred, truth, 1, kind="point", thresholds=(2.0,), area_ranges={"small": (0, 1024)})


# ----------------------------------------------------------------------------- internal consistency


def test_weights_equal_duplicated_images_and_ap_sorted_equals_average_precision():
    rng = np.random.default_rng(3)
    pred, truth = _random_coco(rng, n_images=12)
    t, p = _detections(truth, pred)
    n = len(truth["images"])
    kw = dict(truth_area=[g["area"] for g in truth["annotations"]], truth_crowd=[g["iscrowd"] for g in truth["annotations"]])
    cm = C.coco_match(p, t, n, max_dets=3, **kw)
    w = rng.integers(0, 3, n)
    keep = np.repeat(np.arange(n), w)  # image i duplicated w[i] times
    remap = [np.flatnonzero(keep == i) for i in range(n)]

    def dup(d, extra=None):
        rows = [(k, r) for r in range(len(d.image)) for k in remap[d.image[r]]]
        out = D.Detections(np.array([k for k, _ in rows], np.int64), d.label[[r for _, r in rows]],
                           d.coords[[r for _, r in rows]], None if d.score is None else d.score[[r for _, r in rows]])
        return out, (None if extra is None else np.asarray(extra)[[r for _, r in rows]])

    tt, ta = dup(t, kw["truth_area"])
    _, tc = dup(t, kw["truth_crowd"])
    pp, _ = dup(p)
    cm2 = C.coco_match(pp, tt, len(keep), max_dets=3, truth_area=ta, truth_crowd=tc)
    for area in ("all", "small", "medium", "large"):
        a = C.coco_ap(cm, area=area, w=w[None])[0]
        assert a == pytest.approx(C.coco_ap(cm2, area=area)[0], abs=1e-12, nan_ok=True), area
    assert C.coco_ar(cm, w=w[None])[0] == pytest.approx(C.coco_ar(cm2)[0], abs=1e-12)
    # the (prediction, resample) layout equals the reference AP of openmia.metrics.detection exactly
    W = rng.integers(0, 3, (40, n)).astype(float)
    mr = C.match_result(cm, 0.5)
    for lab in cm.labels:
        np.testing.assert_array_equal(C.class_ap(cm, lab, thresholds=(0.5,), w=W),
                                      D.average_precision(mr, threshold=0.5, label=lab, w=W))


# ----------------------------------------------------------------------------- pycocotools cross-check


def _random_coco(rng, n_images=25, n_classes=3, crowd_p=0.1):
    """A random COCO truth document and results list: sizes in all three ranges, areas that differ
    from the box area, crowd regions, duplicates, spurious classes, scores tied across images."""
    images, gts, dts = [], [], []
    for img in range(1, n_images + 1):
        images.append({"id": img, "file_name": f"im{img}.png"})
        mine = []
        for _ in range(rng.integers(0, 6)):
            s = rng.choice([10, 40, 150]) * rng.uniform(0.5, 1.5)
            x, y = rng.uniform(0, 300, 2)
            w, h = s * rng.uniform(0.6, 1.4), s * rng.uniform(0.6, 1.4)
            mine.append({"id": len(gts) + len(mine) + 1, "image_id": img, "category_id": int(rng.integers(1, n_classes + 1)),
                         "bbox": [x, y, w, h], "area": w * h * rng.choice([1.0, 0.8]), "iscrowd": int(rng.random() < crowd_p)})
        gts += mine
        for g in mine:
            for _ in range(rng.integers(0, 3)):
                x, y, w, h = g["bbox"]
                j = rng.normal(0, 0.15 * math.sqrt(w * h), 4)
                cat = g["category_id"] if rng.random() < 0.9 else int(rng.integers(1, n_classes + 1))
                dts.append({"image_id": img, "category_id": cat, "bbox": [x + j[0], y + j[1], max(w + j[2], 1.0), max(h + j[3], 1.0)],
                            "score": float(np.round(rng.random(), 1))})
        for _ in range(rng.integers(0, 4)):
            s = rng.uniform(5, 200)
            dts.append({"image_id": img, "category_id": int(rng.integers(1, n_classes + 2)),
                        "bbox": [*rng.uniform(0, 300, 2).tolist(), s, s * 0.8], "score": float(np.round(rng.random(), 1))})
    cats = [{"id": k, "name": f"c{k}"} for k in range(1, n_classes + 2)]
    return dts, {"images": images, "annotations": gts, "categories": cats}


def _detections(truth, dts):
    index = {im["id"]: i for i, im in enumerate(sorted(truth["images"], key=lambda d: d["id"]))}

    def xy(b):
        return [b[0], b[1], b[0] + b[2], b[1] + b[3]]

    t = D.Detections(np.array([index[g["image_id"]] for g in truth["annotations"]], np.int64),
                     np.array([str(g["category_id"]) for g in truth["annotations"]]),
                     np.array([xy(g["bbox"]) for g in truth["annotations"]], float).reshape(-1, 4))
    p = D.Detections(np.array([index[d["image_id"]] for d in dts], np.int64), np.array([str(d["category_id"]) for d in dts]),
                     np.array([xy(d["bbox"]) for d in dts], float).reshape(-1, 4), np.array([d["score"] for d in dts], float))
    return t, p


def coco_reference(truth: dict, dts: list, max_dets: int = 100) -> dict:
    """pycocotools COCOeval (bbox; maxDets [max_dets]; COCO's four area ranges) -> the summary values."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    gt = COCO()
    gt.dataset = json.loads(json.dumps(truth))
    with contextlib.redirect_stdout(io.StringIO()):
        gt.createIndex()
        ev = COCOeval(gt, gt.loadRes(json.loads(json.dumps(dts))), "bbox")
        ev.params.maxDets = [max_dets]
        ev.evaluate()
        ev.accumulate()
    prec, rec = ev.eval["precision"][..., 0], ev.eval["recall"][..., 0]  # (T, R, K, A), (T, K, A)
    assert list(ev.params.areaRngLbl) == ["all", "small", "medium", "large"]

    def m(x):
        return float(np.mean(x[x > -1])) if (x > -1).any() else NAN

    t75 = int(np.argmin(np.abs(ev.params.iouThrs - 0.75)))
    names = {c["id"]: c.get("name", str(c["id"])) for c in truth["categories"]}
    out = {"map": m(prec[..., 0]), "ap50": m(prec[0, :, :, 0]), "ap75": m(prec[t75, :, :, 0]), "ar": m(rec[:, :, 0]),
           "ap_small": m(prec[..., 1]), "ap_medium": m(prec[..., 2]), "ap_large": m(prec[..., 3])}
    out["map_per_class"] = {names[c]: float(np.mean(prec[:, :, k, 0])) for k, c in enumerate(ev.params.catIds)
                            if (prec[:, :, k, 0] > -1).all()}
    out["ap50_per_class"] = {names[c]: float(np.mean(prec[0, :, k, 0])) for k, c in enumerate(ev.params.catIds)
                             if (prec[0, :, k, 0] > -1).all()}
    return out


@pytest.mark.parametrize("seed, max_dets", [(0, 100), (1, 3), (2, 1), (3, 100)])
def test_cross_check_pycocotools_random(seed, max_dets):
    """Source: pycocotools COCOeval (the COCO reference code) with the same maxDets and areaRng on random
    boxes with crowd regions, annotation areas != box areas, scores tied across images, a class
    without truth; every COCO metric and the per-class mAP agree to 1e-9."""
    pytest.importorskip("pycocotools")
    dts, truth = _random_coco(np.random.default_rng(seed))
    ref = coco_reference(truth, dts, max_dets)
    t, p = _detections(truth, dts)
    ours = C.coco_metrics(p, t, len(truth["images"]), max_dets=max_dets, truth_area=[g["area"] for g in truth["annotations"]],
                          truth_crowd=[g["iscrowd"] for g in truth["annotations"]])
    for k in ("map", "ap50", "ap75", "ar", "ap_small", "ap_medium", "ap_large"):
        assert ours[k] == pytest.approx(ref[k], abs=1e-9, nan_ok=True), k
    per_class = {f"c{k}": v for k, v in ours["map_per_class"].items() if not math.isnan(v)}
    assert per_class == pytest.approx(ref["map_per_class"], abs=1e-9)


def _write_coco(tmp_path, truth, dts):
    (tmp_path / "truth.json").write_text(json.dumps(truth))
    (tmp_path / "pred.json").write_text(json.dumps(dts))
    return tmp_path / "pred.json", tmp_path / "truth.json"


def _summary_values(res):
    return {(m["metric"], m["label"]): (NAN if m["value"] is None else m["value"]) for m in res.summary["metrics"]}


def test_evaluator_coco_json_inputs_match_pycocotools(tmp_path):
    """Source: pycocotools COCOeval on the same COCO files (annotations + results), maxDets 5."""
    pytest.importorskip("pycocotools")
    dts, truth = _random_coco(np.random.default_rng(7), n_images=20)
    pred_path, truth_path = _write_coco(tmp_path, truth, dts)
    res = evaluate_detection_files(pred_path, truth_path, tmp_path / "out", max_dets=5, n_resamples=60)
    ref = coco_reference(truth, dts, 5)
    v = _summary_values(res)
    for k in ("map", "ap50", "ap75", "ar", "ap_small", "ap_medium", "ap_large"):
        assert v[(k, "all")] == pytest.approx(ref[k], abs=1e-9, nan_ok=True), k
    for name, val in ref["map_per_class"].items():  # labels are the category names
        assert v[("map", name)] == pytest.approx(val, abs=1e-9)
        assert v[("ap50", name)] == pytest.approx(ref["ap50_per_class"][name], abs=1e-9)
    s = res.summary
    assert s["format"] == {"pred": "coco", "truth": "coco"} and s["max_dets"] == 5 and s["n_crowd_regions"] > 0
    assert res.per_case[0][0] == "1"  # case ids are the image ids as text
    # every new row has a bootstrap CI around its value
    for m in s["metrics"]:
        if m["value"] is not None and m["metric"] in ("ap75", "ar", "ap_small", "ap_large", "map"):
            assert m["ci_low"] <= m["value"] + 1e-12 and m["value"] <= m["ci_high"] + 1e-12, m
            assert m["ci_method"] == "bca_bootstrap_images"


def test_evaluator_writes_coco_files_that_pycocotools_scores_alike(tmp_path):
    """Source: pycocotools COCOeval on coco_truth.json / coco_results.json written by the evaluator
    from CSV inputs (default maxDets 100 and a cap of 2)."""
    pytest.importorskip("pycocotools")
    dts, truth = _random_coco(np.random.default_rng(11), n_images=15, crowd_p=0.0)
    ids = {im["id"]: f"img{im['id']:02d}" for im in truth["images"]}
    names = {c["id"]: c["name"] for c in truth["categories"]}
    t_rows = [[ids[g["image_id"]], names[g["category_id"]], g["bbox"][0], g["bbox"][1], g["bbox"][0] + g["bbox"][2],
               g["bbox"][1] + g["bbox"][3]] for g in truth["annotations"]]
    t_rows += [[c, "", "", "", "", ""] for c in ids.values()]  # every image listed, with or without objects
    p_rows = [[ids[d["image_id"]], names[d["category_id"]], d["score"], d["bbox"][0], d["bbox"][1], d["bbox"][0] + d["bbox"][2],
               d["bbox"][1] + d["bbox"][3]] for d in dts]
    tc = _csv(tmp_path / "t.csv", ["case_id", "label", "x1", "y1", "x2", "y2"], t_rows)
    pc = _csv(tmp_path / "p.csv", ["case_id", "label", "score", "x1", "y1", "x2", "y2"], p_rows)
    for cap in (None, 2):
        out = tmp_path / f"out{cap}"
        res = evaluate_detection_files(pc, tc, out, max_dets=cap, n_resamples=30)
        written_truth = json.loads((out / "coco_truth.json").read_text())
        written = json.loads((out / "coco_results.json").read_text())
        assert len(written) == len(dts) and res.summary["coco_files"] == ["coco_truth.json", "coco_results.json"]
        ref = coco_reference(written_truth, written, cap or 100)
        v = _summary_values(res)
        for k in ("map", "ap50", "ap75", "ar", "ap_small", "ap_medium", "ap_large"):
            assert v[(k, "all")] == pytest.approx(ref[k], abs=1e-9, nan_ok=True), (cap, k)
        for name, val in ref["map_per_class"].items():
            assert v[("map", name)] == pytest.approx(val, abs=1e-9)


def test_csv_row_order_does_not_change_ap_with_tied_scores(tmp_path):
    """Rows shuffled (scores tied across images, distinct within each image): identical summary, equal to
    pycocotools' values on the same data."""
    pytest.importorskip("pycocotools")
    rng = np.random.default_rng(5)
    truth_rows, pred_rows = [], []
    for i in range(12):
        cid = f"case{i:02d}"
        truth_rows.append([cid, "", "", "", "", ""])
        scores = rng.permutation([0.9, 0.7, 0.5, 0.3])[: rng.integers(1, 5)]  # distinct within the image, tied across
        for s in scores:
            x, y = rng.uniform(0, 200, 2)
            truth_rows.append([cid, "lesion", x, y, x + 30, y + 30])
            jit = rng.choice([0.0, 12.0, 40.0])  # hit, weak hit, miss
            pred_rows.append([cid, "lesion", s, x + jit, y, x + jit + 30, y + 30])
    tc = _csv(tmp_path / "t.csv", ["case_id", "label", "x1", "y1", "x2", "y2"], truth_rows)
    a = evaluate_detection_files(_csv(tmp_path / "a.csv", ["case_id", "label", "score", "x1", "y1", "x2", "y2"], pred_rows), tc,
                                 tmp_path / "oa", n_resamples=40)
    shuffled = [pred_rows[i] for i in rng.permutation(len(pred_rows))]
    b = evaluate_detection_files(_csv(tmp_path / "b.csv", ["case_id", "label", "score", "x1", "y1", "x2", "y2"], shuffled), tc,
                                 n_resamples=40)
    va, vb = _summary_values(a), _summary_values(b)
    assert va.keys() == vb.keys()
    for k in va:
        assert va[k] == pytest.approx(vb[k], abs=1e-12, nan_ok=True), k
    ref = coco_reference(json.loads((tmp_path / "oa" / "coco_truth.json").read_text()),
                         json.loads((tmp_path / "oa" / "coco_results.json").read_text()))
    assert va[("ap50", "all")] == pytest.approx(ref["ap50"], abs=1e-12) and va[("map", "all")] == pytest.approx(ref["map"], abs=1e-12)


# ----------------------------------------------------------------------------- files, options, errors


def test_coco_json_and_csv_inputs_give_the_same_summary(tmp_path):
    dts, truth = _random_coco(np.random.default_rng(2), n_images=8, crowd_p=0.0)
    for g in truth["annotations"]:
        g.pop("area")  # the area defaults to w * h, as for a CSV box
    pred_path, truth_path = _write_coco(tmp_path, truth, dts)

    def x2y2(b):
        return [b[0], b[1], b[0] + b[2], b[1] + b[3]]

    # CSV files with the category ids as labels (a COCO results file against a CSV truth uses them)
    t_rows = [[str(im["id"]), "", "", "", "", ""] for im in truth["images"]]
    t_rows += [[str(g["image_id"]), str(g["category_id"]), *x2y2(g["bbox"])] for g in truth["annotations"]]
    p_rows = [[str(d["image_id"]), str(d["category_id"]), d["score"], *x2y2(d["bbox"])] for d in dts]
    tc = _csv(tmp_path / "t.csv", ["case_id", "label", "x1", "y1", "x2", "y2"], t_rows)
    pc = _csv(tmp_path / "p.csv", ["case_id", "label", "score", "x1", "y1", "x2", "y2"], p_rows)
    both_coco = _summary_values(evaluate_detection_files(pred_path, truth_path, n_resamples=30))
    mixed = _summary_values(evaluate_detection_files(pred_path, tc, n_resamples=30))
    both_csv = _summary_values(evaluate_detection_files(pc, tc, n_resamples=30))
    (tmp_path / "pred.txt").write_text(json.dumps(dts))
    forced = _summary_values(evaluate_detection_files(tmp_path / "pred.txt", truth_path, format="coco", n_resamples=30))
    assert forced.keys() == both_coco.keys()
    assert all(forced[k] == pytest.approx(both_coco[k], abs=1e-12, nan_ok=True) for k in both_coco)
    # COCO labels are the category names c1, c2, ...; the CSV ones the ids
    renamed = {(m, lab[1:] if lab.startswith("c") else lab): v for (m, lab), v in both_coco.items()}
    for other in (mixed, both_csv):
        assert other.keys() == renamed.keys()
        for k in renamed:
            assert other[k] == pytest.approx(renamed[k], abs=1e-12, nan_ok=True), k


@pytest.mark.parametrize("content, where, message", [
    ("{not json", "truth", "not a valid JSON file"),
    ("[]", "truth", r"a list is a COCO \*results\* file"),
    ('{"images": [{"id": 1}], "annotations": [{"id": 1, "image_id": 2, "category_id": 1, "bbox": [0, 0, 1, 1]}]}', "truth",
     r"annotations\[0\] \(id 1\): image_id 2 is not in 'images'"),
    ('{"images": [{"id": 1}], "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [0, 0, -1, 1]}]}', "truth",
     "negative width or height"),
    ('{"images": [{"id": 1}, {"id": 1}], "annotations": []}', "truth", "duplicate image id 1"),
    ('{"images": []}', "pred", "a COCO results file .* is a list"),
    ('[{"image_id": 9, "category_id": 1, "bbox": [0, 0, 1, 1], "score": 0.5}]', "pred", "entry 0: image_id 9 is not an image of the truth"),
    ('[{"image_id": 1, "category_id": 1, "bbox": [0, 0, 1, 1], "score": null}]', "pred", "entry 0: 'score' must be a finite number"),
    ('[{"image_id": 1, "category_id": 1, "bbox": [0, 0, 1], "score": 0.5}]', "pred", r"'bbox' must be four finite numbers"),
])
def test_coco_json_errors_name_file_and_entry(tmp_path, content, where, message):
    good_truth = '{"images": [{"id": 1}], "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [0, 0, 5, 5]}]}'
    good_pred = '[{"image_id": 1, "category_id": 1, "bbox": [0, 0, 5, 5], "score": 0.5}]'
    (tmp_path / "t.json").write_text(content if where == "truth" else good_truth)
    (tmp_path / "p.json").write_text(content if where == "pred" else good_pred)
    with pytest.raises(PredictionError, match=message):
        evaluate_detection_files(tmp_path / "p.json", tmp_path / "t.json", n_resamples=10)


def test_cli_max_dets_froc_interpolation_and_format(tmp_path, capsys):
    # the tied-score FROC example of tests/metrics/test_detection.py: step 11/14, linear 95/112
    truth = _csv(tmp_path / "t.csv", ["case_id", "label", "x", "y"], [["a", "c", 0, 0], ["b", "c", 0, 0]])
    pred = _csv(tmp_path / "p.csv", ["case_id", "label", "score", "x", "y"],
                [["a", "c", 0.9, 0, 0], ["a", "c", 0.5, 50, 50], ["b", "c", 0.5, 50, 50], ["b", "c", 0.5, 0, 0]])
    base = ["evaluate", "--task", "detection", "--pred", str(pred), "--truth", str(truth), "--distance", "1", "--resamples", "30"]
    assert main([*base, "--out", str(tmp_path / "s")]) == 0
    assert main([*base, "--out", str(tmp_path / "l"), "--froc-interpolation", "linear"]) == 0
    step, lin = (json.loads((tmp_path / d / "summary.json").read_text()) for d in "sl")
    assert step["froc_interpolation"] == "step" and lin["froc_interpolation"] == "linear"
    froc = {s["froc_interpolation"]: next(m["value"] for m in s["metrics"] if m["metric"] == "froc") for s in (step, lin)}
    assert froc == pytest.approx({"step": 11 / 14, "linear": 95 / 112})
    assert step["max_dets"] is None and step["coco_files"] == []  # points: no cap by default, no COCO files
    capsys.readouterr()
    assert main([*base, "--out", str(tmp_path / "m"), "--max-dets", "1"]) == 0
    assert "2 prediction(s) beyond --max-dets 1" in capsys.readouterr().out
    capped = json.loads((tmp_path / "m" / "summary.json").read_text())
    assert capped["max_dets"] == 1 and capped["n_predictions_over_max_dets"] == 2
    # --format coco forces JSON parsing of a .csv-named file: a clear error, not a CSV complaint
    assert main([*base, "--out", str(tmp_path / "f"), "--format", "coco"]) == 2
    assert "not a valid JSON file" in capsys.readouterr().err
    assert main([*base, "--out", str(tmp_path / "n"), "--max-dets", "-3"]) == 2
