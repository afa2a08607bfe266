"""benchmarks/ssl_segmentation.py --quick: pre-training once, fine-tuning from its encoder and
training from scratch on 2 seeds of synthetic/seg2d, the paired tables; a rerun reuses the runs and
a changed recipe is refused."""

from __future__ import annotations

import json
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
