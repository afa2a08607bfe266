"""benchmarks/ssl_segmentation.py --quick: pre-training once, fine-tuning from its encoder and
training from scratch on 2 seeds of synthetic/seg2d, the paired tables; a rerun reuses the runs and
a changed recipe is refused; ``--merge`` keeps the seeds of an earlier results file whose runs are
gone (a later session adds seeds) and says which pre-training run each seed used."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml


@pytest.fixture(scope="module")
def bench(load_script):
    return load_script("ssl_segmentation")


def test_t_interval_by_hand(bench):
    r = bench.t_interval([0.1, 0.3])  # mean 0.2, sd 0.1414, t(0.975, 1) = 12.706
    assert r["mean"] == pytest.approx(0.2) and r["ci_high"] - r["mean"] == pytest.approx(12.7062 * 0.1, rel=1e-4)
    assert bench.t_interval([0.5])["ci_low"] is None


def _row(seed: int, scratch: float, pretrained: float, pid: str | None = None) -> dict:
    arm = {"run_dir": "r", "stages": ["r"], "ci_low": None, "ci_high": None, "train_seconds": 100.0, "epochs_done": [3]}
    row = {"seed": seed, "scratch": {**arm, "dice": scratch}, "pretrained": {**arm, "dice": pretrained},
           "paired": {"diff": pretrained - scratch, "ci_low": -0.1, "ci_high": 0.1, "p": 0.5, "test": "t", "label": "all"}}
    return row if pid is None else {**row, "pretrain_id": pid}


def _legacy_file(tmp_path: Path) -> Path:
    """A results file as written before the settings and pre-training ids were recorded."""
    pre = {"method": "simclr", "run_dir": "runs/x/pretrain-simclr", "cpu_seconds": 3600.0, "epochs_done": 179,
           "budget_cpu_minutes": 60.0, "train_images": 800}
    d = {"dataset": "kvasir_seg", "budget_cpu_minutes": 30.0, "pretrain": pre, "seeds": [_row(0, 0.79, 0.84), _row(1, 0.80, 0.83)]}
    path = tmp_path / "old.json"
    path.write_text(json.dumps({"datasets": [d]}))
    return path


def test_merge_keeps_an_earlier_files_seeds_with_their_pretraining_run(bench, tmp_path):
    import argparse

    path = _legacy_file(tmp_path)
    args = argparse.Namespace(method="simclr", pretrain_minutes=60.0, set=[], pretrain_set=[])
    settings = {"fine_tune": ["train.threads=1"], "pretrain": ["task=pretrain"]}
    rows, pool = bench._kept_rows(path, "kvasir_seg", settings, 30.0, args)
    assert sorted(rows) == [0, 1] and rows[1]["pretrained"]["dice"] == 0.83
    (pid,) = pool  # the legacy file's one pre-training run, named by where it was and what it cost
    assert pid == "runs/x/pretrain-simclr@3600.000" and {r["pretrain_id"] for r in rows.values()} == {pid}
    assert bench._kept_rows(path, "busi", settings, 20.0, args) == ({}, {})  # not in the file: nothing kept
    # other settings are refused, naming what differs
    with pytest.raises(SystemExit, match="budget_cpu_minutes: kept 30.0, now 20.0"):
        bench._kept_rows(path, "kvasir_seg", settings, 20.0, args)
    with pytest.raises(SystemExit, match="pretrain_budget: kept 60.0, now 30.0"):
        bench._kept_rows(path, "kvasir_seg", settings, 30.0, argparse.Namespace(**{**vars(args), "pretrain_minutes": 30.0}))
    with pytest.raises(SystemExit, match="extra overrides"):
        bench._kept_rows(path, "kvasir_seg", settings, 30.0, argparse.Namespace(**{**vars(args), "set": ["optim.lr=1"]}))
    with pytest.raises(SystemExit, match="no such results file"):
        bench._kept_rows(tmp_path / "none.json", "kvasir_seg", settings, 30.0, args)
    # a file with recorded settings is compared on them
    new = json.loads(path.read_text())
    new["datasets"][0]["settings"] = {"fine_tune": ["train.threads=1", "eval.n_resamples=2000"], "pretrain": ["task=pretrain"]}
    path.write_text(json.dumps(new))
    with pytest.raises(SystemExit, match=r"fine_tune: kept \['eval.n_resamples=2000'\], now \[\]"):
        bench._kept_rows(path, "kvasir_seg", settings, 30.0, args)


def test_tables_name_each_pretraining_run_and_count_each_once(bench, tmp_path):
    runs = [{"id": "a", "method": "simclr", "cpu_seconds": 3600.0, "epochs_done": 179, "budget_cpu_minutes": 60.0,
             "train_images": 800},
            {"id": "b", "method": "simclr", "cpu_seconds": 3590.0, "epochs_done": 178, "budget_cpu_minutes": 60.0,
             "train_images": 800}]
    seeds = [_row(0, 0.79, 0.84, "a"), _row(1, 0.80, 0.83, "a"), _row(2, 0.82, 0.85, "b")]
    t = bench.t_interval
    d = {"dataset": "kvasir_seg", "recipe": "r.yaml", "model": "resunet", "model_kwargs": {}, "size": 128,
         "budget_cpu_minutes": 30.0, "pretrain": runs[0], "pretrains": runs, "seeds": seeds,
         "scratch": {**t([0.79, 0.80, 0.82]), "cpu_seconds_total": 300.0},
         "pretrained": {**t([0.84, 0.83, 0.85]), "cpu_seconds_finetune": 300.0, "cpu_seconds_total": 300.0 + 7190.0},
         "difference": t([0.05, 0.03, 0.03])}
    bench.write({"quick": False, "datasets": [d]}, tmp_path / "out")
    md = (tmp_path / "out.md").read_text()
    assert "in 2 runs with the same settings" in md
    assert "run 1 (3600 CPU-s, 179 epochs) served seeds 0, 1; run 2 (3590 CPU-s, 178 epochs) served seed 2" in md
    assert "| 2 | 0.820 | 0.850 | +0.030 [-0.100, +0.100] | 0.5 | 100 | 100 | 2 |" in md
    assert "7490 (fine-tuning 300 + pre-training 7190)" in md
    assert "not judged yet, 3 of 5 seeds" in md
    d1 = {**d, "pretrains": runs[:1], "seeds": [dict(r, pretrain_id="a") for r in seeds]}
    bench.write({"quick": False, "datasets": [d1]}, tmp_path / "one")
    one = (tmp_path / "one.md").read_text()
    assert "one pre-training run serves every seed and is counted once" in one and "pre-training run |" not in one


def _scored_run(root: Path, dice: dict[str, float], lesion: set[str]) -> Path:
    """A scored run's test truth (a lesion or an empty mask per case) and per-case Dice."""
    import numpy as np

    (root / "truth" / "test").mkdir(parents=True)
    (root / "eval" / "test").mkdir(parents=True)
    for c in dice:
        m = np.zeros((8, 8), np.uint8)
        m[2:5, 2:5] = c in lesion
        np.save(root / "truth" / "test" / f"{c}.npy", m)
    (root / "eval" / "test" / "per_case.csv").write_text(
        "case_id,label,metric,value\n" + "".join(f"{c},lesion,dice,{v}\n{c},lesion,iou,0.5\n" for c, v in dice.items()))
    return root


def test_lesion_images_view_by_hand(bench, tmp_path):
    """BUSI's published Dice is over the images with a lesion: the view drops the normal images
    (here n0: a false positive for the pretrained arm, Dice 0; n1: both empty, NaN) and pairs the rest."""
    nan = float("nan")
    scr = _scored_run(tmp_path / "s", {"a": 0.8, "b": 0.6, "c": 0.7, "n0": nan, "n1": nan}, {"a", "b", "c"})
    pre = _scored_run(tmp_path / "p", {"a": 0.9, "b": 0.7, "c": 0.7, "n0": 0.0, "n1": nan}, {"a", "b", "c"})
    row = {"seed": 0, "scratch": {"run_dir": str(scr)}, "pretrained": {"run_dir": str(pre)}}
    v = bench._lesion_images(row, 500)
    assert (v["n_cases"], v["n_test"]) == (3, 5)
    assert v["scratch"]["dice"] == pytest.approx(0.7) and v["pretrained"]["dice"] == pytest.approx(2.3 / 3)
    assert v["paired"]["diff"] == pytest.approx(0.2 / 3) and v["paired"]["test"] == "wilcoxon_signed_rank"
    # every image with a lesion (Kvasir-SEG): no separate view
    full = _scored_run(tmp_path / "k", {"a": 0.8, "b": 0.6}, {"a", "b"})
    assert bench._lesion_images({"scratch": {"run_dir": str(full)}, "pretrained": {"run_dir": str(full)}}, 50) is None
    t = bench.t_interval
    d = {"seeds": [{**row, "lesion_images": v}], "lesion_images": {"n_cases": 3, "scratch": t([0.7]),
                                                                  "pretrained": t([2.3 / 3]), "difference": t([0.2 / 3])}}
    text = "\n".join(bench._lesion_lines(d))
    assert "Test images with a lesion only (3 of 5" in text and "| 0 | 0.700 [" in text and "difference +0.067" in text


@pytest.mark.slow
def test_quick_run_writes_the_paired_tables(bench, tmp_path, monkeypatch):
    runs, stem = tmp_path / "runs", tmp_path / "out" / "ssl"
    args = ["--quick", "--runs", str(runs), "--out", str(stem)]
    # step 1 alone: the pre-training run and nothing else; the full call below reuses it
    assert bench.main([*args, "--pretrain-only"]) == 0
    assert sorted(p.name for p in (runs / "synthetic-seg2d").iterdir()) == ["pretrain-simclr"]
    assert not stem.with_suffix(".json").exists()
    pre_mtime = (runs / "synthetic-seg2d" / "pretrain-simclr" / "result.json").stat().st_mtime
    assert bench.main(args) == 0
    assert (runs / "synthetic-seg2d" / "pretrain-simclr" / "result.json").stat().st_mtime == pre_mtime
    out = json.loads(stem.with_suffix(".json").read_text())
    md = stem.with_suffix(".md").read_text()
    assert "| seed | scratch Dice" in md and "Seed-level difference pretrained - scratch" in md
    (d,) = out["datasets"]
    base = runs / "synthetic-seg2d"
    assert json.loads((base / "pretrain-simclr" / "pretrain_cases.json").read_text())["split"] == "train"
    assert [r["seed"] for r in d["seeds"]] == [0, 1]
    for r in d["seeds"]:
        a, b = r["scratch"], r["pretrained"]
        # the paired bootstrap's estimate is the difference of the two runs' own test Dice
        assert r["paired"]["diff"] == pytest.approx(b["dice"] - a["dice"], abs=1e-9)
        assert r["paired"]["ci_low"] <= r["paired"]["diff"] <= r["paired"]["ci_high"]
        # the chosen Kvasir recipe: two stages, the pre-trained encoder loaded into the first only,
        # the second started from the first; the scored run is the second re-scored at several scales
        assert len(a["stages"]) == len(b["stages"]) == 2
        loaded = json.loads((Path(b["stages"][0]) / "init_from.json").read_text())
        assert loaded["loaded"] and Path(loaded["source"]).parent.name == "pretrain-simclr"
        assert not (Path(a["stages"][0]) / "init_from.json").exists()
        for arm in (a, b):
            second = json.loads((Path(arm["stages"][1]) / "init_from.json").read_text())
            assert Path(arm["stages"][0]) in Path(second["source"]).parents
            assert "tta_scales" in (Path(arm["run_dir"]) / "config.yaml").read_text()
    diffs = [r["pretrained"]["dice"] - r["scratch"]["dice"] for r in d["seeds"]]
    assert d["difference"]["mean"] == pytest.approx(sum(diffs) / 2) and d["difference"]["n"] == 2
    p = d["pretrained"]
    assert p["cpu_seconds_total"] == pytest.approx(p["cpu_seconds_finetune"] + d["pretrain"]["cpu_seconds"])
    # a rerun reuses every run, the re-scored ones too (same numbers, files untouched); another budget
    # is refused, naming the key
    scored = Path(d["seeds"][0]["pretrained"]["run_dir"]) / "result.json"
    mtime = scored.stat().st_mtime
    assert bench.main(args) == 0
    again = json.loads(stem.with_suffix(".json").read_text())["datasets"][0]
    assert [r["pretrained"]["dice"] for r in again["seeds"]] == [r["pretrained"]["dice"] for r in d["seeds"]]
    assert scored.stat().st_mtime == mtime
    # other re-scoring settings: the trained stages are reused, the scored run is made again
    monkeypatch.setitem(bench.RECIPES, "kvasir_seg", (bench.RECIPES["kvasir_seg"][0], ["segmentation.tta_scales=[1.0, 1.25]"]))
    assert bench.main(args) == 0
    assert yaml.safe_load((scored.parent / "config.yaml").read_text())["segmentation"]["tta_scales"] == [1.0, 1.25]
    assert scored.stat().st_mtime > mtime
    with pytest.raises(RuntimeError, match="another configuration.*train.max_minutes"):
        bench.main([*args, "--minutes", "0.4"])
    # a later session: seed 1's runs are gone but its numbers are in the results file; --merge keeps
    # them, reuses seed 0's runs and trains seed 2 (with the same pre-training run)
    monkeypatch.setitem(bench.RECIPES, "kvasir_seg", (bench.RECIPES["kvasir_seg"][0], ["segmentation.tta_scales=[0.75, 1.0, 1.25, 1.5]"]))
    assert bench.main(args) == 0
    first = json.loads(stem.with_suffix(".json").read_text())["datasets"][0]
    for p in base.glob("*-s1*"):
        shutil.rmtree(p)
    # seed 2's scratch arm alone (one of two parallel processes): its runs, no results file written
    mtime = stem.with_suffix(".json").stat().st_mtime
    assert bench.main([*args, "--arm", "scratch", "--seeds", "2"]) == 0
    assert (base / "scratch-s2").is_dir() and not (base / "simclr-s2").exists()
    assert stem.with_suffix(".json").stat().st_mtime == mtime
    assert bench.main([*args, "--merge", "--seeds", "0", "1", "2"]) == 0
    merged = json.loads(stem.with_suffix(".json").read_text())["datasets"][0]
    assert [r["seed"] for r in merged["seeds"]] == [0, 1, 2]
    assert merged["seeds"][1] == {**first["seeds"][1], "pretrain_id": merged["pretrains"][0]["id"]}
    assert len(merged["pretrains"]) == 1 and merged["difference"]["n"] == 3
    # the pre-training run gone with fine-tuned runs still there: refused, not silently mixed
    shutil.rmtree(base / "pretrain-simclr")
    with pytest.raises(SystemExit, match="their pre-training run .* is not"):
        bench.main([*args, "--merge", "--seeds", "0", "1", "2", "3"])
