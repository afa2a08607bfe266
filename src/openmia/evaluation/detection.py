"""The detection evaluator (DESIGN §4.1): boxes or points from CSV or COCO JSON files, scored with
COCOeval's conventions (:mod:`openmia.metrics.detection_coco`) and BCa bootstrap CIs over images.

Formats:
  CSV   truth ``case_id,label,x1,y1,x2,y2[,z1,z2]`` (boxes) or ``case_id,label,x,y[,z]`` (points);
        a row with only ``case_id`` (other fields empty) lists an image without objects.
        Predictions add a ``score`` column. Every image must be in the truth.
  COCO  truth: a COCO annotations file; predictions: a COCO results file (list of ``{image_id,
        category_id, bbox [x, y, w, h], score}``); see :mod:`openmia.evaluation.coco_json`.
        Detected from the ``.json`` suffix (``format="auto"``) or forced with ``format="coco"``.

Outputs: ``per_case.csv``, ``summary.json``, ``report.html`` and, for 2D boxes,
``coco_truth.json`` + ``coco_results.json`` (the same data in COCO format, for pycocotools).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np

from openmia.errors import PredictionError
from openmia.evaluation.io import read_csv
from openmia.evaluation.task_result import SCHEMA, TaskResult, _float_cell, _row
from openmia.evaluation.result import write_outputs

BOX_COLS = (("x1", "y1", "x2", "y2"), ("x1", "y1", "x2", "y2", "z1", "z2"))
POINT_COLS = (("x", "y"), ("x", "y", "z"))
FORMATS = ("auto", "csv", "coco")
FROC_INTERPOLATIONS = ("step", "linear")
COCO_FILES = ("coco_truth.json", "coco_results.json")


def _read_detections(path, *, with_score: bool, images: list[str] | None):
    from openmia.metrics.detection import Detections, check_boxes

    need = ("case_id", "label", "score") if with_score else ("case_id", "label")
    t = read_csv(path, need)
    h = t.header
    coords = next((c for c in (*BOX_COLS[::-1], *POINT_COLS[::-1]) if all(x in h for x in c)), None)
    if coords is None:
        raise PredictionError(f"{t.path}: expected coordinate columns x1,y1,x2,y2[,z1,z2] (boxes) or x,y[,z] (points), found {h}")
    kind = "box" if coords[0] == "x1" else "point"
    ci, li = h.index("case_id"), h.index("label")
    cols = [h.index(c) for c in coords]
    img_ids = list(images) if images is not None else []
    index = {c: i for i, c in enumerate(img_ids)}
    rows_img, rows_lab, rows_xy, rows_sc, rows_case = [], [], [], [], []
    for line, r in enumerate(t.rows, start=2):
        cid = r[ci]
        if not cid:
            raise PredictionError(f"{t.path}, line {line}: empty case_id")
        if cid not in index:
            if images is not None:
                raise PredictionError(f"{t.path}, line {line}: case {cid!r} is not in the truth file (every image must be listed there)")
            index[cid] = len(img_ids)
            img_ids.append(cid)
        if all(not r[c] for c in cols) and not r[li]:
            continue  # an image without objects
        rows_case.append(cid)
        rows_img.append(index[cid])
        rows_lab.append(r[li])
        rows_xy.append([_float_cell(t, line, c, r[j]) for c, j in zip(coords, cols)])
        if with_score:
            rows_sc.append(_float_cell(t, line, "score", r[h.index("score")]))
    xy = np.asarray(rows_xy, float).reshape(-1, len(coords))
    if kind == "box" and len(xy):
        check_boxes(xy, rows_case, "prediction" if with_score else "truth")
    det = Detections(np.asarray(rows_img, int), np.asarray(rows_lab, dtype=object).astype(str), xy,
                     np.asarray(rows_sc, float) if with_score else None)
    return det, img_ids, kind, coords, t.sha256


def file_format(path: str | Path, fmt: str = "auto") -> str:
    """``"csv"`` or ``"coco"``: ``fmt`` itself, or from the suffix (``.json`` = COCO) for ``"auto"``."""
    if fmt not in FORMATS:
        raise PredictionError(f"detection format must be one of {', '.join(FORMATS)}, found {fmt!r}")
    if fmt != "auto":
        return fmt
    return "coco" if Path(path).suffix.lower() == ".json" else "csv"


def read_inputs(pred_path, truth_path, fmt: str = "auto") -> dict[str, Any]:
    """Predictions and truth from CSV or COCO files (each file's format from ``fmt`` / its suffix)."""
    from openmia.evaluation import coco_json

    d: dict[str, Any] = {"truth_area": None, "truth_crowd": None, "pred_area": None, "image_ids": None, "categories": None}
    d["truth_format"], d["pred_format"] = file_format(truth_path, fmt), file_format(pred_path, fmt)
    if d["truth_format"] == "coco":
        t = coco_json.read_coco_truth(truth_path)
        d.update(truth=t["det"], images=t["images"], kind="box", coords=BOX_COLS[0], truth_sha256=t["sha256"],
                 truth_area=t["area"], truth_crowd=t["crowd"], image_ids=t["image_ids"], categories=t["categories"])
    else:
        d["truth"], d["images"], d["kind"], d["coords"], d["truth_sha256"] = _read_detections(truth_path, with_score=False, images=None)
    if d["pred_format"] == "coco":
        if d["coords"] != BOX_COLS[0]:
            raise PredictionError(f"{pred_path}: COCO results hold 2D boxes but the truth {truth_path} has columns "
                                  f"{','.join(d['coords'])}")
        p = coco_json.read_coco_results(pred_path, d["images"], d["categories"])
        d["pred"], d["pred_area"], d["pred_sha256"] = p["det"], p["area"], p["sha256"]
    else:
        d["pred"], _, _, pcoords, d["pred_sha256"] = _read_detections(pred_path, with_score=True, images=d["images"])
        if pcoords != d["coords"]:
            raise PredictionError(f"{pred_path}: coordinate columns {list(pcoords)} differ from the truth's {list(d['coords'])}")
    return d


def match_inputs(d: dict[str, Any], *, iou_threshold: float, distance: float, spacing, max_dets: int | None):
    """COCO matching of :func:`read_inputs`' data; returns (CocoMatch, main threshold)."""
    from openmia.metrics import detection as D
    from openmia.metrics.detection_coco import coco_match, resolve_max_dets

    n, kind = len(d["images"]), d["kind"]
    cap = resolve_max_dets(kind, max_dets)
    if kind == "box":
        main = float(iou_threshold)
        ths = sorted({*(float(t) for t in D.IOU_THRESHOLDS), main})
        cm = coco_match(d["pred"], d["truth"], n, kind="box", thresholds=ths, max_dets=cap,
                        pred_area=d["pred_area"], truth_area=d["truth_area"], truth_crowd=d["truth_crowd"])
    else:
        main = float(distance)
        cm = coco_match(d["pred"], d["truth"], n, kind="point", thresholds=(main,), max_dets=cap,
                        spacing=spacing)
    return cm, main


def _per_weights(f):
    """``f(w)`` remembered per block of weights (by content): the 7 FROC sensitivities and the FROC
    score (F1, precision and recall) are summary rows of one computation each."""
    import hashlib

    memo: dict[bytes, Any] = {}

    def g(w):
        w = np.ascontiguousarray(w, dtype=float)
        key = hashlib.blake2b(w.tobytes(), digest_size=16).digest() + bytes(str(w.shape), "ascii")
        if key not in memo:
            if len(memo) > 32:
                memo.pop(next(iter(memo)))
            memo[key] = f(w)
        return memo[key]

    return g


def metric_stats(cm, main: float, *, score_threshold: float, froc_interpolation: str = "step") -> dict[tuple[str, str], Any]:
    """Every summary statistic ``(metric, label) -> f(image weights (B, n)) -> (B,)``."""
    from openmia.metrics import detection as D
    from openmia.metrics import detection_coco as C

    if froc_interpolation not in FROC_INTERPOLATIONS:
        raise PredictionError(f"FROC interpolation must be 'step' or 'linear', found {froc_interpolation!r}")
    mr = C.match_result(cm, main)
    boxes = cm.kind == "box"
    s: dict[tuple[str, str], Any] = {}
    if boxes:
        s[("ap50", "all")] = lambda w: C.coco_ap(cm, thresholds=(0.5,), w=w)
        s[("ap75", "all")] = lambda w: C.coco_ap(cm, thresholds=(0.75,), w=w)
        s[("map", "all")] = lambda w: C.coco_ap(cm, w=w)
        s[("ar", "all")] = lambda w: C.coco_ar(cm, w=w)
        for area in C.SIZE_AREAS:
            if area in cm.areas:
                s[(f"ap_{area}", "all")] = lambda w, area=area: C.coco_ap(cm, area=area, w=w)
    if not boxes or abs(main - 0.5) > 1e-9:
        s[("ap", "all")] = lambda w: C.coco_ap(cm, thresholds=(main,), w=w)

    @_per_weights
    def froc(w):
        return D.froc(mr, threshold=main, w=w, interpolation=froc_interpolation)

    @_per_weights
    def f1(w):
        return D.f1_at(mr, threshold=main, score_threshold=score_threshold, w=w)

    s[("froc", "all")] = lambda w: froc(w)["score"]
    for j, f in enumerate(D.FROC_FPS):
        s[(f"sens_at_{f:g}fp", "all")] = lambda w, j=j: froc(w)["sensitivity"][:, j]
    for name in ("f1", "precision", "recall"):
        s[(name, "all")] = lambda w, name=name: f1(w)[name]
    for lab in C.labels_with_truth(cm):
        if boxes:
            s[("ap50", str(lab))] = lambda w, lab=lab: C.class_ap(cm, lab, thresholds=(0.5,), w=w)
            s[("map", str(lab))] = lambda w, lab=lab: C.class_ap(cm, lab, w=w)
        if not boxes or abs(main - 0.5) > 1e-9:
            s[("ap", str(lab))] = lambda w, lab=lab: C.class_ap(cm, lab, thresholds=(main,), w=w)
    return s


def per_image_counts(cm, main: float, score_threshold: float) -> dict[str, np.ndarray]:
    """Per image (and class): truth objects, kept predictions (score >= threshold), TP, FP, FN.

    Returns ``{"n_truth", "n_pred", "tp"}`` arrays ``(n_images, n_labels)`` over ``cm.labels``
    (ignored predictions and truths — crowd regions, COCO — left out)."""
    from openmia.metrics.detection_coco import match_result

    mr = match_result(cm, main)
    n, K = cm.n_images, len(cm.labels)
    lid = {lab: i for i, lab in enumerate(cm.labels)}

    def count(img, lab, sel=None):
        li = np.array([lid[x] for x in lab.tolist()], dtype=np.int64).reshape(-1)
        flat = img * K + li if len(img) else np.zeros(0, np.int64)
        if sel is not None:
            flat = flat[sel]
        return np.bincount(flat, minlength=n * K).reshape(n, K)

    keep = mr.score >= score_threshold
    return {"n_truth": count(mr.truth_image, mr.truth_label), "n_pred": count(mr.pred_image, mr.pred_label, keep),
            "tp": count(mr.pred_image, mr.pred_label, keep & mr.tp[main])}


def evaluate_detection_files(pred_csv, truth_csv, out_dir=None, *, iou_threshold: float = 0.5, distance: float = 5.0,
                             spacing: Sequence[float] | None = None, score_threshold: float = 0.5,
                             max_dets: int | None = None, froc_interpolation: str = "step", format: str = "auto",
                             n_resamples: int = 2000, seed: int = 0, alpha: float = 0.05, **_: Any) -> TaskResult:
    """Score detections (CSV or COCO JSON; boxes or points) with BCa bootstrap CIs over images.

    Args:
        max_dets: predictions kept per image and class (highest scores first; COCOeval's cap).
            None: COCO's 100 for boxes, no cap for points; 0: no cap.
        froc_interpolation: ``"step"`` (default) or ``"linear"`` (LUNA16 / CAMELYON16 scripts).
        format: ``"auto"`` (``.json`` = COCO, else CSV), ``"csv"`` or ``"coco"`` (both files).
    """
    from openmia.metrics import detection as D
    from openmia.stats.bootstrap import bootstrap_ci, resample_weights

    if not np.isfinite(score_threshold):
        raise PredictionError(f"score_threshold must be a finite number, found {score_threshold}")
    d = read_inputs(pred_csv, truth_csv, format)
    cm, main = match_inputs(d, iou_threshold=iou_threshold, distance=distance, spacing=spacing, max_dets=max_dets)
    kind, images, n = d["kind"], d["images"], len(d["images"])
    stats = metric_stats(cm, main, score_threshold=score_threshold, froc_interpolation=froc_interpolation)
    W = resample_weights(n, n_resamples, seed)
    rows = []
    for (metric, label), stat in stats.items():
        r = bootstrap_ci(stat, n, weights=W, seed=seed, alpha=alpha)
        rows.append(_row(metric, label, r.value, r.ci_low, r.ci_high, "bca_bootstrap_images", n, r.n_dropped))
    c = {k: v.sum(1) for k, v in per_image_counts(cm, main, score_threshold).items()}
    per_case = []
    for i, cid in enumerate(images):
        nt, npred, ntp = int(c["n_truth"][i]), int(c["n_pred"][i]), int(c["tp"][i])
        per_case += [(cid, "all", "n_truth", nt), (cid, "all", "n_pred", npred), (cid, "all", "tp", ntp),
                     (cid, "all", "fp", npred - ntp), (cid, "all", "fn", nt - ntp)]
    from openmia.metrics.detection_coco import AREA_RANGES, labels_with_truth, match_result

    mr = match_result(cm, main)
    curve = D.froc(mr, threshold=main)
    planar = kind == "box" and len(d["coords"]) == 4
    summary = {
        "schema": SCHEMA, "task": "detection", "kind": kind, "n_cases": n, "n_truth_objects": int(len(mr.truth_image)),
        "n_predictions": int(len(d["pred"].coords)), "labels": ["all"] + [str(x) for x in labels_with_truth(cm)],
        "metrics": rows, "iou_threshold": main if kind == "box" else None, "distance": main if kind == "point" else None,
        "score_threshold": score_threshold, "max_dets": cm.max_dets, "n_predictions_over_max_dets": cm.n_over_max_dets,
        "n_crowd_regions": int(np.sum(d["truth_crowd"])) if d["truth_crowd"] is not None else 0,
        "area_ranges": {k: list(v) for k, v in AREA_RANGES.items()} if planar else None,
        "froc_interpolation": froc_interpolation, "format": {"pred": d["pred_format"], "truth": d["truth_format"]},
        "coco_files": list(COCO_FILES) if planar and out_dir is not None else [],
        "froc_curve": {"fppi": curve["curve_fppi"], "sensitivity": curve["curve_sensitivity"]},
        "bootstrap": {"method": "bca", "n_resamples": n_resamples, "seed": seed, "unit": "image", "alpha": alpha},
        "missing_cases": [],
        "conventions": {
            "matching": "greedy by score per image and class, highest IoU (nearest point) first (COCOeval)",
            "max_dets": f"at most {cm.max_dets or 'all'} predictions per image and class, highest scores first "
                        "(COCOeval's maxDets), for every metric",
            "ties": "tied scores ordered by image order, then row order within the image (COCOeval)",
            "ap": "COCO 101-point interpolated; mean over classes with truth objects",
            "map": "mean AP over IoU 0.50:0.05:0.95", "ar": "recall with all kept predictions, mean over IoU 0.50:0.95 and classes",
            "areas": "small <= 32^2, medium 32^2..96^2, large >= 96^2 pixels^2 (COCO areaRng, ends inclusive); "
                     "objects outside a range are ignored there",
            "froc": f"class-agnostic; mean sensitivity at 1/8..8 FP per image ({froc_interpolation} interpolation)",
            "f1": f"predictions with score >= {score_threshold}"},
    }
    res = TaskResult(per_case, summary, {"match": mr, "coco_match": cm})
    if out_dir is not None:
        extra = None
        if planar:
            from openmia.evaluation.coco_json import coco_documents

            doc, results = coco_documents(d["pred"], d["truth"], images, image_ids=d["image_ids"], categories=d["categories"],
                                          truth_area=d["truth_area"], truth_crowd=d["truth_crowd"])
            extra = dict(zip(COCO_FILES, (doc, results)))
        write_outputs(res, out_dir, {"pred": str(pred_csv), "truth": str(truth_csv), "pred_sha256": d["pred_sha256"],
                                     "truth_sha256": d["truth_sha256"]}, extra_json=extra)
    return res
