"""Inpainting masks and image noise (openmia.transforms.corruption): determinism, hole fractions,
shapes, the noise formulas, the [0, 1] scale, and the bad-mask errors."""

from __future__ import annotations

import numpy as np
import pytest

from openmia.errors import ConfigError, DataError
from openmia.transforms import corruption as C


@pytest.mark.parametrize("kind", ["boxes", "strokes", "slices", "mixed"])
@pytest.mark.parametrize("shape", [(64, 64), (24, 32, 20)])
def test_masks_are_seeded_and_cover_the_hole_range(kind, shape):
    fracs = []
    for i in range(6):
        a = C.make_mask(kind, shape, C.case_rng(3, "test", i))
        b = C.make_mask(kind, shape, C.case_rng(3, "test", i))
        assert a.dtype == bool and a.shape == shape
        np.testing.assert_array_equal(a, b)  # same seed, split and case -> the same holes
        fracs.append(a.mean())
        assert 0.05 <= a.mean() <= 0.25, (kind, shape, a.mean())
    # another case index or seed gives other holes
    assert not np.array_equal(C.make_mask(kind, shape, C.case_rng(3, "test", 0)), C.make_mask(kind, shape, C.case_rng(3, "test", 1)))
    assert not np.array_equal(C.make_mask(kind, shape, C.case_rng(3, "test", 0)), C.make_mask(kind, shape, C.case_rng(4, "test", 0)))
    assert len(set(np.round(fracs, 4))) > 1  # the fraction itself is drawn from the range


def test_slice_gaps_remove_whole_planes_and_keep_the_ends():
    m = C.slice_mask((40, 16, 12), C.case_rng(0, "val", 2), (0.1, 0.2))
    per_slice = m.reshape(40, -1).mean(1)
    assert set(np.unique(per_slice)) <= {0.0, 1.0}  # every slice entirely missing or entirely kept
    assert per_slice[0] == 0 and per_slice[-1] == 0
    assert 4 <= per_slice.sum() <= 8  # 10-20 % of 40 slices


def test_custom_hole_range_is_respected():
    for i in range(5):
        m = C.make_mask("strokes", (48, 48), C.case_rng(0, "x", i), (0.3, 0.35))
        assert 0.3 <= m.mean() <= 0.35


@pytest.mark.parametrize("bad", [(0.0, 0.2), (0.3, 0.2), (0.1, 1.0), ("a", 0.2), (0.1,)])
def test_bad_hole_range_is_a_config_error(bad):
    with pytest.raises(ConfigError, match="hole_range"):
        C.check_hole_range(bad)


def test_slice_gaps_impossible_for_too_few_slices():
    with pytest.raises(ConfigError, match="slices along axis 0"):
        C.slice_mask((4, 16, 16), C.case_rng(0, "x", 0), (0.05, 0.1))


def test_unknown_mask_kind_and_bad_image_shape():
    with pytest.raises(ConfigError, match="mask kind"):
        C.make_mask("circles", (16, 16), C.case_rng(0, "x", 0))
    with pytest.raises(DataError, match="2D or 3D"):
        C.make_mask("boxes", (16,), C.case_rng(0, "x", 0))


def test_check_mask_errors_name_the_case_and_the_problem():
    img_shape = (8, 8)
    with pytest.raises(DataError, match=r"case 'c1'.*mask shape \(8, 9\) differs from the image's spatial shape \(8, 8\)"):
        C.check_mask(np.ones((8, 9)), img_shape, "c1")
    with pytest.raises(DataError, match=r"case 'c2'.*covers nothing"):
        C.check_mask(np.zeros((8, 8)), img_shape, "c2")
    with pytest.raises(DataError, match=r"case 'c3'.*covers the whole image"):
        C.check_mask(np.ones((8, 8)), img_shape, "c3")
    m = np.zeros((1, 8, 8), np.uint8)
    m[0, 2, 3] = 255
    out = C.check_mask(m, img_shape, "c4")  # a (1, H, W) mask and 0/255 values are accepted
    assert out.dtype == bool and out.sum() == 1 and out[2, 3]


def test_gaussian_and_rician_noise_follow_their_formulas():
    x = np.full((4, 5), 0.5)
    g = C.add_noise(x, "gaussian", 0.1, np.random.default_rng(7))
    n = np.random.default_rng(7).standard_normal(x.shape)
    np.testing.assert_allclose(g, 0.5 + 0.1 * n, rtol=1e-6)
    r = C.add_noise(x, "rician", 0.1, np.random.default_rng(7))
    rng = np.random.default_rng(7)
    n1, n2 = rng.standard_normal(x.shape), rng.standard_normal(x.shape)
    np.testing.assert_allclose(r, np.sqrt((0.5 + 0.1 * n1) ** 2 + (0.1 * n2) ** 2), rtol=1e-6)
    assert r.dtype == np.float32 and (r >= 0).all()


def test_rician_noise_on_zero_signal_is_rayleigh():
    # |noise| of a zero signal is Rayleigh(sigma): mean sigma sqrt(pi / 2) (independent check of the formula)
    r = C.add_noise(np.zeros(200_000), "rician", 0.2, np.random.default_rng(0))
    assert abs(r.mean() - 0.2 * np.sqrt(np.pi / 2)) < 0.002


def test_noise_bad_inputs():
    with pytest.raises(ConfigError, match="noise kind"):
        C.add_noise(np.zeros(3), "poisson", 0.1, np.random.default_rng(0))
    with pytest.raises(ConfigError, match="sigma"):
        C.add_noise(np.zeros(3), "gaussian", 0.0, np.random.default_rng(0))


def test_unit_range_conventions():
    u8 = np.array([[0, 51, 255]], np.uint8)
    np.testing.assert_allclose(C.to_unit_range(u8, "uint8_unit"), [[0, 0.2, 1.0]])
    f = np.array([[-2.0, 0.0, 2.0]], np.float32)
    np.testing.assert_allclose(C.to_unit_range(f, "float"), [[0, 0.5, 1.0]])
    # a constant float image maps to zeros (stated convention: no division by zero)
    np.testing.assert_array_equal(C.to_unit_range(np.full((3, 3), 7.0), "float"), np.zeros((3, 3)))
    with pytest.raises(DataError, match="case 'z'.*NaN"):
        C.to_unit_range(np.array([1.0, np.nan]), "float", "z")
