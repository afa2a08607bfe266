"""Synthetic fluorescence-style cells with known counts (the counting default; no download).

Each image has N cells (N drawn per image) as blurred elliptical blobs of varied size and
brightness, with clumps (cells placed next to earlier ones) and overlaps, on a dim background
with noise; the dots (cell centres) are the annotation.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage


def cells(n_images: int, *, size: int = 128, count_range: tuple[int, int] = (10, 60), clump: float = 0.3,
          seed: int = 0) -> tuple[np.ndarray, list[np.ndarray]]:
    """Images ``(n, 1, size, size)`` float32 in [0, 1] and per image the centres ``(k, 2)`` as ``(x, y)``."""
    rng = np.random.default_rng(seed)
    imgs, dots = [], []
    yy, xx = np.mgrid[:size, :size].astype(np.float32)
    for _ in range(n_images):
        k = int(rng.integers(count_range[0], count_range[1] + 1))
        pts: list[tuple[float, float]] = []
        img = np.zeros((size, size), np.float32)
        for _ in range(k):
            if pts and rng.random() < clump:  # next to an earlier cell: clumps and overlaps
                bx, by = pts[rng.integers(len(pts))]
                ang = rng.uniform(0, 2 * np.pi)
                x, y = bx + 5 * np.cos(ang), by + 5 * np.sin(ang)
            else:
                x, y = rng.uniform(4, size - 4, 2)
            x, y = float(np.clip(x, 2, size - 3)), float(np.clip(y, 2, size - 3))
            pts.append((x, y))
            a, b = rng.uniform(2.0, 3.5, 2)
            th = rng.uniform(0, np.pi)
            dx, dy = xx - x, yy - y
            u, v = dx * np.cos(th) + dy * np.sin(th), -dx * np.sin(th) + dy * np.cos(th)
            img += rng.uniform(0.5, 1.0) * np.exp(-0.5 * ((u / a) ** 2 + (v / b) ** 2))
        img = ndimage.gaussian_filter(img, 0.7) + 0.08 * ndimage.gaussian_filter(rng.random((size, size)), 8)
        img += rng.normal(0, 0.03, img.shape)
        imgs.append(np.clip(img / max(img.max(), 1e-6), 0, 1))
        dots.append(np.asarray(pts, dtype=np.float32).reshape(-1, 2))
    return np.stack(imgs)[:, None].astype(np.float32), dots


def density_map(points: np.ndarray, shape: tuple[int, int], *, sigma: float = 2.0) -> np.ndarray:
    """Sum of unit-mass Gaussians at ``points`` (x, y): integrates to the count (up to border loss)."""
    d = np.zeros(shape, np.float32)
    for x, y in np.asarray(points):
        ix, iy = int(round(x)), int(round(y))
        if 0 <= iy < shape[0] and 0 <= ix < shape[1]:
            d[iy, ix] += 1.0
    return ndimage.gaussian_filter(d, sigma, mode="constant")


def nuclei3d(n_volumes: int, *, size: int = 32, count_range: tuple[int, int] = (3, 15), seed: int = 0
             ) -> tuple[np.ndarray, list[np.ndarray]]:
    """3D fluorescence-like nuclei: volumes ``(n, 1, size, size, size)`` float32 in [0, 1] (array
    order z, y, x) and per volume the centres ``(k, 3)`` as ``(x, y, z)`` in voxels.

    Nuclei are ellipsoids (semi-axes 1.5-3 voxels) of varied brightness, a quarter of them placed
    next to an earlier one (touching pairs), on a smooth background with noise and a dimming
    with depth (as in a confocal stack).
    """
    rng = np.random.default_rng(seed)
    zz, yy, xx = np.mgrid[:size, :size, :size].astype(np.float32)
    vols, dots = [], []
    for _ in range(n_volumes):
        k = int(rng.integers(count_range[0], count_range[1] + 1))
        pts: list[np.ndarray] = []
        vol = np.zeros((size, size, size), np.float32)
        for _ in range(k):
            if pts and rng.random() < 0.25:
                d = rng.normal(size=3)
                c = pts[rng.integers(len(pts))] + 4.5 * d / np.linalg.norm(d)
            else:
                c = rng.uniform(3, size - 3, 3)
            c = np.clip(c, 2, size - 3)
            pts.append(c)
            a = rng.uniform(1.5, 3.0, 3)
            vol += rng.uniform(0.5, 1.0) * np.exp(-0.5 * (((xx - c[0]) / a[0]) ** 2 + ((yy - c[1]) / a[1]) ** 2
                                                      + ((zz - c[2]) / a[2]) ** 2))
        vol *= np.linspace(1.0, 0.6, size, dtype=np.float32)[:, None, None]  # dimmer deeper in the stack
        vol += 0.1 * ndimage.gaussian_filter(rng.random(vol.shape).astype(np.float32), 4) + rng.normal(0, 0.04, vol.shape)
        vols.append(np.clip(vol / max(float(vol.max()), 1e-6), 0, 1))
        dots.append(np.asarray(pts, dtype=np.float32).reshape(-1, 3))
    return np.stack(vols)[:, None].astype(np.float32), dots
