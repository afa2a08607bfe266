"""Catalogue, synthetic sets, MedMNIST facts and the npz reader (real files when at hand)."""

from __future__ import annotations

import tracemalloc
import zipfile

import numpy as np
import pytest

from openmia.data import medmnist
from openmia.data.catalog import get_spec, list_datasets, load_split
from openmia.data.synthetic import generate
from openmia.errors import DataError, UnknownNameError


@pytest.mark.parametrize("name", ["synthetic/binary", "synthetic/multiclass", "synthetic/multilabel"])
def test_synthetic_is_deterministic_and_well_formed(name):
    a = generate.__wrapped__(name, 0)
    b = generate.__wrapped__(name, 0)
    c = generate.__wrapped__(name, 1)
    spec = get_spec(name)
    for split, n in spec.split_sizes:
        assert a[split][0].tobytes() == b[split][0].tobytes()
        assert a[split][0].shape == (n, 1, 28, 28) and a[split][0].dtype == np.uint8
    assert a["train"][0].tobytes() != c["train"][0].tobytes()


def test_synthetic_binary_is_not_trivially_separable():
    """Global intensity statistics and a linear model on raw pixels stay near chance; the class is in the shape."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score

    d = generate("synthetic/binary", 0)
    (xtr, ytr), (xte, yte) = d["train"], d["test"]
    assert 0.25 < ytr.mean() < 0.45  # imbalanced, as stated in the spec
    feats = lambda x: np.c_[x.reshape(len(x), -1).mean(1), x.reshape(len(x), -1).std(1)]  # noqa: E731
    lr = LogisticRegression().fit(feats(xtr), ytr)
    assert roc_auc_score(yte, lr.predict_proba(feats(xte))[:, 1]) < 0.65
    flat = lambda x: x.reshape(len(x), -1) / 255.0  # noqa: E731
    lr = LogisticRegression(C=0.1, max_iter=500).fit(flat(xtr), ytr)
    assert roc_auc_score(yte, lr.predict_proba(flat(xte))[:, 1]) < 0.7


def test_catalogue_names_and_errors():
    names = {s.name for s in list_datasets()}
    assert len([n for n in names if get_spec(n).source == "medmnist"]) == 18
    assert {"busi", "kvasir_seg", "synthetic/seg2d", "synthetic/seg3d"} <= names
    assert get_spec("retinamnist", 224).filename == "retinamnist_224.npz"
    assert get_spec("adrenalmnist3d_64").size == 64 and get_spec("adrenalmnist3d_64").dims == 3
    assert get_spec("chestmnist").task_type == "multi-label" and get_spec("chestmnist").num_classes == 14
    assert get_spec("retinamnist").task_type == "ordinal" and get_spec("dermamnist").licence == "CC BY-NC 4.0"
    with pytest.raises(UnknownNameError, match="Did you mean 'retinamnist'"):
        get_spec("retinamnis")
    with pytest.raises(UnknownNameError, match=r"no 224px variant; available sizes: \[28, 64\]"):
        get_spec("vesselmnist3d", 224)
    with pytest.raises(DataError, match="not found. Download it with `openmia data fetch retinamnist`"):
        load_split("retinamnist", "train")


def test_fact_table_md5_matches_the_files_at_hand(shared_data):
    lines = (shared_data / "medmnist" / "checksums.md5").read_text().split("\n")
    checked = 0
    for line in filter(None, lines):
        md5, fname = line.split()
        base = fname.removesuffix(".npz")
        name, _, size = base.rpartition("_")
        spec = get_spec(base) if not size.isdigit() else get_spec(name, int(size))
        assert spec.md5 == md5 and spec.filename == fname
        checked += 1
    assert checked == 4
    assert all(len(f.md5) in (2, 4) for f in medmnist.FACTS.values())


@pytest.mark.parametrize("name, shape", [("retinamnist", (400, 3, 28, 28)), ("vesselmnist3d", (382, 1, 28, 28, 28))])
def test_real_files_load_channel_first(shared_data, name, shape):
    s = load_split(name, "test", root=shared_data / "medmnist")
    assert s.images.shape == shape and s.images.dtype == np.uint8 and s.labels.shape == (shape[0],)
    assert s.case_ids[0] == f"{name}/test/00000"


def test_loading_3d_64_needs_about_the_array_size(shared_data):
    tracemalloc.start()
    s = load_split("adrenalmnist3d_64", "train", root=shared_data / "medmnist")
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert s.images.shape == (1188, 1, 64, 64, 64)
    assert peak < 2.2 * s.images.nbytes, f"peak {peak / 2**20:.0f} MiB for a {s.images.nbytes / 2**20:.0f} MiB array"


def test_corrupt_and_truncated_npz_are_clear_errors(shared_data, tmp_path):
    good = (shared_data / "medmnist" / "retinamnist.npz").read_bytes()
    (tmp_path / "retinamnist.npz").write_bytes(good[: len(good) // 2])
    with pytest.raises(DataError, match="retinamnist.npz: not a readable .npz archive"):
        load_split("retinamnist", "train", root=tmp_path)
    (tmp_path / "retinamnist.npz").write_bytes(b"garbage" * 100)
    with pytest.raises(DataError, match="corrupt or truncated"):
        load_split("retinamnist", "train", root=tmp_path)
    np.savez(tmp_path / "retinamnist.npz", train_images=np.zeros((3, 28, 28, 3), np.uint8), train_labels=np.zeros((3, 1)))
    with pytest.raises(DataError, match=r"train_images has shape \(3, 28, 28, 3\), expected \(1080, 28, 28, 3\)"):
        load_split("retinamnist", "train", root=tmp_path)
    with zipfile.ZipFile(tmp_path / "retinamnist.npz", "w") as z:
        z.writestr("other.npy", b"")
    with pytest.raises(DataError, match="missing member"):
        load_split("retinamnist", "val", root=tmp_path)
