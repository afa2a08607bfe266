"""Synthetic classification data sets: the embedded default, generated deterministically from a
seed, no download.

They are built to be learnable but not trivial: classes differ in *shape* (boundary irregularity,
elongation, hollowness), while size, contrast, position, background texture and noise have the
same distributions in every class. A model that sees only global intensity statistics, or that
destroys spatial structure, therefore scores clearly worse than a working CNN.

==================== ===== ============================================== ==================
name                 dims  classes                                        train / val / test
==================== ===== ============================================== ==================
synthetic/binary     2D    smooth lesion (0) vs irregular lesion (1)      2000 / 400 / 800
synthetic/multiclass 2D    round, elongated, irregular, ring              2000 / 400 / 800
synthetic/multilabel 2D    mass, calcifications, streak (independent)     2000 / 400 / 800
synthetic/binary3d   3D    smooth vs lobulated blob (28^3)                600 / 150 / 300
==================== ===== ============================================== ==================
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from openmia.data.spec import DatasetSpec, Normalization

SIZE = 28
_CITATION = "openmia synthetic data (generated; no patient data)"

SPECS: dict[str, DatasetSpec] = {
    "synthetic/binary": DatasetSpec(
        name="synthetic/binary", task="classification", task_type="binary", dims=2, channels=1, size=SIZE,
        label_names=("smooth", "irregular"), split_sizes=(("train", 2000), ("val", 400), ("test", 800)),
        normalization=Normalization.UINT8_UNIT, licence="CC0 (generated)", citation=_CITATION, source="synthetic",
        description="ultrasound-like 28x28 images with one lesion; positive = irregular (spiculated) boundary; ~35% positive",
    ),
    "synthetic/multiclass": DatasetSpec(
        name="synthetic/multiclass", task="classification", task_type="multi-class", dims=2, channels=1, size=SIZE,
        label_names=("round", "elongated", "irregular", "ring"), split_sizes=(("train", 2000), ("val", 400), ("test", 800)),
        normalization=Normalization.UINT8_UNIT, licence="CC0 (generated)", citation=_CITATION, source="synthetic",
        description="28x28 images with one lesion of four shape types",
    ),
    "synthetic/multilabel": DatasetSpec(
        name="synthetic/multilabel", task="classification", task_type="multi-label", dims=2, channels=1, size=SIZE,
        label_names=("mass", "calcifications", "streak"), split_sizes=(("train", 2000), ("val", 400), ("test", 800)),
        normalization=Normalization.UINT8_UNIT, licence="CC0 (generated)", citation=_CITATION, source="synthetic",
        description="28x28 images with any subset of three faint findings",
    ),
    "synthetic/binary3d": DatasetSpec(
        name="synthetic/binary3d", task="classification", task_type="binary", dims=3, channels=1, size=SIZE,
        label_names=("smooth", "lobulated"), split_sizes=(("train", 600), ("val", 150), ("test", 300)),
        normalization=Normalization.UINT8_UNIT, licence="CC0 (generated)", citation=_CITATION, source="synthetic",
        description="28^3 volumes with one blob; positive = lobulated surface",
    ),
}


def _background(rng: np.random.Generator, n: int, shape: tuple[int, ...]) -> np.ndarray:
    """Smooth tissue-like texture: low-pass filtered noise plus a random gradient (bias field)."""
    from scipy.ndimage import gaussian_filter

    noise = rng.standard_normal((n, *shape)).astype(np.float32)
    tex = gaussian_filter(noise, sigma=(0,) + (2.0,) * len(shape))
    tex /= tex.std() + 1e-8
    grids = np.meshgrid(*[np.linspace(-1, 1, s, dtype=np.float32) for s in shape], indexing="ij")
    bias = sum(rng.uniform(-0.15, 0.15, (n,) + (1,) * len(shape)).astype(np.float32) * g for g in grids)
    return 0.35 + 0.06 * tex + bias


def _to_uint8(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    img = img + rng.normal(0.0, 0.07, img.shape).astype(np.float32)  # speckle-like noise
    return np.clip(np.round(img * 255.0), 0, 255).astype(np.uint8)


def _polar(n: int, rng: np.random.Generator, size: int):
    """Per-image centre, distance and angle maps ``(n, size, size)``."""
    c = rng.uniform(9.0, size - 9.0, (n, 2)).astype(np.float32)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    dy = yy[None] - c[:, 0, None, None]
    dx = xx[None] - c[:, 1, None, None]
    return np.hypot(dy, dx), np.arctan2(dy, dx)


def _boundary(theta: np.ndarray, amp: np.ndarray, rng: np.random.Generator, n: int) -> np.ndarray:
    """Radial modulation 1 + amp * sum_k w_k cos(k theta + phi_k) with k = 3..7 (irregularity)."""
    ks = np.arange(3, 8, dtype=np.float32)
    w = rng.dirichlet(np.ones(len(ks)), size=n).astype(np.float32)
    ph = rng.uniform(0, 2 * np.pi, (n, len(ks))).astype(np.float32)
    mod = sum(w[:, i, None, None] * np.cos(ks[i] * theta + ph[:, i, None, None]) for i in range(len(ks)))
    return 1.0 + amp[:, None, None] * mod * 2.0


def _lesion(dist: np.ndarray, radius: np.ndarray, edge: float = 0.8) -> np.ndarray:
    """Soft-edged mask: sigmoid((radius - distance) / edge)."""
    return 1.0 / (1.0 + np.exp(-(radius - dist) / edge))


def _binary(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    y = (rng.random(n) < 0.35).astype(np.int64)
    # irregularity overlaps a little between classes: smooth 0-0.16, irregular 0.12-0.45
    amp = np.where(y == 1, rng.uniform(0.12, 0.45, n), rng.uniform(0.0, 0.16, n)).astype(np.float32)
    dist, theta = _polar(n, rng, SIZE)
    r0 = rng.uniform(4.5, 7.5, n).astype(np.float32)[:, None, None]
    mask = _lesion(dist, r0 * _boundary(theta, amp, rng, n), edge=0.6)
    # hypo- or hyper-echoic with the same contrast distribution in both classes
    contrast = (rng.choice([-1.0, 1.0], n) * rng.uniform(0.15, 0.35, n)).astype(np.float32)
    img = _background(rng, n, (SIZE, SIZE)) + contrast[:, None, None] * mask
    return _to_uint8(img, rng)[:, None], y


def _multiclass(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    y = rng.integers(0, 4, n).astype(np.int64)
    dist, theta = _polar(n, rng, SIZE)
    r0 = rng.uniform(4.0, 6.5, n).astype(np.float32)
    amp = np.where(y == 2, rng.uniform(0.15, 0.40, n), rng.uniform(0.0, 0.15, n)).astype(np.float32)
    radius = r0[:, None, None] * _boundary(theta, amp, rng, n)
    # elongated: radius depends on angle through an ellipse with axis ratio 1.5-2.3
    ecc = np.where(y == 1, rng.uniform(1.5, 2.3, n), rng.uniform(1.0, 1.35, n)).astype(np.float32)
    rot = rng.uniform(0, np.pi, n).astype(np.float32)[:, None, None]
    ell = 1.0 / np.sqrt((np.cos(theta - rot) / ecc[:, None, None]) ** 2 + np.sin(theta - rot) ** 2)
    radius = radius * ell * np.sqrt(ecc)[:, None, None] / 1.2
    mask = _lesion(dist, radius)
    ring = y == 3
    if ring.any():  # hollow centre: subtract an inner disc
        inner = _lesion(dist[ring], radius[ring] * rng.uniform(0.45, 0.65, ring.sum()).astype(np.float32)[:, None, None])
        mask[ring] = mask[ring] - 0.8 * inner
    contrast = rng.choice([-1.0, 1.0], n).astype(np.float32) * rng.uniform(0.12, 0.3, n).astype(np.float32)
    img = _background(rng, n, (SIZE, SIZE)) + contrast[:, None, None] * mask
    return _to_uint8(img, rng)[:, None], y


def _multilabel(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    y = (rng.random((n, 3)) < np.array([0.4, 0.35, 0.3])).astype(np.int64)
    img = _background(rng, n, (SIZE, SIZE))
    dist, _ = _polar(n, rng, SIZE)
    mass = _lesion(dist, rng.uniform(3.0, 6.0, n).astype(np.float32)[:, None, None])
    img += (y[:, 0] * rng.uniform(0.08, 0.25, n)).astype(np.float32)[:, None, None] * mass
    # calcifications: 3-6 small bright dots
    for i in np.flatnonzero(y[:, 1]):
        for _ in range(rng.integers(3, 7)):
            r, c = rng.integers(3, SIZE - 3, 2)
            img[i, r - 1 : r + 1, c - 1 : c + 1] += rng.uniform(0.12, 0.3)
    # streak: a faint straight line at a random angle
    yy, xx = np.mgrid[0:SIZE, 0:SIZE].astype(np.float32)
    for i in np.flatnonzero(y[:, 2]):
        a = rng.uniform(0, np.pi)
        off = rng.uniform(-6, 6)
        d = np.abs((xx - SIZE / 2) * np.sin(a) - (yy - SIZE / 2) * np.cos(a) - off)
        img[i] += rng.uniform(0.08, 0.2) * np.exp(-(d**2) / 1.0)
    return _to_uint8(img, rng)[:, None], y


def _binary3d(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    y = (rng.random(n) < 0.4).astype(np.int64)
    amp = np.where(y == 1, rng.uniform(0.12, 0.35, n), rng.uniform(0.0, 0.18, n)).astype(np.float32)
    g = np.arange(SIZE, dtype=np.float32)
    zz, yy, xx = np.meshgrid(g, g, g, indexing="ij")
    out = np.empty((n, SIZE, SIZE, SIZE), dtype=np.float32)
    bg = _background(rng, n, (SIZE, SIZE, SIZE))
    for i in range(n):
        c = rng.uniform(10, SIZE - 10, 3)
        d = np.stack([zz - c[0], yy - c[1], xx - c[2]])
        dist = np.sqrt((d**2).sum(0)) + 1e-6
        u = d / dist
        # lobulation: cosines of the direction projected on random axes
        mod = np.zeros_like(dist)
        for _ in range(4):
            v = rng.normal(size=3)
            v /= np.linalg.norm(v)
            mod += np.cos(rng.integers(3, 6) * np.pi * (u * v[:, None, None, None]).sum(0) + rng.uniform(0, 2 * np.pi)) / 4
        radius = rng.uniform(4.0, 7.0) * (1 + 2 * amp[i] * mod)
        contrast = rng.choice([-1, 1]) * rng.uniform(0.12, 0.3)
        out[i] = bg[i] + contrast * _lesion(dist, radius)
    return _to_uint8(out, rng)[:, None], y


_GENERATORS = {"synthetic/binary": _binary, "synthetic/multiclass": _multiclass,
               "synthetic/multilabel": _multilabel, "synthetic/binary3d": _binary3d}


@lru_cache(maxsize=8)
def generate(name: str, seed: int = 0) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """All splits of a synthetic set: ``{split: (images uint8 (N, 1, *spatial), labels)}``.

    Deterministic in ``(name, seed)``; each split has its own random stream so sizes can change
    without changing the other splits.
    """
    spec = SPECS[name]
    out = {}
    for k, (split, n) in enumerate(spec.split_sizes):
        rng = np.random.default_rng([seed, k, sum(map(ord, name))])
        imgs, labels = _GENERATORS[name](rng, n)
        imgs.setflags(write=False)
        out[split] = (imgs, labels)
    return out
