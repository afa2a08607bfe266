"""Medical Segmentation Decathlon reader: index, orientation, validation (each error names the case)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from openmia.data.readers.msd import load_case, read_msd_index
from openmia.errors import DataError

nib = pytest.importorskip("nibabel")


def _msd(tmp_path, cases, *, modalities=("MRI",), labels=("background", "A", "B")):
    (tmp_path / "imagesTr").mkdir(exist_ok=True)
    (tmp_path / "labelsTr").mkdir(exist_ok=True)
    training = []
    for cid, img, lab, aff, laff in cases:
        nib.save(nib.Nifti1Image(img, aff), str(tmp_path / "imagesTr" / f"{cid}.nii.gz"))
        nib.save(nib.Nifti1Image(lab, laff if laff is not None else aff), str(tmp_path / "labelsTr" / f"{cid}.nii.gz"))
        training.append({"image": f"./imagesTr/{cid}.nii.gz", "label": f"./labelsTr/{cid}.nii.gz"})
    meta = {"name": "Toy", "modality": {str(i): m for i, m in enumerate(modalities)},
            "labels": {str(i): n for i, n in enumerate(labels)}, "training": training, "relase": "typo kept"}
    (tmp_path / "dataset.json").write_text(json.dumps(meta))
    return tmp_path


def test_index_load_and_canonical_orientation(tmp_path):
    img = np.arange(4 * 5 * 6, dtype=np.float32).reshape(4, 5, 6)
    lab = np.zeros((4, 5, 6), np.float32)  # float labels, as two upstream hippocampus cases
    lab[0, 0, 0] = 2
    flip_x = np.diag([-2.0, 1.0, 3.0, 1.0])  # x axis stored right-to-left (LAS)
    root = _msd(tmp_path, [("c1", img, lab, flip_x, None)])
    idx = read_msd_index(root)
    assert idx.modalities == ("MRI",) and idx.label_names == ("background", "A", "B") and len(idx.cases) == 1
    v = load_case(idx, idx.cases[0])
    assert v.image.shape == (1, 4, 5, 6) and v.label.dtype == np.uint8 and v.spacing == (2.0, 1.0, 3.0)
    # canonical (RAS+): the x axis is flipped, so voxel (0,0,0) moved to (3,0,0)
    assert v.label[3, 0, 0] == 2 and v.image[0, 3, 0, 0] == img[0, 0, 0]
    assert v.affine[0, 0] > 0 and np.allclose(v.original_affine, flip_x)
    # world coordinates of the labelled voxel are unchanged by the reorientation
    assert np.allclose(v.affine @ [3, 0, 0, 1], flip_x @ [0, 0, 0, 1])
    raw = load_case(idx, idx.cases[0], canonical=False)
    assert raw.label[0, 0, 0] == 2
    assert idx.folds(5)[0] == ["c1"]


def test_errors_name_the_case(tmp_path):
    eye = np.eye(4)
    good = np.zeros((4, 4, 4), np.float32)
    bad_label = np.zeros((4, 4, 4), np.uint8)
    bad_label[1, 1, 1] = 7
    root = _msd(tmp_path, [("ok", good, np.zeros((4, 4, 4), np.uint8), eye, None),
                           ("lab7", good, bad_label, eye, None),
                           ("shape", good, np.zeros((4, 4, 5), np.uint8), eye, None),
                           ("shifted", good, np.zeros((4, 4, 4), np.uint8), eye, np.diag([1.0, 1.0, 2.0, 1.0])),
                           ("nan", np.full((4, 4, 4), np.nan, np.float32), np.zeros((4, 4, 4), np.uint8), eye, None),
                           ("fourd", np.zeros((4, 4, 4, 2), np.float32), np.zeros((4, 4, 4), np.uint8), eye, None)])
    idx = read_msd_index(root)
    by = {c.case_id: c for c in idx.cases}
    load_case(idx, by["ok"])
    for cid, msg in (("lab7", "label value\\(s\\) \\[7\\]"), ("shape", "label shape"), ("shifted", "affine differs"),
                     ("nan", "NaN"), ("fourd", "lists 1 modality")):
        with pytest.raises(DataError, match=f"case '{cid}'.*{msg}"):
            load_case(idx, by[cid])
    (root / "imagesTr" / "ok.nii.gz").write_bytes(b"\x1f\x8b\x08 truncated")
    with pytest.raises(DataError, match="case 'ok': cannot read image"):
        load_case(idx, by["ok"])
    (root / "labelsTr" / "lab7.nii.gz").unlink()
    with pytest.raises(DataError, match="case 'lab7': label file"):
        read_msd_index(root)
    (root / "dataset.json").unlink()
    with pytest.raises(DataError, match="no dataset.json"):
        read_msd_index(root)


def test_real_hippocampus(shared_data):
    root = shared_data / "hippocampus"
    if not (root / "dataset.json").is_file():
        pytest.skip(f"{root} is absent")
    idx = read_msd_index(root)
    assert len(idx.cases) == 260 and idx.label_names == ("background", "Anterior", "Posterior")
    folds = idx.folds(5)
    assert sum(len(f) for f in folds) == 260 and len(folds[0]) == 52
    v = load_case(idx, idx.cases[0])
    assert v.image.ndim == 4 and set(np.unique(v.label)) <= {0, 1, 2} and all(s > 0 for s in v.spacing)
