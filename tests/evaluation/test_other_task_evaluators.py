"""Detection, counting, clustering and inpainting evaluators on files, and their CLI."""

from __future__ import annotations

import csv
import json
import math

import numpy as np
import pytest

from openmia.cli.main import main
from openmia.errors import PredictionError
from openmia.evaluation.other_tasks import (
    evaluate_clustering_files,
    evaluate_counting_files,
    evaluate_detection_files,
    evaluate_inpainting_folders,
)


def _csv(path, header, rows):
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)
    return path


def _detection_files(tmp_path):
    truth = _csv(tmp_path / "truth.csv", ["case_id", "label", "x1", "y1", "x2", "y2"],
                 [["a", "lesion", 0, 0, 10, 10], ["a", "lesion", 20, 20, 30, 30], ["b", "lesion", 5, 5, 15, 15],
                  ["c", "", "", "", "", ""]])  # image c has no objects
    pred = _csv(tmp_path / "pred.csv", ["case_id", "label", "score", "x1", "y1", "x2", "y2"],
                [["a", "lesion", 0.9, 0, 0, 10, 10], ["a", "lesion", 0.4, 21, 21, 31, 31], ["b", "lesion", 0.8, 50, 50, 60, 60],
                 ["c", "lesion", 0.7, 1, 1, 5, 5]])
    return pred, truth


def test_detection_evaluator(tmp_path):
    pred, truth = _detection_files(tmp_path)
    res = evaluate_detection_files(pred, truth, tmp_path / "out", n_resamples=200)
    # by score: a0.9 TP, b0.8 FP, c0.7 FP, a0.4 TP (IoU 81/119 = 0.68); 3 truths
    # precision 1, 1/2, 1/3, 1/2; recall 1/3, 1/3, 1/3, 2/3 -> envelope 1, 1/2, 1/2, 1/2
    # AP = (34 * 1 + 33 * 0.5) / 101
    assert res.metric("ap50")["value"] == pytest.approx((34 + 16.5) / 101)
    assert res.metric("ap50")["ci_method"] == "bca_bootstrap_images" and res.summary["n_cases"] == 3
    # F1 at 0.5: kept a0.9 (TP), b0.8 (FP), c0.7 (FP): TP 1, FP 2, FN 2 -> 2*1 / (2 + 2 + 2) = 1/3
    assert res.metric("f1")["value"] == pytest.approx(1 / 3)
    rows = {(r[0], r[2]): r[3] for r in res.per_case}
    assert rows[("c", "n_truth")] == 0 and rows[("c", "fp")] == 1 and rows[("b", "fn")] == 1
    s = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert s["task"] == "detection" and s["froc_curve"]["fppi"][0] == 0


def test_detection_errors_name_rows(tmp_path):
    pred, truth = _detection_files(tmp_path)
    bad = _csv(tmp_path / "bad.csv", ["case_id", "label", "score", "x1", "y1", "x2", "y2"], [["zzz", "lesion", 0.9, 0, 0, 1, 1]])
    with pytest.raises(PredictionError, match="case 'zzz' is not in the truth"):
        evaluate_detection_files(bad, truth)
    flipped = _csv(tmp_path / "flip.csv", ["case_id", "label", "score", "x1", "y1", "x2", "y2"], [["a", "lesion", 0.9, 5, 0, 1, 1]])
    with pytest.raises(PredictionError, match="case 'a'.*x1 <= x2"):
        evaluate_detection_files(flipped, truth)
    nan = _csv(tmp_path / "nan.csv", ["case_id", "label", "score", "x1", "y1", "x2", "y2"], [["a", "lesion", "nan", 0, 0, 1, 1]])
    with pytest.raises(PredictionError, match="line 2, column 'score'"):
        evaluate_detection_files(nan, truth)


def test_counting_evaluator(tmp_path):
    truth = _csv(tmp_path / "t.csv", ["case_id", "count"], [["a", 10], ["b", 5], ["c", 0], ["d", 3]])
    pred = _csv(tmp_path / "p.csv", ["case_id", "count"], [["a", 12], ["b", 4], ["c", 0], ["d", 6]])
    res = evaluate_counting_files(pred, truth, n_resamples=300)
    assert res.metric("mae")["value"] == 1.5 and res.metric("rmse")["value"] == pytest.approx(math.sqrt(3.5))
    assert res.metric("mre")["n_nan"] == 1
    short = _csv(tmp_path / "s.csv", ["case_id", "count"], [["a", 12]])
    with pytest.raises(PredictionError, match="missing case.*b"):
        evaluate_counting_files(short, truth)
    res = evaluate_counting_files(short, truth, allow_missing=True, n_resamples=100)
    assert res.summary["missing_cases"] == ["b", "c", "d"] and res.metric("mae")["value"] == pytest.approx((2 + 5 + 0 + 3) / 4)


def test_clustering_evaluator(tmp_path):
    truth = _csv(tmp_path / "t.csv", ["case_id", "label"], [[f"c{i}", i // 5] for i in range(20)])
    pred = _csv(tmp_path / "p.csv", ["case_id", "cluster"], [[f"c{i}", (i // 5) if i % 7 else 9] for i in range(20)])
    res = evaluate_clustering_files(pred, truth, n_resamples=100)
    from sklearn.metrics import adjusted_rand_score

    t = [i // 5 for i in range(20)]
    p = [(i // 5) if i % 7 else 9 for i in range(20)]
    ari = res.metric("ari")
    assert ari["value"] == pytest.approx(adjusted_rand_score(t, p)) and ari["ci_low"] <= ari["value"] <= ari["ci_high"]


def test_inpainting_evaluator_and_cli(tmp_path, capsys):
    pd, td, md = tmp_path / "p", tmp_path / "t", tmp_path / "m"
    for d in (pd, td, md):
        d.mkdir()
    rng = np.random.default_rng(0)
    for i in range(4):
        t = rng.random((16, 16))
        p = t.copy()
        p[4:8, 4:8] += 0.1 * (i + 1)
        mask = np.zeros((16, 16), np.uint8)
        mask[2:10, 2:10] = 1
        np.save(td / f"k{i}.npy", t), np.save(pd / f"k{i}.npy", p), np.save(md / f"k{i}.npy", mask)
    with pytest.raises(PredictionError, match="--data-range"):
        evaluate_inpainting_folders(pd, td)
    res = evaluate_inpainting_folders(pd, td, data_range=1.0, mask_dir=md, n_resamples=100)
    assert res.metric("mae_mask")["value"] > res.metric("mae")["value"] > 0
    rc = main(["evaluate", "--task", "inpainting", "--pred", str(pd), "--truth", str(td), "--out", str(tmp_path / "o"),
               "--data-range", "1", "--masks", str(md), "--resamples", "100"])
    assert rc == 0 and "psnr_mask" in capsys.readouterr().out


def test_cli_detection_and_counting(tmp_path, capsys):
    pred, truth = _detection_files(tmp_path)
    assert main(["evaluate", "--task", "detection", "--pred", str(pred), "--truth", str(truth), "--out", str(tmp_path / "d"),
                 "--resamples", "100"]) == 0
    out = capsys.readouterr().out
    assert "ap50" in out and "froc" in out


def test_reports_have_figures(tmp_path):
    import re

    pred, truth = _detection_files(tmp_path)
    evaluate_detection_files(pred, truth, tmp_path / "det", n_resamples=50)
    page = (tmp_path / "det" / "report.html").read_text()
    assert "FROC curve" in page and page.count("data:image/png;base64,") == 1 and "<table>" in page
    # classification: ROC, PR, reliability, confusion matrix and per-case plots
    from openmia.evaluation.classification import evaluate_classification, write_outputs

    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 90)
    p = rng.dirichlet(np.ones(3), 90)
    res = evaluate_classification(p, y, [f"c{i}" for i in range(90)], task_type="multi-class", n_resamples=50)
    files = write_outputs(res, tmp_path / "cls")
    page = files["report"].read_text()
    for caption in ("ROC curve", "PR curve", "reliability diagram", "confusion matrix", "per-case brier"):
        assert f"<figcaption>{caption}</figcaption>" in page, caption
    assert len(re.findall("data:image/png;base64,", page)) >= 5
