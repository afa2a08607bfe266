"""The model-agnostic classification evaluator: CSV in, per_case.csv + summary.json out, and one
test per validation rule (DESIGN §4.3), each checking that the message names the case."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from openmia.cli.main import main
from openmia.errors import PredictionError
from openmia.evaluation.classification import evaluate_classification, evaluate_files


def write(path, header, rows):
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)
    return path


@pytest.fixture
def binary_files(tmp_path):
    rng = np.random.default_rng(0)
    n = 120
    y = rng.integers(0, 2, n)
    s = np.clip(y * 0.35 + rng.random(n) * 0.65, 0, 1)
    ids = [f"case{i:03d}" for i in range(n)]
    pred = write(tmp_path / "pred.csv", ["case_id", "score"], [[c, f"{v:.6f}"] for c, v in zip(ids, s)])
    truth = write(tmp_path / "truth.csv", ["case_id", "label"], [[c, int(v)] for c, v in zip(ids, y)])
    return pred, truth, ids, y, np.round(s, 6)


def test_binary_end_to_end(binary_files, tmp_path):
    pred, truth, ids, y, s = binary_files
    out = tmp_path / "out"
    res = evaluate_files(pred, truth, out, n_resamples=300)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["schema"] == "openmia.summary/1" and summary["n_cases"] == 120 and summary["task_type"] == "binary"
    auc = res.metric("auc")
    assert auc["value"] == pytest.approx(roc_auc_score(y, s)) and auc["ci_method"] == "delong"
    assert auc["ci_low"] < auc["value"] < auc["ci_high"]
    for m in summary["metrics"]:
        assert {"metric", "label", "value", "ci_low", "ci_high", "ci_method", "n", "n_nan", "mean", "median", "q1", "q3"} <= set(m)
    acc = res.metric("acc")
    assert acc["ci_method"] == "wilson" and acc["mean"] == pytest.approx(acc["value"])
    with open(out / "per_case.csv") as f:
        rows = list(csv.DictReader(f))
    assert set(rows[0]) == {"case_id", "label", "metric", "value"}
    assert {r["metric"] for r in rows} == {"correct", "brier", "nll", "p_true"}
    assert len([r for r in rows if r["metric"] == "brier"]) == 120


def test_multiclass_ordinal_and_multilabel_arrays():
    rng = np.random.default_rng(1)
    y = rng.integers(0, 3, 90)
    p = rng.dirichlet(np.ones(3), 90)
    res = evaluate_classification(p, y, range(90), task_type="ordinal", label_names=["a", "b", "c"], n_resamples=200)
    assert res.metric("auc", "b")["value"] == pytest.approx(roc_auc_score(y == 1, p[:, 1]))
    assert "quadratic" in res.summary["conventions"]["kappa"]
    ym = rng.integers(0, 2, (80, 2))
    pm = rng.random((80, 2))
    res = evaluate_classification(pm, ym, range(80), task_type="multi-label", n_resamples=200)
    assert res.metric("auc")["value"] == pytest.approx(roc_auc_score(ym, pm, average="macro"))
    assert res.metric("sensitivity", "0")["ci_method"] == "wilson"


def test_patient_ids_switch_to_cluster_bootstrap(binary_files):
    _, _, ids, y, s = binary_files
    patients = [f"p{i // 3}" for i in range(len(ids))]
    res = evaluate_classification(s, y, ids, task_type="binary", patient_ids=patients, n_resamples=200)
    assert res.summary["bootstrap"]["unit"] == "patient" and res.summary["n_patients"] == 40
    assert res.metric("auc")["ci_method"] == "bca_bootstrap_patients"


def test_single_class_truth_reports_auc_undefined():
    res = evaluate_classification(np.array([0.2, 0.4, 0.6]), np.array([1, 1, 1]), ["a", "b", "c"],
                                  task_type="binary", n_resamples=50)
    auc = res.metric("auc")
    assert auc["value"] is None and "undefined" in auc["ci_method"]


# ---- DESIGN §4.3: every rule names the case


def test_missing_case_is_error_naming_it(binary_files, tmp_path):
    pred, truth, ids, *_ = binary_files
    rows = list(csv.reader(open(pred)))
    write(pred, rows[0], [r for r in rows[1:] if r[0] != "case007"])
    with pytest.raises(PredictionError, match="missing from the predictions: case007"):
        evaluate_files(pred, truth)
    res = evaluate_files(pred, truth, tmp_path / "o", allow_missing=True, n_resamples=100)
    assert res.summary["missing_cases"] == ["case007"]


def test_extra_case_is_error(binary_files):
    pred, truth, *_ = binary_files
    with open(pred, "a") as f:
        f.write("ghost,0.5\n")
    with pytest.raises(PredictionError, match="not in the truth file.*ghost"):
        evaluate_files(pred, truth)


def test_duplicate_id_is_error(binary_files):
    pred, truth, *_ = binary_files
    with open(pred, "a") as f:
        f.write("case003,0.5\n")
    with pytest.raises(PredictionError, match="duplicate case_id case003"):
        evaluate_files(pred, truth)


def test_nan_probability_is_error(binary_files):
    pred, truth, *_ = binary_files
    rows = list(csv.reader(open(pred)))
    rows[5][1] = "nan"
    write(pred, rows[0], rows[1:])
    with pytest.raises(PredictionError, match=r"line 6 \(case case004\).*probability is nan"):
        evaluate_files(pred, truth)


def test_wrong_width_and_label_out_of_range(tmp_path):
    pred = write(tmp_path / "p.csv", ["case_id", "a", "b", "c"], [["x", 0.2, 0.3, 0.5], ["y", 0.1, 0.1, 0.8]])
    truth = write(tmp_path / "t.csv", ["case_id", "label"], [["x", 0], ["y", 3]])
    with pytest.raises(PredictionError, match=r"label out of range 0..2 .*case\(s\) y"):
        evaluate_files(pred, truth)
    pred2 = write(tmp_path / "p2.csv", ["case_id", "a", "b", "c"], [["x", 0.2, 0.3, 0.5], ["y", 0.5, 0.4, 0.4]])
    truth2 = write(tmp_path / "t2.csv", ["case_id", "label"], [["x", 0], ["y", 1]])
    with pytest.raises(PredictionError, match=r"p2\.csv, line 3 \(case y\): class probabilities sum to 1\.3"):
        evaluate_files(pred2, truth2)
    with pytest.raises(PredictionError, match="binary predictions need 'case_id,score' or two probability columns"):
        evaluate_files(pred, truth2, task_type="binary")


def test_malformed_files(tmp_path):
    empty = tmp_path / "e.csv"
    empty.write_text("")
    truth = write(tmp_path / "t.csv", ["case_id", "label"], [["x", 0]])
    with pytest.raises(PredictionError, match="e.csv: the file is empty"):
        evaluate_files(empty, truth)
    nocol = write(tmp_path / "n.csv", ["id", "score"], [["x", 0.5]])
    with pytest.raises(PredictionError, match=r"missing column 'case_id'; found columns \['id', 'score'\]"):
        evaluate_files(nocol, truth)
    bad = write(tmp_path / "b.csv", ["case_id", "score"], [["x", "high"]])
    with pytest.raises(PredictionError, match=r"line 2, column 'score': 'high' is not a number"):
        evaluate_files(bad, truth)
    ragged = tmp_path / "r.csv"
    ragged.write_text("case_id,score\nx,0.5,9\n")
    with pytest.raises(PredictionError, match="line 2: 3 fields, expected 2"):
        evaluate_files(ragged, truth)
    with pytest.raises(PredictionError, match=r"o\.csv, line 2 \(case x\), column 'score': probability 1\.5 is outside \[0, 1\]"):
        evaluate_files(write(tmp_path / "o.csv", ["case_id", "score"], [["x", 1.5]]), truth)


def test_cli_evaluate(binary_files, tmp_path, capsys):
    pred, truth, *_ = binary_files
    assert main(["evaluate", "--task", "classification", "--pred", str(pred), "--truth", str(truth),
                 "--out", str(tmp_path / "cli"), "--resamples", "200"]) == 0
    out = capsys.readouterr().out
    assert "auc" in out and "delong" in out and (tmp_path / "cli" / "summary.json").is_file()
    # a CSV given to the segmentation evaluator is a clear error naming it
    assert main(["evaluate", "--task", "segmentation", "--pred", str(pred), "--truth", str(truth), "--out", str(tmp_path / "seg")]) == 2
    assert f"prediction folder {pred} does not exist or is not a folder" in capsys.readouterr().err
