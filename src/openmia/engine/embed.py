"""Embeddings: one feature vector per case, from a trained run or from raw pixels (``openmia embed``).

Two methods:

``model``        a finished run's model in eval mode; its Task's :meth:`~openmia.tasks.base.Task.embed`
                 hook says which features (classification: the penultimate layer; segmentation: the
                 pooled bottleneck; autoencoders: the code). This module never asks which task it is.
``pixels-pca``   no model: the images' normalised pixel values flattened, and a scikit-learn PCA fitted
                 on ``fit_split`` (default ``train``) applied to the embedded split — the baseline any
                 learned encoder has to beat.

Output folder (written atomically, as a set):

``embeddings.npy``  float32 ``(n_cases, d)``, rows in ``cases.csv`` order
``cases.csv``       ``case_id`` [, ``label``, ``label_name`` when the split has one class per case]
                    [, ``patient_id`` when the data set knows it]
``embed.json``      provenance: method, run (and its checkpoint's SHA-256), layer, data set, split, size,
                    root, the SHA-256 of the embedded images and of ``embeddings.npy``, versions, time

The split ``all`` embeds train, val and test together (in that order).
"""

from __future__ import annotations

import hashlib
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

from openmia import fileio
from openmia.errors import ConfigError, DataError, PredictionError

METHODS = ("model", "pixels-pca")
SPLITS = ("train", "val", "test", "all")
SCHEMA = "openmia.embeddings/1"


def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def load_cases(dataset: str, split: str, *, size: int | None = None, root: str | Path | None = None, fold: int = 0,
               spacing: Any = None) -> Any:
    """The split's :class:`~openmia.data.arrays.SplitArrays` (``all``: train + val + test merged)."""
    from openmia.data.arrays import merge_splits
    from openmia.data.catalog import load_split

    if split not in SPLITS:
        raise ConfigError(f"--split: expected one of {', '.join(SPLITS)}, found {split!r}")
    parts = ("train", "val", "test") if split == "all" else (split,)
    out = None
    for s in parts:
        arr = load_split(dataset, s, size=size, root=root, fold=fold, spacing=spacing)
        if not isinstance(getattr(arr, "images", None), np.ndarray):
            raise DataError(f"{dataset}: split {s!r} does not hold one image array (detection/counting sets are not "
                            "supported by `openmia embed`)")
        out = arr if out is None else merge_splits(out, arr)
    dup = _duplicates(out.case_ids)
    if dup:
        raise DataError(f"{dataset} split {split!r}: case id(s) {', '.join(dup[:5])} appear more than once")
    return out


def _duplicates(ids: list[str]) -> list[str]:
    seen: set[str] = set()
    return [c for c in ids if c in seen or seen.add(c)]  # type: ignore[func-returns-value]


SINGLE_LABEL_TYPES = ("binary", "multi-class", "ordinal")


def _pixels(images: np.ndarray, normalization: Any) -> np.ndarray:
    """``(N, C*prod(spatial))`` float32 pixel values, normalised as the models see them (uint8 sets
    mapped to [-1, 1]; ``float`` sets are normalised by the loader already)."""
    norm = getattr(normalization, "value", normalization)
    x = np.asarray(images, dtype=np.float32).reshape(len(images), -1)
    return x * (2.0 / 255.0) - 1.0 if norm == "uint8_unit" else x


def _case_rows(s: Any) -> tuple[list[str], list[list[Any]]]:
    """The ``cases.csv`` header and rows of a split (labels only for one class per case)."""
    labels = np.asarray(s.labels)
    header = ["case_id"]
    # one class per case: binary / multi-class / ordinal label vectors (not boxes, maps or landmarks)
    one_class = labels.ndim == 1 and len(labels) == len(s.case_ids) and s.spec.task_type in SINGLE_LABEL_TYPES
    names = list(s.spec.label_names)
    if one_class:
        header += ["label", "label_name"]
    patients = getattr(s, "patient_ids", None)
    if patients is not None:
        header.append("patient_id")
    rows = []
    for i, cid in enumerate(s.case_ids):
        row: list[Any] = [cid]
        if one_class:
            k = int(labels[i])
            row += [k, names[k] if 0 <= k < len(names) else str(k)]
        if patients is not None:
            row.append(patients[i])
        rows.append(row)
    return header, rows


def _check_finite(emb: np.ndarray, case_ids: list[str], what: str) -> None:
    bad = np.flatnonzero(~np.isfinite(emb).all(axis=1))
    if bad.size:
        raise PredictionError(f"{what}: the embedding of case(s) {', '.join(case_ids[i] for i in bad[:5])} "
                              f"contains NaN or infinite values ({bad.size} case(s) in all)")


def _model_embeddings(run: Any, images: np.ndarray, case_ids: list[str], batch_size: int,
                      progress: Callable[[int, int], None] | None) -> np.ndarray:
    import torch

    from openmia.engine.inference import iterate_batches

    out = []
    done = 0
    run.model.eval()
    with torch.no_grad():
        for idx in iterate_batches(len(images), batch_size, shuffle=False):
            v = run.task.embed(run.model, run.task.float_batch(images[idx]))
            if v.dim() != 2 or v.shape[0] != len(idx):
                raise PredictionError(f"{type(run.task).__name__}.embed returned shape {tuple(v.shape)} for a batch of "
                                      f"{len(idx)}; expected (B, d)")
            out.append(v.float().cpu().numpy())
            done += len(idx)
            if progress is not None:
                progress(done, len(images))
    if not out:
        raise DataError("the split holds no cases to embed")
    dims = {o.shape[1] for o in out}
    if len(dims) > 1:
        raise PredictionError(f"{type(run.task).__name__}.embed returned vectors of different lengths {sorted(dims)}")
    return np.concatenate(out).astype(np.float32)


def embed_dataset(out_dir: str | Path, *, run_dir: str | Path | None = None, method: str = "model",
                  dataset: str | None = None, split: str = "test", fit_split: str = "train", dims: int = 50,
                  size: int | None = None, root: str | Path | None = None, batch_size: int = 64,
                  device: str | None = None, overwrite: bool = False,
                  progress: Callable[[int, int], None] | None = None) -> dict[str, Any]:
    """Embed every case of ``dataset``'s ``split`` into ``out_dir``.

    Args:
        run_dir: a finished run (``method="model"``); its data set, size, root, fold and spacing
            are the defaults of ``dataset``/``size``/``root``.
        method: ``model`` or ``pixels-pca``.
        fit_split: ``pixels-pca``: the split the PCA is fitted on (``train``, ``val``, ``test`` or ``all``).
        dims: ``pixels-pca``: number of principal components (at most the fit split's cases and pixels).

    Returns:
        ``{"out", "cases", "dims", "method", "dataset", "split", "files"}``.
    """
    from openmia.engine.provenance import array_checksum, git_commit, versions

    if method not in METHODS:
        raise ConfigError(f"--method: expected one of {', '.join(METHODS)}, found {method!r}")
    out = fileio.prepare_output_dir(out_dir, inputs=(run_dir,), overwrite=overwrite)
    t0 = time.time()
    prov: dict[str, Any] = {"schema": SCHEMA, "method": method}
    fold, spacing = 0, None
    if method == "model":
        if run_dir is None:
            raise ConfigError("--method model needs --model RUN_DIR (a finished run); or use --method pixels-pca")
        from openmia.engine.predict import load_run

        run = load_run(run_dir, device=device)
        d = run.cfg.data
        if dataset is None or dataset == d.dataset:
            dataset, fold, spacing = d.dataset, d.fold, d.spacing
            size = d.size if size is None else size
            root = d.root if root is None else root
        s = load_cases(dataset, split, size=size, root=root, fold=fold, spacing=spacing)
        if s.spec.channels != run.spec.channels or s.spec.dims != run.spec.dims:
            raise DataError(f"{dataset}: {s.spec.channels}-channel {s.spec.dims}D images, but the run {run_dir} was trained on "
                            f"{run.spec.channels}-channel {run.spec.dims}D images ({run.spec.name})")
        emb = _model_embeddings(run, s.images, s.case_ids, batch_size, progress)
        ck = Path(run.run_dir) / "checkpoints" / "best.pt"
        prov.update({"run": str(run.run_dir), "task": run.task.name, "model": run.cfg.model.name,
                     "layer": run.task.embedding_source(run.model), "checkpoint_sha256": _sha256_file(ck)})
    else:
        if run_dir is not None:
            raise ConfigError("--method pixels-pca uses no model; drop --model (or use --method model)")
        if dataset is None:
            raise ConfigError("--method pixels-pca needs --dataset")
        if isinstance(dims, bool) or not isinstance(dims, int) or dims < 1:
            raise ConfigError(f"--dims: expected a positive integer, found {dims!r}")
        from sklearn.decomposition import PCA

        s = load_cases(dataset, split, size=size, root=root)
        fit = s if fit_split == split else load_cases(dataset, fit_split, size=size, root=root)
        xf = _pixels(fit.images, fit.spec.normalization)
        if dims > min(xf.shape):
            raise ConfigError(f"--dims {dims}: PCA fitted on {dataset} {fit_split!r} ({xf.shape[0]} cases x {xf.shape[1]} "
                              f"pixel values) has at most {min(xf.shape)} components; pass --dims {min(xf.shape)} or fewer")
        _check_finite(xf, fit.case_ids, f"{dataset} {fit_split} pixels")
        pca = PCA(n_components=dims, random_state=0).fit(xf)
        del xf
        xs = _pixels(s.images, s.spec.normalization)
        _check_finite(xs, s.case_ids, f"{dataset} {split} pixels")
        emb = pca.transform(xs).astype(np.float32)
        if progress is not None:
            progress(len(emb), len(emb))
        prov.update({"layer": f"PCA of the normalised pixels ({dims} components)", "fit_split": fit_split,
                     "fit_cases": len(fit.case_ids), "fit_images_sha256": array_checksum(fit.images),
                     "explained_variance_ratio": float(pca.explained_variance_ratio_.sum())})
    _check_finite(emb, s.case_ids, f"{dataset} {split}")
    header, rows = _case_rows(s)
    prov.update({"dataset": s.spec.name, "dataset_arg": dataset, "split": split, "size": size,
                 "root": None if root is None else str(root), "fold": fold,
                 "spacing": None if spacing is None else list(spacing), "n_cases": int(emb.shape[0]),
                 "dims": int(emb.shape[1]), "images_sha256": array_checksum(s.images),
                 "labels": "label" in header, "patients": "patient_id" in header,
                 "seconds": round(time.time() - t0, 3), "versions": versions(), "git_commit": git_commit()})
    with fileio.atomic_dir(out) as tmp:
        fileio.save_npy(tmp / "embeddings.npy", emb)
        fileio.write_csv(tmp / "cases.csv", [header, *rows])
        prov["embeddings_sha256"] = _sha256_file(tmp / "embeddings.npy")
        fileio.write_json(tmp / "embed.json", prov)
    return {"out": str(out), "cases": int(emb.shape[0]), "dims": int(emb.shape[1]), "method": method,
            "dataset": s.spec.name, "split": split, "layer": prov["layer"],
            "files": ["embeddings.npy", "cases.csv", "embed.json"]}
