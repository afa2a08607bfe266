"""The run directory's lifecycle: create (only once the run can start), lock, resume, re-evaluate.

A run directory is written by one process at a time: :class:`RunLock` holds an OS file lock on
``RUN/.lock`` (released by the kernel when the process dies, so a killed run never leaves a stale
lock) and the holder's PID is written into the file for the error a second writer gets.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import time
from pathlib import Path
from typing import Callable

from openmia import fileio
from openmia.config import RunConfig, dump_yaml, load_run_config
from openmia.engine.loop import Loop, TrainResult
from openmia.errors import ConfigError, OutputError, RunDirError

log = logging.getLogger(__name__)

Hook = Callable[[Path], None]


class RunLock:
    """An exclusive, non-blocking lock on ``run_dir/.lock`` for the lifetime of a ``with`` block.

    Raises:
        RunDirError: another live process holds it (the message names its PID).
    """

    def __init__(self, run_dir: Path) -> None:
        self.path = Path(run_dir) / ".lock"
        self._fd: int | None = None

    def __enter__(self) -> "RunLock":
        import fcntl

        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
        except OSError as exc:
            raise OutputError(f"{self.path}: cannot create the run's lock file ({exc.strerror})") from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise RunDirError(f"{self.path.parent} is in use by another openmia process (PID {holder}); wait for it "
                              "to finish or stop it before resuming or re-evaluating this run") from exc
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd
        return self

    def __exit__(self, *exc: object) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing releases the lock; the file stays (removing it would race)
            self._fd = None


def make_run_dir(cfg: RunConfig) -> Path:
    """A fresh, uniquely named run directory under ``cfg.out_dir``."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    data = "".join(c if c.isalnum() or c in "-_." else "-" for c in cfg.data.dataset.split(":")[-1].rstrip("/")).strip("-.")
    base = cfg.name or f"{data or 'data'}-{cfg.model.name}-s{cfg.train.seed}"
    root = Path(cfg.out_dir)
    try:
        root.mkdir(parents=True, exist_ok=True)
        for i in range(1000):
            d = root / f"{stamp}-{base}" if i == 0 else root / f"{stamp}-{base}-{i}"
            try:
                d.mkdir()
                return d
            except FileExistsError:
                continue
    except OSError as exc:
        raise OutputError(f"out_dir={str(root)!r}: cannot create a run directory there ({exc.strerror or exc})") from exc
    raise RunDirError(f"could not create a new run directory under {root}")


def check_run_dir(run_dir: str | Path) -> Path:
    """Raise RunDirError unless ``run_dir`` is an openmia run directory."""
    rd = Path(run_dir)
    if not rd.is_dir():
        raise RunDirError(f"{rd} is not a directory; expected a run directory created by `openmia train`")
    if not (rd / "config.yaml").is_file():
        raise RunDirError(f"{rd} is not an openmia run directory: config.yaml is missing")
    return rd


def _write_start_files(loop: Loop, rd: Path) -> None:
    fileio.write_text(rd / "config.yaml", dump_yaml(loop.cfg))
    record = getattr(loop.splits["train"], "split_record", None)
    if callable(record):  # data sets whose splits openmia made: the case ids, so the run can be reproduced
        fileio.write_json(rd / "splits.json", record())


def train(cfg: RunConfig, *, run_dir: str | Path | None = None, progress: bool = True,
          stop_after_epoch: int | None = None, on_complete: tuple[Hook, ...] = ()) -> TrainResult | None:
    """Train according to ``cfg`` in a new run directory; returns the result (None if stopped early).

    Data, task and model are set up first: a run that fails its checks leaves no directory."""
    loop = Loop(cfg, progress=progress, on_complete=on_complete).setup()
    if not loop.writer:  # a rank > 0 of distributed training: trains, writes no directory (rank 0 does)
        loop.start(None)
        return loop.fit(stop_after_epoch=stop_after_epoch)
    if run_dir is not None:
        rd = Path(run_dir)
        if rd.exists() and any(rd.iterdir()):
            raise RunDirError(f"{rd} exists and is not empty; choose a new directory (or resume it with --resume)")
        try:
            rd.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise OutputError(f"{rd}: cannot create the run directory ({exc.strerror or exc})") from exc
    else:
        rd = make_run_dir(cfg)
    with RunLock(rd):
        _write_start_files(loop, rd)
        loop.start(rd)
        return loop.fit(stop_after_epoch=stop_after_epoch)


def resume(run_dir: str | Path, *, progress: bool = True, stop_after_epoch: int | None = None,
           on_complete: tuple[Hook, ...] = ()) -> TrainResult | None:
    """Continue a run from ``checkpoints/last.pt`` with its saved config."""
    rd = check_run_dir(run_dir)
    from openmia.engine.distributed import is_writer

    # ranks > 0 of distributed training read the same checkpoint but hold no lock (rank 0 does)
    with RunLock(rd) if is_writer() else contextlib.nullcontext():
        if (rd / "result.json").exists():
            raise RunDirError(f"{rd} is already complete (result.json exists); nothing to resume")
        cfg = load_run_config(rd / "config.yaml")
        has_checkpoint = (rd / "checkpoints" / "last.pt").is_file()
        loop = Loop(cfg, progress=progress, on_complete=on_complete).setup(resuming=has_checkpoint)
        loop.start(rd)
        if not has_checkpoint:
            # killed before the first epoch finished: start over in the same directory
            log.warning("%s has no checkpoint yet; starting the run from the beginning", rd)
            return loop.fit(stop_after_epoch=stop_after_epoch)
        return loop.fit(resume=True, stop_after_epoch=stop_after_epoch)


def reevaluate_keys(cfg: RunConfig) -> tuple[str, ...]:
    """The keys a re-evaluation may change: ``eval.*``, ``train.device`` and the task's inference options."""
    from openmia.config import task_class

    return ("eval.", "train.device", *(f"{cfg.task}.{k}" for k in task_class(cfg.task).eval_options))


def reevaluate(run_dir: str | Path, out_dir: str | Path, overrides: list[str] | tuple[str, ...] = (), *,
               on_complete: tuple[Hook, ...] = ()) -> TrainResult:
    """Score a finished run's kept model again with other evaluation settings (e.g. flip TTA or
    post-processing, or on another device), in a new run directory ``out_dir``: the trained
    weights, training history and budget are the source run's; only the final val/test
    predictions and reports are new. Overrides that would change the training are refused."""
    src = check_run_dir(run_dir)
    if not (src / "result.json").is_file():
        raise RunDirError(f"{src} is not complete (no result.json); finish it with `openmia train --resume {src}` first")
    base = load_run_config(src / "config.yaml")
    allowed = reevaluate_keys(base)
    bad = [o for o in overrides if not o.split("=", 1)[0].strip().startswith(allowed)]
    if bad:
        raise ConfigError(f"reevaluate takes {', '.join(a + ('*' if a.endswith('.') else '') for a in allowed)} "
                          f"overrides only, found {bad}; other keys change the training")
    dst = Path(out_dir)
    if dst.exists():
        raise RunDirError(f"{dst} already exists; choose a new directory for the re-evaluated run")
    cfg = load_run_config(src / "config.yaml", list(overrides))
    loop = Loop(cfg, progress=False, on_complete=on_complete).setup(resuming=True, scoring=True)
    tmp = dst.with_name(dst.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        (tmp / "checkpoints").mkdir(parents=True)
    except OSError as exc:
        raise OutputError(f"{dst}: cannot create the re-evaluated run's directory ({exc.strerror or exc})") from exc
    for name in ("last.pt", "best.pt"):
        if (src / "checkpoints" / name).is_file():
            shutil.copy2(src / "checkpoints" / name, tmp / "checkpoints" / name)
    for name in ("metrics.jsonl", "init_from.json", "splits.json"):  # history and provenance stay the source's
        if (src / name).is_file():
            shutil.copy2(src / name, tmp / name)
    fileio.write_text(tmp / "config.yaml", dump_yaml(cfg))
    tmp.rename(dst)  # the new run directory appears whole; result.json marks it complete
    with RunLock(dst):
        loop.start(dst)
        loop.load_last()
        return loop.finish()
