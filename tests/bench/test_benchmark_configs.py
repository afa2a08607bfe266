"""benchmarks/configs/*.yaml: the published recipes, in the sectioned config layout, are what
`openmia train --config` loads and what the benchmark scripts train (one source of truth); and the
run directories the published results came from (written in the earlier flat layout) still count
as the same recipes, so the scripts reuse them instead of refusing them as stale."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
import yaml

from openmia import api
from openmia.config import load_config
from openmia.data.catalog import get_spec

BENCH = Path(__file__).resolve().parents[2] / "benchmarks"
CONFIGS = sorted((BENCH / "configs").glob("*.yaml"))
LEGACY = json.loads((Path(__file__).parent / "fixtures" / "legacy_run_configs.json").read_text())


def _load(name: str):
    spec = importlib.util.spec_from_file_location(f"bench_cfg_{name}", BENCH / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _same(a, b) -> None:
    assert a.to_dict() == b.to_dict()


@pytest.mark.parametrize("path", CONFIGS, ids=[p.stem for p in CONFIGS])
def test_each_recipe_loads_and_names_a_real_dataset_and_model(path):
    runs = _load("_runs")
    cfg = load_config(path)
    spec = get_spec(cfg.data.dataset, cfg.data.size)
    assert spec.task == cfg.task
    assert cfg.model.name in {e.name for e in api.list_models()}  # (counting also takes detection models)
    # budget-bounded CPU recipes, as published
    assert cfg.train.max_minutes and cfg.train.budget_clock == "cpu"
    # the scripts read a recipe as its override list: the same configuration
    _same(load_config(None, runs.recipe(path.stem)), cfg)


def test_every_recipe_file_is_used_by_a_benchmark_script():
    """Each recipe is named by a script or by a shipped suite (the scripts train the suites' cells)."""
    text = "".join((BENCH / f"{s}.py").read_text() for s in ("medmnist", "segmentation", "detection"))
    text += "".join(p.read_text() for p in (BENCH / "suites").glob("*.yaml"))
    unused = [p.stem for p in CONFIGS if p.stem not in text]
    assert len(CONFIGS) >= 15 and not unused


def test_segmentation_script_trains_the_recipe_files():
    bench = _load("segmentation")
    cfgs = BENCH / "configs"
    for ds in ("busi", "kvasir_seg", "hippocampus"):
        _same(load_config(None, bench.OPENMIA[ds]), load_config(cfgs / f"{ds}.yaml"))
    assert bench.MINUTES == {"busi": 20.0, "kvasir_seg": 30.0, "hippocampus": 45.0}
    # the chosen Kvasir-SEG recipe and its refit: stage 1 and stage 2 (from stage 1's weights)
    for model, name in (("staged_image_dice", "kvasir_seg_chosen"), ("staged_image_dice_refit", "kvasir_seg_refit")):
        job = {"dataset": "kvasir_seg", "model": model, "minutes": 30.0, "seed": 3, "resamples": 2000, "root": "D",
               "overrides": bench._overrides("kvasir_seg", model), "run_dir": "R/run", "fold": 0}
        (c1, d1), (c2, d2) = bench.stage_configs(job)
        extra = ["train.threads=1", "train.seed=3", "data.root=D"]
        _same(c1, load_config(cfgs / f"{name}_stage1.yaml", extra))
        _same(c2, load_config(cfgs / f"{name}_stage2.yaml", [*extra, f"train.init_from={d1}"]))
        assert (d1, d2) == ("R/run-stage1", "R/run")


def _declared_configs(tmp_path) -> tuple[list[dict], object]:
    """Every config the three scripts train for their published commands (benchmarks/results/*.md),
    as the suites they build declare them (nothing is trained), and the segmentation module (for
    its staged Kvasir-SEG recipes, which are not suite cells)."""
    import argparse

    data = "../shared/data"
    med, seg, det = _load("medmnist"), _load("segmentation"), _load("detection")
    cells = list(med.restricted_suite(argparse.Namespace(
        suite=med.SUITE, datasets=None, root=f"{data}/medmnist", seeds=None, minutes=20.0, only=None, resamples=2000,
        runs_dir=str(tmp_path / "m"))).cells)
    args = argparse.Namespace(suite=seg.SUITE, datasets=list(seg.MINUTES), runs_dir=str(tmp_path / "s"), data=data, seed=0,
                              resamples=2000)
    cells += seg.restricted_suite(args, dict(seg.MINUTES), {"busi": [0], "kvasir_seg": [0], "hippocampus": [0, 1, 2, 3, 4]})[0].cells
    args = argparse.Namespace(suite=det.SUITE, datasets=["bccd", "cells"], draws=[0, 1, 2], seed=0, runs_dir=str(tmp_path / "d"),
                              data=data, resamples=2000)
    cells += det.restricted_suite(args, dict(det.MINUTES)).cells
    return [c.config for c in cells], seg


def _legacy_dict(name: str) -> dict:
    """The full config.yaml (earlier flat layout) of a published run directory."""
    def merge(a: dict, b: dict) -> dict:
        return {**a, **{k: merge(a[k], v) if isinstance(v, dict) and k != "kwargs" and isinstance(a.get(k), dict) else v
                        for k, v in b.items()}}

    return merge(LEGACY["defaults"], LEGACY["runs"][name])


def test_every_published_run_is_a_configuration_the_scripts_still_declare(tmp_path):
    """The 81 published training runs (their config.yaml in the earlier flat layout, migrated on
    load) are each exactly a suite cell the scripts declare for their published commands, or a stage
    of a staged Kvasir-SEG recipe: the committed numbers come from configurations still trained."""
    import re

    runs = _load("_runs")
    declared, seg = _declared_configs(tmp_path)
    assert len(LEGACY["runs"]) == 81
    unmatched = []
    for name in LEGACY["runs"]:
        rd = tmp_path / "legacy" / name
        rd.mkdir(parents=True)
        (rd / "config.yaml").write_text(yaml.safe_dump(_legacy_dict(name), sort_keys=False))
        old = runs.cached_config(rd)
        old["train"].pop("threads")  # an execution setting: the suite runner sets it per cell (--threads)
        if any(not runs.config_differences(old, {**cfg, "train": {k: v for k, v in cfg["train"].items() if k != "threads"}})
               for cfg in declared):
            continue
        m = re.fullmatch(r"kvasir_seg-(\w*staged\w*)-30cpumin-s(\d)(-stage\d)?", name)
        if m:  # a stage of a staged recipe: the script's own path (each stage starts from the previous one)
            base = re.sub(r"-stage\d$", "", name)
            job = {"dataset": "kvasir_seg", "model": m.group(1), "minutes": 30.0, "seed": int(m.group(2)), "resamples": 2000,
                   "root": "../shared/data/kvasir_seg", "overrides": seg._overrides("kvasir_seg", m.group(1)),
                   "run_dir": f"RUNS/{base}", "fold": 0}
            stages = {Path(d).name: c.to_dict() for c, d in seg.stage_configs(job)}
            for cfg in stages.values():
                cfg["train"].pop("threads", None)
            if name in stages and not runs.config_differences(old, stages[name]):
                continue
        unmatched.append(name)
    assert not unmatched


def test_train_or_reuse_reuses_a_run_of_the_earlier_layout_and_refuses_another_recipe(tmp_path):
    runs = _load("_runs")
    seg = _load("segmentation")
    name = "kvasir_seg-staged_image_dice_refit-30cpumin-s0"
    rd = tmp_path / "RUNS" / name
    rd.mkdir(parents=True)
    (rd / "config.yaml").write_text(yaml.safe_dump(_legacy_dict(name), sort_keys=False))
    (rd / "result.json").write_text('{"status": "complete"}')
    job = {"dataset": "kvasir_seg", "model": "staged_image_dice_refit", "minutes": 30.0, "seed": 0, "resamples": 2000,
           "root": "../shared/data/kvasir_seg", "overrides": [], "run_dir": f"RUNS/{name}", "fold": 0}
    cfg = seg.stage_configs(job)[-1][0]
    assert runs.train_or_reuse(cfg, rd) is True  # reused: nothing trained, nothing written
    assert sorted(p.name for p in rd.iterdir()) == ["config.yaml", "result.json"]
    with pytest.raises(RuntimeError, match=r"segmentation.fill_empty: cached 0.2, requested 0.3"):
        runs.train_or_reuse(cfg.with_overrides(["segmentation.fill_empty=0.3"]), rd)
