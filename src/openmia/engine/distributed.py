"""Data-parallel training over N processes (``openmia train --nproc N``), launched by torchrun.

How a run is split (DESIGN §1: the engine, not the Task, knows about processes):

- **Launch.** :func:`launch` (the parent process) resolves the config, writes it to a temporary
  YAML with ``train.threads`` divided between the ranks, and runs
  ``python -m torch.distributed.run --standalone --nproc-per-node N -m openmia.cli.ddp_worker``
  in its own process group. Every rank runs the ordinary :func:`openmia.api.train` (or ``resume``);
  the :class:`~openmia.engine.loop.Loop` finds the process group through :func:`from_env`.
  A failing rank makes torchrun stop the others (``--max-restarts 0``); collectives time out after
  ``OPENMIA_DDP_TIMEOUT_S`` seconds (default 1800); an interrupted parent kills the whole group.
- **Batches.** Every rank draws the same per-epoch permutation (the loop's generator, seeded by
  ``train.seed`` and the epoch: what ``DistributedSampler(seed=..., shuffle=True)`` + ``set_epoch``
  do) and takes its contiguous part of each *global* batch of ``data.batch_size`` cases
  (:meth:`DistContext.shard`). The union of the ranks' parts is exactly the batch a one-process run
  sees, so N processes follow the one-process optimisation (equal up to float summation order).
- **Gradients.** After ``backward`` the gradients are averaged with one all-reduce of a flat buffer
  (:meth:`DistContext.average_gradients`: DistributedDataParallel's arithmetic, without its
  wrapper, so frozen layers, EMA, checkpoints and ``state_dict`` names stay those of the plain
  module). Each rank's loss is weighted by ``n_rank * N / n_batch`` so that uneven parts of a last
  batch still give the gradient of the global batch mean.
- **Validation, test, writes.** Only rank 0 validates (on the full validation split), selects,
  writes the run directory (config, checkpoints, ``metrics.jsonl``, provenance) and evaluates the
  test split; the other ranks wait for rank 0's epoch record (:meth:`DistContext.broadcast_floats`),
  which also keeps every rank's budget clock on rank 0's value. Resume: every rank loads the same
  ``checkpoints/last.pt``; the weights are then broadcast from rank 0 all the same.
- **Backend.** ``gloo`` on CPU, ``nccl`` on CUDA (rank r uses ``cuda:LOCAL_RANK``).
"""

from __future__ import annotations

import collections
import json
import os
import pickle
import signal
import subprocess
import sys
import tempfile
import threading
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from openmia.errors import ConfigError, OpenmiaError

ENV_FLAG = "OPENMIA_DDP"  # set by launch(): the workers of an openmia run (not any torchrun job)
TIMEOUT_ENV = "OPENMIA_DDP_TIMEOUT_S"
DEFAULT_TIMEOUT_S = 1800.0


class DistributedError(OpenmiaError, RuntimeError):
    """A distributed run failed (a rank raised, died, or the launcher could not start)."""


def timeout_s() -> float:
    """Seconds a collective may wait (rank 0 validating, a dead peer) before it fails."""
    raw = os.environ.get(TIMEOUT_ENV, "")
    try:
        value = float(raw) if raw else DEFAULT_TIMEOUT_S
    except ValueError as exc:
        raise ConfigError(f"{TIMEOUT_ENV}={raw!r}: expected a number of seconds") from exc
    if value <= 0:
        raise ConfigError(f"{TIMEOUT_ENV}={raw!r}: expected a positive number of seconds")
    return value


def in_worker() -> bool:
    """True in a rank of a multi-process openmia run."""
    return os.environ.get(ENV_FLAG) == "1" and int(os.environ.get("WORLD_SIZE", "1")) > 1


def is_writer() -> bool:
    """True where run files may be written: a one-process run, or rank 0 of a distributed one."""
    return not in_worker() or int(os.environ.get("RANK", "0")) == 0


@dataclass
class DistContext:
    """This process's place in the process group (from torchrun's environment)."""

    rank: int
    world: int
    local_rank: int
    backend: str = ""
    device: Any = None
    _dist: Any = field(default=None, repr=False)

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def init(self, device):
        """Join the process group (``nccl`` for a CUDA device, else ``gloo``) and return the
        device this rank computes on (``cuda:LOCAL_RANK`` for CUDA)."""
        import torch
        import torch.distributed as dist

        if device.type == "cuda":
            device = torch.device("cuda", self.local_rank)
            torch.cuda.set_device(device)
            self.backend = "nccl"
        else:
            self.backend = "gloo"
        if not dist.is_initialized():
            dist.init_process_group(self.backend, timeout=timedelta(seconds=timeout_s()))
        self.device, self._dist = device, dist
        return device

    def shard(self, idx: np.ndarray) -> tuple[np.ndarray, float]:
        """This rank's contiguous part of a global batch ``idx`` (shape ``(B,)``) and the weight
        ``n_rank * world / B`` of its mean loss (1 for equal parts)."""
        part = np.array_split(idx, self.world)[self.rank]
        return part, len(part) * self.world / max(len(idx), 1)

    def min_part(self, n: int) -> int:
        """The smallest rank part of a global batch of ``n`` cases."""
        return n // self.world

    def average_gradients(self, model) -> None:
        """Average the gradients of ``model`` over the ranks (one all-reduce of a flat buffer)."""
        from torch._utils import _flatten_dense_tensors, _unflatten_dense_tensors

        grads = [p.grad for p in model.parameters() if p.grad is not None]
        if not grads:
            return
        flat = _flatten_dense_tensors(grads)
        self._dist.all_reduce(flat)
        flat /= self.world
        for g, avg in zip(grads, _unflatten_dense_tensors(flat, grads)):
            g.copy_(avg)

    def broadcast_module(self, model) -> None:
        """Copy rank 0's parameters and buffers to every rank."""
        for t in [*model.parameters(), *model.buffers()]:
            self._dist.broadcast(t.data, src=0)

    def _tensor(self, values: Sequence[float]):
        import torch

        return torch.tensor(list(values), dtype=torch.float64, device=self.device)

    def sum_floats(self, values: Sequence[float]) -> list[float]:
        """Element-wise sum of ``values`` over the ranks."""
        t = self._tensor(values)
        self._dist.all_reduce(t)
        return t.tolist()

    def broadcast_floats(self, values: Sequence[float]) -> list[float]:
        """Rank 0's ``values`` on every rank (the other ranks wait here while rank 0 validates)."""
        t = self._tensor(values)
        self._dist.broadcast(t, src=0)
        return t.tolist()

    def any_true(self, flag: bool) -> bool:
        """True on every rank when ``flag`` is true on any (e.g. the budget ran out mid-epoch)."""
        return self.sum_floats([float(flag)])[0] > 0

    def describe(self) -> dict[str, Any]:
        """For ``provenance.json``."""
        return {"world_size": self.world, "backend": self.backend,
                "batching": "global batch = data.batch_size, split into contiguous per-rank parts"}


def from_env() -> DistContext | None:
    """The rank's context in a distributed openmia run (not yet joined: :meth:`DistContext.init`),
    or None in a one-process run."""
    if not in_worker():
        return None
    return DistContext(rank=int(os.environ["RANK"]), world=int(os.environ["WORLD_SIZE"]),
                       local_rank=int(os.environ.get("LOCAL_RANK", "0")))


# -- the launcher (parent process)

def check_gpus(device_name: str, nproc: int) -> None:
    """With a CUDA device each rank computes on its own GPU (rank r on ``cuda:r``): ``nproc`` ranks
    need that many visible GPUs, else ConfigError before any process starts (ranks sharing or
    missing a GPU would fail later, inside NCCL)."""
    import torch

    from openmia.engine.device import resolve_device

    if resolve_device(device_name).type != "cuda":
        return
    have = torch.cuda.device_count()
    if nproc > have:
        raise ConfigError(f"--nproc {nproc} with train.device={device_name!r}: each rank needs its own GPU (rank r uses "
                          f"cuda:r) and {have} {'is' if have == 1 else 'are'} visible; use --nproc {have} or train.device=cpu")


def threads_per_rank(threads: int | None, nproc: int) -> int:
    """``train.threads`` (None = the free CPUs) divided between ``nproc`` ranks, at least 1 each."""
    if threads is None:
        from openmia.engine.device import default_threads

        threads = default_threads()
    return max(1, int(threads) // nproc)


def check_nproc(nproc: Any) -> int:
    """``nproc`` as a positive int, else ConfigError."""
    if isinstance(nproc, bool) or not isinstance(nproc, (int, np.integer)) or nproc < 1:
        raise ConfigError(f"nproc must be a positive integer (processes for distributed training), found {nproc!r}")
    return int(nproc)


def _pump(stream, sink, tail: collections.deque) -> None:
    """Copy the workers' output to ``sink`` line by line, keeping the last lines for the error."""
    for line in iter(stream.readline, ""):
        sink.write(line)
        sink.flush()
        tail.append(line.rstrip("\n"))
    stream.close()


def launch(cfg=None, *, nproc: int, run_dir: str | Path | None = None, resume: str | Path | None = None,
           progress: bool = True, index: bool = True):
    """Train (``cfg``, a :class:`~openmia.config.RunConfig`) or resume (``resume``, a run
    directory) with ``nproc`` processes; returns rank 0's :class:`~openmia.engine.loop.TrainResult`.

    Raises:
        DistributedError: a rank failed (the message names it and its error; an ``OpenmiaError`` of
            a rank is raised again as its own class) or torchrun could not start.
    """
    from openmia.config import dump_yaml

    nproc = check_nproc(nproc)
    timeout = timeout_s()  # a bad value fails here, before any process starts
    with tempfile.TemporaryDirectory(prefix="openmia-ddp-") as tmp:
        tmpd = Path(tmp)
        args = ["--result", str(tmpd / "result.pkl"), "--errors", str(tmpd)]
        if resume is not None:
            from openmia.config import load_run_config

            args += ["--resume", str(resume)]
            # the saved config holds the per-rank count already (a resumed run keeps its threads);
            # api.resume checked that ``resume`` is a run directory
            saved_cfg = load_run_config(Path(resume) / "config.yaml")
            check_gpus(saved_cfg.train.device, nproc)
            saved = saved_cfg.train.threads
            threads = saved if saved is not None else threads_per_rank(None, nproc)
        else:
            from dataclasses import replace

            check_gpus(cfg.train.device, nproc)
            threads = threads_per_rank(cfg.train.threads, nproc)
            cfg = replace(cfg, train=replace(cfg.train, threads=threads))
            (tmpd / "config.yaml").write_text(dump_yaml(cfg))
            args += ["--config", str(tmpd / "config.yaml")]
            if run_dir is not None:
                args += ["--run-dir", str(run_dir)]
        if progress:
            args.append("--progress")
        if not index:
            args.append("--no-index")
        env = {**os.environ, ENV_FLAG: "1", TIMEOUT_ENV: str(timeout)}
        env["OMP_NUM_THREADS"] = str(threads)
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={nproc}",
               "--max-restarts=0", "-m", "openmia.cli.ddp_worker", *args]
        tail: collections.deque = collections.deque(maxlen=30)
        try:
            proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                    start_new_session=True)  # its own group: killed as a whole below
        except OSError as exc:
            raise DistributedError(f"cannot start torchrun ({' '.join(cmd[:4])}): {exc}") from exc
        pump = threading.Thread(target=_pump, args=(proc.stdout, sys.stderr, tail), daemon=True)
        pump.start()
        try:
            rc = proc.wait()
        except BaseException:  # Ctrl-C or an exception in the parent: no orphaned ranks
            _kill_group(proc)
            raise
        finally:
            pump.join(timeout=10)
        if rc != 0:
            raise _rank_error(tmpd, rc, nproc, list(tail))
        result = tmpd / "result.pkl"
        if not result.is_file():
            raise DistributedError(f"torchrun exited 0 but rank 0 left no result ({result}); the run did not finish")
        with open(result, "rb") as f:
            return pickle.load(f)  # written by our own rank 0 a moment ago


def _kill_group(proc: subprocess.Popen) -> None:
    """SIGTERM torchrun's process group, then SIGKILL after 10 s."""
    for sig, wait in ((signal.SIGTERM, 10), (signal.SIGKILL, 5)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


def _rank_error(tmpd: Path, rc: int, nproc: int, tail: list[str]) -> OpenmiaError:
    """The error of the first failed rank (its own OpenmiaError class where it raised one)."""
    from openmia import errors

    for path in sorted(tmpd.glob("rank*.json")):
        rec = json.loads(path.read_text())
        cls = getattr(errors, rec["type"], None)
        msg = f"distributed training ({nproc} processes), rank {rec['rank']}: {rec['message']}"
        if isinstance(cls, type) and issubclass(cls, OpenmiaError):
            return cls(msg)
        return DistributedError(f"{msg} ({rec['type']})")
    last = "\n".join(tail[-12:])
    return DistributedError(f"distributed training ({nproc} processes) failed: torchrun exited with code {rc} and "
                            f"no rank reported an error (a rank was killed or could not start); last output:\n{last}")
