"""User data sets (folder:, msd:, nnunet:, coco:, voc:, dots:): layouts, splits, records and caching,
each on a tiny data set built in tmp_path (builders in ``_user_builders.py``)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from _user_builders import _check_partition, _class_folders, _disk, _nii, _nnunet, _png, _seg2d, _seg3d, _vol
from PIL import Image

from openmia.data.catalog import get_spec, load_split, split_record
from openmia.errors import ConfigError, DataError

nib = pytest.importorskip("nibabel")


# ----------------------------------------------------------------------------- classification


def test_class_folders_2d_are_resized_split_stratified_and_deterministic(tmp_path):
    root = _class_folders(tmp_path / "shapes")
    name = f"folder:{root}"
    spec = get_spec(name)
    assert (spec.task, spec.task_type, spec.label_names, spec.channels, spec.size) == (
        "classification", "binary", ("circle", "square"), 1, 64)
    assert spec.normalization.value == "uint8_unit" and spec.resized_input and spec.folds == 5 and spec.source == "user"
    ids = [f"circle/img_{i:03d}" for i in range(12)] + [f"square/img_{i:03d}" for i in range(9)]
    got = _check_partition(name, ids)
    tr = load_split(name, "train")
    assert tr.images.shape == (len(tr.case_ids), 1, 64, 64) and tr.images.dtype == np.uint8
    assert tr.labels.tolist() == [0 if c.startswith("circle") else 1 for c in tr.case_ids]
    assert {c.split("/")[0] for c in got["test"]} == {"circle", "square"}  # stratified: both classes in every test fold
    assert sum(dict(spec.split_sizes).values()) == 21 and dict(spec.split_sizes)["test"] == len(got["test"])
    # deterministic; another seed another split of the same sizes; the folds tile the set
    assert load_split(name, "test").case_ids == got["test"]
    other = load_split(name, "test", seed=7).case_ids
    assert other != got["test"] and len(other) == len(got["test"])
    tests = [c for f in range(5) for c in load_split(name, "test", fold=f).case_ids]
    assert sorted(tests) == sorted(ids)
    with pytest.raises(ConfigError, match="data.fold must be 0..4"):
        load_split(name, "test", fold=5)
    assert get_spec(name, 32).size == 32 and load_split(name, "val", size=32).images.shape[2:] == (32, 32)


def test_labels_csv_single_and_multi_label(tmp_path):
    root = tmp_path / "csv"
    rows, multi = ["path,label"], ["path,effusion,nodule"]
    for i in range(15):
        _png(root / "imgs" / f"{i}.png", _disk(20, 24, 2 + i % 5))
        rows.append(f"imgs/{i}.png,{'2' if i % 3 == 0 else '10' if i % 3 == 1 else '1'}")
        multi.append(f"imgs/{i}.png,{i % 2},{int(i % 3 == 0)}")
    (root / "labels.csv").write_text("\n".join(rows) + "\n")
    spec = get_spec(f"folder:{root}")
    assert spec.task_type == "multi-class" and spec.label_names == ("1", "2", "10")  # numeric labels sort as numbers
    s = load_split(f"folder:{root}", "train")
    lab = {c: int(r.split(",")[1]) for c, r in ((f"imgs/{i}", rows[i + 1]) for i in range(15))}
    assert [spec.label_names[v] for v in s.labels] == [str(lab[c]) for c in s.case_ids]
    (root / "labels.csv").write_text("\n".join(multi) + "\n")
    spec = get_spec(f"folder:{root}")
    assert spec.task_type == "multi-label" and spec.label_names == ("effusion", "nodule")
    s = load_split(f"folder:{root}", "test")
    assert s.labels.shape == (len(s.case_ids), 2)
    assert s.labels[:, 0].tolist() == [int(c.split("/")[1]) % 2 for c in s.case_ids]


def test_rgb_class_folders_and_3d_nifti_classification(tmp_path):
    spec = get_spec(f"folder:{_class_folders(tmp_path / 'rgb', rgb=True)}")
    assert spec.channels == 3
    root = tmp_path / "vols"
    for k, cls in enumerate(("a", "b")):
        for i in range(6):
            img, _ = _vol((9 + i, 10, 7), i + 10 * k)
            _nii(root / cls / f"v{i}.nii.gz", img + 50 * k, np.diag([2.0, 1.0, 1.5, 1.0]))
    name = f"folder:{root}"
    spec = get_spec(name)
    assert (spec.dims, spec.size, spec.normalization.value, spec.modality) == (3, 32, "float", "MRI")
    s = load_split(name, "train")
    assert s.images.shape[1:] == (1, 32, 32, 32) and s.images.dtype == np.float32
    r = load_split(name, "train", size=16, spacing=(2.0, 2.0, 2.0))  # resampled, then centre-cropped/padded
    assert r.images.shape[1:] == (1, 16, 16, 16) and r.spec.spacing == (2.0, 2.0, 2.0)


# ----------------------------------------------------------------------------- segmentation


def test_segmentation_folder_2d_png(tmp_path):
    name = f"folder:{_seg2d(tmp_path / 'seg')}"
    spec = get_spec(name)
    assert (spec.task, spec.label_names, spec.resized_input, spec.size) == ("segmentation", ("background", "foreground"), True, 64)
    s = load_split(name, "train")
    assert s.images.shape[1:] == (1, 64, 64) and s.labels.shape[1:] == (64, 64) and s.labels.dtype == np.uint8
    assert set(np.unique(s.labels).tolist()) == {0, 1}  # 0/255 masks read as 0/1, resized nearest
    with pytest.raises(ConfigError, match="resampling applies to 3D NIfTI"):
        load_split(name, "train", spacing=(1.0, 1.0))


def test_segmentation_folder_3d_nifti_padded_with_regions_and_resampling(tmp_path):
    name = f"folder:{_seg3d(tmp_path / 'seg3d')}"
    spec = get_spec(name)
    assert spec.shape == (32, 32, 32) and spec.label_names == ("background", "a", "b") and spec.spacing == (1.0, 1.0, 2.0)
    s = load_split(name, "test")
    assert s.images.shape[1:] == (1, 32, 32, 32) and s.regions is not None and s.spacings is None
    for i, cid in enumerate(s.case_ids):
        k = int(cid[3:])
        ext = tuple(r.stop - r.start for r in s.regions[i])
        assert ext == (8 + k % 3, 9, 6 + k % 2) and s.labels[i][s.regions[i]].max() == 2
    r = get_spec(name, spacing=(2.0, 2.0, 2.0))
    assert r.spacing == (2.0, 2.0, 2.0) and r.shape == (32, 32, 32)
    rs = load_split(name, "test", spacing=(2.0, 2.0, 2.0))
    assert [tuple(x.stop - x.start for x in reg)[1] for reg in rs.regions] == [4] * len(rs.case_ids)  # 9 mm / 2 mm
    with pytest.raises(ConfigError, match="data.size does not apply"):
        get_spec(name, 64)


def test_msd_prefix_with_a_labelled_test_folder(tmp_path, write_msd):
    cases = [(f"c{i:02d}", *_vol((8, 9, 7), i), np.eye(4), None) for i in range(11)]
    (tmp_path / "Task99").mkdir()
    root = write_msd(tmp_path / "Task99", cases, labels=("background", "A", "B"))
    name = f"msd:{root}"
    spec = get_spec(name)
    assert spec.task == "segmentation" and spec.modality == "MRI" and spec.folds == 5 and spec.label_names == (
        "background", "A", "B")
    _check_partition(name, [c[0] for c in cases])
    for i in (50, 51):
        img, lab = _vol((8, 9, 7), i)
        _nii(root / "imagesTs" / f"t{i}.nii.gz", img)
        _nii(root / "labelsTs" / f"t{i}.nii.gz", lab)
    spec = get_spec(name)
    assert spec.folds == 0 and dict(spec.split_sizes)["test"] == 2
    assert load_split(name, "test").case_ids == ["t50", "t51"]
    rec = split_record(name)
    assert "imagesTs/ + labelsTs/" in rec["rule"] and rec["splits"]["test"] == ["t50", "t51"]


def test_nnunet_prefix_multichannel_with_imagests(tmp_path):
    root = _nnunet(tmp_path / "Dataset001_Toy")
    name = f"nnunet:{root}"
    spec = get_spec(name)
    assert (spec.channels, spec.label_names, spec.modality, spec.folds) == (2, ("background", "pz", "tz"), "T2", 0)
    s = load_split(name, "test")
    assert s.case_ids == ["toy_100", "toy_101", "toy_102"] and s.images.shape[1] == 2
    got = _check_partition(name, [f"toy_{i:03d}" for i in range(10)] + ["toy_100", "toy_101", "toy_102"])
    assert len(got["val"]) == 2  # 15 % of the 10 training cases, rounded up


# ----------------------------------------------------------------------------- detection / counting


def _coco_set(root, n=12):
    images, anns = [], []
    for i in range(n):
        _png(root / "images" / f"im{i:02d}.png", np.stack([_disk(40, 60, 8)] * 3, -1))
        images.append({"id": i + 1, "file_name": f"im{i:02d}.png", "width": 60, "height": 40})
        anns.append({"id": i + 1, "image_id": i + 1, "category_id": 1 + i % 2, "bbox": [22, 12, 16, 16], "iscrowd": 0})
    cats = [{"id": 1, "name": "benign"}, {"id": 2, "name": "malignant"}]
    (root / "annotations.json").write_text(json.dumps({"images": images, "annotations": anns, "categories": cats}))
    return root


def test_coco_prefix_scales_boxes_to_the_input(tmp_path):
    name = f"coco:{_coco_set(tmp_path / 'coco')}"
    spec = get_spec(name, 120)
    assert (spec.task, spec.label_names, spec.channels, spec.spatial_shape) == ("detection", ("benign", "malignant"), 3,
                                                                                 (80, 120))
    s = load_split(name, "train", size=120)
    assert s.kind == "box" and s.images.shape[1:] == (3, 80, 120)
    assert np.allclose(s.objects[0], [[44, 24, 76, 56]]) and np.allclose(s.scales, 0.5)
    assert [int(c[0]) for c in s.classes] == [int(c[2:]) % 2 for c in s.case_ids]


def _voc_set(root, n=12):
    for i in range(n):
        _png(root / "JPEGImages" / f"v{i:02d}.png", _disk(32, 32, 6))
        xml = (f"<annotation><filename>v{i:02d}.png</filename><size><width>32</width><height>32</height></size>"
               f"<object><name>{'wbc' if i % 3 else 'rbc'}</name><bndbox><xmin>10</xmin><ymin>10</ymin><xmax>22</xmax>"
               "<ymax>22</ymax></bndbox></object></annotation>")
        (root / "Annotations").mkdir(parents=True, exist_ok=True)
        (root / "Annotations" / f"v{i:02d}.xml").write_text(xml)
    sets = root / "ImageSets" / "Main"
    sets.mkdir(parents=True)
    (sets / "train.txt").write_text("\n".join(f"v{i:02d}" for i in range(7)))
    (sets / "val.txt").write_text("v07\nv08\n")
    (sets / "test.txt").write_text("v09\nv10\nv11\n")
    return root


def test_voc_prefix_uses_imagesets(tmp_path):
    name = f"voc:{_voc_set(tmp_path / 'voc')}"
    spec = get_spec(name, 64)
    assert spec.label_names == ("rbc", "wbc") and spec.split_sizes == (("train", 7), ("val", 2), ("test", 3))
    s = load_split(name, "test", size=64)
    assert s.case_ids == ["v09", "v10", "v11"] and np.allclose(s.objects[0], [[20, 20, 44, 44]])
    assert "ImageSets/Main" in split_record(name)["rule"]


def test_dots_prefix_points_csv_and_dot_pngs(tmp_path):
    root = tmp_path / "dots"
    rows = ["image_id,x,y"]
    for i in range(10):
        _png(root / "images" / f"c{i}.png", np.full((32, 40), 20 * i))
        rows += [f"c{i},{x},5" for x in range(i)]
        dots = np.zeros((32, 40, 3), np.uint8)
        dots[5, :i] = (255, 0, 0)
        _png(root / "dots" / f"c{i}.png", dots)
    name = f"dots:{root}"
    spec = get_spec(name, 80)
    assert spec.task == "counting" and spec.spatial_shape == (64, 80)
    from_dots = load_split(name, "train", size=80)
    assert from_dots.kind == "point" and from_dots.labels.tolist() == [int(c[1:]) for c in from_dots.case_ids]
    (root / "points.csv").write_text("\n".join(rows) + "\n")  # takes precedence over dots/
    s = load_split(name, "train", size=80)
    assert s.labels.tolist() == from_dots.labels.tolist() and np.allclose(s.scales, 0.5)


# ----------------------------------------------------------------------------- splits, records, caching


def test_split_json_is_respected_and_checked(tmp_path):
    root = _seg2d(tmp_path / "seg", n=10)
    ids = [f"case{i:02d}" for i in range(10)]
    (root / "split.json").write_text(json.dumps({"train": ids[:6], "val": ["case06.png"], "test": ids[7:]}))
    name = f"folder:{root}"
    assert get_spec(name).split_sizes == (("train", 6), ("val", 1), ("test", 3)) and get_spec(name).folds == 0
    assert load_split(name, "val").case_ids == ["case06"]
    assert split_record(name)["rule"] == "train / val / test given by split.json"
    (root / "split.json").write_text(json.dumps({"train": ids[:5], "test": ids[7:]}))
    with pytest.raises(DataError, match=r"split.json: 2 case\(s\) are in no split"):
        get_spec(name)
    (root / "split.json").write_text(json.dumps({"train": ids[:7] + ["nope"], "test": ids[7:]}))
    with pytest.raises(DataError, match="lists 'nope', which is not a case"):
        get_spec(name)


def test_large_sets_get_a_stratified_70_15_15_holdout(tmp_path):
    root = tmp_path / "big"
    for i in range(120):
        _png(root / ("a" if i % 4 else "b") / f"{i:03d}.png", np.full((6, 6), i))
    spec = get_spec(f"folder:{root}", 8)
    assert spec.split_sizes == (("train", 84), ("val", 18), ("test", 18)) and spec.folds == 0
    test = load_split(f"folder:{root}", "test", size=8)
    assert (test.labels == 1).sum() in (4, 5)  # 30 of 120 are class b: stratified
    with pytest.raises(ConfigError, match="has one fixed split"):
        load_split(f"folder:{root}", "test", size=8, fold=1)


def test_split_record_checksums_the_files_and_matches_the_splits(tmp_path):
    root = _class_folders(tmp_path / "shapes")
    name = f"folder:{root}"
    rec = split_record(name, seed=3, fold=2)
    assert rec["schema"] == "openmia.splits/1" and rec["source"] == "user" and rec["seed"] == 3 and rec["fold"] == 2
    assert rec["splits"]["test"] == load_split(name, "test", seed=3, fold=2).case_ids and rec["n_files"] == 21
    assert "5-fold" in rec["rule"] and len(rec["files_sha256"]) == 64
    assert load_split(name, "train", seed=3, fold=2).split_record() == rec  # what the engine writes as splits.json
    copy = tmp_path / "elsewhere"
    import shutil

    shutil.copytree(root, copy)
    assert split_record(f"folder:{copy}", seed=3, fold=2)["files_sha256"] == rec["files_sha256"]  # location-free
    _png(root / "circle" / "img_000.png", np.zeros((20, 20)))
    assert split_record(name, seed=3, fold=2)["files_sha256"] != rec["files_sha256"]
    assert load_split("synthetic/binary", "train").split_record is None
    assert load_split(f"coco:{_coco_set(tmp_path / 'coco')}", "val").split_record()["source"] == "user"
    cat = split_record("synthetic/binary")
    assert cat["source"] == "synthetic" and len(cat["splits"]["test"]) == get_spec("synthetic/binary").split_size("test")


def test_loading_again_rereads_nothing_until_the_folder_changes(tmp_path, monkeypatch):
    from openmia.data.readers import folder

    root = _seg2d(tmp_path / "seg", n=10)
    calls = []
    real = folder.read_image
    monkeypatch.setattr(folder, "read_image", lambda info: calls.append(info.path) or real(info))
    name = f"folder:{root}"
    first = load_split(name, "train")
    assert len(calls) == 10
    again = load_split(name, "train")
    assert len(calls) == 10 and again.case_ids == first.case_ids
    w, h = Image.open(root / "masks" / "case00.png").size
    _png(root / "images" / "case00.png", np.zeros((h, w)))
    load_split(name, "train")
    assert len(calls) == 20


def test_16bit_pngs_are_float_and_nnunet_2d_pngs_are_uint8(tmp_path):
    root = tmp_path / "x16"
    for k, cls in enumerate(("a", "b")):
        for i in range(6):
            (root / cls).mkdir(parents=True, exist_ok=True)
            Image.fromarray((np.arange(400).reshape(20, 20) * (i + 1 + k)).astype(np.uint16)).save(root / cls / f"{i}.png")
    spec = get_spec(f"folder:{root}", 16)
    assert (spec.normalization.value, spec.modality) == ("float", "XR")  # the documented 2D default rule
    s = load_split(f"folder:{root}", "train", size=16)
    assert s.images.dtype == np.float32 and s.images.shape[1:] == (1, 16, 16) and 0 <= s.images.min() < s.images.max() <= 1
    nn = tmp_path / "Dataset002_Png"
    (nn / "imagesTr").mkdir(parents=True)
    (nn / "labelsTr").mkdir()
    (nn / "dataset.json").write_text(json.dumps({"channel_names": {"0": "R", "1": "G", "2": "B"}, "labels": {"background": 0, "road": 1},
                                                 "file_ending": ".png"}))
    for i in range(10):
        _png(nn / "imagesTr" / f"r{i}_0000.png", np.stack([_disk(24, 30, 5)] * 3, -1))
        _png(nn / "labelsTr" / f"r{i}.png", _disk(24, 30, 5, 1))
    spec = get_spec(f"nnunet:{nn}", 32)
    assert (spec.dims, spec.channels, spec.normalization.value, spec.resized_input) == (2, 3, "uint8_unit", True)
    s = load_split(f"nnunet:{nn}", "train", size=32)
    assert s.images.shape[1:] == (3, 32, 32) and s.labels.max() == 1


def test_spec_round_trips_through_json(tmp_path):
    from openmia.data.spec import DatasetSpec

    for spec in (get_spec(f"folder:{_seg3d(tmp_path / 's3')}"), get_spec("hippocampus"), get_spec("bccd_480")):
        assert DatasetSpec.from_dict(json.loads(json.dumps(spec.to_dict()))) == spec
