"""A 0/255 PNG mask (what drawing tools and BUSI/Kvasir-SEG write, and what
examples/make_folder_dataset.py makes) is a binary label map: read as 0/1, as the folder: reader
does for training (new-user fault: scoring a run's 0/1 predictions against masks/ failed)."""

import numpy as np
import pytest
from PIL import Image

from openmia.errors import PredictionError
from openmia.evaluation.label_maps import read_label_map


def _png(path, arr):
    Image.fromarray(arr.astype(np.uint8)).save(path)
    return path


def test_0_255_png_reads_as_binary(tmp_path):
    arr = np.zeros((8, 9), np.uint8)
    arr[2:5, 3:7] = 255
    lm = read_label_map(_png(tmp_path / "a.png", arr), "a")
    assert set(np.unique(lm.array)) == {0, 1}
    assert np.array_equal(lm.array, arr // 255)


def test_other_values_stay_labels(tmp_path):
    arr = np.zeros((8, 9), np.uint8)
    arr[2:5, 3:7] = 255
    arr[0, 0] = 2  # 0, 2 and 255: a multi-label map, not a 0/255 mask -> values kept
    lm = read_label_map(_png(tmp_path / "b.png", arr), "b")
    assert set(np.unique(lm.array)) == {0, 2, 255}


def test_npy_with_255_is_not_rewritten(tmp_path):
    arr = np.zeros((4, 4), np.uint8)
    arr[1, 1] = 255
    np.save(tmp_path / "c.npy", arr)
    assert read_label_map(tmp_path / "c.npy", "c").array.max() == 255  # only 8-bit image files carry the convention


def test_rgb_png_is_still_an_error(tmp_path):
    arr = np.zeros((5, 5, 3), np.uint8)
    arr[..., 0] = 255
    with pytest.raises(PredictionError, match="single-channel"):
        read_label_map(_png(tmp_path / "rgb.png", arr), "rgb")
