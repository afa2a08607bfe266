"""Colour images in the generative tasks end to end: a tiny ``folder:`` set of RGB PNGs trains
inpainting, denoising and reconstruction for one epoch; the saved files keep the channels (last
axis), masks are shared by the channels, noise is drawn per channel, the evaluator scores all
channels; `openmia inpaint --method biharmonic` runs on RGB PNG inputs; Rician noise is refused."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from openmia import api
from openmia.errors import ConfigError

TINY = ["train.epochs=1", "model.kwargs.width=4", "model.kwargs.depth=2", "data.batch_size=8", "eval.n_resamples=50",
        "train.threads=1", "data.size=32"]


def _colour_image(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """A smooth colour image: a different gradient per channel plus a disc of another colour."""
    yy, xx = np.mgrid[:h, :w] / max(h, w)
    img = np.stack([0.2 + 0.6 * xx, 0.8 - 0.5 * yy, 0.3 + 0.3 * (xx + yy) / 2], -1)
    cy, cx, r = rng.uniform(0.3, 0.7) * h, rng.uniform(0.3, 0.7) * w, rng.uniform(0.15, 0.3) * min(h, w)
    disc = (np.mgrid[:h, :w][0] - cy) ** 2 + (np.mgrid[:h, :w][1] - cx) ** 2 < r**2
    img[disc] = rng.uniform(0, 1, 3)
    return (np.clip(img, 0, 1) * 255).astype(np.uint8)


@pytest.fixture(scope="module")
def colour_set(tmp_path_factory):
    """``folder:`` classification layout (class sub-folders) of 28 RGB PNGs, 30-40 px."""
    root = tmp_path_factory.mktemp("colour") / "photos"
    rng = np.random.default_rng(0)
    for cls in ("a", "b"):
        (root / cls).mkdir(parents=True)
        for i in range(14):
            h, w = int(rng.integers(30, 41)), int(rng.integers(30, 41))
            Image.fromarray(_colour_image(rng, h, w)).save(root / cls / f"img_{i:02d}.png")
    return f"folder:{root}"


@pytest.fixture(scope="module")
def colour_inpaint_run(colour_set, tmp_path_factory):
    rd = tmp_path_factory.mktemp("runs") / "inpaint"
    api.train(None, ["task=inpainting", f"data.dataset={colour_set}", "inpainting.mask=boxes", *TINY],
              run_dir=rd, progress=False, index=False)
    return rd


def test_colour_inpainting_saves_channels_last_and_scores_every_channel(colour_inpaint_run, tmp_path):
    rd = colour_inpaint_run
    summary = json.loads((rd / "eval" / "test" / "summary.json").read_text())
    assert {"psnr_mask", "ssim_mask", "mae_mask"} <= {m["metric"] for m in summary["metrics"]}
    masks = sorted((rd / "masks" / "test").glob("*.npy"))
    assert masks
    for f in masks:
        m = np.load(f) > 0
        inp, pred, truth = (np.load(rd / d / "test" / f.name) for d in ("inputs", "predictions", "truth"))
        assert m.shape == (32, 32) and inp.shape == pred.shape == truth.shape == (32, 32, 3)
        assert (inp[m] == 0).all()  # a hole is a hole in every channel
        np.testing.assert_array_equal(pred[~m], truth[~m])  # known pixels copied back, all channels
        assert truth.std(axis=(0, 1)).min() > 0 and not np.allclose(truth[..., 0], truth[..., 1])  # real colour
    # the evaluator re-scores the saved files to the same numbers
    ev = api.evaluate("inpainting", rd / "predictions" / "test", rd / "truth" / "test", None, data_range=1.0,
                      mask_dir=rd / "masks" / "test", n_resamples=50)
    saved = {m["metric"]: m["value"] for m in summary["metrics"]}
    assert ev.metric("psnr_mask")["value"] == pytest.approx(saved["psnr_mask"])
    assert ev.metric("ssim_mask")["value"] == pytest.approx(saved["ssim_mask"])
    # `openmia inpaint --model RUN` on the run's own (channels-last) inputs reproduces its predictions
    api.inpaint(rd / "inputs" / "test", rd / "masks" / "test", tmp_path / "net", run_dir=rd, scale="unit")
    for f in masks:
        np.testing.assert_allclose(np.load(tmp_path / "net" / f.name), np.load(rd / "predictions" / "test" / f.name),
                                   atol=1e-5)
    # classical methods on the same holes, same layout
    for method in ("biharmonic", "mean", "nearest"):
        api.inpaint(rd / "inputs" / "test", rd / "masks" / "test", tmp_path / method, method=method)
        assert np.load(tmp_path / method / masks[0].name).shape == (32, 32, 3)
    bih = api.evaluate("inpainting", tmp_path / "biharmonic", rd / "truth" / "test", None, data_range=1.0,
                       mask_dir=rd / "masks" / "test", n_resamples=50)
    assert bih.metric("psnr_mask")["value"] > 15  # smooth colour images: biharmonic fills them well
    assert (rd / "eval" / "test" / "examples.png").is_file()


def test_colour_denoising_noise_per_channel_and_rician_refused(colour_set, tmp_path):
    rd = tmp_path / "den"
    api.train(None, ["task=denoising", f"data.dataset={colour_set}", "denoising.sigma=0.1", *TINY],
              run_dir=rd, progress=False, index=False)
    summary = json.loads((rd / "eval" / "test" / "summary.json").read_text())
    assert {m["metric"] for m in summary["metrics"]} == {"psnr", "ssim", "mae"}
    f = next((rd / "inputs" / "test").glob("*.npy"))
    noise = np.load(f) - np.load(rd / "truth" / "test" / f.name)
    assert noise.shape == (32, 32, 3)
    assert 0.08 < noise.std() < 0.12
    assert abs(np.corrcoef(noise[..., 0].ravel(), noise[..., 1].ravel())[0, 1]) < 0.15  # independent channels
    # the noisy input scores ~20 dB over all channels (sigma 0.1); NLM (colour patches) does better
    noisy = api.evaluate("denoising", rd / "inputs" / "test", rd / "truth" / "test", None, data_range=1.0,
                         n_resamples=50)
    assert 19 < noisy.metric("psnr")["value"] < 21
    api.denoise(rd / "inputs" / "test", tmp_path / "nlm", method="nlm")
    assert np.load(tmp_path / "nlm" / f.name).shape == (32, 32, 3)
    nlm = api.evaluate("denoising", tmp_path / "nlm", rd / "truth" / "test", None, data_range=1.0, n_resamples=50)
    assert nlm.metric("psnr")["value"] > noisy.metric("psnr")["value"]
    api.denoise(rd / "inputs" / "test", tmp_path / "net", run_dir=rd, scale="unit")
    np.testing.assert_allclose(np.load(tmp_path / "net" / f.name), np.load(rd / "predictions" / "test" / f.name),
                               atol=1e-5)
    with pytest.raises(ConfigError, match="3 channels.*rician.*single-channel"):
        api.train(None, ["task=denoising", f"data.dataset={colour_set}", "denoising.noise=rician", *TINY],
                  run_dir=tmp_path / "ric", progress=False, index=False)


def test_colour_reconstruction_runs_and_embeds(colour_set, tmp_path):
    import torch

    from openmia.engine.predict import load_run

    rd = tmp_path / "ae"
    api.train(None, ["task=reconstruction", f"data.dataset={colour_set}", *TINY], run_dir=rd, progress=False,
              index=False)
    summary = json.loads((rd / "eval" / "test" / "summary.json").read_text())
    assert summary["task"] == "reconstruction" and summary["metrics"]
    f = next((rd / "predictions" / "test").glob("*.npy"))
    assert np.load(f).shape == (32, 32, 3)
    run = load_run(rd)
    x = np.moveaxis(np.load(rd / "truth" / "test" / f.name), -1, 0)[None] * 255  # (1, 3, H, W), uint8 scale
    with torch.no_grad():
        z = run.task.embed(run.model, run.task.float_batch(x))
    assert z.shape[0] == 1 and torch.isfinite(z).all()
    # `openmia embed --model RUN` on the colour test split (the clustering benchmark's path)
    r = api.embed(tmp_path / "emb", run_dir=rd, split="test")
    emb = np.load(tmp_path / "emb" / "embeddings.npy")
    assert emb.shape == (r["cases"], z.shape[1]) and np.isfinite(emb).all()


def test_inpaint_command_on_rgb_png_inputs(tmp_path):
    """`openmia inpaint --method biharmonic` on RGB PNG photographs and PNG masks: float (H, W, 3)
    outputs in the 0-255 unit, known pixels unchanged, scored against the RGB PNG truth."""
    from openmia.cli.main import main

    rng = np.random.default_rng(1)
    for d in ("in", "mask", "truth"):
        (tmp_path / d).mkdir()
    truths = {}
    for i in range(3):
        img = _colour_image(rng, 28, 34)
        m = np.zeros((28, 34), np.uint8)
        m[6 + i : 15 + i, 8:20] = 255
        Image.fromarray(np.where(m[..., None] > 0, 0, img).astype(np.uint8)).save(tmp_path / "in" / f"p{i}.png")
        Image.fromarray(m).save(tmp_path / "mask" / f"p{i}.png")
        Image.fromarray(img).save(tmp_path / "truth" / f"p{i}.png")
        truths[f"p{i}"] = (img, m > 0)
    out = tmp_path / "out"
    assert main(["-q", "inpaint", "--method", "biharmonic", "--input", str(tmp_path / "in"), "--mask",
                 str(tmp_path / "mask"), "--out", str(out)]) == 0
    for cid, (img, m) in truths.items():
        pred = np.load(out / f"{cid}.npy")
        assert pred.shape == (28, 34, 3) and pred.dtype == np.float32
        np.testing.assert_array_equal(pred[~m], img[~m].astype(np.float32))
        assert np.abs(pred[m] - img[m]).mean() < 40  # filled from the surroundings, per channel
    ev = api.evaluate("inpainting", out, tmp_path / "truth", None, data_range=255.0, mask_dir=tmp_path / "mask",
                      n_resamples=50)
    assert ev.metric("psnr_mask")["value"] > 15
