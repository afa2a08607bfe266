"""Geometry and file formats of the segmentation evaluator (issue 22, section 1).

A prediction on the truth's physical grid but stored with flipped or permuted axes is reoriented to
the truth's voxel order (it used to score Dice 0.0 silently); a shift, rotation or other spacing is
an error naming the case and both affines unless ``resample_pred`` (nearest neighbour). MHA/NRRD
(SimpleITK), TIFF and file patterns (MONAI SaveImage's ``{case}/{case}_seg.nii.gz``).

Independent implementations the reorientation and resampling are checked against (named in the
tests): nibabel's ``as_closest_canonical`` and SimpleITK's ``DICOMOrient``, ``Resample`` and its own
NIfTI writer (LPS <-> RAS conversion).
"""

from __future__ import annotations

import itertools
import json
import logging
import sys

import numpy as np
import pytest

from openmia.errors import PredictionError
from openmia.evaluation.label_maps import align_prediction, index_pattern, read_label_map
from openmia.evaluation.segmentation import evaluate_folders

nib = pytest.importorskip("nibabel")

SPACING = (0.75, 0.8, 2.5)
AFFINE = np.diag([*SPACING, 1.0])
AFFINE[:3, 3] = (-10.0, 20.0, 5.0)


def _truth() -> np.ndarray:
    t = np.zeros((16, 12, 8), np.uint8)  # asymmetric along every axis: a wrong flip cannot score well
    t[1:7, 2:9, 1:5] = 1
    t[10:15, 1:4, 4:7] = 2
    return t


def _pred() -> np.ndarray:
    return np.roll(_truth(), 1, axis=0)  # Dice < 1, non-zero distances: a wrong spacing order would show


def _reoriented(arr: np.ndarray, affine: np.ndarray, perm=(0, 1, 2), flips=()) -> tuple[np.ndarray, np.ndarray]:
    """The same physical image stored with axes ``flips`` reversed, then in the order ``perm``
    (new axis k = old axis perm[k]); built by hand, checked by nibabel/SimpleITK below."""
    a = arr
    for ax in flips:
        a = np.flip(a, ax)
    a = np.ascontiguousarray(a.transpose(perm))
    first = np.array([arr.shape[i] - 1 if i in flips else 0 for i in range(3)], float)  # old index of new voxel 0
    out = np.eye(4)
    for k, old in enumerate(perm):
        out[:3, k] = affine[:3, old] * (-1 if old in flips else 1)
    out[:3, 3] = affine[:3, :3] @ first + affine[:3, 3]
    return a, out


def _save(path, arr, affine) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(nib.Nifti1Image(arr, affine), str(path))


def _pair(tmp_path, pred, pred_affine, truth=None, truth_affine=AFFINE, case="c"):
    pd, td = tmp_path / "pred", tmp_path / "truth"
    _save(pd / f"{case}.nii.gz", pred, pred_affine)
    _save(td / f"{case}.nii.gz", _truth() if truth is None else truth, truth_affine)
    return pd, td


def _values(res) -> dict:
    return {(r[1], r[2]): r[3] for r in res.per_case}


# ----------------------------------------------------------------------------- reorientation


def test_x_flipped_prediction_is_reoriented_not_scored_zero(tmp_path, caplog):
    """The regression: a mask identical in physical space, stored with its x axis flipped, scored
    Dice 0.0 silently."""
    arr, aff = _reoriented(_truth(), AFFINE, flips=(0,))
    pd, td = _pair(tmp_path, arr, aff)
    with caplog.at_level(logging.INFO, logger="openmia.evaluation"):
        res = evaluate_folders(pd, td, n_resamples=20)
    assert res.metric("dice", "1")["value"] == 1.0 and res.metric("dice", "2")["value"] == 1.0
    assert res.summary["geometry"] == {"reoriented": ["c"], "resampled": []}
    assert any("1 prediction(s) stored with another axis order or flipped axes" in r.getMessage() and "c" in r.getMessage()
               for r in caplog.records)


ORIENTATIONS = [((0, 1, 2), (0,)), ((0, 1, 2), (1,)), ((0, 1, 2), (2,)), ((0, 1, 2), (0, 1, 2)),
                ((2, 0, 1), ()), ((1, 0, 2), ()), ((1, 2, 0), (0, 2)), ((2, 1, 0), (1,))]


@pytest.mark.parametrize("perm,flips", ORIENTATIONS, ids=[f"perm{''.join(map(str, p))}-flip{''.join(map(str, f))}"
                                                          for p, f in ORIENTATIONS])
def test_flipped_or_permuted_prediction_scores_as_the_unflipped_pair(tmp_path, perm, flips):
    ref = evaluate_folders(*_pair(tmp_path / "ref", _pred(), AFFINE), n_resamples=20)
    arr, aff = _reoriented(_pred(), AFFINE, perm, flips)
    res = evaluate_folders(*_pair(tmp_path / "moved", arr, aff), n_resamples=20)
    assert res.per_case == ref.per_case  # every metric, HD95 included (the spacing follows the axes)
    assert res.summary["geometry"]["reoriented"] == ["c"] and res.summary["spacings"] == [pytest.approx(list(SPACING))]
    v = _values(res)
    assert 0 < v[("1", "dice")] < 1 and v[("1", "hd")] == pytest.approx(0.75)


def test_flipped_2d_nifti_is_reoriented(tmp_path):
    t = np.zeros((9, 7), np.uint8)
    t[1:4, 2:6] = 1
    a2 = np.diag([0.5, 0.7, 1.0, 1.0])
    arr, aff = _reoriented(t[..., None], a2, (1, 0, 2), (1,))
    res = evaluate_folders(*_pair(tmp_path, arr[..., 0], aff, truth=t, truth_affine=a2), n_resamples=20)
    assert res.metric("dice", "1")["value"] == 1.0 and res.summary["geometry"]["reoriented"] == ["c"]


def test_no_geometry_on_one_side_keeps_todays_checks(tmp_path):
    """An NPY prediction or a NIfTI without qform/sform has no affine: shape and spacing rules only."""
    pd, td = _pair(tmp_path, _pred(), AFFINE)
    (pd / "c.nii.gz").unlink()
    np.save(pd / "c.npy", _pred())
    res = evaluate_folders(pd, td, n_resamples=20)
    assert res.summary["geometry"] == {"reoriented": [], "resampled": []}
    (pd / "c.npy").unlink()
    nib.save(nib.Nifti1Image(_pred(), None), str(pd / "c.nii.gz"))  # qform_code = sform_code = 0
    assert read_label_map(pd / "c.nii.gz", "c").affine is None


def test_reorientation_cross_checked_against_nibabel_and_simpleitk(tmp_path):
    """All 48 axis orders x flips of a random labelled volume with anisotropic spacing and an
    origin: openmia's reoriented array equals the volume in the truth's order, and the independent
    implementations agree the files are the same image — nibabel ``as_closest_canonical`` and
    SimpleITK ``DICOMOrient`` (to LPS) give the same array for the stored prediction and for
    openmia's output on the truth's affine."""
    try:
        import SimpleITK as sitk
    except ImportError:
        sitk = None
    rng = np.random.default_rng(0)
    vol = rng.integers(0, 3, (5, 4, 3)).astype(np.uint8)
    truth_path = tmp_path / "truth.nii.gz"
    _save(truth_path, vol, AFFINE)
    truth = read_label_map(truth_path, "t")
    for n, (perm, nflip) in enumerate(itertools.product(itertools.permutations(range(3)), range(8))):
        flips = tuple(i for i in range(3) if nflip >> i & 1)
        stored, aff = _reoriented(vol, AFFINE, perm, flips)
        pred_path, mine_path = tmp_path / f"p{n}.nii.gz", tmp_path / f"m{n}.nii.gz"
        _save(pred_path, stored, aff)
        out, action = align_prediction("t", read_label_map(pred_path, "t"), truth)
        assert action == ("reoriented" if (perm, flips) != ((0, 1, 2), ()) else None)
        np.testing.assert_array_equal(out.array, vol)
        assert out.spacing == pytest.approx(SPACING)
        _save(mine_path, out.array, AFFINE)
        a, b = nib.as_closest_canonical(nib.load(str(pred_path))), nib.as_closest_canonical(nib.load(str(mine_path)))
        np.testing.assert_array_equal(np.asarray(a.dataobj), np.asarray(b.dataobj))
        np.testing.assert_allclose(a.affine, b.affine, atol=1e-5)
        if sitk is not None:
            x, y = (sitk.DICOMOrient(sitk.ReadImage(str(p)), "LPS") for p in (pred_path, mine_path))
            np.testing.assert_array_equal(sitk.GetArrayFromImage(x), sitk.GetArrayFromImage(y))
            np.testing.assert_allclose(x.GetOrigin(), y.GetOrigin(), atol=1e-4)
            np.testing.assert_allclose(x.GetSpacing(), y.GetSpacing(), atol=1e-6)


# ----------------------------------------------------------------------------- other grids: error or resample


def test_shifted_prediction_is_an_error_naming_case_and_affines(tmp_path):
    shifted = AFFINE.copy()
    shifted[0, 3] += 0.75  # one voxel along x
    pd, td = _pair(tmp_path, _truth(), shifted)
    with pytest.raises(PredictionError) as exc:
        evaluate_folders(pd, td, n_resamples=20)
    msg = str(exc.value)
    assert "case 'c'" in msg and "origin shifted by (0.75, 0, 0) mm" in msg and "--resample-pred" in msg
    assert "[[0.75, 0, 0, -9.25], [0, 0.8, 0, 20], [0, 0, 2.5, 5]]" in msg  # the prediction's affine, rounded
    assert "[[0.75, 0, 0, -10], [0, 0.8, 0, 20], [0, 0, 2.5, 5]]" in msg  # the truth's
    # resampled: the truth's label 1 block x in [1, 7) lies at x in [2, 8) -> Dice = 2*5/12 by hand
    res = evaluate_folders(pd, td, resample_pred=True, n_resamples=20)
    assert res.metric("dice", "1")["value"] == pytest.approx(10 / 12)
    assert res.summary["geometry"] == {"reoriented": [], "resampled": ["c"]}


def test_other_spacing_is_an_error_and_resamples_to_the_hand_computed_dice(tmp_path):
    """Truth: 1 mm grid (10^3), label 1 on voxels [2, 6)^3 = 64. Prediction: 3 mm grid (4^3), label 1
    on voxel (1, 1, 1), i.e. centre at 3 mm. Nearest neighbour at the truth centres x = 0..9 mm picks
    prediction voxel round(x / 3): voxel 1 for x in {2, 3, 4} -> 27 voxels, all inside the truth:
    Dice = 2 * 27 / (27 + 64) = 54 / 91."""
    t = np.zeros((10, 10, 10), np.uint8)
    t[2:6, 2:6, 2:6] = 1
    p = np.zeros((4, 4, 4), np.uint8)
    p[1, 1, 1] = 1
    pd, td = _pair(tmp_path, p, np.diag([3.0, 3.0, 3.0, 1.0]), truth=t, truth_affine=np.eye(4))
    with pytest.raises(PredictionError, match=r"case 'c'.*voxel spacing \(3, 3, 3\) vs \(1, 1, 1\) mm.*--resample-pred"):
        evaluate_folders(pd, td, n_resamples=20)
    res = evaluate_folders(pd, td, resample_pred=True, n_resamples=20)
    assert res.metric("dice", "1")["value"] == pytest.approx(54 / 91)
    out, action = align_prediction("c", read_label_map(pd / "c.nii.gz", "c"), read_label_map(td / "c.nii.gz", "c"), True)
    assert action == "resampled" and out.spacing == (1.0, 1.0, 1.0)
    np.testing.assert_array_equal(np.argwhere(out.array), np.argwhere(np.pad(np.ones((3, 3, 3)), ((2, 5),) * 3)))


def _rotation_z(deg: float) -> np.ndarray:
    c, s = np.cos(np.radians(deg)), np.sin(np.radians(deg))
    r = np.eye(4)
    r[:2, :2] = [[c, -s], [s, c]]
    return r


def test_rotated_prediction_is_an_error_and_resampling_matches_simpleitk(tmp_path):
    """A 10-degree rotation about z: an error (not silently reoriented to the closest axes); with
    resampling, openmia's nearest-neighbour result equals SimpleITK ``Resample`` (sitkNearestNeighbor,
    identity transform, onto the truth image) reading the same NIfTI files."""
    rot = _rotation_z(10.0) @ AFFINE
    pd, td = _pair(tmp_path, _pred(), rot)
    with pytest.raises(PredictionError, match=r"case 'c'.*axes rotated by up to 10 degrees.*affine.*--resample-pred"):
        evaluate_folders(pd, td, n_resamples=20)
    res = evaluate_folders(pd, td, resample_pred=True, n_resamples=20)
    assert res.summary["geometry"]["resampled"] == ["c"] and 0 < res.metric("dice", "1")["value"] < 1
    sitk = pytest.importorskip("SimpleITK", reason="SimpleITK (openmia[io]) is the independent resampler")
    out, _ = align_prediction("c", read_label_map(pd / "c.nii.gz", "c"), read_label_map(td / "c.nii.gz", "c"), True)
    ref = sitk.Resample(sitk.ReadImage(str(pd / "c.nii.gz")), sitk.ReadImage(str(td / "c.nii.gz")), sitk.Transform(),
                        sitk.sitkNearestNeighbor, 0)
    ref_arr = sitk.GetArrayFromImage(ref).transpose(2, 1, 0)
    np.testing.assert_array_equal(out.array, ref_arr)
    assert np.count_nonzero(out.array) > 0


def test_a_90_degree_rotation_of_the_grid_is_a_reorientation(tmp_path):
    """Rotating the grid by 90 degrees about z (and the array with it) is an axis permutation + flip."""
    arr, aff = _reoriented(_pred(), AFFINE, (1, 0, 2), (1,))
    ref = evaluate_folders(*_pair(tmp_path / "ref", _pred(), AFFINE), n_resamples=20)
    res = evaluate_folders(*_pair(tmp_path / "rot", arr, aff), n_resamples=20)
    assert res.per_case == ref.per_case


# ----------------------------------------------------------------------------- MHA / NRRD / TIFF


def _sitk_image(sitk, arr_xyz: np.ndarray, spacing, origin, direction):
    img = sitk.GetImageFromArray(np.ascontiguousarray(arr_xyz.transpose(2, 1, 0)))  # numpy (z, y, x)
    img.SetSpacing(spacing)
    img.SetOrigin(origin)
    img.SetDirection(direction)
    return img


@pytest.mark.parametrize("suffix", [".mha", ".nrrd"])
def test_mha_nrrd_round_trip_through_simpleitk(tmp_path, suffix):
    sitk = pytest.importorskip("SimpleITK", reason="MHA/NRRD need SimpleITK (pip install openmia[io])")
    vol = _truth()
    direction = (-1.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0, 1.0, 0.0)  # x flipped, y and z swapped
    img = _sitk_image(sitk, vol, SPACING, (3.0, -4.0, 12.5), direction)
    sitk.WriteImage(img, str(tmp_path / f"a{suffix}"))
    sitk.WriteImage(img, str(tmp_path / "a.nii.gz"))  # ITK's own NIfTI writer: its LPS -> RAS conversion
    lm, ref = read_label_map(tmp_path / f"a{suffix}", "a"), read_label_map(tmp_path / "a.nii.gz", "a")
    # the array in ITK index order (x, y, z), as GetSize() and GetSpacing(); the same as the NIfTI path
    assert lm.array.shape == img.GetSize() == ref.array.shape and lm.spacing == pytest.approx(SPACING)
    assert lm.array[3, 4, 2] == img.GetPixel(3, 4, 2) == vol[3, 4, 2]
    np.testing.assert_array_equal(lm.array, ref.array)
    assert ref.spacing == pytest.approx(SPACING)
    np.testing.assert_allclose(lm.affine, ref.affine, atol=1e-5)
    # scored against a NIfTI truth in RAS order: reoriented, Dice 1
    pd, td = tmp_path / "p", tmp_path / "t"
    pd.mkdir()
    sitk.WriteImage(img, str(pd / f"c{suffix}"))
    canonical = nib.as_closest_canonical(nib.load(str(tmp_path / "a.nii.gz")))
    _save(td / "c.nii.gz", np.asarray(canonical.dataobj), canonical.affine)
    res = evaluate_folders(pd, td, n_resamples=20)
    assert res.metric("dice", "all")["value"] == 1.0 and res.summary["geometry"]["reoriented"] == ["c"]


def test_mha_without_simpleitk_says_how_to_install(tmp_path, monkeypatch):
    (tmp_path / "a.mha").write_bytes(b"ObjectType = Image\n")
    monkeypatch.setitem(sys.modules, "SimpleITK", None)
    with pytest.raises(PredictionError, match=r"case 'a'.*SimpleITK.*pip install openmia\[io\]"):
        read_label_map(tmp_path / "a.mha", "a")


def _tiff_pair(tmp_path, writer, pred, truth, suffix=".tif"):
    pd, td = tmp_path / "p", tmp_path / "t"
    pd.mkdir()
    td.mkdir()
    writer(pd / f"c{suffix}", pred)
    writer(td / f"c{suffix}", truth)
    return pd, td


def _pil_write(path, arr):
    from PIL import Image

    Image.fromarray(arr).save(path)


def _square(shift: int) -> np.ndarray:
    a = np.zeros((10, 12), np.uint16)
    a[2 + shift : 6 + shift, 3:7] = 1
    return a


@pytest.mark.parametrize("reader", ["tifffile", "PIL"])
def test_2d_tiff(tmp_path, monkeypatch, reader):
    if reader == "tifffile":
        pytest.importorskip("tifffile")
    else:
        monkeypatch.setitem(sys.modules, "tifffile", None)  # PIL fallback
    pd, td = _tiff_pair(tmp_path, _pil_write, _square(1), _square(0))
    res = evaluate_folders(pd, td, n_resamples=20)
    assert res.metric("dice", "1")["value"] == pytest.approx(2 * 12 / 32)  # 4x4 squares overlapping 3x4
    _pil_write(pd / "c.tif", np.stack([_square(0).astype(np.uint8)] * 3, axis=-1))  # RGB
    with pytest.raises(PredictionError, match=r"case 'c'.*single-channel \(found 3 samples per pixel"):
        evaluate_folders(pd, td, n_resamples=20)


def test_3d_tiff_stack(tmp_path, monkeypatch):
    tifffile = pytest.importorskip("tifffile")
    t = np.zeros((4, 10, 12), np.uint8)  # (z, y, x) as tifffile reads a stack
    t[1:3, 2:6, 3:7] = 1
    pd, td = _tiff_pair(tmp_path, lambda p, a: tifffile.imwrite(p, a, photometric="minisblack"), np.roll(t, 1, axis=1), t, ".tiff")
    with pytest.raises(PredictionError, match="case 'c'.*--spacing"):
        evaluate_folders(pd, td, n_resamples=20)
    res = evaluate_folders(pd, td, spacing=(2.0, 0.5, 0.5), n_resamples=20)  # in the array's (z, y, x) order
    assert res.metric("dice", "1")["value"] == pytest.approx(0.75) and res.metric("hd", "1")["value"] == pytest.approx(0.5)
    monkeypatch.setitem(sys.modules, "tifffile", None)
    with pytest.raises(PredictionError, match=r"case 'c'.*4 pages.*pip install openmia\[io\]"):
        evaluate_folders(pd, td, spacing=(2.0, 0.5, 0.5), n_resamples=20)


# ----------------------------------------------------------------------------- file patterns


def test_monai_and_msd_layouts_score_as_the_flat_folders(tmp_path):
    flat = evaluate_folders(*_pair(tmp_path / "flat", _pred(), AFFINE, case="case_001"), n_resamples=20)
    pd, td = tmp_path / "monai", tmp_path / "Task01" / "labelsTr"
    _save(pd / "case_001" / "case_001_seg.nii.gz", _pred(), AFFINE)  # MONAI SaveImage(output_postfix="seg")
    _save(td / "case_001.nii.gz", _truth(), AFFINE)  # an MSD task folder
    (pd / "case_001" / "notes.json").write_text("{}")
    res = evaluate_folders(pd, tmp_path / "Task01", pred_pattern="{case}/{case}_seg.nii.gz",
                           truth_pattern="labelsTr/{case}.nii.gz", n_resamples=20)
    assert res.per_case == flat.per_case
    assert set(index_pattern(pd, "{case}/*.nii.gz", "prediction", "--pred-pattern")) == {"case_001"}


def test_pattern_errors_name_the_pattern_and_folder(tmp_path):
    pd = tmp_path / "pred"
    _save(pd / "a" / "a_seg.nii.gz", _pred(), AFFINE)
    with pytest.raises(PredictionError, match=r"prediction folder .*pred: no file matches --pred-pattern '\{case\}_seg\.nii\.gz' "
                                              r"\(it holds e\.g\. a/a_seg\.nii\.gz\)"):
        index_pattern(pd, "{case}_seg.nii.gz", "prediction", "--pred-pattern")
    _save(pd / "a" / "a_seg2.nii.gz", _pred(), AFFINE)
    with pytest.raises(PredictionError, match=r"case 'a' matches --pred-pattern '\{case\}/\*\.nii\.gz' twice"):
        index_pattern(pd, "{case}/*.nii.gz", "prediction", "--pred-pattern")
    _save(pd / "x_y_seg.nii.gz", _pred(), AFFINE)
    with pytest.raises(PredictionError, match=r"x_y_seg\.nii\.gz matches --pred-pattern .* more than one case id \('x' or 'x_y'\)"):
        index_pattern(pd, "{case}_*.nii.gz", "prediction", "--pred-pattern")
    for bad, why in (("seg.nii.gz", r"\{case\}"), ("{case}/{id}.nii.gz", r"\{case\}"), ("{case}.json", "suffix"),
                     ("../{case}.nii.gz", r"'\.\.'")):
        with pytest.raises(PredictionError, match=rf"--truth-pattern '.*': .*{why}"):
            index_pattern(pd, bad, "truth", "--truth-pattern")


def test_cli_patterns_and_resample_pred(tmp_path, capsys):
    from openmia.cli.main import main

    shifted = AFFINE.copy()
    shifted[0, 3] += 0.75
    pd, td = tmp_path / "pred", tmp_path / "truth"
    _save(pd / "c" / "c_seg.nii.gz", _truth(), shifted)
    _save(td / "c.nii.gz", _truth(), AFFINE)
    base = ["evaluate", "--task", "segmentation", "--pred", str(pd), "--truth", str(td), "--resamples", "20",
            "--pred-pattern", "{case}/{case}_seg.nii.gz"]
    assert main([*base, "--out", str(tmp_path / "o1")]) == 2
    assert "--resample-pred" in capsys.readouterr().err
    assert main([*base, "--out", str(tmp_path / "o2"), "--resample-pred"]) == 0
    s = json.loads((tmp_path / "o2" / "summary.json").read_text())
    assert s["geometry"] == {"reoriented": [], "resampled": ["c"]}
    assert next(m["value"] for m in s["metrics"] if m["metric"] == "dice" and m["label"] == "1") == pytest.approx(10 / 12)
