"""openmia compare: paired tests per pair and metric, Holm per family, rankings, outputs, CLI."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
from scipy import stats

from openmia.errors import PredictionError
from openmia.evaluation.compare import COMPARISON_COLUMNS, compare_files
from openmia.stats.delong import delong_paired_test
from openmia.stats.tests import holm


def _write_binary(tmp_path, n=120, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    truth = tmp_path / "truth.csv"
    truth.write_text("case_id,label\n" + "".join(f"c{i},{y[i]}\n" for i in range(n)))
    preds, scores = {}, {}
    for name, noise in (("good", 0.6), ("fair", 1.2), ("poor", 3.0)):
        s = 1 / (1 + np.exp(-(2 * y - 1 + noise * rng.standard_normal(n))))
        p = tmp_path / f"{name}.csv"
        p.write_text("case_id,score\n" + "".join(f"c{i},{float(s[i])!r}\n" for i in range(n)))
        preds[name], scores[name] = p, s
    return truth, preds, y, scores


def test_classification_comparisons_match_direct_tests(tmp_path):
    truth, preds, y, scores = _write_binary(tmp_path)
    res = compare_files("classification", truth, preds, tmp_path / "out", n_resamples=300, rank_resamples=100)
    rows = {(r["metric"], r["model_a"], r["model_b"]): r for r in res["comparisons"]}
    assert len(res["comparisons"]) == 4 * 3  # 4 metrics x 3 pairs
    r = rows[("auc", "good", "poor")]
    ref = delong_paired_test(y, scores["good"], scores["poor"])
    assert r["test"] == "paired_delong" and r["diff"] == pytest.approx(ref["diff"]) and r["p_value"] == pytest.approx(ref["p_value"])
    assert r["ci_low"] < r["diff"] < r["ci_high"]
    # Holm within the AUC family of 3 pairs
    fam = [rows[("auc", a, b)] for a, b in (("good", "fair"), ("good", "poor"), ("fair", "poor"))]
    assert [f["p_holm"] for f in fam] == pytest.approx(list(holm([f["p_value"] for f in fam])))
    acc = rows[("acc", "good", "poor")]
    assert acc["test"] == "exact_mcnemar" and acc["estimate_a"] == pytest.approx(np.mean((scores["good"] >= 0.5) == y))
    brier = rows[("brier", "good", "fair")]
    d = (scores["good"] - y) ** 2 - (scores["fair"] - y) ** 2
    assert brier["test"] == "wilcoxon_signed_rank"
    assert brier["p_value"] == pytest.approx(stats.wilcoxon(d, zero_method="pratt").pvalue)  # source: SciPy
    assert brier["diff"] == pytest.approx(d.mean())
    # outputs
    out = tmp_path / "out"
    header = next(csv.reader(open(out / "comparisons.csv")))
    assert tuple(header) == COMPARISON_COLUMNS
    ranking = list(csv.DictReader(open(out / "ranking.csv")))
    auc_rank = {r["model"]: float(r["rank"]) for r in ranking if r["metric"] == "auc"}
    assert auc_rank == {"good": 1.0, "fair": 2.0, "poor": 3.0}
    assert (out / "rank_stability.png").read_bytes()[:4] == b"\x89PNG"
    assert json.loads((out / "compare.json").read_text())["schema"] == "openmia.compare/1"


def test_compare_needs_two_models_and_known_names(tmp_path):
    truth, preds, *_ = _write_binary(tmp_path)
    with pytest.raises(PredictionError, match="at least two"):
        compare_files("classification", truth, {"good": preds["good"]})
    with pytest.raises(PredictionError, match="unknown metric"):
        compare_files("classification", truth, preds, metrics=["sharpness"])
    # a model whose file lacks a case is named like in evaluate
    bad = tmp_path / "bad.csv"
    bad.write_text("case_id,score\nc0,0.5\n")
    with pytest.raises(PredictionError, match="missing"):
        compare_files("classification", truth, {"good": preds["good"], "bad": bad})


def test_segmentation_compare_and_cli(tmp_path, capsys):
    from openmia.cli.main import main

    td = tmp_path / "truth"
    td.mkdir()
    rng = np.random.default_rng(0)
    models = {"exact": 0, "shifted": 1, "far": 3}
    for name in models:
        (tmp_path / name).mkdir()
    for i in range(8):
        t = np.zeros((24, 24), np.uint8)
        r0, c0 = rng.integers(4, 10, 2)
        t[r0 : r0 + 8, c0 : c0 + 8] = 1
        np.save(td / f"k{i}.npy", t)
        for name, shift in models.items():
            jitter = rng.integers(0, 2)  # per-case noise so that differences are not all equal
            np.save(tmp_path / name / f"k{i}.npy", np.roll(t, shift + (jitter if shift else 0), axis=1))
    out = tmp_path / "cmp"
    rc = main(["compare", "--task", "segmentation", "--truth", str(td), "--out", str(out), "--pred", f"exact={tmp_path / 'exact'}",
               "--pred", f"shifted={tmp_path / 'shifted'}", "--pred", f"far={tmp_path / 'far'}", "--scheme", "rank-then-aggregate",
               "--resamples", "200", "--rank-resamples", "50"])
    text = capsys.readouterr().out
    assert rc == 0 and "wilcoxon_signed_rank" in text and "rank-then-aggregate" in text
    ranking = [r for r in csv.DictReader(open(out / "ranking.csv")) if r["metric"] == "dice"]
    assert {r["model"]: float(r["rank"]) for r in ranking} == {"exact": 1.0, "shifted": 2.0, "far": 3.0}
    comp = [r for r in csv.DictReader(open(out / "comparisons.csv")) if r["metric"] == "dice" and r["model_b"] == "far"]
    assert all(float(r["diff"]) > 0 for r in comp)
    rc = main(["compare", "--task", "segmentation", "--truth", str(td), "--out", str(out), "--pred", f"x={td}"])
    assert rc == 2 and "at least two" in capsys.readouterr().err


def test_segmentation_compare_counts_a_false_positive_on_an_empty_truth(tmp_path):
    """Empty truths: the model that predicts nothing there is NaN (both empty), the other Dice 0.
    Dropping those cases would hide the false positives; the pair is compared on each model's own
    mean, which is what ``evaluate`` reports, with a bootstrap CI and a swap-permutation p."""
    from openmia.evaluation.segmentation import evaluate_folders

    td = tmp_path / "truth"
    for d in ("truth", "quiet", "noisy"):
        (tmp_path / d).mkdir()
    for i in range(12):
        t = np.zeros((24, 24), np.uint8)
        if i >= 4:  # cases 0-3: empty truth
            t[6:14, 6:14] = 1
        np.save(td / f"k{i:02d}.npy", t)
        quiet = np.roll(t, 1, axis=1)  # a slightly worse overlap, nothing where the truth is empty
        noisy = t.copy()
        if i < 4:
            noisy[2:5, 2:5] = 1  # false positive on an empty truth
        np.save(tmp_path / "quiet" / f"k{i:02d}.npy", quiet)
        np.save(tmp_path / "noisy" / f"k{i:02d}.npy", noisy)
    res = compare_files("segmentation", td, {"quiet": tmp_path / "quiet", "noisy": tmp_path / "noisy"}, tmp_path / "cmp",
                        metrics=["dice"], n_resamples=500)
    row = next(r for r in res["comparisons"] if r["metric"] == "dice")
    heads = {m: next(r["value"] for r in evaluate_folders(tmp_path / m, td, n_resamples=50).summary["metrics"]
                     if r["metric"] == "dice" and r["label"] == "all") for m in ("quiet", "noisy")}
    # quiet: 8 defined cases of Dice 2*56/128 = 0.875; noisy: 4 zeros and 8 ones -> 2/3
    assert heads["quiet"] == pytest.approx(0.875) and heads["noisy"] == pytest.approx(2 / 3)
    assert row["model_a"] == "quiet" and row["test"] == "swap_permutation_nanmean"
    assert row["estimate_a"] == pytest.approx(heads["quiet"]) and row["estimate_b"] == pytest.approx(heads["noisy"])
    assert row["diff"] == pytest.approx(0.875 - 2 / 3) and row["ci_low"] <= row["diff"] <= row["ci_high"]
    # on complete pairs only (the 8 lesion cases) quiet would look worse: 0.875 against 1
    assert 0 < row["p_value"] <= 1
    # rank-then-aggregate: a case both masks leave empty ranks first, not last (quiet wins cases
    # 0-3, noisy 4-11: mean ranks (4 * 1 + 8 * 2) / 12 and (4 * 2 + 8 * 1) / 12)
    res = compare_files("segmentation", td, {"quiet": tmp_path / "quiet", "noisy": tmp_path / "noisy"}, tmp_path / "cmp2",
                        metrics=["dice"], n_resamples=200, rank_resamples=20, scheme="rank-then-aggregate")
    scores = {r["model"]: r["score"] for r in res["ranking"] if r["metric"] == "dice"}
    assert scores == pytest.approx({"quiet": (4 + 16) / 12, "noisy": (8 + 8) / 12})


def test_resamples_must_be_positive(tmp_path, capsys):
    from openmia.cli.main import main

    truth, preds, _, _ = _write_binary(tmp_path, n=20)
    for cmd in (["evaluate", "--task", "classification", "--truth", str(truth), "--pred", str(preds["good"])],
                ["compare", "--task", "classification", "--truth", str(truth), "--pred", f"good={preds['good']}",
                 "--pred", f"fair={preds['fair']}"]):
        rc = main([*cmd, "--out", str(tmp_path / cmd[0]), "--resamples", "0"])
        assert rc == 2 and "resamples" in capsys.readouterr().err and not (tmp_path / cmd[0] / "summary.json").exists()


def test_counting_compare(tmp_path):
    truth = tmp_path / "t.csv"
    truth.write_text("case_id,count\n" + "".join(f"c{i},{10 + i}\n" for i in range(12)))
    (tmp_path / "a.csv").write_text("case_id,count\n" + "".join(f"c{i},{10 + i + (i % 2)}\n" for i in range(12)))
    (tmp_path / "b.csv").write_text("case_id,count\n" + "".join(f"c{i},{10 + i + 3 + (i % 3)}\n" for i in range(12)))
    res = compare_files("counting", truth, {"a": tmp_path / "a.csv", "b": tmp_path / "b.csv"}, n_resamples=200, rank_resamples=50)
    row = next(r for r in res["comparisons"] if r["metric"] == "count_abs_error")
    assert row["estimate_a"] == pytest.approx(0.5) and row["estimate_b"] == pytest.approx(4.0) and row["p_value"] < 0.01
    assert [r["rank"] for r in res["ranking"] if r["metric"] == "count_abs_error"] == [1.0, 2.0]
    with pytest.raises(PredictionError, match="compare --task clustering: available for classification, segmentation, "
                                              "detection, counting, inpainting"):
        compare_files("clustering", truth, {"a": tmp_path / "a.csv", "b": tmp_path / "b.csv"})


def test_denoising_compare_with_an_exact_case(tmp_path):
    """PSNR of a prediction equal to its truth is +inf: excluded from the means (as ``evaluate``'s
    headline, counted in n_nan) but ranked first in its case by rank-then-aggregate."""
    from openmia.evaluation.generative import evaluate_denoising_folders

    rng = np.random.default_rng(0)
    for d in ("truth", "a", "b"):
        (tmp_path / d).mkdir()
    for i in range(8):
        t = rng.random((16, 16))
        np.save(tmp_path / "truth" / f"c{i}.npy", t)
        np.save(tmp_path / "a" / f"c{i}.npy", t if i == 0 else t + 0.1)  # exact on c0, else 20 dB
        np.save(tmp_path / "b" / f"c{i}.npy", t + 0.05)  # 10 log10(1 / 0.0025) = 26.02 dB everywhere
    res = compare_files("denoising", tmp_path / "truth", {"a": tmp_path / "a", "b": tmp_path / "b"}, tmp_path / "cmp",
                        metrics=["psnr"], n_resamples=200, rank_resamples=20, scheme="rank-then-aggregate", data_range=1.0)
    row = next(r for r in res["comparisons"] if r["metric"] == "psnr")
    head = next(r["value"] for r in evaluate_denoising_folders(tmp_path / "a", tmp_path / "truth", data_range=1.0,
                                                                n_resamples=50).summary["metrics"] if r["metric"] == "psnr")
    assert row["estimate_a"] == pytest.approx(20.0) == pytest.approx(head)
    assert row["diff"] == pytest.approx(20.0 - 10 * np.log10(400)) and np.isfinite([row["ci_low"], row["ci_high"]]).all()
    # a wins c0, b the other 7: mean ranks (1 + 7 * 2) / 8 and (2 + 7) / 8
    assert {r["model"]: r["score"] for r in res["ranking"]} == pytest.approx({"a": 15 / 8, "b": 9 / 8})
