"""Denoising task (2D and 3D): recover the clean image from a noisy one.

Training: every step adds fresh noise (``denoising.noise``: ``gaussian`` for photographs,
``rician`` for MRI magnitude images; standard deviation ``denoising.sigma`` on the [0, 1] scale)
and the network (default ``denoise_unet``: the gated U-Net of the inpainting task, predicting a
residual) is trained with L1 (+ optional ``ssim_weight`` x (1 - SSIM)). Validation selects by
mean PSNR over the whole image on fixed, seeded noise; the final evaluation scores PSNR/SSIM/MAE
over the whole image with the denoising evaluator (BCa CIs over cases) on the noisy inputs saved
in ``inputs/<split>/`` (see :mod:`openmia.tasks.generative`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from openmia.config import one_of
from openmia.errors import ConfigError
from openmia.tasks.generative import GenerativeTask
from openmia.tasks.registry import register_task
from openmia.transforms.corruption import NOISE_KINDS


@dataclass(frozen=True)
class DenoisingOptions:
    """The ``denoising`` config section."""

    noise: str = "gaussian"  # gaussian | rician
    sigma: float = 0.1  # noise standard deviation on the [0, 1] intensity scale
    ssim_weight: float = 0.0  # weight of (1 - SSIM) added to the L1 loss (0 = off)
    corruption_seed: int = 0  # seeds the fixed validation/test noise (saved in the run directory)

    def __post_init__(self) -> None:
        one_of("denoising.noise", self.noise, NOISE_KINDS)
        if not isinstance(self.sigma, (int, float)) or not 0 < self.sigma <= 1:
            raise ConfigError(f"denoising.sigma: expected a noise level in (0, 1] (the [0, 1] intensity scale), found {self.sigma!r}")
        if not isinstance(self.ssim_weight, (int, float)) or self.ssim_weight < 0:
            raise ConfigError(f"denoising.ssim_weight: expected a non-negative number, found {self.ssim_weight!r}")


def noisy_input(clean: np.ndarray, region: tuple[slice, ...], kind: str, sigma: float, rng: np.random.Generator) -> np.ndarray:
    """``clean`` ``(C, *spatial)`` with noise added inside ``region`` (padding stays 0)."""
    from openmia.transforms.corruption import add_noise

    out = np.zeros_like(clean, dtype=np.float32)
    r = (slice(None), *region)
    out[r] = add_noise(clean[r], kind, sigma, rng)
    return out


@register_task("denoising")
class DenoisingTask(GenerativeTask):
    """Denoising of 2D images and 3D volumes (Gaussian or Rician noise)."""

    section = DenoisingOptions
    default_dataset = "synthetic/seg2d"
    default_model = "denoise_unet"
    select_metrics = ("psnr", "loss")
    evaluator = "denoising"

    def corrupt(self, clean, region, rng):
        return noisy_input(clean, region, self.options.noise, self.options.sigma, rng), None

    def loss(self, out, target, mask, model):
        from openmia.losses.generative import ssim

        total = (out - target).abs().mean()
        if self.options.ssim_weight > 0:
            total = total + self.options.ssim_weight * (1 - ssim(out, target, data_range=1.0))
        return total

    def embed(self, model, batch):
        """The denoising U-Net's bottleneck averaged over space."""
        return model.encode(batch)

    def embedding_source(self, model) -> str:
        return "spatial mean of the denoising U-Net's bottleneck"
