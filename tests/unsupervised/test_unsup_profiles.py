"""openmia profile: covariates CSV rules (each bad input named), structure volumes in mm³ by hand,
ratios, per-patient aggregation and the profile table."""

from __future__ import annotations

import json

import numpy as np
import pytest

from openmia.errors import ConfigError, DataError
from openmia.unsupervised.profiles import add_ratios, profile_patients, read_covariates, structure_volumes

from test_unsup_cluster import write_embeddings  # noqa: E402  (same folder)


def write(path, text):
    path.write_text(text)
    return path


def test_covariates_read_and_aligned(tmp_path):
    f = write(tmp_path / "c.csv", "patient_id,age,score\nB,50,1.5\nA,40,2\nZ,1,1\n")
    cov, unused = read_covariates(f, ["A", "B"])
    assert cov["age"].tolist() == [40, 50] and cov["score"].tolist() == [2, 1.5] and unused == ["Z"]


def test_covariates_missing_patient(tmp_path):
    f = write(tmp_path / "c.csv", "patient_id,age\nA,40\n")
    with pytest.raises(DataError, match="no row for patient\\(s\\) B"):
        read_covariates(f, ["A", "B"])


def test_covariates_duplicate_id(tmp_path):
    f = write(tmp_path / "c.csv", "patient_id,age\nA,40\nB,3\nA,41\n")
    with pytest.raises(DataError, match="line 4: duplicate patient_id 'A' \\(first on line 2\\)"):
        read_covariates(f, ["A", "B"])


@pytest.mark.parametrize("cell,msg", [("old", "'old' is not a number"), ("", "'' is not a number; fill in"),
                                      ("inf", "'inf' is not finite")])
def test_covariates_non_numeric(tmp_path, cell, msg):
    f = write(tmp_path / "c.csv", f"patient_id,age\nA,40\nB,{cell}\n")
    with pytest.raises(DataError, match=f"line 3, column 'age' \\(patient 'B'\\): {msg}"):
        read_covariates(f, ["A", "B"])


def test_covariates_header_rules(tmp_path):
    with pytest.raises(DataError, match="patient_id column"):
        read_covariates(write(tmp_path / "a.csv", "id,age\nA,1\n"), ["A"])
    with pytest.raises(DataError, match="no covariate columns"):
        read_covariates(write(tmp_path / "b.csv", "patient_id\nA\n"), ["A"])


def test_structure_volumes_hand_computed(tmp_path):
    nib = pytest.importorskip("nibabel")
    lab = np.zeros((4, 4, 4), np.uint8)
    lab[0, :, 0] = 1  # 4 voxels of label 1, and a fifth:
    lab[1, 0, 0] = 1
    lab[3, 3, 1:4] = 2  # 3 voxels of label 2
    aff = np.diag([2.0, 1.5, 1.0, 1.0])  # 2 x 1.5 x 1 = 3 mm^3 per voxel
    (tmp_path / "L").mkdir()
    nib.save(nib.Nifti1Image(lab, aff), str(tmp_path / "L" / "case1.nii.gz"))
    nib.save(nib.Nifti1Image(np.zeros((4, 4, 4), np.uint8), aff), str(tmp_path / "L" / "case2.nii.gz"))
    vols = structure_volumes(tmp_path / "L", ["case1", "case2"], label_names=["bg", "anterior", "posterior"])
    assert vols["volume_anterior_mm3"].tolist() == [15.0, 0.0]  # 5 voxels x 3 mm^3
    assert vols["volume_posterior_mm3"].tolist() == [9.0, 0.0]
    with pytest.raises(DataError, match="no label map for case\\(s\\) case3"):
        structure_volumes(tmp_path / "L", ["case1", "case3"])
    with pytest.raises(DataError, match="label 2 in its label map, but the data set names labels 0..1"):
        structure_volumes(tmp_path / "L", ["case1"], label_names=["bg", "x"])


def test_volumes_need_spacing_without_header(tmp_path):
    (tmp_path / "L").mkdir()
    np.save(tmp_path / "L" / "a.npy", np.array([[0, 1], [1, 1]], np.uint8))
    with pytest.raises(DataError, match="case 'a'.*no valid voxel spacing.*--spacing"):
        structure_volumes(tmp_path / "L", ["a"])
    assert structure_volumes(tmp_path / "L", ["a"], spacing=(0.5, 2.0))["volume_label_1_mm3"].tolist() == [3.0]


def test_ratio_rules():
    cov = {"a": np.array([2.0, 3.0]), "b": np.array([4.0, 0.0])}
    with pytest.raises(DataError, match="b is 0 for patient\\(s\\) Q"):
        add_ratios(cov, ["a/b"], ["P", "Q"])
    with pytest.raises(ConfigError, match="no covariate 'c'"):
        add_ratios(cov, ["a/c"], ["P", "Q"])
    add_ratios(cov, ["b/a"], ["P", "Q"])
    assert cov["b/a"].tolist() == [2.0, 0.0]


def test_profile_patients_end_to_end(tmp_path):
    rng = np.random.default_rng(0)
    # 24 patients, 2 cases each; two groups differing in embedding and in age
    pats = [f"P{i:02d}" for i in range(24)]
    group = np.array([0] * 12 + [1] * 12)
    x = np.concatenate([rng.normal(6 * group[i], 0.3, (2, 4)) for i in range(24)])
    ids = [f"{p}_{j}" for p in pats for j in range(2)]
    d = write_embeddings(tmp_path / "e", x, ids=ids, labels=[str(group[i // 2]) for i in range(48)],
                         patients=[pats[i // 2] for i in range(48)])
    age = 40 + 20 * group + rng.normal(0, 1, 24)
    write(tmp_path / "cov.csv", "patient_id,age\n" + "".join(f"{p},{float(a)!r}\n" for p, a in zip(pats, age)))
    res = profile_patients(d, tmp_path / "out", covariates=tmp_path / "cov.csv", embedding_dims=1, n_boot=5,
                           n_resamples=200)
    assert res["n_patients"] == 24 and res["n_cases"] == 48 and res["k"] == 2
    assert res["features"]["mode"] == "both" and res["features"]["n_features"] == 2
    for row in res["profiles"]:
        members = [i for i, line in enumerate((tmp_path / "out" / "profiles.csv").read_text().split()[1:])
                   if int(line.split(",")[1]) == row["profile"]]
        m = row["covariates"]["age"]["mean"]
        assert m["value"] == pytest.approx(np.mean(age[members]))
        assert m["ci_low"] < m["value"] < m["ci_high"]
        assert row["covariates"]["age"]["median"]["value"] == pytest.approx(np.median(age[members]))
        assert len(row["label_composition"]) == 1 and sum(row["label_composition"].values()) == 2 * row["size"]
    s = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert s["patients_from"] == "patient_id column" and s["unstable_profiles"] == []
    for f in ("patients.csv", "report.md", "report.html", "profiles_map.png", "profiles_covariates.png"):
        assert (tmp_path / "out" / f).is_file()


def test_profile_option_errors(tmp_path):
    d = write_embeddings(tmp_path / "e", np.random.default_rng(0).normal(size=(8, 3)))
    with pytest.raises(ConfigError, match="--features covariates: no covariates"):
        profile_patients(d, tmp_path / "o", features="covariates")
    with pytest.raises(ConfigError, match="--embedding-dims: expected 1..3"):
        profile_patients(d, tmp_path / "o", embedding_dims=4)
