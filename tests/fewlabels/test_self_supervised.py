"""Self-supervised losses (hand-computed and an independent loop implementation) and tiny
pre-training runs in 2D and 3D: encoder + probe written, train split only, init_from reads it."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from openmia import api
from openmia.errors import ConfigError
from openmia.losses.self_supervised import byol_loss, masked_mse, nt_xent, patch_mask

FAST = ["model.kwargs.width=4", "train.epochs=1", "data.batch_size=32", "eval.n_resamples=50", "train.threads=1"]


def _nt_xent_loop(z1: np.ndarray, z2: np.ndarray, t: float) -> float:
    """NT-Xent written from the SimCLR paper's definition, one anchor at a time (independent check)."""
    z = np.concatenate([z1, z2])
    z = z / np.linalg.norm(z, axis=1, keepdims=True)
    n, total = len(z1), 0.0
    for i in range(2 * n):
        pos = (i + n) % (2 * n)
        denom = sum(math.exp(float(z[i] @ z[k]) / t) for k in range(2 * n) if k != i)
        total += -math.log(math.exp(float(z[i] @ z[pos]) / t) / denom)
    return total / (2 * n)


def test_nt_xent_hand_computed():
    # two images, orthogonal views that agree: z1 = z2 = [e1, e2]; sims: positive 1, negatives 0
    z = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    expected = -math.log(math.exp(1 / 0.5) / (math.exp(1 / 0.5) + 2 * math.exp(0.0)))
    assert nt_xent(z, z.clone(), 0.5).item() == pytest.approx(expected, abs=1e-6)


def test_nt_xent_matches_a_loop_implementation():
    g = torch.Generator().manual_seed(0)
    z1, z2 = torch.randn(5, 7, generator=g), torch.randn(5, 7, generator=g)
    assert nt_xent(z1, z2, 0.2).item() == pytest.approx(_nt_xent_loop(z1.numpy(), z2.numpy(), 0.2), rel=1e-5)


def test_byol_and_masked_losses_hand_computed():
    p, z = torch.tensor([[1.0, 0.0], [1.0, 1.0]]), torch.tensor([[0.0, 2.0], [2.0, 2.0]])
    assert byol_loss(p, z).item() == pytest.approx(((2 - 0) + (2 - 2)) / 2)  # cos 0 and cos 1
    recon, target = torch.zeros(1, 2, 2, 2), torch.ones(1, 2, 2, 2)
    mask = torch.tensor([[[[1.0, 0.0], [0.0, 0.0]]]])
    target[0, :, 0, 0] = 3.0
    assert masked_mse(recon, target, mask).item() == pytest.approx(9.0)  # only the hidden voxel, both channels
    m = patch_mask((3, 1, 10, 12), 4, 0.5, torch.Generator().manual_seed(0))
    assert m.shape == (3, 1, 10, 12) and set(m.unique().tolist()) == {0.0, 1.0}
    cells = m[:, 0, ::4, ::4]  # one value per 4x4 cell (3 x 3 grid)
    assert cells.shape[1:] == (3, 3) and all(int(c.sum()) == 4 or int(c.sum()) == 5 for c in cells)  # round(0.5 * 9)
    m3 = patch_mask((2, 1, 8, 8, 8), 4, 0.25, torch.Generator().manual_seed(0))
    assert m3.sum().item() == 2 * 2 * 64  # 2 of 8 cells of 64 voxels per volume


@pytest.mark.parametrize("method,dataset", [("simclr", "synthetic/binary"), ("byol", "synthetic/binary"),
                                            ("mim", "synthetic/binary3d")])
def test_tiny_pretraining_writes_encoder_and_probe(tiny_data, tmp_path, method, dataset):
    res = api.pretrain(method, dataset, [*FAST, "pretrain.knn_k=5", f"out_dir={tmp_path}"], run_dir=tmp_path / "pre",
                       progress=False, index=False)
    rd = res.run_dir
    ck = torch.load(rd / "encoder.pt", weights_only=True)
    assert ck["pretrain"]["method"] == method and ck["pretrain"]["dims"] == (3 if "3d" in dataset else 2)
    keys = set(ck["model"])
    assert keys and not any(k.startswith("head.") for k in keys)  # the classifier head is not part of the encoder
    assert any(k.endswith("running_mean") for k in keys)  # batch-norm statistics come with their layers
    result = json.loads((rd / "result.json").read_text())
    assert {"auc", "acc"} <= set(result["test"]) and {"auc", "acc"} <= set(result["knn"]["test"])
    assert result["test"]["auc"]["ci_low"] <= result["test"]["auc"]["value"] <= result["test"]["auc"]["ci_high"]
    assert (rd / "eval" / "probe" / "test").is_dir() and (rd / "eval" / "knn" / "val").is_dir()
    # only the training split's images: every training case, no validation or test case
    from openmia.data.catalog import load_split

    seen = json.loads((rd / "pretrain_cases.json").read_text())
    train_ids = load_split(dataset, "train").case_ids
    assert seen["split"] == "train" and set(seen["case_ids"]) == set(train_ids)
    for other in ("val", "test"):
        assert not set(seen["case_ids"]) & set(load_split(dataset, other).case_ids)


def test_pretrained_encoder_initialises_a_classifier(tiny_data, tmp_path, capsys):
    from openmia.cli.main import main

    args = [f"--set={o}" for o in FAST]
    assert main(["pretrain", "--method", "simclr", "--dataset", "synthetic/binary", "--split", "train",
                 "--out-dir", str(tmp_path / "runs"), *args, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out) >= {"run_dir", "encoder", "probe", "knn"} and "auc" in out["probe"] and "auc" in out["knn"]
    enc = torch.load(out["encoder"], weights_only=True)["model"]
    res = api.train(None, ["data.dataset=synthetic/binary", "model.name=cnn_small", *FAST, f"out_dir={tmp_path}",
                           f"train.init_from={out['run_dir']}", "train.freeze=probe"], run_dir=tmp_path / "ft",
                    progress=False, index=False)
    rec = json.loads((res.run_dir / "init_from.json").read_text())
    assert rec["source"].endswith("encoder.pt") and rec["pretrain"]["method"] == "simclr"
    assert set(rec["loaded_from"]) == set(enc) and rec["reinitialised"] == ["head.1.weight", "head.1.bias"]
    best = torch.load(res.run_dir / "checkpoints" / "best.pt", weights_only=True)["model"]
    assert all(torch.equal(best[k], enc[k]) for k in enc if not k.endswith("num_batches_tracked"))  # probe: body frozen


def test_pretraining_refuses_other_splits_and_wrong_backbones(tmp_path):
    with pytest.raises(ConfigError, match="reads the training split only"):
        api.pretrain("simclr", "synthetic/binary", split="test")
    with pytest.raises(ConfigError, match="pretrain.method: expected one of"):
        api.pretrain("moco", "synthetic/binary")
    with pytest.raises(ConfigError, match="do not apply to pre-training"):
        api.pretrain("simclr", "synthetic/binary", ["data.labelled_fraction=0.5"])
    with pytest.raises(ConfigError, match="is a segmentation model but synthetic/binary is a classification data set"):
        api.pretrain("simclr", "synthetic/binary", ["model.name=unet_small", f"out_dir={tmp_path}"], progress=False)
