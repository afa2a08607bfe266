"""The landmark evaluator: hand-computed radial errors, cross-checks (scipy.spatial.distance,
statsmodels' Wilson interval, numpy's median of resampled values), every bad-input rule, and the
CLI (evaluate + compare)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from openmia.errors import PredictionError
from openmia.evaluation.landmarks import evaluate_landmark_files
from openmia.metrics.landmarks import radial_errors, weighted_median

TRUTH = "case_id,landmark,x,y\na,l1,1,1\na,l2,5,5\nb,l1,2,2\nb,l2,6,6\nc,l1,3,3\nc,l2,7,7\n"
PRED = "case,landmark,x,y\na,l1,1,2\na,l2,5,8\nb,l1,2,2\nb,l2,6,7\nc,l1,6,7\nc,l2,7,7\n"


def _files(tmp_path, pred=PRED, truth=TRUTH):
    (tmp_path / "p.csv").write_text(pred)
    (tmp_path / "t.csv").write_text(truth)
    return tmp_path / "p.csv", tmp_path / "t.csv"


def _row(res, metric, label):
    return res.metric(metric, label)


def test_hand_computed_radial_errors(tmp_path):
    p, t = _files(tmp_path)
    res = evaluate_landmark_files(p, t, tmp_path / "out", spacing=(1.0, 0.5), n_resamples=200)
    # spacing (1, 0.5): a: l1 dy=1 -> 0.5, l2 dy=3 -> 1.5; b: 0, 0.5; c: l1 (3, 4) -> sqrt(9 + 4), l2 0
    per = {(c, lab, m): v for c, lab, m, v in res.per_case}
    assert per[("a", "l1", "radial_error")] == pytest.approx(0.5)
    assert per[("a", "l2", "radial_error")] == pytest.approx(1.5)
    assert per[("c", "l1", "radial_error")] == pytest.approx(math.sqrt(13))
    assert per[("a", "all", "radial_error")] == pytest.approx(1.0)
    assert per[("c", "l1", "success_2mm")] == 0.0 and per[("c", "l1", "success_4mm")] == 1.0
    l1 = _row(res, "radial_error", "l1")
    assert l1["value"] == pytest.approx((0.5 + 0 + math.sqrt(13)) / 3)
    assert _row(res, "radial_error_median", "l1")["value"] == pytest.approx(0.5)
    assert _row(res, "success_2mm", "l1")["value"] == pytest.approx(2 / 3)
    assert _row(res, "radial_error", "all")["value"] == pytest.approx((1.0 + 0.25 + math.sqrt(13) / 2) / 3)
    # files written as a set
    s = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert s["task"] == "landmarks" and s["landmarks"] == ["l1", "l2"]
    assert (tmp_path / "out" / "per_case.csv").is_file() and (tmp_path / "out" / "report.html").is_file()


def test_radial_error_cross_checked_with_scipy():
    from scipy.spatial.distance import euclidean

    rng = np.random.default_rng(0)
    p, t, s = rng.uniform(0, 50, (20, 3)), rng.uniform(0, 50, (20, 3)), rng.uniform(0.5, 2, (20, 3))
    ref = [euclidean(a * w, b * w) for a, b, w in zip(p, t, s)]
    np.testing.assert_allclose(radial_errors(p, t, s), ref, rtol=1e-12)


def test_wilson_interval_cross_checked_with_statsmodels(tmp_path):
    from statsmodels.stats.proportion import proportion_confint

    p, t = _files(tmp_path)
    res = evaluate_landmark_files(p, t, None, spacing=(1.0, 0.5), n_resamples=100)
    row = _row(res, "success_2mm", "l1")  # 2 of 3
    lo, hi = proportion_confint(2, 3, alpha=0.05, method="wilson")
    assert row["ci_method"] == "wilson"
    assert (row["ci_low"], row["ci_high"]) == pytest.approx((lo, hi), abs=1e-12)


def test_weighted_median_equals_numpy_median_of_resamples():
    rng = np.random.default_rng(1)
    v = rng.normal(size=11)
    w = rng.multinomial(11, np.full(11, 1 / 11), size=50).astype(float)
    w = np.vstack([w, np.ones((1, 11)), (np.arange(11) != 3).astype(float)[None]])  # plain and jackknife rows
    ref = [np.median(np.repeat(v, c.astype(int))) for c in w]
    np.testing.assert_allclose(weighted_median(v)(w), ref, rtol=0, atol=1e-15)


def test_global_and_per_case_spacing_agree(tmp_path):
    p, t = _files(tmp_path)
    (tmp_path / "sp.csv").write_text("case_id,sx,sy\na,1,0.5\nb,1,0.5\nc,1,0.5\n")
    a = evaluate_landmark_files(p, t, None, spacing=(1, 0.5), n_resamples=50)
    b = evaluate_landmark_files(p, t, None, spacing_csv=tmp_path / "sp.csv", n_resamples=50)
    assert a.per_case == b.per_case


@pytest.mark.parametrize("pred, match", [
    ("case_id,landmark,x,y\na,l1,1,2\na,l2,5,8\nb,l1,2,2\nb,l2,6,7\nc,l1,6,7\n", r"missing: c/l2"),
    ("case_id,landmark,x,y\na,l1,1,2\na,l2,5,8\nb,l1,2,2\nb,l2,6,7\n", r"cases: c"),
    ("case_id,landmark,x,y\na,l1,1,2\na,l1,1,2\na,l2,5,8\nb,l1,2,2\nb,l2,6,7\nc,l1,6,7\nc,l2,7,7\n",
     r"line 3: duplicate row for case 'a' landmark 'l1'"),
    ("case_id,landmark,x,y\na,l1,1,two\na,l2,5,8\nb,l1,2,2\nb,l2,6,7\nc,l1,6,7\nc,l2,7,7\n",
     r"line 2, column 'y': 'two' is not a number"),
    ("case_id,landmark,x,y,z\na,l1,1,2,0\na,l2,5,8,0\nb,l1,2,2,0\nb,l2,6,7,0\nc,l1,6,7,0\nc,l2,7,7,0\n",
     r"3D points .* has 2D points"),
    ("case_id,landmark,x,y\na,l1,1,2\na,l2,5,8\nb,l1,2,2\nb,l2,6,7\nc,l1,6,7\nc,l2,7,7\nd,l1,1,1\n",
     r"not in the truth.*d/l1"),
])
def test_bad_predictions(tmp_path, pred, match):
    p, t = _files(tmp_path, pred=pred)
    with pytest.raises(PredictionError, match=match):
        evaluate_landmark_files(p, t, None, spacing=(1, 1), n_resamples=50)


def test_landmark_outside_the_image(tmp_path):
    p, t = _files(tmp_path, pred=PRED.replace("c,l1,6,7", "c,l1,6,9"))
    (tmp_path / "shapes.csv").write_text("case_id,nx,ny\na,10,10\nb,10,10\nc,10,8\n")
    with pytest.raises(PredictionError, match=r"p.csv: case 'c' landmark 'l1' at \(6.0, 9.0\) lies outside the image of shape \(10, 8\)"):
        evaluate_landmark_files(p, t, None, spacing=(1, 1), shapes_csv=tmp_path / "shapes.csv", n_resamples=50)
    (tmp_path / "shapes.csv").write_text("case_id,nx,ny\na,10,10\nb,10,10\nc,10,7\n")  # the truth's (7, 7) too
    with pytest.raises(PredictionError, match=r"t.csv: case 'c' landmark 'l2' at \(7.0, 7.0\) lies outside"):
        evaluate_landmark_files(p, t, None, spacing=(1, 1), shapes_csv=tmp_path / "shapes.csv", n_resamples=50)
    (tmp_path / "shapes.csv").write_text("case_id,nx,ny\na,10,10\nb,10,10\nc,10,10\n")
    evaluate_landmark_files(p, t, None, spacing=(1, 1), shapes_csv=tmp_path / "shapes.csv", n_resamples=50)


def test_spacing_rules(tmp_path):
    p, t = _files(tmp_path)
    with pytest.raises(PredictionError, match="give --spacing"):
        evaluate_landmark_files(p, t, None, n_resamples=50)
    with pytest.raises(PredictionError, match="expected 2 positive values"):
        evaluate_landmark_files(p, t, None, spacing=(1, 1, 1), n_resamples=50)
    (tmp_path / "sp.csv").write_text("case_id,sx,sy\na,1,0.5\nb,1,0.5\n")
    with pytest.raises(PredictionError, match="no spacing for case 'c'"):
        evaluate_landmark_files(p, t, None, spacing_csv=tmp_path / "sp.csv", n_resamples=50)
    with pytest.raises(PredictionError, match="--allow-missing does not apply"):
        evaluate_landmark_files(p, t, None, spacing=(1, 1), allow_missing=True)
    with pytest.raises(PredictionError, match="--radii"):
        evaluate_landmark_files(p, t, None, spacing=(1, 1), radii=(0,))


def test_cli_evaluate_and_compare(tmp_path, capsys):
    from openmia.cli.main import main

    p, t = _files(tmp_path)
    (tmp_path / "p2.csv").write_text(TRUTH.replace("a,l1,1,1", "a,l1,1,3"))
    assert main(["evaluate", "--task", "landmarks", "--pred", str(p), "--truth", str(t), "--spacing", "1,0.5",
                 "--radii", "1,2", "--resamples", "100", "--out", str(tmp_path / "ev"), "--json"]) == 0
    s = json.loads(capsys.readouterr().out)
    assert s["radii_mm"] == [1.0, 2.0] and any(m["metric"] == "success_1mm" for m in s["metrics"])
    assert main(["compare", "--task", "landmarks", "--truth", str(t), "--pred", f"a={p}", "--pred", f"b={tmp_path / 'p2.csv'}",
                 "--spacing", "1,0.5", "--resamples", "100", "--rank-resamples", "50", "--out", str(tmp_path / "cmp"),
                 "--json"]) == 0
    c = json.loads(capsys.readouterr().out)
    row = c["comparisons"][0]
    assert row["metric"] == "radial_error" and row["test"] == "wilcoxon_signed_rank"
    # per-case means over landmarks: a = (1.0, 0.25, sqrt(13)/2), b = (0.5, 0, 0)
    assert row["estimate_a"] == pytest.approx((1.0 + 0.25 + math.sqrt(13) / 2) / 3)
    assert row["estimate_b"] == pytest.approx(0.5 / 3)
