"""Run directories written by the engine before the redesign (commit 2eb43d1, flat config layout:
``eval.tta``, ``train.loss``, ``data.crop`` ...) still resume, re-evaluate and predict.

``tests/fixtures/old_runs/`` was written by that commit's code (``make_old_runs.py`` there, run on its
tree): a complete segmentation run (predictions and reports removed to keep the fixture small) and
a classification run killed after its first epoch."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import numpy as np

OLD = Path(__file__).resolve().parents[1] / "fixtures" / "old_runs"


def _copy(name: str, tmp_path: Path) -> Path:
    return Path(shutil.copytree(OLD / name, tmp_path / name))


def test_old_config_is_migrated_on_load_with_a_note(tmp_path, caplog):
    from openmia.engine.predict import load_run

    rd = _copy("seg_complete", tmp_path)
    with caplog.at_level(logging.INFO, logger="openmia.config"):
        run = load_run(rd)
    assert run.cfg.options.tta is True and run.cfg.options.postprocess == "largest" and run.cfg.options.loss == "dice_ce"
    assert "earlier config layout" in caplog.text and "eval.tta -> segmentation.tta" in caplog.text


def test_an_old_killed_run_resumes_to_completion(tmp_path):
    from openmia import api

    rd = _copy("cls_killed", tmp_path)
    res = api.resume(rd, progress=False, index=False)
    assert res.epochs_done == 3
    epochs = [json.loads(x)["epoch"] for x in (rd / "metrics.jsonl").read_text().splitlines()]
    assert epochs == [1, 2, 3]
    cfg_text = (rd / "config.yaml").read_text()  # the old file is left as it was written
    assert "class_weights: balanced" in cfg_text and "classification:" not in cfg_text


def test_an_old_complete_run_reevaluates_and_predicts(tmp_path):
    from PIL import Image

    from openmia import api
    from openmia.data.catalog import load_split

    rd = _copy("seg_complete", tmp_path)
    res = api.reevaluate(rd, tmp_path / "again", ["segmentation.tta=false", "eval.n_resamples=50"], index=False)
    dice = next(m for m in res.test_summary["metrics"] if m["metric"] == "dice" and m["label"] == "all")
    assert 0 <= dice["value"] <= 1
    assert "segmentation:" in (tmp_path / "again" / "config.yaml").read_text()  # written in the new layout
    images = tmp_path / "images"
    images.mkdir()
    test = load_split("synthetic/seg2d", "test")
    for i in range(3):
        Image.fromarray(test.images[i, 0]).save(images / f"case{i}.png")
    out = api.predict(rd, images, tmp_path / "labels")
    assert out["cases"] == 3
    assert np.asarray(Image.open(tmp_path / "labels" / "case0.png")).shape == test.images[0, 0].shape
