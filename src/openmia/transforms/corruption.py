"""Corruptions for the generative tasks: inpainting masks and image noise, deterministic from a seed.

Masks are boolean arrays of the image's spatial shape, ``True`` = missing (to be filled). Every
generator draws a target hole fraction uniformly from ``hole_range`` (default 5-25 % of the
voxels) and stops as soon as the mask covers at least that fraction, never more than the range's
upper end:

- ``boxes``   axis-aligned boxes (rectangles / cuboids) of random size and place;
- ``strokes`` free-form brush strokes: random polylines stamped with a disc (2D) or ball (3D)
  brush of random radius, as in Yu et al., "Free-Form Image Inpainting with Gated Convolution"
  (ICCV 2019), Algorithm 1;
- ``slices``  missing slices (slice gaps) along axis 0: whole planes (3D) or rows (2D), in runs of
  1-3 adjacent slices;
- ``mixed``   boxes or strokes, chosen at random per case.

Noise (images on a [0, 1] scale, ``sigma`` in the same unit):

- ``gaussian`` ``x + sigma * n`` (photographs);
- ``rician``   ``sqrt((x + sigma * n1)^2 + (sigma * n2)^2)``, the magnitude of a complex signal with
  Gaussian noise on both channels (MRI magnitude images; Gudbjartsson & Patz 1995).

Colour images: a mask is spatial and shared by every channel (a hole is a hole in every
channel); :func:`add_noise` draws independent noise for every element, i.e. per channel.
Rician noise is for single-channel MRI magnitude images (the generative tasks refuse it for
colour sets).

Determinism: :func:`case_rng` seeds a generator from ``(seed, split, index)``, so the same run
settings give the same holes and noise for every method scored on them (the tasks also save them
in the run directory).
"""

from __future__ import annotations

import zlib
from typing import Sequence

import numpy as np

from openmia.errors import ConfigError, DataError

MASK_KINDS = ("boxes", "strokes", "slices", "mixed")
NOISE_KINDS = ("gaussian", "rician")
DEFAULT_HOLE_RANGE = (0.05, 0.25)


def check_hole_range(hole_range: Sequence[float], where: str = "hole_range") -> tuple[float, float]:
    """``(low, high)`` with ``0 < low <= high < 1``, else ConfigError naming ``where``."""
    try:
        lo, hi = (float(v) for v in hole_range)
    except (TypeError, ValueError):
        raise ConfigError(f"{where}: expected two fractions [low, high], found {hole_range!r}") from None
    if not 0 < lo <= hi < 1:
        raise ConfigError(f"{where}: expected 0 < low <= high < 1 (fractions of the image), found [{lo}, {hi}]")
    return lo, hi


def case_rng(seed: int, split: str, index: int) -> np.random.Generator:
    """The generator of case ``index`` of ``split`` (stable across runs and platforms)."""
    return np.random.default_rng([int(seed), zlib.crc32(split.encode()), int(index)])


def _target(rng: np.random.Generator, hole_range: Sequence[float], n: int) -> tuple[int, int]:
    lo, hi = check_hole_range(hole_range)
    f = rng.uniform(lo, hi)
    return max(1, int(np.ceil(f * n))), max(1, int(np.floor(hi * n)))


def box_mask(shape: Sequence[int], rng: np.random.Generator, hole_range: Sequence[float] = DEFAULT_HOLE_RANGE) -> np.ndarray:
    """Random boxes covering a fraction of ``shape`` drawn from ``hole_range``; bool ``shape``."""
    shape = tuple(int(s) for s in shape)
    m = np.zeros(shape, bool)
    n = m.size
    want, cap = _target(rng, hole_range, n)
    covered = 0
    for _ in range(10000):
        if covered >= want:
            break
        # box edges 10-40 % of each axis; shrink when the box would pass the range's upper end
        for scale in (1.0, 0.5, 0.25, 0.1):
            size = [max(1, int(round(rng.uniform(0.1, 0.4) * s * scale))) for s in shape]
            start = [int(rng.integers(0, s - e + 1)) for s, e in zip(shape, size)]
            sl = tuple(slice(a, a + e) for a, e in zip(start, size))
            new = int((~m[sl]).sum())
            if covered + new <= cap:
                m[sl] = True
                covered += new
                break
    return m


def _ball(radius: int, dims: int) -> np.ndarray:
    """Integer offsets ``(K, dims)`` of a disc/ball of ``radius``."""
    r = np.arange(-radius, radius + 1)
    grid = np.stack(np.meshgrid(*([r] * dims), indexing="ij"), -1).reshape(-1, dims)
    return grid[(grid**2).sum(1) <= radius**2]


def stroke_mask(shape: Sequence[int], rng: np.random.Generator, hole_range: Sequence[float] = DEFAULT_HOLE_RANGE) -> np.ndarray:
    """Free-form strokes (random polylines with a round brush, Yu et al. 2019) covering a fraction
    of ``shape`` drawn from ``hole_range``; bool ``shape`` (2D or 3D)."""
    shape = tuple(int(s) for s in shape)
    dims = len(shape)
    m = np.zeros(shape, bool)
    want, cap = _target(rng, hole_range, m.size)
    extent = np.array(shape, float)
    covered = 0
    while covered < want:
        # brush radius 2-8 % of the smallest edge (at least 1 voxel); a stroke of 2-6 segments
        radius = max(1, int(round(rng.uniform(0.02, 0.08) * min(shape))))
        offs = _ball(radius, dims)
        p = rng.uniform(0, 1, dims) * (extent - 1)
        for _ in range(int(rng.integers(2, 7))):
            d = rng.normal(size=dims)
            d /= np.linalg.norm(d) + 1e-12
            q = np.clip(p + d * rng.uniform(0.1, 0.4) * extent.max(), 0, extent - 1)
            steps = max(1, int(np.ceil(np.linalg.norm(q - p) / max(radius * 0.5, 0.5))))
            for t in np.linspace(0, 1, steps + 1):
                c = np.round(p + t * (q - p)).astype(int)
                pts = c + offs
                pts = pts[np.all((pts >= 0) & (pts < np.array(shape)), axis=1)]
                idx = tuple(pts.T)
                new = int((~m[idx]).sum())
                if covered + new > cap:  # a stamp that would pass the upper end ends the mask here
                    return m if covered >= want else _top_up(m, covered, want, cap, pts)
                m[idx] = True
                covered += new
                if covered >= want:
                    return m
            p = q
    return m


def _top_up(m: np.ndarray, covered: int, want: int, cap: int, pts: np.ndarray) -> np.ndarray:
    """Add the first voxels of the last brush stamp until the mask reaches ``want`` (never ``cap``)."""
    free = pts[~m[tuple(pts.T)]]
    k = min(want - covered, cap - covered, len(free))
    m[tuple(free[:k].T)] = True
    return m


def slice_mask(shape: Sequence[int], rng: np.random.Generator, hole_range: Sequence[float] = DEFAULT_HOLE_RANGE) -> np.ndarray:
    """Missing slices along axis 0 (runs of 1-3 adjacent slices) covering a fraction of the slices
    drawn from ``hole_range``; bool ``shape``. The first and last slice are kept."""
    shape = tuple(int(s) for s in shape)
    n = shape[0]
    lo, hi = check_hole_range(hole_range)
    k_lo, k_hi = int(np.ceil(lo * n)), int(np.floor(hi * n))
    inner = n - 2
    if k_lo > k_hi or k_hi < 1 or inner < 1:
        raise ConfigError(f"slice gaps: {n} slices along axis 0 cannot lose a fraction in [{lo}, {hi}] "
                          f"(needs between {k_lo} and {k_hi} whole slices, first and last kept); use more slices or "
                          "another mask kind")
    k = int(rng.integers(max(k_lo, 1), min(k_hi, inner) + 1))
    missing: set[int] = set()
    while len(missing) < k:
        run = min(int(rng.integers(1, 4)), k - len(missing))
        start = int(rng.integers(1, n - run))  # within 1 .. n-2
        missing.update(range(start, start + run))
    m = np.zeros(shape, bool)
    m[sorted(missing)] = True
    return m


def make_mask(kind: str, shape: Sequence[int], rng: np.random.Generator,
              hole_range: Sequence[float] = DEFAULT_HOLE_RANGE) -> np.ndarray:
    """A mask of ``kind`` (:data:`MASK_KINDS`) for an image of spatial ``shape``; bool ``shape``."""
    if kind not in MASK_KINDS:
        raise ConfigError(f"mask kind: expected one of {', '.join(MASK_KINDS)}, found {kind!r}")
    if len(shape) not in (2, 3) or min(shape) < 2:
        raise DataError(f"masks need a 2D or 3D image with at least 2 voxels per axis, found shape {tuple(shape)}")
    if kind == "mixed":
        kind = ("boxes", "strokes")[int(rng.integers(0, 2))]
    return {"boxes": box_mask, "strokes": stroke_mask, "slices": slice_mask}[kind](shape, rng, hole_range)


def check_mask(mask: np.ndarray, image_shape: Sequence[int], case: str = "") -> np.ndarray:
    """``mask`` as bool after checking it fits an image of spatial ``image_shape`` and leaves
    something to fill and something known; DataError naming ``case`` otherwise."""
    where = f"case {case!r}: " if case else ""
    m = np.asarray(mask)
    if m.ndim == len(image_shape) + 1 and m.shape[0] == 1:  # (1, *spatial) channel axis
        m = m[0]
    if tuple(m.shape) != tuple(image_shape):
        raise DataError(f"{where}mask shape {tuple(m.shape)} differs from the image's spatial shape {tuple(image_shape)}")
    m = m.astype(bool) if m.dtype == bool else m > 0
    if not m.any():
        raise DataError(f"{where}the mask covers nothing (no voxel > 0): there is no hole to fill")
    if m.all():
        raise DataError(f"{where}the mask covers the whole image: nothing is known to fill the hole from")
    return m


def add_noise(image: np.ndarray, kind: str, sigma: float, rng: np.random.Generator) -> np.ndarray:
    """``image`` (any shape, [0, 1] scale; colour ``(C, *spatial)``: independent noise per channel)
    with ``kind`` noise of standard deviation ``sigma``; float32."""
    if kind not in NOISE_KINDS:
        raise ConfigError(f"noise kind: expected one of {', '.join(NOISE_KINDS)}, found {kind!r}")
    if not np.isfinite(sigma) or sigma <= 0:
        raise ConfigError(f"noise sigma: expected a positive number (fraction of the [0, 1] intensity scale), found {sigma!r}")
    x = np.asarray(image, dtype=np.float64)
    n1 = rng.standard_normal(x.shape)
    if kind == "gaussian":
        return (x + sigma * n1).astype(np.float32)
    n2 = rng.standard_normal(x.shape)
    return np.sqrt((x + sigma * n1) ** 2 + (sigma * n2) ** 2).astype(np.float32)


def to_unit_range(image: np.ndarray, normalization: str, case: str = "") -> np.ndarray:
    """An image on the [0, 1] scale the generative tasks score with ``data_range = 1``: uint8
    images divided by 255; float images min-max scaled over the case's own voxels (all channels
    together, so the colour balance is kept). A constant
    float image maps to all zeros (its range is 0; stated convention, no division by zero)."""
    x = np.asarray(image)
    if normalization == "uint8_unit":
        return x.astype(np.float32) / 255.0
    x = x.astype(np.float32)
    if not np.all(np.isfinite(x)):
        raise DataError(f"case {case!r}: the image contains NaN or infinite values")
    lo, hi = float(x.min()), float(x.max())
    return np.zeros_like(x) if hi == lo else (x - lo) / (hi - lo)
