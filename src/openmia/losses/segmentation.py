"""Segmentation losses on logits ``(N, K, *spatial)`` and integer targets ``(N, *spatial)``.

- ``dice``: soft Dice loss 1 - mean_k 2 Σ p_k t_k / (Σ p_k + Σ t_k), probabilities from softmax,
  sums over the batch and space ("batch Dice", as nnU-Net) with smoothing ``smooth`` in numerator
  and denominator; background excluded by default. ``batch=False`` computes Dice per image and
  averages (MONAI's ``batch=False``): every image counts equally, as in the per-case metric, so
  small structures weigh as much as large ones.
- ``ce``: cross-entropy. ``dice_ce``: their sum (nnU-Net's default).
- ``focal``: (1 - p_t)^γ-weighted cross-entropy (Lin et al. 2017); γ = 0 is cross-entropy.
- ``tversky``: 1 - mean_k TP / (TP + α FP + β FN) (Salehi et al. 2017); α = β = 0.5 is Dice.
- :class:`DeepSupervision` adds the loss at coarser decoder outputs with weights 1/2^i,
  normalised to sum to 1, the target downsampled by nearest neighbour.
"""

from __future__ import annotations

from typing import Callable, Sequence

import torch
import torch.nn.functional as F

from openmia.errors import ConfigError

from openmia.losses import SEGMENTATION_LOSSES as LOSSES  # noqa: E402


def _check(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    if logits.dim() < 3 or target.shape != logits.shape[:1] + logits.shape[2:]:
        raise ConfigError(f"segmentation loss: logits (N, K, *spatial) and target (N, *spatial) must match, "
                          f"found {tuple(logits.shape)} and {tuple(target.shape)}")
    return target.long()


def _onehot(target: torch.Tensor, k: int) -> torch.Tensor:
    return F.one_hot(target, k).movedim(-1, 1).to(torch.float32)


def tversky_loss(logits: torch.Tensor, target: torch.Tensor, *, alpha: float = 0.5, beta: float = 0.5,
                 smooth: float = 1e-5, include_background: bool = False, batch: bool = True) -> torch.Tensor:
    """Tversky loss (α weights false positives, β false negatives); ``batch`` sums over the batch
    before the ratio, otherwise the ratio is per image and averaged over images and classes."""
    target = _check(logits, target)
    k = logits.shape[1]
    p = torch.softmax(logits, dim=1)
    t = _onehot(target, k)
    dims = (0, *range(2, logits.dim())) if batch else tuple(range(2, logits.dim()))
    tp = (p * t).sum(dims)
    fp = (p * (1 - t)).sum(dims)
    fn = ((1 - p) * t).sum(dims)
    score = (tp + smooth) / (tp + alpha * fp + beta * fn + smooth)  # (K,) or (N, K)
    if not include_background and k > 1:
        score = score[..., 1:]
    return 1 - score.mean()


def dice_loss(logits: torch.Tensor, target: torch.Tensor, *, smooth: float = 1e-5, include_background: bool = False,
              batch: bool = True) -> torch.Tensor:
    """Soft Dice loss (batch Dice over the foreground classes by default)."""
    return tversky_loss(logits, target, alpha=0.5, beta=0.5, smooth=smooth, include_background=include_background,
                        batch=batch)


def focal_loss(logits: torch.Tensor, target: torch.Tensor, *, gamma: float = 2.0) -> torch.Tensor:
    """Mean over voxels of -(1 - p_t)^γ log p_t."""
    target = _check(logits, target)
    logp = torch.log_softmax(logits, dim=1).gather(1, target.unsqueeze(1)).squeeze(1)
    return (-(1 - logp.exp()) ** gamma * logp).mean()


def make_loss(name: str, *, batch_dice: bool = True, **kw) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """A loss ``(logits, target) -> scalar`` by name (:data:`LOSSES`); ``batch_dice`` is the Dice /
    Tversky terms' ``batch`` (ignored by ``ce`` and ``focal``)."""
    if name in ("dice", "dice_ce", "tversky"):
        kw["batch"] = batch_dice
    if name == "dice":
        return lambda lo, t: dice_loss(lo, t, **kw)
    if name == "ce":
        return lambda lo, t: F.cross_entropy(lo, _check(lo, t))
    if name == "dice_ce":
        return lambda lo, t: dice_loss(lo, t, **kw) + F.cross_entropy(lo, _check(lo, t))
    if name == "focal":
        return lambda lo, t: focal_loss(lo, t, **kw)
    if name == "tversky":
        return lambda lo, t: tversky_loss(lo, t, **kw)
    raise ConfigError(f"unknown segmentation loss {name!r}; choose one of {', '.join(LOSSES)}")


class DeepSupervision:
    """``loss(main) + Σ_i w_i loss(aux_i)`` with w ∝ 1/2^i (main first), normalised to sum to 1."""

    def __init__(self, loss: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]) -> None:
        self.loss = loss

    def __call__(self, main: torch.Tensor, aux: Sequence[torch.Tensor], target: torch.Tensor) -> torch.Tensor:
        outs = [main, *aux]
        w = torch.tensor([0.5**i for i in range(len(outs))])
        w = w / w.sum()
        total = main.new_zeros(())
        for wi, out in zip(w, outs):
            t = target
            if out.shape[2:] != target.shape[1:]:
                t = F.interpolate(target.unsqueeze(1).float(), size=out.shape[2:], mode="nearest").squeeze(1).long()
            total = total + wi * self.loss(out, t)
        return total
