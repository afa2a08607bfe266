"""Losses of the generative tasks (torch): masked L1, a differentiable SSIM, and the VAE ELBO.

- :func:`masked_l1`: mean absolute error inside the hole plus ``valid_weight`` x the mean
  absolute error outside it (Liu et al. 2018 and Yu et al. 2019 weight the hole and the known
  region separately; the known region is copied back at prediction time, so it gets less weight).
- :func:`ssim` / ``1 - ssim`` as a loss term: uniform ``win`` window, sample covariance and the
  constants of Wang et al. 2004 with ``data_range``, averaged over the valid (unpadded) window
  positions: the same numbers as ``skimage.metrics.structural_similarity`` with its defaults
  (cross-checked in the tests), in 2D and 3D.
- :func:`vae_elbo`: negative ELBO per voxel = (sum of squared errors + beta x KL(q(z|x) || N(0, I)))
  / number of voxels, averaged over the batch (beta-VAE, Higgins et al. 2017; beta = 1 is the
  ELBO of a Gaussian decoder with variance 1/2, up to a constant).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def masked_l1(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor, valid_weight: float = 0.1) -> torch.Tensor:
    """``mean|pred - target|`` over the hole + ``valid_weight`` x the same over the known voxels.

    Args:
        pred, target: ``(N, C, *spatial)``.
        mask: ``(N, 1, *spatial)`` or ``(N, C, *spatial)``, 1 = hole.
    """
    m = mask.to(pred.dtype).expand_as(pred)
    err = (pred - target).abs()
    hole = (err * m).sum() / m.sum().clamp_min(1.0)
    valid = (err * (1 - m)).sum() / (1 - m).sum().clamp_min(1.0)
    return hole + valid_weight * valid


def ssim(pred: torch.Tensor, target: torch.Tensor, data_range: float = 1.0, win: int = 7) -> torch.Tensor:
    """Mean SSIM of ``(N, C, *spatial)`` images (2D or 3D), averaged over channels and cases."""
    dims = pred.dim() - 2
    pool = {2: F.avg_pool2d, 3: F.avg_pool3d}[dims]
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    np_ = win**dims
    cov = np_ / (np_ - 1)  # sample covariance, as skimage's default

    def mean(t: torch.Tensor) -> torch.Tensor:
        return pool(t, win, stride=1)

    ux, uy = mean(pred), mean(target)
    vx = cov * (mean(pred * pred) - ux * ux)
    vy = cov * (mean(target * target) - uy * uy)
    vxy = cov * (mean(pred * target) - ux * uy)
    s = ((2 * ux * uy + c1) * (2 * vxy + c2)) / ((ux * ux + uy * uy + c1) * (vx + vy + c2))
    return s.mean()


def kl_standard_normal(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, exp(logvar)) || N(0, 1)) summed over every latent element but the batch, ``(N,)``."""
    return 0.5 * (mu.pow(2) + logvar.exp() - logvar - 1).flatten(1).sum(1)


def vae_elbo(recon: torch.Tensor, target: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor,
             beta: float = 1.0) -> dict[str, torch.Tensor]:
    """``{"loss", "recon", "kl"}``: the batch means of the per-case sum of squared errors and KL,
    and ``loss = (recon + beta * kl) / voxels per case``."""
    sse = (recon - target).pow(2).flatten(1).sum(1).mean()
    kl = kl_standard_normal(mu, logvar).mean()
    n = target[0].numel()
    return {"loss": (sse + beta * kl) / n, "recon": sse, "kl": kl}
