"""Shared fixtures: an isolated OPENMIA_HOME per test, the shared real-data folder, one torch thread.

Isolation of the user's OPENMIA_HOME (issue 21, fault 13): ``pytest_configure`` points
OPENMIA_HOME at a session temporary folder before any fixture runs — module- and session-scoped
fixtures included, which run before the per-test autouse ``_isolated_home`` — and
tests/core/test_isolation.py checks it (one check runs last: no row of this session in the real
run index).
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import tempfile
from pathlib import Path
from types import SimpleNamespace

import pytest

SHARED_DATA = Path(os.environ.get("OPENMIA_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path_factory, monkeypatch):
    """Each test gets its own OPENMIA_HOME so caches and the run index never leak between tests."""
    home = tmp_path_factory.mktemp("openmia_home")
    monkeypatch.setenv("OPENMIA_HOME", str(home))
    monkeypatch.delenv("OPENMIA_DATA_MIRROR", raising=False)
    return home


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``../shared/data`` (real data sets); tests using it skip with a reason when it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real data folder {SHARED_DATA} is absent (set OPENMIA_SHARED_DATA)")
    return SHARED_DATA


def _test_rows(index: Path, session_home: Path) -> set[str]:
    """Rows of a run index that point into pytest's temporary folders (read without touching the file)."""
    if not index.is_file():
        return set()
    try:
        con = sqlite3.connect(f"file:{index}?immutable=1", uri=True)  # immutable: no lock, no -wal/-shm files
        try:
            rows = [r[0] for r in con.execute("SELECT run_dir FROM runs")]
        finally:
            con.close()
    except sqlite3.Error:
        return set()
    return {r for r in rows if f"{os.sep}pytest-of-" in r or r.startswith(str(session_home))}


def pytest_configure(config):
    config.addinivalue_line("markers", "order_last: run this test after all others (isolation checks)")
    real = Path(os.environ.get("OPENMIA_HOME") or Path.home() / ".cache" / "openmia")
    session_home = Path(tempfile.mkdtemp(prefix="openmia-test-home-"))
    config.openmia_isolation = SimpleNamespace(
        real_home=real, session_home=session_home, previous=os.environ.get("OPENMIA_HOME"),
        rows=lambda: _test_rows(real / "runs.sqlite", session_home))
    config.openmia_isolation.rows_at_start = config.openmia_isolation.rows()
    os.environ["OPENMIA_HOME"] = str(session_home)  # before any fixture of any scope runs
    try:
        import torch

        torch.set_num_threads(1)  # tests are tiny; one thread avoids oversubscription on 2 cores
    except ImportError:  # pragma: no cover
        pass


def pytest_unconfigure(config):
    iso = getattr(config, "openmia_isolation", None)
    if iso is None:
        return
    if iso.previous is None:
        os.environ.pop("OPENMIA_HOME", None)
    else:
        os.environ["OPENMIA_HOME"] = iso.previous
    shutil.rmtree(iso.session_home, ignore_errors=True)


def pytest_collection_modifyitems(config, items):
    """Tests marked ``order_last`` run after all others."""
    items.sort(key=lambda item: item.get_closest_marker("order_last") is not None)


def _write_msd(tmp_path, cases, *, modalities=("MRI",), labels=("background", "A", "B")):
    """A Medical Segmentation Decathlon folder from ``(case_id, image, label, affine, label_affine)`` tuples."""
    import json

    import nibabel as nib

    (tmp_path / "imagesTr").mkdir(exist_ok=True)
    (tmp_path / "labelsTr").mkdir(exist_ok=True)
    training = []
    for cid, img, lab, aff, laff in cases:
        nib.save(nib.Nifti1Image(img, aff), str(tmp_path / "imagesTr" / f"{cid}.nii.gz"))
        nib.save(nib.Nifti1Image(lab, laff if laff is not None else aff), str(tmp_path / "labelsTr" / f"{cid}.nii.gz"))
        training.append({"image": f"./imagesTr/{cid}.nii.gz", "label": f"./labelsTr/{cid}.nii.gz"})
    meta = {"name": "Toy", "modality": {str(i): m for i, m in enumerate(modalities)},
            "labels": {str(i): n for i, n in enumerate(labels)}, "training": training, "relase": "typo kept"}
    (tmp_path / "dataset.json").write_text(json.dumps(meta))
    return tmp_path


@pytest.fixture
def write_msd():
    """Writes a toy MSD folder (dataset.json, imagesTr/, labelsTr/); see ``_write_msd``."""
    pytest.importorskip("nibabel")
    return _write_msd


@pytest.fixture
def toy_msd_facts(monkeypatch):
    """Replace the ``hippocampus`` catalogue facts with a toy's: ``toy_msd_facts(shape, n_cases)``;
    the loader's cache is cleared before and after the test."""
    from openmia.data import msd_sets

    def patch(shape: tuple[int, int, int], n_cases: int = 10, labels=("background", "A", "B")) -> None:
        monkeypatch.setitem(msd_sets.FACTS, "hippocampus", msd_sets._Facts(
            shape=tuple(shape), label_names=tuple(labels), modality="MRI", n_cases=n_cases, licence="toy",
            citation="toy", description="toy"))
        msd_sets._load_all.cache_clear()

    yield patch
    msd_sets._load_all.cache_clear()


@pytest.fixture(scope="session")
def seg_images(tmp_path_factory):
    """``seg_images(n)``: a finished 1-epoch segmentation run on ``synthetic/seg2d`` (trained once
    per session, not indexed) and a new folder of its first ``n`` test images as PNGs."""
    from PIL import Image

    from openmia import api
    from openmia.data.catalog import load_split

    tmp = tmp_path_factory.mktemp("seg_run")
    run = api.train(None, ["task=segmentation", "model.kwargs.width=4", "train.epochs=1", "data.batch_size=64",
                           "train.threads=1", "eval.n_resamples=20", f"out_dir={tmp}"], progress=False, index=False).run_dir
    test = load_split("synthetic/seg2d", "test")

    def make(n: int):
        images = tmp_path_factory.mktemp("images")
        for i in range(n):
            Image.fromarray(test.images[i, 0]).save(images / f"case{i}.png")
        return run, images

    return make
