"""Classical inpainting and denoising baselines against inputs with known answers."""

from __future__ import annotations

import builtins

import numpy as np
import pytest

from openmia.errors import ConfigError, DataError
from openmia.models import classical_generative as cg


def _have(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


def _ramp2d():
    y, x = np.mgrid[0:24, 0:20]
    return (0.02 * x + 0.03 * y + 0.1).astype(np.float64)


def _hole2d():
    m = np.zeros((24, 20), bool)
    m[8:15, 6:13] = True
    return m


def test_biharmonic_fills_a_linear_ramp_exactly_2d_and_3d():
    img, m = _ramp2d(), _hole2d()
    holed = np.where(m, 0.0, img)
    out = cg.inpaint(holed, m, "biharmonic")
    np.testing.assert_allclose(out, img, atol=1e-4)  # a linear function is biharmonic
    z, y, x = np.mgrid[0:10, 0:12, 0:11]
    vol = 0.05 * z + 0.02 * y - 0.01 * x + 0.5
    mv = np.zeros(vol.shape, bool)
    mv[4:6, 3:9, 3:8] = True  # an interior hole: exact
    np.testing.assert_allclose(cg.inpaint(np.where(mv, 0.0, vol), mv, "biharmonic"), vol, atol=1e-4)
    gap = np.zeros(vol.shape, bool)
    gap[4:6] = True  # two missing slices reaching the borders: scikit-image's discretisation at the
    # image edge is not exact for a ramp; within 0.005 of a 0.76 range
    np.testing.assert_allclose(cg.inpaint(np.where(gap, 0.0, vol), gap, "biharmonic"), vol, atol=5e-3)


def test_known_voxels_are_returned_unchanged():
    rng = np.random.default_rng(0)
    img, m = rng.random((24, 20)), _hole2d()
    for method in ("biharmonic", "mean", "nearest", *(("telea", "ns") if _have("cv2") else ())):
        out = cg.inpaint(img, m, method)
        assert out.shape == img.shape and out.dtype == np.float32
        np.testing.assert_allclose(out[~m], img[~m].astype(np.float32))


def test_mean_and_nearest_hand_computed():
    img = np.array([[1.0, 2.0, 0.0, 4.0],
                    [1.0, 2.0, 0.0, 4.0]])
    m = np.array([[0, 0, 1, 0], [0, 0, 1, 0]], bool)
    np.testing.assert_allclose(cg.inpaint(img, m, "mean")[:, 2], [(1 + 2 + 4) / 3] * 2, rtol=1e-6)
    # nearest: column 2 is 1 px from both column 1 (value 2) and column 3 (value 4); scipy's EDT
    # returns the first in scan order (column 1)
    img2 = np.array([[1.0, 2.0, 0.0, 0.0, 9.0]])
    m2 = np.array([[0, 0, 1, 1, 0]], bool)
    np.testing.assert_allclose(cg.inpaint(img2, m2, "nearest"), [[1, 2, 2, 9, 9]])


def test_opencv_methods_fill_a_ramp_closely_and_refuse_3d():
    pytest.importorskip("cv2", reason="opencv-python-headless (openmia[classical]) is not installed")
    img, m = _ramp2d(), _hole2d()
    for method in ("telea", "ns"):
        out = cg.inpaint(np.where(m, 0.0, img), m, method)
        # a smooth fill, not exact: within a small fraction of the ramp's range (0.93)
        assert np.abs(out - img)[m].max() < 0.1, method
    with pytest.raises(ConfigError, match="2D images only"):
        cg.inpaint(np.zeros((6, 8, 8)), np.pad(np.ones((2, 8, 8), bool), ((2, 2), (0, 0), (0, 0))), "telea")


def test_missing_opencv_is_a_clear_error(monkeypatch):
    real = builtins.__import__

    def fake(name, *a, **k):
        if name == "cv2":
            raise ImportError("no cv2")
        return real(name, *a, **k)

    monkeypatch.setattr(builtins, "__import__", fake)
    with pytest.raises(ConfigError, match="opencv-python-headless"):
        cg.inpainter("telea")


def test_multichannel_inpainting_fills_every_channel():
    img = np.stack([_ramp2d(), 2 * _ramp2d()])
    m = _hole2d()
    out = cg.inpaint(np.where(m, 0.0, img), m, "biharmonic")
    assert out.shape == img.shape
    np.testing.assert_allclose(out, img, atol=1e-4)


def test_inpaint_bad_inputs_name_the_case():
    img = np.ones((8, 8))
    with pytest.raises(DataError, match="case 'a'.*covers nothing"):
        cg.inpaint(img, np.zeros((8, 8)), "mean", case="a")
    with pytest.raises(DataError, match="case 'b'.*whole image"):
        cg.inpaint(img, np.ones((8, 8)), "mean", case="b")
    with pytest.raises(DataError, match="case 'c'.*mask shape"):
        cg.inpaint(img, np.ones((8, 7)), "mean", case="c")
    with pytest.raises(DataError, match="case 'd'.*NaN"):
        cg.inpaint(np.full((8, 8), np.nan), _hole2d()[:8, :8], "mean", case="d")
    with pytest.raises(ConfigError, match="inpainting method"):
        cg.inpaint(img, _hole2d()[:8, :8], "magic")


def test_denoisers_reduce_gaussian_noise_and_keep_shapes():
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:32, 0:32]
    clean = 0.5 + 0.3 * np.sin(x / 5.0) * np.cos(y / 6.0)
    noisy = clean + 0.08 * rng.standard_normal(clean.shape)
    err0 = np.mean((noisy - clean) ** 2)
    for method in ("nlm", "gaussian", *(("bm3d",) if _have("bm3d") else ())):
        out = cg.denoise(noisy, method)
        assert out.shape == clean.shape and out.dtype == np.float32
        assert np.mean((out - clean) ** 2) < 0.5 * err0, method
    # the estimated sigma is close to the true one (skimage's wavelet MAD estimator)
    assert cg.estimate_noise_sigma(noisy[None]) == pytest.approx(0.08, rel=0.2)


def test_nlm_denoises_3d_and_bm3d_refuses_it():
    rng = np.random.default_rng(1)
    clean = np.zeros((12, 16, 16))
    clean[:, 4:12, 4:12] = 1.0
    noisy = clean + 0.1 * rng.standard_normal(clean.shape)
    out = cg.denoise(noisy, "nlm")
    assert out.shape == clean.shape
    assert np.mean((out - clean) ** 2) < np.mean((noisy - clean) ** 2)
    if _have("bm3d"):
        with pytest.raises(ConfigError, match="2D images only"):
            cg.denoise(noisy, "bm3d")


def test_denoise_bad_inputs():
    with pytest.raises(ConfigError, match="denoising method"):
        cg.denoise(np.zeros((8, 8)), "median")
    with pytest.raises(ConfigError, match="sigma"):
        cg.denoise(np.zeros((8, 8)), "nlm", sigma=-1.0)
    with pytest.raises(DataError, match="case 'q'.*NaN"):
        cg.denoise(np.full((8, 8), np.nan), "nlm", case="q")


# ----------------------------------------------------------------------------- colour images


def _colour(seed=0, noise=0.0):
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:32, 0:36] / 36
    img = np.stack([0.2 + 0.6 * x, 0.8 - 0.5 * y, 0.5 + 0.2 * np.sin(6 * x)])  # (3, H, W)
    return img + noise * rng.standard_normal(img.shape)


def test_colour_biharmonic_is_scikit_images_channel_axis_path():
    from skimage.restoration import inpaint_biharmonic

    img = _colour(noise=0.05)
    m = np.zeros(img.shape[1:], bool)
    m[10:20, 8:22] = True
    out = cg.inpaint(np.where(m, 0.0, img), m, "biharmonic")
    ref = inpaint_biharmonic(np.moveaxis(np.where(m, 0.0, img), 0, -1), m, channel_axis=-1)
    np.testing.assert_allclose(out, np.moveaxis(ref, -1, 0), atol=1e-5)
    for c in range(3):  # = each channel on its own (a shared mask, no mixing of channels)
        np.testing.assert_allclose(out[c], inpaint_biharmonic(np.where(m, 0.0, img[c]), m), atol=1e-5)


@pytest.mark.skipif(not _have("cv2"), reason="OpenCV not installed")
@pytest.mark.parametrize("method", ["telea", "ns"])
def test_colour_opencv_matches_its_own_8bit_colour_path_up_to_rounding(method):
    """OpenCV inpaints colour only as 8-bit; openmia inpaints each channel in float32. The two
    agree up to the 8-bit path's rounding (OpenCV treats the 3 channels independently)."""
    import cv2

    img = np.clip(_colour(noise=0.03), 0, 1)
    m = np.zeros(img.shape[1:], bool)
    m[10:20, 8:22] = True
    img8 = np.round(img * 255).astype(np.uint8)
    out = cg.inpaint(img8.astype(float), m, method)  # (3, H, W) in 0-255
    ref = cv2.inpaint(np.ascontiguousarray(np.moveaxis(img8, 0, -1)), m.astype(np.uint8), 3,
                      cv2.INPAINT_TELEA if method == "telea" else cv2.INPAINT_NS)
    d = np.abs(out - np.moveaxis(ref, -1, 0).astype(float))[:, m]
    assert d.mean() < 1.5 and d.max() < 6
    np.testing.assert_array_equal(out[:, ~m], img8[:, ~m].astype(np.float32))


def test_colour_mean_and_nearest_per_channel():
    img = _colour()
    m = np.zeros(img.shape[1:], bool)
    m[0:4, 0:4] = True
    mean = cg.inpaint(img, m, "mean")
    for c in range(3):
        assert np.allclose(mean[c][m], img[c][~m].mean())
    near = cg.inpaint(img, m, "nearest")
    assert np.allclose(near[:, 3, 3], img[:, 3, 4], atol=1e-6) or np.allclose(near[:, 3, 3], img[:, 4, 3], atol=1e-6)


def test_colour_nlm_uses_channel_axis_and_gaussian_stays_within_channels():
    from skimage.restoration import denoise_nl_means

    noisy = _colour(seed=2, noise=0.1)
    out = cg.denoise(noisy, "nlm", sigma=0.1, dims=2)
    ref = denoise_nl_means(np.moveaxis(noisy, 0, -1), h=0.08, sigma=0.1, patch_size=5, patch_distance=6,
                           fast_mode=True, channel_axis=-1)
    np.testing.assert_allclose(out, np.moveaxis(ref, -1, 0), atol=1e-5)
    clean = _colour()
    assert np.mean((out - clean) ** 2) < np.mean((noisy - clean) ** 2) / 2
    # gaussian: a zero channel stays zero next to bright ones (no smoothing across channels)
    img = _colour()
    img[1] = 0.0
    g = cg.denoise(img, "gaussian", dims=2)
    assert g.shape == img.shape and np.all(g[1] == 0) and g[0].std() > 0


@pytest.mark.skipif(not _have("bm3d"), reason="bm3d not installed")
def test_colour_bm3d_rgb_and_channel_count_errors():
    clean = _colour()
    noisy = clean + 0.1 * np.random.default_rng(3).standard_normal(clean.shape)
    out = cg.denoise(noisy, "bm3d", sigma=0.1, dims=2)
    assert out.shape == noisy.shape
    assert np.mean((out - clean) ** 2) < np.mean((noisy - clean) ** 2) / 2
    with pytest.raises(ConfigError, match="1 or 3 channels.*found 2"):
        cg.denoise(noisy[:2], "bm3d", sigma=0.1, dims=2)


def test_colour_bm3d_without_bm3d_rgb_is_a_clear_error(monkeypatch):
    import sys
    import types

    monkeypatch.setitem(sys.modules, "bm3d", types.SimpleNamespace(bm3d=lambda x, sigma_psd: x))
    with pytest.raises(ConfigError, match="no bm3d_rgb"):
        cg.denoise(_colour(), "bm3d", sigma=0.1, dims=2)
