"""Issue 21 fault 8: a corrupt ``runs.sqlite`` is a clear error that suggests ``openmia runs
rebuild``, and the rebuild re-indexes the run directories."""

from __future__ import annotations

import json
import os

import pytest

from openmia.bench.store import RunStore
from openmia.cli.main import main
from openmia.data.paths import openmia_home
from openmia.errors import RunIndexError


def _fake_run(root, name, auc=0.9):
    rd = root / name
    rd.mkdir(parents=True)
    (rd / "config.yaml").write_text("task: classification\ndata: {dataset: synthetic/binary}\nmodel: {name: mlp}\ntrain: {seed: 1}\n")
    (rd / "result.json").write_text(json.dumps({"epochs_done": 2, "train_seconds": 1.5, "best_val": 0.8,
                                               "test": {"auc": {"value": auc}, "acc": {"value": 0.7}}}))
    return rd


def _corrupt(path):
    raw = bytearray(path.read_bytes())
    raw[:100] = os.urandom(100)  # the header page: "file is not a database"
    path.write_bytes(bytes(raw))
    for suffix in ("-wal", "-shm"):
        path.with_name(path.name + suffix).unlink(missing_ok=True)


def test_corrupt_index_is_a_clear_error(tmp_path):
    store = RunStore(tmp_path / "runs.sqlite")
    store.record(_fake_run(tmp_path / "runs", "a"))
    _corrupt(store.path)
    with pytest.raises(RunIndexError, match=r"runs\.sqlite.*corrupt.*openmia runs rebuild"):
        RunStore(tmp_path / "runs.sqlite").list()
    (tmp_path / "garbage.sqlite").write_bytes(b"not a database at all" * 400)
    with pytest.raises(RunIndexError, match="openmia runs rebuild"):
        RunStore(tmp_path / "garbage.sqlite").record(_fake_run(tmp_path / "runs", "b"))


def test_cli_runs_list_on_a_corrupt_index_is_one_line(tmp_path, capsys):
    store = RunStore.default()
    store.record(_fake_run(tmp_path / "runs", "a"))
    _corrupt(store.path)
    assert main(["runs", "list"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "openmia runs rebuild" in err and str(openmia_home()) in err


def test_rebuild_reindexes_run_directories(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    a, b = _fake_run(tmp_path / "runs", "a", 0.9), _fake_run(tmp_path / "runs", "b", 0.8)
    c = _fake_run(tmp_path / "elsewhere" / "deep", "c", 0.7)
    _fake_run(tmp_path / "runs" / "a" / "nested", "inner")  # inside a run: not a separate run
    (tmp_path / "runs" / "stub").mkdir()  # no result.json: not a complete run
    broken = _fake_run(tmp_path / "runs", "broken")
    (broken / "config.yaml").write_text("{not: [valid")
    store = RunStore.default()
    store.record(c)
    _corrupt(store.path)
    # the default roots are ./runs and (when the index is readable) the folders of known runs
    assert main(["runs", "rebuild"]) == 0
    out = capsys.readouterr().out
    assert "indexed 2 run(s)" in out and "broken" in out and "skipped 1" in out
    assert sorted(r["run_dir"] for r in store.list()) == [str(a.resolve()), str(b.resolve())]
    assert list(store.path.parent.glob("runs.sqlite.corrupt*"))  # the damaged file is kept aside, not deleted
    assert main(["runs", "rebuild", str(tmp_path / "elsewhere")]) == 0
    assert len(store.list()) == 3
    # a run deleted from disk disappears from the index on the next rebuild
    import shutil

    shutil.rmtree(b)
    indexed, skipped = store.rebuild()
    assert sorted(r["run_dir"] for r in store.list()) == sorted(str(p.resolve()) for p in (a, c))
    assert indexed == 2 and len(skipped) == 1


def test_rebuild_keeps_recording_order_by_result_time(tmp_path):
    store = RunStore(tmp_path / "runs.sqlite")
    old, new = _fake_run(tmp_path / "runs", "z-old"), _fake_run(tmp_path / "runs", "a-new")
    os.utime(old / "result.json", (1_000_000_000, 1_000_000_000))
    store.rebuild([tmp_path / "runs"])
    assert [r["run_dir"] for r in store.list()] == [str(old.resolve()), str(new.resolve())]
