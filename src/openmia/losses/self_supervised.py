"""Self-supervised objectives (``openmia pretrain``, :mod:`openmia.tasks.pretrain`).

- :func:`nt_xent`: SimCLR's normalised temperature-scaled cross-entropy (Chen et al., ICML 2020).
- :func:`byol_loss`: BYOL's normalised regression of the target projection (Grill et al., NeurIPS 2020).
- :func:`patch_mask` / :func:`masked_mse`: masked-image modelling — hide random patches, reconstruct
  the pixels, score only the hidden ones (as MAE, He et al., CVPR 2022, on a CNN encoder).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch


def nt_xent(z1: "torch.Tensor", z2: "torch.Tensor", temperature: float = 0.2) -> "torch.Tensor":
    """NT-Xent of two views' projections ``(N, d)`` each (row i of ``z1`` and of ``z2`` are the
    same image).

    With the ``2N`` L2-normalised rows ``u``, the loss of row i is
    ``-log(exp(s(i, p(i)) / T) / sum_{k != i} exp(s(i, k) / T))`` (``s`` the cosine similarity,
    ``p(i)`` the other view of the same image); returns the mean over all ``2N`` rows.
    """
    import torch
    import torch.nn.functional as F

    if z1.shape != z2.shape or z1.dim() != 2 or z1.shape[0] < 2:
        from openmia.errors import DataError

        raise DataError(f"nt_xent: expected two (N, d) projections with N >= 2, found {tuple(z1.shape)} and {tuple(z2.shape)}")
    n = z1.shape[0]
    u = F.normalize(torch.cat([z1, z2]).float(), dim=1)
    sim = u @ u.t() / temperature
    sim = sim.masked_fill(torch.eye(2 * n, dtype=torch.bool, device=sim.device), float("-inf"))  # no self-pairs
    target = torch.cat([torch.arange(n, 2 * n), torch.arange(0, n)]).to(sim.device)
    return F.cross_entropy(sim, target)


def byol_loss(p: "torch.Tensor", z: "torch.Tensor") -> "torch.Tensor":
    """BYOL's ``2 - 2 cos(p, z)`` averaged over the batch; ``p`` the online prediction ``(N, d)``,
    ``z`` the target projection ``(N, d)`` (no gradient flows into it)."""
    import torch.nn.functional as F

    return (2 - 2 * F.cosine_similarity(p.float(), z.detach().float(), dim=1)).mean()


def patch_mask(shape: tuple[int, ...], patch: int, ratio: float, gen: "torch.Generator") -> "torch.Tensor":
    """A 0/1 mask ``(N, 1, *spatial)``: the image cut into ``patch``-sized cells (edge cells may be
    smaller), ``round(ratio * cells)`` of them chosen at random per image and set to 1 (hidden)."""
    import torch

    n, spatial = shape[0], tuple(shape[2:])
    grid = tuple(-(-s // patch) for s in spatial)
    cells = 1
    for g in grid:
        cells *= g
    k = max(1, min(cells - 1, int(round(ratio * cells)))) if cells > 1 else 1
    order = torch.argsort(torch.rand(n, cells, generator=gen), dim=1)
    m = torch.zeros(n, cells)
    m.scatter_(1, order[:, :k], 1.0)
    m = m.view(n, 1, *grid)
    for axis, s in enumerate(spatial):
        m = m.repeat_interleave(patch, dim=2 + axis).narrow(2 + axis, 0, s)
    return m


def masked_mse(recon: "torch.Tensor", target: "torch.Tensor", mask: "torch.Tensor") -> "torch.Tensor":
    """Mean squared error over the hidden voxels only: ``sum(mask * (recon - target)^2) /
    (C * sum(mask))``; ``recon``/``target`` ``(N, C, *spatial)``, ``mask`` ``(N, 1, *spatial)``."""
    m = mask.to(recon.dtype)
    return (m * (recon - target) ** 2).sum() / (recon.shape[1] * m.sum()).clamp_min(1.0)
