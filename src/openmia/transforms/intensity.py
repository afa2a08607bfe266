"""Intensity normalisation chosen from the data set's spec (never guessed)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import torch


def to_float_tensor(batch: np.ndarray, normalization: str) -> "torch.Tensor":
    """Turn a uint8 batch ``(N, C, *spatial)`` (any strides) into a normalised float32 tensor.

    ``uint8_unit``: x / 255 mapped to [-1, 1] with mean 0.5 / std 0.5 (MedMNIST's transform).
    Conversion happens per batch so a data set stays uint8 in memory.
    """
    import torch

    norm = getattr(normalization, "value", normalization)
    if norm != "uint8_unit":
        from openmia.errors import ConfigError

        raise ConfigError(f"normalization {norm!r} is not supported for classification batches (expected 'uint8_unit')")
    t = torch.from_numpy(np.ascontiguousarray(batch)).to(torch.float32)
    return t.mul_(2.0 / 255.0).sub_(1.0)
