"""``openmia data verify``: check a data set and report every problem at once."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from openmia.data.catalog import data_file, get_spec, is_user_dataset, load_split
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


def _verify_user(name: str, size: int | None, spacing: tuple[float, ...] | None, rep: VerifyReport) -> bool:
    """User sets: every file problem at once (unreadable files, unpaired images/masks, grids, label
    values, ...); then the split rule and the data files' checksum. False when problems were found."""
    from openmia.data.catalog import split_record
    from openmia.data.sources import find_source

    problems, notes = find_source(name).problems(name, size=size, spacing=spacing)
    rep.problems += problems
    rep.warnings += notes
    if problems:
        return False
    rec = split_record(name)
    rep.checks.append(f"splits: {rec['rule']}")
    rep.checks.append(f"{rec['n_files']} data files, SHA-256 {rec['files_sha256']}")
    return True


def verify(name: str, *, size: int | None = None, root: str | Path | None = None,
           spacing: tuple[float, ...] | None = None) -> VerifyReport:
    """Checksum, shapes, dtype, split sizes, label range, NaNs and exact duplicate images.

    Exact duplicates are warnings, not errors: official releases contain a few (MedMNIST does),
    but duplicates *across* splits leak test information and are listed so users can judge.
    User sets (``folder:PATH`` ...) are first checked file by file, reporting every problem.
    """
    user = is_user_dataset(name)
    if user:
        rep = VerifyReport(name)
        if not _verify_user(name, size, spacing, rep):
            return rep
    spec = get_spec(name, size, spacing=spacing)
    rep = rep if user else VerifyReport(spec.name)
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
            s = (load_split(name, split, size=size, spacing=spacing) if user
                 else load_split(spec.name, split, root=root, spacing=spacing))
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
        if hasattr(s, "objects"):  # boxes/points: objects per class, and what the drop policy removed
            per_class = np.bincount(np.concatenate([*s.classes, np.zeros(0, np.int64)]), minlength=spec.num_classes)
            rep.checks.append(f"{split}: {n} images, {int(per_class.sum())} objects "
                              f"({', '.join(f'{k} {v}' for k, v in zip(spec.label_names, per_class.tolist()))}), "
                              f"{int((s.labels == 0).sum())} image(s) without objects")
            rep.warnings += [f"{split}: {d}" for d in s.dropped]
        elif spec.task_type != "multi-label":
            counts = np.bincount(s.labels.ravel(), minlength=spec.num_classes)
            absent = [spec.label_names[i] for i in np.flatnonzero(counts == 0)]
            label_maps = s.labels.ndim > 1  # one label per voxel rather than one per case
            if absent:
                rep.warnings.append(f"{split}: no {'voxel' if label_maps else 'case'} of class(es) {absent}")
            what = "voxels per label" if label_maps else "class counts"
            rep.checks.append(f"{split}: {n} cases, {what} {counts.tolist()}")
        else:
            rep.checks.append(f"{split}: {n} cases, positives per label {s.labels.sum(0).tolist()}")
        if getattr(s, "spacings", None) is not None:
            sp = np.array(s.spacings)
            rep.warnings.append(f"{split}: voxel spacing differs between cases ({tuple(sp.min(0).round(3).tolist())} to "
                                f"{tuple(sp.max(0).round(3).tolist())} mm); set data.spacing to resample to one spacing")
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
