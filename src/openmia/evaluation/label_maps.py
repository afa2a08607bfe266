"""Reading segmentation label maps from folders (DESIGN §4.1).

A folder holds one file per case named ``<case_id>.nii.gz``, ``.nii``, ``.png`` or ``.npy``.
Spacing comes from the NIfTI header (voxel sizes, in the array's axis order) or from the caller
(``--spacing``); PNG and NPY files have no spacing of their own. Every rule violation is a
PredictionError naming the folder and the case.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from openmia.errors import PredictionError

SUFFIXES = (".nii.gz", ".nii", ".png", ".npy")
# images to predict may also be JPEG photographs (Kvasir-SEG); label maps never are (lossy)
IMAGE_SUFFIXES = (*SUFFIXES, ".jpg", ".jpeg")

# np.load parses the .npy header with ast.literal_eval, and CPython 3.11.7 raises "SystemError: AST
# constructor recursion depth mismatch" when two threads build ASTs at once (cpython gh-106905);
# the evaluator reads cases from a thread pool, so .npy loads take turns.
_NPY_LOCK = threading.Lock()


def load_npy(path: Path) -> np.ndarray:
    """``np.load`` safe to call from the evaluator's worker threads (no pickles)."""
    with _NPY_LOCK:
        return np.load(path, allow_pickle=False)


def case_id_of(path: Path, suffixes: tuple[str, ...] = SUFFIXES) -> str | None:
    """The case id of a label-map file name, or ``None`` if the suffix is not supported."""
    name = path.name
    for suf in suffixes:
        if name.endswith(suf) and len(name) > len(suf):
            return name[: -len(suf)]
    return None


def index_folder(folder: str | Path, role: str, suffixes: tuple[str, ...] = SUFFIXES) -> dict[str, Path]:
    """``{case_id: path}`` of a prediction or truth folder (files with one of ``suffixes``);
    duplicate ids are an error."""
    d = Path(folder)
    if not d.is_dir():
        raise PredictionError(f"{role} folder {d} does not exist or is not a folder")
    out: dict[str, Path] = {}
    for p in sorted(d.iterdir()):
        if not p.is_file() or p.name.startswith("."):
            continue
        cid = case_id_of(p, suffixes)
        if cid is None:
            continue
        if cid in out:
            raise PredictionError(f"{role} folder {d}: case {cid!r} appears twice ({out[cid].name} and {p.name}); keep one file per case")
        out[cid] = p
    if not out:
        what = "label maps" if suffixes == SUFFIXES else "images"
        raise PredictionError(f"{role} folder {d} holds no {what} (expected files named <case_id>{{{','.join(suffixes)}}})")
    return out


@dataclass
class LabelMap:
    array: np.ndarray  # integer labels (H, W) or (D, H, W)
    spacing: tuple[float, ...] | None  # from the file header, if it has one (may be invalid: checked on use)
    path: Path | None = None  # the file it came from (for messages)


# PIL modes by channel count, for the message about multi-channel label maps
_PNG_MODES = {2: "LA", 3: "RGB", 4: "RGBA"}


def read_array(path: Path, case: str, error: type[Exception] = PredictionError) -> tuple[np.ndarray, Any]:
    """The array in a ``.nii.gz``/``.nii``/``.png``/``.npy`` file and, for NIfTI, the nibabel image
    (its header and affine); an unreadable file raises ``error`` naming the case."""
    name = path.name
    try:
        if name.endswith((".nii.gz", ".nii")):
            import nibabel as nib

            img = nib.load(str(path))
            return np.asarray(img.dataobj), img
        if name.endswith((".png", ".jpg", ".jpeg")):
            from PIL import Image

            with Image.open(path) as im:
                return np.asarray(im), None
        return load_npy(path), None  # the lock: read_array also runs in the evaluator's threads
    except Exception as exc:  # truncated gzip, bad header, pickled object, ...
        raise error(f"case {case!r}: cannot read {path} ({type(exc).__name__}: {exc})") from None


def read_label_map(path: Path, case: str) -> LabelMap:
    """Read one label map; clear errors for unreadable files and non-integer content."""
    arr, img = read_array(path, case)
    if img is None and path.name.lower().endswith((".png", ".jpg", ".jpeg")) and arr.ndim == 3:
        mode = _PNG_MODES.get(arr.shape[2], f"{arr.shape[2]}-channel")
        raise PredictionError(f"case {case!r}: {path}: label maps must be single-channel (found {mode} PNG of shape "
                              f"{arr.shape}); save the labels as a greyscale ('L') or palette ('P') PNG of integer values")
    zooms = None if img is None else tuple(float(z) for z in img.header.get_zooms())
    if arr.ndim > 3:  # (X, Y, Z, 1, ...) NIfTI: drop singleton axes, and their voxel sizes with them
        keep = [i for i, n in enumerate(arr.shape) if n != 1]
        arr = np.squeeze(arr)
        zooms = None if zooms is None else tuple(zooms[i] for i in keep if i < len(zooms))
    if arr.ndim not in (2, 3):
        raise PredictionError(f"case {case!r}: {path} has {arr.ndim} dimensions (shape {arr.shape}); expected a 2D or 3D label map")
    spacing = None if zooms is None else zooms[: arr.ndim]
    if spacing is not None and len(spacing) != arr.ndim:
        raise PredictionError(f"case {case!r}: {path} has {len(spacing)} voxel size(s) {spacing} in its NIfTI header for a "
                              f"{arr.ndim}D label map; expected one per axis — fix the header or pass --spacing")
    if arr.dtype.kind == "f":
        if not np.all(np.isfinite(arr)):
            raise PredictionError(f"case {case!r}: {path} contains NaN or infinite values; expected integer labels")
        if np.any(arr != np.round(arr)):
            raise PredictionError(f"case {case!r}: {path} contains non-integer values; expected integer labels")
        arr = arr.astype(np.int64)
    elif arr.dtype.kind not in "biu":
        raise PredictionError(f"case {case!r}: {path} has dtype {arr.dtype}; expected integer labels")
    if arr.dtype.kind == "i" and arr.size and arr.min() < 0:
        raise PredictionError(f"case {case!r}: {path} contains negative labels (min {arr.min()}); expected 0 = background, 1..K")
    return LabelMap(arr, spacing, path)


def _valid(spacing: tuple[float, ...]) -> bool:
    return all(np.isfinite(z) and z > 0 for z in spacing)


def resolve_spacing(case: str, pred: LabelMap, truth: LabelMap, given: tuple[float, ...] | None,
                    ndim: int) -> tuple[float, ...]:
    """Spacing for a case: ``--spacing`` if given, else the truth header's (which the prediction's
    header must match to 1e-3 relative), else 1 mm isotropic is an error for 3D (no silent guess).
    A header spacing that is NaN, infinite or not positive is an error naming the file."""
    if given is not None:
        if len(given) == 1:
            given = tuple(given) * ndim
        if len(given) != ndim:
            raise PredictionError(f"case {case!r}: --spacing has {len(given)} values but the label maps are {ndim}D")
        if not _valid(given):
            raise PredictionError(f"--spacing: expected positive finite voxel sizes in mm, found {tuple(given)}")
        return tuple(given)
    for lm, role in ((truth, "truth"), (pred, "prediction")):
        if lm.spacing is not None and not _valid(lm.spacing):
            shown = "(" + ", ".join(f"{z:g}" for z in lm.spacing) + ")"
            raise PredictionError(f"case {case!r}: the {role} file {lm.path} has voxel spacing {shown} in its NIfTI header; "
                                  "expected positive finite sizes in mm — fix the header or pass --spacing (e.g. --spacing 1.5,0.8,0.8)")
    if truth.spacing is not None:
        if pred.spacing is not None and not np.allclose(pred.spacing, truth.spacing, rtol=1e-3):
            raise PredictionError(f"case {case!r}: prediction spacing {pred.spacing} differs from truth spacing {truth.spacing}")
        return truth.spacing
    if ndim == 2:
        return (1.0, 1.0)  # pixel units for images without a header, stated in the summary
    raise PredictionError(f"case {case!r}: the files carry no voxel spacing; pass --spacing (e.g. --spacing 1.5,0.8,0.8)")
