"""A suite mixing task families (segmentation, detection, counting): every cell trains, and the
leaderboard has values with CIs and a paired test against the best for each family (openmia
compare's inputs per family: each Task's ``compare_inputs``)."""

from __future__ import annotations

import pytest

from openmia import api

pytestmark = pytest.mark.slow  # six one-epoch cells of detection/segmentation models: minutes on 2 cores

SUITE = """
name: families
base:
  train: {epochs: 1}
  eval: {n_resamples: 100}
datasets:
  - {name: synthetic/seg2d, models: [unet_small, unet]}
  - {name: synthetic/lesions, models: [centernet, fcos]}
  - {name: synthetic/cells, models: [density, centernet]}
models:
  unet_small: {set: {model.name: unet_small}}
  unet: {set: {model.name: unet, model.kwargs: {channels: [8, 16, 32]}}}
  centernet: {set: {model.name: centernet, model.kwargs: {width: 8}}}
  fcos: {set: {model.name: fcos, model.kwargs: {width: 8}}}
  density: {set: {model.name: density_counter, model.kwargs: {width: 8}}}
resamples: 200
rank_resamples: 50
"""


def test_every_family_gets_a_leaderboard(tmp_path):
    path = tmp_path / "families.yaml"
    path.write_text(SUITE)
    res = api.benchmark_run(path, threads=1, out_dir=tmp_path / "out")
    assert res["counts"]["done"] == 6, res["results"]
    board = api.benchmark_report(path, tmp_path / "report", out_dir=tmp_path / "out")
    blocks = {(b["dataset"], b["metric"]): b for b in board["blocks"]}
    assert set(blocks) == {("synthetic/seg2d", "dice"), ("synthetic/seg2d", "hd95"), ("synthetic/lesions", "ap50"),
                           ("synthetic/lesions", "map"), ("synthetic/cells", "count_abs_error")}
    for b in blocks.values():
        assert len(b["rows"]) == 2
        best, other = b["rows"]
        assert best["model"] == b["best"] and best["ci_low"] <= best["value"] <= best["ci_high"]
        (t,) = other["tests_vs_best"]  # one seed: one paired test against the best
        assert t["ci_low"] <= t["diff"] <= t["ci_high"] and 0 <= t["p_holm"] <= 1
        better = best["value"] >= other["value"] if b["higher_is_better"] else best["value"] <= other["value"]
        assert better
    assert blocks[("synthetic/seg2d", "hd95")]["higher_is_better"] is False
    assert "skipped" in board["across"]["dice"]  # one data set per metric: no Friedman test
