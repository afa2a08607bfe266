"""Synthetic landmark images (2D and 3D) with known points, deterministic from a seed.

Each image holds two landmark structures on a textured background with a smooth bias field and
noise: ``blob`` — a bright Gaussian blob whose centre is the landmark — and ``ring`` — a bright
annulus (a dark centre) whose centre is the landmark. Two dimmer distractor blobs of the
``blob``'s size are added, so "the brightest voxel" is not the answer: a model has to use the shape
and the relative brightness. Positions are uniform in the central 70 % of each axis (fractional
coordinates: the true centre of the drawn structure, in voxels along the array axes).

Images: uint8 ``(N, 1, *spatial)``; points: float32 ``(N, 2, D)`` (landmarks ``blob``, ``ring``).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from scipy import ndimage

from openmia.data.spec import DatasetSpec, Normalization

LANDMARKS = ("blob", "ring")
_CITATION = "openmia synthetic data (generated; no patient data)"


def _spec(dims: int, size: int, sizes: tuple[int, int, int]) -> DatasetSpec:
    name = f"synthetic/landmarks{dims}d"
    return DatasetSpec(
        name=name, task="landmarks", task_type="landmarks", dims=dims, channels=1, size=size, label_names=LANDMARKS,
        split_sizes=(("train", sizes[0]), ("val", sizes[1]), ("test", sizes[2])), normalization=Normalization.UINT8_UNIT,
        licence="CC0 (generated)", citation=_CITATION, source="synthetic", spacing=(1.0,) * dims,
        description=f"{size}^{dims} images with a bright blob and a ring (landmarks = their centres), two dimmer "
                    "distractor blobs, texture, bias field and noise",
    )


SPECS: dict[str, DatasetSpec] = {
    "synthetic/landmarks2d": _spec(2, 64, (160, 40, 80)),
    "synthetic/landmarks3d": _spec(3, 32, (80, 20, 40)),
}


def _dist(shape: tuple[int, ...], c: np.ndarray) -> np.ndarray:
    grids = np.meshgrid(*[np.arange(s, dtype=float) for s in shape], indexing="ij")
    return np.sqrt(sum((g - ci) ** 2 for g, ci in zip(grids, c)))


def _image(rng: np.random.Generator, shape: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    size = min(shape)
    lo, hi = 0.15 * (np.array(shape) - 1), 0.85 * (np.array(shape) - 1)
    sigma = size / 16  # blob width
    pts = []
    while len(pts) < 4:  # blob, ring, 2 distractors, at least 3 sigma apart
        c = rng.uniform(lo, hi)
        if all(np.linalg.norm(c - p) > 4 * sigma for p in pts):
            pts.append(c)
    noise = ndimage.gaussian_filter(rng.standard_normal(shape), size / 12)
    img = 0.3 + 0.08 * noise / (noise.std() + 1e-8)
    img = img + 0.55 * np.exp(-_dist(shape, pts[0]) ** 2 / (2 * sigma**2))
    r = _dist(shape, pts[1])
    img = img + 0.5 * np.exp(-((r - 1.6 * sigma) ** 2) / (2 * (0.5 * sigma) ** 2))
    for c in pts[2:]:
        img = img + rng.uniform(0.2, 0.3) * np.exp(-_dist(shape, c) ** 2 / (2 * sigma**2))
    field = ndimage.gaussian_filter(rng.standard_normal(shape), size / 3)
    bias = np.exp(0.1 * field / (field.std() + 1e-8))
    img = img * bias + rng.normal(0, 0.04, shape)
    return np.clip(img, 0, 1).astype(np.float32), np.array(pts[:2], dtype=np.float32)


def landmark_images(n: int, *, dims: int = 2, size: int = 64, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``n`` images ``(n, 1, *spatial)`` float32 in [0, 1] and their points ``(n, 2, dims)`` float32."""
    if dims not in (2, 3) or n < 1 or size < 16:
        raise ValueError(f"landmark_images needs dims 2 or 3, n >= 1 and size >= 16, found dims={dims}, n={n}, size={size}")
    rng = np.random.default_rng(seed)
    imgs, pts = zip(*(_image(rng, (size,) * dims) for _ in range(n)))
    return np.stack(imgs)[:, None], np.stack(pts)


@lru_cache(maxsize=4)
def generate(name: str, seed: int = 0) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """All splits: ``{split: (images uint8 (N, 1, *spatial), points float32 (N, 2, D))}``, read-only;
    each split has its own random stream."""
    spec = SPECS[name]
    out = {}
    for k, (split, n) in enumerate(spec.split_sizes):
        s = int(np.random.SeedSequence([seed, k, spec.dims, 17]).generate_state(1)[0])
        img, pts = landmark_images(n, dims=spec.dims, size=spec.size, seed=s)
        img = np.round(img * 255).astype(np.uint8)
        img.setflags(write=False)
        pts.setflags(write=False)
        out[split] = (img, pts)
    return out
