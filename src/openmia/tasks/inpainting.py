"""Inpainting task (2D and 3D): fill masked holes of an image from the rest of it.

Training: every step draws fresh masks (``inpainting.mask``: random boxes, free-form strokes,
slice gaps or mixed; hole fraction in ``inpainting.hole_range``, default 5-25 %), the network
(default ``gated_unet``, gated convolutions of Yu et al., ICCV 2019) sees the image with its holes
set to 0 plus the mask as an extra channel, and the loss is the masked L1 (hole + ``valid_weight``
x known region; optional ``ssim_weight`` x (1 - SSIM) of the composed image). The prediction
copies the known voxels from the input and takes the network's values in the holes.

Validation selects by mean PSNR inside the mask (``psnr_mask``) on fixed, seeded validation masks;
the final evaluation scores PSNR/SSIM/MAE inside the mask (and over the whole image) with the
inpainting evaluator, CIs by BCa bootstrap over cases, on masks saved in the run directory
(``masks/<split>/``; see :mod:`openmia.tasks.generative`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from openmia.config import one_of
from openmia.errors import ConfigError
from openmia.tasks.generative import GenerativeTask
from openmia.tasks.registry import register_task
from openmia.transforms.corruption import DEFAULT_HOLE_RANGE, MASK_KINDS, check_hole_range


@dataclass(frozen=True)
class InpaintingOptions:
    """The ``inpainting`` config section."""

    mask: str = "mixed"  # one of MASK_KINDS: boxes | strokes | slices | mixed (boxes or strokes)
    hole_range: tuple[float, ...] = DEFAULT_HOLE_RANGE  # fraction of the image's voxels in the holes
    valid_weight: float = 0.1  # weight of the L1 over the known voxels (the hole's weight is 1)
    ssim_weight: float = 0.0  # weight of (1 - SSIM) of the composed image (0 = off)
    corruption_seed: int = 0  # seeds the fixed validation/test masks (saved in the run directory)

    def __post_init__(self) -> None:
        one_of("inpainting.mask", self.mask, MASK_KINDS)
        check_hole_range(self.hole_range, "inpainting.hole_range")
        for k in ("valid_weight", "ssim_weight"):
            v = getattr(self, k)
            if not isinstance(v, (int, float)) or v < 0:
                raise ConfigError(f"inpainting.{k}: expected a non-negative number, found {v!r}")


@register_task("inpainting")
class InpaintingTask(GenerativeTask):
    """Inpainting of 2D images and 3D volumes (holes, strokes, slice gaps)."""

    section = InpaintingOptions
    default_dataset = "synthetic/seg2d"
    default_model = "gated_unet"
    select_metrics = ("psnr_mask", "loss")
    headline_metrics = ("psnr_mask", "ssim_mask")
    leaderboard_metrics = ("psnr_mask", "ssim_mask")
    evaluator = "inpainting"
    uses_mask = True

    def corrupt(self, clean, region, rng):
        from openmia.transforms.corruption import make_mask

        o = self.options
        mask = np.zeros(clean.shape[1:], bool)
        shape = tuple(len(range(*sl.indices(n))) for sl, n in zip(region, clean.shape[1:]))
        mask[region] = make_mask(o.mask, shape, rng, o.hole_range)
        return self.model_input(clean, mask), mask

    def model_input(self, unit: np.ndarray, mask: np.ndarray | None) -> np.ndarray:
        """``(C + 1, *spatial)``: the image with its holes set to 0, then the mask channel."""
        m = mask.astype(np.float32)[None]
        return np.concatenate([unit * (1 - m), m]).astype(np.float32)

    def compose(self, out: np.ndarray, inp: np.ndarray, mask: np.ndarray | None) -> np.ndarray:
        c = out.shape[1]
        return np.where(mask[:, None], out, inp[:, :c]).astype(np.float32)

    def loss(self, out, target, mask, model):
        from openmia.losses.generative import masked_l1, ssim

        o = self.options
        total = masked_l1(out, target, mask, o.valid_weight)
        if o.ssim_weight > 0:
            composed = out * mask + target * (1 - mask)
            total = total + o.ssim_weight * (1 - ssim(composed, target, data_range=1.0))
        return total

    def restore_image(self, model: Any, image: np.ndarray, mask: np.ndarray | None, scale: str = "auto") -> np.ndarray:
        if mask is None:
            raise ConfigError("an inpainting run needs a mask for every image (--mask DIR)")
        return super().restore_image(model, image, mask, scale)

    def embed(self, model: Any, batch: Any):
        """The gated U-Net's bottleneck averaged over space for the whole image (an all-zero mask)."""
        import torch

        return model.encode(torch.cat([batch, torch.zeros_like(batch[:, :1])], 1))

    def embedding_source(self, model: Any) -> str:
        return "spatial mean of the gated U-Net's bottleneck (no hole)"
