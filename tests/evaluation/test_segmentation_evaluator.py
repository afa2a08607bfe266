"""The segmentation evaluator on label-map folders: outputs, DESIGN §4.3 rules, CLI."""

from __future__ import annotations

import csv
import json
import math

import numpy as np
import pytest

from openmia.errors import PredictionError
from openmia.evaluation.segmentation import evaluate_folders, parse_tolerance

nib = pytest.importorskip("nibabel")


def _case(shift: int) -> tuple[np.ndarray, np.ndarray]:
    t = np.zeros((16, 16, 8), np.uint8)
    t[3:9, 3:9, 2:6] = 1
    t[11:15, 2:8, 3:7] = 2
    p = np.roll(t, shift, axis=0)
    return p, t


def _write(folder, name, arr, spacing=(0.75, 0.75, 2.5), kind="nii.gz"):
    folder.mkdir(exist_ok=True)
    if kind == "npy":
        np.save(folder / f"{name}.npy", arr)
    else:
        nib.save(nib.Nifti1Image(arr, np.diag([*spacing, 1.0])), str(folder / f"{name}.{kind}"))


@pytest.fixture
def folders(tmp_path):
    pd, td = tmp_path / "pred", tmp_path / "truth"
    for i, shift in enumerate((0, 1, 2, 1)):
        p, t = _case(shift)
        _write(pd, f"case{i}", p)
        _write(td, f"case{i}", t)
    return pd, td


def test_outputs_and_values(folders, tmp_path):
    pd, td = folders
    out = tmp_path / "out"
    res = evaluate_folders(pd, td, out, tolerance={1: 1.0, 2: 2.0}, n_resamples=300)
    rows = list(csv.DictReader(open(out / "per_case.csv")))
    assert set(rows[0]) == {"case_id", "label", "metric", "value"}
    by = {(r["case_id"], r["label"], r["metric"]): float(r["value"]) for r in rows}
    assert by[("case0", "1", "dice")] == 1.0 and by[("case0", "2", "hd95")] == 0.0
    # case1: a 6x6x4 cube shifted by one row (0.75 mm): Dice = 2*5/12; max distance = 0.75 mm
    assert by[("case1", "1", "dice")] == pytest.approx(10 / 12)
    assert by[("case1", "1", "hd")] == pytest.approx(0.75)
    s = json.loads((out / "summary.json").read_text())
    assert s["schema"] == "openmia.summary/1" and s["task"] == "segmentation" and s["n_cases"] == 4
    assert s["labels"] == ["1", "2", "all"] and s["spacings"] == [[0.75, 0.75, 2.5]]
    dice1 = res.metric("dice", "1")
    expected = np.mean([by[(f"case{i}", "1", "dice")] for i in range(4)])
    assert dice1["value"] == pytest.approx(expected) and dice1["ci_low"] <= dice1["value"] <= dice1["ci_high"]
    assert dice1["n"] == 4 and dice1["n_nan"] == 0 and dice1["ci_method"] == "bca_bootstrap"
    for key in ("median", "q1", "q3"):
        assert key in dice1
    allrow = res.metric("dice", "all")
    assert allrow["value"] == pytest.approx(np.mean([(by[(f"case{i}", "1", "dice")] + by[(f"case{i}", "2", "dice")]) / 2
                                                     for i in range(4)]))


def test_parallel_equals_serial(folders):
    pd, td = folders
    a = evaluate_folders(pd, td, workers=1, n_resamples=100)
    b = evaluate_folders(pd, td, workers=2, n_resamples=100)
    assert a.per_case == b.per_case and a.summary["metrics"] == b.summary["metrics"]


def test_missing_case_is_named_unless_allowed(folders, tmp_path):
    pd, td = folders
    (pd / "case2.nii.gz").unlink()
    with pytest.raises(PredictionError, match="missing case.*case2"):
        evaluate_folders(pd, td)
    res = evaluate_folders(pd, td, allow_missing=True, n_resamples=100)
    assert res.summary["missing_cases"] == ["case2"]
    worst = [r for r in res.per_case if r[0] == "case2" and r[2] in ("dice", "hd95")]
    diag = math.sqrt((16 * 0.75) ** 2 + (16 * 0.75) ** 2 + (8 * 2.5) ** 2)
    assert {r[2]: r[3] for r in worst if r[1] == "1"} == pytest.approx({"dice": 0.0, "hd95": diag})


def test_rule_violations_name_the_case(folders, tmp_path):
    pd, td = folders
    _write(pd, "ghost", _case(0)[0])
    with pytest.raises(PredictionError, match="ghost.*no truth"):
        evaluate_folders(pd, td)
    (pd / "ghost.nii.gz").unlink()
    _write(pd, "case1", _case(0)[0], kind="npy")
    with pytest.raises(PredictionError, match="case 'case1' appears twice"):
        evaluate_folders(pd, td)
    (pd / "case1.npy").unlink()
    _write(pd, "case3", np.zeros((16, 16, 7), np.uint8))
    with pytest.raises(PredictionError, match="case 'case3'.*shape"):
        evaluate_folders(pd, td)
    _write(pd, "case3", _case(0)[0], spacing=(1.0, 0.75, 2.5))
    with pytest.raises(PredictionError, match="case 'case3'.*spacing"):
        evaluate_folders(pd, td)
    bad = _case(0)[0]
    bad[0, 0, 0] = 7
    _write(pd, "case3", bad)
    with pytest.raises(PredictionError, match=r"label\(s\) \[7\] never occur in the truth \(case\(s\) case3"):
        evaluate_folders(pd, td)
    with pytest.raises(PredictionError, match=r"case 'case3': prediction contains label\(s\) \[7\]"):
        evaluate_folders(pd, td, labels=[1, 2])
    (pd / "case3.nii.gz").write_bytes(b"\x1f\x8b truncated")
    with pytest.raises(PredictionError, match="case 'case3': cannot read"):
        evaluate_folders(pd, td)


def test_npy_needs_spacing_for_3d(tmp_path):
    pd, td = tmp_path / "p", tmp_path / "t"
    p, t = _case(1)
    _write(pd, "a", p, kind="npy")
    _write(td, "a", t, kind="npy")
    with pytest.raises(PredictionError, match="case 'a'.*--spacing"):
        evaluate_folders(pd, td)
    res = evaluate_folders(pd, td, spacing=(0.75, 0.75, 2.5), n_resamples=50)
    assert res.metric("hd", "1")["value"] == pytest.approx(0.75)


def test_patient_bootstrap_and_lesions(folders, tmp_path):
    pd, td = folders
    pat = tmp_path / "patients.csv"
    pat.write_text("case_id,patient_id\ncase0,p1\ncase1,p1\ncase2,p2\ncase3,p3\n")
    res = evaluate_folders(pd, td, patients_csv=pat, lesions=True, n_resamples=100)
    assert res.summary["n_patients"] == 3 and res.metric("dice", "1")["ci_method"] == "bca_bootstrap_patients"
    assert res.metric("lesion_f1", "1")["value"] == 1.0
    assert any(r[2] == "lesion_tp" for r in res.per_case)


def test_parse_tolerance():
    assert parse_tolerance("1.5") == 1.5 and parse_tolerance("1=1.5,2=2") == {1: 1.5, 2: 2.0}
    with pytest.raises(PredictionError, match="--nsd-tolerance"):
        parse_tolerance("1:2")


def test_cli_segmentation(folders, tmp_path, capsys):
    from openmia.cli.main import main

    pd, td = folders
    out = tmp_path / "cli"
    rc = main(["evaluate", "--task", "segmentation", "--pred", str(pd), "--truth", str(td), "--out", str(out),
               "--nsd-tolerance", "1=1.0,2=2.0", "--resamples", "200", "--label-names", "1=liver,2=tumour"])
    text = capsys.readouterr().out
    assert rc == 0 and "4 cases, labels 1, 2" in text and "hd95" in text and (out / "summary.json").is_file()
    assert "label liver" in text and json.loads((out / "summary.json").read_text())["labels"] == ["liver", "tumour", "all"]
    assert (out / "report.html").is_file()
