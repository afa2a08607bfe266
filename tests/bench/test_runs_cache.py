"""benchmarks/_runs.py: a cached run is reused or resumed only when it was made with the same
configuration, so a changed recipe can never be reported with a stale model."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

from openmia.config import load_config

BENCH = Path(__file__).resolve().parents[2] / "benchmarks"


def _load():
    spec = importlib.util.spec_from_file_location("bench_runs", BENCH / "_runs.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules["bench_runs"] = mod
    spec.loader.exec_module(mod)
    return mod


def test_train_or_reuse_refuses_a_cached_run_of_another_configuration(tmp_path):
    runs = _load()
    base = ["data.dataset=synthetic/binary", "model.name=mlp", "train.epochs=1", "eval.n_resamples=50", "train.threads=1"]
    cfg = load_config(None, base)
    rd = tmp_path / "run"
    assert runs.train_or_reuse(cfg, rd) is False and (rd / "result.json").is_file()
    before = (rd / "result.json").read_text()
    # the same recipe (another data.root / name only) is reused without training again
    assert runs.train_or_reuse(load_config(None, [*base, "name=elsewhere"]), rd) is True
    assert (rd / "result.json").read_text() == before
    with pytest.raises(RuntimeError, match=r"optim.lr: cached 0.001, requested 0.01"):
        runs.train_or_reuse(load_config(None, [*base, "optim.lr=0.01"]), rd)
    assert runs.config_differences({"a": {"b": 1, "c": [1]}, "data": {"root": "x"}},
                                   {"a": {"b": 2, "c": [1]}, "data": {"root": "y"}}) == ["a.b: cached 1, requested 2"]
    assert json.loads(before)["status"] == "complete"
