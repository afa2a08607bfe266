"""Landmark data sets in the catalogue (task ``landmarks``): the synthetic ones and landmark views
of labelled real sets, where each landmark is derived deterministically from a label map.

- ``synthetic/landmarks2d`` / ``synthetic/landmarks3d``: :mod:`openmia.data.synthetic_landmarks`.
- ``hippocampus_landmarks``: MSD Task04 Hippocampus (the ``hippocampus`` catalogue set, same
  5 folds, padding and normalisation); landmark ``anterior`` = the centroid of label 1 (the
  hippocampus head), ``posterior`` = the centroid of label 2 (body and tail), in voxels
  (``scipy.ndimage.center_of_mass``), 1 mm spacing. A case without one of the labels is a DataError.
- ``busi_landmarks``: BUSI at 256 px; landmark ``lesion`` = the centroid of the (OR-ed) lesion
  mask; the 133 ``normal`` images have no lesion and are left out (the other cases keep the BUSI
  split). BUSI has no pixel spacing: errors are in pixels of the 256 x 256 images.

A split is a :class:`~openmia.data.arrays.SplitArrays` whose ``labels`` are the points
``(N, K, D)`` float32 (K landmarks in ``spec.label_names`` order, D coordinates along the array
axes of the — possibly padded — image); ``regions`` give the case's own voxels in padded sets
(the evaluator's points are in the case's own grid: the region's start is subtracted).
"""

from __future__ import annotations

from dataclasses import replace
from functools import lru_cache
from typing import Any

import numpy as np

from openmia.data import synthetic_landmarks
from openmia.data.arrays import SplitArrays
from openmia.data.sources import DATASETS, Source, _no_spacing
from openmia.data.spec import DatasetSpec
from openmia.errors import DataError, UnknownNameError

DERIVED = {"hippocampus_landmarks": "hippocampus", "busi_landmarks": "busi"}
# the label value each landmark is the centroid of
DERIVED_LANDMARKS = {"hippocampus_landmarks": (("anterior", 1), ("posterior", 2)), "busi_landmarks": (("lesion", 1),)}


def centroids(label_map: np.ndarray, values: tuple[int, ...], case_id: str) -> np.ndarray:
    """Centroid ``(K, D)`` (voxels) of each label value in ``label_map`` ``(*spatial)``."""
    from scipy import ndimage

    out = []
    for v in values:
        mask = label_map == v
        if not mask.any():
            raise DataError(f"case {case_id!r}: label {v} is empty, so its centroid landmark is undefined")
        out.append(ndimage.center_of_mass(mask))
    return np.asarray(out, dtype=np.float32)


def _busi_sizes() -> tuple[tuple[str, int], ...]:
    from openmia.data.segmentation_sets import _busi_split

    sp = _busi_split()
    return tuple((k, sum(not c.startswith("normal") for c in sp[k])) for k in ("train", "val", "test"))


def derived_spec(name: str) -> DatasetSpec:
    base = DERIVED[name]
    lms = tuple(n for n, _ in DERIVED_LANDMARKS[name])
    if base == "hippocampus":
        from openmia.data.msd_sets import spec_for

        s = spec_for(base)
        return replace(s, name=name, task="landmarks", task_type="landmarks", label_names=lms,
                       description="MSD Task04 hippocampus; landmarks = centroids of the anterior (1) and posterior (2) "
                                   "labels; 5 folds")
    from openmia.data.segmentation_sets import spec_for

    s = spec_for(base)
    return replace(s, name=name, task="landmarks", task_type="landmarks", label_names=lms, split_sizes=_busi_sizes(),
                   resized_input=False, description="BUSI benign/malignant at 256 px; landmark = lesion-mask centroid "
                                                    "(normal images left out); errors in pixels")


@lru_cache(maxsize=4)
def _derived(name: str, split: str, root: str | None, fold: int) -> tuple[np.ndarray, np.ndarray, list[str], Any]:
    values = tuple(v for _, v in DERIVED_LANDMARKS[name])
    if DERIVED[name] == "hippocampus":
        from openmia.data import msd_sets

        images, labels, ids, regions = msd_sets.load("hippocampus", split, root=root, fold=fold)
        keep = np.arange(len(ids))
    else:
        from openmia.data import segmentation_sets

        images, labels, ids = segmentation_sets.load("busi", split, root=root)
        keep = np.array([i for i, c in enumerate(ids) if not c.startswith("normal")])
        images, labels, ids, regions = images[keep], labels[keep], [ids[i] for i in keep], None
    pts = np.stack([centroids(np.asarray(lab), values, cid) for lab, cid in zip(labels, ids)])
    pts.setflags(write=False)
    return images, pts, list(ids), regions


@DATASETS.register("landmarks", order=4)
class LandmarkSource(Source):
    """Landmark sets: synthetic, and centroid landmarks derived from labelled catalogue sets."""

    @staticmethod
    def owns(name: str) -> bool:
        return name in synthetic_landmarks.SPECS or name in DERIVED

    @staticmethod
    def names() -> list[str]:
        return [*synthetic_landmarks.SPECS, *DERIVED]

    @staticmethod
    def specs() -> list[DatasetSpec]:
        return [*synthetic_landmarks.SPECS.values(), *(derived_spec(n) for n in DERIVED)]

    @staticmethod
    def spec(name: str, size: int | None, spacing: Any = None) -> DatasetSpec:
        spec = synthetic_landmarks.SPECS.get(name) or derived_spec(name)
        if size not in (None, spec.size):
            raise UnknownNameError(f"{name} exists only at {spec.size}px, not {size}px")
        _no_spacing(spec, spacing)
        return spec

    @staticmethod
    def load(spec: DatasetSpec, split: str, *, root: Any, seed: int, fold: int) -> SplitArrays:
        if spec.name in synthetic_landmarks.SPECS:
            images, pts = synthetic_landmarks.generate(spec.name, seed)[split]
            return SplitArrays(images, pts, [f"{spec.name}/{split}/{i:05d}" for i in range(len(pts))], spec)
        images, pts, ids, regions = _derived(spec.name, split, None if root is None else str(root), fold)
        return SplitArrays(images, pts, ids, spec, regions)
