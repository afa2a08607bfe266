"""``openmia predict`` / ``count`` never replace their inputs or earlier results, and a bad input
image is reported with the others' outputs written (issue 21, faults 4, 7 and 12)."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from openmia import api
from openmia.cli.main import main
from openmia.errors import OutputConflictError, OutputError, PredictionError


@pytest.fixture(scope="module")
def run_and_images(seg_images):
    return seg_images(3)


def test_predict_refuses_to_write_into_its_input_folder(run_and_images, tmp_path, capsys):
    rd, images = run_and_images
    before = {p.name: p.read_bytes() for p in images.iterdir()}
    for out in (images, images / "labels", images.parent):
        with pytest.raises(OutputConflictError, match="input"):
            api.predict(rd, images, out)
    assert main(["predict", "--model", str(rd), "--input", str(images), "--out", str(images)]) == 2
    assert "error:" in capsys.readouterr().err
    assert {p.name: p.read_bytes() for p in images.iterdir()} == before  # the inputs are untouched


def test_predict_into_earlier_results_needs_overwrite(run_and_images, tmp_path):
    rd, images = run_and_images
    out = tmp_path / "labels"
    assert api.predict(rd, images, out)["cases"] == 3
    with pytest.raises(OutputConflictError, match="--overwrite"):
        api.predict(rd, images, out)
    assert api.predict(rd, images, out, overwrite=True)["cases"] == 3
    (tmp_path / "file").write_text("x")
    with pytest.raises(OutputError, match="existing file"):
        api.predict(rd, images, tmp_path / "file")


def test_a_bad_image_is_reported_after_the_others_are_written(run_and_images, tmp_path):
    rd, images = run_and_images
    mixed = tmp_path / "mixed"
    mixed.mkdir()
    for p in images.iterdir():
        (mixed / p.name).write_bytes(p.read_bytes())
    (mixed / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(mixed / "rgb.png")  # 3 channels; the run takes 1
    with pytest.raises(PredictionError, match=r"2 input image\(s\) could not be predicted") as err:
        api.predict(rd, mixed, tmp_path / "out")
    assert "broken" in str(err.value) and "rgb" in str(err.value)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["case0.png", "case1.png", "case2.png"]


def test_count_refuses_an_output_folder_holding_its_inputs(tmp_path):
    img = tmp_path / "cells.png"
    Image.fromarray(np.zeros((32, 32), np.uint8)).save(img)
    with pytest.raises(OutputConflictError):
        api.count([img], tmp_path, method="log")
    assert api.count([img], tmp_path / "counts", method="log")["cases"] == 1
    with pytest.raises(OutputConflictError, match="--overwrite"):
        api.count([img], tmp_path / "counts", method="log")
    assert api.count([img], tmp_path / "counts", method="log", overwrite=True)["cases"] == 1
