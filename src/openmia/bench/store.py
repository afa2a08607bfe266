"""SQLite index of runs (``openmia runs list``). The run directory stays the source of truth;
the store indexes it. WAL mode + a busy timeout let several processes record concurrently."""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path
from typing import Any

from openmia.data.paths import openmia_home
from openmia.errors import RunDirError

SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    run_dir      TEXT PRIMARY KEY,
    recorded     TEXT NOT NULL,
    task         TEXT,
    dataset      TEXT,
    model        TEXT,
    seed         INTEGER,
    config_hash  TEXT,
    epochs       INTEGER,
    train_seconds REAL,
    val_select   REAL,
    test_auc     REAL,
    test_acc     REAL,
    result_json  TEXT
);
"""


class RunStore:
    """A SQLite file indexing run directories."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as con:
            con.execute("PRAGMA journal_mode=WAL")
            con.executescript(SCHEMA)

    @classmethod
    def default(cls) -> "RunStore":
        return cls(openmia_home() / "runs.sqlite")

    def _connect(self) -> sqlite3.Connection:
        con = sqlite3.connect(self.path, timeout=30)
        con.row_factory = sqlite3.Row
        return con

    def record(self, run_dir: str | Path) -> None:
        """Index a complete run directory (re-recording replaces the row)."""
        import yaml

        rd = Path(run_dir).resolve()
        res_path = rd / "result.json"
        if not res_path.is_file():
            raise RunDirError(f"{rd} is not a complete run: result.json is missing")
        res = json.loads(res_path.read_text())
        cfg = yaml.safe_load((rd / "config.yaml").read_text())
        prov = json.loads((rd / "provenance.json").read_text()) if (rd / "provenance.json").is_file() else {}
        test = res.get("test", {})
        row = (
            str(rd), time.strftime("%Y-%m-%d %H:%M:%S"), cfg.get("task"), cfg["data"]["dataset"], cfg["model"]["name"],
            cfg["train"]["seed"], prov.get("config_hash"), res.get("epochs_done"), res.get("train_seconds"),
            res.get("best_val"), (test.get("auc") or {}).get("value"), (test.get("acc") or {}).get("value"),
            json.dumps(res),
        )
        with self._connect() as con:
            con.execute("INSERT OR REPLACE INTO runs VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)", row)

    def list(self, *, dataset: str | None = None, model: str | None = None) -> list[dict[str, Any]]:
        q, args = "SELECT * FROM runs WHERE 1=1", []
        if dataset:
            q += " AND dataset = ?"
            args.append(dataset)
        if model:
            q += " AND model = ?"
            args.append(model)
        with self._connect() as con:
            return [dict(r) for r in con.execute(q + " ORDER BY recorded, run_dir", args)]

    def get(self, key: str) -> dict[str, Any]:
        """A run by its directory, its folder name, or a unique prefix of its folder name."""
        full = str(Path(key).resolve())
        rows = [r for r in self.list() if r["run_dir"] == full or Path(r["run_dir"]).name == key]
        if not rows:
            rows = [r for r in self.list() if Path(r["run_dir"]).name.startswith(key)]
        if len(rows) == 1:
            return rows[0]
        if not rows:
            raise RunDirError(f"no recorded run matches {key!r}; see `openmia runs list`")
        raise RunDirError(f"{key!r} matches {len(rows)} runs; give more of the path: " + ", ".join(r["run_dir"] for r in rows[:5]))
