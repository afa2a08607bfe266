"""``openmia data verify``: check a data set and report every problem at once."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from openmia.data.catalog import data_file, get_spec, load_split
from openmia.errors import OpenmiaError


@dataclass
class VerifyReport:
    name: str
    checks: list[str] = field(default_factory=list)  # what passed
    problems: list[str] = field(default_factory=list)  # errors: the data set cannot be trusted
    warnings: list[str] = field(default_factory=list)  # facts a user should know (e.g. duplicate images)

    @property
    def ok(self) -> bool:
        return not self.problems


def verify(name: str, *, size: int | None = None, root: str | Path | None = None) -> VerifyReport:
    """Checksum, shapes, dtype, split sizes, label range, NaNs and exact duplicate images.

    Exact duplicates are warnings, not errors: official releases contain a few (MedMNIST does),
    but duplicates *across* splits leak test information and are listed so users can judge.
    """
    spec = get_spec(name, size)
    rep = VerifyReport(spec.name)
    if spec.md5:
        from openmia.data.fetch import md5sum

        path = data_file(spec, root)
        if not path.is_file():
            rep.problems.append(f"{path} not found (openmia data fetch {spec.name})")
            return rep
        found = md5sum(path)
        if found != spec.md5:
            rep.problems.append(f"{path}: MD5 {found}, expected {spec.md5}")
        else:
            rep.checks.append(f"MD5 {found} matches the official checksum")
    hashes: dict[str, dict[bytes, list[int]]] = {}
    for split in ("train", "val", "test"):
        try:
            s = load_split(spec.name, split, root=root)
        except OpenmiaError as exc:
            rep.problems.append(f"{split}: {exc}")
            continue
        n = len(s.labels)
        if n != spec.split_size(split):
            rep.problems.append(f"{split}: {n} cases, expected {spec.split_size(split)}")
        if s.images.shape[1:] != spec.image_shape:
            rep.problems.append(f"{split}: image shape {s.images.shape[1:]}, expected {spec.image_shape}")
        if s.images.dtype != np.uint8 and not np.isfinite(s.images).all():
            rep.problems.append(f"{split}: NaN or infinite intensities")
        if spec.task in ("detection", "counting"):  # objects per class, and what the drop policy removed
            per_class = np.bincount(np.concatenate([*s.classes, np.zeros(0, np.int64)]), minlength=spec.num_classes)
            rep.checks.append(f"{split}: {n} images, {int(per_class.sum())} objects "
                              f"({', '.join(f'{k} {v}' for k, v in zip(spec.label_names, per_class.tolist()))}), "
                              f"{int((s.labels == 0).sum())} image(s) without objects")
            rep.warnings += [f"{split}: {d}" for d in s.dropped]
        elif spec.task_type != "multi-label":
            counts = np.bincount(s.labels.ravel(), minlength=spec.num_classes)
            absent = [spec.label_names[i] for i in np.flatnonzero(counts == 0)]
            if absent:
                rep.warnings.append(f"{split}: no {'voxel' if spec.task == 'segmentation' else 'case'} of class(es) {absent}")
            what = "voxels per label" if spec.task == "segmentation" else "class counts"
            rep.checks.append(f"{split}: {n} cases, {what} {counts.tolist()}")
        else:
            rep.checks.append(f"{split}: {n} cases, positives per label {s.labels.sum(0).tolist()}")
        if s.regions is not None:  # padded sets: the cases' own extents inside the common shape
            ext = np.array([[r.stop - r.start for r in reg] for reg in s.regions])
            rep.checks.append(f"{split}: case shapes {tuple(ext.min(0).tolist())} to {tuple(ext.max(0).tolist())} "
                              f"(padded to {spec.spatial_shape}), spacing {spec.spacing} mm")
        h: dict[bytes, list[int]] = {}
        for i in range(n):
            h.setdefault(hashlib.blake2b(np.ascontiguousarray(s.images[i]).tobytes(), digest_size=16).digest(), []).append(i)
        hashes[split] = h
        dup = sum(len(v) - 1 for v in h.values() if len(v) > 1)
        if dup:
            rep.warnings.append(f"{split}: {dup} exact duplicate image(s) within the split")
    splits = list(hashes)
    for i, a in enumerate(splits):
        for b in splits[i + 1 :]:
            shared = set(hashes[a]) & set(hashes[b])
            if shared:
                rep.warnings.append(f"{len(shared)} image(s) appear in both {a} and {b}")
    return rep
