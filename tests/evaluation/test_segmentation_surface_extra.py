"""The segmentation evaluator's --surface voxel|surfel and --extra-metrics cldice,panoptic:
per-case values equal the metric functions, summary rows carry bootstrap CIs, CLI and compare."""

from __future__ import annotations

import csv
import json
import math
import pickle
from functools import partial

import numpy as np
import pytest

from openmia.errors import PredictionError
from openmia.evaluation.segmentation import evaluate_segmentation, score_case
from openmia.metrics.lesions import panoptic_quality
from openmia.metrics.segmentation import boundary_metrics_from_distances, surface_distances
from openmia.metrics.segmentation_more import cldice
from openmia.metrics.surfel import surfel_metrics

SPACING = (0.8, 1.7)


def _cases(n=6, seed=0):
    rng = np.random.default_rng(seed)
    out = {}
    for i in range(n):
        t = np.zeros((24, 24), np.uint8)
        r, c = rng.integers(3, 10, 2)
        t[r:r + 8, c:c + 6] = 1
        t[18:21, 2:5] = 2
        p = np.roll(t, int(rng.integers(0, 3)), axis=1)
        if i % 3 == 0:
            p[1, 20] = 1  # a false-positive lesion of label 1
        out[f"k{i}"] = (p, t, SPACING)
    return out


class _Load:  # a picklable loader
    def __init__(self, data):
        self.data = data

    def __call__(self, cid):
        return self.data[cid]


def test_surfel_and_extra_metrics_per_case_and_summary():
    data = _cases()
    res = evaluate_segmentation(list(data), _Load(data), surface="surfel", extra_metrics=["cldice", "panoptic"],
                                tolerance=1.0, n_resamples=200, worst_cases=0)
    by = {(c, lab, k): v for c, lab, k, v in res.per_case}
    for cid, (p, t, sp) in data.items():
        for lab in (1, 2):
            ref = {**surfel_metrics(p == lab, t == lab, spacing=sp, tolerance=1.0), **cldice(p == lab, t == lab),
                   **panoptic_quality(p == lab, t == lab)}
            for k in ("nsd", "hd95", "assd", "masd", "hd", "hd95_truth_to_pred", "cldice", "cldice_tsens", "lesion_pq",
                      "lesion_sq", "lesion_rq", "lesion_pq_fp", "lesion_pq_tp"):
                assert by[(cid, str(lab), k)] == pytest.approx(ref[k]), (cid, lab, k)
    s = res.summary
    assert s["surface"] == "surfel" and s["extra_metrics"] == ["cldice", "panoptic"]
    assert "DeepMind" in s["conventions"]["nsd"] and "Shit" in s["conventions"]["cldice"]
    for k in ("cldice", "lesion_pq", "lesion_rq", "nsd"):
        row = res.metric(k, "all")
        assert row["ci_low"] <= row["value"] <= row["ci_high"] and row["ci_low"] < row["ci_high"], k
    assert not any(k == "lesion_pq_tp" and lab == "all" for _, lab, k, _ in res.per_case)  # counts stay per label


def test_default_voxel_mode_unchanged_and_no_extra_metrics():
    data = _cases()
    res = evaluate_segmentation(list(data), _Load(data), n_resamples=100, worst_cases=0)
    by = {(c, lab, k): v for c, lab, k, v in res.per_case}
    p, t, sp = data["k1"]
    vox = boundary_metrics_from_distances(surface_distances(p == 1, t == 1, spacing=sp), tolerance=1.0)
    assert by[("k1", "1", "nsd")] == pytest.approx(vox["nsd"]) and by[("k1", "1", "assd")] == pytest.approx(vox["assd"])
    assert res.summary["surface"] == "voxel" and "cldice" not in {k for _, _, k, _ in res.per_case}
    assert "boundary voxels" in res.summary["conventions"]["nsd"]


def test_empty_truth_nan_policy_covers_new_metrics():
    t = np.zeros((10, 10), np.uint8)
    t[2:5, 2:5] = 1
    p = t.copy()
    p[7, 7] = 2  # label 2 only predicted: empty truth
    data = {"a": (p, t, (1.0, 1.0))}
    worst = evaluate_segmentation(["a"], _Load(data), labels=[1, 2], extra_metrics=["cldice", "panoptic"],
                                  surface="surfel", n_resamples=50, worst_cases=0)
    by = {(lab, k): v for _, lab, k, v in worst.per_case}
    assert by[("2", "cldice")] == 0.0 and by[("2", "lesion_pq")] == 0.0 and by[("2", "lesion_pq_fp")] == 1.0
    assert by[("2", "nsd")] == 0.0
    nan = evaluate_segmentation(["a"], _Load(data), labels=[1, 2], extra_metrics=["cldice", "panoptic"],
                                surface="surfel", empty_truth="nan", n_resamples=50, worst_cases=0)
    by = {(lab, k): v for _, lab, k, v in nan.per_case}
    assert math.isnan(by[("2", "cldice")]) and math.isnan(by[("2", "lesion_pq")]) and math.isnan(by[("2", "nsd")])
    assert by[("1", "lesion_pq")] == 1.0


def test_bad_options_fail_before_reading():
    def load(cid):
        raise AssertionError("must not be called")

    with pytest.raises(PredictionError, match="--surface"):
        evaluate_segmentation(["a"], load, surface="mesh")
    with pytest.raises(PredictionError, match="unknown metric group"):
        evaluate_segmentation(["a"], load, extra_metrics=["pq"])


def test_scorer_is_picklable():
    data = _cases(2)
    f = partial(score_case, load=_Load(data), fixed=None, tolerance=1.0, percentile=95.0, lesions=False,
                boundary_iou_distance=None, empty_truth="worst", surface="surfel", extra_metrics=("cldice", "panoptic"))
    g = pickle.loads(pickle.dumps(f))
    assert g("k0")[0][1]["nsd"] == f("k0")[0][1]["nsd"]


def _write_folders(tmp_path, data, models):
    td = tmp_path / "truth"
    td.mkdir()
    for name in models:
        (tmp_path / name).mkdir()
    for cid, (p, t, _) in data.items():
        np.save(td / f"{cid}.npy", t)
        for name, shift in models.items():
            np.save(tmp_path / name / f"{cid}.npy", np.roll(p, shift, axis=0))
    return td


def test_cli_evaluate_and_compare(tmp_path, capsys):
    from openmia.cli.main import main

    data = _cases(8)
    td = _write_folders(tmp_path, data, {"a": 0, "b": 1})
    out = tmp_path / "ev"
    rc = main(["evaluate", "--task", "segmentation", "--pred", str(tmp_path / "a"), "--truth", str(td), "--out", str(out),
               "--spacing", "0.8,1.7", "--surface", "surfel", "--extra-metrics", "cldice,panoptic", "--resamples", "100",
               "--worst-cases", "0"])
    text = capsys.readouterr().out
    assert rc == 0 and "cldice" in text and "lesion_pq" in text
    s = json.loads((out / "summary.json").read_text())
    assert s["surface"] == "surfel" and {r["metric"] for r in s["metrics"]} >= {"cldice", "lesion_pq", "lesion_sq"}
    rows = [r for r in csv.DictReader(open(out / "per_case.csv")) if r["metric"] == "nsd" and r["label"] == "1"]
    p, t, sp = data[rows[0]["case_id"]]
    assert float(rows[0]["value"]) == pytest.approx(surfel_metrics(p == 1, t == 1, spacing=sp)["nsd"])
    rc = main(["evaluate", "--task", "segmentation", "--pred", str(tmp_path / "a"), "--truth", str(td),
               "--out", str(tmp_path / "bad"), "--extra-metrics", "betti"])
    assert rc == 2 and "unknown metric group" in capsys.readouterr().err

    cmp = tmp_path / "cmp"
    rc = main(["compare", "--task", "segmentation", "--truth", str(td), "--out", str(cmp), "--pred", f"a={tmp_path / 'a'}",
               "--pred", f"b={tmp_path / 'b'}", "--spacing", "0.8,1.7", "--surface", "surfel",
               "--metrics", "nsd,cldice,lesion_pq,lesion_f1", "--resamples", "100", "--rank-resamples", "20"])
    assert rc == 0, capsys.readouterr().err
    comp = {r["metric"]: r for r in csv.DictReader(open(cmp / "comparisons.csv")) if r["label"] == "all"}
    assert set(comp) == {"nsd", "cldice", "lesion_pq", "lesion_f1"}
    # model a's estimate is the mean of its surfel NSD over the cases (both models defined everywhere)
    nsd_a = np.mean([np.nanmean([surfel_metrics(p == lab, t == lab, spacing=sp)["nsd"] for lab in (1, 2)])
                     for p, t, sp in data.values()])
    assert float(comp["nsd"]["estimate_a"]) == pytest.approx(nsd_a)
    assert float(comp["cldice"]["diff"]) > 0  # the shifted model is worse
