"""Intensity normalisation chosen from the data set's spec (never guessed)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import torch


def to_float_tensor(batch: np.ndarray, normalization: str) -> "torch.Tensor":
    """Turn a uint8 batch ``(N, C, *spatial)`` (any strides) into a normalised float32 tensor.

    ``uint8_unit``: x / 255 mapped to [-1, 1] with mean 0.5 / std 0.5 (MedMNIST's transform).
    ``float``: a float32 batch the loader has normalised already (e.g. MRI z-score), passed through.
    Conversion happens per batch so a data set stays uint8 in memory.
    """
    import torch

    norm = getattr(normalization, "value", normalization)
    if norm not in ("float", "uint8_unit"):
        from openmia.errors import ConfigError

        raise ConfigError(f"normalization {norm!r} is not supported (expected 'uint8_unit' or 'float')")
    arr = np.ascontiguousarray(batch, dtype=np.float32)
    if not arr.flags.writeable:  # a read-only (e.g. memory-mapped) float32 input: torch needs its own copy
        arr = arr.copy()
    t = torch.from_numpy(arr)
    return t if norm == "float" else t.mul_(2.0 / 255.0).sub_(1.0)  # "float": normalised by the loader already


# ----------------------------------------------------------------------------- per-modality normalisation
# Chosen from the data set's spec (modality names from dataset.json, or the spec's own field),
# never guessed from file names or value ranges.


def normalize_ct(image: np.ndarray, *, window: tuple[float, float] = (-1000.0, 1000.0), mean: float | None = None,
                 std: float | None = None) -> np.ndarray:
    """CT: clip Hounsfield units to ``window``, then z-score with the data set's ``mean``/``std``
    (nnU-Net's CT scheme; computed from the training foreground) or, if not given, the image's own."""
    lo, hi = window
    if not lo < hi:
        from openmia.errors import ConfigError

        raise ConfigError(f"CT window must be (low, high) with low < high, found {window}")
    x = np.clip(np.asarray(image, dtype=np.float32), lo, hi)
    m = float(x.mean()) if mean is None else mean
    s = float(x.std()) if std is None else std
    return (x - m) / max(s, 1e-8)


def normalize_mri(image: np.ndarray, *, foreground: np.ndarray | None = None) -> np.ndarray:
    """MRI: z-score over the foreground (``image > 0`` unless a mask is given; MRI intensities have no
    absolute scale and the air background would dominate the statistics); background set to 0."""
    x = np.asarray(image, dtype=np.float32)
    fg = (x > 0) if foreground is None else np.asarray(foreground, dtype=bool)
    if not fg.any():
        return np.zeros_like(x)
    m, s = float(x[fg].mean()), float(x[fg].std())
    return np.where(fg, (x - m) / max(s, 1e-8), 0.0).astype(np.float32)


def normalize_minmax(image: np.ndarray, *, low_pct: float = 0.5, high_pct: float = 99.5) -> np.ndarray:
    """X-ray / photographs: robust min-max to [0, 1] between the given percentiles."""
    x = np.asarray(image, dtype=np.float32)
    lo, hi = np.percentile(x, [low_pct, high_pct])
    return np.clip((x - lo) / max(float(hi - lo), 1e-8), 0.0, 1.0)


def normalize_for_modality(image: np.ndarray, modality: str, **kw) -> np.ndarray:
    """Dispatch on a modality name from a spec: CT | MRI (MR, MRI, T1, T2, FLAIR, ADC) | XR (X-ray,
    US, photo: min-max). An unknown name is an error, not a default."""
    m = modality.strip().upper()
    if m == "CT":
        return normalize_ct(image, **kw)
    if m in ("MR", "MRI", "T1", "T1W", "T1GD", "T2", "T2W", "FLAIR", "ADC", "DWI"):
        return normalize_mri(image, **kw)
    if m in ("XR", "X-RAY", "CR", "DX", "US", "ULTRASOUND", "RGB", "PHOTO", "ENDOSCOPY"):
        return normalize_minmax(image, **kw)
    from openmia.errors import ConfigError

    raise ConfigError(f"no normalisation rule for modality {modality!r}; state it in the data spec as CT, MRI or XR")
