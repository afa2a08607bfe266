"""Classical inpainting and denoising baselines (no training), 2D and (where the method allows) 3D.

Inpainting (``image`` ``(*spatial)`` or ``(C, *spatial)``, ``mask`` ``(*spatial)`` bool, True = hole):

- ``biharmonic``  scikit-image ``restoration.inpaint_biharmonic`` (2D and 3D): the hole is the
  solution of the biharmonic equation with the known voxels as boundary values (Damelin & Hoang
  2018); reproduces any linear ramp exactly.
- ``telea``       OpenCV ``cv2.inpaint(..., INPAINT_TELEA)``, fast marching (Telea 2004), 2D only;
- ``ns``          OpenCV ``cv2.inpaint(..., INPAINT_NS)``, Navier-Stokes (Bertalmio et al. 2001), 2D
  only. Both need ``opencv-python-headless`` (``pip install openmia[classical]``); radius 3 px;
  images are inpainted as float32 after mapping the known voxels' range to [0, 255] (OpenCV's
  float path assumes that scale), then mapped back (no 8-bit rounding).
- ``mean``        every hole voxel = the mean of the known voxels (per channel);
- ``nearest``     every hole voxel = the value of its nearest known voxel (Euclidean; scipy
  ``distance_transform_edt`` indices; ties broken by scipy's scan order).

Denoising (``image`` ``(*spatial)`` or ``(C, *spatial)``):

- ``nlm``         scikit-image ``restoration.denoise_nl_means`` (2D and 3D), ``h = 0.8 sigma`` and
  ``sigma`` from ``restoration.estimate_sigma`` (wavelet MAD) unless given, patch 5, distance 6,
  fast mode — the settings of scikit-image's own NLM example;
- ``bm3d``        the ``bm3d`` package (Dabov et al. 2007; Mäkinen et al. 2020; 2D only), ``sigma``
  estimated as for NLM unless given (``pip install openmia[classical]``);
- ``gaussian``    scikit-image ``filters.gaussian`` with ``sigma = 1`` voxel (a weak reference).
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

        for c in range(len(x)):
            out[c] = inpaint_biharmonic(x[c], m)
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


def denoise(image: np.ndarray, method: str = "nlm", *, sigma: float | None = None, case: str = "") -> np.ndarray:
    """Denoise ``image`` with ``method`` (:data:`DENOISE_METHODS`); float32, the input's shape.

    ``sigma``: the noise standard deviation in the image's intensity unit (None = estimated)."""
    if method not in DENOISE_METHODS:
        raise ConfigError(f"denoising method: expected one of {', '.join(DENOISE_METHODS)}, found {method!r}")
    x, added = _channels(image, None)
    if not np.all(np.isfinite(x)):
        raise DataError(f"case {case!r}: the image contains NaN or infinite values")
    if sigma is not None and (not np.isfinite(sigma) or sigma < 0):
        raise ConfigError(f"denoising sigma: expected a non-negative number, found {sigma!r}")
    s = estimate_noise_sigma(x) if sigma is None and method != "gaussian" else sigma
    out = np.empty_like(x)
    if method == "nlm":
        from skimage.restoration import denoise_nl_means

        for c in range(len(x)):
            out[c] = x[c] if s == 0 else denoise_nl_means(x[c], h=0.8 * s, sigma=s, patch_size=5, patch_distance=6,
                                                          fast_mode=True)
    elif method == "bm3d":
        try:
            import bm3d
        except ImportError as exc:
            raise ConfigError("denoising method 'bm3d' needs the bm3d package, which is not installed; run "
                              "`pip install bm3d` (or `pip install openmia[classical]`), or use --method nlm") from exc
        if x.ndim != 3:
            raise ConfigError(f"case {case!r}: bm3d denoises 2D images only, found a 3D volume {x.shape[1:]}; use --method nlm")
        for c in range(len(x)):
            out[c] = x[c] if s == 0 else bm3d.bm3d(x[c], sigma_psd=s)
    else:
        from skimage.filters import gaussian

        for c in range(len(x)):
            out[c] = gaussian(x[c], sigma=1.0, preserve_range=True)
    return (out[0] if added else out).astype(np.float32)


def inpainter(method: str) -> Callable[[np.ndarray, np.ndarray, str], np.ndarray]:
    """``f(image, mask, case)`` applying ``method`` (checked now, before any file is read)."""
    if method not in INPAINT_METHODS:
        raise ConfigError(f"--method: expected one of {', '.join(INPAINT_METHODS)}, found {method!r}")
    if method in ("telea", "ns"):
        _require_cv2(method)
    return lambda image, mask, case: inpaint(image, mask, method, case=case)


def denoiser(method: str, sigma: float | None = None) -> Callable[[np.ndarray, np.ndarray | None, str], np.ndarray]:
    """``f(image, mask, case)`` applying ``method`` (the mask is unused; checked now)."""
    if method not in DENOISE_METHODS:
        raise ConfigError(f"--method: expected one of {', '.join(DENOISE_METHODS)}, found {method!r}")
    return lambda image, mask, case: denoise(image, method, sigma=sigma, case=case)
