"""A new task family needs no change outside its own files.

This test adds a whole family — image-level regression of the lesion area fraction of
``synthetic/seg2d`` — with one Task class and one model, both registered here, and trains,
resumes and re-scores it through the public API. Nothing in ``openmia`` knows about it: the loop,
the config (its defaults and checks), the run directory and ``openmia list tasks`` ask the
registries.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from openmia import api, fileio
from openmia.models import MODELS
from openmia.tasks.base import Evaluation, Task
from openmia.tasks.registry import TASKS, register_task


class AreaNet(torch.nn.Module):
    """Two convolutions, a global average and a linear head: one scalar per image."""

    def __init__(self, in_channels: int) -> None:
        super().__init__()
        self.body = torch.nn.Sequential(torch.nn.Conv2d(in_channels, 16, 5, padding=2), torch.nn.ReLU(),
                                        torch.nn.Conv2d(16, 16, 5, padding=2), torch.nn.ReLU(),
                                        torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(16, 1))

    def forward(self, x):
        return self.body(x)[:, 0]


class AreaRegression(Task):
    """Lesion + organ area as a fraction of the image, regressed from the image."""

    default_dataset = "synthetic/seg2d"
    default_model = "toy_area_net"
    select_metrics = ("mae",)
    lower_is_better = frozenset({"mae"})

    @classmethod
    def load_splits(cls, cfg):
        from openmia.data.catalog import SplitArrays, load_split

        out = {}
        for s in ("train", "val", "test"):
            sp = load_split(cfg.data.dataset, s)
            area = (np.asarray(sp.labels) > 0).mean(axis=(1, 2)).astype(np.float32)
            out[s] = SplitArrays(sp.images, area, sp.case_ids, sp.spec)
        return out

    def _predict(self, model, split: str) -> np.ndarray:
        from openmia.engine.inference import iterate_batches

        s, out = self.splits[split], []
        model.eval()
        with torch.no_grad():
            for idx in iterate_batches(len(s.images), self.cfg.data.eval_batch_size, shuffle=False):
                out.append(model(self.float_batch(s.images[idx])).cpu().numpy())
        return np.concatenate(out)

    def batch_loss(self, idx, gen, forward):
        y = torch.as_tensor(self.splits["train"].labels[idx]).to(self.device)
        return torch.nn.functional.mse_loss(forward(self.float_batch(self.splits["train"].images[idx])), y)

    def validate(self, model):
        return {"mae": float(np.abs(self._predict(model, "val") - self.splits["val"].labels).mean())}

    def evaluate(self, model, run_dir, splits, provenance):
        from openmia.stats.bootstrap import bootstrap_ci

        summaries = {}
        for split in splits:
            err = np.abs(self._predict(model, split) - self.splits[split].labels).astype(float)
            ci = bootstrap_ci(lambda w: (w @ err) / w.sum(1), len(err), n_resamples=self.cfg.eval.n_resamples,
                              seed=self.cfg.eval.seed)
            summaries[split] = {"n_cases": len(err), "metrics": [
                {"metric": "mae", "label": "all", "value": float(err.mean()), "ci_low": ci.ci_low, "ci_high": ci.ci_high}]}
            fileio.write_json(run_dir / "eval" / split / "summary.json", summaries[split])
        return Evaluation(summaries, f"test MAE {summaries['test']['metrics'][0]['value']:.4f}")


@pytest.fixture
def toy_task():
    register_task("toy_area")(AreaRegression)
    MODELS.register("toy_area_net", task="toy_area", dims=(2,))(lambda in_channels, num_classes, dims, input_size: AreaNet(in_channels))
    yield
    TASKS.unregister("toy_area")
    MODELS.unregister("toy_area_net")


def test_a_toy_task_family_trains_resumes_and_rescores_with_no_change_outside_its_files(toy_task, tmp_path):
    assert "toy_area" in [t.name for t in api.list_tasks()]
    over = ["task=toy_area", "train.epochs=3", "train.threads=1", "data.batch_size=64", "optim.lr=0.003",
            "eval.n_resamples=200", f"out_dir={tmp_path}"]
    # the task's defaults (data set and model) and checks come from the Task class
    from openmia.config import load_config
    from openmia.errors import ConfigError

    cfg = load_config(None, over)
    assert (cfg.data.dataset, cfg.model.name, cfg.options) == ("synthetic/seg2d", "toy_area_net", None)
    with pytest.raises(ConfigError, match="data.augment"):
        load_config(None, [*over, "data.augment=flip"])  # the toy declares no augmentation
    with pytest.raises(ConfigError, match="select_metric"):
        load_config(None, [*over, "train.select_metric=auc"])
    # a killed run resumes to the same result as an unbroken one
    from openmia.engine.run_dir import resume, train

    whole = api.train(cfg, index=False, run_dir=tmp_path / "whole")
    assert train(cfg, run_dir=tmp_path / "killed", progress=False, stop_after_epoch=1) is None
    resumed = resume(tmp_path / "killed", progress=False)
    assert resumed.test_summary == whole.test_summary
    result = json.loads((whole.run_dir / "result.json").read_text())
    assert result["task"] == "toy_area" and result["select_metric"] == "mae"
    mae = result["test"]["mae"]
    assert mae["ci_low"] <= mae["value"] <= mae["ci_high"] and mae["value"] < 0.2
    # the toy's own evaluation wrote its report where the run directory's layout puts it
    assert json.loads((whole.run_dir / "eval" / "test" / "summary.json").read_text())["n_cases"] == whole.test_summary["n_cases"]
    lines = [json.loads(x) for x in (whole.run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in lines] == [1, 2, 3] and all("val_mae" in r for r in lines)
    # re-scored in a new run directory with other evaluation settings
    again = api.reevaluate(whole.run_dir, tmp_path / "again", ["eval.n_resamples=100"], index=False)
    assert again.test_summary["metrics"][0]["value"] == mae["value"]
