"""Medical Segmentation Decathlon reader: index, orientation, validation (each error names the case)."""

from __future__ import annotations


import numpy as np
import pytest

from openmia.data.readers.msd import load_case, read_msd_index
from openmia.errors import DataError

nib = pytest.importorskip("nibabel")


def test_index_load_and_canonical_orientation(tmp_path, write_msd):
    img = np.arange(4 * 5 * 6, dtype=np.float32).reshape(4, 5, 6)
    lab = np.zeros((4, 5, 6), np.float32)  # float labels, as two upstream hippocampus cases
    lab[0, 0, 0] = 2
    flip_x = np.diag([-2.0, 1.0, 3.0, 1.0])  # x axis stored right-to-left (LAS)
    root = write_msd(tmp_path, [("c1", img, lab, flip_x, None)])
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


def test_errors_name_the_case(tmp_path, write_msd):
    eye = np.eye(4)
    good = np.zeros((4, 4, 4), np.float32)
    bad_label = np.zeros((4, 4, 4), np.uint8)
    bad_label[1, 1, 1] = 7
    root = write_msd(tmp_path, [("ok", good, np.zeros((4, 4, 4), np.uint8), eye, None),
                           ("lab7", good, bad_label, eye, None),
                           ("shape", good, np.zeros((4, 4, 5), np.uint8), eye, None),
                           ("shifted", good, np.zeros((4, 4, 4), np.uint8), eye, np.diag([1.0, 1.0, 2.0, 1.0])),
                           ("nan", np.full((4, 4, 4), np.nan, np.float32), np.zeros((4, 4, 4), np.uint8), eye, None),
                           ("fourd", np.zeros((4, 4, 4, 2), np.float32), np.zeros((4, 4, 4), np.uint8), eye, None)])
    idx = read_msd_index(root)
    by = {c.case_id: c for c in idx.cases}
    load_case(idx, by["ok"])
    # each message names the case, what is wrong and the fix
    for cid, msg in (("lab7", "label value\\(s\\) \\[7\\].*fix the label file"), ("shape", "label shape.*resample it"),
                     ("shifted", "affine differs.*resample it"), ("nan", "NaN.*replace them"),
                     ("fourd", "lists 1 modality.*one volume per case")):
        with pytest.raises(DataError, match=f"case '{cid}'.*{msg}"):
            load_case(idx, by[cid])
    (root / "imagesTr" / "ok.nii.gz").write_bytes(b"\x1f\x8b\x08 truncated")
    with pytest.raises(DataError, match="case 'ok': cannot read image.*extract or download it again"):
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


def test_msd_catalogue_entry_pads_normalises_and_keeps_regions(tmp_path, write_msd, toy_msd_facts):
    from openmia.data.catalog import get_spec, load_split
    from openmia.errors import ConfigError

    # a toy task with hippocampus's facts but 10 small cases: folds, val rule and padding
    toy_msd_facts((8, 8, 8), 10)
    rng = np.random.default_rng(0)
    cases = []
    for i in range(10):
        shape = (5 + i % 3, 6, 7)
        img = rng.uniform(10, 100, shape).astype(np.float32)
        lab = np.zeros(shape, np.uint8)
        lab[1:3, 1:3, 1:3] = 1 + i % 2
        cases.append((f"c{i:02d}", img, lab, np.eye(4), None))
    root = write_msd(tmp_path, cases)
    spec = get_spec("hippocampus")
    assert spec.spatial_shape == (8, 8, 8) and spec.folds == 5 and spec.normalization.value == "float"
    splits = {s: load_split("hippocampus", s, root=root, fold=1) for s in ("train", "val", "test")}
    assert splits["test"].case_ids == ["c01", "c06"]  # sorted index % 5 == 1
    assert sorted(sum((s.case_ids for s in splits.values()), [])) == [f"c{i:02d}" for i in range(10)]
    te = splits["test"]
    assert te.images.shape == (2, 1, 8, 8, 8) and te.images.dtype == np.float32
    region = te.regions[0]
    own = te.images[0, 0][region]
    assert own.shape == (6, 6, 7)  # c01 is 6 x 6 x 7, centred in 8^3
    assert abs(float(own.mean())) < 1e-5 and abs(float(own.std()) - 1) < 1e-4  # MRI z-score over the case
    assert te.images[0, 0].sum() == pytest.approx(own.sum(), abs=1e-3)  # zeros outside the region
    assert te.labels[0][region].max() == 2 and te.labels[0].sum() == te.labels[0][region].sum()
    with pytest.raises(ConfigError, match="folds 0-4"):
        load_split("hippocampus", "test", root=root, fold=5)
    with pytest.raises(ConfigError, match="one fixed split"):
        load_split("synthetic/seg2d", "test", fold=1)


def test_msd_catalogue_rejects_a_case_larger_than_the_padded_shape(tmp_path, write_msd, toy_msd_facts):
    from openmia.data.catalog import load_split

    toy_msd_facts((8, 8, 8), 10)
    big = np.ones((9, 4, 4), np.float32)
    root = write_msd(tmp_path, [(f"c{i}", big if i == 2 else big[:4], np.zeros(big.shape if i == 2 else (4, 4, 4), np.uint8),
                            np.eye(4), None) for i in range(10)])
    with pytest.raises(DataError, match=r"case 'c2': shape \(9, 4, 4\) does not fit"):
        load_split("hippocampus", "train", root=root)


def test_training_on_a_padded_3d_set_scores_each_case_on_its_own_grid(tmp_path, write_msd, toy_msd_facts):
    from openmia.config import load_config
    from openmia.engine.run_dir import train

    toy_msd_facts((8, 8, 8), 10)
    rng = np.random.default_rng(1)
    cases = []
    for i in range(10):
        shape = (5 + i % 3, 6 + i % 2, 7)
        lab = np.zeros(shape, np.uint8)
        lab[1:4, 1:4, 1:4] = 1
        lab[3:5, 3:5, 4:6] = 2
        img = (rng.normal(50, 5, shape) + 30 * lab).astype(np.float32)
        cases.append((f"c{i:02d}", img, lab, np.eye(4), None))
    root = write_msd(tmp_path / "data", cases) if (tmp_path / "data").mkdir() is None else None
    cfg = load_config(None, ["task=segmentation", "data.dataset=hippocampus", f"data.root={root}", "model.name=resunet",
                             "model.kwargs={channels: [4, 8]}", "data.batch_size=2", "train.epochs=1",
                             "eval.n_resamples=50", f"out_dir={tmp_path / 'runs'}"])
    res = train(cfg, progress=False)
    for cid, (_, img, _, _, _) in zip(["c00", "c05"], [cases[0], cases[5]]):
        pred = np.load(res.run_dir / "predictions" / "test" / f"{cid}.npy")
        truth = np.load(res.run_dir / "truth" / "test" / f"{cid}.npy")
        assert pred.shape == truth.shape == img.shape  # cropped back from the padded 8^3
        assert np.array_equal(truth, cases[int(cid[1:])][2])

    # predict on raw NIfTI files: same normalisation as training, and an input stored left-right
    # flipped (x axis pointing left) gets the same labels, flipped back into its own voxel order
    from openmia.engine.predict import predict_folder

    img = cases[0][1]
    flip = np.diag([-1.0, 1, 1, 1])
    flip[0, 3] = img.shape[0] - 1  # the same world positions as the RAS file
    (tmp_path / "in").mkdir()
    nib.save(nib.Nifti1Image(img, np.eye(4)), str(tmp_path / "in" / "ras.nii.gz"))
    nib.save(nib.Nifti1Image(img[::-1].copy(), flip), str(tmp_path / "in" / "flipped.nii.gz"))
    predict_folder(res.run_dir, tmp_path / "in", tmp_path / "out")
    ras = nib.load(str(tmp_path / "out" / "ras.nii.gz"))
    fl = nib.load(str(tmp_path / "out" / "flipped.nii.gz"))
    assert np.allclose(fl.affine, flip) and fl.get_data_dtype() == np.uint8
    assert np.array_equal(np.asarray(fl.dataobj), np.asarray(ras.dataobj)[::-1])
    assert np.array_equal(np.asarray(ras.dataobj), np.load(res.run_dir / "predictions" / "test" / "c00.npy"))
