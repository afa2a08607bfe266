"""Synthetic segmentation phantoms (2D and 3D), deterministic from a seed — the offline default.

Each image holds an "organ" (label 1): a smooth star-shaped body with its own texture, and 0–3
"lesions" (label 2) inside it, of varied size and contrast (some hypo-, some hyper-intense), on a
textured background; a smooth multiplicative bias field and Gaussian noise are added. The organ's
mean intensity overlaps the background's and the lesions' contrast varies, so a global intensity
threshold does not segment them: a model has to use shape and texture.

Images are float32 in roughly [0, 1] with ``(N, 1, *spatial)``; masks uint8 ``(N, *spatial)``.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from scipy import ndimage

from openmia.data.spec import DatasetSpec, Normalization

LABELS = ("background", "organ", "lesion")
_CITATION = "openmia synthetic data (generated; no patient data)"

SPECS: dict[str, DatasetSpec] = {
    "synthetic/seg2d": DatasetSpec(
        name="synthetic/seg2d", task="segmentation", task_type="segmentation", dims=2, channels=1, size=64,
        label_names=LABELS, split_sizes=(("train", 240), ("val", 60), ("test", 120)),
        normalization=Normalization.UINT8_UNIT, licence="CC0 (generated)", citation=_CITATION, source="synthetic",
        spacing=(1.0, 1.0), description="64x64 phantoms: a textured organ (1) with 0-3 lesions (2), bias field and noise",
    ),
    "synthetic/seg3d": DatasetSpec(
        name="synthetic/seg3d", task="segmentation", task_type="segmentation", dims=3, channels=1, size=32,
        label_names=LABELS, split_sizes=(("train", 80), ("val", 20), ("test", 40)),
        normalization=Normalization.UINT8_UNIT, licence="CC0 (generated)", citation=_CITATION, source="synthetic",
        spacing=(1.0, 1.0, 1.0), description="32^3 phantoms: a textured organ (1) with 0-3 lesions (2), bias field and noise",
    ),
}


def _smooth_noise(rng: np.random.Generator, shape: tuple[int, ...], sigma: float) -> np.ndarray:
    f = ndimage.gaussian_filter(rng.standard_normal(shape), sigma)
    return f / (f.std() + 1e-8)


def _phantom(rng: np.random.Generator, shape: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    d = len(shape)
    grid = np.meshgrid(*[np.linspace(-1, 1, s) for s in shape], indexing="ij")
    centre = rng.uniform(-0.2, 0.2, d)
    rel = [g - c for g, c in zip(grid, centre)]
    r = np.sqrt(sum(x**2 for x in rel))
    # star-shaped organ: radius modulated by a smooth function of direction
    radius = 0.55 + 0.12 * _smooth_noise(rng, shape, sigma=max(shape) / 6)
    organ = r < radius
    mask = organ.astype(np.uint8)
    bg_level, organ_level = rng.uniform(0.35, 0.55), rng.uniform(0.35, 0.55)
    img = np.where(organ, organ_level + 0.06 * _smooth_noise(rng, shape, 1.0),
                   bg_level + 0.10 * _smooth_noise(rng, shape, 2.5))
    # a bright rim makes the organ boundary visible without making its inside separable
    rim = organ & ~ndimage.binary_erosion(organ, iterations=max(1, min(shape) // 32))
    img = img + 0.12 * rim
    for _ in range(rng.integers(0, 4)):
        inside = np.argwhere(ndimage.binary_erosion(organ, iterations=max(2, min(shape) // 10)))
        if len(inside) == 0:
            break
        c = inside[rng.integers(len(inside))]
        rad = rng.uniform(0.03, 0.15) * min(shape)
        dist = np.sqrt(sum((np.arange(s).reshape([-1 if i == a else 1 for i in range(d)]) - c[a]) ** 2
                           for a, s in enumerate(shape)))
        les = (dist < rad * (1 + 0.25 * _smooth_noise(rng, shape, max(1.0, rad / 2)))) & organ
        mask[les] = 2
        img = img + np.where(les, rng.choice([-1, 1]) * rng.uniform(0.08, 0.25), 0.0)
    bias = np.exp(0.15 * _smooth_noise(rng, shape, max(shape) / 3))
    img = img * bias + rng.normal(0, 0.04, shape)
    return np.clip(img, 0, 1).astype(np.float32), mask


def phantoms(n: int, *, dims: int = 2, size: int = 64, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``n`` phantoms: images ``(n, 1, *spatial)`` float32 and masks ``(n, *spatial)`` uint8."""
    if dims not in (2, 3) or n < 1 or size < 16:
        raise ValueError(f"phantoms need dims 2 or 3, n >= 1 and size >= 16, found dims={dims}, n={n}, size={size}")
    rng = np.random.default_rng(seed)
    shape = (size,) * dims
    imgs, masks = zip(*(_phantom(rng, shape) for _ in range(n)))
    return np.stack(imgs)[:, None], np.stack(masks)


@lru_cache(maxsize=4)
def generate(name: str, seed: int = 0) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """All splits of a phantom set: ``{split: (images uint8 (N, 1, *spatial), masks uint8 (N, *spatial))}``;
    each split has its own random stream."""
    spec = SPECS[name]
    out = {}
    for k, (split, n) in enumerate(spec.split_sizes):
        img, mask = phantoms(n, dims=spec.dims, size=spec.size, seed=int(np.random.SeedSequence([seed, k, spec.dims]).generate_state(1)[0]))
        img = np.round(img * 255).astype(np.uint8)
        img.setflags(write=False)
        mask.setflags(write=False)
        out[split] = (img, mask)
    return out
