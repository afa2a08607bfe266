"""The denoising (and reconstruction) evaluator: PSNR, SSIM and MAE over the whole image.

Format (DESIGN §4.1): a folder of predicted images and a folder of clean truth images,
``<case_id>.npy|.png|.nii.gz`` each; ``data_range`` (the intensity scale) is required, never
guessed from the dtype. It is the inpainting evaluator
(:func:`openmia.evaluation.other_tasks.evaluate_inpainting_folders`) without masks: the same
metrics (:mod:`openmia.metrics.synthesis`), the same BCa bootstrap CIs over cases, the same
per-case table, so ``openmia compare --task denoising`` pairs methods case by case.

Conventions: a case whose prediction equals its truth has PSNR = +inf (MSE 0); it is kept in the
per-case table as ``inf``, excluded from the mean and CI, and counted in ``n_nan``. SSIM of a
constant truth image is defined by the SSIM constants (no division by zero).

**Colour and multi-channel images** (both evaluators, :func:`read_synthesis_image` /
:func:`score_case`): an RGB(A) PNG/JPEG is read as ``(H, W, C)``; an array file is multi-channel
with the channel axis *last* when it is 4D (a 3D volume ``(X, Y, Z, C)``) or 3D with at most 4
entries on its last axis (a 2D image ``(H, W, C)``; a 3D volume that thin could not be scored
anyway, SSIM needs 7 voxels per axis). A trailing axis of length 1 is dropped. Masks are spatial
and shared by every channel (an RGB mask image: its first channel). PSNR and MAE pool every
channel of the scored pixels (one MSE over ``pixels x C`` values); SSIM is computed per channel
and averaged (scikit-image ``structural_similarity(..., channel_axis=-1)``); the masked SSIM is
the mean of the per-channel SSIM maps over the mask. A prediction whose channel count differs
from its truth's is an error naming the case and both shapes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from openmia.errors import PredictionError

MAX_COLOUR_CHANNELS = 4  # a 3D array with a last axis up to this long is a 2D multi-channel image


def channel_axis_of(arr: np.ndarray) -> int | None:
    """``-1`` for a multi-channel array (channels last, see the module docstring), else ``None``."""
    return -1 if arr.ndim == 4 or (arr.ndim == 3 and arr.shape[-1] <= MAX_COLOUR_CHANNELS) else None


def read_synthesis_image(path: Path, case: str) -> np.ndarray:
    """An intensity image (float64) from .npy, .png/.jpg or NIfTI: ``(*spatial)`` or ``(*spatial, C)``
    (RGB PNGs are images here, not refused as label maps are); unreadable files name the case."""
    from openmia.evaluation.label_maps import read_array

    arr = np.asarray(read_array(Path(path), case)[0]).astype(float)
    return arr[..., 0] if arr.ndim in (3, 4) and arr.shape[-1] == 1 else arr


def score_case(pred_path: Path, truth_path: Path, mask_path: Path | None, case: str, data_range: float) -> dict[str, float]:
    """The synthesis metrics (:func:`openmia.metrics.synthesis.synthesis_metrics`) of one case's files."""
    from openmia.metrics.synthesis import synthesis_metrics

    pred, truth = read_synthesis_image(pred_path, case), read_synthesis_image(truth_path, case)
    ap, at = channel_axis_of(pred), channel_axis_of(truth)
    cp, ct = (1 if ap is None else pred.shape[-1]), (1 if at is None else truth.shape[-1])
    if cp != ct:
        raise PredictionError(f"case {case!r}: the prediction has {cp} channel(s) (shape {pred.shape}, {pred_path.name}) "
                              f"but the truth has {ct} (shape {truth.shape}, {truth_path.name}); colour images are "
                              "scored channel by channel and need the same channels (channel axis last)")
    mask = None
    if mask_path is not None:
        mask = read_synthesis_image(mask_path, case)
        if at is not None and mask.ndim == truth.ndim:  # an RGB(A) mask image: its first channel
            mask = mask[..., 0]
        mask = mask > 0
    return synthesis_metrics(pred, truth, data_range=data_range, mask=mask, case=case, channel_axis=at)


def evaluate_denoising_folders(pred_dir, truth_dir, out_dir=None, *, data_range: float | None = None, mask_dir=None,
                               allow_missing: bool = False, n_resamples: int = 2000, seed: int = 0, alpha: float = 0.05,
                               task: str = "denoising", **_: Any):
    """PSNR, SSIM and MAE per case over the whole image (colour: see the module docstring), with
    BCa CIs over cases."""
    from openmia.evaluation.other_tasks import evaluate_inpainting_folders
    from openmia.evaluation.result import write_outputs

    if mask_dir is not None:
        raise PredictionError(f"{task} is scored over the whole image; --masks applies to --task inpainting")
    if data_range is None:
        raise PredictionError(f"{task} needs --data-range (the intensity scale, e.g. 1.0 or 255); it is never guessed "
                              "from the dtype")
    res = evaluate_inpainting_folders(pred_dir, truth_dir, None, data_range=data_range, allow_missing=allow_missing,
                                      n_resamples=n_resamples, seed=seed, alpha=alpha)
    res.summary["task"] = task
    res.summary["conventions"]["scope"] = "whole image (no mask)"
    if out_dir is not None:
        write_outputs(res, out_dir, {"pred": str(pred_dir), "truth": str(truth_dir)})
    return res
