"""The benchmark scripts are thin wrappers over the shipped suites (issue 25: "suites reproduce the
committed numbers"): with their default options each script trains exactly the suite's cells (same
ids, same run directories, same suite.sqlite as ``openmia benchmark run``), plus only what the
suite does not declare (segmentation's variants, detection's ablations); and every cell is the
published recipe file it names. Nothing here trains."""

from __future__ import annotations

import argparse
import importlib.util
from pathlib import Path

import pytest

from openmia.bench.suite import cell_id, load_suite
from openmia.config import load_config

ROOT = Path(__file__).resolve().parents[2]
CONFIGS = ROOT / "benchmarks" / "configs"


def _script(name: str):
    spec = importlib.util.spec_from_file_location(f"bench_script_{name}", ROOT / "benchmarks" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _cells(suite) -> dict[str, Path]:
    return {c.id: suite.run_dir(c) for c in suite.cells}


def _recipe_id(name: str, *extra: str) -> str:
    return cell_id(load_config(CONFIGS / f"{name}.yaml", list(extra)).to_dict())


@pytest.mark.parametrize("minutes", [None, 20.0])
def test_medmnist_script_runs_the_suite(tmp_path, monkeypatch, minutes):
    monkeypatch.setenv("OPENMIA_HOME", str(tmp_path / "home"))
    M = _script("medmnist")
    shipped = load_suite(M.SUITE)
    args = argparse.Namespace(suite=M.SUITE, datasets=None, root=str(tmp_path / "npz"), seeds=None, minutes=minutes, only=None,
                              resamples=2000, runs_dir=None)
    derived = M.restricted_suite(args)
    assert len(shipped.cells) == 3 * 2 * 3 and _cells(derived) == _cells(shipped)
    assert derived.store_path == shipped.store_path == tmp_path / "home" / "suites" / "medmnist" / "suite.sqlite"
    for c in derived.cells:  # the published recipe files, as `openmia train --config` loads them
        ds = c.config["data"]["dataset"]
        name = "medmnist_reference" if c.model == "reference" else \
            "medmnist_best_retinamnist" if ds == "retinamnist" else "medmnist_best_3d"
        assert c.id == _recipe_id(name, f"data.dataset={ds}", f"train.seed={c.seed}"), c.label
        assert c.config["data"]["root"] == str(tmp_path / "npz")
    # a restriction is the suite's cells it keeps; a set the suite lacks gets the suite's models
    args.datasets, args.seeds, args.only = ["retinamnist", "pneumoniamnist"], [1], "best"
    sub = M.restricted_suite(args)
    assert [c.model for c in sub.cells] == ["best", "best"] and {c.seed for c in sub.cells} == {1}
    assert sub.cells[0].id in _cells(shipped)
    assert sub.cells[1].id == _recipe_id("medmnist_best_2d", "data.dataset=pneumoniamnist", "train.seed=1")


def test_segmentation_script_runs_the_suite(tmp_path):
    S = _script("segmentation")
    shipped = load_suite(S.SUITE, data_root=tmp_path)
    args = argparse.Namespace(suite=S.SUITE, datasets=list(S.MINUTES), runs_dir=None, data=str(tmp_path), seed=0, resamples=2000)
    derived, labels = S.restricted_suite(args, dict(S.MINUTES), {ds: [0] for ds in S.MINUTES})
    extra = {k: v for k, v in _cells(derived).items() if k not in _cells(shipped)}
    assert {k: v for k, v in _cells(derived).items() if k not in extra} == _cells(shipped)
    # the rest are the VARIANTS, each the main recipe with its keys set
    variants = {(c.dataset, c.model): c for c in derived.cells if c.id in extra}
    assert set(variants) == {(ds, v) for ds, vs in S.VARIANTS.items() for v in vs}
    for (ds, v), c in variants.items():
        assert c.id == _recipe_id(ds, *S.VARIANTS[ds][v]), c.label
    for c in shipped.cells:
        assert c.id == _recipe_id(c.dataset), c.label
    # other hippocampus folds: the same recipe with data.fold set, as their own cells
    derived, labels = S.restricted_suite(args, dict(S.MINUTES), {"busi": [0], "kvasir_seg": [0], "hippocampus": [0, 2]})
    fold2 = [c for c in derived.cells if c.dataset == labels[("hippocampus", 2)]]
    assert [c.model for c in fold2] == ["openmia"] and fold2[0].id == _recipe_id("hippocampus", "data.fold=2")


def test_detection_script_runs_the_suite(tmp_path):
    D = _script("detection")
    shipped = load_suite(D.SUITE, data_root=tmp_path)
    args = argparse.Namespace(suite=D.SUITE, datasets=["bccd", "cells"], draws=[0, 1, 2], seed=0, runs_dir=None,
                              data=str(tmp_path), resamples=2000)
    derived = D.restricted_suite(args, dict(D.MINUTES))
    extra = {k: v for k, v in _cells(derived).items() if k not in _cells(shipped)}
    assert {k: v for k, v in _cells(derived).items() if k not in extra} == _cells(shipped)
    ablations = [c for c in derived.cells if c.id in extra]
    assert sorted({c.model for c in ablations}) == sorted(D.ABLATIONS) and len(ablations) == 2 * 3
    for c in ablations:
        draw = c.config["data"]["fold"]
        assert c.id == _recipe_id("cells_density_unet", *D.ABLATIONS[c.model][1], f"data.fold={draw}"), c.label
    recipes = {"centernet": "bccd_centernet", "fcos": "bccd_fcos", "density_unet": "cells_density_unet",
               "centernet_points": "cells_centernet_points"}
    for c in shipped.cells:
        assert c.id == _recipe_id(recipes[c.model], f"data.fold={c.config['data']['fold']}"), c.label
