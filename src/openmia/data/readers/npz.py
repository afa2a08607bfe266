"""MedMNIST ``.npz`` reader: one split at a time, kept uint8, channel-first as a view (no copy).

A damaged file never escapes as a ``zlib``/``zipfile``/``MemoryError`` traceback: each member's
``.npy`` header is read and checked against the expected shape and against the member's size in
the zip directory *before* any array is allocated, and decompression errors become a
:class:`~openmia.errors.DataError` that names the file and says how to replace it.
"""

from __future__ import annotations

import math
import tokenize
import zipfile
import zlib
from pathlib import Path
from typing import Any

import numpy as np

from openmia.data.spec import DatasetSpec
from openmia.errors import DataError

# deflate cannot expand data by more than ~1032:1; a zip directory claiming more is forged
_MAX_DEFLATE_RATIO = 1100
_READ_ERRORS = (zipfile.BadZipFile, zlib.error, OSError, ValueError, EOFError, KeyError, MemoryError,
                NotImplementedError, RuntimeError)


def _again(spec: DatasetSpec) -> str:
    size = f" --size {spec.size}" if spec.filename and spec.filename.removesuffix(".npz") != spec.name else ""
    return (f"delete it and run `openmia data fetch {spec.name}{size}` again "
            f"(or `openmia data import {spec.name} FILE{size}` with a good copy)")


def _corrupt(path: Path, spec: DatasetSpec, what: str) -> DataError:
    return DataError(f"{path}: the file is corrupt ({what}); {_again(spec)}")


def _header(zf: zipfile.ZipFile, member: str, path: Path, spec: DatasetSpec) -> tuple[tuple[int, ...], np.dtype]:
    """``(shape, dtype)`` from a member's ``.npy`` header, checked against the member's stored size."""
    names = zf.namelist()
    member = f"{member}.npy" if f"{member}.npy" in names else member  # np.load lists "x" for "x.npy" (or a bare "x")
    if member not in names:
        raise _corrupt(path, spec, f"no member {member} in the zip directory")
    info = zf.getinfo(member)
    if info.compress_type == zipfile.ZIP_DEFLATED and info.file_size > _MAX_DEFLATE_RATIO * info.compress_size + 4096:
        raise _corrupt(path, spec, f"{member} claims {info.file_size} bytes from {info.compress_size} compressed bytes")
    try:
        with zf.open(info) as f:
            version = np.lib.format.read_magic(f)
            if version == (1, 0):
                shape, _, dtype = np.lib.format.read_array_header_1_0(f)
            elif version == (2, 0):
                shape, _, dtype = np.lib.format.read_array_header_2_0(f)
            else:  # 3.0 (utf-8 field names) has no public reader
                shape, _, dtype = np.lib.format._read_array_header(f, version)
            offset = f.tell()
    except Exception as exc:  # numpy's header parser raises ValueError, SyntaxError, tokenize.TokenError, ...
        raise _corrupt(path, spec, f"{member} has an unreadable array header: {type(exc).__name__}: {exc}") from exc
    if dtype.hasobject:
        raise _corrupt(path, spec, f"{member} holds Python objects (pickles are never loaded)")
    nbytes = math.prod(shape) * dtype.itemsize
    if nbytes != info.file_size - offset:
        raise _corrupt(path, spec, f"{member}'s header claims shape {shape} of {dtype} ({nbytes} bytes) but the member "
                                   f"holds {info.file_size - offset} bytes of data")
    return tuple(shape), dtype


def _load(archive: Any, key: str, path: Path, spec: DatasetSpec) -> np.ndarray:
    try:
        return archive[key]
    except (*_READ_ERRORS, SyntaxError, tokenize.TokenError) as exc:
        raise _corrupt(path, spec, f"member {key} cannot be read: {type(exc).__name__}: {exc}") from exc


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
    except _READ_ERRORS as exc:
        raise DataError(f"{path}: not a readable .npz archive ({type(exc).__name__}: {exc}); the file is corrupt or "
                        f"truncated — {_again(spec)}") from exc
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise DataError(f"{path}: expected a .npz archive, found a single .npy array; {_again(spec)}")
    n = spec.split_size(split)
    spatial = (spec.size,) * spec.dims
    expected = (n, *spatial) + ((spec.channels,) if spec.channels > 1 else ())
    n_lab = spec.num_classes if spec.task_type == "multi-label" else 1
    with archive:
        keys = (f"{split}_images", f"{split}_labels")
        missing = [k for k in keys if k not in archive.files]
        if missing:
            raise DataError(f"{path}: missing member(s) {missing}; found {sorted(archive.files)} — not a MedMNIST file for {spec.name}")
        for key in keys:  # headers first: nothing is allocated for a shape the file cannot hold
            shape, dtype = _header(archive.zip, key, path, spec)
            if key == keys[0] and dtype != np.uint8:
                raise DataError(f"{path}: {key} has dtype {dtype}, expected uint8")
            if key == keys[0] and shape != expected:
                raise DataError(f"{path}: {key} has shape {shape}, expected {expected} for {spec.name}")
            if key == keys[1] and shape != (n, n_lab):
                raise DataError(f"{path}: {key} has shape {shape}, expected {(n, n_lab)}")
        images = _load(archive, keys[0], path, spec)
        labels = _load(archive, keys[1], path, spec)
    try:
        labels = labels.astype(np.int64)
    except (TypeError, ValueError) as exc:
        raise DataError(f"{path}: {keys[1]} has dtype {labels.dtype}, expected integer labels") from exc
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
