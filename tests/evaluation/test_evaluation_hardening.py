"""Issue 21 faults 3, 4, 7, 12, 14, 15 in the evaluators, and the architecture rule that
``evaluation/`` never imports ``cli/`` (issue 20)."""

from __future__ import annotations

import ast
import json
import os
import warnings
from pathlib import Path

import numpy as np
import pytest

from openmia.cli.main import main
from openmia.errors import OpenmiaError, PredictionError
from openmia.evaluation.classification import evaluate_files
from openmia.evaluation.other_tasks import evaluate_counting_files, evaluate_detection_files


def _bin_files(folder: Path, n: int = 12, *, eol: str = "\n") -> tuple[Path, Path]:
    rng = np.random.default_rng(1)
    y = np.arange(n) % 2
    s = np.clip(0.3 * y + 0.7 * rng.random(n), 0, 1)
    (folder / "pred.csv").write_bytes(eol.join(["case_id,score", *(f"c{i},{v:.4f}" for i, v in enumerate(s))]).encode() + eol.encode())
    (folder / "truth.csv").write_bytes(eol.join(["case_id,label", *(f"c{i},{v}" for i, v in enumerate(y))]).encode() + eol.encode())
    return folder / "pred.csv", folder / "truth.csv"


# ----------------------------------------------------------------------------- fault 3: CSV reader


def test_cr_only_line_endings_read_like_lf(tmp_path):
    (tmp_path / "lf").mkdir()
    (tmp_path / "cr").mkdir()
    a = evaluate_files(*_bin_files(tmp_path / "lf"), n_resamples=50)
    b = evaluate_files(*_bin_files(tmp_path / "cr", eol="\r"), n_resamples=50)
    assert a.summary["n_cases"] == b.summary["n_cases"] == 12
    assert a.metric("auc")["value"] == b.metric("auc")["value"]
    (tmp_path / "crlf").mkdir()
    c = evaluate_files(*_bin_files(tmp_path / "crlf", eol="\r\n"), n_resamples=50)
    assert c.metric("auc")["value"] == a.metric("auc")["value"]


def test_huge_field_is_a_clear_error_naming_file_and_line(tmp_path):
    pred, truth = _bin_files(tmp_path)
    pred.write_text("case_id,score\nc0,0.5\nc1," + "9" * (10 * 2**20) + "\n")
    with pytest.raises(PredictionError, match=r"pred\.csv, line 3: .*longer than"):
        evaluate_files(pred, truth)
    with pytest.raises(PredictionError, match=r"pred\.csv, line 3"):
        evaluate_counting_files(truth, pred)  # the truth side is read first


def test_nul_byte_is_a_clear_error_naming_file_and_line(tmp_path):
    pred, truth = _bin_files(tmp_path)
    raw = pred.read_bytes().replace(b"c3,", b"c3\x00,")
    pred.write_bytes(raw)
    with pytest.raises(PredictionError, match=r"pred\.csv, line 5: NUL byte"):
        evaluate_files(pred, truth)
    pred.write_bytes("case_id,score\nc0,0.5\n".encode("utf-16"))  # UTF-16 export: NULs everywhere
    with pytest.raises(PredictionError, match=r"pred\.csv.*(UTF-16|UTF-8)"):
        evaluate_files(pred, truth)


def test_cli_reports_csv_faults_on_one_line(tmp_path, capsys):
    pred, truth = _bin_files(tmp_path)
    pred.write_bytes(b"case_id,score\nc0,\x000.5\n")
    # detection reads the truth first: the broken file goes there
    assert main(["evaluate", "--task", "detection", "--pred", str(truth), "--truth", str(pred), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "pred.csv, line 2" in err


# ----------------------------------------------------------------------------- fault 15: messages


def test_probability_sum_and_range_errors_name_file_and_line(tmp_path):
    (tmp_path / "truth.csv").write_text("case_id,label\na,0\nb,1\nc,2\n")
    pred = tmp_path / "pred.csv"
    pred.write_text("case_id,p0,p1,p2\na,0.2,0.3,0.5\nb,0.5,0.5,0.5\nc,0,0,1\n")
    with pytest.raises(PredictionError, match=r"pred\.csv, line 3 \(case b\): class probabilities sum to 1\.5"):
        evaluate_files(pred, tmp_path / "truth.csv")
    pred.write_text("case_id,p0,p1,p2\na,0.2,0.3,0.5\nb,0,1,0\nc,-0.5,0.5,1\n")
    with pytest.raises(PredictionError, match=r"pred\.csv, line 4 \(case c\), column 'p0': probability -0\.5 is outside \[0, 1\]"):
        evaluate_files(pred, tmp_path / "truth.csv")
    (tmp_path / "t2.csv").write_text("case_id,label\na,0\nb,1\n")
    pred.write_text("case_id,score\na,0.2\nb,1.5\n")
    with pytest.raises(PredictionError, match=r"pred\.csv, line 3 \(case b\), column 'score': probability 1\.5 is outside"):
        evaluate_files(pred, tmp_path / "t2.csv")


def test_absent_class_draws_no_warning(tmp_path):
    (tmp_path / "p.csv").write_text("case_id,score\na,0.2\nb,0.7\nc,0.4\n")
    (tmp_path / "t.csv").write_text("case_id,label\na,0\nb,0\nc,0\n")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        evaluate_files(tmp_path / "p.csv", tmp_path / "t.csv", tmp_path / "out", n_resamples=50)
    assert "undefined" in (tmp_path / "out" / "report.html").read_text()


# ----------------------------------------------------------------------------- fault 14: label maps


def _png(path: Path, arr: np.ndarray, mode: str | None = None) -> Path:
    from PIL import Image

    Image.fromarray(arr, mode=mode).save(path)
    return path


@pytest.mark.parametrize("channels,mode", [(3, "RGB"), (2, "LA"), (4, "RGBA")])
def test_multichannel_png_label_map_is_refused(tmp_path, channels, mode):
    from openmia.evaluation.segmentation import evaluate_folders

    for d in ("p", "t"):
        (tmp_path / d).mkdir()
    lab = np.zeros((8, 8), np.uint8)
    lab[2:5, 2:5] = 1
    _png(tmp_path / "t" / "c1.png", lab)
    _png(tmp_path / "p" / "c1.png", np.repeat(lab[..., None], channels, axis=2))
    with pytest.raises(PredictionError, match=rf"case 'c1': .*c1\.png: label maps must be single-channel \(found {mode} PNG"):
        evaluate_folders(tmp_path / "p", tmp_path / "t", n_resamples=20)


def test_nan_spacing_names_the_case_and_the_header(tmp_path):
    nib = pytest.importorskip("nibabel")
    from openmia.evaluation.segmentation import evaluate_folders

    for d in ("p", "t"):
        (tmp_path / d).mkdir()
    lab = np.zeros((6, 6, 4), np.uint8)
    lab[1:4, 1:4, 1:3] = 1
    img = nib.Nifti1Image(lab, np.diag([1.0, 1.0, 2.0, 1.0]))
    img.header.set_zooms((1.0, float("nan"), 2.0))
    nib.save(img, str(tmp_path / "t" / "k.nii.gz"))
    nib.save(nib.Nifti1Image(lab, np.diag([1.0, 1.0, 2.0, 1.0])), str(tmp_path / "p" / "k.nii.gz"))
    with pytest.raises(PredictionError, match=r"case 'k': .*k\.nii\.gz.* voxel spacing \(1(\.0)?, nan, 2(\.0)?\).*--spacing"):
        evaluate_folders(tmp_path / "p", tmp_path / "t", n_resamples=20)
    res = evaluate_folders(tmp_path / "p", tmp_path / "t", spacing=(1.0, 1.0, 2.0), n_resamples=20)  # --spacing overrides
    assert res.summary["n_cases"] == 1
    with pytest.raises(PredictionError, match=r"--spacing.*positive finite.*nan"):
        evaluate_folders(tmp_path / "p", tmp_path / "t", spacing=(1.0, float("nan"), 2.0), n_resamples=20)


# ----------------------------------------------------------------------------- fault 12: result sets


def test_killed_evaluation_leaves_no_partial_set(tmp_path, monkeypatch):
    import openmia.evaluation.report as report

    pred, truth = _bin_files(tmp_path)
    out = tmp_path / "out"
    evaluate_files(pred, truth, out, n_resamples=50)
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    assert sorted(before) == ["per_case.csv", "report.html", "summary.json"]

    def die(*a, **k):
        raise KeyboardInterrupt  # a kill after per_case.csv and summary.json were written

    monkeypatch.setattr(report, "write_report", die)
    with pytest.raises(KeyboardInterrupt):
        evaluate_files(pred, truth, out, n_resamples=60)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before  # the earlier set, whole
    assert sorted(os.listdir(tmp_path)) == ["out", "pred.csv", "truth.csv"]  # and no debris
    with pytest.raises(KeyboardInterrupt):
        evaluate_files(pred, truth, tmp_path / "fresh", n_resamples=60)
    assert not (tmp_path / "fresh").exists()


def test_detection_and_counting_outputs_share_a_folder(tmp_path):
    """The object trainer writes counting into eval/<split>/counting and detection into eval/<split>."""
    (tmp_path / "t.csv").write_text("case_id,label,x,y\na,cell,3,3\nb,cell,5,5\n")
    (tmp_path / "p.csv").write_text("case_id,label,x,y,score\na,cell,3,3,0.9\nb,cell,9,9,0.8\n")
    (tmp_path / "tc.csv").write_text("case_id,count\na,1\nb,1\n")
    (tmp_path / "pc.csv").write_text("case_id,count\na,1\nb,2\n")
    out = tmp_path / "eval" / "test"
    evaluate_counting_files(tmp_path / "pc.csv", tmp_path / "tc.csv", out / "counting", n_resamples=30)
    evaluate_detection_files(tmp_path / "p.csv", tmp_path / "t.csv", out, n_resamples=30)
    assert sorted(os.listdir(out)) == ["counting", "per_case.csv", "report.html", "summary.json"]
    assert json.loads((out / "counting" / "summary.json").read_text())["task"] == "counting"


# ----------------------------------------------------------------------------- faults 4, 7: output folder (CLI)


def test_cli_refuses_earlier_results_unless_overwrite(tmp_path, capsys):
    pred, truth = _bin_files(tmp_path)
    args = ["evaluate", "--task", "classification", "--pred", str(pred), "--truth", str(truth), "--resamples", "30"]
    out = tmp_path / "out"
    assert main([*args, "--out", str(out)]) == 0
    first = (out / "summary.json").read_bytes()
    capsys.readouterr()
    assert main([*args, "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "already holds 3 file(s)" in err and "--overwrite" in err and err.count("\n") == 1
    assert (out / "summary.json").read_bytes() == first
    assert main([*args, "--out", str(out), "--overwrite", "--seed", "3"]) == 0
    assert json.loads((out / "summary.json").read_text())["bootstrap"]["seed"] == 3


def test_cli_refuses_an_output_folder_holding_the_inputs(tmp_path, capsys):
    pred, truth = _bin_files(tmp_path)
    assert main(["evaluate", "--task", "classification", "--pred", str(pred), "--truth", str(truth),
                 "--out", str(tmp_path), "--overwrite"]) == 2
    assert "contains the input" in capsys.readouterr().err
    seg = tmp_path / "seg"
    seg.mkdir()
    assert main(["evaluate", "--task", "segmentation", "--pred", str(seg), "--truth", str(seg), "--out", str(seg)]) == 2
    assert "is the input" in capsys.readouterr().err


def test_cli_output_os_errors_are_one_line(tmp_path, capsys):
    pred, truth = _bin_files(tmp_path)
    args = ["evaluate", "--task", "classification", "--pred", str(pred), "--truth", str(truth), "--resamples", "30"]
    (tmp_path / "file").write_text("x")
    assert main([*args, "--out", str(tmp_path / "file")]) == 2
    err = capsys.readouterr().err
    assert "is an existing file" in err and err.count("\n") == 1
    assert main([*args, "--out", str(tmp_path / "file" / "sub")]) == 2
    err = capsys.readouterr().err
    assert "is a file, not a folder" in err and err.count("\n") == 1


def test_compare_refuses_earlier_results_unless_overwrite(tmp_path, capsys):
    pred, truth = _bin_files(tmp_path)
    out = tmp_path / "cmp"
    args = ["compare", "--task", "classification", "--truth", str(truth), "--pred", f"a={pred}", "--pred", f"b={pred}",
            "--out", str(out), "--resamples", "30", "--rank-resamples", "20", "--metrics", "acc"]
    assert main(args) == 0
    assert sorted(os.listdir(out)) == ["compare.json", "comparisons.csv", "forest_plot.png", "rank_stability.png", "ranking.csv"]
    capsys.readouterr()
    assert main(args) == 2 and "--overwrite" in capsys.readouterr().err
    assert main([*args, "--overwrite"]) == 0


# ----------------------------------------------------------------------------- issue 20: layering, to_pandas


def test_evaluation_never_imports_cli():
    import openmia.evaluation as ev

    offenders = []
    for f in Path(ev.__file__).parent.glob("*.py"):
        for node in ast.walk(ast.parse(f.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            offenders += [f"{f.name}: {n}" for n in names if n.startswith("openmia.cli")]
    assert offenders == []


def test_table_helpers_live_in_evaluation():
    from openmia.cli import _common
    from openmia.evaluation import table

    assert _common.summary_table is table.summary_table and _common.format_table is table.format_table


def test_to_pandas(tmp_path):
    res = evaluate_files(*_bin_files(tmp_path), n_resamples=30)
    pd = pytest.importorskip("pandas")
    df = res.to_pandas()
    assert isinstance(df, pd.DataFrame) and list(df.columns) == ["case_id", "label", "metric", "value"]
    assert len(df) == len(res.per_case)


def test_to_pandas_without_pandas_says_how_to_install(tmp_path, monkeypatch):
    import sys

    res = evaluate_files(*_bin_files(tmp_path), n_resamples=30)
    monkeypatch.setitem(sys.modules, "pandas", None)
    with pytest.raises(OpenmiaError, match="pip install pandas"):
        res.to_pandas()


def test_4d_nifti_with_a_singleton_axis_keeps_its_3d_spacing(tmp_path):
    """Found by tests/fuzz: an (X, Y, Z, 1) NIfTI kept four voxel sizes for a 3D map, and comparing
    them with the truth's three raised a numpy broadcast ValueError."""
    nib = pytest.importorskip("nibabel")
    from openmia.evaluation.segmentation import evaluate_folders

    for d in ("p", "t"):
        (tmp_path / d).mkdir()
    lab = np.zeros((6, 6, 4), np.uint8)
    lab[1:4, 1:4, 1:3] = 1
    nib.save(nib.Nifti1Image(lab, np.diag([1.0, 1.0, 2.0, 1.0])), str(tmp_path / "t" / "k.nii.gz"))
    img = nib.Nifti1Image(lab[..., None], np.diag([1.0, 1.0, 2.0, 1.0]))
    img.header.set_zooms((1.0, 1.0, 2.0, 3.0))
    nib.save(img, str(tmp_path / "p" / "k.nii.gz"))
    res = evaluate_folders(tmp_path / "p", tmp_path / "t", n_resamples=20)
    assert res.summary["n_cases"] == 1
