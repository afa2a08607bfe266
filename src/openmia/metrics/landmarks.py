"""Landmark localisation metrics: radial error in physical units and success within a radius.

Coordinates are voxel indices along the array axes (``x`` = axis 0, ``y`` = axis 1, ``z`` = axis 2),
possibly fractional; ``spacing`` is the voxel size in mm along the same axes. The radial error of
one landmark is the Euclidean distance between prediction and truth after scaling each axis by
its spacing (``sqrt(sum(((p - t) * s) ** 2))``), the definition used by landmark challenges
(ISBI 2015 cephalometric, Wang et al. 2016) and by RL landmark papers (Alansary et al. 2019).
"""

from __future__ import annotations

import numpy as np


def radial_errors(pred: np.ndarray, truth: np.ndarray, spacing: np.ndarray) -> np.ndarray:
    """Radial error per landmark.

    Args:
        pred: predicted positions ``(N, D)`` in voxels (D = 2 or 3).
        truth: true positions ``(N, D)`` in voxels.
        spacing: voxel size ``(D,)`` or ``(N, D)`` in mm (or 1 for errors in voxels).

    Returns:
        ``(N,)`` distances in mm.
    """
    p, t = np.asarray(pred, dtype=float), np.asarray(truth, dtype=float)
    s = np.broadcast_to(np.asarray(spacing, dtype=float), p.shape)
    if p.shape != t.shape or p.ndim != 2:
        raise ValueError(f"radial_errors: pred {p.shape} and truth {t.shape} must both be (N, D)")
    return np.sqrt((((p - t) * s) ** 2).sum(axis=1))


def success(errors: np.ndarray, radius: float) -> np.ndarray:
    """1.0 where the radial error is at most ``radius`` mm (inclusive), else 0.0; ``(N,)``."""
    return (np.asarray(errors, dtype=float) <= radius).astype(float)


def weighted_median(values: np.ndarray):
    """``stat(w)`` for :func:`openmia.stats.bootstrap.bootstrap_ci`: the median of ``values``
    ``(N,)`` under integer case multiplicities ``w`` ``(B, N)`` — exactly ``np.median`` of the
    resampled (expanded) values, averaging the two middle ones for an even count."""
    v = np.asarray(values, dtype=float)
    order = np.argsort(v, kind="stable")
    vs = v[order]

    def stat(w: np.ndarray) -> np.ndarray:
        w = np.asarray(w, dtype=float)[:, order]
        cw = np.cumsum(w, axis=1)
        tot = cw[:, -1]
        # 0-based positions of the two middle elements of the expanded sorted sample
        k1, k2 = np.floor((tot - 1) / 2), np.floor(tot / 2)
        j1 = np.minimum((cw <= k1[:, None]).sum(axis=1), len(vs) - 1)
        j2 = np.minimum((cw <= k2[:, None]).sum(axis=1), len(vs) - 1)
        out = (vs[j1] + vs[j2]) / 2
        return np.where(tot > 0, out, np.nan)

    return stat
