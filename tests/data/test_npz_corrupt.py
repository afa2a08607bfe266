"""Issue 21 fault 2: a corrupt MedMNIST .npz (intact zip directory) is a clear DataError, never a
zlib/zip/MemoryError traceback, and a crafted header is rejected before anything is allocated."""

from __future__ import annotations

import dataclasses
import io
import zipfile

import numpy as np
import pytest

from openmia.data.catalog import get_spec
from openmia.data.readers.npz import read_split
from openmia.errors import DataError


def toy_spec(n: int = 4):
    return dataclasses.replace(get_spec("retinamnist"), split_sizes=(("train", n), ("val", n), ("test", n)))


def write_npz(path, *, compressed: bool = True, n: int = 4):
    rng = np.random.default_rng(0)
    arrays = {"train_images": rng.integers(0, 255, (n, 28, 28, 3), dtype=np.uint8),
              "train_labels": rng.integers(0, 5, (n, 1))}
    (np.savez_compressed if compressed else np.savez)(path, **arrays)
    return path


def test_valid_toy_file_reads(tmp_path):
    images, labels = read_split(write_npz(tmp_path / "retinamnist.npz"), toy_spec(), "train")
    assert images.shape == (4, 3, 28, 28) and labels.shape == (4,)


def test_flipped_byte_inside_a_member_is_a_clear_error(tmp_path):
    path = write_npz(tmp_path / "retinamnist.npz")
    with zipfile.ZipFile(path) as z:
        info = z.getinfo("train_images.npy")
    raw = bytearray(path.read_bytes())
    start = info.header_offset + 30 + len(info.filename.encode()) + len(info.extra)
    for offset in (20, info.compress_size // 2, info.compress_size - 8):
        bad = bytearray(raw)
        bad[start + offset] ^= 0xFF
        path.write_bytes(bytes(bad))
        with pytest.raises(DataError, match=r"retinamnist\.npz: .*corrupt.*openmia data fetch retinamnist.*openmia data import retinamnist"):
            read_split(path, toy_spec(), "train")


def _npy_bytes(header_shape: tuple[int, ...], payload: bytes) -> bytes:
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": "|u1", "fortran_order": False, "shape": header_shape})
    return buf.getvalue() + payload


@pytest.mark.parametrize("shape", [(10**7, 10**7), (4, 28, 28, 3 * 10**6)])
def test_header_claiming_a_huge_array_is_rejected_before_allocation(tmp_path, shape):
    path = tmp_path / "retinamnist.npz"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("train_images.npy", _npy_bytes(shape, b"\0" * 64))
        buf = io.BytesIO()
        np.save(buf, np.zeros((4, 1), np.int64))
        z.writestr("train_labels.npy", buf.getvalue())
    with pytest.raises(DataError, match=r"retinamnist\.npz: .*corrupt"):
        read_split(path, toy_spec(), "train")


def test_header_shorter_than_its_data_and_garbage_header(tmp_path):
    path = tmp_path / "retinamnist.npz"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("train_images.npy", b"\x93NUMPY\x01\x00\x10\x00{'descr': <<<<<")
        z.writestr("train_labels.npy", b"")
    with pytest.raises(DataError, match=r"retinamnist\.npz: .*corrupt"):
        read_split(path, toy_spec(), "train")


def test_member_name_with_a_nul_byte_is_a_clear_error(tmp_path):
    """Found by tests/fuzz: a NUL in a central-directory name ("train_images\\0npy") made zipfile
    list "train_images", and looking up "train_images.npy" raised a bare KeyError."""
    path = write_npz(tmp_path / "retinamnist.npz", compressed=False)
    raw = path.read_bytes()
    central = raw.rindex(b"train_images.npy")  # the central directory's copy of the name
    path.write_bytes(raw[:central] + b"train_images\x00npy" + raw[central + len(b"train_images.npy"):])
    with pytest.raises(DataError, match=r"retinamnist\.npz: .*corrupt"):
        read_split(path, toy_spec(), "train")


def test_header_that_does_not_parse_is_a_clear_error(tmp_path):
    """Found by tests/fuzz (slow profile): a header "'shape': )3, 28, 28, 3)" made numpy's parser
    raise tokenize.TokenError, which escaped."""
    path = tmp_path / "retinamnist.npz"
    header = _npy_bytes((4, 28, 28, 3), b"").replace(b"(4, 28, 28, 3)", b")4, 28, 28, 3)")
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("train_images.npy", header + b"\0" * (4 * 28 * 28 * 3))
        z.writestr("train_labels.npy", _npy_bytes((4, 1), b"\0" * 4))
    with pytest.raises(DataError, match=r"retinamnist\.npz: .*corrupt.*unreadable array header"):
        read_split(path, toy_spec(), "train")
