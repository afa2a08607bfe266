"""openmia embed: the Task.embed hook (classifier penultimate layer, segmentation pooled
bottleneck) checked against features computed by hand from the model's own layers; pixels-PCA
checked against numpy's SVD; files, provenance, batching, errors and the CLI."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from openmia.errors import ConfigError, DataError


@pytest.fixture(scope="module")
def cls_run(tmp_path_factory):
    from openmia import api

    tmp = tmp_path_factory.mktemp("cls_run")
    return api.train(None, ["task=classification", "data.dataset=synthetic/multiclass", "model.kwargs.width=4",
                            "train.epochs=1", "train.threads=1", "eval.n_resamples=20", f"out_dir={tmp}"],
                     progress=False, index=False).run_dir


def test_classifier_embedding_is_the_penultimate_layer(cls_run, tmp_path):
    import torch

    from openmia import api
    from openmia.data.catalog import load_split
    from openmia.engine.predict import load_run

    res = api.embed(tmp_path / "e", run_dir=cls_run, split="val", batch_size=7)
    emb = np.load(tmp_path / "e" / "embeddings.npy")
    val = load_split("synthetic/multiclass", "val")
    assert emb.dtype == np.float32 and emb.shape == (len(val.case_ids), 32) == (res["cases"], res["dims"])
    run = load_run(cls_run)
    with torch.no_grad():  # by hand: SmallCNN's feature extractor (pooled, flattened), what its head's Linear sees
        ref = run.model.features(run.task.float_batch(val.images)).numpy()
    np.testing.assert_allclose(emb, ref, rtol=1e-5, atol=1e-5)
    rows = list(csv.DictReader(open(tmp_path / "e" / "cases.csv")))
    assert [r["case_id"] for r in rows] == val.case_ids
    assert [int(r["label"]) for r in rows] == val.labels.tolist()
    assert rows[0]["label_name"] == val.spec.label_names[val.labels[0]]
    meta = json.loads((tmp_path / "e" / "embed.json").read_text())
    assert meta["layer"] == "input of head.1 (the penultimate layer)" and meta["split"] == "val"
    assert len(meta["checkpoint_sha256"]) == 64 and len(meta["embeddings_sha256"]) == 64
    # batching does not change the vectors
    api.embed(tmp_path / "e2", run_dir=cls_run, split="val", batch_size=64)
    np.testing.assert_allclose(np.load(tmp_path / "e2" / "embeddings.npy"), emb, rtol=1e-5, atol=1e-6)


def test_embedding_layer_attribute_overrides(cls_run):
    import torch

    from openmia.engine.predict import load_run

    run = load_run(cls_run)
    run.model.embedding_layer = "features.6"  # the last stage's output (before pooling) enters ...
    x = torch.zeros((2, 1, 28, 28))
    assert run.task.embed(run.model, x).shape[0] == 2
    run.model.embedding_layer = "nope"
    with pytest.raises(ConfigError, match="names no submodule"):
        run.task.embed(run.model, x)


def test_segmentation_embedding_is_the_pooled_bottleneck(seg_images, tmp_path):
    import torch

    from openmia import api
    from openmia.data.catalog import load_split
    from openmia.engine.predict import load_run

    run_dir, _ = seg_images(1)
    res = api.embed(tmp_path / "e", run_dir=run_dir, split="val", batch_size=16)
    emb = np.load(tmp_path / "e" / "embeddings.npy")
    run = load_run(run_dir)
    val = load_split("synthetic/seg2d", "val")
    m = run.model
    with torch.no_grad():  # by hand: the U-Net's encoder path, then the mean over the bottleneck's pixels
        x = run.task.float_batch(val.images)
        for i, block in enumerate(m.enc):
            x = block(x)
            if i < m.depth:
                x = m.pool(x)
        ref = x.mean(dim=(2, 3)).numpy()
    np.testing.assert_allclose(emb, ref, rtol=1e-4, atol=1e-5)
    assert "bottleneck" in res["layer"]
    header = (tmp_path / "e" / "cases.csv").read_text().splitlines()[0]
    assert header == "case_id"  # a segmentation set has no class per case


def test_pixels_pca_matches_numpy_svd(tmp_path):
    from openmia import api
    from openmia.data.catalog import load_split

    res = api.embed(tmp_path / "p", method="pixels-pca", dataset="synthetic/binary", split="test", fit_split="val", dims=5)
    emb = np.load(tmp_path / "p" / "embeddings.npy")
    tr, te = load_split("synthetic/binary", "val"), load_split("synthetic/binary", "test")
    a = tr.images.reshape(len(tr.images), -1).astype(np.float64) * (2 / 255) - 1
    b = te.images.reshape(len(te.images), -1).astype(np.float64) * (2 / 255) - 1
    mu = a.mean(axis=0)
    _, _, vt = np.linalg.svd(a - mu, full_matrices=False)
    ref = (b - mu) @ vt[:5].T
    np.testing.assert_allclose(np.abs(emb), np.abs(ref), rtol=1e-3, atol=1e-3)  # components' signs are arbitrary
    assert res["dims"] == 5 and json.loads((tmp_path / "p" / "embed.json").read_text())["fit_split"] == "val"


def test_embed_errors(cls_run, tmp_path, monkeypatch):
    from types import SimpleNamespace

    from openmia import api
    from openmia.engine import embed as embed_mod

    with pytest.raises(ConfigError, match="at most 400 components"):
        api.embed(tmp_path / "a", method="pixels-pca", dataset="synthetic/binary", fit_split="val", dims=10**6)
    with pytest.raises(ConfigError, match="uses no model"):
        api.embed(tmp_path / "b", method="pixels-pca", run_dir=cls_run, dataset="synthetic/binary")
    with pytest.raises(ConfigError, match="needs --model"):
        api.embed(tmp_path / "c")
    with pytest.raises(ConfigError, match="--split"):
        api.embed(tmp_path / "e", method="pixels-pca", dataset="synthetic/binary", split="dev")
    # another data set whose images do not fit the run (a stand-in split: 3-channel 3D images)
    fake = SimpleNamespace(spec=SimpleNamespace(channels=3, dims=3), images=np.zeros((2, 3, 4, 4, 4), np.uint8))
    monkeypatch.setattr(embed_mod, "load_cases", lambda *a, **k: fake)
    with pytest.raises(DataError, match="3-channel 3D images, but the run .* 1-channel 2D"):
        api.embed(tmp_path / "d", run_dir=cls_run, dataset="other")


def test_nan_embedding_names_case(cls_run, tmp_path, monkeypatch):
    import torch

    from openmia import api
    from openmia.errors import PredictionError
    from openmia.tasks.classification import ClassificationTask

    def bad(self, model, batch):
        out = torch.zeros((batch.shape[0], 3))
        out[0, 1] = float("nan")
        return out

    monkeypatch.setattr(ClassificationTask, "embed", bad)
    with pytest.raises(PredictionError, match="case\\(s\\) synthetic/multiclass/val/00000 contains NaN"):
        api.embed(tmp_path / "n", run_dir=cls_run, split="val", batch_size=500)


def test_cli_embed(cls_run, tmp_path, capsys):
    from openmia.cli.main import main

    assert main(["embed", "--model", str(cls_run), "--split", "test", "--out", str(tmp_path / "o"), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["dims"] == 32 and (tmp_path / "o" / "embeddings.npy").is_file()
    assert main(["embed", "--method", "pixels-pca", "--out", str(tmp_path / "o2")]) == 2
    assert "needs --dataset" in capsys.readouterr().err
