"""Real data (slow): Hippocampus patient profiles from pixel-PCA embeddings and the truth volumes;
the volumes cross-checked against nibabel + numpy computed here."""

from __future__ import annotations

import numpy as np
import pytest


@pytest.mark.slow
def test_hippocampus_profiles(shared_data, tmp_path):
    nib = pytest.importorskip("nibabel")
    from openmia import api

    root = shared_data / "hippocampus"
    api.embed(tmp_path / "e", method="pixels-pca", dataset="hippocampus", split="test", fit_split="test", dims=10, root=root)
    res = api.profile(tmp_path / "e", tmp_path / "p", volumes_from=root / "labelsTr",
                      ratios=["volume_anterior_mm3/volume_posterior_mm3"], n_boot=10, n_resamples=200)
    assert res["n_patients"] == 52 and res["covariates"] == ["volume_anterior_mm3", "volume_posterior_mm3",
                                                             "volume_anterior_mm3/volume_posterior_mm3"]
    assert 2 <= res["k"] <= 10 and all(p["mean_jaccard"] is not None for p in res["profiles"])
    # independent check of one patient's volumes: voxel counts x the header's voxel volume
    rows = (tmp_path / "p" / "patients.csv").read_text().splitlines()
    pid, _, _, ant, post, ratio = rows[1].split(",")
    img = nib.load(str(root / "labelsTr" / f"{pid}.nii.gz"))
    lab, vox = np.asarray(img.dataobj), float(np.prod(img.header.get_zooms()[:3]))
    assert float(ant) == pytest.approx((lab == 1).sum() * vox) and float(post) == pytest.approx((lab == 2).sum() * vox)
    assert float(ratio) == pytest.approx(float(ant) / float(post))
