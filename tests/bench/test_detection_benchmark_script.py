"""The detection/counting benchmark script runs end to end on toy BCCD- and VGG-cells-shaped
folders and writes the records the issue asks for (real runs use ../shared/data)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
from PIL import Image

BENCH = Path(__file__).resolve().parents[2] / "benchmarks"
KEYS = {"dataset", "model", "map50", "map50_95", "count_mae", "count_mae_ci_low", "count_mae_ci_high", "train_seconds"}


def _load():
    spec = importlib.util.spec_from_file_location("bench_detection", BENCH / "detection.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _toy_bccd(root: Path, rng) -> None:
    base = root / "BCCD"
    for d in ("Annotations", "JPEGImages", "ImageSets/Main"):
        (base / d).mkdir(parents=True)
    names = {"train": 6, "val": 3, "test": 3}
    k = 0
    for split, n in names.items():
        ids = []
        for _ in range(n):
            cid = f"BloodImage_{k:05d}"
            k += 1
            img = np.full((480, 640, 3), 200, np.uint8)
            objs = []
            for j, cls in enumerate(("RBC", "WBC", "Platelets")):
                x, y = int(rng.integers(20, 500)), int(rng.integers(20, 340))
                s = (100, 150, 30)[j]
                img[y : y + s, x : x + s] = (180, 60, 60) if cls == "RBC" else (80, 40, 160) if cls == "WBC" else (60, 60, 60)
                objs.append(f"<object><name>{cls}</name><bndbox><xmin>{x}</xmin><ymin>{y}</ymin><xmax>{x + s}</xmax>"
                            f"<ymax>{y + s}</ymax></bndbox></object>")
            Image.fromarray(img).save(base / "JPEGImages" / f"{cid}.jpg")
            (base / "Annotations" / f"{cid}.xml").write_text(
                f"<annotation><filename>{cid}.jpg</filename><size><width>640</width><height>480</height></size>"
                + "".join(objs) + "</annotation>")
            ids.append(cid)
        (base / "ImageSets" / "Main" / f"{split}.txt").write_text("\n".join(ids) + "\n")


def _toy_cells(root: Path, rng) -> None:
    base = root / "cells"
    base.mkdir(parents=True)
    yy, xx = np.mgrid[:256, :256]
    for i in range(1, 201):
        n = int(rng.integers(3, 12))
        pts = rng.integers(8, 248, (n, 2))
        blue = np.zeros((256, 256))
        dots = np.zeros((256, 256, 3), np.uint8)
        for x, y in pts:
            blue = np.maximum(blue, np.exp(-((xx - x) ** 2 + (yy - y) ** 2) / 8.0))
            dots[y, x] = (255, 0, 0)
        img = np.zeros((256, 256, 3), np.uint8)
        img[..., 2] = (255 * blue).astype(np.uint8)
        Image.fromarray(img).save(base / f"{i:03d}cell.png")
        Image.fromarray(dots).save(base / f"{i:03d}dots.png")


def test_detection_benchmark_end_to_end(tmp_path, monkeypatch):
    bench = _load()
    rng = np.random.default_rng(0)
    _toy_bccd(tmp_path / "data" / "bccd", rng)
    _toy_cells(tmp_path / "data" / "cells", rng)
    # a tiny suite shaped like benchmarks/suites/detection.yaml (BCCD; VGG cells draws as data.fold)
    suite = tmp_path / "detection.yaml"
    suite.write_text("""
name: detection-tiny
datasets:
  - {name: bccd, root: bccd, models: [centernet, fcos]}
  - {name: vgg_cells, label: vgg_cells-draw0, root: cells, set: {data.fold: 0}, models: [density_unet, centernet_points]}
models:
  centernet: {set: {model.name: centernet, model.kwargs: {width: 4, depth: 2}, data.batch_size: 4}}
  fcos: {set: {model.name: fcos, model.kwargs: {width: 4}, data.batch_size: 4}}
  density_unet: {set: {model.name: density_counter, model.kwargs: {width: 4, depth: 2}, data.batch_size: 8}}
  centernet_points: {set: {model.name: centernet, model.kwargs: {width: 4, depth: 2, stride: 2}, data.batch_size: 8}}
""")
    monkeypatch.setattr(bench, "ABLATIONS", {})
    monkeypatch.setattr(bench, "LOG_THRESHOLDS", (0.05, 0.1))
    out, runs_dir = tmp_path / "results", tmp_path / "runs"
    # draw 1 is not in the suite: the script adds it (the suite's draw-0 entry with data.fold 1)
    args = ["--suite", str(suite), "--data", str(tmp_path / "data"), "--minutes", "bccd=0.01", "cells=0.01", "--draws", "0", "1",
            "--runs-dir", str(runs_dir), "--out", str(out), "--resamples", "50"]
    assert bench.main(args) == 0
    records = json.loads((out / "detection.json").read_text())
    assert {(r["dataset"], r["model"]) for r in records} == {("bccd", "centernet"), ("bccd", "fcos"), ("cells", "density_unet"),
                                                           ("cells", "centernet_points"), ("cells", "log_baseline")}
    for r in records:
        assert KEYS <= set(r)
        assert r["count_mae_ci_low"] <= r["count_mae"] <= r["count_mae_ci_high"]
        if r["dataset"] == "bccd":
            assert 0 <= r["map50"] <= 1 and set(r["per_class"]) == {"RBC", "WBC", "Platelets"}
        else:
            assert r["map50"] is None and r["draws"] == 2 and len(r["count_mae_per_draw"]) == 2
            # the reported MAE is the mean over draws of each test image's error
            assert abs(np.mean(r["count_mae_per_draw"]) - r["count_mae"]) < 1e-9
    md = (out / "detection.md").read_text()
    assert "| cells | density_unet |" in md and "Paired comparisons" in md and "| bccd | centernet | fcos |" in md
    # every pair of cell counters is compared once
    assert md.count("| cells | ") == 3 + 3
    # the trained runs are suite cells (the LoG baseline, not trained, is the script's own)
    cells = sorted(p.parent.name for p in runs_dir.glob("cells/*/result.json"))
    assert len(cells) == 2 + 2 * 2 and sum(c.startswith("vgg_cells-draw1-density_unet-") for c in cells) == 1
    assert sorted(p.parent.name for p in runs_dir.glob("script/*/result.json")) == ["cells-log_baseline-d0",
                                                                                    "cells-log_baseline-d1"]
    before = sorted(p.stat().st_mtime for p in runs_dir.glob("*/*/result.json"))
    assert bench.main(args) == 0  # complete runs are reused
    assert sorted(p.stat().st_mtime for p in runs_dir.glob("*/*/result.json")) == before


def test_bccd_size_variants_scale_boxes_and_keep_original_pixels(tmp_path):
    import pytest

    from openmia.data.catalog import get_spec, load_split
    from openmia.errors import UnknownNameError

    _toy_bccd(tmp_path / "bccd", np.random.default_rng(3))
    base = load_split("bccd", "test", root=tmp_path / "bccd")
    big = load_split("bccd", "test", size=480, root=tmp_path / "bccd")
    assert base.images.shape[1:] == (3, 240, 320) and big.images.shape[1:] == (3, 360, 480)
    assert get_spec("bccd_480") == big.spec and big.spec.name == "bccd_480" and get_spec("bccd_640").shape == (480, 640)
    for b, g, sb, sg in zip(base.objects, big.objects, base.scales, big.scales):
        # the same boxes in original pixels: input coordinates x (original / input) scale
        assert np.allclose(b * np.tile(sb, 2), g * np.tile(sg, 2)) and np.allclose(sg, [640 / 480, 480 / 360])
    with pytest.raises(UnknownNameError, match="one of \\(320, 480, 640\\); found 500"):
        get_spec("bccd", 500)
    with pytest.raises(UnknownNameError, match="data.size does not apply"):
        get_spec("vgg_cells", 128)
