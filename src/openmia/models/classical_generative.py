"""Classical inpainting and denoising baselines (no training), 2D and (where the method allows) 3D.

Inpainting (``image`` ``(*spatial)`` or ``(C, *spatial)``, ``mask`` ``(*spatial)`` bool, True = hole):

- ``biharmonic``  scikit-image ``restoration.inpaint_biharmonic`` (2D and 3D; colour with
  ``channel_axis=-1``): the hole is the solution of the biharmonic equation with the known voxels
  as boundary values (Damelin & Hoang 2018); reproduces any linear ramp exactly.
- ``telea``       OpenCV ``cv2.inpaint(..., INPAINT_TELEA)``, fast marching (Telea 2004), 2D only;
- ``ns``          OpenCV ``cv2.inpaint(..., INPAINT_NS)``, Navier-Stokes (Bertalmio et al. 2001), 2D
  only. Both need ``opencv-python-headless`` (``pip install openmia[classical]``); radius 3 px.
  OpenCV takes float32 images with 1 channel only (3 channels must be 8-bit), and it fills the 3
  channels of an 8-bit image independently (the fill order depends on the mask alone; checked:
  identical to inpainting each 8-bit channel alone). So every channel is inpainted on its own as
  float32, after mapping its known voxels' range to [0, 255] (OpenCV's float path assumes that
  scale), then mapped back: no 8-bit quantisation. It differs from OpenCV's 8-bit colour path
  only by that path's rounding (a few grey levels in the hole, as rounded filled pixels feed
  the next ones).
- ``mean``        every hole voxel = the mean of the known voxels (per channel);
- ``nearest``     every hole voxel = the value of its nearest known voxel (Euclidean; scipy
  ``distance_transform_edt`` indices; ties broken by scipy's scan order; all channels from the
  same voxel).

A mask is spatial and shared by all channels. Denoising (``image`` ``(*spatial)`` or
``(C, *spatial)``; ``dims`` says which when the array alone cannot, e.g. ``(3, H, W)``):

- ``nlm``         scikit-image ``restoration.denoise_nl_means`` (2D and 3D; colour with
  ``channel_axis=-1``: patches compared over all channels), ``h = 0.8 sigma`` and ``sigma`` from
  ``restoration.estimate_sigma`` (wavelet MAD, averaged over channels) unless given, patch 5,
  distance 6, fast mode — the settings of scikit-image's own NLM example;
- ``bm3d``        the ``bm3d`` package (Dabov et al. 2007; Mäkinen et al. 2020; 2D only; colour
  images ``bm3d.bm3d_rgb``, 3 channels, in its opponent colour space), ``sigma`` estimated as for
  NLM unless given (``pip install openmia[classical]``);
- ``gaussian``    scikit-image ``filters.gaussian`` with ``sigma = 1`` voxel, each channel on its
  own (never smoothed across channels; a weak reference).
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from openmia.errors import ConfigError, DataError

INPAINT_METHODS = ("biharmonic", "telea", "ns", "mean", "nearest")
DENOISE_METHODS = ("nlm", "bm3d", "gaussian")


def _channels(image: np.ndarray, dims: int | None) -> tuple[np.ndarray, bool]:
    """``(C, *spatial)`` float64 and whether a channel axis was added."""
    x = np.asarray(image, dtype=np.float64)
    if dims is None:
        dims = x.ndim if x.ndim in (2, 3) else x.ndim - 1
    if x.ndim == dims:
        return x[None], True
    if x.ndim == dims + 1:
        return x, False
    raise DataError(f"expected a {dims}D image (optionally with a leading channel axis), found shape {x.shape}")


def _require_cv2(method: str):
    try:
        import cv2
    except ImportError as exc:
        raise ConfigError(f"inpainting method {method!r} needs OpenCV, which is not installed; run "
                          "`pip install opencv-python-headless` (or `pip install openmia[classical]`), "
                          "or use --method biharmonic") from exc
    return cv2


def inpaint(image: np.ndarray, mask: np.ndarray, method: str = "biharmonic", *, case: str = "") -> np.ndarray:
    """Fill the holes of ``image`` with ``method`` (:data:`INPAINT_METHODS`); float32, the input's shape.

    Known voxels are returned unchanged (the methods only write the hole)."""
    from openmia.transforms.corruption import check_mask

    if method not in INPAINT_METHODS:
        raise ConfigError(f"inpainting method: expected one of {', '.join(INPAINT_METHODS)}, found {method!r}")
    m_raw = np.asarray(mask)
    dims = m_raw.ndim if m_raw.ndim in (2, 3) else None
    x, added = _channels(image, dims)
    if not np.all(np.isfinite(x)):
        raise DataError(f"case {case!r}: the image contains NaN or infinite values")
    m = check_mask(m_raw, x.shape[1:], case)
    out = x.copy()
    if method == "biharmonic":
        from skimage.restoration import inpaint_biharmonic

        if len(x) == 1:
            out[0] = inpaint_biharmonic(x[0], m)
        else:  # scikit-image's colour path: channels last
            out = np.moveaxis(inpaint_biharmonic(np.moveaxis(x, 0, -1), m, channel_axis=-1), -1, 0).copy()
    elif method in ("telea", "ns"):
        if m.ndim != 2:
            raise ConfigError(f"case {case!r}: {method} (OpenCV) inpaints 2D images only, found a 3D volume "
                              f"{m.shape}; use --method biharmonic, nearest or mean for 3D")
        cv2 = _require_cv2(method)
        flag = cv2.INPAINT_TELEA if method == "telea" else cv2.INPAINT_NS
        m8 = m.astype(np.uint8)
        for c in range(len(x)):
            # OpenCV's float path assumes the 0-255 scale (on [0, 1] data Telea returns garbage):
            # map the known range to [0, 255] in float32 (no 8-bit rounding) and back
            lo, hi = float(x[c][~m].min()), float(x[c][~m].max())
            s = (hi - lo) / 255.0 if hi > lo else 1.0
            out[c] = cv2.inpaint(((x[c] - lo) / s).astype(np.float32), m8, 3, flag) * s + lo
    elif method == "mean":
        for c in range(len(x)):
            out[c][m] = x[c][~m].mean()
    else:  # nearest
        from scipy.ndimage import distance_transform_edt

        # indices of the nearest zero (= known voxel) of the mask, for every voxel
        idx = distance_transform_edt(m, return_distances=False, return_indices=True)
        for c in range(len(x)):
            out[c] = x[c][tuple(idx)]
    out[:, ~m] = x[:, ~m]  # the known voxels stay exactly as given
    return (out[0] if added else out).astype(np.float32)


def estimate_noise_sigma(image: np.ndarray) -> float:
    """Noise standard deviation of ``(C, *spatial)`` by scikit-image's wavelet MAD estimator
    (``estimate_sigma``), averaged over channels."""
    from skimage.restoration import estimate_sigma

    return float(np.mean([estimate_sigma(c) for c in image]))


def denoise(image: np.ndarray, method: str = "nlm", *, sigma: float | None = None, case: str = "",
            dims: int | None = None) -> np.ndarray:
    """Denoise ``image`` with ``method`` (:data:`DENOISE_METHODS`); float32, the input's shape.

    ``sigma``: the noise standard deviation in the image's intensity unit (None = estimated).
    ``dims``: the spatial dimensions (2 or 3); None = 2D/3D arrays are single-channel, 4D are
    ``(C, *3D)`` (so a colour image ``(3, H, W)`` needs ``dims=2``)."""
    if method not in DENOISE_METHODS:
        raise ConfigError(f"denoising method: expected one of {', '.join(DENOISE_METHODS)}, found {method!r}")
    x, added = _channels(image, dims)
    if not np.all(np.isfinite(x)):
        raise DataError(f"case {case!r}: the image contains NaN or infinite values")
    if sigma is not None and (not np.isfinite(sigma) or sigma < 0):
        raise ConfigError(f"denoising sigma: expected a non-negative number, found {sigma!r}")
    s = estimate_noise_sigma(x) if sigma is None and method != "gaussian" else sigma
    out = np.empty_like(x)
    if method == "nlm":
        from skimage.restoration import denoise_nl_means

        kw = dict(h=0.8 * s, sigma=s, patch_size=5, patch_distance=6, fast_mode=True)
        if s == 0:
            out[:] = x
        elif len(x) == 1:
            out[0] = denoise_nl_means(x[0], **kw)
        else:  # colour: patch distances over all channels (scikit-image's channel_axis)
            out = np.moveaxis(denoise_nl_means(np.moveaxis(x, 0, -1), channel_axis=-1, **kw), -1, 0).copy()
    elif method == "bm3d":
        try:
            import bm3d
        except ImportError as exc:
            raise ConfigError("denoising method 'bm3d' needs the bm3d package, which is not installed; run "
                              "`pip install bm3d` (or `pip install openmia[classical]`), or use --method nlm") from exc
        if x.ndim != 3:
            raise ConfigError(f"case {case!r}: bm3d denoises 2D images only, found a 3D volume {x.shape[1:]}; use --method nlm")
        if len(x) not in (1, 3):
            raise ConfigError(f"case {case!r}: bm3d denoises grey or RGB images (1 or 3 channels), found {len(x)} "
                              "channels; use --method nlm")
        if s == 0:
            out[:] = x
        elif len(x) == 1:
            out[0] = bm3d.bm3d(x[0], sigma_psd=s)
        else:
            if not hasattr(bm3d, "bm3d_rgb"):
                raise ConfigError(f"case {case!r}: the installed bm3d package has no bm3d_rgb (colour BM3D); "
                                  "upgrade it (`pip install -U bm3d`) or use --method nlm")
            out = np.moveaxis(bm3d.bm3d_rgb(np.moveaxis(x, 0, -1), sigma_psd=s), -1, 0).copy()
    else:
        from skimage.filters import gaussian

        for c in range(len(x)):  # each channel on its own (never across channels)
            out[c] = gaussian(x[c], sigma=1.0, preserve_range=True)
    return (out[0] if added else out).astype(np.float32)


def inpainter(method: str) -> Callable[..., np.ndarray]:
    """``f(image, mask, case, dims=None)`` applying ``method`` (checked now, before any file is
    read; ``dims`` is unused: the mask gives the spatial shape)."""
    if method not in INPAINT_METHODS:
        raise ConfigError(f"--method: expected one of {', '.join(INPAINT_METHODS)}, found {method!r}")
    if method in ("telea", "ns"):
        _require_cv2(method)
    return lambda image, mask, case, dims=None: inpaint(image, mask, method, case=case)


def denoiser(method: str, sigma: float | None = None) -> Callable[..., np.ndarray]:
    """``f(image, mask, case, dims=None)`` applying ``method`` (the mask is unused; checked now;
    ``dims``: the image's spatial dimensions, see :func:`denoise`)."""
    if method not in DENOISE_METHODS:
        raise ConfigError(f"--method: expected one of {', '.join(DENOISE_METHODS)}, found {method!r}")
    return lambda image, mask, case, dims=None: denoise(image, method, sigma=sigma, case=case, dims=dims)
