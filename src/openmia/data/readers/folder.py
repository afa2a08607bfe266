"""Image and mask files of user data sets (PNG/JPEG, NIfTI, NPY), and the ``folder:`` layouts.

Files (the rules are documented in ``docs/data.md``):

- PNG/JPEG are 2D. Grey modes (``L``, ``1``, ``LA``, ``I;16``, ``I``, ``F``) give 1 channel, colour
  modes (``RGB``, ``RGBA``, ``P``, ``CMYK``, ``YCbCr``) 3 (alpha dropped). 8-bit modes stay uint8;
  16-bit and float images become float32.
- NIfTI (``.nii``, ``.nii.gz``) are 3D volumes ``(X, Y, Z)`` or channels-last ``(X, Y, Z, C)``,
  reoriented to the closest canonical (RAS+) orientation like ``openmia predict`` does; the voxel
  spacing comes from the affine. Always float32.
- NPY: ``(H, W)`` 2D grey, ``(H, W, 3)`` 2D RGB, ``(D, H, W)`` 3D, ``(C, D, H, W)`` 3D with C
  channels. uint8 2D arrays are 8-bit images, everything else float32; no spacing (1 mm assumed).

Masks hold whole-number label values on the image's grid (same shape; NIfTI: same affine). A
PNG mask may be grey, 1-bit or palette (the palette indices are the labels); a colour PNG mask
must be grey in colour (R = G = B). JPEG masks are binarised at >= 128 (compression noise, as for
Kvasir-SEG). Every problem is a :class:`~openmia.errors.DataError` naming the file.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from openmia.data.problems import RAISE, Problems
from openmia.errors import DataError

SUFFIXES = (".nii.gz", ".nii", ".png", ".jpg", ".jpeg", ".npy")
_GREY = {"L", "1", "LA", "I;16", "I;16B", "I;16L", "I", "F"}
_EIGHT_BIT = {"L", "1", "LA", "RGB", "RGBA", "RGBX", "P", "PA", "CMYK", "YCbCr"}


def split_name(path: Path) -> tuple[str, str] | None:
    """``(stem, suffix)`` of a supported file (suffix lower-case, ``.nii.gz`` whole); None otherwise."""
    low = path.name.lower()
    for suf in SUFFIXES:
        if low.endswith(suf) and len(low) > len(suf):
            return path.name[: -len(suf)], suf
    return None


def list_files(folder: Path, problems: Problems = RAISE) -> dict[str, Path]:
    """``{stem: path}`` of the supported files in ``folder`` (hidden files skipped; any other file,
    a sub-folder, or two files with the same stem, is a problem)."""
    out: dict[str, Path] = {}
    for p in sorted(folder.iterdir()):
        if p.name.startswith("."):
            continue
        if p.is_dir():
            problems.add(f"{p}: a sub-folder inside {folder}; nested folders are not read (move the files up)")
            continue
        sn = split_name(p)
        if sn is None:
            problems.add(f"{p}: unsupported file type; expected one of {', '.join(SUFFIXES)}")
            continue
        if sn[0] in out:
            problems.add(f"{p}: two files named {sn[0]!r} ({out[sn[0]].name} and {p.name}); keep one")
            continue
        out[sn[0]] = p
    return out


@dataclass(frozen=True)
class ImageInfo:
    """What a file's header says (nothing decoded).

    Attributes:
        dims: 2 or 3 spatial axes; ``channels``: C of the ``(C, *spatial)`` array it loads as.
        shape: spatial shape as loaded (NIfTI: after reorientation to RAS+).
        eight_bit: loads as uint8 (8-bit PNG/JPEG, uint8 2D NPY); otherwise float32.
        spacing: voxel size in mm (NIfTI only). raw_shape / affine: the file's own grid (NIfTI).
    """

    path: Path
    dims: int
    channels: int
    shape: tuple[int, ...]
    eight_bit: bool
    spacing: tuple[float, ...] | None = None
    raw_shape: tuple[int, ...] | None = None
    affine: tuple[tuple[float, ...], ...] | None = None


def _nifti(path: Path) -> Any:
    import nibabel as nib

    try:
        return nib.load(str(path))
    except Exception as exc:
        raise DataError(f"{path}: cannot read the NIfTI header ({type(exc).__name__}: {exc}); the file is damaged "
                        "or not NIfTI") from None


def _ornt(affine: np.ndarray) -> np.ndarray:
    import nibabel as nib

    return nib.orientations.io_orientation(affine)


def probe(path: Path) -> ImageInfo:
    """Read the header of one image file (see the module docstring for the rules)."""
    suf = (split_name(path) or ("", ""))[1]
    if suf in (".nii", ".nii.gz"):
        import nibabel as nib

        img = _nifti(path)
        shape = tuple(int(s) for s in img.shape)
        if len(shape) not in (3, 4):
            raise DataError(f"{path}: NIfTI image of shape {shape}; expected a 3D volume (X, Y, Z) or channels-last "
                            "(X, Y, Z, C) (store 2D images as PNG or NPY)")
        ornt = _ornt(img.affine)
        canon = [0, 0, 0]
        for i in range(3):
            canon[int(ornt[i, 0])] = shape[i]
        aff = img.affine @ nib.orientations.inv_ornt_aff(ornt, shape[:3])
        spacing = tuple(float(s) for s in np.sqrt((aff[:3, :3] ** 2).sum(0)))
        return ImageInfo(path, 3, shape[3] if len(shape) == 4 else 1, tuple(canon), False, spacing, shape[:3],
                         tuple(tuple(float(v) for v in row) for row in img.affine))
    if suf == ".npy":
        try:
            arr = np.load(path, mmap_mode="r", allow_pickle=False)
        except Exception as exc:
            raise DataError(f"{path}: not a readable .npy array ({type(exc).__name__}: {exc})") from None
        if arr.dtype.kind not in "biuf":
            raise DataError(f"{path}: dtype {arr.dtype}; expected numbers")
        s = tuple(int(v) for v in arr.shape)
        if len(s) == 2:
            return ImageInfo(path, 2, 1, s, arr.dtype == np.uint8)
        if len(s) == 3 and s[-1] == 3:
            return ImageInfo(path, 2, 3, s[:2], arr.dtype == np.uint8)
        if len(s) == 3:
            return ImageInfo(path, 3, 1, s, False)
        if len(s) == 4:
            return ImageInfo(path, 3, s[0], s[1:], False)
        raise DataError(f"{path}: array of shape {s}; expected (H, W), (H, W, 3), (D, H, W) or (C, D, H, W)")
    if suf in (".png", ".jpg", ".jpeg"):
        from PIL import Image

        try:
            with Image.open(path) as im:
                mode, (w, h) = im.mode, im.size
        except Exception as exc:
            raise DataError(f"{path}: cannot read the image ({type(exc).__name__}: {exc})") from None
        return ImageInfo(path, 2, 1 if mode in _GREY else 3, (h, w), mode in _EIGHT_BIT)
    raise DataError(f"{path}: unsupported file type; expected one of {', '.join(SUFFIXES)}")


def _finite(arr: np.ndarray, path: Path) -> np.ndarray:
    if arr.dtype.kind == "f" and not np.all(np.isfinite(arr)):
        raise DataError(f"{path}: contains NaN or infinite values; replace them (e.g. with the background intensity)")
    return arr


def read_image(info: ImageInfo) -> np.ndarray:
    """The image of ``info`` as ``(C, *spatial)``: uint8 when ``info.eight_bit``, else float32."""
    path = info.path
    try:
        if info.affine is not None:  # NIfTI
            import nibabel as nib

            img = _nifti(path)
            data = np.asarray(img.dataobj)
            data = data[..., None] if data.ndim == 3 else data
            data = nib.orientations.apply_orientation(data, np.vstack([_ornt(img.affine), [[3, 1]]]))
            return _finite(np.ascontiguousarray(np.moveaxis(data, -1, 0), dtype=np.float32), path)
        if path.suffix.lower() == ".npy":
            arr = np.load(path, allow_pickle=False)
            arr = np.moveaxis(arr, -1, 0) if (info.dims == 2 and arr.ndim == 3) else arr
            arr = arr[None] if arr.ndim == info.dims else arr
            if info.eight_bit:
                return np.ascontiguousarray(arr, dtype=np.uint8)
            return _finite(np.ascontiguousarray(arr, dtype=np.float32), path)
        from PIL import Image

        with Image.open(path) as im:
            if info.eight_bit:
                arr = np.asarray(im.convert("L" if info.channels == 1 else "RGB"))
            else:
                arr = np.asarray(im).astype(np.float32)
    except DataError:
        raise
    except Exception as exc:  # truncated PNG, damaged gzip
        raise DataError(f"{path}: cannot read the image ({type(exc).__name__}: {exc}); the file is damaged or "
                        "truncated") from None
    arr = arr[None] if arr.ndim == 2 else np.moveaxis(arr, -1, 0)
    return np.ascontiguousarray(arr)


def read_mask(path: Path, image: ImageInfo) -> np.ndarray:
    """Label values ``(*spatial)`` int32 of a mask for ``image``; its grid must be the image's."""
    info = probe(path)
    if info.dims != image.dims:
        raise DataError(f"{path}: a {info.dims}D mask for the {image.dims}D image {image.path}")
    if info.affine is not None or image.affine is not None:
        if info.affine is None or image.affine is None:
            raise DataError(f"{path}: mask and image {image.path.name} must both be NIfTI (the affine is compared)")
        if info.raw_shape != image.raw_shape:
            raise DataError(f"{path}: mask shape {info.raw_shape} differs from image shape {image.raw_shape} "
                            f"({image.path}); the mask must be on the image's voxel grid")
        if not np.allclose(info.affine, image.affine, atol=1e-3):
            raise DataError(f"{path}: mask affine differs from the affine of {image.path}; the mask is not aligned "
                            "with the image (resample it onto the image grid first)")
        if info.channels != 1:
            raise DataError(f"{path}: a mask must be one 3D volume, found {info.channels} channels")
        arr = read_image(info)[0]
    elif path.suffix.lower() == ".npy":
        try:
            arr = np.load(path, allow_pickle=False)
        except Exception as exc:
            raise DataError(f"{path}: not a readable .npy array ({type(exc).__name__}: {exc})") from None
        arr = _finite(arr.astype(np.float32) if arr.dtype.kind == "f" else arr, path)
    else:
        from PIL import Image

        try:
            with Image.open(path) as im:
                mode = im.mode
                arr = np.asarray(im.convert("RGB") if mode in ("RGBA", "RGBX", "CMYK", "YCbCr") else
                                 im.convert("L") if mode == "LA" else im)
        except Exception as exc:
            raise DataError(f"{path}: cannot read the mask ({type(exc).__name__}: {exc})") from None
        if arr.ndim == 3:
            if not (np.array_equal(arr[..., 0], arr[..., 1]) and np.array_equal(arr[..., 0], arr[..., 2])):
                raise DataError(f"{path}: a colour mask; save label values as a grey or palette PNG (0 = background, "
                                "1, 2, ... the classes)")
            arr = arr[..., 0]
        if path.suffix.lower() in (".jpg", ".jpeg"):
            arr = (arr >= 128).astype(np.uint8)  # JPEG noise: binarised, as Kvasir-SEG
    if tuple(arr.shape) != tuple(image.shape):
        raise DataError(f"{path}: mask shape {tuple(arr.shape)} differs from image shape {tuple(image.shape)} "
                        f"({image.path}); the mask must be on the image's grid")
    if arr.dtype.kind == "f" and np.any(arr != np.round(arr)):
        raise DataError(f"{path}: non-integer label values; labels must be whole numbers (a mask resampled with linear "
                        "interpolation? use nearest neighbour)")
    if arr.size and arr.min() < 0:
        raise DataError(f"{path}: negative label value {arr.min()}; expected 0 = background, 1, 2, ...")
    arr = arr.astype(np.int32)
    if arr.size and arr.max() == 255 and np.isin(arr, (0, 255)).all():
        arr = (arr > 0).astype(np.int32)  # a binary mask saved as 0/255 (255 can be no class: K < 256)
    return arr


# --------------------------------------------------------------------------- dataset.json / labels


def read_json(path: Path) -> dict[str, Any]:
    """A JSON object from ``path``; a DataError naming the file otherwise."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise DataError(f"{path}: cannot read ({exc})") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise DataError(f"{path}: expected a JSON object, found a {type(data).__name__}")
    return data


def parse_labels(labels: Any, where: str) -> tuple[str, ...]:
    """Label names by value from MSD ``{"0": "background", ...}`` or nnU-Net ``{"background": 0, ...}``."""
    if not isinstance(labels, dict) or not labels:
        raise DataError(f"{where}: 'labels' must be a non-empty object, found {labels!r}")
    if all(isinstance(v, str) for v in labels.values()):  # MSD: value -> name
        try:
            by_value = {int(k): v for k, v in labels.items()}
        except ValueError:
            raise DataError(f"{where}: 'labels' keys must be label values 0, 1, ... (MSD) or names (nnU-Net)") from None
    else:  # nnU-Net: name -> value
        by_value = {}
        for name, v in labels.items():
            if isinstance(v, (list, tuple)):
                raise DataError(f"{where}: label {name!r} is a region ({v}); region-based labels are not supported, "
                                "give one value per label")
            if isinstance(v, bool) or not isinstance(v, int):
                raise DataError(f"{where}: label {name!r} has value {v!r}; expected an integer")
            if v in by_value:
                raise DataError(f"{where}: labels {by_value[v]!r} and {name!r} share the value {v}")
            by_value[v] = name
    if sorted(by_value) != list(range(len(by_value))):
        raise DataError(f"{where}: label values must be 0..K-1 without gaps, found {sorted(by_value)}")
    if len(by_value) < 2:
        raise DataError(f"{where}: needs background (0) and at least one label, found {by_value}")
    return tuple(by_value[i] for i in range(len(by_value)))


def folder_meta(root: Path) -> dict[str, Any]:
    """The optional ``dataset.json`` of a ``folder:`` set: ``modality`` (a name, or MSD's
    ``{"0": name}``) and, for segmentation, ``labels``."""
    p = root / "dataset.json"
    if not p.is_file():
        return {}
    meta = read_json(p)
    out: dict[str, Any] = {}
    mod = meta.get("modality")
    if isinstance(mod, dict):
        mods = {str(v) for v in mod.values()}
        if len(mods) != 1:
            raise DataError(f"{p}: 'modality' {mod}: a folder: set has one modality for every channel")
        mod = mods.pop()
    if mod is not None:
        if not isinstance(mod, str):
            raise DataError(f"{p}: 'modality' must be a name such as 'CT', 'MRI' or 'XR', found {mod!r}")
        out["modality"] = mod
    if "labels" in meta:
        out["labels"] = parse_labels(meta["labels"], str(p))
    if "licence" in meta or "license" in meta:
        out["licence"] = str(meta.get("licence", meta.get("license")))
    return out


# --------------------------------------------------------------------------- folder: layouts


@dataclass(frozen=True)
class ClassCase:
    """One classification case: ``label`` a class index, or a 0/1 tuple (multi-label)."""

    case_id: str
    image: Path
    label: int | tuple[int, ...]


@dataclass(frozen=True)
class ClassIndex:
    """A classification folder: class (or label) names, the cases, and the layout's name."""

    label_names: tuple[str, ...]
    multi_label: bool
    cases: tuple[ClassCase, ...]
    layout: str


@dataclass(frozen=True)
class SegCase:
    """One segmentation case: its image file(s) (several = one per channel, nnU-Net) and mask."""

    case_id: str
    images: tuple[Path, ...]
    mask: Path | None


def is_segmentation_folder(root: Path) -> bool:
    """True for the ``images/`` + ``masks/`` layout (a ``masks/`` folder decides it)."""
    return (root / "masks").is_dir()


def index_image_mask(root: Path, problems: Problems = RAISE) -> tuple[SegCase, ...]:
    """The cases of ``images/`` + ``masks/`` paired by file stem (each unpaired file is a problem)."""
    if not (root / "images").is_dir():
        raise DataError(f"{root}: has masks/ but no images/; a segmentation folder holds images/ and masks/ with "
                        "matching file names")
    imgs, masks = list_files(root / "images", problems), list_files(root / "masks", problems)
    for stem in sorted(set(imgs) - set(masks)):
        problems.add(f"{imgs[stem]}: image without a mask (expected masks/{stem} with one of {', '.join(SUFFIXES)})")
    for stem in sorted(set(masks) - set(imgs)):
        problems.add(f"{masks[stem]}: mask without an image (expected images/{stem} with one of {', '.join(SUFFIXES)})")
    cases = tuple(SegCase(s, (imgs[s],), masks[s]) for s in sorted(set(imgs) & set(masks)))
    if not cases:
        raise DataError(f"{root}: no image/mask pairs in images/ and masks/")
    return cases


def index_classes(root: Path, problems: Problems = RAISE) -> ClassIndex:
    """A classification folder: ``labels.csv``, else one sub-folder per class (sorted names)."""
    if (root / "labels.csv").is_file():
        return _labels_csv(root, root / "labels.csv", problems)
    if (root / "images").is_dir():
        raise DataError(f"{root}: has images/ but no masks/; a segmentation folder needs both, a classification "
                        "folder one sub-folder per class or a labels.csv")
    dirs = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if len(dirs) < 2:
        raise DataError(f"{root}: found {len(dirs)} class folder(s) {[d.name for d in dirs]}; expected one sub-folder per "
                        "class (at least two), a labels.csv (path,label), or images/ + masks/ for segmentation")
    cases = []
    for k, d in enumerate(dirs):
        files = list_files(d, problems)
        if not files:
            problems.add(f"{d}: empty class folder; put the images of class {d.name!r} there or remove the folder")
        cases += [ClassCase(f"{d.name}/{stem}", p, k) for stem, p in files.items()]
    return ClassIndex(tuple(d.name for d in dirs), False, tuple(cases), "class folders")


def _labels_csv(root: Path, path: Path, problems: Problems) -> ClassIndex:
    import csv

    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            rows = [(n + 1, row) for n, row in enumerate(csv.reader(f)) if any(v.strip() for v in row)]
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise DataError(f"{path}: not a readable CSV file ({type(exc).__name__}: {exc})") from None
    if not rows:
        raise DataError(f"{path}: empty; expected a header path,label (or path,<one 0/1 column per label>)")
    cols = [c.strip() for c in rows[0][1]]
    if len(cols) < 2 or cols[0].lower() != "path":
        raise DataError(f"{path}, line 1: header {cols}; expected path,label or path,<label 1>,<label 2>,...")
    multi = len(cols) > 2
    entries: list[tuple[str, Path, Any]] = []
    seen: set[str] = set()
    for line, row in rows[1:]:
        where = f"{path}, line {line}"
        if len(row) != len(cols):
            problems.add(f"{where}: {len(row)} field(s), expected {len(cols)} ({','.join(cols)})")
            continue
        rel = row[0].strip()
        sn = split_name(Path(rel))
        if sn is None:
            problems.add(f"{where}: {rel!r} is not a supported image file ({', '.join(SUFFIXES)})")
            continue
        cid = rel[: -len(sn[1])].replace("\\", "/")
        if cid in seen:
            problems.add(f"{where}: {rel!r} is listed twice")
            continue
        seen.add(cid)
        if not (root / rel).is_file():
            problems.add(f"{where}: image {root / rel} does not exist")
            continue
        if multi:
            vals = [v.strip() for v in row[1:]]
            bad = [c for c, v in zip(cols[1:], vals) if v not in ("0", "1")]
            if bad:
                problems.add(f"{where}: multi-label columns hold 0 or 1; found {dict(zip(cols[1:], vals))}")
                continue
            entries.append((cid, root / rel, tuple(int(v) for v in vals)))
        else:
            if not row[1].strip():
                problems.add(f"{where}: empty label")
                continue
            entries.append((cid, root / rel, row[1].strip()))
    if multi:
        return ClassIndex(tuple(cols[1:]), True, tuple(ClassCase(*e) for e in entries), "labels.csv (multi-label)")
    names = sorted({e[2] for e in entries})
    if all(n.lstrip("-").isdigit() for n in names):
        names.sort(key=int)
    if len(names) < 2 and not problems.items:
        raise DataError(f"{path}: found {len(names)} class(es) {names}; classification needs at least two")
    return ClassIndex(tuple(names), False, tuple(ClassCase(c, p, names.index(lab)) for c, p, lab in entries), "labels.csv")
