"""Spatial transforms for segmentation data: resampling to a target spacing, and patch sampling
with foreground oversampling (numpy; 2D and 3D)."""

from __future__ import annotations

from typing import Sequence

import numpy as np

from openmia.errors import ConfigError


def resample_to_spacing(image: np.ndarray, spacing: Sequence[float], target: Sequence[float], *,
                        label: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray | None, tuple[float, ...]]:
    """Resample ``image`` ``(C, *spatial)`` (linear) and ``label`` ``(*spatial)`` (nearest) from
    ``spacing`` to ``target`` mm. Returns the arrays and the exact new spacing (sizes are rounded)."""
    from scipy import ndimage

    image = np.asarray(image)
    d = image.ndim - 1
    if len(spacing) != d or len(target) != d or min(*spacing, *target) <= 0:
        raise ConfigError(f"resampling needs {d} positive spacings, found spacing={tuple(spacing)} target={tuple(target)}")
    old = np.array(image.shape[1:])
    new = np.maximum(1, np.round(old * np.asarray(spacing) / np.asarray(target)).astype(int))
    zoom = new / old
    out = np.stack([ndimage.zoom(ch.astype(np.float32), zoom, order=1, mode="nearest", grid_mode=True) for ch in image])
    lab = None
    if label is not None:
        if tuple(label.shape) != tuple(old):
            raise ConfigError(f"label shape {label.shape} differs from image shape {tuple(old)}")
        lab = ndimage.zoom(label, zoom, order=0, mode="nearest", grid_mode=True)
    exact = tuple(float(s * o / n) for s, o, n in zip(spacing, old, new))
    return out, lab, exact


def sample_patch(image: np.ndarray, label: np.ndarray, patch: Sequence[int], rng: np.random.Generator, *,
                 foreground_fraction: float = 0.33) -> tuple[np.ndarray, np.ndarray]:
    """One patch ``(C, *patch)`` / ``(*patch)``; with probability ``foreground_fraction`` centred on
    a random foreground voxel (nnU-Net's oversampling, so small structures are seen), else uniform.
    Images smaller than the patch are zero-padded (label 0)."""
    d = label.ndim
    patch = tuple(int(p) for p in patch)
    if len(patch) != d:
        raise ConfigError(f"patch size {patch} must have one entry per spatial axis ({d})")
    pad = [max(0, p - s) for p, s in zip(patch, label.shape)]
    if any(pad):
        image = np.pad(image, [(0, 0)] + [(q // 2, q - q // 2) for q in pad])
        label = np.pad(label, [(q // 2, q - q // 2) for q in pad])
    shape = np.array(label.shape)
    fg = None
    if rng.random() < foreground_fraction:
        idx = np.flatnonzero(label)
        if idx.size:
            fg = np.array(np.unravel_index(idx[rng.integers(idx.size)], label.shape))
    if fg is not None:
        start = np.clip(fg - np.array(patch) // 2, 0, shape - patch)
    else:
        start = np.array([rng.integers(0, s - p + 1) for s, p in zip(shape, patch)])
    sl = tuple(slice(int(a), int(a) + p) for a, p in zip(start, patch))
    return image[(slice(None), *sl)], label[sl]
