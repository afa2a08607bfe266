from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from openmia.bench.store import RunStore
from openmia.errors import ConfigError, RunDirError
from openmia.tasks.classification import ClassificationHead, balanced_class_weights


def test_balanced_weights_hand_computed():
    # 4 cases of class 0, 1 of class 1: n / (K * n_k) = 5/(2*4), 5/(2*1)
    w = balanced_class_weights(np.array([0, 0, 0, 0, 1]), "binary", 2)
    assert np.allclose(w, [0.625, 2.5])
    ml = balanced_class_weights(np.array([[1, 0], [0, 1], [0, 1]]), "multi-label", 2)
    assert np.allclose(ml, [2.0, 0.5])  # n_neg / n_pos
    with pytest.raises(ConfigError, match=r"class\(es\) \[2\] have no training case"):
        balanced_class_weights(np.array([0, 1]), "multi-class", 3)


def test_losses_follow_task_type():
    logits = torch.tensor([[2.0, -1.0], [0.5, 0.5]])
    ce = ClassificationHead("binary", 2).loss(logits, torch.tensor([0, 1]))
    assert torch.isclose(ce, torch.nn.functional.cross_entropy(logits, torch.tensor([0, 1])))
    ml = ClassificationHead("multi-label", 2)
    y = torch.tensor([[1, 0], [0, 1]])
    assert torch.isclose(ml.loss(logits, y), torch.nn.functional.binary_cross_entropy_with_logits(logits, y.float()))
    p = ml.probabilities(logits)
    assert np.allclose(p, 1 / (1 + np.exp(-logits.numpy())))
    assert np.allclose(ClassificationHead("multi-class", 2).probabilities(logits).sum(1), 1.0)
    with pytest.raises(ConfigError, match="binary task needs 2 classes"):
        ClassificationHead("binary", 3)


def _fake_run(root, name, auc):
    rd = root / name
    rd.mkdir()
    (rd / "config.yaml").write_text("task: classification\ndata: {dataset: synthetic/binary}\nmodel: {name: mlp}\ntrain: {seed: 1}\n")
    (rd / "result.json").write_text(json.dumps({"epochs_done": 2, "train_seconds": 1.5, "best_val": 0.8,
                                               "test": {"auc": {"value": auc}, "acc": {"value": 0.7}}}))
    return rd


def test_store_records_lists_and_finds_runs(tmp_path):
    store = RunStore(tmp_path / "runs.sqlite")
    a, b = _fake_run(tmp_path, "run-a", 0.9), _fake_run(tmp_path, "run-b", 0.8)
    store.record(a)
    store.record(b)
    store.record(a)  # re-recording replaces, never duplicates
    rows = store.list()
    assert [r["test_auc"] for r in rows] == [0.9, 0.8] and rows[0]["model"] == "mlp"
    assert store.get("run-b")["test_auc"] == 0.8
    with pytest.raises(RunDirError, match="matches 2 runs"):
        store.get("run-")
    with pytest.raises(RunDirError, match="no recorded run matches"):
        store.get("nope")
    (tmp_path / "incomplete").mkdir()
    with pytest.raises(RunDirError, match="result.json is missing"):
        store.record(tmp_path / "incomplete")
