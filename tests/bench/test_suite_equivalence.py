"""The shipped suites train exactly what the committed benchmark scripts train: every cell's id
(the hash of its resolved config, without where-keys) equals the id of the config the script
builds for the same data set, configuration and seed (issue 25: "suites reproduce the committed
numbers" — same config, same run). Nothing here trains."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from openmia.bench.suite import cell_id, load_suite

ROOT = Path(__file__).resolve().parents[2]


def _script(name: str):
    spec = importlib.util.spec_from_file_location(f"bench_script_{name}", ROOT / "benchmarks" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_medmnist_suite_is_the_script(tmp_path):
    from openmia.data.catalog import get_spec

    M = _script("medmnist")
    suite = load_suite(ROOT / "benchmarks" / "suites" / "medmnist.yaml", data_root=tmp_path)
    assert len(suite.cells) == 3 * 2 * 3
    for c in suite.cells:
        ds = c.config["data"]["dataset"]
        make = M.reference_overrides if c.model == "reference" else M.best_overrides
        cfg = M.job_config({"overrides": make(ds, get_spec(ds).dims, M.MINUTES), "seed": c.seed, "threads": 1,
                            "resamples": 2000, "root": str(tmp_path / "medmnist")})
        assert cell_id(cfg.to_dict()) == c.id, c.label
        assert cfg.data.root == c.config["data"]["root"]


def test_segmentation_suite_is_the_scripts_main_configuration(tmp_path):
    S = _script("segmentation")
    suite = load_suite(ROOT / "benchmarks" / "suites" / "segmentation.yaml", data_root=tmp_path)
    assert {c.dataset for c in suite.cells} == {"busi", "kvasir_seg", "hippocampus"}
    for c in suite.cells:
        job = {"dataset": c.dataset, "model": "openmia", "fold": 0, "minutes": S.MINUTES[c.dataset], "seed": c.seed,
               "overrides": S._overrides(c.dataset, "openmia"), "run_dir": "unused",
               "root": str(tmp_path / c.dataset), "resamples": 2000}
        ((cfg, _),) = S.stage_configs(job)
        assert cell_id(cfg.to_dict()) == c.id, c.label


@pytest.mark.parametrize("draw", [0, 1, 2])
def test_detection_suite_is_the_script(tmp_path, draw):
    D = _script("detection")
    suite = load_suite(ROOT / "benchmarks" / "suites" / "detection.yaml", data_root=tmp_path)
    cells = {(c.dataset, c.model): c for c in suite.cells}
    for ds, label in (("bccd", "bccd"), ("cells", f"vgg_cells-draw{draw}")):
        for model in (("centernet", "fcos") if ds == "bccd" else ("density_unet", "centernet_points")):
            if ds == "bccd" and draw:
                continue
            job = {"dataset": ds, "model": model, "overrides": D.CONFIGS[ds][model], "draw": draw,
                   "root": str(tmp_path / D.DATASET[ds][2]), "minutes": D.MINUTES[ds], "seed": 0, "resamples": 2000}
            assert cell_id(D.job_config(job).to_dict()) == cells[(label, model)].id, (label, model)
