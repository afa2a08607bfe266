"""The denoising evaluator (whole image), the inpainting/denoising conventions for exact
predictions (PSNR = inf), and `compare` pairing methods case by case for both tasks."""

from __future__ import annotations

import numpy as np
import pytest

from openmia.errors import PredictionError
from openmia.evaluation.registry import get_evaluator


def _write(folder, arrays):
    folder.mkdir(parents=True, exist_ok=True)
    for k, a in arrays.items():
        np.save(folder / f"{k}.npy", a)
    return folder


def test_denoising_evaluator_hand_computed_and_cross_checked(tmp_path):
    from skimage.metrics import peak_signal_noise_ratio, structural_similarity

    rng = np.random.default_rng(0)
    truth = {f"c{i}": rng.random((16, 16)) for i in range(5)}
    # c0: a constant offset 0.1 -> MSE 0.01 -> PSNR = 10 log10(1 / 0.01) = 20 dB, MAE 0.1
    pred = {"c0": truth["c0"] + 0.1, **{k: np.clip(v + 0.05 * rng.standard_normal(v.shape), 0, 1) for k, v in truth.items() if k != "c0"}}
    res = get_evaluator("denoising")(_write(tmp_path / "p", pred), _write(tmp_path / "t", truth), tmp_path / "out",
                                     data_range=1.0, n_resamples=200)
    per = {(c, m): v for c, _, m, v in res.per_case}
    assert per[("c0", "psnr")] == pytest.approx(20.0)
    assert per[("c0", "mae")] == pytest.approx(0.1)
    for k in truth:  # scikit-image's PSNR and SSIM (independent implementations)
        assert per[(k, "psnr")] == pytest.approx(peak_signal_noise_ratio(truth[k], pred[k], data_range=1.0))
        assert per[(k, "ssim")] == pytest.approx(structural_similarity(truth[k], pred[k], data_range=1.0))
    assert not any(m.endswith("_mask") for _, m in per)  # whole image only
    s = res.summary
    assert s["task"] == "denoising" and s["n_cases"] == 5 and s["data_range"] == 1.0
    row = res.metric("psnr")
    assert row["value"] == pytest.approx(np.mean([per[(k, "psnr")] for k in truth]))
    assert row["ci_low"] <= row["value"] <= row["ci_high"]
    assert (tmp_path / "out" / "per_case.csv").is_file() and (tmp_path / "out" / "summary.json").is_file()


def test_exact_prediction_convention_psnr_inf_excluded_and_counted(tmp_path):
    """Zero error (also a constant image predicted exactly): PSNR = +inf in the per-case table,
    excluded from the mean and CI, counted in n_nan (the stated convention)."""
    truth = {"flat": np.full((8, 8), 0.3), "b": np.linspace(0, 1, 64).reshape(8, 8), "c": np.eye(8)}
    pred = {"flat": np.full((8, 8), 0.3), "b": truth["b"] + 0.1, "c": truth["c"] - 0.01}
    res = get_evaluator("denoising")(_write(tmp_path / "p", pred), _write(tmp_path / "t", truth), None, data_range=1.0,
                                     n_resamples=100)
    per = {(c, m): v for c, _, m, v in res.per_case}
    assert per[("flat", "psnr")] == float("inf")
    assert per[("flat", "ssim")] == pytest.approx(1.0)  # SSIM of a constant image is defined by its constants
    row = res.metric("psnr")
    assert row["n_nan"] == 1
    assert row["value"] == pytest.approx(np.mean([per[("b", "psnr")], per[("c", "psnr")]]))
    assert per[("b", "psnr")] == pytest.approx(20.0) and per[("c", "psnr")] == pytest.approx(40.0)


def test_denoising_evaluator_bad_inputs(tmp_path):
    t = _write(tmp_path / "t", {"a": np.zeros((8, 8))})
    p = _write(tmp_path / "p", {"a": np.zeros((8, 8))})
    ev = get_evaluator("denoising")
    with pytest.raises(PredictionError, match="--data-range"):
        ev(p, t, None)
    with pytest.raises(PredictionError, match="whole image.*--masks applies to --task inpainting"):
        ev(p, t, None, data_range=1.0, mask_dir=t)
    _write(tmp_path / "p2", {"a": np.zeros((8, 9))})
    with pytest.raises(PredictionError, match="case 'a'.*shape"):
        ev(tmp_path / "p2", t, None, data_range=1.0)
    _write(tmp_path / "p3", {"b": np.zeros((8, 8))})
    with pytest.raises(PredictionError, match="have no truth"):
        ev(tmp_path / "p3", t, None, data_range=1.0)


@pytest.mark.parametrize("shape", [(12, 12), (12, 12, 3)], ids=["grey", "colour"])
@pytest.mark.parametrize("task", ["inpainting", "denoising"])
def test_compare_pairs_methods_on_the_same_cases(tmp_path, task, shape):
    from openmia import api

    rng = np.random.default_rng(1)
    n = 12
    truth = {f"k{i:02d}": rng.random(shape) for i in range(n)}
    mask = np.zeros((12, 12), np.uint8)
    mask[3:8, 4:9] = 1
    good = {k: v + 0.02 * rng.standard_normal(v.shape) for k, v in truth.items()}
    bad = {k: v + 0.2 * rng.standard_normal(v.shape) for k, v in truth.items()}
    kw = {"data_range": 1.0}
    if task == "inpainting":
        kw["mask_dir"] = _write(tmp_path / "m", {k: mask for k in truth})
    res = api.compare(task, _write(tmp_path / "t", truth), {"good": _write(tmp_path / "g", good), "bad": _write(tmp_path / "b", bad)},
                      tmp_path / "cmp", metrics=["psnr_mask"] if task == "inpainting" else ["psnr"], n_resamples=200,
                      rank_resamples=50, **kw)
    (row,) = res["comparisons"]
    assert row["test"] == "wilcoxon_signed_rank" and row["diff"] > 10
    # every case better: the exact two-sided Wilcoxon p = 2 / 2^12, Holm over one pair = the same
    assert row["p_value"] == pytest.approx(2 / 2**n) and row["p_holm"] == pytest.approx(row["p_value"])
    assert [r["model"] for r in sorted(res["ranking"], key=lambda r: r["rank"])] == ["good", "bad"]
    assert (tmp_path / "cmp" / "comparisons.csv").is_file()


# ----------------------------------------------------------------------------- colour images


def _colour_pair(rng, shape=(20, 24, 3)):
    truth = rng.random(shape)
    return truth, np.clip(truth + 0.08 * rng.standard_normal(shape), 0, 1)


def test_colour_metrics_hand_computed():
    """PSNR / MAE pool every channel of the scored pixels; the mask is shared by the channels."""
    from openmia.metrics.synthesis import psnr, synthesis_metrics

    truth = np.zeros((10, 12, 3))
    pred = truth.copy()
    mask = np.zeros((10, 12), bool)
    mask[2:6, 3:9] = True  # 24 pixels, 72 values
    pred[..., 0][mask] = 0.3  # only the red channel is wrong, only in the hole
    # in the hole: MSE = 0.09 * 24 / 72 = 0.03 -> PSNR = 10 log10(1 / 0.03); MAE = 0.3 / 3 = 0.1
    m = synthesis_metrics(pred, truth, data_range=1.0, mask=mask, channel_axis=-1)
    assert m["psnr_mask"] == pytest.approx(10 * np.log10(1 / 0.03))
    assert m["mae_mask"] == pytest.approx(0.1)
    # whole image: 24 wrong values of 360 -> MSE = 0.09 / 15 = 0.006, MAE = 0.3 / 15 = 0.02
    assert m["psnr"] == pytest.approx(10 * np.log10(1 / 0.006))
    assert m["mae"] == pytest.approx(0.02)
    # channels first is the same case
    assert psnr(np.moveaxis(pred, -1, 0), np.moveaxis(truth, -1, 0), data_range=1.0, mask=mask,
                channel_axis=0) == pytest.approx(m["psnr_mask"])


def test_colour_ssim_is_the_channel_mean_cross_checked_with_scikit_image():
    from skimage.metrics import peak_signal_noise_ratio, structural_similarity

    from openmia.metrics.synthesis import synthesis_metrics

    rng = np.random.default_rng(3)
    truth, pred = _colour_pair(rng)
    mask = np.zeros(truth.shape[:2], bool)
    mask[5:14, 4:17] = True
    m = synthesis_metrics(pred, truth, data_range=1.0, mask=mask, channel_axis=-1)
    # independent: scikit-image's colour SSIM, and the mean of three single-channel SSIMs
    assert m["ssim"] == pytest.approx(structural_similarity(truth, pred, data_range=1.0, channel_axis=-1))
    per_channel = [structural_similarity(truth[..., c], pred[..., c], data_range=1.0, full=True) for c in range(3)]
    assert m["ssim"] == pytest.approx(np.mean([s for s, _ in per_channel]))
    assert m["ssim_mask"] == pytest.approx(np.mean([smap[mask].mean() for _, smap in per_channel]))
    assert m["psnr"] == pytest.approx(peak_signal_noise_ratio(truth, pred, data_range=1.0))
    assert m["psnr_mask"] == pytest.approx(peak_signal_noise_ratio(truth[mask], pred[mask], data_range=1.0))


def test_evaluators_read_rgb_png_and_channels_last_arrays(tmp_path):
    from PIL import Image
    from skimage.metrics import structural_similarity

    rng = np.random.default_rng(4)
    truth = (rng.random((4, 16, 18, 3)) * 255).astype(np.uint8)
    pred = np.clip(truth + rng.normal(0, 12, truth.shape), 0, 255)
    for d in ("t", "p", "m"):
        (tmp_path / d).mkdir()
    mask = np.zeros((16, 18), np.uint8)
    mask[3:11, 4:12] = 255
    for i in range(4):
        Image.fromarray(truth[i]).save(tmp_path / "t" / f"c{i}.png")  # RGB PNGs are images here
        np.save(tmp_path / "p" / f"c{i}.npy", pred[i])  # (H, W, C) float arrays, channels last
        Image.fromarray(mask).save(tmp_path / "m" / f"c{i}.png")
    res = get_evaluator("inpainting")(tmp_path / "p", tmp_path / "t", None, data_range=255.0, mask_dir=tmp_path / "m",
                                      n_resamples=50)
    per = {(c, m): v for c, _, m, v in res.per_case}
    for i in range(4):
        t, p = truth[i].astype(float), pred[i]
        assert per[(f"c{i}", "ssim")] == pytest.approx(structural_similarity(t, p, data_range=255.0, channel_axis=-1))
        hole = mask > 0
        assert per[(f"c{i}", "mae_mask")] == pytest.approx(np.abs(p - t)[hole].mean())
    assert "channels" in res.summary["conventions"]
    den = get_evaluator("denoising")(tmp_path / "p", tmp_path / "t", None, data_range=255.0, n_resamples=50)
    assert {m for _, _, m, _ in den.per_case} == {"psnr", "ssim", "mae"}


def test_channel_count_mismatch_names_the_case_and_both_shapes(tmp_path):
    rng = np.random.default_rng(5)
    truth = {"a": rng.random((16, 16, 3)), "b": rng.random((16, 16, 3))}
    pred = {"a": truth["a"], "b": truth["b"][..., 0]}  # grey prediction of a colour truth
    with pytest.raises(PredictionError, match=r"case 'b'.*1 channel.*\(16, 16\).*truth has 3.*\(16, 16, 3\)"):
        get_evaluator("denoising")(_write(tmp_path / "p", pred), _write(tmp_path / "t", truth), None, data_range=1.0)
    pred = {"a": truth["a"], "b": np.concatenate([truth["b"], truth["b"][..., :1]], -1)}  # RGBA vs RGB
    with pytest.raises(PredictionError, match=r"case 'b'.*4 channel.*truth has 3"):
        get_evaluator("denoising")(_write(tmp_path / "p2", pred), _write(tmp_path / "t2", truth), None, data_range=1.0)
