"""Training, evaluating and predicting on a user's own data (folder:, nnunet:), end to end."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from openmia import api

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def folder_sets(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("own")
    subprocess.run([sys.executable, str(ROOT / "examples" / "make_folder_dataset.py"), str(out), "--images", "40"],
                   check=True, capture_output=True)
    return out


def test_train_evaluate_and_predict_on_a_folder_of_class_subfolders(folder_sets, tmp_path):
    res = api.train(None, ["task=classification", f"data.dataset=folder:{folder_sets / 'shapes'}", "data.size=32",
                           "model.name=cnn_small", "model.kwargs.width=4", "train.epochs=2", "train.threads=1",
                           "eval.n_resamples=50", f"out_dir={tmp_path}"], progress=False, index=False)
    rd = res.run_dir
    split = json.loads((rd / "splits.json").read_text())
    assert set(split["splits"]) == {"train", "val", "test"} and split["files_sha256"]
    assert sum(len(v) for v in split["splits"].values()) == 40  # every image in exactly one split
    prov = json.loads((rd / "provenance.json").read_text())
    assert prov["data"]["files_sha256"] == split["files_sha256"] and prov["data"]["split_rule"] == split["rule"]
    assert res.test_summary["n_cases"] == len(split["splits"]["test"])
    # new images of another size are resized as the training images were
    out = api.predict(rd, folder_sets / "shapes" / "round", tmp_path / "pred")
    assert out["cases"] == len(list((folder_sets / "shapes" / "round").iterdir()))
    assert (tmp_path / "pred" / "predictions.csv").read_text().startswith("case_id,")


def test_train_on_a_folder_of_images_and_masks(folder_sets, tmp_path):
    res = api.train(None, ["task=segmentation", f"data.dataset=folder:{folder_sets / 'lesions'}", "data.size=32",
                           "model.kwargs.width=4", "train.epochs=1", "train.threads=1", "eval.n_resamples=50",
                           f"out_dir={tmp_path}"], progress=False, index=False)
    assert {"lesion", "all"} <= set(res.test_summary["labels"]) or "all" in res.test_summary["labels"]
    assert (res.run_dir / "splits.json").is_file()


@pytest.mark.slow
def test_train_on_an_nnunet_folder_built_from_the_hippocampus_data(shared_data, tmp_path):
    """A 3D nnU-Net v2 raw folder (symlinks to the shared MSD hippocampus files) trains end to end."""
    sys.path.insert(0, str(ROOT / "tests" / "data"))
    from _user_builders import nnunet_from_msd  # noqa: E402  (the data tests' builder)

    root = nnunet_from_msd(shared_data / "hippocampus", tmp_path / "Dataset004_Hippocampus")
    res = api.train(None, ["task=segmentation", f"data.dataset=nnunet:{root}", "model.name=unet_small",
                           "model.kwargs.width=8", "train.epochs=2", "data.batch_size=8", "train.threads=2",
                           "eval.n_resamples=200", f"out_dir={tmp_path}"], progress=False, index=False)
    dice = next(m for m in res.test_summary["metrics"] if m["metric"] == "dice" and m["label"] == "all")
    assert 0 < dice["value"] <= 1 and res.test_summary["n_cases"] > 30
