"""Fault injection: a training run killed with SIGKILL at each of its write points, then resumed.

A child process trains through ``openmia.api`` with one write function wrapped so that its k-th
call (optionally only for one file name) kills the process with SIGKILL just before the write
(atomic writes make "before" and "half-way" the same for the reader) — the metrics line, last.pt,
best.pt, the final evaluation's files, result.json and the run index. Afterwards the run is
resumed (or, killed while indexing a complete run, re-indexed with ``openmia runs rebuild``) and
must be whole: it completes, ``metrics.jsonl`` holds each epoch once, every checkpoint loads, no
hidden temporary is left, and the run index has exactly one row for it.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys

import pytest
import torch

EPOCHS = 3
TRAIN = ["data.dataset=synthetic/binary", "model.name=mlp", f"train.epochs={EPOCHS}", "data.batch_size=256",
         "eval.n_resamples=50", "train.threads=1", "train.deterministic=true"]

CHILD = r"""
import os, signal, sys
from pathlib import Path
from openmia import api, fileio
from openmia.bench import store
from openmia.engine import loop

target, name, k, run_dir = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
seen = [0]

def wrap(owner, attr, arg_index=0):
    real = getattr(owner, attr)
    def killing(*a, **kw):
        path = a[arg_index] if len(a) > arg_index else None
        if name == "*" or (path is not None and Path(str(path)).name == name):
            seen[0] += 1
            if seen[0] == k:
                os.kill(os.getpid(), signal.SIGKILL)
        return real(*a, **kw)
    setattr(owner, attr, killing)

if target == "metrics":
    wrap(loop, "append_jsonl")
elif target == "torch_save":
    wrap(fileio, "torch_save", 1)
elif target == "write_json":
    wrap(fileio, "write_json")
elif target == "index":
    wrap(store.RunStore, "record", 1)
api.train(None, sys.argv[5:], progress=False, run_dir=run_dir)
"""

# (what is wrapped, which file, which call is killed): every write point of a run
POINTS = {
    "metrics line of epoch 2": ("metrics", "*", 2),
    "last.pt of epoch 1": ("torch_save", "last.pt", 1),
    "last.pt of the last epoch": ("torch_save", "last.pt", EPOCHS),
    "best.pt of epoch 2": ("torch_save", "best.pt", 2),
    "final evaluation (provenance.json)": ("write_json", "provenance.json", 1),
    "final evaluation (eval summary)": ("write_json", "summary.json", 2),
    "result.json": ("write_json", "result.json", 1),
    "run index": ("index", "*", 1),
}


@pytest.fixture(scope="module")
def unbroken(tmp_path_factory) -> dict:
    """Test metrics of the same run, never killed (not indexed: touches no OPENMIA_HOME)."""
    from openmia import api

    whole = api.train(None, TRAIN, progress=False, run_dir=tmp_path_factory.mktemp("whole") / "run", index=False)
    return {m["metric"]: m["value"] for m in whole.test_summary["metrics"] if m.get("label") == "all"}


@pytest.mark.parametrize("point", list(POINTS))
def test_a_run_killed_at_any_write_point_resumes_whole(point, unbroken, tmp_path):
    from openmia import api
    from openmia.bench.store import RunStore
    from openmia.fileio import TEMP_PATTERN

    target, name, k = POINTS[point]
    rd = tmp_path / "run"
    child = subprocess.run([sys.executable, "-c", CHILD, target, name, str(k), str(rd), *TRAIN, f"out_dir={tmp_path}"],
                           capture_output=True, text=True, timeout=300)
    assert child.returncode == -signal.SIGKILL, child.stderr[-2000:]
    if (rd / "result.json").exists():  # killed while indexing a complete run: the index is rebuilt
        assert target == "index"
        RunStore.default().rebuild([tmp_path])
    else:
        api.resume(rd, progress=False)
    result = json.loads((rd / "result.json").read_text())
    assert result["status"] == "complete" and result["epochs_done"] == EPOCHS
    lines = [json.loads(x) for x in (rd / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in lines] == list(range(1, EPOCHS + 1))
    for ck in ("last.pt", "best.pt"):
        assert torch.load(rd / "checkpoints" / ck, map_location="cpu", weights_only=True)["model"]
    assert not [p for p in rd.rglob("*") if TEMP_PATTERN.match(p.name)]
    rows = [r for r in RunStore.default().list() if r["run_dir"] == str(rd.resolve())]
    assert len(rows) == 1
    # the resumed run is the unbroken run: same test metrics
    assert {k: v["value"] for k, v in result["test"].items()} == unbroken
