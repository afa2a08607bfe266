"""Landmarks derived from real label maps (slow: reads ../shared/data): the hippocampus centroids
equal scipy's centre of mass of the catalogue set's own label maps, BUSI leaves out the normal
images; the specs are there without the data."""

from __future__ import annotations

import numpy as np
import pytest


def test_specs_without_data():
    from openmia.data.catalog import get_spec

    h = get_spec("hippocampus_landmarks")
    assert h.task == "landmarks" and h.label_names == ("anterior", "posterior") and h.folds == 5
    b = get_spec("busi_landmarks")
    assert b.label_names == ("lesion",) and b.spacing is None
    assert dict(b.split_sizes) == {"train": 168, "val": 24, "test": 48}  # the BUSI split without its normal images


@pytest.mark.slow
def test_hippocampus_centroids(shared_data):
    from scipy import ndimage

    from openmia.data.catalog import load_split

    lm = load_split("hippocampus_landmarks", "test", root=shared_data / "hippocampus")
    seg = load_split("hippocampus", "test", root=shared_data / "hippocampus")
    assert lm.case_ids == seg.case_ids and lm.labels.shape == (52, 2, 3)
    for i in (0, 17, 51):
        for k, v in enumerate((1, 2)):
            np.testing.assert_allclose(lm.labels[i, k], ndimage.center_of_mass(seg.labels[i] == v), rtol=1e-6)
    assert np.all(lm.labels[:, 0, 1] > lm.labels[:, 1, 1])  # the head lies further along axis 1 than body/tail here


@pytest.mark.slow
def test_busi_lesion_centroids(shared_data):
    from openmia.data.catalog import load_split

    s = load_split("busi_landmarks", "val", root=shared_data / "busi")
    assert len(s.case_ids) == 24 and not any(c.startswith("normal") for c in s.case_ids)
    assert s.labels.shape == (24, 1, 2) and np.all((s.labels >= 0) & (s.labels <= 255))
