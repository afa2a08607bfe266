"""Issue 21 faults 4, 7, 11, 12 (fileio part): output folders that overlap inputs or hold earlier
results are refused, OS errors on outputs are one-line OutputErrors, written files follow the
umask, stale temporaries are cleaned and result sets appear as a whole."""

from __future__ import annotations

import os
import stat
import time
from pathlib import Path

import pytest

from openmia import fileio
from openmia.errors import OpenmiaError, OutputConflictError, OutputError

needs_non_root = pytest.mark.skipif(os.geteuid() == 0, reason="root ignores permission bits")


@pytest.fixture
def umask():
    """Set a umask for one test and restore the previous one."""
    old = os.umask(0o022)
    os.umask(old)

    def set_(mask: int) -> None:
        os.umask(mask)

    yield set_
    os.umask(old)


# ----------------------------------------------------------------------------- fault 11: umask


@pytest.mark.parametrize("mask", [0o022, 0o002, 0o077])
def test_written_files_follow_the_umask(tmp_path, umask, mask):
    umask(mask)
    for p in (fileio.write_text(tmp_path / "a.txt", "x"), fileio.write_json(tmp_path / "b.json", {}),
              fileio.write_csv(tmp_path / "c.csv", [[1]])):
        assert stat.S_IMODE(p.stat().st_mode) == 0o666 & ~mask
    with fileio.atomic_dir(tmp_path / "set") as d:
        fileio.write_text(d / "x.txt", "x")
    assert stat.S_IMODE((tmp_path / "set").stat().st_mode) == 0o777 & ~mask
    assert stat.S_IMODE((tmp_path / "set" / "x.txt").stat().st_mode) == 0o666 & ~mask


def test_current_umask_leaves_the_umask_unchanged(umask):
    umask(0o027)
    assert fileio.current_umask() == 0o027
    assert fileio.current_umask() == 0o027


# ----------------------------------------------------------------------------- fault 4: prepare_output_dir


def test_output_folder_overlapping_an_input_is_refused(tmp_path):
    inp = tmp_path / "imgs"
    inp.mkdir()
    (inp / "a.png").write_bytes(b"x")
    with pytest.raises(OutputConflictError, match=r"output folder .*imgs is the input .*imgs"):
        fileio.prepare_output_dir(inp, inputs=[inp])
    with pytest.raises(OutputConflictError, match=r"output folder .*imgs/out lies inside the input .*imgs"):
        fileio.prepare_output_dir(inp / "out", inputs=[inp], overwrite=True)
    with pytest.raises(OutputConflictError, match=r"output folder .* contains the input .*a.png"):
        fileio.prepare_output_dir(tmp_path, inputs=[None, inp / "a.png"], overwrite=True)
    # symlinked spellings of the same folder are caught too
    (tmp_path / "link").symlink_to(inp)
    with pytest.raises(OutputConflictError, match="is the input"):
        fileio.prepare_output_dir(tmp_path / "link", inputs=[inp], overwrite=True)


def test_non_empty_output_folder_needs_overwrite(tmp_path):
    out = tmp_path / "res"
    assert fileio.prepare_output_dir(out) == out and not out.exists()  # nothing is left behind by a check
    out.mkdir()
    assert fileio.prepare_output_dir(out) == out  # empty: fine
    (out / "summary.json").write_text("{}")
    with pytest.raises(OutputConflictError, match=r"res already holds 1 file\(s\) \(summary.json\).*--overwrite"):
        fileio.prepare_output_dir(out)
    assert fileio.prepare_output_dir(out, overwrite=True) == out
    assert fileio.prepare_output_dir(tmp_path / "new", create=True).is_dir()


def test_output_path_os_errors_are_one_line_output_errors(tmp_path):
    f = tmp_path / "file.txt"
    f.write_text("x")
    with pytest.raises(OutputError, match=r"file.txt is an existing file; expected a folder"):
        fileio.prepare_output_dir(f)
    with pytest.raises(OutputError, match=r"file.txt.* is a file, not a folder"):
        fileio.prepare_output_dir(f / "sub")
    with pytest.raises(OutputError, match=r"cannot write .*file.txt/x.json"):
        fileio.write_json(f / "x.json", {})
    err = pytest.raises(OutputError, fileio.write_text, f / "a" / "b.txt", "x").value
    assert isinstance(err, OSError) and isinstance(err, OpenmiaError) and "\n" not in str(err)


@needs_non_root
def test_read_only_output_folder_is_a_clear_error(tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        with pytest.raises(OutputError, match=r"ro.*not writable"):
            fileio.prepare_output_dir(ro / "out")
        with pytest.raises(OutputError, match=r"cannot write .*ro/x.txt.*ermission denied"):
            fileio.write_text(ro / "x.txt", "x")
    finally:
        ro.chmod(0o755)


def test_read_only_output_folder_simulated(tmp_path, monkeypatch):
    """The same path for root (who ignores permission bits): the OS refuses the temporary file."""
    import tempfile

    def refuse(*a, **k):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(tempfile, "mkstemp", refuse)
    monkeypatch.setattr(tempfile, "mkdtemp", refuse)
    with pytest.raises(OutputError, match=r"cannot write .*x.txt \(Permission denied\)"):
        fileio.write_text(tmp_path / "x.txt", "x")
    with pytest.raises(OutputError, match=r"not writable \(Permission denied\)"):
        fileio.prepare_output_dir(tmp_path / "out")


# ----------------------------------------------------------------------------- fault 12: debris and result sets


def _age(p, seconds):
    t = time.time() - seconds
    os.utime(p, (t, t))


def test_stale_temporaries_are_cleaned_and_nothing_else(tmp_path):
    keep = [tmp_path / n for n in ("per_case.csv", ".hidden", ".x.tmp", ".a.b.toolongname.tmp", "a.abcdefgh.tmp")]
    stale = [tmp_path / ".per_case.csv.ab12cd_9.tmp", tmp_path / ".last.pt.zzzzzzzz.tmp"]
    fresh = tmp_path / ".summary.json.qwertyui.tmp"
    for p in (*keep, *stale, fresh):
        p.write_text("x")
    d = tmp_path / ".eval.k3j4h5g6.tmp"  # a temporary result-set folder
    d.mkdir()
    (d / "per_case.csv").write_text("x")
    for p in (*keep, *stale, d):
        _age(p, 7200)
    removed = fileio.clean_stale_temporaries(tmp_path, older_than_s=3600)
    assert sorted(removed) == sorted([*stale, d])
    assert all(p.exists() for p in (*keep, fresh))
    assert fileio.clean_stale_temporaries(tmp_path / "missing") == []


def test_prepare_output_dir_cleans_stale_temporaries(tmp_path):
    out = tmp_path / "res"
    out.mkdir()
    stale_in, stale_beside = out / ".summary.json.abcdefgh.tmp", tmp_path / ".res.abcdefgh.tmp"
    other_beside = tmp_path / ".other.abcdefgh.tmp"
    for p in (stale_in, stale_beside, other_beside):
        p.write_text("x")
        _age(p, 7200)
    fileio.prepare_output_dir(out)  # stale debris does not count as earlier results
    assert not stale_in.exists() and not stale_beside.exists() and other_beside.exists()


def test_atomic_dir_publishes_a_complete_set_or_nothing(tmp_path):
    out = tmp_path / "eval" / "test"
    with pytest.raises(RuntimeError):
        with fileio.atomic_dir(out) as d:
            fileio.write_text(d / "per_case.csv", "x")
            assert not out.exists()  # readers see nothing while the set is being written
            raise RuntimeError("killed")
    assert not out.exists() and os.listdir(out.parent) == []
    with fileio.atomic_dir(out) as d:
        fileio.write_text(d / "per_case.csv", "1")
        fileio.write_text(d / "summary.json", "1")
    assert sorted(os.listdir(out)) == ["per_case.csv", "summary.json"]
    # re-writing into a folder that holds other outputs keeps them (the trainer's eval/<split>/counting)
    (out / "counting").mkdir()
    fileio.write_text(out / "counting" / "summary.json", "c")
    fileio.write_text(out / ".stale.abcdefgh.tmp", "debris")
    with fileio.atomic_dir(out) as d:
        fileio.write_text(d / "summary.json", "2")
        assert (out / "summary.json").read_text() == "1"  # the old set stays whole until the swap
    assert sorted(os.listdir(out)) == ["counting", "per_case.csv", "summary.json"]
    assert (out / "summary.json").read_text() == "2" and (out / "counting" / "summary.json").read_text() == "c"
    assert [p.name for p in out.parent.iterdir()] == ["test"]  # no temporary folders left beside it


def test_atomic_dir_on_a_file_is_an_output_error(tmp_path):
    f = tmp_path / "out"
    f.write_text("x")
    with pytest.raises(OutputError, match="is an existing file"):
        with fileio.atomic_dir(f) as d:
            fileio.write_text(d / "a.txt", "x")
    assert f.read_text() == "x" and sorted(os.listdir(tmp_path)) == ["out"]


def test_atomic_dir_into_the_working_folder_keeps_it(tmp_path, monkeypatch):
    """``--out .``: the working folder is never swapped away under the process."""
    work = tmp_path / "work"
    work.mkdir()
    (work / "old.txt").write_text("x")
    monkeypatch.chdir(work)
    with fileio.atomic_dir(".") as d:
        fileio.write_text(d / "summary.json", "1")
    assert Path.cwd() == work and sorted(os.listdir(work)) == ["old.txt", "summary.json"]
    assert os.listdir(tmp_path) == ["work"]
