"""The classification evaluator reports the issue-22 metrics with a CI each (summary rows), the
operating points, the decision-curve table and its figure; options reach it from the CLI.
The metric values themselves are cross-checked in tests/metrics/test_classification_more.py."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
from sklearn import metrics as skm

from openmia.cli.main import main
from openmia.errors import PredictionError
from openmia.evaluation.classification import evaluate_classification
from openmia.metrics import classification as M
from openmia.stats.bootstrap import bootstrap_ci, resample_weights
from openmia.stats.diagnostic import likelihood_ratios
from openmia.stats.proportions import wilson


@pytest.fixture(scope="module")
def binary():
    rng = np.random.default_rng(0)
    n = 150
    y = rng.integers(0, 2, n)
    s = np.round(np.clip(y * 0.35 + rng.random(n) * 0.65, 0, 1), 3)
    return y, s


@pytest.fixture(scope="module")
def binary_result(binary):
    y, s = binary
    return evaluate_classification(s, y, range(len(y)), task_type="binary", n_resamples=200, sens_at_spec=0.9,
                                   spec_at_sens=(0.8, 0.9), pauc_fpr=(0, 0.2))


def test_binary_rows_values_and_ci_methods(binary, binary_result):
    y, s = binary
    res = binary_result
    pred = (s >= 0.5).astype(int)
    tp, fp = int(((pred == 1) & (y == 1)).sum()), int(((pred == 1) & (y == 0)).sum())
    fn, tn = int(((pred == 0) & (y == 1)).sum()), int(((pred == 0) & (y == 0)).sum())
    ppv = res.metric("ppv")
    assert ppv["value"] == pytest.approx(skm.precision_score(y, pred)) and ppv["ci_method"] == "wilson"
    assert (ppv["ci_low"], ppv["ci_high"]) == pytest.approx(wilson(tp, tp + fp))
    assert res.metric("npv")["value"] == pytest.approx(tn / (tn + fn))
    lr = likelihood_ratios(tp, fp, fn, tn)
    for key in ("lr_pos", "lr_neg"):
        row = res.metric(key)
        assert row["ci_method"] == "log_simel"
        assert (row["value"], row["ci_low"], row["ci_high"]) == pytest.approx((lr[key], lr[f"{key}_low"], lr[f"{key}_high"]))
    j, t = M.youden(y, s)
    assert res.metric("youden_j")["value"] == pytest.approx(j[0]) and res.metric("youden_threshold")["value"] == t[0]
    assert res.metric("sens_at_spec_0.9")["value"] == pytest.approx(M.sensitivity_at_specificity(y, s, 0.9)[0])
    assert res.metric("spec_at_sens_0.8")["value"] == pytest.approx(M.specificity_at_sensitivity(y, s, 0.8)[0])
    assert res.metric("pauc")["value"] == pytest.approx(skm.roc_auc_score(y, s, max_fpr=0.2))
    assert res.metric("mce")["value"] == pytest.approx(M.mce(y, np.column_stack([1 - s, s]), "binary")[0])
    for name in ("youden_j", "youden_threshold", "sens_at_spec_0.9", "spec_at_sens_0.9", "pauc", "pauc_raw", "mce"):
        row = res.metric(name)
        assert row["ci_method"] == "bca_bootstrap" and row["ci_low"] <= row["value"] <= row["ci_high"], row
    ops = res.summary["operating_points"]
    assert set(ops) == {"youden", "sens_at_spec_0.9", "spec_at_sens_0.8", "spec_at_sens_0.9"}
    assert ops["youden"]["threshold"] == t[0] and ops["sens_at_spec_0.9"]["specificity"] >= 0.9


def test_shared_roc_pass_gives_the_plain_bootstrap(binary):
    """The one-pass rank statistics give exactly the interval of a bootstrap of the metric alone on
    the same resamples (the evaluator resamples the cases in decreasing-score order, so they are
    given in that order, with numpy's multinomial sampler as bootstrap_ci)."""
    y, s = binary
    o = np.argsort(-s, kind="mergesort")
    y, s = y[o], s[o]
    res = evaluate_classification(s, y, range(len(y)), task_type="binary", n_resamples=200, pauc_fpr=(0, 0.2),
                                  sampler="multinomial")
    W = resample_weights(len(y), 200, 0)
    r = bootstrap_ci(lambda w: M.youden(y, s, w)[0], len(y), weights=W)
    row = res.metric("youden_j")
    assert (row["value"], row["ci_low"], row["ci_high"]) == pytest.approx((r.value, r.ci_low, r.ci_high), rel=1e-12)
    r = bootstrap_ci(lambda w: M.partial_auc(y, s, (0, 0.2), w), len(y), weights=W)
    assert res.metric("pauc")["ci_low"] == pytest.approx(r.ci_low, rel=1e-12)


def test_decision_curve_table(binary, binary_result):
    y, s = binary
    dc = binary_result.summary["decision_curve"]
    rows = dc["rows"]
    assert len(rows) == 99 and rows[0]["threshold"] == 0.01 and rows[-1]["threshold"] == 0.99
    nb, nb_all = M.net_benefit(y, s, [r["threshold"] for r in rows])
    assert [r["net_benefit"] for r in rows] == pytest.approx(nb[0])
    assert [r["treat_all"] for r in rows] == pytest.approx(nb_all[0])
    assert all(r["treat_none"] == 0.0 for r in rows)
    inside = [r["ci_low"] <= r["net_benefit"] <= r["ci_high"] for r in rows]
    assert np.mean(inside) > 0.9 and dc["ci_method"] == "percentile_bootstrap_pointwise" and dc["n_resamples"] == 200


def test_adding_metrics_leaves_the_existing_rows_unchanged(binary, binary_result):
    y, s = binary
    plain = evaluate_classification(s, y, range(len(y)), task_type="binary", n_resamples=200)
    before = {(m["metric"], m["label"]): m for m in plain.summary["metrics"]}
    after = {(m["metric"], m["label"]): m for m in binary_result.summary["metrics"]}
    for key in [("auc", "all"), ("ap", "all"), ("acc", "all"), ("f1", "all"), ("ece", "all"), ("brier", "all")]:
        assert before[key] == after[key]
    assert "pauc" not in {m["metric"] for m in plain.summary["metrics"]}


def test_patients_switch_closed_form_intervals_to_the_cluster_bootstrap(binary):
    y, s = binary
    res = evaluate_classification(s, y, range(len(y)), task_type="binary", n_resamples=150,
                                  patient_ids=[i // 3 for i in range(len(y))])
    for name in ("ppv", "npv", "lr_pos", "lr_neg", "youden_j"):
        assert res.metric(name)["ci_method"] == "bca_bootstrap_patients"
    assert res.summary["decision_curve"]["ci_method"] == "percentile_bootstrap_pointwise_patients"


def test_lr_undefined_without_false_positives():
    y = np.array([0] * 10 + [1] * 10)
    s = np.r_[np.linspace(0.05, 0.45, 10), np.linspace(0.3, 0.95, 10)]  # no negative >= 0.5
    res = evaluate_classification(s, y, range(20), task_type="binary", n_resamples=50)
    row = res.metric("lr_pos")
    assert row["value"] is None and row["ci_method"] == "log_simel_haldane"  # infinite: reported as undefined
    lr = likelihood_ratios(tp=7, fp=0, fn=3, tn=10)  # 0.5 added to every cell for the interval
    assert (row["ci_low"], row["ci_high"]) == pytest.approx((lr["lr_pos_low"], lr["lr_pos_high"]))
    assert res.metric("lr_neg")["ci_method"] == "log_simel"


def test_multiclass_rows():
    rng = np.random.default_rng(2)
    n, k = 160, 4
    y = rng.integers(0, k, n)
    p = rng.dirichlet(np.ones(k), n)
    p[np.arange(n), y] += 0.3
    p /= p.sum(1, keepdims=True)
    res = evaluate_classification(p, y, range(n), task_type="multi-class", n_resamples=150, top_k=(2, 3, 4))
    assert res.metric("auc_ovo")["value"] == pytest.approx(skm.roc_auc_score(y, p, multi_class="ovo"))
    assert res.metric("auc_ovo")["ci_method"] == "delong"
    assert res.metric("auc_weighted")["value"] == pytest.approx(skm.roc_auc_score(y, p, multi_class="ovr", average="weighted"))
    assert res.metric("auc_micro")["value"] == pytest.approx(skm.roc_auc_score(y, p, multi_class="ovr", average="micro"))
    assert res.metric("auc_micro")["ci_method"] == "bca_bootstrap"
    top2 = res.metric("top2_acc")
    assert top2["value"] == pytest.approx(skm.top_k_accuracy_score(y, p, k=2)) and top2["ci_method"] == "wilson"
    names = {m["metric"] for m in res.summary["metrics"]}
    assert "top4_acc" not in names  # k = K is always 1
    pred = p.argmax(1)
    assert res.metric("ppv", "1")["value"] == pytest.approx(skm.precision_score(y, pred, average=None)[1])
    assert res.metric("ppv", "1")["ci_method"] == "wilson"
    assert res.metric("ppv")["value"] == pytest.approx(skm.precision_score(y, pred, average="macro"))
    for name in ("auc_weighted", "auc_micro", "auc_ovo", "mce", "ppv", "npv"):
        row = res.metric(name)
        assert row["ci_low"] <= row["value"] <= row["ci_high"], row
    assert "decision_curve" not in res.summary


def test_multilabel_rows():
    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, (120, 3))
    p = np.clip(y * 0.4 + rng.random((120, 3)) * 0.6, 0, 1)
    res = evaluate_classification(p, y, range(120), task_type="multi-label", n_resamples=100)
    assert res.metric("auc_micro")["value"] == pytest.approx(skm.roc_auc_score(y, p, average="micro"))
    assert res.metric("auc_weighted")["value"] == pytest.approx(skm.roc_auc_score(y, p, average="weighted"))
    assert res.metric("npv", "2")["ci_method"] == "wilson"
    assert "auc_ovo" not in {m["metric"] for m in res.summary["metrics"]}


def test_bad_options_are_clear_errors(binary):
    y, s = binary
    with pytest.raises(PredictionError, match="sens_at_spec must lie strictly between 0 and 1, found 90"):
        evaluate_classification(s, y, range(len(y)), task_type="binary", sens_at_spec=90)
    with pytest.raises(PredictionError, match="0 <= low < high <= 1"):
        evaluate_classification(s, y, range(len(y)), task_type="binary", pauc_fpr=(0.2, 0.1))


def _write(path, header, rows):
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)
    return path


def test_cli_options_summary_and_report(binary, tmp_path, capsys):
    y, s = binary
    ids = [f"c{i}" for i in range(len(y))]
    pred = _write(tmp_path / "pred.csv", ["case_id", "score"], [[c, v] for c, v in zip(ids, s)])
    truth = _write(tmp_path / "truth.csv", ["case_id", "label"], [[c, int(v)] for c, v in zip(ids, y)])
    out = tmp_path / "out"
    assert main(["evaluate", "--task", "classification", "--pred", str(pred), "--truth", str(truth), "--out", str(out),
                 "--resamples", "100", "--sens-at-spec", "0.9", "--spec-at-sens", "0.85,0.95", "--pauc-fpr", "0,0.1"]) == 0
    printed = capsys.readouterr().out
    assert "sens_at_spec_0.9" in printed and "lr_pos" in printed and "log_simel" in printed
    summary = json.loads((out / "summary.json").read_text())
    names = {m["metric"] for m in summary["metrics"]}
    assert {"sens_at_spec_0.9", "spec_at_sens_0.85", "spec_at_sens_0.95", "pauc", "pauc_raw", "youden_j", "ppv"} <= names
    assert len(summary["decision_curve"]["rows"]) == 99 and "[0, 0.1]" in summary["conventions"]["pauc"]
    html = (out / "report.html").read_text()
    assert "alt='decision curve'" in html
    assert main(["evaluate", "--task", "classification", "--pred", str(pred), "--truth", str(truth),
                 "--out", str(tmp_path / "bad"), "--pauc-fpr", "0.2"]) == 2
    assert "--pauc-fpr: expected two numbers low,high" in capsys.readouterr().err
