"""SQLite index of runs (``openmia runs list``). The run directory stays the source of truth;
the store indexes it, and :meth:`RunStore.rebuild` re-creates the index from the run directories
(``openmia runs rebuild``) when it is lost or corrupt. WAL mode + a busy timeout let several
processes record concurrently. Every SQLite failure is a :class:`~openmia.errors.RunIndexError`.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterable, Iterator

from openmia.data.paths import openmia_home
from openmia.errors import OutputError, RunDirError, RunIndexError

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
    """A SQLite file indexing run directories (created with its table on first use)."""

    schema: str = SCHEMA  # subclasses with other tables (bench.suite_store) share the connection machinery
    synchronous: str | None = None  # PRAGMA synchronous per connection; None = SQLite's default (FULL)

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._ready = False

    @classmethod
    def default(cls) -> "RunStore":
        return cls(openmia_home() / "runs.sqlite")

    def _error(self, exc: sqlite3.Error) -> RunIndexError:
        text = str(exc)
        corrupt = (getattr(exc, "sqlite_errorname", "") in ("SQLITE_CORRUPT", "SQLITE_NOTADB")
                   or not isinstance(exc, sqlite3.OperationalError) or "malformed" in text or "not a database" in text)
        if corrupt:
            return RunIndexError(f"run index {self.path} is corrupt ({text}); run `openmia runs rebuild` to re-create it "
                                 "from the run directories (the damaged file is kept beside it as runs.sqlite.corrupt)")
        return RunIndexError(f"run index {self.path} cannot be used ({text}); if another openmia process holds it, retry; "
                             "if this persists, run `openmia runs rebuild`")

    @contextmanager
    def _db(self) -> Iterator[sqlite3.Connection]:
        """A connection in a transaction (committed on success); SQLite errors become RunIndexError."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise OutputError(f"cannot create the folder of the run index {self.path} ({exc.strerror or exc})") from exc
        try:
            con = sqlite3.connect(self.path, timeout=30)
            try:
                con.row_factory = sqlite3.Row
                if self.synchronous:
                    con.execute(f"PRAGMA synchronous={self.synchronous}")
                if not self._ready:
                    con.execute("PRAGMA journal_mode=WAL")
                    con.executescript(self.schema)
                    self._ready = True
                with con:
                    yield con
            finally:
                con.close()
        except sqlite3.Error as exc:
            raise self._error(exc) from exc

    @staticmethod
    def _row(run_dir: str | Path, recorded: str | None = None) -> tuple:
        """The index row of a complete run directory; RunDirError naming the file if it is not one."""
        import yaml

        rd = Path(run_dir).resolve()
        res_path, cfg_path = rd / "result.json", rd / "config.yaml"
        if not res_path.is_file():
            raise RunDirError(f"{rd} is not a complete run: result.json is missing")
        try:
            res = json.loads(res_path.read_text())
            cfg = yaml.safe_load(cfg_path.read_text())
            prov = json.loads((rd / "provenance.json").read_text()) if (rd / "provenance.json").is_file() else {}
            test = res.get("test") or {}
            return (
                str(rd), recorded or time.strftime("%Y-%m-%d %H:%M:%S"), cfg.get("task"), cfg["data"]["dataset"],
                cfg["model"]["name"], cfg["train"]["seed"], prov.get("config_hash"), res.get("epochs_done"),
                res.get("train_seconds"), res.get("best_val"), (test.get("auc") or {}).get("value"),
                (test.get("acc") or {}).get("value"), json.dumps(res),
            )
        except (OSError, ValueError, yaml.YAMLError, KeyError, TypeError, AttributeError) as exc:
            raise RunDirError(f"{rd}: unreadable run files (config.yaml/result.json/provenance.json): "
                              f"{type(exc).__name__}: {exc}") from exc

    def record(self, run_dir: str | Path, *, recorded: str | None = None) -> None:
        """Index a complete run directory (re-recording replaces the row)."""
        row = self._row(run_dir, recorded)
        with self._db() as con:
            con.execute("INSERT OR REPLACE INTO runs VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)", row)

    def list(self, *, dataset: str | None = None, model: str | None = None) -> list[dict[str, Any]]:
        q, args = "SELECT * FROM runs WHERE 1=1", []
        if dataset:
            q += " AND dataset = ?"
            args.append(dataset)
        if model:
            q += " AND model = ?"
            args.append(model)
        with self._db() as con:
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

    def default_roots(self) -> list[Path]:
        """Where :meth:`rebuild` looks by default: the folders holding the runs already indexed
        (when the index is readable) and ``./runs``."""
        try:
            known = [Path(r["run_dir"]).parent for r in self.list()]
        except RunIndexError:
            known = []
        return list(dict.fromkeys([*known, Path("runs").resolve()]))

    def rebuild(self, roots: Iterable[str | Path] | None = None) -> tuple[int, list[str]]:
        """Re-index the run directories (folders holding ``result.json``) found under ``roots``
        (default :meth:`default_roots`). A corrupt index file is moved aside to
        ``runs.sqlite.corrupt`` and a new one is made; rows whose run directory no longer holds
        ``result.json`` are dropped. Returns ``(runs indexed, messages of skipped folders)``."""
        roots = [Path(r) for r in roots] if roots else self.default_roots()
        try:
            self.list()
        except RunIndexError:
            self._set_aside()
        runs = sorted({rd for root in roots for rd in find_run_dirs(root)})
        rows, skipped = [], []
        for rd in runs:
            try:
                stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime((rd / "result.json").stat().st_mtime))
                rows.append(self._row(rd, stamp))
            except (RunDirError, OSError) as exc:
                skipped.append(str(exc))
        with self._db() as con:
            gone = [r["run_dir"] for r in con.execute("SELECT run_dir FROM runs") if not (Path(r["run_dir"]) / "result.json").is_file()]
            con.executemany("DELETE FROM runs WHERE run_dir = ?", [(g,) for g in gone])
            con.executemany("INSERT OR REPLACE INTO runs VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)", rows)
        return len(rows), skipped

    def _set_aside(self) -> None:
        """Move a corrupt index (and its WAL files) to ``<name>.corrupt`` so a fresh one can be made."""
        try:
            os.replace(self.path, self.path.with_name(self.path.name + ".corrupt"))
            for suffix in ("-wal", "-shm", "-journal"):
                self.path.with_name(self.path.name + suffix).unlink(missing_ok=True)
        except OSError as exc:
            raise RunIndexError(f"run index {self.path} is corrupt and cannot be moved aside ({exc.strerror or exc}); "
                                "delete it by hand and run `openmia runs rebuild` again") from exc
        self._ready = False


def find_run_dirs(root: str | Path) -> Iterator[Path]:
    """Run directories (folders holding ``result.json``) under ``root``, not descending into a
    run directory or hidden folders."""
    root = Path(root)
    if not root.is_dir():
        return
    for dirpath, dirnames, filenames in os.walk(root):
        if "result.json" in filenames:
            dirnames[:] = []
            yield Path(dirpath).resolve()
        else:
            dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
