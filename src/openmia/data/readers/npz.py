"""MedMNIST ``.npz`` reader: one split at a time, kept uint8, channel-first as a view (no copy)."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from openmia.data.spec import DatasetSpec
from openmia.errors import DataError


def read_split(path: str | Path, spec: DatasetSpec, split: str) -> tuple[np.ndarray, np.ndarray]:
    """Read ``<split>_images`` and ``<split>_labels`` from a MedMNIST archive.

    Returns:
        images: uint8 ``(N, C, *spatial)`` — a view of the stored ``(N, *spatial[, C])`` array.
        labels: int64 ``(N,)``, or ``(N, L)`` for multi-label.

    Only this split's members are decompressed, and nothing is converted to float, so peak memory
    stays near the size of the uint8 array itself.
    """
    path = Path(path)
    try:
        archive = np.load(path, allow_pickle=False)
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
        raise DataError(f"{path}: not a readable .npz archive ({exc}); the file is corrupt or truncated — "
                        f"delete it and run `openmia data fetch {spec.name}` again") from None
    with archive:
        keys = (f"{split}_images", f"{split}_labels")
        missing = [k for k in keys if k not in archive.files]
        if missing:
            raise DataError(f"{path}: missing member(s) {missing}; found {sorted(archive.files)} — not a MedMNIST file for {spec.name}")
        try:
            images = archive[keys[0]]
            labels = archive[keys[1]]
        except (zipfile.BadZipFile, OSError, ValueError, EOFError, KeyError) as exc:
            raise DataError(f"{path}: member {split} cannot be read ({type(exc).__name__}: {exc}); the file is corrupt or truncated") from None
    n = spec.split_size(split)
    spatial = (spec.size,) * spec.dims
    expected = (n, *spatial) + ((spec.channels,) if spec.channels > 1 else ())
    if images.dtype != np.uint8:
        raise DataError(f"{path}: {keys[0]} has dtype {images.dtype}, expected uint8")
    if images.shape != expected:
        raise DataError(f"{path}: {keys[0]} has shape {images.shape}, expected {expected} for {spec.name}")
    n_lab = spec.num_classes if spec.task_type == "multi-label" else 1
    if labels.shape != (n, n_lab):
        raise DataError(f"{path}: {keys[1]} has shape {labels.shape}, expected {(n, n_lab)}")
    labels = labels.astype(np.int64)
    if spec.task_type != "multi-label":
        labels = labels[:, 0]
        bad = np.flatnonzero((labels < 0) | (labels >= spec.num_classes))
    else:
        bad = np.flatnonzero(((labels != 0) & (labels != 1)).any(axis=1))
    if bad.size:
        raise DataError(f"{path}: {keys[1]} has {bad.size} label(s) out of range for {spec.num_classes} classes, "
                        f"first at index {int(bad[0])}: {labels[bad[0]].tolist()}")
    images = np.moveaxis(images, -1, 1) if spec.channels > 1 else images[:, None]
    return images, labels
