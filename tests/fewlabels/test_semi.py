"""data.labelled_fraction (seeded, stratified; errors naming the class) and the semi-supervised
methods (hand-computed losses; a tiny run of each)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from openmia.config import load_config
from openmia.engine.run_dir import train
from openmia.engine.semi import consistency_ce, labelled_indices, rampup_factor, softmax_mse
from openmia.errors import ConfigError

FAST = ["model.kwargs.width=4", "train.epochs=1", "data.batch_size=32", "eval.n_resamples=50", "train.threads=1"]


@pytest.mark.parametrize("bad", ["0", "0.0", "1.5", "-0.1"])
def test_fraction_outside_zero_one_is_refused(bad):
    with pytest.raises(ConfigError, match=rf"data.labelled_fraction: expected a fraction in \(0, 1\].*found {bad}"):
        load_config(None, [f"data.labelled_fraction={bad}"])


def test_a_class_left_without_labels_is_named():
    labels = np.array([0] * 90 + [1] * 7 + [2] * 3)
    with pytest.raises(ConfigError, match=r"class 'rare' of toy has 3 training case\(s\) but none keeps its label; "
                                          r"this class needs data.labelled_fraction >= 0.167"):
        labelled_indices(labels, 0.1, 0, ["common", "mid", "rare"], dataset="toy")
    assert len(labelled_indices(labels, 0.17, 0, ["common", "mid", "rare"])) == 15 + 1 + 1  # round(15.3, 1.19, 0.51)


def test_segmentation_class_left_without_labels_is_named():
    maps = np.zeros((20, 4, 4), np.uint8)
    maps[:10, 0, 0] = 1
    maps[10, 1, 1] = 2  # class 2 in one empty-or-not stratum case only
    with pytest.raises(ConfigError, match="class 'tumour'"):
        for seed in range(20):  # some seed drops case 10 from the 10 % subset
            labelled_indices(maps, 0.1, seed, ["background", "organ", "tumour"])


def test_subset_is_stratified_seeded_and_sorted():
    rng = np.random.default_rng(1)
    labels = rng.choice(3, size=1000, p=[0.6, 0.3, 0.1])
    idx = labelled_indices(labels, 0.1, 7, ["a", "b", "c"])
    counts, sub = np.bincount(labels, minlength=3), np.bincount(labels[idx], minlength=3)
    assert np.all(np.abs(sub - counts * 0.1) <= 0.5)  # each class's share to within the rounding
    assert np.array_equal(idx, np.sort(idx)) and len(set(idx)) == len(idx)
    assert np.array_equal(idx, labelled_indices(labels, 0.1, 7, ["a", "b", "c"]))
    assert not np.array_equal(idx, labelled_indices(labels, 0.1, 8, ["a", "b", "c"]))
    assert np.array_equal(labelled_indices(labels, 1.0, 7, ["a", "b", "c"]), np.arange(1000))
    # cross-check the proportions with scikit-learn's stratified splitter (independent implementation)
    from sklearn.model_selection import train_test_split

    sk, _ = train_test_split(np.arange(1000), train_size=0.1, stratify=labels, random_state=0)
    assert np.all(np.abs(np.bincount(labels[sk], minlength=3) - sub) <= 1)


def test_consistency_ce_hand_computed():
    # two cases, two classes: teacher confident on case 0 (p = 0.88) only
    t = torch.tensor([[2.0, 0.0], [0.1, 0.0]])
    s = torch.tensor([[0.0, 1.0], [3.0, 0.0]])
    loss, used = consistency_ce(s, t, 0.8)
    # case 0: target 0, CE = log(1 + e) - 0 = 1.31326; case 1 masked; mean over 2 cases
    assert used == 0.5 and loss.item() == pytest.approx(math.log(1 + math.e) / 2, abs=1e-6)
    # per voxel (segmentation shapes): (N, K, H, W)
    loss2, used2 = consistency_ce(s[:, :, None, None].expand(2, 2, 2, 3), t[:, :, None, None].expand(2, 2, 2, 3), 0.8)
    assert used2 == 0.5 and loss2.item() == pytest.approx(loss.item(), abs=1e-6)


def test_softmax_mse_and_rampup_hand_computed():
    s, t = torch.tensor([[0.0, 0.0]]), torch.tensor([[math.log(3.0), 0.0]])  # softmax 0.5/0.5 vs 0.75/0.25
    assert softmax_mse(s, t).item() == pytest.approx((0.25**2 + 0.25**2) / 2)
    assert rampup_factor(0, 5) == pytest.approx(math.exp(-5)) and rampup_factor(5, 5) == 1.0 == rampup_factor(9, 5)
    assert rampup_factor(2.5, 5) == pytest.approx(math.exp(-5 * 0.25)) and rampup_factor(0, 0.0) == 1.0


def test_semi_configs_are_checked():
    with pytest.raises(ConfigError, match="data.labelled_fraction=1 leaves no case unlabelled"):
        load_config(None, ["semi.method=fixmatch"])
    with pytest.raises(ConfigError, match="set train.ema"):
        load_config(None, ["semi.method=mean_teacher", "data.labelled_fraction=0.1"])
    with pytest.raises(ConfigError, match="does not apply to detection runs"):
        load_config(None, ["task=detection", "semi.method=pseudo_label", "data.labelled_fraction=0.1"])
    with pytest.raises(ConfigError, match="train.refit"):
        load_config(None, ["data.labelled_fraction=0.5", "train.refit=true"])


@pytest.mark.parametrize("method,extra", [("pseudo_label", ["semi.threshold=0.6"]), ("fixmatch", ["semi.threshold=0.6"]),
                                          ("mean_teacher", ["train.ema=0.9"])])
def test_tiny_semi_supervised_classification_runs(small_data, tmp_path, method, extra):
    cfg = load_config(None, ["data.dataset=synthetic/binary", "model.name=cnn_small", *FAST, "train.epochs=2",
                             "data.labelled_fraction=0.25", f"semi.method={method}", *extra, f"out_dir={tmp_path}"])
    res = train(cfg, run_dir=tmp_path / "run", progress=False)
    sub = json.loads((res.run_dir / "labelled_subset.json").read_text())
    assert len(sub["labelled"]) == 40 and len(sub["unlabelled"]) == 120 and not set(sub["labelled"]) & set(sub["unlabelled"])
    prov = json.loads((res.run_dir / "provenance.json").read_text())
    assert prov["data"]["splits"]["train"]["n"] == 40 and prov["data"]["unlabelled"]["n"] == 120
    assert "auc" in json.loads((res.run_dir / "result.json").read_text())["test"]


def test_semi_step_adds_the_weighted_unlabelled_loss(small_data, tmp_path):
    from openmia.engine.loop import Loop

    cfg = load_config(None, ["data.dataset=synthetic/binary", "model.name=cnn_small", *FAST, "data.labelled_fraction=0.25",
                             "semi.method=pseudo_label", "semi.threshold=0.0", "semi.weight=2.0", "model.kwargs.dropout=0.0",
                             f"out_dir={tmp_path}"])
    loop = Loop(cfg, progress=False).setup()
    loop.start(tmp_path / "run")
    idx, gen = np.arange(8), torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    total = loop.semi.batch_loss(idx, gen, loop.forward, epoch=0, step=0, steps_per_epoch=2)
    sup = loop.task.batch_loss(idx, torch.Generator().manual_seed(0), loop.forward)  # same draws: same supervised loss
    assert total.item() == pytest.approx(sup.item() + 2.0 * loop.semi.last["unsup_loss"], rel=1e-5)
    assert loop.semi.last["used"] == 1.0  # threshold 0: every prediction is a target


def test_tiny_mean_teacher_segmentation_run(small_data, tmp_path):
    cfg = load_config(None, ["task=segmentation", "data.dataset=synthetic/seg2d", "model.name=unet_small",
                             "train.epochs=1", "data.batch_size=16", "eval.n_resamples=50", "train.threads=1",
                             "data.labelled_fraction=0.25", "semi.method=mean_teacher", "train.ema=0.9",
                             f"out_dir={tmp_path}"])
    res = train(cfg, run_dir=tmp_path / "run", progress=False)
    assert "dice" in json.loads((res.run_dir / "result.json").read_text())["test"]
    assert json.loads((res.run_dir / "provenance.json").read_text())["data"]["unlabelled"]["n"] == 120


@pytest.mark.slow  # three runs
def test_a_killed_semi_supervised_run_resumes_exactly(small_data, tmp_path):
    """The unlabelled draws are seeded by (seed, epoch, step): a run killed after epoch 1 and resumed
    writes the same losses as one that ran through (the labelled subset is drawn again, identically)."""
    from openmia.engine.run_dir import resume

    ov = ["data.dataset=synthetic/binary", "model.name=cnn_small", *FAST, "train.epochs=2", "train.deterministic=true",
          "data.labelled_fraction=0.25", "semi.method=fixmatch", "semi.threshold=0.5", f"out_dir={tmp_path}"]
    train(load_config(None, ov), run_dir=tmp_path / "whole", progress=False)
    assert train(load_config(None, ov), run_dir=tmp_path / "killed", progress=False, stop_after_epoch=1) is None
    resume(tmp_path / "killed", progress=False)

    def losses(rd):
        return [json.loads(x)["train_loss"] for x in (rd / "metrics.jsonl").read_text().splitlines()]

    assert losses(tmp_path / "killed") == losses(tmp_path / "whole") and len(losses(tmp_path / "whole")) == 2
