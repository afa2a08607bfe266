"""Tiny user data sets of each layout, written into a temporary folder by the user-data tests."""

from __future__ import annotations

import json

import numpy as np
from PIL import Image

SPLITS = ("train", "val", "test")


def _png(path, arr):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.asarray(arr, np.uint8)).save(path)
    return path


def _nii(path, arr, affine=None):
    import nibabel as nib

    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(nib.Nifti1Image(np.asarray(arr), np.eye(4) if affine is None else affine), str(path))
    return path


def _disk(h, w, r, value=220):
    yy, xx = np.mgrid[:h, :w]
    return ((yy - h / 2) ** 2 + (xx - w / 2) ** 2 < r**2).astype(np.uint8) * value


def _class_folders(root, n=(12, 9), rgb=False):
    rng = np.random.default_rng(0)
    for k, cls in enumerate(("circle", "square")):
        for i in range(n[k]):
            h, w = int(rng.integers(20, 40)), int(rng.integers(20, 40))
            img = _disk(h, w, 6) if cls == "circle" else np.pad(np.full((8, 8), 200), ((h - 8) // 2, (w - 8) // 2))
            img = np.stack([img] * 3, -1) if rgb else img
            _png(root / cls / f"img_{i:03d}.png", img)
    return root


def _seg2d(root, n=12):
    rng = np.random.default_rng(1)
    for i in range(n):
        h, w = int(rng.integers(24, 40)), int(rng.integers(24, 40))
        mask = _disk(h, w, 5, 255)
        _png(root / "images" / f"case{i:02d}.png", mask // 2 + rng.integers(0, 40, (h, w)))
        _png(root / "masks" / f"case{i:02d}.png", mask)
    return root


def _vol(shape, seed, labels=3):
    rng = np.random.default_rng(seed)
    img = rng.normal(100, 10, shape).astype(np.float32)
    lab = np.zeros(shape, np.uint8)
    lab[1:3, 1:3, 1:3] = 1
    lab[-3:-1, -3:-1, -3:-1] = labels - 1
    return img, lab


def _seg3d(root, n=10, spacing=(1.0, 1.0, 2.0)):
    for i in range(n):
        img, lab = _vol((8 + i % 3, 9, 6 + i % 2), i)
        aff = np.diag([*spacing, 1.0])
        _nii(root / "images" / f"vol{i:02d}.nii.gz", img, aff)
        _nii(root / "masks" / f"vol{i:02d}.nii.gz", lab, aff)
    (root / "dataset.json").write_text(json.dumps({"modality": "MRI", "labels": {"0": "background", "1": "a", "2": "b"}}))
    return root


def _nnunet(root, n_tr=10, n_ts=3, channels=("T2", "ADC")):
    meta = {"channel_names": {str(i): c for i, c in enumerate(channels)}, "labels": {"background": 0, "pz": 1, "tz": 2},
            "file_ending": ".nii.gz", "numTraining": n_tr, "name": "Dataset001_Toy"}
    (root).mkdir(parents=True, exist_ok=True)
    (root / "dataset.json").write_text(json.dumps(meta))
    for sub, n, off in (("Tr", n_tr, 0), ("Ts", n_ts, 100)):
        for i in range(n):
            img, lab = _vol((10, 8 + i % 2, 7), i + off)
            for c in range(len(channels)):
                _nii(root / f"images{sub}" / f"toy_{i + off:03d}_{c:04d}.nii.gz", img + c)
            _nii(root / f"labels{sub}" / f"toy_{i + off:03d}.nii.gz", lab)
    return root


def _check_partition(name, all_ids, **kw):
    from openmia.data.catalog import load_split

    got = {s: load_split(name, s, **kw).case_ids for s in SPLITS}
    flat = [c for ids in got.values() for c in ids]
    assert sorted(flat) == sorted(all_ids) and len(set(flat)) == len(flat)
    return got


def nnunet_from_msd(src, root):
    """An nnU-Net v2 raw folder at ``root`` whose files are symlinks to the MSD task folder ``src``
    (never copies: the data stays in ../shared/data); returns ``root``."""
    import json

    meta = json.loads((src / "dataset.json").read_text())
    (root / "imagesTr").mkdir(parents=True)
    (root / "labelsTr").mkdir()
    entries = sorted(meta["training"], key=lambda e: e["image"])
    for e in entries:
        cid = e["image"].split("/")[-1][: -len(".nii.gz")]
        (root / "imagesTr" / f"{cid}_0000.nii.gz").symlink_to(src / e["image"])
        (root / "labelsTr" / f"{cid}.nii.gz").symlink_to(src / e["label"])
    (root / "dataset.json").write_text(json.dumps({
        "channel_names": {"0": "MRI"}, "labels": {"background": 0, "anterior": 1, "posterior": 2},
        "file_ending": ".nii.gz", "numTraining": len(entries)}))
    return root
