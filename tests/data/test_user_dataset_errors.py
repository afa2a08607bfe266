"""User data sets: bad input is a clear error naming the file; `openmia data verify` lists every
problem at once; and a slow test on an nnunet: folder built from the shared hippocampus."""

from __future__ import annotations


import numpy as np
import pytest
from _user_builders import SPLITS, _class_folders, _nii, _nnunet, _png, _seg2d, _seg3d, _vol

from openmia.data.catalog import get_spec, load_split, split_record
from openmia.errors import ConfigError, DataError, UnknownNameError

nib = pytest.importorskip("nibabel")


def test_errors_name_the_file(tmp_path):
    seg = _seg2d(tmp_path / "seg", n=10)
    (seg / "masks" / "case03.png").rename(seg / "masks" / "case99.png")
    with pytest.raises(DataError, match=r"images/case03.png: image without a mask"):
        get_spec(f"folder:{seg}")
    (seg / "images" / "case03.png").unlink()
    with pytest.raises(DataError, match=r"masks/case99.png: mask without an image"):
        get_spec(f"folder:{seg}")
    (seg / "masks" / "case99.png").unlink()
    _png(seg / "masks" / "case04.png", np.zeros((5, 5)))
    with pytest.raises(DataError, match=r"masks/case04.png: mask shape \(5, 5\) differs from image shape"):
        get_spec(f"folder:{seg}")

    cls = _class_folders(tmp_path / "cls")
    (cls / "empty").mkdir()
    with pytest.raises(DataError, match=r"cls/empty: empty class folder"):
        get_spec(f"folder:{cls}")
    (cls / "empty").rmdir()
    (cls / "circle" / "img_001.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    with pytest.raises(DataError, match=r"circle/img_001.png: cannot read the image"):
        get_spec(f"folder:{cls}")
    (cls / "circle" / "img_001.png").unlink()
    _png(cls / "square" / "rgb.png", np.zeros((20, 20, 3)))
    with pytest.raises(DataError, match=r"square/rgb.png: RGB \(3 channels\), but .* is grey"):
        get_spec(f"folder:{cls}")


def test_3d_errors_name_the_file(tmp_path):
    root = _seg3d(tmp_path / "s3")
    _nii(root / "masks" / "vol01.nii.gz", np.zeros((9, 9, 6), np.uint8), np.diag([1.0, 1.0, 2.0, 1.0]))  # image: 9x9x7
    with pytest.raises(DataError, match=r"vol01.nii.gz: mask shape \(9, 9, 6\) differs from image shape \(9, 9, 7\)"):
        get_spec(f"folder:{root}")
    img, lab = _vol((9, 9, 7), 1)
    _nii(root / "masks" / "vol01.nii.gz", lab, np.diag([1.0, 1.0, 3.0, 1.0]))
    with pytest.raises(DataError, match=r"vol01.nii.gz: mask affine differs"):
        get_spec(f"folder:{root}")
    lab[0, 0, 0] = 7
    _nii(root / "masks" / "vol01.nii.gz", lab, np.diag([1.0, 1.0, 2.0, 1.0]))
    get_spec(f"folder:{root}")  # the header is fine: the label values are read with the data
    with pytest.raises(DataError, match=r"vol01.nii.gz: label value\(s\) \[7\] are not in the labels"):
        load_split(f"folder:{root}", "train")


def test_nnunet_and_name_errors(tmp_path):
    root = _nnunet(tmp_path / "nn", n_ts=0)
    (root / "imagesTr" / "toy_003_0001.nii.gz").unlink()
    with pytest.raises(DataError, match=r"case 'toy_003' has channel file\(s\) \[0\]"):
        get_spec(f"nnunet:{root}")
    (root / "labelsTr" / "toy_004.nii.gz").unlink()
    from openmia.data.sources import find_source

    probs, _ = find_source("nnunet:x").problems(f"nnunet:{root}")
    assert any("toy_003" in p for p in probs) and any("toy_004_0000.nii.gz: image without a label" in p for p in probs)
    with pytest.raises(DataError, match="does not exist"):
        get_spec(f"folder:{tmp_path / 'missing'}")
    with pytest.raises(UnknownNameError, match="Did you mean 'folder:'"):
        get_spec(f"foldr:{tmp_path}")
    with pytest.raises(UnknownNameError, match="folder:PATH"):
        get_spec("my_images")
    with pytest.raises(ConfigError, match="data.root"):
        load_split(f"nnunet:{_nnunet(tmp_path / 'ok', n_ts=0)}", "train", root="/x")
    with pytest.raises(ConfigError, match="data.spacing"):
        get_spec("synthetic/seg3d", spacing=(2.0, 2.0, 2.0))


def test_data_verify_and_info_cli_report_every_problem(tmp_path, capsys):
    from openmia.cli.main import main

    seg = _seg2d(tmp_path / "seg", n=10)
    assert main(["data", "verify", f"folder:{seg}"]) == 0
    out = capsys.readouterr().out
    assert "OK" in out and "train:" in out
    assert main(["data", "info", f"folder:{seg}"]) == 0
    assert "segmentation" in capsys.readouterr().out
    (seg / "masks" / "case01.png").unlink()
    _png(seg / "masks" / "case02.png", np.zeros((3, 3)))
    (seg / "images" / "case05.png").write_bytes(b"not a png")
    assert main(["data", "verify", f"folder:{seg}"]) == 1
    out = capsys.readouterr().out
    assert "case01.png: image without a mask" in out and "case02.png: mask shape" in out and "case05.png" in out
    assert "3 problem(s)" in out


@pytest.mark.slow
def test_nnunet_built_from_the_shared_hippocampus(shared_data, tmp_path):
    src = shared_data / "hippocampus"
    if not (src / "dataset.json").is_file():
        pytest.skip(f"{src} is absent")
    from _user_builders import nnunet_from_msd

    root = nnunet_from_msd(src, tmp_path / "Dataset004_Hippocampus")
    name = f"nnunet:{root}"
    spec = get_spec(name)
    assert spec.task == "segmentation" and spec.folds == 0 and spec.shape == (48, 64, 48)
    splits = {s: load_split(name, s) for s in SPLITS}
    assert sum(len(s.case_ids) for s in splits.values()) == 260
    assert [len(splits[s].case_ids) for s in SPLITS] == [182, 39, 39]
    assert all(s.images.dtype == np.float32 and s.labels.max() == 2 for s in splits.values())
    rec = split_record(name)
    assert rec["n_files"] == 2 * 260 + 1 and "70 / 15 / 15" in rec["rule"]
