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
"""

from __future__ import annotations

from typing import Any

from openmia.errors import PredictionError


def evaluate_denoising_folders(pred_dir, truth_dir, out_dir=None, *, data_range: float | None = None, mask_dir=None,
                               allow_missing: bool = False, n_resamples: int = 2000, seed: int = 0, alpha: float = 0.05,
                               task: str = "denoising", **_: Any):
    """PSNR, SSIM and MAE per case over the whole image, with BCa CIs over cases."""
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
