"""The suite results store (openmia.bench.suite_store): WAL SQLite shared by many writer
processes; a writer killed by SIGKILL mid-way loses nothing of the others and leaves its cell
failed/resumable, never done (issue 25, kill test)."""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import signal
import sqlite3
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from openmia.bench.suite_store import SuiteStore

N_WRITERS, VICTIM = 8, 3


@dataclass(frozen=True)
class _Cell:
    id: str
    dataset: str
    model: str
    seed: int
    budget: float | None = None
    task: str = "classification"
    config: dict = field(default_factory=dict)

    @property
    def slot(self) -> str:
        return f"{self.dataset}|{self.model}|{self.seed}|"


def _writer(path: str, w: int, hold: float, n_rows: int) -> None:
    """Register ``n_rows`` cells, then run each: running -> done with metrics that encode (w, j)."""
    store = SuiteStore(path)
    cells = [_Cell(f"w{w}-{j:04d}", f"d{w}", "m", j, config={"w": w, "j": j}) for j in range(n_rows)]
    store.register("kill", cells, {c.id: Path(f"/runs/{c.id}") for c in cells}, {c.id: Path(f"/logs/{c.id}") for c in cells})
    for j, c in enumerate(cells):
        store.mark_running(c.id)
        if hold:
            time.sleep(hold)  # the victim spends its time "training", so the kill lands in a running cell
        store.mark_done(c.id, {"test": {"auc": {"value": w + j / 1000, "ci_low": w, "ci_high": w + 1}}}, wall_seconds=j)


@pytest.mark.parametrize("n_rows", [pytest.param(500, marks=pytest.mark.slow, id="500-rows"), pytest.param(60, id="60-rows")])
def test_eight_writers_one_killed_lose_nothing(tmp_path, n_rows):
    """8 writers x ``n_rows`` (the issue's 500 in the slow run; 60 in the default suite)."""
    N_ROWS, kill_after = n_rows, min(50, n_rows // 3)
    path = tmp_path / "suite.sqlite"
    SuiteStore(path).cells()  # create the file and the table once
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_writer, args=(str(path), w, 0.02 if w == VICTIM else 0.0, N_ROWS)) for w in range(N_WRITERS)]
    for p in procs:
        p.start()
    victim = procs[VICTIM]
    deadline = time.monotonic() + 120
    killed_at = None
    while time.monotonic() < deadline:  # kill the victim after it finished some cells, while one is running
        con = sqlite3.connect(path, timeout=30)
        n_done = con.execute("SELECT count(*) FROM cells WHERE cell_id LIKE ? AND status='done'", (f"w{VICTIM}-%",)).fetchone()[0]
        running = con.execute("SELECT count(*) FROM cells WHERE cell_id LIKE ? AND status='running'", (f"w{VICTIM}-%",)).fetchone()[0]
        con.close()
        if n_done >= kill_after and running:
            os.kill(victim.pid, signal.SIGKILL)
            killed_at = n_done
            break
        time.sleep(0.005)
    assert killed_at is not None, f"the victim writer never reached {kill_after} finished cells"
    for p in procs:
        p.join(180)
    assert victim.exitcode == -signal.SIGKILL
    assert all(p.exitcode == 0 for i, p in enumerate(procs) if i != VICTIM)

    con = sqlite3.connect(path)
    assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    con.close()
    store = SuiteStore(path)
    gone = store.reconcile()
    rows = {r["cell_id"]: r for r in store.cells("kill")}
    # the finished writers: every row there, done, with the metrics they wrote
    for w in (w for w in range(N_WRITERS) if w != VICTIM):
        for j in range(N_ROWS):
            r = rows[f"w{w}-{j:04d}"]
            assert r["status"] == "done"
            assert r["metrics"]["test"]["auc"]["value"] == pytest.approx(w + j / 1000)
            assert json.loads(r["config_json"]) == {"w": w, "j": j}
            assert r["attempts"] == 1
    # the victim: what it committed is done; the cell it was running is failed (resumable), not done
    victim_rows = [rows[f"w{VICTIM}-{j:04d}"] for j in range(N_ROWS)]
    statuses = [r["status"] for r in victim_rows]
    assert gone == [r["cell_id"] for r in victim_rows if r["status"] == "failed"]
    assert statuses.count("failed") == 1 and "running" not in statuses
    k = statuses.index("failed")
    assert statuses[:k] == ["done"] * k and k >= kill_after
    assert statuses[k + 1:] == ["pending"] * (N_ROWS - k - 1)
    failed = victim_rows[k]
    assert "interrupted" in failed["error"] and str(victim.pid) in failed["error"] and failed["metrics"] == {}


def test_reconcile_leaves_live_and_other_host_cells(tmp_path):
    store = SuiteStore(tmp_path / "s.sqlite")
    cells = [_Cell("a", "d", "m", 0), _Cell("b", "d", "m", 1), _Cell("c", "d", "m", 2)]
    store.register("s", cells, {c.id: tmp_path / c.id for c in cells}, {c.id: tmp_path / c.id for c in cells})
    store.mark_running("a")  # this live process
    store.mark_running("b", pid=2**22 + 12345, host="another-host")  # a Ray worker elsewhere: not ours to judge
    store.mark_running("c", pid=2**22 + 12345)  # no such PID here: interrupted
    assert store.reconcile() == ["c"]
    st = {r["cell_id"]: r["status"] for r in store.cells()}
    assert st == {"a": "running", "b": "running", "c": "failed"}
