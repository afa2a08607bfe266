"""Largest-component post-processing: hand-made cases and a cross-check with scikit-image."""

import numpy as np
import pytest

from openmia.errors import ConfigError
from openmia.transforms.postprocess import keep_largest_component, postprocess_labels


def test_keeps_the_largest_component_of_each_class_by_hand():
    lab = np.zeros((6, 8), np.uint8)
    lab[0:2, 0:2] = 1  # class 1: 4 pixels, removed
    lab[3:6, 0:3] = 1  # class 1: 9 pixels, kept
    lab[0, 5:8] = 2  # class 2: 3 pixels, kept
    lab[5, 7] = 2  # class 2: 1 pixel, removed
    lab[2, 4] = 2  # touches nothing of class 2 face-wise (diagonal neighbours are separate)
    out = postprocess_labels(lab, "largest", 3)
    want = np.zeros_like(lab)
    want[3:6, 0:3] = 1
    want[0, 5:8] = 2
    np.testing.assert_array_equal(out, want)
    assert out.dtype == lab.dtype and lab[0, 0] == 1  # the input is not modified
    assert postprocess_labels(lab, "none", 3) is lab


def test_agrees_with_skimage_in_3d():
    from skimage.measure import label as sk_label

    rng = np.random.default_rng(0)
    lab = (rng.random((12, 13, 14)) < 0.35).astype(np.uint8) * rng.integers(1, 3, (12, 13, 14)).astype(np.uint8)
    out = keep_largest_component(lab, [1, 2])
    for k in (1, 2):
        comp = sk_label(lab == k, connectivity=1)
        sizes = np.bincount(comp.ravel())[1:]
        np.testing.assert_array_equal(out == k, comp == int(np.argmax(sizes)) + 1)


def test_unknown_method_is_a_config_error():
    with pytest.raises(ConfigError, match="eval.postprocess: expected one of"):
        postprocess_labels(np.zeros((2, 2), np.uint8), "biggest", 2)
