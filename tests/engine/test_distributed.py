"""Distributed (torchrun DDP) training: engine.distributed and the loop's hooks.

Fast tests cover the batch split, the launcher's checks and error mapping, the CUDA/NCCL path (with
mocks: no GPU here) and one real 2-process launch that fails in setup. The runs that train with two
processes (Dice vs one process, equal loss curves, resume after a kill) are ``slow``.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest

from openmia.engine import distributed
from openmia.engine.distributed import DistContext, DistributedError, check_nproc, threads_per_rank
from openmia.errors import ConfigError, DataError

ROOT = Path(__file__).resolve().parents[2]


def _children(pid: int) -> list[int]:
    """PIDs of the live descendants of ``pid`` (from /proc)."""
    kids: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[0] != "Z":
            kids.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    out, todo = [], [pid]
    while todo:
        for c in kids.get(todo.pop(), []):
            out.append(c)
            todo.append(c)
    return out


# -- the batch split (no process group)

@pytest.mark.parametrize("n,world", [(8, 2), (5, 2), (7, 3), (16, 4)])
def test_shard_covers_the_global_batch_and_weights_give_its_mean(n, world):
    idx = np.sort(np.random.default_rng(n).choice(100, n, replace=False))
    parts = [DistContext(rank=r, world=world, local_rank=r).shard(idx) for r in range(world)]
    assert np.array_equal(np.concatenate([p for p, _ in parts]), idx)  # contiguous, disjoint, complete
    losses = np.random.default_rng(1).random(100)
    # DDP averages over ranks: mean_r(w_r * mean(part_r)) must be the global batch's mean loss
    averaged = np.mean([w * losses[p].mean() for p, w in parts])
    assert averaged == pytest.approx(losses[idx].mean(), rel=1e-12)
    assert DistContext(rank=0, world=world, local_rank=0).min_part(n) == min(len(p) for p, _ in parts)


def test_nproc_and_timeout_are_checked(monkeypatch):
    assert check_nproc(2) == 2
    for bad in (0, -1, True, 1.5, "2"):
        with pytest.raises(ConfigError, match="nproc must be a positive integer"):
            check_nproc(bad)
    from openmia import api

    with pytest.raises(ConfigError, match="found 0"):
        api.train(None, ["train.epochs=1"], nproc=0)
    for bad in ("soon", "-5", "0"):
        monkeypatch.setenv(distributed.TIMEOUT_ENV, bad)
        with pytest.raises(ConfigError, match=distributed.TIMEOUT_ENV):
            distributed.timeout_s()
    monkeypatch.setenv(distributed.TIMEOUT_ENV, "42")
    assert distributed.timeout_s() == 42.0


def test_ranks_on_cuda_need_a_gpu_each(monkeypatch, tmp_path):
    """Rank r computes on cuda:r: more ranks than visible GPUs is refused before anything starts
    (GPUs faked at the boundary torch reports them through); on the CPU any count goes."""
    import torch

    from openmia import api

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    distributed.check_gpus("cpu", 4)
    distributed.check_gpus("cuda", 1)
    with pytest.raises(ConfigError, match=r"--nproc 2 with train.device='auto': each rank needs its own GPU .* 1 is visible; "
                                          r"use --nproc 1 or train.device=cpu"):
        api.train(None, ["train.epochs=1"], nproc=2, run_dir=tmp_path / "run")
    assert not (tmp_path / "run").exists()


def test_threads_are_split_between_ranks():
    assert threads_per_rank(2, 2) == 1 and threads_per_rank(8, 3) == 2 and threads_per_rank(1, 4) == 1
    assert threads_per_rank(None, 1) >= 1


def test_only_rank_zero_of_an_openmia_run_writes(monkeypatch):
    monkeypatch.delenv(distributed.ENV_FLAG, raising=False)
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "1")
    assert distributed.from_env() is None and distributed.is_writer()  # a foreign torchrun job: not ours
    monkeypatch.setenv(distributed.ENV_FLAG, "1")
    ctx = distributed.from_env()
    assert (ctx.rank, ctx.world, ctx.is_main) == (1, 2, False) and not distributed.is_writer()
    monkeypatch.setenv("RANK", "0")
    assert distributed.is_writer() and distributed.from_env().is_main


@pytest.mark.parametrize("kind,backend,expected", [("cuda", "nccl", "cuda:1"), ("cpu", "gloo", "cpu")])
def test_backend_and_device_follow_the_device(monkeypatch, kind, backend, expected):
    """CUDA is mocked (no GPU here): rank 1 must join with NCCL on cuda:LOCAL_RANK, with a timeout."""
    import torch
    import torch.distributed as dist

    calls = {}
    monkeypatch.setattr(torch.cuda, "set_device", lambda d: calls.setdefault("set_device", str(d)))
    monkeypatch.setattr(dist, "is_initialized", lambda: False)
    monkeypatch.setattr(dist, "init_process_group", lambda b, timeout: calls.update(backend=b, timeout=timeout))
    monkeypatch.setenv(distributed.TIMEOUT_ENV, "30")
    ctx = DistContext(rank=1, world=2, local_rank=1)
    dev = ctx.init(torch.device(kind))
    assert str(dev) == expected and ctx.backend == backend == calls["backend"]
    assert calls["timeout"] == timedelta(seconds=30)
    assert calls.get("set_device") == ("cuda:1" if kind == "cuda" else None)


def test_a_rank_error_keeps_its_class_and_names_the_rank(tmp_path):
    (tmp_path / "rank1.json").write_text(json.dumps({"rank": 1, "type": "DataError", "message": "case 7 is bad"}))
    err = distributed._rank_error(tmp_path, 1, 2, [])
    assert isinstance(err, DataError) and "rank 1: case 7 is bad" in str(err)
    (tmp_path / "rank1.json").write_text(json.dumps({"rank": 1, "type": "ZeroDivisionError", "message": "x"}))
    err = distributed._rank_error(tmp_path, 1, 2, [])
    assert isinstance(err, DistributedError) and "ZeroDivisionError" in str(err)
    (tmp_path / "rank1.json").unlink()
    err = distributed._rank_error(tmp_path, -9, 2, ["Signals.SIGKILL"])
    assert isinstance(err, DistributedError) and "code -9" in str(err) and "SIGKILL" in str(err)


def test_a_failing_launch_raises_a_clear_error_and_leaves_no_process(tmp_path):
    """A real 2-process launch whose ranks fail their setup checks: the ranks' ConfigError comes
    back to the parent, no run directory is written, no process is left behind."""
    from openmia import api

    # earlier tests of the session may keep helper processes (a process pool, a Ray node): only the
    # processes this launch starts must be gone
    before = set(_children(os.getpid()))
    out = tmp_path / "runs"
    with pytest.raises(ConfigError, match=r"distributed training \(2 processes\), rank [01]: .*segmentation data set"):
        api.train(None, ["data.dataset=synthetic/seg2d", "train.epochs=1", "train.threads=2", f"out_dir={out}"],
                  progress=False, nproc=2)
    assert not out.exists() or not any(out.iterdir())
    assert sorted(set(_children(os.getpid())) - before) == []


# -- real 2-process training (slow)

SEG = ["task=segmentation", "data.dataset=synthetic/seg2d", "model.name=unet_small", "model.kwargs.width=8",
       "data.batch_size=16", "train.epochs=5", "train.deterministic=true", "eval.n_resamples=200"]


def _dice(res) -> dict:
    return next(m for m in res.test_summary["metrics"] if m["metric"] == "dice" and m["label"] == "all")


@pytest.mark.slow
def test_two_processes_reach_the_one_process_dice_and_only_rank_zero_writes(tmp_path):
    from openmia import api

    one = api.train(None, [*SEG, "train.threads=2", f"out_dir={tmp_path / 'one'}"], progress=False, index=False)
    two = api.train(None, [*SEG, "train.threads=2", f"out_dir={tmp_path / 'two'}"], progress=False, index=False,
                    nproc=2)
    assert [p.name for p in (tmp_path / "two").iterdir()] == [two.run_dir.name]  # one run directory
    lines = [json.loads(x) for x in (two.run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in lines] == [1, 2, 3, 4, 5]  # one line per epoch: rank 1 wrote none
    prov = json.loads((two.run_dir / "provenance.json").read_text())
    assert prov["distributed"]["world_size"] == 2 and prov["distributed"]["backend"] == "gloo"
    assert "threads: 1" in (two.run_dir / "config.yaml").read_text()  # train.threads=2 split over 2 ranks
    d1, d2 = _dice(one), _dice(two)
    print(f"test Dice: 1 process {d1['value']:.4f} [{d1['ci_low']:.4f}, {d1['ci_high']:.4f}]; 2 processes {d2['value']:.4f}")
    assert d1["ci_low"] <= d2["value"] <= d1["ci_high"]


def _steps(tmp_path, nproc: int, k: int, overrides: list[str]) -> list[float]:
    out = tmp_path / f"steps{nproc}.json"
    script = str(ROOT / "tests" / "engine" / "ddp_steps.py")
    if nproc == 1:
        cmd = [sys.executable, script, str(out), str(k), *overrides, "train.threads=2"]
    else:
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={nproc}",
               "--max-restarts=0", script, str(out), str(k), *overrides, "train.threads=1"]
    env = {**os.environ, distributed.ENV_FLAG: "1", distributed.TIMEOUT_ENV: "300"}
    subprocess.run(cmd, env=env, check=True, timeout=600, capture_output=True)
    return json.loads(out.read_text())["losses"]


@pytest.mark.slow
def test_loss_curves_match_at_equal_global_batch(tmp_path):
    """1 process x batch 8 vs 2 processes x 4: the same cases per step, averaged gradients.

    Instance norm (no batch statistics across the batch) and per-image Dice (``batch_dice=false``;
    batch Dice is computed over each rank's part, which changes the loss by ~5e-4 at step 1), no
    augmentation, no dropout. What remains is float32 summation order (the loss of 8 = mean of two
    means of 4, all-reduced gradients): ~1e-7 at step 1, grown to ~4e-6 by step 8 through Adam's
    normalisation (measured). The tolerance 1e-4 is 25x that and 1000x below a step's loss change."""
    ov = ["task=segmentation", "data.dataset=synthetic/seg2d", "model.name=unet_small", "model.kwargs.norm=instance",
          "segmentation.batch_dice=false", "data.augment=none", "data.batch_size=8", "train.deterministic=true",
          "train.epochs=1", "train.seed=0"]
    k = 8
    one, two = _steps(tmp_path, 1, k, ov), _steps(tmp_path, 2, k, ov)
    assert len(one) == len(two) == k
    diff = np.abs(np.array(one) - np.array(two))
    print("per-step |loss1 - loss2|:", diff.tolist())
    assert diff.max() < 1e-4
    assert np.abs(np.diff(one)).min() > 100 * diff.max()  # the curves move much more than they differ


@pytest.mark.slow
def test_resume_after_a_kill_continues_with_two_processes(tmp_path):
    """SIGKILL rank 0 of a 2-process run after its first epoch: the launcher reports the failure,
    no process is left, and ``--resume --nproc 2`` finishes the run with one line per epoch."""
    out = tmp_path / "runs"
    cmd = [sys.executable, "-m", "openmia", "--quiet", "train", "--nproc", "2", "--dataset", "synthetic/binary",
           "--model", "mlp", "--epochs", "6", "--deterministic", "--out-dir", str(out),
           "--set", "eval.n_resamples=200", "--set", "train.threads=2", "--set", "data.batch_size=64"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 300
    rd = None
    while time.monotonic() < deadline:
        runs = list(out.glob("*")) if out.exists() else []
        if runs and (runs[0] / "checkpoints" / "last.pt").is_file() and (runs[0] / ".lock").is_file():
            rd = runs[0]
            break
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.1)
    assert rd is not None, "the run wrote no checkpoint in 300 s"
    rank0 = int((rd / ".lock").read_text().split()[0])  # the lock holder is rank 0
    os.kill(rank0, signal.SIGKILL)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 2 and "distributed training (2 processes)" in err, err[-2000:]
    assert not (rd / "result.json").exists()
    assert _children(proc.pid) == []
    from openmia import api

    res = api.resume(rd, progress=False, index=False, nproc=2)
    lines = [json.loads(x) for x in (rd / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in lines] == [1, 2, 3, 4, 5, 6] and res.epochs_done == 6
    assert json.loads((rd / "result.json").read_text())["status"] == "complete"


@pytest.mark.slow
def test_a_time_budget_stops_every_rank_at_the_same_step(tmp_path):
    """``train.max_minutes`` with 2 processes: rank 0's clock decides for all (no hang, no torn epoch)."""
    from openmia import api

    res = api.train(None, ["data.dataset=synthetic/binary", "model.name=mlp", "train.epochs=500",
                           "train.max_minutes=0.1", "train.threads=2", "data.batch_size=32", "eval.n_resamples=200",
                           f"out_dir={tmp_path}"], progress=False, index=False, nproc=2)
    lines = [json.loads(x) for x in (res.run_dir / "metrics.jsonl").read_text().splitlines()]
    assert 1 <= res.epochs_done < 500 and [r["epoch"] for r in lines] == list(range(1, res.epochs_done + 1))
    assert json.loads((res.run_dir / "result.json").read_text())["status"] == "complete"
