"""The generative tasks end to end on tiny synthetic runs: inpainting, denoising and reconstruction
(AE/VAE, 2D and 3D) train, save their seeded corruptions, score through the evaluators, and the
`openmia inpaint/denoise` path reproduces a run's predictions; bad configurations and inputs."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from openmia import api
from openmia.errors import ConfigError, DataError
from openmia.tasks.generative import GenerativeTask

TINY = ["train.epochs=1", "model.kwargs.width=4", "model.kwargs.depth=2", "data.batch_size=8", "eval.n_resamples=50",
        "train.threads=1"]


def _subset(s, n):
    return dataclasses.replace(s, images=s.images[:n], labels=s.labels[:n], case_ids=list(s.case_ids[:n]),
                               regions=None if s.regions is None else list(s.regions[:n]))


@pytest.fixture(scope="module")
def small_splits():
    """Patch the generative tasks to use 16 / 6 / 6 cases of each split (fast runs)."""
    mp = pytest.MonkeyPatch()
    orig = GenerativeTask.load_splits.__func__

    def small(cls, cfg):
        splits = orig(cls, cfg)
        return {k: _subset(v, 16 if k == "train" else 6) for k, v in splits.items()}

    mp.setattr(GenerativeTask, "load_splits", classmethod(small))
    yield
    mp.undo()


@pytest.fixture(scope="module")
def inpaint_run(small_splits, tmp_path_factory):
    rd = tmp_path_factory.mktemp("gen") / "inpaint"
    api.train(None, ["task=inpainting", "inpainting.mask=boxes", *TINY], run_dir=rd, progress=False, index=False)
    return rd


def test_inpainting_run_saves_corruptions_and_scores_inside_the_mask(inpaint_run):
    rd = inpaint_run
    res = json.loads((rd / "result.json").read_text())
    assert res["select_metric"] == "psnr_mask"
    summary = json.loads((rd / "eval" / "test" / "summary.json").read_text())
    names = {m["metric"] for m in summary["metrics"]}
    assert {"psnr_mask", "ssim_mask", "mae_mask", "psnr", "ssim"} <= names
    assert summary["data_range"] == 1.0 and summary["corruption"]["mask"] == "boxes"
    masks = sorted((rd / "masks" / "test").glob("*.npy"))
    assert len(masks) == 6
    for f in masks:
        m = np.load(f)
        assert m.shape == (64, 64) and 0.05 <= m.mean() <= 0.25
        inp, pred = np.load(rd / "inputs" / "test" / f.name), np.load(rd / "predictions" / "test" / f.name)
        truth = np.load(rd / "truth" / "test" / f.name)
        assert (inp[m > 0] == 0).all()  # the holes were removed from what the model saw
        np.testing.assert_array_equal(pred[m == 0], truth[m == 0])  # known pixels copied back
    assert (rd / "eval" / "test" / "examples.png").is_file()
    assert (rd / "eval" / "test" / "report.txt").read_text().startswith("metric")


def test_saved_masks_are_reproduced_from_the_seed(inpaint_run):
    """The fixed test masks depend on (corruption_seed, split, case index) only."""
    from openmia.config import load_run_config
    from openmia.data.catalog import load_split
    from openmia.tasks.inpainting import InpaintingTask
    from openmia.tasks.generative import case_name

    cfg = load_run_config(inpaint_run / "config.yaml")
    s = _subset(load_split("synthetic/seg2d", "test"), 6)
    task = InpaintingTask(cfg, s.spec, {"test": s})
    _, masks = task.fixed_corruptions("test")
    for i, cid in enumerate(s.case_ids):
        np.testing.assert_array_equal(masks[i], np.load(inpaint_run / "masks" / "test" / f"{case_name(cid)}.npy") > 0)


def test_inpaint_command_reproduces_the_run_and_runs_baselines(inpaint_run, tmp_path):
    rd = inpaint_run
    inp, msk = rd / "inputs" / "test", rd / "masks" / "test"
    r = api.inpaint(inp, msk, tmp_path / "net", run_dir=rd, scale="unit")
    assert r["cases"] == 6
    for f in (rd / "predictions" / "test").glob("*.npy"):
        np.testing.assert_allclose(np.load(tmp_path / "net" / f.name), np.load(f), atol=1e-5)
    r = api.inpaint(inp, msk, tmp_path / "bih", method="biharmonic")
    rec = json.loads((tmp_path / "bih" / "restore.json").read_text())
    assert rec["method"] == "biharmonic" and len(rec["seconds_per_case"]) == 6
    ev = api.evaluate("inpainting", tmp_path / "bih", rd / "truth" / "test", None, data_range=1.0, mask_dir=msk,
                      n_resamples=50)
    assert ev.metric("psnr_mask")["value"] > 10
    # the CLI: same numbers, a clear error for the wrong kind of run
    from openmia.cli.main import main

    assert main(["-q", "inpaint", "--method", "nearest", "--input", str(inp), "--mask", str(msk), "--out", str(tmp_path / "nn")]) == 0
    assert len(list((tmp_path / "nn").glob("*.npy"))) == 6
    with pytest.raises(ConfigError, match="inpainting run.*cannot be used for denoising"):
        api.denoise(inp, tmp_path / "x", run_dir=rd)


def test_grey_run_takes_greyscale_saved_as_rgb_and_refuses_colour(inpaint_run, tmp_path):
    """BUSI-like files (grey saved as RGB, three equal channels) go to a grey run as one channel;
    a real colour photograph is refused, naming the case."""
    from PIL import Image

    rd = inpaint_run
    f = sorted((rd / "masks" / "test").glob("*.npy"))[0]
    grey = np.round(np.load(rd / "truth" / "test" / f.name) * 255).astype(np.uint8)
    m = np.load(f)
    for d in ("rgb", "grey", "colour", "m"):
        (tmp_path / d).mkdir()
    Image.fromarray(np.stack([grey] * 3, -1)).save(tmp_path / "rgb" / "c.png")
    Image.fromarray(grey).save(tmp_path / "grey" / "c.png")
    Image.fromarray(np.stack([grey, grey // 2, grey], -1)).save(tmp_path / "colour" / "c.png")
    Image.fromarray(m * 255).save(tmp_path / "m" / "c.png")
    for d in ("rgb", "grey"):
        api.inpaint(tmp_path / d, tmp_path / "m", tmp_path / f"out_{d}", run_dir=rd, scale="uint8")
    out = np.load(tmp_path / "out_rgb" / "c.npy")
    assert out.shape == grey.shape
    np.testing.assert_array_equal(out, np.load(tmp_path / "out_grey" / "c.npy"))
    with pytest.raises(DataError, match="case 'c'.*trained on 1-channel images, found 3"):
        api.inpaint(tmp_path / "colour", tmp_path / "m", tmp_path / "out_colour", run_dir=rd, scale="uint8")


def test_restore_folder_bad_inputs(inpaint_run, tmp_path):
    rd = inpaint_run
    inp, msk = rd / "inputs" / "test", rd / "masks" / "test"
    with pytest.raises(ConfigError, match="exactly one of --model"):
        api.inpaint(inp, msk, tmp_path / "a")
    with pytest.raises(ConfigError, match="exactly one of --model"):
        api.inpaint(inp, msk, tmp_path / "a", run_dir=rd, method="mean")
    some = tmp_path / "some_masks"
    some.mkdir()
    first = sorted(msk.glob("*.npy"))[0]
    (some / first.name).write_bytes(first.read_bytes())
    with pytest.raises(DataError, match="no mask for input case"):
        api.inpaint(inp, some, tmp_path / "b", method="mean")
    bad = tmp_path / "bad_masks"
    bad.mkdir()
    for f in msk.glob("*.npy"):
        np.save(bad / f.name, np.zeros((64, 64), np.uint8))
    with pytest.raises(DataError, match="covers nothing"):
        api.inpaint(inp, bad, tmp_path / "c", method="mean")
    with pytest.raises(ConfigError, match="--scale"):
        api.inpaint(inp, msk, tmp_path / "d", run_dir=rd, scale="weird")


def test_denoising_run_and_command(small_splits, tmp_path):
    rd = tmp_path / "den"
    api.train(None, ["task=denoising", "denoising.sigma=0.1", *TINY], run_dir=rd, progress=False, index=False)
    summary = json.loads((rd / "eval" / "test" / "summary.json").read_text())
    assert summary["task"] == "denoising" and {m["metric"] for m in summary["metrics"]} == {"psnr", "ssim", "mae"}
    # the saved noisy input is ~20 dB from the truth (sigma 0.1); the untrained residual net starts there
    noisy = api.evaluate("denoising", rd / "inputs" / "test", rd / "truth" / "test", None, data_range=1.0, n_resamples=50)
    assert 19 < noisy.metric("psnr")["value"] < 21
    r = api.denoise(rd / "inputs" / "test", tmp_path / "net", run_dir=rd, scale="unit")
    for f in (rd / "predictions" / "test").glob("*.npy"):
        np.testing.assert_allclose(np.load(tmp_path / "net" / f.name), np.load(f), atol=1e-5)
    r = api.denoise(rd / "inputs" / "test", tmp_path / "nlm", method="nlm")
    assert r["cases"] == 6
    nlm = api.evaluate("denoising", tmp_path / "nlm", rd / "truth" / "test", None, data_range=1.0, n_resamples=50)
    assert nlm.metric("psnr")["value"] > noisy.metric("psnr")["value"]


@pytest.mark.parametrize("model,dataset", [("conv_vae", "synthetic/seg3d")])  # conv_ae: the same path, 2D (model tests)
def test_reconstruction_runs_and_embeds(small_splits, tmp_path, model, dataset):
    import torch

    from openmia.engine.predict import load_run

    rd = tmp_path / model
    api.train(None, ["task=reconstruction", f"model.name={model}", f"data.dataset={dataset}", *TINY],
              run_dir=rd, progress=False, index=False)
    summary = json.loads((rd / "eval" / "test" / "summary.json").read_text())
    assert summary["task"] == "reconstruction"
    assert (rd / "eval" / "test" / "examples.png").is_file()
    run = load_run(rd)
    x = np.load(next((rd / "truth" / "test").glob("*.npy")))[None, None]
    batch = run.task.float_batch(np.concatenate([x, x]) * 255)  # the images' own uint8 scale
    with torch.no_grad():
        z = run.task.embed(run.model, batch)
    assert z.shape == (2, 32 if model == "conv_ae" else 16)
    torch.testing.assert_close(z[0], z[1])
    assert "bottleneck" in run.task.embedding_source(run.model)


def test_bad_configurations():
    from openmia.config import load_config
    from openmia.data.catalog import get_spec
    from openmia.tasks.inpainting import InpaintingTask

    with pytest.raises(ConfigError, match="inpainting.mask"):
        load_config(None, ["task=inpainting", "inpainting.mask=circles"])
    with pytest.raises(ConfigError, match="inpainting.hole_range"):
        load_config(None, ["task=inpainting", "inpainting.hole_range=[0.3, 0.1]"])
    with pytest.raises(ConfigError, match="denoising.sigma"):
        load_config(None, ["task=denoising", "denoising.sigma=0"])
    with pytest.raises(ConfigError, match="reconstruction.noise"):
        load_config(None, ["task=reconstruction", "reconstruction.noise=salt"])
    InpaintingTask._check_spec(get_spec("kvasir_seg"), "kvasir_seg")  # colour sets run (no error)
    from openmia.tasks.denoising import DenoisingTask

    rician = load_config(None, ["task=denoising", "denoising.noise=rician"]).options
    with pytest.raises(ConfigError, match="kvasir_seg.*3 channels.*rician.*single-channel"):
        DenoisingTask._check_spec(get_spec("kvasir_seg"), "kvasir_seg", rician)
    cfg = load_config(None, ["task=inpainting", "model.name=conv_ae"])
    task = InpaintingTask(cfg, get_spec("synthetic/seg2d"), None)
    with pytest.raises(ConfigError, match="reconstruction model"):
        task.model_kwargs()


def test_restore_image_scales_round_trip():
    """An untrained denoise_unet is the identity, so restore_image must give the image back in its
    own unit under every scale rule; an untrained gated_unet keeps the known voxels exactly."""
    from openmia.config import load_config
    from openmia.data.catalog import get_spec
    from openmia.models import build_model
    from openmia.tasks.denoising import DenoisingTask
    from openmia.tasks.inpainting import InpaintingTask

    rng = np.random.default_rng(0)
    img = (rng.random((10, 12, 9)) * 800 - 100).astype(np.float32)  # MRI-like float intensities
    spec3 = get_spec("hippocampus")  # float normalisation, 3D
    task = DenoisingTask(load_config(None, ["task=denoising"]), spec3, None)
    net = build_model("denoise_unet", in_channels=1, num_classes=1, dims=3, input_size=16, width=4, depth=2)
    for scale in ("auto", "minmax"):
        np.testing.assert_allclose(task.restore_image(net, img, None, scale), img, rtol=1e-5, atol=1e-3)
    u8 = rng.integers(0, 256, (16, 16)).astype(np.float32)
    t2 = DenoisingTask(load_config(None, ["task=denoising"]), get_spec("synthetic/seg2d"), None)
    net2 = build_model("denoise_unet", in_channels=1, num_classes=1, dims=2, input_size=16, width=4, depth=2)
    np.testing.assert_allclose(t2.restore_image(net2, u8, None, "auto"), u8, atol=1e-3)  # uint8 run: /255 and back
    ip = InpaintingTask(load_config(None, ["task=inpainting"]), get_spec("synthetic/seg2d"), None)
    g = build_model("gated_unet", in_channels=1, num_classes=1, dims=2, input_size=16, width=4, depth=2)
    mask = np.zeros((16, 16), bool)
    mask[5:9, 4:12] = True
    out = ip.restore_image(g, u8, mask)
    np.testing.assert_allclose(out[~mask], u8[~mask], atol=1e-3)
    assert np.isfinite(out).all() and out[mask].min() >= 0 and out[mask].max() <= 255
    with pytest.raises(ConfigError, match="needs a mask"):
        ip.restore_image(g, u8, None)
