"""Faults a new user hit in the engine (issue 21), each reproduced, then fixed: duplicate epochs
after a kill, two writers on one run directory, OS errors on the output path, stub run
directories after a failed start, stale temporaries."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from openmia.config import load_config
from openmia.engine.loop import Loop
from openmia.engine.run_dir import RunLock, resume, train
from openmia.errors import OpenmiaError, RunDirError

FAST = ["data.dataset=synthetic/binary", "model.name=mlp", "train.epochs=3", "data.batch_size=256",
        "eval.n_resamples=50", "train.threads=1", "train.deterministic=true"]


def _cfg(tmp_path, *extra):
    return load_config(None, [*FAST, f"out_dir={tmp_path / 'runs'}", *extra])


def _epochs(run_dir):
    return [json.loads(x).get("epoch") for x in (run_dir / "metrics.jsonl").read_text().splitlines()]


def test_kill_between_the_epoch_line_and_the_checkpoint_leaves_each_epoch_once(tmp_path, monkeypatch):
    """Fault 5: the epoch's line was appended, then the process died before last.pt was saved."""
    real = Loop._save_last

    def dies_at_epoch_2(self):
        if self.epoch == 2:
            raise KeyboardInterrupt  # the kill: the line of epoch 2 is written, its checkpoint is not
        real(self)

    monkeypatch.setattr(Loop, "_save_last", dies_at_epoch_2)
    with pytest.raises(KeyboardInterrupt):
        train(_cfg(tmp_path), run_dir=tmp_path / "run", progress=False)
    assert _epochs(tmp_path / "run") == [1, 2]
    monkeypatch.setattr(Loop, "_save_last", real)
    res = resume(tmp_path / "run", progress=False)
    assert _epochs(res.run_dir) == [1, 2, 3]
    whole = train(_cfg(tmp_path), run_dir=tmp_path / "whole", progress=False)
    assert res.test_summary == whole.test_summary  # and the resumed run is the unbroken one


def test_a_torn_last_line_is_dropped_on_resume(tmp_path):
    train(_cfg(tmp_path), run_dir=tmp_path / "run", progress=False, stop_after_epoch=1)
    with open(tmp_path / "run" / "metrics.jsonl", "a") as f:
        f.write('{"epoch": 2, "train_lo')  # killed mid-write
    resume(tmp_path / "run", progress=False)
    assert _epochs(tmp_path / "run") == [1, 2, 3]


def test_a_second_writer_on_a_run_directory_is_refused_with_the_holders_pid(tmp_path):
    """Fault 6: `train --resume RUN` while RUN is still training."""
    train(_cfg(tmp_path), run_dir=tmp_path / "run", progress=False, stop_after_epoch=1)
    holder = subprocess.Popen([sys.executable, "-c", (
        "import sys, time; from openmia.engine.run_dir import RunLock\n"
        f"with RunLock({str(tmp_path / 'run')!r}):\n    print('locked', flush=True); time.sleep(30)")],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(RunDirError, match=rf"in use by another openmia process \(PID {holder.pid}\)"):
            resume(tmp_path / "run", progress=False)
        assert _epochs(tmp_path / "run") == [1]  # nothing was written by the refused process
    finally:
        holder.kill()
        holder.wait()
    # the lock dies with its holder: no stale lock after a kill
    res = resume(tmp_path / "run", progress=False)
    assert _epochs(res.run_dir) == [1, 2, 3]


def test_the_lock_is_exclusive_within_one_process_too(tmp_path):
    with RunLock(tmp_path):
        with pytest.raises(RunDirError, match="in use"):
            with RunLock(tmp_path):
                pass
    with RunLock(tmp_path):  # released on exit
        pass


def test_failed_starts_leave_no_run_directory(tmp_path):
    """Fault 9: an unknown model or data set, bad model.kwargs, a task/model mismatch."""
    from openmia.cli.main import main

    out = tmp_path / "runs"
    for bad in (["--model", "resnet9"], ["--dataset", "synthetic/nope"], ["--set", "model.kwargs.depth=3"],
                ["--model", "unet"], ["--task", "segmentation", "--dataset", "synthetic/binary"]):
        assert main(["train", "--epochs", "1", "--out-dir", str(out), *bad]) == 2, bad
        assert not out.exists() or not any(out.iterdir()), bad


def test_output_path_errors_are_one_line_errors(tmp_path, capsys):
    """Fault 7: ``--out-dir`` naming an existing file."""
    from openmia.cli.main import main

    (tmp_path / "file").write_text("x")
    assert main(["train", "--epochs", "1", "--out-dir", str(tmp_path / "file"), "--set", "model.name=mlp"]) == 2
    err = capsys.readouterr().err
    assert "openmia train: error:" in err and str(tmp_path / "file") in err and "Traceback" not in err
    with pytest.raises(RunDirError, match="exists and is not empty"):
        train(_cfg(tmp_path), run_dir=tmp_path, progress=False)


def test_resume_cleans_stale_temporaries_in_the_run(tmp_path):
    """Fault 12 (engine part): hidden temporaries of a killed checkpoint write are removed."""
    train(_cfg(tmp_path), run_dir=tmp_path / "run", progress=False, stop_after_epoch=1)
    debris = [tmp_path / "run" / "checkpoints" / ".last.pt.abcd1234.tmp", tmp_path / "run" / ".result.json.x1y2z3ab.tmp"]
    for d in debris:
        d.write_bytes(b"half")
    resume(tmp_path / "run", progress=False)
    assert not any(d.exists() for d in debris)


def test_segmentation_counting_detection_train_without_model_or_dataset(tmp_path):
    """Fault 10: the default model (and data set) follow the task."""
    from openmia.cli.main import main

    for task, extra in (("segmentation", "model.kwargs.width=4"), ("counting", "model.kwargs.width=4"),
                        ("detection", "model.kwargs={width: 4, depth: 2}")):
        out = tmp_path / task
        assert main(["-q", "train", "--task", task, "--epochs", "1", "--out-dir", str(out), "--set", extra,
                     "--set", "eval.n_resamples=20", "--set", "train.threads=1", "--set", "data.batch_size=32"]) == 0
        (rd,) = list(out.iterdir())
        assert json.loads((rd / "result.json").read_text())["task"] == task


def test_every_engine_error_is_an_openmia_error(tmp_path):
    with pytest.raises(OpenmiaError):
        resume(tmp_path / "missing", progress=False)
    (tmp_path / "run").mkdir()
    with pytest.raises(RunDirError, match="config.yaml is missing"):
        resume(tmp_path / "run", progress=False)
