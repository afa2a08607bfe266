"""Running a suite's cells: plan (reuse / resume / train, with the reason), then execute them on
an executor — ``local`` (a process pool, ``parallel`` cells at once, each with its share of the
CPUs as ``train.threads``) or ``ray`` (one Ray task per cell with ``num_cpus`` = its threads and
``num_gpus`` as asked; a local Ray instance by default, ``address`` for an existing cluster).

Guarantees (both executors): a cell is an ordinary run directory trained by :func:`openmia.engine.run_dir.train`
(or continued by :func:`openmia.engine.run_dir.resume`, as ``api.train``/``api.resume`` do); a failed cell keeps its log (``<out_dir>/logs``) and
is marked ``failed`` without stopping the others; with ``train.deterministic`` the metrics of a
cell do not depend on the executor (same config, same threads -> same bits on the CPU).

Distributed cells: a cell with ``nproc`` > 1 (``--nproc`` or the suite's ``nproc`` keys) trains
with that many data-parallel processes, exactly as ``openmia train --nproc``
(:func:`openmia.engine.distributed.launch`: torchrun, gloo on the CPU, NCCL on CUDA); its
``threads`` are split between the ranks. The local executor's worker launches the ranks; on Ray a
cell reserves ``max(threads, nproc)`` CPUs and ``gpus_per_cell`` GPUs per process. ``nproc`` is
not part of the cell id (see :mod:`openmia.bench.suite`); the run's ``provenance.json`` records
it (``distributed.world_size``) and the cell's log and status row say it.
"""

from __future__ import annotations

import logging
import os
import shutil
import socket
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from openmia.bench.suite import Cell, Suite
from openmia.bench.suite_store import SuiteStore
from openmia.errors import ConfigError

log = logging.getLogger(__name__)

EXECUTORS = ("local", "ray")
RAY_CONNECT_TIMEOUT_S = 10.0


@dataclass
class Step:
    """What :func:`plan` decided for one cell."""

    cell: Cell
    action: str  # reuse | resume | train | running
    reason: str


def _differences(a: Any, b: Any, prefix: str = "") -> list[str]:
    if isinstance(a, dict) and isinstance(b, dict):
        out = []
        for k in sorted(set(a) | set(b)):
            out += _differences(a.get(k), b.get(k), f"{prefix}{k}.")
        return out
    return [] if a == b else [f"{prefix.rstrip('.')}: {a!r} -> {b!r}"]


def plan(suite: Suite, store: SuiteStore) -> list[Step]:
    """Decide, for every cell, whether it is reused (finished), resumed (interrupted or failed
    after it started), trained (new, changed, or its run directory deleted by hand) or left alone
    (running in another live process), with the reason in words."""
    import json

    from openmia.bench.suite import WHERE_KEYS

    store.reconcile()
    rows = {r["cell_id"]: r for r in store.cells(suite.name)}
    by_slot: dict[str, list[dict[str, Any]]] = {}
    for r in rows.values():
        by_slot.setdefault(r["slot"], []).append(r)
    steps = []
    for c in suite.cells:
        row, rd = rows.get(c.id), suite.run_dir(c)
        if (rd / "result.json").is_file():
            steps.append(Step(c, "reuse", "finished earlier"))
        elif row is not None and row["status"] == "running":
            steps.append(Step(c, "running", f"running in process {row['pid']} on {row['host']}"))
        elif (rd / "config.yaml").is_file():
            why = f"failed earlier ({row['error']})" if row is not None and row["status"] == "failed" and row["error"] \
                else "interrupted"
            steps.append(Step(c, "resume", f"{why}; resuming from its last checkpoint"))
        elif row is not None and row["status"] == "done":
            steps.append(Step(c, "train", f"its run directory {rd} was deleted by hand; training it again"))
        elif row is not None and row["status"] == "failed":
            steps.append(Step(c, "train", f"failed earlier ({row['error']}); trying again"))
        else:
            old = [r for r in by_slot.get(c.slot, []) if r["cell_id"] != c.id]
            if old:
                prev = json.loads(old[-1]["config_json"])
                diff = [d for d in _differences(prev, c.config) if d.split(":")[0] not in WHERE_KEYS]
                steps.append(Step(c, "train", f"changed since cell {old[-1]['cell_id']}: {'; '.join(diff) or 'config'}"))
            else:
                steps.append(Step(c, "train", "new"))
    return steps


def headline_from_run(run_dir: Path) -> dict[str, Any]:
    """The test metrics with CIs of a finished run (``result.json``'s ``test``), plus timings."""
    import json

    res = json.loads((Path(run_dir) / "result.json").read_text())
    return {"test": res.get("test") or {}, "train_seconds": res.get("train_seconds"), "epochs_done": res.get("epochs_done"),
            "best_val": res.get("best_val")}


def run_cell(payload: dict[str, Any]) -> dict[str, Any]:
    """Train (or resume) one cell in this process; never raises for a failure of the cell itself:
    the error goes to the cell's log and the store, and the result says ``failed``.

    ``payload``: cell_id, action, run_dir, log_path, store_path, overrides, threads, nproc (optional,
    default 1: > 1 launches that many DDP processes), tracking."""
    from openmia.config import load_config
    from openmia.engine import run_dir as runs  # a cell is an ordinary run, outside the user's run index

    t0 = time.perf_counter()
    # store_path None: the driver records this cell (Ray workers on other nodes may not share a
    # file system on which SQLite's WAL works)
    store = SuiteStore(payload["store_path"]) if payload.get("store_path") else None
    rd, log_path = Path(payload["run_dir"]), Path(payload["log_path"])
    log_path.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(log_path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    old_level = root.level
    # the cell's log gets INFO; the handlers already there (the CLI's, maybe --quiet) keep their level
    others = [(h, h.level) for h in root.handlers]
    for h, level in others:
        h.setLevel(max(level, old_level))
    root.addHandler(handler)
    root.setLevel(min(old_level or logging.INFO, logging.INFO))
    tracker = None
    try:
        if store is not None:
            store.mark_running(payload["cell_id"])
        nproc = int(payload.get("nproc") or 1)
        logging.getLogger(__name__).info("cell %s (%s): %s in %s with %d thread(s) and %d process(es) on %s pid %d",
                                         payload["cell_id"], payload.get("label"), payload["action"], rd,
                                         payload["threads"], nproc, socket.gethostname(), os.getpid())
        if payload["action"] == "resume":
            if nproc > 1:
                from openmia.engine.distributed import launch

                launch(nproc=nproc, resume=rd, progress=False, index=False)
            else:
                runs.resume(rd, progress=False)
        else:
            if rd.exists() and any(rd.iterdir()):  # leftovers of an attempt that never wrote its config: set aside
                shutil.move(str(rd), str(rd.with_name(f"{rd.name}.stale-{int(time.time())}")))
            cfg = load_config(None, [*payload["overrides"], f"train.threads={payload['threads']}"])
            if nproc > 1:  # torchrun ranks, each an ordinary api.train outside the run index (as the cells are)
                from openmia.engine.distributed import launch

                launch(cfg, nproc=nproc, run_dir=rd, progress=False, index=False)
            else:
                runs.train(cfg, run_dir=rd, progress=False)
        metrics = headline_from_run(rd)
        wall = time.perf_counter() - t0
        if store is not None:
            store.mark_done(payload["cell_id"], metrics, wall_seconds=wall)
        if payload.get("tracking"):
            from openmia.bench.tracking import track_run

            tracker = track_run(payload["tracking"], rd, payload)
        return {"cell_id": payload["cell_id"], "status": "done", "wall_seconds": wall, "metrics": metrics,
                "tracking": tracker}
    except Exception as exc:  # a failed cell must not stop the others: record it and go on
        wall = time.perf_counter() - t0
        logging.getLogger(__name__).error("cell %s failed:\n%s", payload["cell_id"], traceback.format_exc())
        msg = f"{type(exc).__name__}: {exc}"
        try:
            if store is not None:
                store.mark_failed(payload["cell_id"], msg, wall_seconds=wall)
        except Exception:  # the store itself failing must not hide the cell's error
            logging.getLogger(__name__).exception("could not record the failure of cell %s", payload["cell_id"])
        return {"cell_id": payload["cell_id"], "status": "failed", "wall_seconds": wall, "error": msg}
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)
        for h, level in others:
            h.setLevel(level)
        handler.close()


def _probe_ray_address(address: str, timeout: float) -> None:
    """Raise ConfigError unless something accepts TCP connections at ``address`` within ``timeout``
    seconds (``ray.init`` itself may wait for minutes on an address that does not answer)."""
    if address in ("auto", "local"):
        return
    hostport = address.split("://", 1)[-1]
    host, _, port = hostport.rpartition(":")
    if not host or not port.isdigit():
        raise ConfigError(f"--address {address!r}: expected HOST:PORT or ray://HOST:PORT (e.g. 10.0.0.5:6379)")
    t0 = time.monotonic()
    try:
        with socket.create_connection((host, int(port)), timeout=timeout):
            return
    except OSError as exc:
        raise ConfigError(f"--address {address!r}: no Ray cluster answered within {timeout:g} s "
                          f"({type(exc).__name__}: {exc}; waited {time.monotonic() - t0:.1f} s); check the address and "
                          "that `ray start --head` runs there, or leave --address out for a local Ray") from exc


def _import_ray():
    try:
        import ray
    except ImportError as exc:
        raise ConfigError("--executor ray needs Ray, which is not installed; install it with "
                          "pip install 'openmia[ray]' (or pip install 'ray[default]'), or use --executor local") from exc
    return ray


def execute(payloads: list[dict[str, Any]], *, executor: str = "local", parallel: int = 1, address: str | None = None,
            gpus_per_cell: float = 0.0, connect_timeout: float = RAY_CONNECT_TIMEOUT_S,
            on_result: Callable[[dict[str, Any]], None] | None = None) -> list[dict[str, Any]]:
    """Run the cells' payloads on ``executor``; results in completion order."""
    results: list[dict[str, Any]] = []

    def done(r: dict[str, Any]) -> None:
        results.append(r)
        if on_result is not None:
            on_result(r)

    if executor not in EXECUTORS:
        raise ConfigError(f"--executor {executor!r}: choose one of {', '.join(EXECUTORS)}")
    if not payloads:
        return results
    if executor == "local":
        if parallel <= 1:
            for p in payloads:
                done(run_cell(p))
            return results
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor, as_completed

        # spawn: a fresh interpreter per worker (torch and fork do not mix); one cell at a time per worker
        with ProcessPoolExecutor(parallel, mp_context=mp.get_context("spawn")) as pool:
            futures = {pool.submit(run_cell, p): p for p in payloads}
            for fut in as_completed(futures):
                p = futures[fut]
                try:
                    done(fut.result())
                except Exception as exc:  # the worker process itself died (e.g. killed for memory)
                    msg = f"worker process died: {type(exc).__name__}: {exc}"
                    SuiteStore(p["store_path"]).mark_failed(p["cell_id"], msg)
                    done({"cell_id": p["cell_id"], "status": "failed", "error": msg})
        return results
    ray = _import_ray()
    if address:
        _probe_ray_address(address, connect_timeout)
    started = not ray.is_initialized()
    if started:
        kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False, "logging_level": logging.WARNING}
        if address:
            kwargs["address"] = address
        else:  # a local instance with as many CPUs as the cells in flight need
            kwargs["num_cpus"] = max(int(parallel) * max(_cell_cpus(p) for p in payloads), 1)
        try:
            ray.init(**kwargs)
        except Exception as exc:
            raise ConfigError(f"Ray could not start{' at ' + address if address else ''}: {type(exc).__name__}: {exc}") from exc
    try:
        remote = ray.remote(run_cell)
        store = SuiteStore(payloads[0]["store_path"])
        refs = {}
        for p in payloads:
            # the driver owns the store: a cell is "running" under the driver's PID from submission,
            # so a killed driver leaves its cells resumable (reconcile), whichever node ran them
            store.mark_running(p["cell_id"])
            task = remote.options(num_cpus=_cell_cpus(p), num_gpus=gpus_per_cell * int(p.get("nproc") or 1), max_retries=0)
            refs[task.remote({**p, "store_path": None})] = p
        pending = list(refs)
        while pending:
            ready, pending = ray.wait(pending, num_returns=1)
            p = refs[ready[0]]
            try:
                r = ray.get(ready[0])
            except Exception as exc:  # the task's worker died
                r = {"cell_id": p["cell_id"], "status": "failed", "error": f"Ray task died: {type(exc).__name__}: {exc}"}
            if r["status"] == "done":
                store.mark_done(p["cell_id"], r["metrics"], wall_seconds=r.get("wall_seconds"))
            else:
                store.mark_failed(p["cell_id"], r["error"], wall_seconds=r.get("wall_seconds"))
            done(r)
    finally:
        if started:
            ray.shutdown()
    return results


def _cell_cpus(payload: dict[str, Any]) -> int:
    """CPUs a cell occupies: its threads, and at least one per training process."""
    return max(int(payload["threads"]), int(payload.get("nproc") or 1))


def cell_threads(executor: str, parallel: int, threads: int | None) -> int:
    """``train.threads`` of each cell: ``threads`` if given, else the usable CPUs split evenly
    between the ``parallel`` cells in flight (at least 1)."""
    if threads is not None:
        if threads < 1:
            raise ConfigError(f"--threads {threads}: expected a positive number of torch threads per cell")
        return threads
    from openmia.engine.device import available_cpus

    return max(1, available_cpus() // max(1, parallel))


def run_suite(suite: Suite, *, executor: str = "local", parallel: int = 1, address: str | None = None,
              threads: int | None = None, gpus_per_cell: float = 0.0, tracking: dict[str, Any] | None = None,
              connect_timeout: float = RAY_CONNECT_TIMEOUT_S,
              echo: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Plan and run a suite; returns ``{"steps", "results", "wall_seconds", "counts"}``."""
    if parallel < 1:
        raise ConfigError(f"--parallel {parallel}: expected at least 1")
    if executor not in EXECUTORS:
        raise ConfigError(f"--executor {executor!r}: choose one of {', '.join(EXECUTORS)}")
    if executor == "ray":
        _import_ray()  # a missing Ray is reported before anything is planned or written
    say = echo or (lambda s: None)
    store = SuiteStore(suite.store_path)
    store.register(suite.name, suite.cells, {c.id: suite.run_dir(c) for c in suite.cells},
                   {c.id: suite.log_path(c) for c in suite.cells})
    steps = plan(suite, store)
    n_threads = cell_threads(executor, parallel, threads)
    payloads = []
    for s in steps:
        say(f"{s.cell.id}  {s.cell.label}: {s.action} ({s.reason})")
        if s.action == "reuse":
            row = store.get(s.cell.id)
            if row is None or row["status"] != "done":  # finished but not (or no longer) recorded: index it
                store.mark_done(s.cell.id, headline_from_run(suite.run_dir(s.cell)))
            continue
        if s.action == "running":
            continue
        if s.action == "train" and (store.get(s.cell.id) or {}).get("status") == "done":
            store.mark_pending(s.cell.id, s.reason)
        payloads.append({"cell_id": s.cell.id, "action": s.action, "label": s.cell.label,
                         "run_dir": str(suite.run_dir(s.cell)), "log_path": str(suite.log_path(s.cell)),
                         "store_path": str(suite.store_path), "overrides": list(s.cell.overrides), "threads": n_threads,
                         "nproc": s.cell.nproc, "tracking": tracking})
    t0 = time.perf_counter()
    total = len(payloads)

    def on_result(r: dict[str, Any]) -> None:
        on_result.n += 1  # type: ignore[attr-defined]
        extra = f" ({r.get('error')})" if r["status"] == "failed" else f" in {r.get('wall_seconds', 0):.1f} s"
        say(f"[{on_result.n}/{total}] {r['cell_id']} {r['status']}{extra}")  # type: ignore[attr-defined]

    on_result.n = 0  # type: ignore[attr-defined]
    if payloads:
        procs = sorted({p["nproc"] for p in payloads})
        dist = "" if procs == [1] else f", {'/'.join(map(str, procs))} training process(es) each"
        say(f"running {total} cell(s) on {executor} ({parallel} at a time, {n_threads} thread(s) each{dist})")
    results = execute(payloads, executor=executor, parallel=parallel, address=address, gpus_per_cell=gpus_per_cell,
                      connect_timeout=connect_timeout, on_result=on_result)
    wall = time.perf_counter() - t0
    counts = status_counts(suite)
    return {"steps": [{"cell_id": s.cell.id, "label": s.cell.label, "action": s.action, "reason": s.reason} for s in steps],
            "results": results, "wall_seconds": wall, "counts": counts, "threads": n_threads, "executor": executor,
            "parallel": parallel}


def _trained_nproc(run_dir: Path) -> int:
    """The processes a finished run trained with (``provenance.json``'s ``distributed.world_size``)."""
    import json

    try:
        prov = json.loads((run_dir / "provenance.json").read_text())
    except (OSError, ValueError):
        return 1
    return int((prov.get("distributed") or {}).get("world_size", 1))


def suite_status(suite: Suite) -> list[dict[str, Any]]:
    """Every cell with its status (the store's, checked against the run directories): ``done``
    only when ``result.json`` exists; a cell whose run directory was deleted is ``pending``.
    ``nproc``: the training processes of a finished cell's run (its provenance), else the planned."""
    store = SuiteStore(suite.store_path)
    if suite.store_path.is_file():
        store.reconcile()
        rows = {r["cell_id"]: r for r in store.cells(suite.name)}
    else:
        rows = {}
    out = []
    for c in suite.cells:
        r = rows.get(c.id) or {}
        rd = suite.run_dir(c)
        status = r.get("status", "pending")
        note = r.get("error") or ""
        if status == "done" and not (rd / "result.json").is_file():
            status, note = "pending", "run directory deleted"
        elif status != "done" and (rd / "result.json").is_file():
            status = "done"
        out.append({"cell_id": c.id, "dataset": c.dataset, "model": c.model, "seed": c.seed, "budget": c.budget,
                    "task": c.task, "nproc": _trained_nproc(rd) if status == "done" else c.nproc, "status": status,
                    "note": note, "run_dir": str(rd), "log": str(suite.log_path(c)),
                    "wall_seconds": r.get("wall_seconds"), "attempts": r.get("attempts", 0), "metrics": r.get("metrics") or {}})
    return out


def status_counts(suite: Suite) -> dict[str, int]:
    from openmia.bench.suite_store import STATUSES

    counts = {s: 0 for s in STATUSES}
    for r in suite_status(suite):
        counts[r["status"]] += 1
    return counts
