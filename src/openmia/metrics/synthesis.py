"""Image synthesis / inpainting metrics: PSNR, SSIM and MAE on the whole image and inside a mask.

``data_range`` (max - min of the intensity scale, e.g. 1.0 or 255 or a CT window width) is
required: guessing it from the dtype silently changes PSNR and SSIM. SSIM is scikit-image's
(Gaussian-free 7-pixel window, Wang et al. 2004 constants); the masked SSIM is the mean of the
SSIM map over the mask. PSNR of identical images is +inf (reported as such); an empty mask gives NaN.

**Colour / multi-channel images** (``channel_axis``, channels last after moving): PSNR and MAE
pool the squared / absolute errors of *every channel* of the scored pixels (the whole image, or
the mask's pixels — the mask is spatial and shared by all channels), i.e. one MSE over
``n_pixels x C`` values; SSIM is computed per channel and averaged over the channels (scikit-image
``structural_similarity(..., channel_axis=-1)``), the masked SSIM is the mean of the per-channel
SSIM maps over the mask's pixels (= the mean over channels of each channel's masked SSIM).
"""

from __future__ import annotations

import numpy as np

from openmia.errors import PredictionError


def _check(pred, truth, data_range, mask, case: str, channel_axis: int | None = None):
    where = f"case {case!r}: " if case else ""
    if data_range is None or not np.isfinite(data_range) or data_range <= 0:
        raise PredictionError(f"{where}data_range must be a positive number (the intensity scale, e.g. 1.0 or 255), found {data_range!r}")
    p, t = np.asarray(pred, dtype=float), np.asarray(truth, dtype=float)
    if p.shape != t.shape:
        raise PredictionError(f"{where}prediction shape {p.shape} differs from truth shape {t.shape}")
    if channel_axis is not None:  # channels last from here on
        p, t = np.moveaxis(p, channel_axis, -1), np.moveaxis(t, channel_axis, -1)
    spatial = p.shape if channel_axis is None else p.shape[:-1]
    if len(spatial) not in (2, 3):
        raise PredictionError(f"{where}expected a 2D or 3D image{'' if channel_axis is None else ' with a channel axis'}, "
                              f"found shape {np.shape(pred)}")
    for name, a in (("prediction", p), ("truth", t)):
        if not np.all(np.isfinite(a)):
            raise PredictionError(f"{where}{name} contains NaN or infinite values")
    m = None
    if mask is not None:
        m = np.asarray(mask).astype(bool)
        if m.shape != spatial:
            raise PredictionError(f"{where}mask shape {m.shape} differs from the image's spatial shape {spatial}")
    return p, t, m


def psnr(pred, truth, *, data_range: float, mask=None, case: str = "", channel_axis: int | None = None) -> float:
    """10 log10(data_range² / MSE), over the mask if given (the MSE pools every channel)."""
    p, t, m = _check(pred, truth, data_range, mask, case, channel_axis)
    d = (p - t) if m is None else (p - t)[m]  # a spatial mask on channels-last arrays: (K, C)
    if d.size == 0:
        return float("nan")
    mse = float(np.mean(d**2))
    return float("inf") if mse == 0 else float(10 * np.log10(data_range**2 / mse))


def synthesis_metrics(pred, truth, *, data_range: float, mask=None, case: str = "",
                      channel_axis: int | None = None) -> dict[str, float]:
    """``psnr``, ``ssim``, ``mae`` on the whole image, and ``psnr_mask``, ``ssim_mask``, ``mae_mask``
    inside ``mask`` (spatial, shared by the channels) when one is given.

    ``pred``/``truth``: ``(*spatial)`` 2D or 3D, or with a channel axis at ``channel_axis``."""
    from skimage.metrics import structural_similarity

    p, t, m = _check(pred, truth, data_range, mask, case, channel_axis)
    multi = channel_axis is not None
    spatial = p.shape[:-1] if multi else p.shape
    if min(spatial) < 7:
        raise PredictionError(f"case {case!r}: SSIM needs images of at least 7 pixels per axis, found shape {np.shape(pred)}")
    ssim, smap = structural_similarity(t, p, data_range=data_range, full=True, **({"channel_axis": -1} if multi else {}))
    out = {"psnr": psnr(p, t, data_range=data_range, channel_axis=-1 if multi else None), "ssim": float(ssim),
           "mae": float(np.mean(np.abs(p - t)))}
    if m is not None:
        empty = not m.any()
        out.update(psnr_mask=psnr(p, t, data_range=data_range, mask=m, channel_axis=-1 if multi else None),
                   ssim_mask=float("nan") if empty else float(smap[m].mean()),
                   mae_mask=float("nan") if empty else float(np.mean(np.abs(p - t)[m])))
    return out
