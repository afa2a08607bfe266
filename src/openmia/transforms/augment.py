"""Batch augmentation in torch for 2D and 3D images ``(N, C, *spatial)``.

Presets (``data.augment``):
  none      no change
  flip      random flip along every spatial axis
  standard  flip + random translation by up to 1/8 of the size (reflect padding)
  dihedral  flip + random 90-degree rotations (the symmetry group of the square/cube; for
            orientation-free images such as fundus photographs, microscopy, shape masks)
  strong    standard + random 90-degree rotations in a random plane + brightness/contrast jitter
  affine    (segmentation) flip + random rotation (±15° about each axis) and scaling (0.85-1.15)
            by resampling, + brightness/contrast jitter; labels resampled nearest-neighbour
  elastic   affine + a smooth random elastic deformation (displacement up to ~4% of the size)
  heavy     (segmentation, 2D/3D) for orientation-free photographs such as endoscopy: flip + any
            rotation angle, scaling 0.75-1.33, the elastic field, reflection padding instead of
            zeros (no black corners), brightness/contrast jitter + per-channel gain (0.9-1.1,
            a white-balance change for colour images)
All randomness comes from the given ``torch.Generator`` so runs are reproducible.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

PRESETS = ("none", "flip", "standard", "dihedral", "strong", "affine", "elastic", "heavy")
PAIR_ONLY = ("affine", "elastic", "heavy")  # need a label map to move with the image
# the resampling (``_resample_pair`` arguments) of each segmentation preset
RESAMPLING = {"affine": {"elastic": False}, "elastic": {"elastic": True},
              "heavy": {"elastic": True, "max_angle": 180.0, "scale_range": (0.75, 1.0 / 0.75), "padding": "reflection"}}


def augment_batch(x: "torch.Tensor", preset: str, gen: "torch.Generator") -> "torch.Tensor":
    """Augment a float batch ``(N, C, *spatial)``; returns a new tensor of the same shape.

    Random choices are drawn per sample from ``gen`` (one draw per sample per op).
    """
    import torch

    if preset == "none":
        return x
    if preset not in PRESETS or preset in PAIR_ONLY:
        from openmia.errors import ConfigError

        allowed = tuple(p for p in PRESETS if p not in PAIR_ONLY)
        raise ConfigError(f"data.augment: expected one of {allowed} for classification, found {preset!r}"
                          + (" (a segmentation preset)" if preset in PAIR_ONLY else ""))
    n, nd = x.shape[0], x.dim() - 2
    out = x.clone()
    for axis in range(nd):  # flips
        mask = torch.rand(n, generator=gen) < 0.5
        if mask.any():
            out[mask] = out[mask].flip(2 + axis)
    if preset in ("standard", "strong"):
        out = _translate(out, gen)
    if preset in ("dihedral", "strong"):
        if all(s == out.shape[2] for s in out.shape[2:]):  # rot90 needs square planes
            planes = [(a, b) for a in range(nd) for b in range(a + 1, nd)]
            k = torch.randint(0, 4, (n,), generator=gen)
            p = torch.randint(0, len(planes), (n,), generator=gen)
            for i in range(n):
                if k[i]:
                    a, b = planes[int(p[i])]
                    out[i] = torch.rot90(out[i], int(k[i]), dims=(1 + a, 1 + b))
    if preset == "strong":
        scale = 1 + 0.2 * (torch.rand((n,) + (1,) * (nd + 1), generator=gen) - 0.5)
        shift = 0.2 * (torch.rand((n,) + (1,) * (nd + 1), generator=gen) - 0.5)
        out = out * scale + shift
    return out


def _translate(x: "torch.Tensor", gen: "torch.Generator") -> "torch.Tensor":
    """Shift each sample by a random integer offset of up to 1/8 of each spatial size."""
    import torch
    import torch.nn.functional as F

    n, nd = x.shape[0], x.dim() - 2
    sizes = x.shape[2:]
    pads = [max(1, s // 8) for s in sizes]
    # F.pad takes pads for the last dim first
    pad_arg: list[int] = []
    for p in reversed(pads):
        pad_arg += [p, p]
    mode = "reflect" if nd == 2 else "replicate"
    padded = F.pad(x, pad_arg, mode=mode)
    out = torch.empty_like(x)
    offs = [torch.randint(0, 2 * p + 1, (n,), generator=gen) for p in pads]
    for i in range(n):
        sl = tuple(slice(int(o[i]), int(o[i]) + s) for o, s in zip(offs, sizes))
        out[i] = padded[(i, slice(None)) + sl]
    return out


def augment_pair(x: "torch.Tensor", y: "torch.Tensor", preset: str, gen: "torch.Generator") -> tuple["torch.Tensor", "torch.Tensor"]:
    """Augment images ``(N, C, *spatial)`` and label maps ``(N, *spatial)`` with the same geometry.

    The label map rides along as an extra channel through the geometric presets (flip, standard,
    dihedral; translation pads by reflection/replication, which keeps labels integer); ``strong``
    adds an intensity change that must not touch labels, so it is applied to the image only.
    """
    if preset == "none":
        return x, y
    if preset in PAIR_ONLY:
        x2, y2 = _resample_pair(*augment_pair(x, y, "flip", gen), gen, **RESAMPLING[preset])
        x2 = _intensity(x2, gen)
        return (_channel_gain(x2, gen) if preset == "heavy" else x2), y2
    geometric = "dihedral" if preset == "strong" else preset
    both = augment_batch(_with_labels(x, y), geometric, gen)
    x2, y2 = both[:, :-1], both[:, -1].round().to(y.dtype)
    return (_intensity(x2, gen) if preset == "strong" else x2), y2


def _intensity(x: "torch.Tensor", gen: "torch.Generator") -> "torch.Tensor":
    """Per-sample brightness/contrast jitter: ``x * U(0.9, 1.1) + U(-0.1, 0.1)``."""
    import torch

    n, nd = x.shape[0], x.dim() - 2
    scale = 1 + 0.2 * (torch.rand((n,) + (1,) * (nd + 1), generator=gen) - 0.5)
    shift = 0.2 * (torch.rand((n,) + (1,) * (nd + 1), generator=gen) - 0.5)
    return x * scale + shift


def _channel_gain(x: "torch.Tensor", gen: "torch.Generator") -> "torch.Tensor":
    """Per-sample, per-channel gain ``U(0.9, 1.1)`` (for 3 channels a change of white balance)."""
    import torch

    n, c, nd = x.shape[0], x.shape[1], x.dim() - 2
    return x * (1 + 0.2 * (torch.rand((n, c) + (1,) * nd, generator=gen) - 0.5))


def _rotation(angles: "torch.Tensor", nd: int) -> "torch.Tensor":
    """Rotation matrices ``(N, nd, nd)`` from angles ``(N, 1)`` (2D) or ``(N, 3)`` (3D, x-y-z)."""
    import torch

    n = angles.shape[0]
    if nd == 2:
        c, s = torch.cos(angles[:, 0]), torch.sin(angles[:, 0])
        return torch.stack([torch.stack([c, -s], -1), torch.stack([s, c], -1)], -2)
    out = torch.eye(3).repeat(n, 1, 1)
    for axis in range(3):
        a, b = [i for i in range(3) if i != axis]
        r = torch.eye(3).repeat(n, 1, 1)
        c, s = torch.cos(angles[:, axis]), torch.sin(angles[:, axis])
        r[:, a, a], r[:, a, b], r[:, b, a], r[:, b, b] = c, -s, s, c
        out = out @ r
    return out


def _resample_pair(x: "torch.Tensor", y: "torch.Tensor", gen: "torch.Generator", *, elastic: bool,
                   max_angle: float = 15.0, scale_range: float | tuple[float, float] = 0.15, p: float = 0.8,
                   padding: str = "zeros") -> tuple["torch.Tensor", "torch.Tensor"]:
    """Random rotation + isotropic scaling (+ elastic field) applied to images (bilinear) and label
    maps (nearest) with one sampling grid per sample; each sample is transformed with probability
    ``p`` (else the identity). ``scale_range`` is ``r`` for a zoom in ``1 ± r``, or ``(low, high)``
    drawn log-uniformly; ``padding`` is ``zeros`` (background outside) or ``reflection`` (image and
    labels mirrored alike at the border)."""
    import math

    import torch
    import torch.nn.functional as F

    n, nd = x.shape[0], x.dim() - 2
    on = (torch.rand(n, generator=gen) < p).float()
    angles = (torch.rand(n, 1 if nd == 2 else 3, generator=gen) * 2 - 1) * math.radians(max_angle) * on[:, None]
    if isinstance(scale_range, tuple):
        lo, hi = math.log(scale_range[0]), math.log(scale_range[1])
        scale = torch.exp((lo + (hi - lo) * torch.rand(n, generator=gen)) * on)
    else:
        scale = 1 + (torch.rand(n, generator=gen) * 2 - 1) * scale_range * on
    # rotate in voxel units, not in [-1, 1] units, so non-square images are not sheared
    size = torch.tensor([float(v) for v in reversed(x.shape[2:])])  # grid order: x = last axis
    rot = _rotation(angles, nd) * size[None, None, :] / size[None, :, None]  # S^-1 R S, S = diag(size)
    theta = torch.cat([rot / scale[:, None, None], torch.zeros(n, nd, 1)], dim=2)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    if elastic:
        # coarse Gaussian noise upsampled smoothly: displacement ~ 4% of the field of view
        coarse = torch.randn((n, nd) + (4,) * nd, generator=gen) * 0.04 * on.view(-1, *([1] * (nd + 1)))
        field = F.interpolate(coarse, size=x.shape[2:], mode="bilinear" if nd == 2 else "trilinear", align_corners=True)
        grid = grid + field.movedim(1, -1)
    x2 = F.grid_sample(x, grid, mode="bilinear", padding_mode=padding, align_corners=False)
    y2 = F.grid_sample(y.unsqueeze(1).to(x.dtype), grid, mode="nearest", padding_mode=padding, align_corners=False)
    return x2, y2[:, 0].round().to(y.dtype)


def _with_labels(x: "torch.Tensor", y: "torch.Tensor") -> "torch.Tensor":
    """``y`` appended to ``x`` as a last float channel."""
    import torch

    return torch.cat([x, y.unsqueeze(1).to(x.dtype)], dim=1)
