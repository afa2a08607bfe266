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
    text = "".join((BENCH / f"{s}.py").read_text() for s in ("medmnist", "segmentation", "detection"))
    unused = [p.stem for p in CONFIGS if f'"{p.stem}"' not in text]
    assert len(CONFIGS) >= 15 and not unused


def test_medmnist_script_trains_the_recipe_files():
    bench = _load("medmnist")
    cfgs = BENCH / "configs"
    _same(load_config(None, bench.reference_overrides("retinamnist", 2, 20.0)), load_config(cfgs / "medmnist_reference.yaml"))
    for ds, dims, name in (("retinamnist", 2, "medmnist_best_retinamnist"), ("adrenalmnist3d", 3, "medmnist_best_3d"),
                           ("pneumoniamnist", 2, "medmnist_best_2d")):
        _same(load_config(None, bench.best_overrides(ds, dims, 20.0)), load_config(cfgs / f"{name}.yaml"))
    # on another set: the file with data.dataset (and the budget) set
    _same(load_config(None, bench.best_overrides("vesselmnist3d", 3, 5.0)),
          load_config(cfgs / "medmnist_best_3d.yaml", ["data.dataset=vesselmnist3d", "train.max_minutes=5"]))
    assert bench.MINUTES == 20.0


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


def test_detection_script_trains_the_recipe_files():
    bench = _load("detection")
    cfgs = BENCH / "configs"
    assert bench.MINUTES == {"bccd": 30.0, "cells": 12.0}
    for ds, model, name in (("bccd", "centernet", "bccd_centernet"), ("bccd", "fcos", "bccd_fcos"),
                            ("cells", "density_unet", "cells_density_unet"),
                            ("cells", "centernet_points", "cells_centernet_points")):
        job = {"dataset": ds, "model": model, "overrides": bench.CONFIGS[ds][model], "draw": 2, "root": "D",
               "minutes": bench.MINUTES[ds], "seed": 0, "resamples": 2000}
        _same(bench.job_config(job), load_config(cfgs / f"{name}.yaml", ["data.root=D", "data.fold=2", "train.threads=1"]))


class _Stop(Exception):
    pass


def _new_configs(monkeypatch) -> dict[str, dict]:
    """run directory name -> the config today's scripts train there, for the published commands
    (benchmarks/results/*.md), computed by each script's own job code with training replaced."""
    found: dict[str, dict] = {}

    def record(cfg, run_dir):
        found[Path(run_dir).name] = cfg.to_dict()
        return True

    for name, argv in (("segmentation", ["--data", "../shared/data", "--parallel", "2", "--minutes", "busi=20",
                                         "--folds", "0", "1", "2", "3", "4"]),
                       ("detection", ["--data", "../shared/data", "--parallel", "2", "--minutes", "cells=12"])):
        mod = _load(name)
        run = mod._run_openmia if name == "segmentation" else mod._run

        def pool(_run, jobs, parallel, run=run):
            for job in jobs:
                if job["model"] != "monai_unet":
                    run(job)
            raise _Stop

        monkeypatch.setattr(mod, "train_or_reuse", record)
        monkeypatch.setattr(mod, "run_pool", pool)
        with pytest.raises(_Stop):
            mod.main([*argv, "--runs-dir", "RUNS"])
    med = _load("medmnist")

    def execute(jobs, names, parallel):
        for job in jobs:  # published with 2 runs in parallel on 2 cores: one torch thread each
            record(med.job_config({**job, "threads": 1}), job["run_dir"])
        raise _Stop

    monkeypatch.setattr(med, "_execute", execute)
    with pytest.raises(_Stop):
        med.main(["--root", "../shared/data/medmnist", "--parallel", "2", "--minutes", "20", "--runs-dir", "RUNS"])
    return found


def _legacy_dict(name: str) -> dict:
    """The full config.yaml (earlier flat layout) of a published run directory."""
    def merge(a: dict, b: dict) -> dict:
        return {**a, **{k: merge(a[k], v) if isinstance(v, dict) and k != "kwargs" and isinstance(a.get(k), dict) else v
                        for k, v in b.items()}}

    return merge(LEGACY["defaults"], LEGACY["runs"][name])


def test_published_run_directories_still_count_as_their_recipes(monkeypatch, tmp_path):
    runs = _load("_runs")
    new = _new_configs(monkeypatch)
    assert set(new) == set(LEGACY["runs"]) and len(new) == 81  # every published training run, no more
    for name, cfg in new.items():
        rd = tmp_path / name
        rd.mkdir()
        (rd / "config.yaml").write_text(yaml.safe_dump(_legacy_dict(name), sort_keys=False))
        assert runs.config_differences(runs.cached_config(rd), cfg) == [], name


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
