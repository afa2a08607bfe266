"""BUSI / Kvasir-SEG / image+mask readers: quirk policies, errors naming the case, real data."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from openmia.data.readers.image_mask import load_image_mask, read_busi, read_kvasir
from openmia.errors import DataError


def _busi(tmp_path):
    d = tmp_path / "Dataset_BUSI_with_GT"
    for cat in ("benign", "normal"):
        (d / cat).mkdir(parents=True)
    Image.fromarray(np.full((10, 12, 3), 90, np.uint8)).save(d / "benign" / "benign (1).png")
    m1 = np.zeros((10, 12), bool)
    m1[1:3, 1:3] = True
    Image.fromarray(m1).convert("1").save(d / "benign" / "benign (1)_mask.png")
    m2 = np.zeros((10, 12, 4), np.uint8)  # RGBA 0/255 second mask
    m2[6:8, 6:9] = 255
    Image.fromarray(m2, "RGBA").save(d / "benign" / "benign (1)_mask_1.png")
    Image.fromarray(np.full((8, 8, 3), 50, np.uint8)).save(d / "normal" / "normal (2).png")
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(d / "normal" / "normal (2)_mask.png")
    return d


def test_busi_merges_masks_and_binarises_modes(tmp_path):
    cases = read_busi(_busi(tmp_path))
    assert [c.case_id for c in cases] == ["benign_001", "normal_002"] and cases[0].category == "benign"
    img, mask = load_image_mask(cases[0])
    assert img.shape == (1, 10, 12) and mask.dtype == np.uint8
    assert mask.sum() == 4 + 6 and mask[1, 1] == 1 and mask[6, 8] == 1  # both masks OR-ed
    _, empty = load_image_mask(cases[1])
    assert empty.sum() == 0  # a normal image: empty mask kept


def test_busi_errors_name_the_case(tmp_path):
    d = _busi(tmp_path)
    Image.fromarray(np.zeros((5, 5), np.uint8)).save(d / "benign" / "benign (1)_mask_2.png")
    with pytest.raises(DataError, match="case 'benign_001': mask benign \\(1\\)_mask_2.png has size"):
        load_image_mask(read_busi(d)[0])
    (d / "normal" / "normal (2)_mask.png").unlink()
    with pytest.raises(DataError, match="no mask for case\\(s\\) normal_002"):
        read_busi(d)


def test_kvasir_thresholds_jpeg_masks_and_reads_split(tmp_path):
    base = tmp_path / "Kvasir-SEG"
    (base / "images").mkdir(parents=True)
    (base / "masks").mkdir()
    Image.fromarray(np.full((16, 20, 3), 120, np.uint8)).save(base / "images" / "abc.jpg")
    m = np.zeros((16, 20), np.uint8)
    m[4:12, 5:15] = 255
    Image.fromarray(m).save(base / "masks" / "abc.jpg", quality=70)  # JPEG noise around the edges
    (tmp_path / "split_880_120").mkdir()
    (tmp_path / "split_880_120" / "train.txt").write_text("abc\n")
    cases, split = read_kvasir(tmp_path)
    assert split == {"train": ["abc"]}
    img, mask = load_image_mask(cases[0], grey=False)
    assert img.shape == (3, 16, 20) and abs(int(mask.sum()) - 80) <= 6
    (tmp_path / "split_880_120" / "val.txt").write_text("zzz.jpg\n")
    with pytest.raises(DataError, match="zzz"):
        read_kvasir(tmp_path)


def test_real_busi_and_kvasir(shared_data):
    busi, kv = shared_data / "busi", shared_data / "kvasir_seg"
    if not busi.is_dir() or not kv.is_dir():
        pytest.skip("real BUSI / Kvasir-SEG folders are absent")
    cases = read_busi(busi)
    cats = [c.category for c in cases]
    assert (cats.count("benign"), cats.count("malignant"), cats.count("normal")) == (160, 80, 50)
    multi = [c for c in cases if len(c.masks) > 1]
    assert multi  # several images have more than one mask
    img, mask = load_image_mask(multi[0])
    assert img.shape[1:] == mask.shape and mask.max() == 1
    kcases, split = read_kvasir(kv)
    assert len(kcases) == 1000 and len(split["train"]) == 880 and len(split["val"]) == 120
    assert not set(split["train"]) & set(split["val"])


def test_catalog_busi_split_is_fixed_and_resized(shared_data):
    from openmia.data.catalog import get_spec, load_split

    busi = shared_data / "busi"
    spec = get_spec("busi")
    assert spec.task == "segmentation" and dict(spec.split_sizes) == {"train": 203, "val": 29, "test": 58}
    if not busi.is_dir():
        pytest.skip("real BUSI folder is absent")
    s = load_split("busi", "val", root=busi)
    assert s.images.shape == (29, 1, 256, 256) and s.labels.shape == (29, 256, 256) and s.images.dtype == np.uint8
    assert set(np.unique(s.labels)) <= {0, 1} and any(c.startswith("normal_") for c in s.case_ids)
    with pytest.raises(DataError, match="pass data.root"):
        load_split("busi", "val", root=busi / "nope")
