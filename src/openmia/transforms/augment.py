"""Batch augmentation in torch for 2D and 3D images ``(N, C, *spatial)``.

Presets (``data.augment``):
  none      no change
  flip      random flip along every spatial axis
  standard  flip + random translation by up to 1/8 of the size (reflect padding)
  dihedral  flip + random 90-degree rotations (the symmetry group of the square/cube; for
            orientation-free images such as fundus photographs, microscopy, shape masks)
  strong    standard + random 90-degree rotations in a random plane + brightness/contrast jitter
All randomness comes from the given ``torch.Generator`` so runs are reproducible.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

PRESETS = ("none", "flip", "standard", "dihedral", "strong")


def augment_batch(x: "torch.Tensor", preset: str, gen: "torch.Generator") -> "torch.Tensor":
    """Augment a float batch ``(N, C, *spatial)``; returns a new tensor of the same shape.

    Random choices are drawn per sample from ``gen`` (one draw per sample per op).
    """
    import torch

    if preset == "none":
        return x
    if preset not in PRESETS:
        from openmia.errors import ConfigError

        raise ConfigError(f"data.augment: expected one of {PRESETS}, found {preset!r}")
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
    geometric = "dihedral" if preset == "strong" else preset
    both = augment_batch(_with_labels(x, y), geometric, gen)
    x2, y2 = both[:, :-1], both[:, -1].round().to(y.dtype)
    if preset == "strong":
        import torch

        n, nd = x2.shape[0], x2.dim() - 2
        scale = 1 + 0.2 * (torch.rand((n,) + (1,) * (nd + 1), generator=gen) - 0.5)
        shift = 0.2 * (torch.rand((n,) + (1,) * (nd + 1), generator=gen) - 0.5)
        x2 = x2 * scale + shift
    return x2, y2


def _with_labels(x: "torch.Tensor", y: "torch.Tensor") -> "torch.Tensor":
    """``y`` appended to ``x`` as a last float channel."""
    import torch

    return torch.cat([x, y.unsqueeze(1).to(x.dtype)], dim=1)
