"""The results store of a benchmark suite: one SQLite file (``<out_dir>/suite.sqlite``) with a row
per cell — config id, status (pending / running / done / failed), headline metrics with CIs,
run directory and log paths, timings.

It shares :class:`~openmia.bench.store.RunStore`'s connection machinery (WAL journal, 30 s busy
timeout, SQLite errors as :class:`~openmia.errors.RunIndexError`), so many processes (the local
pool's workers, Ray tasks on one host) can write at once. Every status change is one short
transaction; a writer killed mid-way leaves its committed rows intact and its cell ``running``
with a dead PID, which :meth:`SuiteStore.reconcile` turns into ``failed`` (interrupted,
resumable) — never ``done``. The run directories stay the source of truth: a ``done`` row whose
``result.json`` is gone is run again (``bench.runner.plan``).
"""

from __future__ import annotations

import json
import os
import socket
import time
from pathlib import Path
from typing import Any, Iterable

from openmia.bench.store import RunStore

CELL_SCHEMA = """
CREATE TABLE IF NOT EXISTS cells (
    cell_id      TEXT PRIMARY KEY,
    suite        TEXT NOT NULL,
    slot         TEXT NOT NULL,
    dataset      TEXT,
    model        TEXT,
    seed         INTEGER,
    budget       REAL,
    task         TEXT,
    status       TEXT NOT NULL DEFAULT 'pending',
    run_dir      TEXT,
    log_path     TEXT,
    config_json  TEXT,
    metrics_json TEXT,
    error        TEXT,
    host         TEXT,
    pid          INTEGER,
    attempts     INTEGER NOT NULL DEFAULT 0,
    started      REAL,
    finished     REAL,
    wall_seconds REAL,
    updated      REAL
);
CREATE INDEX IF NOT EXISTS cells_slot ON cells (suite, slot);
"""
STATUSES = ("pending", "running", "done", "failed")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, another user's
        return True
    return True


class SuiteStore(RunStore):
    """The ``cells`` table of a suite (created on first use)."""

    schema = CELL_SCHEMA
    # WAL + NORMAL: a commit survives a killed process (the WAL is written before commit returns);
    # only a power cut may lose the last commits, never corrupt the file (SQLite docs, "WAL mode")
    synchronous = "NORMAL"

    def register(self, suite: str, cells: Iterable[Any], run_dirs: dict[str, Path], logs: dict[str, Path]) -> None:
        """Add a ``pending`` row for every cell not yet in the store (existing rows keep their status)."""
        now = time.time()
        rows = [(c.id, suite, c.slot, c.dataset, c.model, c.seed, c.budget, c.task, str(run_dirs[c.id]), str(logs[c.id]),
                 json.dumps(c.config, sort_keys=True), now) for c in cells]
        with self._db() as con:
            con.executemany("INSERT OR IGNORE INTO cells (cell_id, suite, slot, dataset, model, seed, budget, task, run_dir, "
                            "log_path, config_json, updated) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)", rows)

    def mark_running(self, cell_id: str, *, pid: int | None = None, host: str | None = None) -> None:
        with self._db() as con:
            con.execute("UPDATE cells SET status='running', pid=?, host=?, attempts=attempts+1, started=?, finished=NULL, "
                        "error=NULL, updated=? WHERE cell_id=?",
                        (pid or os.getpid(), host or socket.gethostname(), time.time(), time.time(), cell_id))

    def mark_done(self, cell_id: str, metrics: dict[str, Any], *, wall_seconds: float | None = None) -> None:
        with self._db() as con:
            con.execute("UPDATE cells SET status='done', metrics_json=?, error=NULL, finished=?, wall_seconds=?, updated=? "
                        "WHERE cell_id=?", (json.dumps(metrics, sort_keys=True), time.time(), wall_seconds, time.time(), cell_id))

    def mark_failed(self, cell_id: str, error: str, *, wall_seconds: float | None = None) -> None:
        with self._db() as con:
            con.execute("UPDATE cells SET status='failed', error=?, finished=?, wall_seconds=?, updated=? WHERE cell_id=?",
                        (error, time.time(), wall_seconds, time.time(), cell_id))

    def mark_pending(self, cell_id: str, reason: str | None = None) -> None:
        with self._db() as con:
            con.execute("UPDATE cells SET status='pending', error=?, updated=? WHERE cell_id=?", (reason, time.time(), cell_id))

    def cells(self, suite: str | None = None) -> list[dict[str, Any]]:
        q, args = "SELECT * FROM cells", []
        if suite is not None:
            q, args = q + " WHERE suite = ?", [suite]
        with self._db() as con:
            rows = [dict(r) for r in con.execute(q + " ORDER BY rowid", args)]
        for r in rows:
            r["metrics"] = json.loads(r["metrics_json"]) if r.get("metrics_json") else {}
        return rows

    def get(self, cell_id: str) -> dict[str, Any] | None:  # type: ignore[override]
        with self._db() as con:
            row = con.execute("SELECT * FROM cells WHERE cell_id = ?", (cell_id,)).fetchone()
        if row is None:
            return None
        r = dict(row)
        r["metrics"] = json.loads(r["metrics_json"]) if r.get("metrics_json") else {}
        return r

    def reconcile(self) -> list[str]:
        """Mark ``running`` cells whose process (on this host) is gone as ``failed`` (interrupted,
        resumable); returns their ids. Cells running on other hosts (Ray workers) are left alone."""
        host = socket.gethostname()
        with self._db() as con:
            rows = con.execute("SELECT cell_id, pid, host FROM cells WHERE status='running'").fetchall()
            gone = [r["cell_id"] for r in rows if r["host"] == host and r["pid"] and not _pid_alive(int(r["pid"]))]
            for cid, pid in ((r["cell_id"], r["pid"]) for r in rows if r["cell_id"] in gone):
                con.execute("UPDATE cells SET status='failed', error=?, updated=? WHERE cell_id=? AND status='running'",
                            (f"interrupted: process {pid} on {host} ended without finishing the cell (resumable)",
                             time.time(), cid))
        return gone
