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


# a tiny suite shaped like benchmarks/suites/segmentation.yaml: the main configuration as model "openmia"
TINY_SUITE = """
name: segmentation-tiny
base: {task: segmentation, train: {budget_clock: cpu, epochs: 100000}}
datasets: [{name: hippocampus, root: hippocampus}]
models:
  openmia: {set: {model.name: resunet, model.kwargs: {channels: [4, 8]}, data.batch_size: 2}}
"""


def _suite(tmp_path: Path) -> Path:
    path = tmp_path / "segmentation.yaml"
    path.write_text(TINY_SUITE)
    return path


def _dir(runs: Path, model: str, seed: int, minutes: str, fold: int = 0) -> Path:
    """A run directory of the script: a suite cell's (``cells/<label>-<model>-s<seed>-<id>``) or,
    for what is not a cell, the script's own (``script/``)."""
    own = runs / "script" / f"hippocampus-{model}-{minutes}cpumin-s{seed}{f'-fold{fold}' if fold else ''}"
    if own.is_dir():
        return own
    (cell,) = runs.glob(f"cells/hippocampus{f'-fold{fold}' if fold else ''}-{model}-s{seed}-*[0-9a-f]")
    return cell


@pytest.fixture
def toy_hippocampus(tmp_path, write_msd, toy_msd_facts):
    """A toy "hippocampus" under tmp_path/data: 10 cases of up to 20^3 voxels padded to 32^3, two labels."""
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
    return tmp_path / "data"


def test_segmentation_benchmark_hippocampus_vs_monai(tmp_path, monkeypatch, toy_hippocampus):
    pytest.importorskip("monai")

    bench = _load("segmentation")
    monkeypatch.setitem(bench.OPENMIA, "hippocampus", ["data.dataset=hippocampus", "model.name=resunet",
                        "model.kwargs={channels: [4, 8]}", "data.batch_size=2"])
    # one trained variant beside the main configuration, and one re-scored from it
    monkeypatch.setitem(bench.VARIANTS, "hippocampus", {"openmia_ema_tta": ["train.ema=0.99", "segmentation.tta=true"]})
    monkeypatch.setitem(bench.RESCORED, "hippocampus", {"openmia_ema_tta_largest": ("openmia_ema_tta",
                                                                                    ["segmentation.postprocess=largest"]),
                                                        "openmia_staged_tta": ("openmia_staged", ["segmentation.tta=true"])})
    # the variant and the staged run (below) trained again with seed 1 (and so re-scored again)
    monkeypatch.setitem(bench.REPLICATES, "hippocampus", {"openmia_ema_tta": (1,), "openmia_staged": (1,)})
    # and one trained in two stages, the second from the first's weights at a lower learning rate
    monkeypatch.setitem(bench.STAGED, "hippocampus", {"openmia_staged": [(0.5, []), (0.5, ["optim.lr=0.0005"])]})
    # the staged run and its re-scored copy stand for runs scored at another resolution: they are
    # paired with each other only, as their own family of tests
    real_size = bench._size
    monkeypatch.setattr(bench, "_size", lambda ds, m: "64" if m.startswith("openmia_staged") else real_size(ds, m))
    out = tmp_path / "results"
    args = ["--suite", str(_suite(tmp_path)), "--data", str(tmp_path / "data"), "--datasets", "hippocampus", "--minutes", "hippocampus=0.02",
            "--runs-dir", str(tmp_path / "runs"), "--out", str(out), "--resamples", "100"]
    assert bench.main(args) == 0
    records = json.loads((out / "segmentation.json").read_text())
    models = ("openmia", "openmia_ema_tta", "openmia_ema_tta_largest", "openmia_staged", "openmia_staged_tta", "monai_unet")
    assert {(r["model"], r["label"]) for r in records} == {(m, lab) for m in models for lab in ("anterior", "posterior", "mean")}
    for r in records:
        assert KEYS <= set(r) and r["dataset"] == "hippocampus"
        assert 0 <= r["dice_ci_low"] <= r["dice_mean"] <= r["dice_ci_high"] <= 1
    # the re-scored variant reuses its source's training: same budget, epochs and history
    src, rescored = (json.loads((_dir(tmp_path / "runs", m, 0, "0.02") / "result.json").read_text())
                     for m in ("openmia_ema_tta", "openmia_ema_tta_largest"))
    assert rescored["train_seconds"] == src["train_seconds"] and rescored["epochs_done"] == src["epochs_done"]
    # the staged run: stage 2 starts from stage 1's kept weights; time and epochs are the sums
    runs = tmp_path / "runs"
    stage2 = _dir(runs, "openmia_staged", 0, "0.02")
    stage1 = stage2.with_name(stage2.name + "-stage1")
    init = json.loads((stage2 / "init_from.json").read_text())
    assert Path(init["source"]) == stage1 / "checkpoints" / "best.pt" and not init["fresh"]
    parts = [json.loads((d / "result.json").read_text()) for d in (stage1, stage2)]
    staged = [r for r in records if r["model"] == "openmia_staged" and r["label"] == "mean" and r.get("seed") == 0][0]
    assert staged["train_seconds"] == pytest.approx(sum(p["train_seconds"] for p in parts), abs=1e-3)
    assert staged["stage_epochs"] == [p["epochs_done"] for p in parts] and staged["epochs"] == sum(staged["stage_epochs"])
    assert "stage 2 (0.01 CPU-min, from stage 1's weights): optim.lr=0.0005" in (out / "segmentation.md").read_text()
    # re-scoring a staged run keeps the source's summed training time and epochs
    staged_tta = [r for r in records if r["model"] == "openmia_staged_tta" and r["label"] == "mean" and r.get("seed") == 0][0]
    assert (staged_tta["train_seconds"], staged_tta["epochs"]) == (staged["train_seconds"], staged["epochs"])
    md = (out / "segmentation.md").read_text()
    assert "| hippocampus (fold 0) (scored at 64²) | dice | all | openmia_staged | openmia_staged_tta |" in md
    assert "| openmia | openmia_staged |" not in md and "| openmia_staged | monai_unet |" not in md
    assert [r["vs_monai"] for r in records if r["model"].startswith("openmia_staged")] == [[]] * 18  # 3 seeds
    # seed replicates: the variant and its re-scored copy once more with seed 1, then their seed means
    runs = tmp_path / "runs"
    # the variant is a suite cell; its replicate too
    assert "seed: 1" in (_dir(runs, "openmia_ema_tta", 1, "0.02") / "config.yaml").read_text()
    assert _dir(runs, "openmia_ema_tta", 1, "0.02").parent == runs / "cells"
    for name in ("openmia_ema_tta", "openmia_ema_tta_largest", "openmia_staged", "openmia_staged_tta"):
        by_seed = {r["seed"]: r for r in records if r["model"] == name and r["label"] == "anterior" and "seed" in r}
        assert set(by_seed) == {0, 1} and by_seed[1]["subset"] == "fold 0, seed 1" and by_seed[1]["vs_monai"] == []
        mean = [r for r in records if r["model"] == name and r["label"] == "anterior" and "seeds" in r][0]
        assert mean["seeds"] == [0, 1] and mean["dice_by_seed"] == [by_seed[0]["dice_mean"], by_seed[1]["dice_mean"]]
        per_case: dict[str, list[float]] = {}  # each test case's Dice averaged over the seeds, then over cases
        for seed in (0, 1):
            with open(_dir(runs, name, seed, "0.02") / "eval" / "test" / "per_case.csv") as f:
                for line in f:
                    if ",anterior,dice," in line:
                        per_case.setdefault(line.split(",")[0], []).append(float(line.split(",")[3]))
        assert len(per_case) == 2 and all(len(v) == 2 for v in per_case.values())
        assert mean["dice_mean"] == pytest.approx(np.mean([np.mean(v) for v in per_case.values()]))
        assert mean["dice_seed_sd"] == pytest.approx(np.std(mean["dice_by_seed"], ddof=1))
        # the mean training time per run (a staged run's: all its stages)
        assert mean["train_seconds"] == pytest.approx(np.mean([r["train_seconds"] for r in by_seed.values()]), abs=1e-3)
        assert mean["dice_ci_low"] <= mean["dice_mean"] <= mean["dice_ci_high"]
    assert "## Seed replicates" in (out / "segmentation.md").read_text()
    for name in ("openmia", "openmia_ema_tta", "openmia_ema_tta_largest"):
        ours = [r for r in records if r["model"] == name and r["label"] == "mean"][0]
        assert {t["metric"] for t in ours["vs_monai"]} == {"dice", "hd95", "nsd"}  # one row per metric vs MONAI
        assert all(0 <= t["p_value"] <= t["p_holm"] <= 1 and t["label"] == "all" for t in ours["vs_monai"])
    md = (out / "segmentation.md").read_text()
    assert "| hippocampus | monai_unet | mean |" in md and "| openmia | monai_unet |" in md
    # complete runs are reused, not trained again
    before = sorted(p.stat().st_mtime for p in (tmp_path / "runs").glob("*/*/result.json"))
    assert len(before) == 3 + 4 + 1 + 4  # cells: main, variant x 2 seeds; script: staged 2 seeds x 2 stages, MONAI, re-scored 4
    assert bench.main(args) == 0
    assert sorted(p.stat().st_mtime for p in (tmp_path / "runs").glob("*/*/result.json")) == before


def test_segmentation_benchmark_hippocampus_folds_pooled(tmp_path, monkeypatch, toy_hippocampus):
    """--folds: each fold trains on its own split (openmia's main configuration and MONAI's); the
    folds' test cases are pooled into one result with a paired test over all of them."""
    pytest.importorskip("monai")

    bench = _load("segmentation")
    monkeypatch.setitem(bench.OPENMIA, "hippocampus", ["data.dataset=hippocampus", "model.name=resunet",
                        "model.kwargs={channels: [4, 8]}", "data.batch_size=2"])
    for table in (bench.VARIANTS, bench.STAGED, bench.RESCORED):
        monkeypatch.setitem(table, "hippocampus", {})
    out, runs = tmp_path / "results", tmp_path / "runs"
    assert bench.main(["--suite", str(_suite(tmp_path)), "--data", str(toy_hippocampus), "--datasets", "hippocampus",
                       "--folds", "0", "1", "--minutes",
                       "hippocampus=0.01", "--runs-dir", str(runs), "--out", str(out), "--resamples", "100"]) == 0
    records = json.loads((out / "segmentation.json").read_text())
    for k, suffix in ((0, ""), (1, "-fold1")):  # fold k tests the cases whose sorted index % 5 == k
        for m in ("openmia", "monai_unet"):
            ids = sorted(p.stem for p in (_dir(runs, m, 0, "0.01", k) / "truth" / "test").iterdir())
            assert ids == [f"h{i:02d}" for i in range(10) if i % 5 == k]
        rec = [r for r in records if r["model"] == "openmia" and r["label"] == "mean" and r["fold"] == k][0]
        assert rec["subset"] == f"fold {k}" and rec["n_test_cases"] == 2
    pooled = {(r["model"], r["label"]): r for r in records if r["fold"] == "pooled"}
    assert set(pooled) == {(m, lab) for m in ("openmia", "monai_unet") for lab in ("anterior", "posterior", "mean")}
    # the pooled Dice is the mean over the 4 cases of both folds, read back from the folds' own per-case files
    per_case = []
    for suffix in ("", "-fold1"):
        with open(_dir(runs, "openmia", 0, "0.01", 0 if not suffix else 1) / "eval" / "test" / "per_case.csv") as f:
            per_case += [float(line.split(",")[3]) for line in f if ",anterior,dice," in line]
    assert len(per_case) == 4 and pooled[("openmia", "anterior")]["dice_mean"] == pytest.approx(np.mean(per_case))
    assert pooled[("openmia", "mean")]["n_test_cases"] == 4 and pooled[("openmia", "mean")]["folds"] == [0, 1]
    pooled_tests = pooled[("openmia", "mean")]["vs_monai"]
    assert {t["metric"] for t in pooled_tests} == {"dice", "hd95", "nsd"} and all(t["fold"] == "pooled" for t in pooled_tests)
    md = (out / "segmentation.md").read_text()
    assert "MSD Hippocampus (folds 0, 1 and pooled)" in md and "| hippocampus (folds pooled) | dice | all |" in md


def test_segmentation_benchmark_rejects_a_bad_budget(capsys):
    bench = _load("segmentation")
    with pytest.raises(SystemExit):
        bench.main(["--data", ".", "--minutes", "liver=3"])
    assert "SET=MINUTES" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        bench.main(["--data", ".", "--datasets", "busi", "--folds", "1"])
    assert "applies to the hippocampus only" in capsys.readouterr().err


def test_subgroup_records_carry_every_key(tmp_path):
    """BUSI's benign / malignant subsets: the means over their cases (by hand), the run's training
    time, and the literature's Dice only for the subset it describes (the images with a lesion)."""
    bench = _load("segmentation")
    rd = tmp_path / "run"
    (rd / "eval" / "test").mkdir(parents=True)
    (rd / "result.json").write_text(json.dumps({"train_seconds": 12.5}))
    dice = {"b1": 0.9, "b2": 0.7, "m1": 0.4, "n1": 0.0}
    rows = ["case_id,label,metric,value"] + [f"{c},lesion,{m},{v if m == 'dice' else 1.0}"
                                             for c, v in dice.items() for m in ("dice", "hd95", "nsd")]
    (rd / "eval" / "test" / "per_case.csv").write_text("\n".join(rows) + "\n")
    groups = {"benign+malignant": ["b1", "b2", "m1"], "benign": ["b1", "b2"], "malignant": ["m1"]}
    recs = {r["subset"]: r for r in bench.subgroup_records("busi", "openmia", rd, groups, "lesion", 200)}
    for r in recs.values():
        assert KEYS <= set(r) and r["train_seconds"] == 12.5
    assert recs["benign+malignant"]["dice_mean"] == pytest.approx((0.9 + 0.7 + 0.4) / 3)
    assert recs["benign"]["dice_mean"] == pytest.approx(0.8) and recs["benign"]["n_test_cases"] == 2
    assert recs["benign+malignant"]["reference_dice"] == 0.742
    assert recs["benign"]["reference_dice"] is None and recs["malignant"]["reference_dice"] is None
