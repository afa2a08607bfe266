"""``openmia predict`` on landmark runs: tiny synthetic runs predict on their own test images written
to a folder (PNG 2D, NIfTI 3D); the points equal the run's ``predictions/test.csv`` and
``openmia evaluate --task landmarks`` scores them directly, with the run's own test numbers."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

pytest.importorskip("stable_baselines3")

from openmia import api  # noqa: E402
from openmia.errors import ConfigError, PredictionError  # noqa: E402

COMMON = ["task=landmarks", "eval.n_resamples=100", "train.threads=1"]


def _rows(path) -> dict[tuple[str, str], np.ndarray]:
    """``(short case id, landmark) -> coordinates`` of a points CSV."""
    with open(path) as f:
        return {(r["case_id"].rsplit("/", 1)[-1], r["landmark"]): np.array([float(r[a]) for a in "xyz" if a in r])
                for r in csv.DictReader(f)}


def _write_pngs(folder, split) -> None:
    from PIL import Image

    folder.mkdir()
    for i, c in enumerate(split.case_ids):
        Image.fromarray(split.images[i, 0]).save(folder / f"{c.rsplit('/', 1)[-1]}.png")


@pytest.fixture(scope="module")
def runs_2d(tmp_path_factory):
    """A tiny DQN run and a one-epoch heat-map U-Net on the synthetic 2D set, and its test
    images as PNG files named by case."""
    from openmia.data.catalog import load_split

    root = tmp_path_factory.mktemp("lm2d")
    base = [*COMMON, "data.dataset=synthetic/landmarks2d", "data.batch_size=32", "train.epochs=1"]
    api.train(None, [*base, "model.name=dqn_agent", "landmarks.warmup=200", "landmarks.buffer=1000",
                     "landmarks.val_episodes=8", "landmarks.max_steps=20", "landmarks.patch=7", "landmarks.scales=[1,3]"],
              run_dir=root / "dqn", progress=False, index=False)
    api.train(None, [*base, "model.name=heatmap_unet", "landmarks.decode=argmax"], run_dir=root / "heat",
              progress=False, index=False)
    _write_pngs(root / "images", load_split("synthetic/landmarks2d", "test"))
    return root


@pytest.mark.parametrize("run", ["dqn", "heat"])
def test_predict_reproduces_the_runs_test_points_and_evaluates(runs_2d, tmp_path, run):
    rd = runs_2d / run
    res = api.predict(rd, runs_2d / "images", tmp_path / "out", spacing=(1.0, 1.0))
    assert res["cases"] == 80 and res["task"] == "landmarks" and "spacing.csv" in res["written"]
    got, want = _rows(tmp_path / "out" / "points.csv"), _rows(rd / "predictions" / "test.csv")
    assert got.keys() == want.keys()
    for key in want:
        np.testing.assert_allclose(got[key], want[key], atol=1e-9, err_msg=str(key))
    if run == "heat":  # a content-dependent model: its points are not one constant position
        assert len({tuple(v) for v in got.values()}) > 10
    # the evaluator scores the folder's points directly (truth renamed to the files' case ids)
    truth = tmp_path / "truth.csv"
    with open(rd / "truth" / "test.csv") as f, open(truth, "w", newline="") as g:
        rows = list(csv.reader(f))
        csv.writer(g).writerows([rows[0], *([r[0].rsplit("/", 1)[-1], *r[1:]] for r in rows[1:])])
    ev = api.evaluate("landmarks", tmp_path / "out" / "points.csv", truth, tmp_path / "eval",
                      spacing_csv=tmp_path / "out" / "spacing.csv", shapes_csv=tmp_path / "out" / "shapes.csv",
                      n_resamples=100)
    own = json.loads((rd / "result.json").read_text())["test"]["radial_error"]
    mine = next(m for m in ev.summary["metrics"] if m["metric"] == "radial_error" and m["label"] == "all")
    assert mine["value"] == pytest.approx(own["value"], rel=1e-9)


def test_png_without_spacing_writes_no_spacing_file(runs_2d, tmp_path):
    res = api.predict(runs_2d / "heat", runs_2d / "images", tmp_path / "out")
    assert not (tmp_path / "out" / "spacing.csv").exists() and res["spacing"].startswith("unknown")
    with open(tmp_path / "out" / "shapes.csv") as f:
        assert next(csv.DictReader(f)) == {"case_id": "00000", "nx": "64", "ny": "64"}


def test_bad_inputs_name_the_file(runs_2d, tmp_path):
    bad = tmp_path / "bad"
    bad.mkdir()
    np.save(bad / "cube.npy", np.zeros((8, 8, 8), np.uint8))  # 3D image for a 2D run
    with pytest.raises(PredictionError, match=r"cube\.npy has shape \(8, 8, 8\).*2 spatial axes"):
        api.predict(runs_2d / "heat", bad, tmp_path / "out")
    with pytest.raises(ConfigError, match="--spacing 1.0,1.0,1.0: expected 2 positive"):
        api.predict(runs_2d / "heat", runs_2d / "images", tmp_path / "out2", spacing=(1, 1, 1))
    with pytest.raises(ConfigError, match="test-time augmentation"):
        api.predict(runs_2d / "heat", runs_2d / "images", tmp_path / "out3", tta=True)


def test_nifti_3d_points_in_the_files_own_voxel_grid(tmp_path):
    """An atlas-prior 3D run: a test image saved in RAS+ order gives the run's test point; the same
    voxels saved with axes 0 and 2 swapped and axis 1 flipped (an affine saying so) give the point
    mapped to that file's axes by hand, and the spacing from the header."""
    import nibabel as nib

    from openmia.data.catalog import load_split

    rd = tmp_path / "atlas3d"
    api.train(None, [*COMMON, "data.dataset=synthetic/landmarks3d", "model.name=atlas_prior", "train.epochs=1"],
              run_dir=rd, progress=False, index=False)
    te = load_split("synthetic/landmarks3d", "test")
    vol = np.asarray(te.images[0, 0])  # (32, 32, 32), RAS+ voxel order
    inp = tmp_path / "in"
    inp.mkdir()
    nib.save(nib.Nifti1Image(vol, np.diag([0.5, 0.5, 0.5, 1.0])), inp / "ras.nii.gz")
    # file axis i <- RAS axis (2, 1, 0)[i], file axis 1 runs posterior: RAS y = 31 - j
    other = np.flip(np.transpose(vol, (2, 1, 0)), axis=1)
    aff = np.array([[0, 0, 2.0, 0], [0, -1.0, 0, 31.0], [3.0, 0, 0, 0], [0, 0, 0, 1]])  # x<-k, y<-31-j, z<-i
    nib.save(nib.Nifti1Image(np.ascontiguousarray(other), aff), inp / "swapped.nii.gz")
    api.predict(rd, inp, tmp_path / "out")
    got, want = _rows(tmp_path / "out" / "points.csv"), _rows(rd / "predictions" / "test.csv")
    for lm in ("blob", "ring"):
        p = want[("00000", lm)]
        np.testing.assert_allclose(got[("ras", lm)], p, atol=1e-9)
        np.testing.assert_allclose(got[("swapped", lm)], [p[2], 31 - p[1], p[0]], atol=1e-9)
    with open(tmp_path / "out" / "spacing.csv") as f:
        sp = {r["case_id"]: [float(r[k]) for k in ("sx", "sy", "sz")] for r in csv.DictReader(f)}
    assert sp == {"ras": [0.5, 0.5, 0.5], "swapped": [3.0, 1.0, 2.0]}
