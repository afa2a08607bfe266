"""The segmentation benchmark scripts run end to end at toy sizes and write the records the issue
asks for (the real runs use ../shared/data and minutes of CPU time)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

BENCH = Path(__file__).resolve().parents[2] / "benchmarks"
KEYS = {"dataset", "model", "label", "dice_mean", "dice_ci_low", "dice_ci_high", "hd95_mean", "nsd_mean",
        "train_seconds", "reference_dice"}


def _load(name: str):
    spec = importlib.util.spec_from_file_location(f"bench_{name}", BENCH / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_segmentation_benchmark_hippocampus_vs_monai(tmp_path, monkeypatch, write_msd, toy_msd_facts):
    pytest.importorskip("monai")

    bench = _load("segmentation")
    # a toy "hippocampus": 10 cases of up to 20^3 voxels padded to 32^3, two labels
    toy_msd_facts((32, 32, 32), 10, ("background", "anterior", "posterior"))
    rng = np.random.default_rng(0)
    cases = []
    for i in range(10):
        shape = (16 + i % 3, 18, 20)
        lab = np.zeros(shape, np.uint8)
        lab[4:10, 4:10, 4:10] = 1
        lab[8:12, 10:14, 10:16] = 2
        cases.append((f"h{i:02d}", (rng.normal(60, 5, shape) + 40 * lab).astype(np.float32), lab, np.eye(4), None))
    (tmp_path / "data" / "hippocampus").mkdir(parents=True)
    write_msd(tmp_path / "data" / "hippocampus", cases)
    monkeypatch.setitem(bench.OPENMIA, "hippocampus", ["data.dataset=hippocampus", "model.name=resunet",
                        "model.kwargs={channels: [4, 8]}", "data.batch_size=2"])
    # one trained variant beside the main configuration, and one re-scored from it
    monkeypatch.setitem(bench.VARIANTS, "hippocampus", {"openmia_ema_tta": ["train.ema=0.99", "eval.tta=true"]})
    monkeypatch.setitem(bench.RESCORED, "hippocampus", {"openmia_ema_tta_largest": ("openmia_ema_tta",
                                                                                    ["eval.postprocess=largest"])})
    # and one trained in two stages, the second from the first's weights at a lower learning rate
    monkeypatch.setitem(bench.STAGED, "hippocampus", {"openmia_staged": [(0.5, []), (0.5, ["optim.lr=0.0005"])]})
    out = tmp_path / "results"
    args = ["--data", str(tmp_path / "data"), "--datasets", "hippocampus", "--minutes", "hippocampus=0.02",
            "--runs-dir", str(tmp_path / "runs"), "--out", str(out), "--resamples", "100"]
    assert bench.main(args) == 0
    records = json.loads((out / "segmentation.json").read_text())
    models = ("openmia", "openmia_ema_tta", "openmia_ema_tta_largest", "openmia_staged", "monai_unet")
    assert {(r["model"], r["label"]) for r in records} == {(m, lab) for m in models for lab in ("anterior", "posterior", "mean")}
    for r in records:
        assert KEYS <= set(r) and r["dataset"] == "hippocampus"
        assert 0 <= r["dice_ci_low"] <= r["dice_mean"] <= r["dice_ci_high"] <= 1
    # the re-scored variant reuses its source's training: same budget, epochs and history
    src, rescored = (json.loads((tmp_path / "runs" / f"hippocampus-{m}-0.02cpumin-s0" / "result.json").read_text())
                     for m in ("openmia_ema_tta", "openmia_ema_tta_largest"))
    assert rescored["train_seconds"] == src["train_seconds"] and rescored["epochs_done"] == src["epochs_done"]
    # the staged run: stage 2 starts from stage 1's kept weights; time and epochs are the sums
    runs = tmp_path / "runs"
    stage1, stage2 = runs / "hippocampus-openmia_staged-0.02cpumin-s0-stage1", runs / "hippocampus-openmia_staged-0.02cpumin-s0"
    init = json.loads((stage2 / "init_from.json").read_text())
    assert Path(init["source"]) == stage1 / "checkpoints" / "best.pt" and not init["fresh"]
    parts = [json.loads((d / "result.json").read_text()) for d in (stage1, stage2)]
    staged = [r for r in records if r["model"] == "openmia_staged" and r["label"] == "mean"][0]
    assert staged["train_seconds"] == pytest.approx(sum(p["train_seconds"] for p in parts), abs=1e-3)
    assert staged["stage_epochs"] == [p["epochs_done"] for p in parts] and staged["epochs"] == sum(staged["stage_epochs"])
    assert "stage 2 (0.01 CPU-min, from stage 1's weights): optim.lr=0.0005" in (out / "segmentation.md").read_text()
    for name in ("openmia", "openmia_ema_tta", "openmia_ema_tta_largest", "openmia_staged"):
        ours = [r for r in records if r["model"] == name and r["label"] == "mean"][0]
        assert {t["metric"] for t in ours["vs_monai"]} == {"dice", "hd95", "nsd"}  # one row per metric vs MONAI
        assert all(0 <= t["p_value"] <= t["p_holm"] <= 1 and t["label"] == "all" for t in ours["vs_monai"])
    md = (out / "segmentation.md").read_text()
    assert "| hippocampus | monai_unet | mean |" in md and "| openmia | monai_unet |" in md
    # complete runs are reused, not trained again
    before = sorted(p.stat().st_mtime for p in (tmp_path / "runs").glob("*/result.json"))
    assert bench.main(args) == 0
    assert sorted(p.stat().st_mtime for p in (tmp_path / "runs").glob("*/result.json")) == before


def test_segmentation_benchmark_rejects_a_bad_budget(capsys):
    bench = _load("segmentation")
    with pytest.raises(SystemExit):
        bench.main(["--data", ".", "--minutes", "liver=3"])
    assert "SET=MINUTES" in capsys.readouterr().err
