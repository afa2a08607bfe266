"""Medical Segmentation Decathlon layout: ``dataset.json`` + ``imagesTr/`` + ``labelsTr/`` (NIfTI).

``dataset.json`` gives the modalities (``"modality": {"0": "MRI"}``), the label names
(``"labels": {"0": "background", "1": "Anterior", ...}``) and the training pairs. Multi-modal
images are 4D NIfTI ``(X, Y, Z, C)``; they are returned channels-first. Cases are reoriented to
the closest canonical (RAS+) orientation with nibabel, keeping track of the affine so predictions
can be written back in the original geometry. Every problem is a DataError naming the case.

Upstream quirks handled explicitly: images stored as float32 or uint8 and labels stored as float32
(cast to integers after checking they are whole numbers); the ``"relase"`` key typo is ignored.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from openmia.errors import DataError


@dataclass(frozen=True)
class MSDCase:
    case_id: str
    image: Path
    label: Path | None


@dataclass(frozen=True)
class MSDIndex:
    """What ``dataset.json`` says, with paths resolved and checked."""

    root: Path
    name: str
    modalities: tuple[str, ...]
    label_names: tuple[str, ...]  # index = label value
    cases: tuple[MSDCase, ...]
    licence: str

    def folds(self, k: int = 5) -> list[list[str]]:
        """``k`` folds from the sorted case ids: fold ``i`` = cases whose index % k == i."""
        ids = sorted(c.case_id for c in self.cases)
        return [[c for j, c in enumerate(ids) if j % k == i] for i in range(k)]


def _case_id(path: str) -> str:
    name = Path(path).name
    for suf in (".nii.gz", ".nii"):
        if name.endswith(suf):
            return name[: -len(suf)]
    raise DataError(f"dataset.json lists {path!r}, which is not a .nii or .nii.gz file")


def read_msd_index(root: str | Path) -> MSDIndex:
    """Parse and check ``root/dataset.json``; every listed file must exist."""
    root = Path(root)
    meta_path = root / "dataset.json"
    if not meta_path.is_file():
        raise DataError(f"{root}: no dataset.json; expected the Medical Segmentation Decathlon layout "
                        "(dataset.json, imagesTr/, labelsTr/)")
    try:
        meta = json.loads(meta_path.read_text())
    except json.JSONDecodeError as exc:
        raise DataError(f"{meta_path}: not valid JSON ({exc})") from None
    for key in ("modality", "labels", "training"):
        if key not in meta:
            raise DataError(f"{meta_path}: missing key {key!r}; found {sorted(meta)}")
    try:
        mods = tuple(meta["modality"][str(i)] for i in range(len(meta["modality"])))
        labels = tuple(meta["labels"][str(i)] for i in range(len(meta["labels"])))
    except KeyError as exc:
        raise DataError(f"{meta_path}: 'modality' and 'labels' must be keyed 0..n-1 without gaps (missing {exc})") from None
    cases, seen = [], set()
    for i, entry in enumerate(meta["training"]):
        if not isinstance(entry, dict) or "image" not in entry:
            raise DataError(f"{meta_path}: training entry {i} must be {{'image': ..., 'label': ...}}, found {entry!r}")
        cid = _case_id(entry["image"])
        if cid in seen:
            raise DataError(f"{meta_path}: case {cid!r} is listed twice")
        seen.add(cid)
        img = root / entry["image"]
        lab = root / entry["label"] if entry.get("label") else None
        for what, p in (("image", img), ("label", lab)):
            if p is not None and not p.is_file():
                raise DataError(f"case {cid!r}: {what} file {p} listed in dataset.json does not exist")
        cases.append(MSDCase(cid, img, lab))
    if not cases:
        raise DataError(f"{meta_path}: no training cases")
    return MSDIndex(root, str(meta.get("name", root.name)), mods, labels, tuple(cases), str(meta.get("licence", "")))


@dataclass
class MSDVolume:
    """One loaded case: ``image`` ``(C, X, Y, Z)`` float32, ``label`` ``(X, Y, Z)`` uint8 (or None),
    voxel ``spacing`` in mm, and the canonical ``affine`` plus the file's original affine."""

    case_id: str
    image: np.ndarray
    label: np.ndarray | None
    spacing: tuple[float, ...]
    affine: np.ndarray
    original_affine: np.ndarray


def load_case(index: MSDIndex, case: MSDCase, *, canonical: bool = True) -> MSDVolume:
    """Load, validate and (by default) reorient one case to RAS+."""
    import nibabel as nib

    n_mod = len(index.modalities)

    def _load(path: Path, what: str):
        try:
            img = nib.load(str(path))
            data = np.asarray(img.dataobj)
        except Exception as exc:  # truncated gzip, bad header
            raise DataError(f"case {case.case_id!r}: cannot read {what} {path} ({type(exc).__name__}: {exc}); the file is "
                            "damaged or truncated: extract or download it again") from None
        return img, data

    img, data = _load(case.image, "image")
    orig_affine = img.affine.copy()
    if data.ndim == 3 and n_mod == 1:
        data = data[..., None]
    if data.ndim != 4 or data.shape[-1] != n_mod:
        raise DataError(f"case {case.case_id!r}: image has shape {data.shape}; dataset.json lists {n_mod} modality(ies), "
                        f"so expected (X, Y, Z){'' if n_mod == 1 else f' x {n_mod}'}; store one volume per case or list every "
                        "channel as a modality in dataset.json")
    if not np.all(np.isfinite(data)):
        raise DataError(f"case {case.case_id!r}: image contains NaN or infinite voxels; replace them (e.g. with the "
                        "background intensity) before training or prediction")
    if canonical:
        # reorient the image (as a 4D array) with the 3D orientation of its affine
        ornt = nib.orientations.io_orientation(img.affine)
        data = nib.orientations.apply_orientation(data, np.vstack([ornt, [[3, 1]]]))
        affine = img.affine @ nib.orientations.inv_ornt_aff(ornt, img.shape[:3])
    else:
        affine = img.affine
    image = np.moveaxis(data.astype(np.float32), -1, 0)
    label = None
    if case.label is not None:
        limg, ldata = _load(case.label, "label")
        if ldata.shape != img.shape[:3]:
            raise DataError(f"case {case.case_id!r}: label shape {ldata.shape} differs from image shape {img.shape[:3]}; "
                            "the label must be on the image's voxel grid (resample it onto the image first)")
        if not np.allclose(limg.affine, img.affine, atol=1e-3):
            raise DataError(f"case {case.case_id!r}: label affine differs from the image affine; the label is not "
                            "aligned with the image (resample it onto the image grid first)")
        if ldata.dtype.kind == "f":
            if not np.all(np.isfinite(ldata)) or np.any(ldata != np.round(ldata)):
                raise DataError(f"case {case.case_id!r}: label contains non-integer or NaN values; labels must be whole "
                                "numbers (a label resampled with linear interpolation? use nearest neighbour)")
        bad = sorted(set(np.unique(ldata).astype(int).tolist()) - set(range(len(index.label_names))))
        if bad:
            raise DataError(f"case {case.case_id!r}: label value(s) {bad} are not in dataset.json's labels "
                            f"{dict(enumerate(index.label_names))}; fix the label file or add the label to dataset.json")
        ldata = ldata.astype(np.uint8)
        if canonical:
            ldata = nib.orientations.apply_orientation(ldata, ornt)
        label = ldata
    spacing = tuple(float(s) for s in np.sqrt((affine[:3, :3] ** 2).sum(0)))
    return MSDVolume(case.case_id, image, label, spacing, affine, orig_affine)
