"""A suite cell trained with two data-parallel processes (``openmia benchmark run --nproc 2``):
the cell launches torchrun (gloo on the CPU) like ``openmia train --nproc``, finishes as an
ordinary run with world size 2 in its provenance, and keeps its id (nproc is not part of it)."""

from __future__ import annotations

import json

from openmia import api

# torchrun starts two fresh interpreters that import torch: ~30 s on 2 busy cores (under the brief's
# 60 s limit for the default suite)

SUITE = """
name: ddp
base:
  data: {batch_size: 32}
  train: {epochs: 1}
  eval: {n_resamples: 50}
datasets: [synthetic/binary]
models:
  mlp: {set: {model.name: mlp}}
seeds: [0]
"""


def test_a_cell_trains_with_two_processes(tmp_path):
    path = tmp_path / "ddp.yaml"
    path.write_text(SUITE)
    lines: list[str] = []
    res = api.benchmark_run(path, threads=2, nproc=2, out_dir=tmp_path / "out", echo=lines.append)
    assert res["counts"]["done"] == 1, res["results"]
    assert any("2 training process(es) each" in x for x in lines)
    (cell,) = api.benchmark_status(path, out_dir=tmp_path / "out")
    assert cell["nproc"] == 2
    prov = json.loads((tmp_path / "out" / "cells" / cell["run_dir"].rsplit("/", 1)[-1] / "provenance.json").read_text())
    assert prov["distributed"]["world_size"] == 2 and prov["distributed"]["backend"] == "gloo"
    assert "2 process(es)" in (tmp_path / "out" / "logs" / f"{cell['run_dir'].rsplit('/', 1)[-1]}.log").read_text()
    # nproc is not part of the id: one process reuses the finished cell
    again = api.benchmark_run(path, threads=2, nproc=1, out_dir=tmp_path / "out")
    assert [s["action"] for s in again["steps"]] == ["reuse"]
