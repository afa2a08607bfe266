"""Resampling, patch sampling and per-modality normalisation."""

from __future__ import annotations

import numpy as np
import pytest

from openmia.errors import ConfigError
from openmia.transforms.intensity import normalize_ct, normalize_for_modality, normalize_minmax, normalize_mri
from openmia.transforms.spatial import resample_to_spacing, sample_patch


def test_resample_halves_and_keeps_labels():
    img = np.random.default_rng(0).random((1, 10, 20, 8)).astype(np.float32)
    lab = np.zeros((10, 20, 8), np.uint8)
    lab[2:8, 5:15, 2:6] = 2
    out, l2, sp = resample_to_spacing(img, (2.0, 1.0, 1.0), (1.0, 2.0, 1.0), label=lab)
    assert out.shape == (1, 20, 10, 8) and l2.shape == (20, 10, 8) and sp == (1.0, 2.0, 1.0)
    assert set(np.unique(l2)) == {0, 2}  # nearest neighbour: no new label values
    # physical volume of the label is preserved (up to boundary rounding)
    assert abs(int((l2 > 0).sum()) * 2.0 - int((lab > 0).sum()) * 2.0) <= 0.1 * (lab > 0).sum() * 2
    with pytest.raises(ConfigError, match="positive spacings"):
        resample_to_spacing(img, (1, 1), (1, 1, 1))


def test_patch_sampling_oversamples_foreground():
    rng = np.random.default_rng(0)
    lab = np.zeros((64, 64), np.uint8)
    lab[60:63, 60:63] = 1  # a tiny structure in a corner
    img = np.zeros((1, 64, 64), np.float32)
    hits = sum(sample_patch(img, lab, (16, 16), rng, foreground_fraction=1.0)[1].any() for _ in range(20))
    assert hits == 20
    hits_uniform = sum(sample_patch(img, lab, (16, 16), rng, foreground_fraction=0.0)[1].any() for _ in range(200))
    assert hits_uniform < 40
    small_img, small_lab = sample_patch(np.ones((2, 5, 6), np.float32), np.ones((5, 6), np.uint8), (8, 8), rng)
    assert small_img.shape == (2, 8, 8) and small_lab.shape == (8, 8) and small_lab.sum() == 30


def test_normalisations():
    ct = np.array([-3000.0, -1000.0, 0.0, 1000.0, 3000.0])
    z = normalize_ct(ct, window=(-1000, 1000))
    assert z.mean() == pytest.approx(0, abs=1e-6) and z.std() == pytest.approx(1, abs=1e-5)
    assert z[0] == z[1] and z[3] == z[4]  # clipped to the window
    mri = np.array([0.0, 0.0, 10.0, 20.0, 30.0])
    n = normalize_mri(mri)
    assert n[0] == 0 and n[2:].mean() == pytest.approx(0, abs=1e-6)
    x = normalize_minmax(np.arange(1000.0))
    assert 0 <= x.min() and x.max() <= 1
    assert normalize_for_modality(mri, "MRI") == pytest.approx(n)
    with pytest.raises(ConfigError, match="no normalisation rule for modality 'PET'"):
        normalize_for_modality(mri, "PET")
