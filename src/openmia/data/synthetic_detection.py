"""Synthetic ultrasound-like images with lesion boxes (the offline detection default; no download).

Each image is a textured "tissue" background (smooth echogenicity variation, a multiplicative
attenuation/bias field, correlated multiplicative speckle and Gaussian noise) with 0..max_lesions
non-overlapping lesions of 8-40 px, each of one of two classes that differ in appearance:

* class 0 (e.g. "benign"): smooth, round-to-oval, dark (hypo-echoic, cyst-like) with a soft edge;
* class 1 (e.g. "malignant"): irregular/lobulated outline, moderately bright heterogeneous interior
  and a brighter rim.

Lesion contrast is of the order of the background's variation, so a global intensity threshold
neither finds the lesions nor tells the classes apart: a detector has to use local shape and
texture. Boxes are the tight bounds of each lesion's visible extent (interior plus rim), in
continuous pixel coordinates (pixel ``i`` spans ``[i, i + 1)``, as in
:mod:`openmia.metrics.detection`), so they always lie inside the image.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
from scipy import ndimage


def _smooth_noise(rng: np.random.Generator, shape: tuple[int, ...], sigma: float) -> np.ndarray:
    f = ndimage.gaussian_filter(rng.standard_normal(shape), sigma)
    return f / (f.std() + 1e-8)


def _shape(rng: np.random.Generator, cls: int, r0: float) -> tuple[np.ndarray, np.ndarray]:
    """A lesion's interior and rim masks on a local square patch centred on the lesion."""
    th0 = rng.uniform(0, 2 * np.pi)
    if cls == 0:  # smooth oval: only the 2nd harmonic (elongation)
        harm = [(2, rng.uniform(0.0, 0.2), th0)]
    else:  # lobulated/spiculated: several higher harmonics
        harm = [(k, rng.uniform(0.05, 0.14), rng.uniform(0, 2 * np.pi)) for k in rng.choice(np.arange(3, 9), 3, False)]
    rim = 0 if cls == 0 else 2
    half = int(np.ceil(r0 * (1 + sum(a for _, a, _ in harm)))) + rim + 1
    yy, xx = np.mgrid[-half:half + 1, -half:half + 1].astype(float)
    ang = np.arctan2(yy, xx)
    radius = r0 * (1 + sum(a * np.cos(k * (ang - ph)) for k, a, ph in harm))
    inside = np.hypot(xx, yy) < radius
    ring = ndimage.binary_dilation(inside, iterations=rim) & ~inside if rim else np.zeros_like(inside)
    return inside, ring


def lesions(n_images: int, *, size: int = 128, max_lesions: int = 4, classes: Sequence[str] = ("benign", "malignant"),
            seed: int = 0, return_masks: bool = False
            ) -> tuple[np.ndarray, list[np.ndarray], list[np.ndarray]] | tuple[
                np.ndarray, list[np.ndarray], list[np.ndarray], list[np.ndarray]]:
    """``n_images`` synthetic images with lesion boxes, deterministic from ``seed``.

    Returns images ``(n, 1, size, size)`` float32 in [0, 1]; per image the boxes ``(k, 4)`` float32
    x1 y1 x2 y2 and labels ``(k,)`` int64 (indices into ``classes``: 0 = smooth dark, 1 = irregular
    bright with a rim), ``k`` in ``0..max_lesions`` (uniform, so about ``1 / (max_lesions + 1)`` of
    the images have none; fewer when lesions do not fit without overlapping). With
    ``return_masks`` also the instance masks ``(k, size, size)`` bool the boxes were derived from.
    ``classes`` only names the (one or two) classes; its length sets how many are drawn.
    """
    if n_images < 1 or size < 48 or max_lesions < 0 or len(classes) not in (1, 2):
        raise ValueError(f"lesions need n_images >= 1, size >= 48, max_lesions >= 0 and 1 or 2 classes, found "
                         f"n_images={n_images}, size={size}, max_lesions={max_lesions}, classes={tuple(classes)}")
    rng = np.random.default_rng(seed)
    shape = (size, size)
    r_max = min(17.0, (size / 2 - 4) / 1.5)  # largest mean radius that still fits with lobes and rim
    imgs, all_boxes, all_labels, all_masks = [], [], [], []
    for _ in range(n_images):
        # echogenicity map: tissue level with large- and small-scale structure
        echo = rng.uniform(0.35, 0.5) + 0.07 * _smooth_noise(rng, shape, size / 10) + 0.03 * _smooth_noise(rng, shape, 2)
        occupied = np.zeros(shape, bool)
        boxes, labels, masks = [], [], []
        for _ in range(int(rng.integers(0, max_lesions + 1))):
            cls = int(rng.integers(len(classes)))
            r0 = float(np.exp(rng.uniform(np.log(4.5), np.log(r_max))))  # log-uniform: as many small as large
            inside, ring = _shape(rng, cls, r0)
            half = inside.shape[0] // 2
            for _try in range(30):  # rejection-sample a position where it does not touch earlier lesions
                cy, cx = (int(v) for v in rng.integers(half, size - half, 2))
                sl = (slice(cy - half, cy + half + 1), slice(cx - half, cx + half + 1))
                full = inside | ring
                if not (occupied[sl] & ndimage.binary_dilation(full, iterations=3)).any():
                    break
            else:
                continue  # no room left: fewer lesions in this image
            m = np.zeros(shape, bool)
            m[sl] = full
            occupied |= m
            # soft edges (sigma < 1 px keeps the visible extent = the mask, to within half a pixel)
            a_in = np.zeros(shape)
            a_in[sl] = inside
            a_in = ndimage.gaussian_filter(a_in, 1.0 if cls == 0 else 0.6)
            if cls == 0:  # dark, homogeneous
                echo = echo * (1 - rng.uniform(0.45, 0.7) * a_in)
            else:  # bright, heterogeneous interior with a brighter rim
                tex = 0.06 * _smooth_noise(rng, shape, 1.5)
                a_rim = np.zeros(shape)
                a_rim[sl] = ring
                a_rim = ndimage.gaussian_filter(a_rim, 0.6)
                echo = echo + a_in * (rng.uniform(0.15, 0.25) + tex) + a_rim * rng.uniform(0.25, 0.35)
            ys, xs = np.nonzero(m)
            boxes.append([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1])
            labels.append(cls)
            masks.append(m)
        bias = np.exp(0.15 * _smooth_noise(rng, shape, size / 3))  # attenuation / gain variation
        speckle = ndimage.gaussian_filter(rng.gamma(4.0, 0.25, shape), 0.7)  # correlated, mean 1
        img = echo * bias * speckle + rng.normal(0, 0.02, shape)
        imgs.append(np.clip(img, 0, 1))
        all_boxes.append(np.asarray(boxes, np.float32).reshape(-1, 4))
        all_labels.append(np.asarray(labels, np.int64))
        all_masks.append(np.asarray(masks, bool).reshape(-1, size, size))
    images = np.stack(imgs)[:, None].astype(np.float32)
    if return_masks:
        return images, all_boxes, all_labels, all_masks
    return images, all_boxes, all_labels
