"""Arrays, splits and split records of ``folder:``/``msd:``/``nnunet:`` data sets (see
:mod:`openmia.data.user_sets` for the rules); the engine reaches them through ``catalog``."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache, partial
from pathlib import Path
from typing import Any

import numpy as np

from openmia.data.arrays import SplitArrays
from openmia.data.problems import RAISE, Problems
from openmia.data.readers.folder import ImageInfo
from openmia.data.user_sets import (DEFAULT_SIZE_2D, DEFAULT_SIZE_3D, Scan, check_spacing, common_spacing,
                                    get_scan, padded_shape, plan_for, scan, spec_of)
from openmia.errors import ConfigError, DataError, OpenmiaError


@dataclass
class Built:
    """Every case of a data set as arrays (row ``rows[case_id]``), before splitting."""

    images: np.ndarray
    labels: np.ndarray
    rows: dict[str, int]
    regions: list[tuple[slice, ...]] | None = None
    spacings: list[tuple[float, ...]] | None = None


def _image(infos: tuple[ImageInfo, ...], s: Scan) -> np.ndarray:
    """``(C, *spatial)``: uint8 for 8-bit sets, else float32 normalised by the set's modality rule."""
    from openmia.data.readers.folder import read_image
    from openmia.transforms.intensity import normalize_for_modality

    parts = [read_image(i) for i in infos]
    img = parts[0] if len(parts) == 1 else np.concatenate([p.astype(np.float32) if not s.eight_bit else p for p in parts])
    if s.eight_bit:
        return img
    return np.stack([normalize_for_modality(c.astype(np.float32), s.modality) for c in img]).astype(np.float32)


def _mask(path: Path, image: ImageInfo, s: Scan) -> np.ndarray:
    from openmia.data.readers.folder import read_mask

    m = read_mask(path, image)
    bad = sorted(set(np.unique(m).tolist()) - set(range(len(s.label_names))))
    if bad:
        fix = "fix the mask or add the label to dataset.json" if s.prefix != "folder" else \
            "fix the mask, or declare the labels in the folder's dataset.json"
        raise DataError(f"{path}: label value(s) {bad} are not in the labels {dict(enumerate(s.label_names))}; {fix}")
    return m.astype(np.uint8)


def _centre_fit(img: np.ndarray, edge: int) -> np.ndarray:
    """Centre-crop or zero-pad ``(C, *spatial)`` to ``(C, edge, ..., edge)``."""
    out = np.zeros((img.shape[0],) + (edge,) * (img.ndim - 1), img.dtype)
    src, dst = [slice(None)], [slice(None)]
    for n in img.shape[1:]:
        if n >= edge:
            a = (n - edge) // 2
            src.append(slice(a, a + edge))
            dst.append(slice(None))
        else:
            a = (edge - n) // 2
            src.append(slice(None))
            dst.append(slice(a, a + n))
    out[tuple(dst)] = img[tuple(src)]
    return out


def zoom_to_cube(img: np.ndarray, edge: int) -> np.ndarray:
    """``(C, *spatial)`` resized (linear) to ``(C, edge, ..., edge)``: how 3D classification volumes
    of a user set are made (``openmia predict`` must prepare new volumes the same way)."""
    from scipy import ndimage

    return np.stack([ndimage.zoom(c, edge / np.array(c.shape), order=1, mode="nearest", grid_mode=True,
                                  output=np.float32) for c in img])


def build(s: Scan, size: int | None, spacing: tuple[float, ...] | None, problems: Problems = RAISE) -> Built:
    """Read every case of ``s`` into arrays (2D resized, 3D classification resized or resampled to
    a cube, 3D segmentation padded with regions)."""
    from PIL import Image

    from openmia.data.segmentation_sets import resize_image
    from openmia.transforms.spatial import resample_to_spacing

    imgs, labs, ids, regions, spacings = [], [], [], [], []
    shape = padded_shape(s, spacing) if s.label_maps and s.dims == 3 else None
    edge = size or (DEFAULT_SIZE_2D if s.dims == 2 else DEFAULT_SIZE_3D)
    for c in s.cases:
        inf = s.infos[c.case_id]
        img = problems.guard(_image, inf, s)
        if img is None:
            continue
        if not s.label_maps:
            if s.dims == 2:
                img = resize_image(img, edge)
            elif spacing is not None:
                img = _centre_fit(resample_to_spacing(img, inf[0].spacing, spacing)[0], edge)
            else:
                img = zoom_to_cube(img, edge)
            lab: Any = c.label  # type: ignore[union-attr]
        else:
            lab = problems.guard(_mask, c.mask, inf[0], s)  # type: ignore[union-attr]
            if lab is None:
                continue
            if s.dims == 2:
                img = resize_image(img, edge)
                lab = np.asarray(Image.fromarray(lab).resize((edge, edge), Image.NEAREST))
            else:
                own = inf[0].spacing or (1.0, 1.0, 1.0)
                if spacing is not None:
                    img, lab, own = resample_to_spacing(img, own, spacing, label=lab)
                region = tuple(slice((t - n) // 2, (t - n) // 2 + n) for n, t in zip(lab.shape, shape))
                full = np.zeros((img.shape[0], *shape), np.float32)
                full[(slice(None), *region)] = img
                img, lab_full = full, np.zeros(shape, np.uint8)
                lab_full[region] = lab
                lab = lab_full
                regions.append(region)
                spacings.append(tuple(float(v) for v in own))
        imgs.append(img)
        labs.append(lab)
        ids.append(c.case_id)
    if not imgs:
        return Built(np.zeros((0,)), np.zeros((0,)), {})
    images = np.stack(imgs)
    labels = np.stack(labs) if s.label_maps else np.asarray(labs, dtype=np.int64)
    _, differ = common_spacing(s, spacing)
    return Built(images, labels, {c: i for i, c in enumerate(ids)}, regions or None, spacings if differ else None)


@lru_cache(maxsize=2)  # whole data sets: keep few
def _built_cached(prefix: str, root: str, stamp: str, size: int | None, spacing: tuple[float, ...] | None) -> Built:
    from openmia.data.user_sets import _scan_cached

    b = build(_scan_cached(prefix, root, stamp), size, spacing)
    b.images.setflags(write=False)
    b.labels.setflags(write=False)
    return b


def load(name: str, split: str, *, size: int | None = None, root: Any = None, seed: int = 0, fold: int = 0,
         spacing: tuple[float, ...] | None = None) -> SplitArrays:
    """One split of a ``folder:``/``msd:``/``nnunet:`` set; arrays as
    :class:`~openmia.data.arrays.SplitArrays` (``(N, C, *spatial)`` images)."""
    if root:
        raise ConfigError(f"data.root={root!r} does not apply to {name}: the path is part of the data set's name")
    s = get_scan(name)
    sp = check_spacing(s, spacing)
    spec = spec_of(name, size, sp)
    plan = plan_for(s, seed=seed, fold=fold)
    b = _built_cached(s.prefix, str(s.root), s.stamp, size if not s.label_maps or s.dims == 2 else None, sp)
    ids = list(plan.splits[split])
    rows = [b.rows[c] for c in ids]
    images, labels = b.images[rows], b.labels[rows]
    images.setflags(write=False)
    labels.setflags(write=False)
    regions = [b.regions[r] for r in rows] if b.regions is not None else None
    spacings = [b.spacings[r] for r in rows] if b.spacings is not None else None
    return SplitArrays(images, labels, ids, spec, regions, spacings,
                       partial(record_for, name, size=size, seed=seed, fold=fold, spacing=sp))


def record_for(name: str, *, seed: int = 0, fold: int = 0, **_: Any) -> dict[str, Any]:
    """The split record a split's ``split_record`` attribute returns (as ``catalog.split_record``)."""
    from openmia.data.splitting import SPLIT_RECORD_SCHEMA

    return {"schema": SPLIT_RECORD_SCHEMA, "source": "user", **record(name, seed=seed, fold=fold)}


def record(name: str, *, seed: int = 0, fold: int = 0, checksum: bool = True) -> dict[str, Any]:
    """The split record of a user set: case ids per split, the rule, and the data files' SHA-256."""
    from openmia.data.splitting import files_sha256

    s = get_scan(name)
    plan = plan_for(s, seed=seed, fold=fold)
    return {"dataset": name, "root": str(s.root), "layout": s.layout, "rule": plan.rule, "seed": seed, "fold": fold,
            "folds": plan.folds, "splits": {k: list(v) for k, v in plan.splits.items()}, "n_files": len(s.files),
            "files_sha256": files_sha256(s.root, s.files, s.stamp) if checksum else None}


def find_problems(name: str, *, size: int | None = None, spacing: tuple[float, ...] | None = None) -> tuple[list[str], list[str]]:
    """``(problems, notes)``: every problem of a user set at once (nothing cached), and facts to know."""
    from openmia.data.splitting import fingerprint, plan_splits
    from openmia.data.user_sets import resolve

    probs = Problems(collect=True)
    try:
        prefix, root = resolve(name)
        s = scan(prefix, root, fingerprint(root), probs)
        sp = check_spacing(s, spacing)
        build(s, size, sp, probs)
        if not probs.items:
            plan_splits(s.case_ids, s.strata, seed=0, fold=0, given=s.given, given_by=s.given_by, where=name)
        return probs.items, list(s.notes)
    except OpenmiaError as exc:
        return [*probs.items, str(exc)], []
