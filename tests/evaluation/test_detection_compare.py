"""openmia compare --task detection: paired bootstrap over images for AP/mAP (the same resamples for
both models), Wilcoxon signed-rank on per-image count errors, rankings, CLI.

Independent checks: the resampled AP differences are recomputed by duplicating images and scoring
the duplicated data sets with the point-estimate function (no weights involved); the Wilcoxon
p-value is recomputed with scipy.stats.wilcoxon on hand-counted per-image errors.
"""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
from scipy import stats

from openmia.cli.main import main
from openmia.errors import PredictionError
from openmia.evaluation.compare import compare_files
from openmia.evaluation.detection_compare import paired_bootstrap
from openmia.metrics import detection_coco as C
from openmia.stats.bootstrap import bootstrap_ci, resample_weights

HEAD_T = ["case_id", "label", "x1", "y1", "x2", "y2"]
HEAD_P = ["case_id", "label", "score", "x1", "y1", "x2", "y2"]


def _write(path, header, rows):
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)
    return path


def _data(tmp_path, n=24, seed=0):
    """Truth with 1-3 lesions per image; a good detector (tight boxes, high scores), a poor one
    (loose boxes, misses, confident false positives) and an exact copy of the good one."""
    rng = np.random.default_rng(seed)
    truth, good, poor = [], [], []
    for i in range(n):
        cid = f"im{i:02d}"
        truth.append([cid, "", "", "", "", ""])
        for _ in range(rng.integers(1, 4)):
            x, y = rng.uniform(0, 400, 2)
            s = rng.uniform(20, 60)
            truth.append([cid, "lesion", x, y, x + s, y + s])
            j = rng.normal(0, 1.5, 2)
            good.append([cid, "lesion", round(rng.uniform(0.6, 1.0), 3), x + j[0], y + j[1], x + s + j[0], y + s + j[1]])
            if rng.random() < 0.6:
                j = rng.normal(0, 8, 2)
                poor.append([cid, "lesion", round(rng.uniform(0.2, 0.8), 3), x + j[0], y + j[1], x + s + j[0], y + s + j[1]])
        if rng.random() < 0.3:
            good.append([cid, "lesion", 0.3, 450, 450, 470, 470])
        for _ in range(rng.integers(0, 3)):
            poor.append([cid, "lesion", round(rng.uniform(0.5, 0.9), 3), 450, 450, 480, 480])
    paths = {"truth": _write(tmp_path / "truth.csv", HEAD_T, truth), "good": _write(tmp_path / "good.csv", HEAD_P, good),
             "poor": _write(tmp_path / "poor.csv", HEAD_P, poor), "copy": _write(tmp_path / "copy.csv", HEAD_P, good)}
    return paths, truth, good, poor


def _dicts(rows, images, with_score):
    out = {c: {"boxes": np.zeros((0, 4)), "labels": []} for c in images}
    for r in rows:
        if not r[1]:
            continue
        d = out[r[0]]
        box = r[3:] if with_score else r[2:]
        d["boxes"] = np.vstack([d["boxes"], np.asarray(box, float)[None]])
        d["labels"] = [*d["labels"], r[1]]
        if with_score:
            d["scores"] = [*d.get("scores", []), r[2]]
    for d in out.values():
        d.setdefault("scores", [])
    return out


def test_paired_bootstrap_resamples_images_alike_for_both_models(tmp_path):
    paths, truth, good, poor = _data(tmp_path)
    res = compare_files("detection", paths["truth"], {"good": paths["good"], "poor": paths["poor"]}, metrics=["map", "ap50"],
                        n_resamples=40, rank_resamples=20, seed=3)
    row = next(r for r in res["comparisons"] if r["metric"] == "map")
    assert row["test"] == "paired_bootstrap" and row["diff"] > 0
    # independent recomputation: duplicate the images of each resample and score both models on
    # the duplicated data set with the point-estimate function (no image weights involved)
    images = [r[0] for r in truth if not r[1]]
    t, g, p = _dicts(truth, images, False), _dicts(good, images, True), _dicts(poor, images, True)
    W = resample_weights(len(images), 40, 3)
    diffs = []
    for w in W:
        idx = np.repeat(np.arange(len(images)), w.astype(int))
        keys = [f"{images[i]}#{k}" for k, i in enumerate(idx)]

        def dup(src):
            return {key: src[images[i]] for key, i in zip(keys, idx)}

        a = C.coco_metrics(dup(g), dup(t))["map"]
        b = C.coco_metrics(dup(p), dup(t))["map"]
        diffs.append(a - b)
    diffs = np.array(diffs)
    full = C.coco_metrics(g, t)["map"] - C.coco_metrics(p, t)["map"]
    assert row["diff"] == pytest.approx(full, abs=1e-12)
    p_value = (1 + np.sum(np.abs(diffs - full) >= abs(full))) / (len(diffs) + 1)
    assert row["p_value"] == pytest.approx(p_value)


def test_paired_bootstrap_ci_and_identical_models():
    # the CI is the BCa interval of the difference over one set of resamples
    rng = np.random.default_rng(0)
    x, y = rng.random(30), rng.random(30)

    def sa(w):
        return (w * x).sum(1) / w.sum(1)

    def sb(w):
        return (w * y).sum(1) / w.sum(1)

    r = paired_bootstrap(sa, sb, 30, n_resamples=300, seed=1)
    ref = bootstrap_ci(lambda w: sa(w) - sb(w), 30, weights=resample_weights(30, 300, 1), seed=1)
    assert (r["ci_low"], r["ci_high"]) == (ref.ci_low, ref.ci_high) and r["diff"] == pytest.approx(x.mean() - y.mean())
    same = paired_bootstrap(sa, sa, 30, n_resamples=100)
    assert same["diff"] == 0 and same["p_value"] == 1.0 and same["ci_low"] == same["ci_high"] == 0


def test_detection_compare_tests_counts_and_rankings(tmp_path):
    paths, truth, good, poor = _data(tmp_path)
    preds = {"good": paths["good"], "poor": paths["poor"], "copy": paths["copy"]}
    res = compare_files("detection", paths["truth"], preds, n_resamples=200, rank_resamples=50)
    rows = {(r["metric"], r["model_a"], r["model_b"]): r for r in res["comparisons"]}
    assert {r["metric"] for r in res["comparisons"]} == {"ap50", "map", "count_abs_error"}  # the box defaults
    gp = rows[("map", "good", "poor")]
    assert gp["diff"] > 0 and gp["ci_low"] > 0 and gp["p_value"] < 0.05 and gp["p_holm"] <= 3 * gp["p_value"]
    gc = rows[("map", "good", "copy")]
    assert gc["diff"] == 0 and gc["p_value"] == 1.0
    # counts: |predictions with score >= 0.5 - truth objects| per image, hand-counted from the rows
    images = [r[0] for r in truth if not r[1]]
    n_t = np.array([sum(r[0] == c and bool(r[1]) for r in truth) for c in images])

    def err(rows_):
        return np.abs(np.array([sum(r[0] == c and r[2] >= 0.5 for r in rows_) for c in images]) - n_t).astype(float)

    cnt = rows[("count_abs_error", "good", "poor")]
    eg, ep = err(good), err(poor)
    assert cnt["test"] == "wilcoxon_signed_rank"
    assert cnt["estimate_a"] == pytest.approx(eg.mean()) and cnt["estimate_b"] == pytest.approx(ep.mean())
    assert cnt["p_value"] == pytest.approx(stats.wilcoxon(eg, ep, zero_method="pratt").pvalue)
    ranks = {r["model"]: r["rank"] for r in res["ranking"] if r["metric"] == "map"}
    assert ranks["poor"] == 3.0 and ranks["good"] == ranks["copy"] == 1.5
    with pytest.raises(PredictionError, match="available: .*count_abs_error.*map"):
        compare_files("detection", paths["truth"], preds, metrics=["ap"], n_resamples=20, rank_resamples=10)


def test_detection_compare_cli_with_coco_files(tmp_path, capsys):
    paths, truth, good, poor = _data(tmp_path, n=12, seed=1)
    images = [r[0] for r in truth if not r[1]]
    ids = {c: k + 1 for k, c in enumerate(images)}
    anns = [{"id": k + 1, "image_id": ids[r[0]], "category_id": 1, "bbox": [r[2], r[3], r[4] - r[2], r[5] - r[3]], "area":
             (r[4] - r[2]) * (r[5] - r[3]), "iscrowd": 0} for k, r in enumerate(r for r in truth if r[1])]
    (tmp_path / "t.json").write_text(json.dumps({"images": [{"id": i} for i in ids.values()], "annotations": anns,
                                                 "categories": [{"id": 1, "name": "lesion"}]}))
    for name, rows in (("good", good), ("poor", poor)):
        (tmp_path / f"{name}.json").write_text(json.dumps([{"image_id": ids[r[0]], "category_id": 1, "score": r[2],
                                                            "bbox": [r[3], r[4], r[5] - r[3], r[6] - r[4]]} for r in rows]))
    out = tmp_path / "cmp"
    rc = main(["compare", "--task", "detection", "--truth", str(tmp_path / "t.json"), "--pred", f"good={tmp_path / 'good.json'}",
               "--pred", f"poor={tmp_path / 'poor.json'}", "--out", str(out), "--metrics", "map,ap75,ar,count_abs_error",
               "--labels", "all,lesion", "--resamples", "100", "--rank-resamples", "20"])
    text = capsys.readouterr()
    assert rc == 0, text.err
    text = text.out
    assert "paired_bootstrap" in text and "wilcoxon_signed_rank" in text
    comp = list(csv.DictReader(open(out / "comparisons.csv")))
    assert {(r["metric"], r["label"]) for r in comp} == {(m, lab) for m in ("map", "ap75", "ar", "count_abs_error")
                                                         for lab in ("all", "lesion")}
    # one class: the class rows equal the "all" rows
    by = {(r["metric"], r["label"]): r for r in comp}
    assert by[("map", "lesion")]["diff"] == by[("map", "all")]["diff"]
    assert json.loads((out / "compare.json").read_text())["task"] == "detection"
    # the same files as CSV give the same comparison
    csv_res = compare_files("detection", paths["truth"], {"good": paths["good"], "poor": paths["poor"]}, metrics=["map"],
                            n_resamples=100, rank_resamples=20)
    assert csv_res["comparisons"][0]["diff"] == pytest.approx(float(by[("map", "all")]["diff"]), abs=1e-12)


def test_detection_compare_points_defaults(tmp_path):
    # points: AP at the distance, FROC and the count error by default
    truth = _write(tmp_path / "t.csv", ["case_id", "label", "x", "y"], [[f"c{i}", "cell", 10 * k, 10 * k] for i in range(6) for k in range(3)])
    near = _write(tmp_path / "a.csv", ["case_id", "label", "score", "x", "y"],
                  [[f"c{i}", "cell", 0.9 - 0.1 * k, 10 * k + 1, 10 * k] for i in range(6) for k in range(3)])
    far = _write(tmp_path / "b.csv", ["case_id", "label", "score", "x", "y"],
                 [[f"c{i}", "cell", 0.9 - 0.1 * k, 10 * k + (1 if k else 9), 10 * k] for i in range(6) for k in range(3)])
    res = compare_files("detection", truth, {"near": near, "far": far}, distance=2.0, n_resamples=50, rank_resamples=10)
    rows = {r["metric"]: r for r in res["comparisons"]}
    assert set(rows) == {"ap", "froc", "count_abs_error"}
    # near finds all 18 cells (AP 1); far misses the first (highest-scored) cell of each image:
    # per image FP, TP, TP -> pooled precision 0 ... -> AP < 1, same counts (error 0 for both)
    assert rows["ap"]["estimate_a"] == 1.0 and rows["ap"]["diff"] > 0
    assert rows["count_abs_error"]["diff"] == 0 and rows["count_abs_error"]["p_value"] == 1.0
