"""What a loaded split is: :class:`SplitArrays` (classification / segmentation), and merging two."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from openmia.data.spec import DatasetSpec
from openmia.errors import DataError


@dataclass
class SplitArrays:
    """One split of a data set.

    Attributes:
        images: uint8 or float32 ``(N, C, *spatial)``; may be a non-contiguous view of the file's array.
        labels: int64 ``(N,)`` (binary / multi-class / ordinal), ``(N, L)`` 0/1 (multi-label), or
            uint8 label maps ``(N, *spatial)`` (segmentation).
        case_ids: one id per case (``"<dataset>/<split>/<index>"`` for catalogue sets without case
            names; file-derived names for real and user data sets).
        regions: for sets padded to a common shape, the slice of each padded array that holds the
            case's own voxels (predictions are cropped back before scoring); None otherwise.
        spacings: per-case voxel spacing in mm (user NIfTI sets whose cases differ; ``spec.spacing``
            is then the median); None when ``spec.spacing`` holds for every case.
        split_record: for sets whose splits openmia made (user data), a callable returning the
            split record (``catalog.split_record``: case ids per split, rule, files' SHA-256) for
            the run directory's ``splits.json`` and the provenance; None otherwise.
    """

    images: np.ndarray
    labels: np.ndarray
    case_ids: list[str]
    spec: DatasetSpec
    regions: list[tuple[slice, ...]] | None = None
    spacings: list[tuple[float, ...]] | None = None
    split_record: Callable[[], dict[str, Any]] | None = field(default=None, compare=False, repr=False)


def merge_splits(first: SplitArrays, second: SplitArrays) -> SplitArrays:
    """One split holding ``first``'s cases, then ``second``'s (e.g. train + val for a refit).

    Images and labels are concatenated along the case axis, so both must share the per-case
    shape (every catalogue set stores a split as one array); when either has regions, the merged
    split has one per case (the whole array for cases that had none); per-case spacings likewise
    (``spec.spacing`` for cases that had none). The split record is ``first``'s (the data set's).
    """
    if first.spec != second.spec:
        raise DataError(f"cannot merge splits of {first.spec.name} and {second.spec.name}")
    if first.images.shape[1:] != second.images.shape[1:]:
        raise DataError(f"{first.spec.name}: cannot merge splits with image shapes {first.images.shape[1:]} and "
                        f"{second.images.shape[1:]} per case")
    regions = None
    if first.regions is not None or second.regions is not None:
        regions = [*(first.regions or [(...,)] * len(first.case_ids)), *(second.regions or [(...,)] * len(second.case_ids))]
    spacings = None
    if first.spacings is not None or second.spacings is not None:
        default = first.spec.spacing or (1.0,) * first.spec.dims
        spacings = [*(first.spacings or [default] * len(first.case_ids)),
                    *(second.spacings or [default] * len(second.case_ids))]
    return SplitArrays(np.concatenate([first.images, second.images]), np.concatenate([first.labels, second.labels]),
                       [*first.case_ids, *second.case_ids], first.spec, regions, spacings, first.split_record)
