"""Augmentation of images with boxes or points (detection and counting): random flips / right-angle
rotations and random crops that move the annotations with the image."""

from __future__ import annotations

import numpy as np

AUGMENTS = ("none", "flip", "dihedral")  # the presets that keep boxes axis-aligned


def augment_objects(x, objects: list[np.ndarray], kind: str, mode: str, gen):
    """Random flips of each image in ``x`` ``(N, C, *spatial)`` with its boxes ``(k, 4)`` / points
    ``(k, dims)`` (x, y[, z]) in pixels: ``flip`` flips every spatial axis with probability 1/2;
    ``dihedral`` also swaps x and y (with the flips: all 8 right-angle symmetries of a square
    image; in 3D the volume's x-y plane). Returns the new tensor and object arrays."""
    import torch

    if mode == "none":
        return x, objects
    n, dims = x.shape[0], x.dim() - 2
    extent = list(x.shape[2:][::-1])  # x, y[, z]
    draws = torch.rand(n, dims + 1, generator=gen).numpy() < 0.5
    xs, out = [], []
    for i in range(n):
        xi, o = x[i], np.array(objects[i], dtype=np.float32, copy=True)
        if mode == "dihedral" and draws[i, dims] and extent[0] == extent[1]:
            xi = xi.transpose(-1, -2)
            o = o[:, [1, 0, 3, 2]] if kind == "box" else o[:, [1, 0, *range(2, dims)]]
        for a in range(dims):  # a = 0 is x (the last array axis)
            if not draws[i, a]:
                continue
            xi = torch.flip(xi, (xi.dim() - 1 - a,))
            if kind == "box":
                o[:, [a, a + 2]] = extent[a] - o[:, [a + 2, a]]
            else:
                o[:, a] = extent[a] - 1 - o[:, a]
        xs.append(xi)
        out.append(o)
    return torch.stack(xs), out


def crop_objects(x, objects: list[np.ndarray], classes: list[np.ndarray], size: int, kind: str, gen):
    """A random ``size``-sided crop of each image in ``x`` ``(N, C, *spatial)`` (axes shorter than
    ``size`` are kept whole). Points inside the crop are kept and shifted; boxes are kept when their
    centre is inside, shifted and clipped to the crop. Returns the cropped tensor and the object and
    class arrays."""
    import torch

    dims = x.dim() - 2
    extent = list(x.shape[2:][::-1])  # x, y[, z]
    side = [min(size, e) for e in extent]
    starts = (torch.rand(x.shape[0], dims, generator=gen).numpy() * (np.array(extent) - np.array(side) + 1)).astype(int)
    xs, objs, cls = [], [], []
    for i in range(x.shape[0]):
        lo, hi = starts[i], starts[i] + np.array(side)
        sl = tuple(slice(int(a), int(b)) for a, b in zip(lo[::-1], hi[::-1]))  # array order: (z,) y, x
        xs.append(x[(i, slice(None), *sl)])
        o = np.asarray(objects[i], dtype=np.float32).reshape(-1, 2 * dims if kind == "box" else dims)
        centre = (o[:, :dims] + o[:, dims:]) / 2 if kind == "box" else o
        keep = np.all((centre >= lo) & (centre < hi), axis=1)
        o = o[keep] - np.tile(lo, 2 if kind == "box" else 1).astype(np.float32)
        if kind == "box":
            o = np.clip(o, 0, np.tile(side, 2)).astype(np.float32)
        objs.append(o)
        cls.append(np.asarray(classes[i])[keep])
    return torch.stack(xs), objs, cls
