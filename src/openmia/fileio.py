"""Atomic file writing: a reader never sees a half-written result, checkpoint or cache file.

* Every file goes through a hidden temporary beside it (``.NAME.XXXXXXXX.tmp``) renamed into
  place; its permission bits follow the process umask (``0o666 & ~umask``), as ``open()`` would.
* A *set* of result files (``per_case.csv`` + ``summary.json`` + ``report.html``) is written into a
  hidden temporary folder that replaces the output folder in one step (:func:`atomic_dir`).
* Temporaries left by a killed process are removed by :func:`clean_stale_temporaries`, which
  :func:`prepare_output_dir` calls before a command writes into a folder.
* Operating-system failures on outputs become :class:`~openmia.errors.OutputError` naming the path.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import re
import shutil
import tempfile
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterable, Iterator

from openmia.errors import OpenmiaError, OutputConflictError, OutputError

log = logging.getLogger(__name__)

# ".<name>.<8 characters of tempfile's alphabet>.tmp": openmia's own temporaries and nothing else
TEMP_PATTERN = re.compile(r"^\..+\.[a-z0-9_]{8}\.tmp$")
STALE_AFTER_S = 900.0  # a temporary untouched this long belongs to a dead writer
_UMASK_LOCK = threading.Lock()


def current_umask() -> int:
    """The process umask, read without changing it (``/proc/self/status``; elsewhere a brief
    swap under a lock, to a restrictive mask so that nothing created meanwhile is too open)."""
    try:
        with open("/proc/self/status", encoding="ascii", errors="replace") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    with _UMASK_LOCK:
        mask = os.umask(0o077)
        os.umask(mask)
    return mask


def _file_ancestor(path: Path) -> Path | None:
    """The nearest existing ancestor of ``path`` (or ``path`` itself) when it is not a folder."""
    for p in (path, *path.parents):
        if os.path.exists(p):
            return None if p.is_dir() else p
    return None


def output_error(path: str | Path, exc: OSError, action: str = "write") -> OutputError:
    """A one-line :class:`OutputError` for an ``OSError`` raised while writing ``path``."""
    path = Path(path)
    blocker = _file_ancestor(path.parent)
    if blocker is not None:
        reason = f"{blocker} is a file, not a folder"
    elif isinstance(exc, IsADirectoryError) or (path.is_dir() and exc.errno in (errno.EISDIR, errno.EEXIST)):
        reason = f"{path} is an existing folder"
    else:
        reason = exc.strerror or str(exc)
    hint = "; choose another output path or fix its permissions" if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS) else ""
    err = OutputError(f"cannot {action} {path} ({reason}){hint}")
    err.errno = exc.errno
    return err


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path in the target's directory; rename it onto ``path`` on success.

    On an exception the temporary file is removed and ``path`` is left untouched; an ``OSError``
    becomes an :class:`OutputError` naming ``path``.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        os.close(fd)
        os.chmod(tmp, 0o666 & ~current_umask())  # mkstemp makes 0600; a written file follows the umask
    except OSError as exc:
        raise output_error(path, exc) from exc
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    except BaseException as exc:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(exc, OSError) and not isinstance(exc, OpenmiaError):
            raise output_error(path, exc) from exc
        raise


def _link_or_copy(src: str, dst: str) -> None:
    try:
        os.link(src, dst)
    except OSError:  # no hard links on this file system
        shutil.copy2(src, dst)


def _carry(src: Path, dst: Path) -> None:
    """Put ``src`` (file, folder or link) at ``dst`` without touching ``src`` (hard links where possible)."""
    if src.is_symlink():
        os.symlink(os.readlink(src), dst)
    elif src.is_dir():
        shutil.copytree(src, dst, symlinks=True, copy_function=_link_or_copy)
    else:
        _link_or_copy(str(src), str(dst))


def _publish(tmp: Path, path: Path) -> None:
    """Make the folder ``tmp`` appear as ``path``; entries of an existing ``path`` that ``tmp``
    does not replace are carried over, and the old folder stays whole until the swap."""
    try:
        os.rename(tmp, path)  # path absent or an empty folder: one atomic step
        return
    except OSError as exc:
        if exc.errno not in (errno.ENOTEMPTY, errno.EEXIST):
            raise
    try:
        cwd = Path(os.getcwd())
    except OSError:
        cwd = None
    if cwd is not None and (cwd == path or path in cwd.parents):
        # swapping the folder a process works in would leave it in a deleted folder: move file by file
        for entry in tmp.iterdir():
            if entry.is_dir() and (path / entry.name).is_dir() and not (path / entry.name).is_symlink():
                shutil.rmtree(path / entry.name)
            os.replace(entry, path / entry.name)
        tmp.rmdir()
        return
    for entry in path.iterdir():
        if not TEMP_PATTERN.match(entry.name) and not os.path.lexists(tmp / entry.name):
            _carry(entry, tmp / entry.name)
    old = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    os.rename(path, old)  # onto the empty folder just made: replaces it
    try:
        os.rename(tmp, path)
    except OSError:
        os.rename(old, path)
        raise
    shutil.rmtree(old, ignore_errors=True)


@contextmanager
def atomic_dir(path: str | Path) -> Iterator[Path]:
    """Yield a hidden temporary folder beside ``path``; on success it becomes ``path`` as a whole.

    A reader sees the previous set of files or the new one, never a mix or a partial set; a kill
    leaves at most a hidden ``.NAME.XXXXXXXX.tmp`` folder that :func:`clean_stale_temporaries`
    removes later. Files already in ``path`` that the new set does not contain are kept.
    """
    path = Path(os.path.realpath(path))  # a link: replace the folder it points to; ".": a named folder
    if os.path.lexists(path) and not path.is_dir():
        raise OutputError(f"cannot write results into {path}: it is an existing file; expected a folder")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
        os.chmod(tmp, 0o777 & ~current_umask())
    except OSError as exc:
        raise output_error(path, exc, "create") from exc
    try:
        yield tmp
        _publish(tmp, path)
    except BaseException as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        if isinstance(exc, OSError) and not isinstance(exc, OpenmiaError):
            raise output_error(path, exc) from exc
        raise


def clean_stale_temporaries(folder: str | Path, older_than_s: float = STALE_AFTER_S, *, name: str | None = None) -> list[Path]:
    """Remove openmia's own temporaries (``.NAME.XXXXXXXX.tmp`` files and folders) in ``folder``
    that were last modified more than ``older_than_s`` seconds ago; with ``name`` only those of
    that file or folder. Returns what was removed; nothing else is ever touched, and a failure to
    remove is logged, not raised (cleaning is a courtesy, not a precondition)."""
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return []
    now, removed = time.time(), []
    for e in entries:
        if not TEMP_PATTERN.match(e.name) or (name is not None and not e.name.startswith(f".{name}.")):
            continue
        try:
            if now - e.stat(follow_symlinks=False).st_mtime < older_than_s:
                continue
            if e.is_dir(follow_symlinks=False):
                shutil.rmtree(e.path)
            else:
                os.unlink(e.path)
            removed.append(Path(e.path))
        except OSError as exc:
            log.debug("could not remove the stale temporary %s: %s", e.path, exc)
    if removed:
        log.info("removed %d stale temporary file(s) in %s left by an interrupted run", len(removed), folder)
    return removed


def _probe(folder: Path, out: Path) -> None:
    """Raise OutputError unless a file can be created in ``folder``."""
    try:
        fd, tmp = tempfile.mkstemp(prefix=".openmia-probe.", suffix=".tmp", dir=folder)
        os.close(fd)
        os.unlink(tmp)
    except OSError as exc:
        raise OutputError(f"output folder {out}: {folder} is not writable ({exc.strerror or exc})") from exc


def prepare_output_dir(out: str | Path, *, inputs: Iterable[str | Path | None] = (), overwrite: bool = False,
                       create: bool = False, atomic: bool = True, older_than_s: float = STALE_AFTER_S) -> Path:
    """Check an output folder before a command spends time computing what goes into it.

    Refuses (``OutputConflictError``) a folder that is, contains or lies inside one of ``inputs``
    (``None`` entries are skipped), and a non-empty folder unless ``overwrite``; raises
    ``OutputError`` when ``out`` is a file, lies below a file, or cannot be written (with ``atomic``,
    its parent must be writable too: :func:`atomic_dir` renames a temporary folder into place).
    Stale temporaries in and beside the folder are cleaned first. Creates the folder only with
    ``create``; returns ``Path(out)``.
    """
    out = Path(out)
    real = Path(os.path.realpath(out))
    for inp in inputs:
        if inp is None:
            continue
        ri = Path(os.path.realpath(inp))
        if ri == real:
            raise OutputConflictError(f"output folder {out} is the input {inp}; choose another output folder "
                                      "(writing there would replace the inputs)")
        if ri in real.parents:
            raise OutputConflictError(f"output folder {out} lies inside the input {inp}; choose a folder outside the inputs")
        if real in ri.parents:
            raise OutputConflictError(f"output folder {out} contains the input {inp}; choose a folder that holds no inputs")
    if os.path.lexists(out):
        if not out.exists():
            raise OutputError(f"output folder {out} is a link to the missing {os.readlink(out)}")
        if not out.is_dir():
            raise OutputError(f"output folder {out} is an existing file; expected a folder (choose another path)")
        clean_stale_temporaries(out, older_than_s)
        clean_stale_temporaries(real.parent, older_than_s, name=real.name)
        entries = sorted(os.listdir(out))
        if entries and not overwrite:
            shown = ", ".join(entries[:5]) + (f" and {len(entries) - 5} more" if len(entries) > 5 else "")
            raise OutputConflictError(f"output folder {out} already holds {len(entries)} file(s) ({shown}); "
                                      "pass --overwrite to replace earlier results, or choose an empty folder")
        _probe(out, out)
        if atomic:
            _probe(real.parent, out)
        return out
    blocker = _file_ancestor(out.absolute())
    if blocker is not None:
        raise OutputError(f"output folder {out}: {blocker} is a file, not a folder")
    anc = next(p for p in out.absolute().parents if p.exists())
    _probe(anc, out)
    if create:
        try:
            out.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise output_error(out, exc, "create") from exc
    return out


def write_text(path: str | Path, text: str) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_text(text)
    return Path(path)


def write_json(path: str | Path, obj: Any) -> Path:
    return write_text(path, json.dumps(obj, indent=2, sort_keys=False, default=_json_default) + "\n")


def write_csv(path: str | Path, rows: Any) -> Path:
    """Rows (lists of cells) as a CSV file with ``\\n`` line ends."""
    import csv
    import io

    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows(rows)
    return write_text(path, buf.getvalue())


def save_png(path: str | Path, image: Any) -> Path:
    """A PIL image (or uint8 array) as PNG, atomically."""
    from PIL import Image

    im = image if isinstance(image, Image.Image) else Image.fromarray(image)
    with atomic_path(path) as tmp:
        im.save(tmp, format="PNG")
    return Path(path)


def torch_save(obj: Any, path: str | Path) -> Path:
    """``torch.save`` through a temp file + rename (checkpoints survive a kill mid-write)."""
    import torch

    with atomic_path(path) as tmp:
        torch.save(obj, tmp)
    return Path(path)


def save_npy(path: str | Path, array: Any) -> Path:
    """``numpy.save`` through a temp file + rename (the file handle is closed before the rename)."""
    import numpy as np

    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.save(f, array)
    return Path(path)


def save_figure(fig: Any, path: str | Path, **kwargs: Any) -> Path:
    """``fig.savefig`` atomically; the format follows ``path``'s suffix (png, svg, pdf)."""
    path = Path(path)
    fmt = path.suffix.lstrip(".") or "png"
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format=fmt, dpi=kwargs.pop("dpi", 120), bbox_inches="tight", **kwargs)
    return path


def _json_default(o: Any) -> Any:
    import numpy as np

    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")
