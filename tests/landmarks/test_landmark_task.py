"""``openmia train --task landmarks`` end to end on the synthetic 2D set: a tiny DQN run (a few
hundred environment steps; it only has to run and write its outputs), the atlas prior (its
predictions are exactly the training mean) and the heat-map U-Net, through ``api.train``."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

pytest.importorskip("stable_baselines3")

from openmia import api  # noqa: E402

COMMON = ["task=landmarks", "data.dataset=synthetic/landmarks2d", "eval.n_resamples=100", "train.threads=1"]


def _points(path):
    with open(path) as f:
        return [r for r in csv.DictReader(f)]


def test_tiny_dqn_run_writes_its_outputs(tmp_path):
    rd = tmp_path / "dqn"
    res = api.train(None, [*COMMON, "model.name=dqn_agent", "train.epochs=2", "data.batch_size=32", "landmarks.warmup=200",
                           "landmarks.buffer=1000", "landmarks.val_episodes=8", "landmarks.max_steps=20",
                           "landmarks.patch=7", "landmarks.scales=[1,3]"], run_dir=rd, progress=False, index=False)
    assert res.epochs_done == 2
    lines = [json.loads(x) for x in (rd / "metrics.jsonl").read_text().splitlines()]
    assert len(lines) == 2 and all(np.isfinite(x["val_radial_error"]) for x in lines)
    rows = _points(rd / "predictions" / "test.csv")
    assert len(rows) == 80 * 2 and set(rows[0]) == {"case_id", "landmark", "x", "y"}
    summary = json.loads((rd / "eval" / "test" / "summary.json").read_text())
    assert summary["task"] == "landmarks" and summary["n_cases"] == 80
    assert {p.name for p in (rd / "agents").iterdir()} == {"blob.zip", "ring.zip"}
    result = json.loads((rd / "result.json").read_text())
    assert "radial_error" in result["test"] and result["eval_start"] == "centre"


def test_atlas_prior_run_predicts_the_training_mean(tmp_path):
    from openmia.data.catalog import load_split

    rd = tmp_path / "atlas"
    api.train(None, [*COMMON, "model.name=atlas_prior", "train.epochs=1"], run_dir=rd, progress=False, index=False)
    tr = load_split("synthetic/landmarks2d", "train")
    mean = np.asarray(tr.labels, dtype=float).mean(axis=0)  # (K, D); every case has the whole 64 x 64 image
    rows = _points(rd / "predictions" / "test.csv")
    for r in rows[:6]:
        k = ("blob", "ring").index(r["landmark"])
        np.testing.assert_allclose([float(r["x"]), float(r["y"])], mean[k], rtol=1e-6)


def test_heatmap_unet_run(tmp_path):
    rd = tmp_path / "heat"
    res = api.train(None, [*COMMON, "model.name=heatmap_unet", "train.epochs=1", "data.batch_size=32",
                           "landmarks.decode=argmax"], run_dir=rd, progress=False, index=False)
    assert res.epochs_done == 1 and (rd / "eval" / "test" / "summary.json").is_file()
    rows = _points(rd / "predictions" / "test.csv")
    assert all(float(r["x"]).is_integer() for r in rows)  # argmax decoding gives voxel positions
