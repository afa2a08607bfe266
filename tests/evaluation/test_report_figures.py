"""Report figures: worst-case overlays in segmentation reports, the forest plot in compare outputs."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from openmia.errors import PredictionError
from openmia.evaluation.overlays import FolderImageLoader, largest_error_slice, worst_case_order
from openmia.evaluation.segmentation import evaluate_folders, evaluate_segmentation

PNG = b"\x89PNG"


# ----------------------------------------------------------------------------- worst-case overlays


def test_worst_case_order_lowest_dice_first_ties_by_case_id_nan_left_out():
    cases = ["d", "b", "a", "c", "e"]
    dice = [0.5, 0.2, 0.5, float("nan"), 0.9]
    assert worst_case_order(cases, dice, 3) == [1, 2, 0]  # b (0.2), then the tie a/d by id, NaN (c) never
    assert worst_case_order(cases, dice, 10) == [1, 2, 0, 4]
    assert worst_case_order(cases, dice, 0) == []


def test_largest_error_slice_hand_constructed():
    truth = np.zeros((6, 8, 8), np.uint8)
    truth[1:5, 2:6, 2:6] = 1
    pred = truth.copy()
    pred[1, 2:4, 2:6] = 0  # slice 1: 8 voxels missed
    pred[3, 0:8, 0:2] = 1  # slice 3: 16 voxels over-segmented -> the largest error
    pred[4, 6, 6] = 2  # slice 4: 1 voxel of a wrong label
    assert largest_error_slice(pred, truth) == (3, 16)
    pred[1, 4:6, 2:6] = 0  # slice 1 now 16 too: the tie goes to the first slice
    assert largest_error_slice(pred, truth) == (1, 16)
    assert largest_error_slice(pred[3], truth[3]) == (None, 16)  # 2D: the whole case


def _cases() -> dict[str, tuple[np.ndarray, np.ndarray, tuple[float, ...]]]:
    """Four 3D cases with known Dice order; case 'w' is the worst, its error on slice 5."""
    out = {}
    for name, cut in (("good", 0), ("w", 3), ("mid", 1), ("bad", 2)):
        t = np.zeros((8, 10, 10), np.uint8)
        t[1:7, 2:8, 2:8] = 1
        p = t.copy()
        p[5, 2:8, 2 : 2 + 2 * cut] = 0  # errors confined to slice 5, growing with `cut`
        p[2, 2:8, 2 : 2 + cut] = 0  # a smaller error on slice 2
        out[name] = (p, t, (2.0, 1.0, 0.5))
    return out


def test_worst_case_slices_pick_the_lowest_dice_cases_and_their_worst_slice():
    data = _cases()
    res = evaluate_segmentation(list(data), data.__getitem__, n_resamples=50, worst_cases=2)
    dice = {c: res.extras["table"][("dice", "all")][i] for i, c in enumerate(res.extras["cases"])}
    w = res.extras["worst_cases"]
    assert [e["case"] for e in w] == ["w", "bad"] and dice["w"] < dice["bad"] < dice["mid"] < dice["good"]
    assert [e["rank"] for e in w] == [1, 2] and w[0]["dice"] == pytest.approx(dice["w"])
    assert w[0]["slice"] == 5 and w[0]["n_disagree"] == 6 * 6  # 3 x 2 columns x 6 rows
    np.testing.assert_array_equal(w[0]["truth"], data["w"][1][5])
    np.testing.assert_array_equal(w[0]["pred"], data["w"][0][5])
    assert w[0]["image"] is None and w[0]["spacing"] == (1.0, 0.5) and w[0]["shape"] == (8, 10, 10)


def test_report_embeds_overlays_and_writes_pngs(tmp_path):
    data = _cases()
    res = evaluate_segmentation(list(data), data.__getitem__, n_resamples=50)
    from openmia.evaluation.result import write_outputs

    write_outputs(res, tmp_path / "out")
    pngs = sorted(p.name for p in (tmp_path / "out" / "worst_cases").iterdir())
    assert pngs == ["worst_1_w.png", "worst_2_bad.png", "worst_3_mid.png"]
    for name in pngs:
        assert (tmp_path / "out" / "worst_cases" / name).read_bytes()[:4] == PNG
    html = (tmp_path / "out" / "report.html").read_text()
    assert "<h2>Worst cases</h2>" in html and "#1 w (Dice" in html and html.count("data:image/png;base64,") >= 3 + 4


def _nifti_folders(tmp_path: Path, images: bool = True):
    nib = pytest.importorskip("nibabel")
    pd, td, idir = tmp_path / "pred", tmp_path / "truth", tmp_path / "images"
    for d in (pd, td, idir):
        d.mkdir()
    rng = np.random.default_rng(0)
    for name, (p, t, sp) in _cases().items():
        aff = np.diag([*sp, 1.0])
        nib.save(nib.Nifti1Image(p, aff), str(pd / f"{name}.nii.gz"))
        nib.save(nib.Nifti1Image(t, aff), str(td / f"{name}.nii.gz"))
        if images:
            nib.save(nib.Nifti1Image(rng.normal(size=t.shape).astype(np.float32) + 3 * t, aff), str(idir / f"{name}.nii.gz"))
    return pd, td, idir


def test_cli_images_folder_is_the_overlay_background(tmp_path):
    from openmia.cli.main import main

    pd, td, idir = _nifti_folders(tmp_path)
    out = tmp_path / "out"
    assert main(["evaluate", "--task", "segmentation", "--pred", str(pd), "--truth", str(td), "--out", str(out),
                 "--images", str(idir), "--resamples", "50", "--worst-cases", "1"]) == 0
    assert [p.name for p in (out / "worst_cases").iterdir()] == ["worst_1_w.png"]
    res = evaluate_folders(pd, td, images_dir=idir, n_resamples=50, worst_cases=1)
    import nibabel as nib

    image = np.asarray(nib.load(str(idir / "w.nii.gz")).dataobj)
    np.testing.assert_array_equal(res.extras["worst_cases"][0]["image"], image[5])


def test_images_folder_errors_name_the_case(tmp_path):
    pd, td, idir = _nifti_folders(tmp_path)
    (idir / "mid.nii.gz").unlink()
    with pytest.raises(PredictionError, match=r"--images .*no image for case\(s\) mid"):
        evaluate_folders(pd, td, images_dir=idir, n_resamples=20)
    np.save(idir / "mid.npy", np.zeros((3, 3)))
    with pytest.raises(PredictionError, match=r"case 'mid': image of shape \(3, 3\) does not match its truth of shape \(8, 10, 10\)"):
        evaluate_folders(pd, td, images_dir=idir, n_resamples=20, worst_cases=4)
    assert FolderImageLoader(idir)("mid").shape == (3, 3)


def test_2d_case_with_rgb_image_and_no_overlays_when_disabled():
    t = np.zeros((20, 24), np.uint8)
    t[5:15, 6:18] = 1
    p = np.roll(t, 2, axis=1)
    rgb = np.stack([t * 200, t * 100, t * 50], axis=-1).astype(np.uint8)
    res = evaluate_segmentation(["x"], lambda c: (p, t, (1.0, 1.0)), n_resamples=20, load_image=lambda c: rgb)
    (e,) = res.extras["worst_cases"]
    assert e["slice"] is None and e["n_disagree"] == int((p != t).sum())
    np.testing.assert_allclose(e["image"], rgb.mean(axis=-1))
    res0 = evaluate_segmentation(["x"], lambda c: (p, t, (1.0, 1.0)), n_resamples=20, worst_cases=0)
    assert "worst_cases" not in res0.extras


# ----------------------------------------------------------------------------- forest plot


def test_forest_plot_draws_the_comparison_table(tmp_path):
    from openmia.evaluation.compare import pairwise_comparisons
    from openmia.evaluation.forest_plot import forest_plot
    from openmia.evaluation.model_predictions import ModelPredictions

    rng = np.random.default_rng(1)
    base = rng.uniform(0.6, 0.9, 40)
    models = [ModelPredictions(n, {("dice", "all"): np.clip(base + d + rng.normal(0, 0.03, 40), 0, 1),
                                   ("hd95", "all"): 5 - 10 * d + rng.normal(0, 0.5, 40)})
              for n, d in (("a", 0.0), ("b", 0.05), ("c", -0.02))]
    rows = pairwise_comparisons(models, metrics=[("dice", "all"), ("hd95", "all")], n_resamples=200)
    out = forest_plot(rows, tmp_path / "f.png", higher_is_better={"dice": True, "hd95": False})
    assert out["path"].read_bytes()[:4] == PNG
    panels = out["panels"]
    assert [(p["metric"], p["label"]) for p in panels] == [("dice", "all"), ("hd95", "all")]
    for p in panels:
        mine = [r for r in rows if r["metric"] == p["metric"]]
        assert p["pairs"] == [f"{r['model_a']} - {r['model_b']}" for r in mine] == ["a - b", "a - c", "b - c"]
        assert p["drawn_x"] == [r["diff"] for r in mine] == p["x"]  # the markers sit at the table's differences
        assert p["ci_low"] == [r["ci_low"] for r in mine] and p["p_holm"] == [r["p_holm"] for r in mine]
    with pytest.raises(PredictionError, match="no rows"):
        forest_plot([], tmp_path / "g.png")


def test_compare_writes_the_forest_plot_from_comparisons_csv(tmp_path):
    from openmia import api
    from openmia.evaluation.forest_plot import forest_panels

    pd, td, _ = _nifti_folders(tmp_path, images=False)
    res = api.compare("segmentation", td, {"model": pd, "truth": td}, tmp_path / "cmp", n_resamples=50, rank_resamples=20,
                      metrics=["dice", "hd95"])
    assert res["files"]["forest_plot"].read_bytes()[:4] == PNG
    with open(tmp_path / "cmp" / "comparisons.csv") as f:
        table = list(csv.DictReader(f))
    panels = forest_panels(res["comparisons"])
    assert [p["x"][0] for p in panels] == [float(r["diff"]) for r in table]
