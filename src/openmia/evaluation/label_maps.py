"""Reading segmentation label maps from folders (DESIGN §4.1).

A folder holds one file per case named ``<case_id>`` + one of :data:`LABEL_SUFFIXES` (NIfTI, MHA/MHD,
NRRD/NHDR, TIFF, PNG, NPY), or any layout given by a pattern such as ``{case}/{case}_seg.nii.gz``
(:func:`index_pattern`). Every rule violation is a PredictionError naming the folder and the case.

**Axis order and spacing.** Arrays are kept in the file's voxel-index order ``(i, j, k)``: NIfTI as
nibabel reads it, MHA/NRRD transposed from SimpleITK's ``GetArrayFromImage`` order ``(z, y, x)`` back
to ITK's index order ``(x, y, z)`` — the order of ``GetSpacing()`` — so a volume saved as NIfTI and
as MHA reads as the same array with the same spacing. TIFF stacks keep tifffile's ``(z, y, x)``
order and carry no spacing (``--spacing`` is given in that array order). PNG and NPY carry none.

**Geometry.** NIfTI (with a qform or sform) and MHA/NRRD files also carry an affine: voxel index
-> world mm in RAS+ (NIfTI's convention; ITK's LPS coordinates are converted). A prediction on the
truth's grid up to axis order and flips is reoriented to the truth's voxel order; any other
difference is an error unless resampling is asked for (:func:`align_prediction`).
"""

from __future__ import annotations

import logging
import re
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from openmia.errors import PredictionError

logger = logging.getLogger(__name__)
# 8-bit image formats whose 0/255 masks are read as binary 0/1 (label 255 cannot be a class there)
EIGHT_BIT_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp")

SUFFIXES = (".nii.gz", ".nii", ".png", ".npy")
# images to predict may also be JPEG photographs (Kvasir-SEG); label maps never are (lossy)
IMAGE_SUFFIXES = (*SUFFIXES, ".jpg", ".jpeg")
ITK_SUFFIXES = (".mha", ".mhd", ".nrrd", ".nhdr")  # read with SimpleITK (optional extra openmia[io])
TIFF_SUFFIXES = (".tif", ".tiff")  # tifffile if installed, else PIL (2D only)
# what the segmentation evaluator reads ("<case_id><suffix>" by default)
LABEL_SUFFIXES = (".nii.gz", ".nii", *ITK_SUFFIXES, *TIFF_SUFFIXES, ".png", ".npy")

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
        what = "label maps" if suffixes in (SUFFIXES, LABEL_SUFFIXES) else "images"
        raise PredictionError(f"{role} folder {d} holds no {what} (expected files named <case_id>{{{','.join(suffixes)}}})")
    return out


def index_pattern(folder: str | Path, pattern: str, role: str, option: str) -> dict[str, Path]:
    """``{case_id: path}`` of the files under ``folder`` whose relative path matches ``pattern``:
    ``{case}`` stands for the case id (repeated = the same id), ``*`` for any characters within one
    name, ``/`` separates folders (e.g. MONAI SaveImage's ``{case}/{case}_seg.nii.gz``, nnU-Net's
    ``{case}.nii.gz``, an MSD task folder's ``labelsTr/{case}.nii.gz``). A pattern that matches
    nothing, a file that gives two possible case ids, or two files for one case are errors naming
    the pattern and the folder."""
    import glob as _glob

    d = Path(folder)
    if not d.is_dir():
        raise PredictionError(f"{role} folder {d} does not exist or is not a folder")
    pat = str(pattern).strip()
    tokens = re.split(r"(\{case\}|\*)", pat)
    literal = "".join(t for t in tokens if t not in ("{case}", "*"))
    if "{case}" not in tokens or "{" in literal or "}" in literal:
        raise PredictionError(f"{option} {pattern!r}: expected a file pattern with {{case}} for the case id and no other "
                              "{...} field, e.g. '{case}/{case}_seg.nii.gz' or '{case}.nii.gz'")
    if "**" in pat or pat.startswith("/") or ".." in pat.split("/") or "" in pat.split("/"):
        raise PredictionError(f"{option} {pattern!r}: expected a relative path under {d} made of names, "
                              "{case} and * (no '**', '..' or leading '/')")
    if not pat.endswith((*LABEL_SUFFIXES, "*")):
        raise PredictionError(f"{option} {pattern!r}: the pattern must end with a label-map suffix "
                              f"({', '.join(LABEL_SUFFIXES)}) or '*'")
    glob_pat, rx, seen = "", "", False
    for t in tokens:
        if t == "{case}":
            glob_pat += "*"
            rx += "(?P=case)" if seen else "(?P<case>[^/]+{lazy})"
            seen = True
        elif t == "*":
            glob_pat, rx = glob_pat + "*", rx + "[^/]*"
        else:
            glob_pat, rx = glob_pat + _glob.escape(t), rx + re.escape(t)
    lazy, greedy = re.compile(rx.replace("{lazy}", "?")), re.compile(rx.replace("{lazy}", ""))
    out: dict[str, Path] = {}
    for p in sorted(d.glob(glob_pat)):
        rel = p.relative_to(d).as_posix()
        if not p.is_file() or any(part.startswith(".") for part in rel.split("/")) or not rel.endswith(LABEL_SUFFIXES):
            continue
        m1, m2 = lazy.fullmatch(rel), greedy.fullmatch(rel)
        if m1 is None or m2 is None:
            continue
        if m1.group("case") != m2.group("case"):
            raise PredictionError(f"{role} folder {d}: {rel} matches {option} {pattern!r} with more than one case id "
                                  f"({m1.group('case')!r} or {m2.group('case')!r}); make the pattern more specific")
        cid = m1.group("case")
        if cid in out:
            raise PredictionError(f"{role} folder {d}: case {cid!r} matches {option} {pattern!r} twice "
                                  f"({out[cid].relative_to(d).as_posix()} and {rel}); make the pattern more specific")
        out[cid] = p
    if not out:
        present = sorted(q.relative_to(d).as_posix() for q in d.rglob("*") if q.is_file())[:3]
        raise PredictionError(f"{role} folder {d}: no file matches {option} {pattern!r}"
                              + (f" (it holds e.g. {', '.join(present)})" if present else " (the folder is empty)"))
    return out


@dataclass
class LabelMap:
    array: np.ndarray  # integer labels (H, W) or (D, H, W)
    spacing: tuple[float, ...] | None  # from the file header, if it has one (may be invalid: checked on use)
    path: Path | None = None  # the file it came from (for messages)
    # 4x4 voxel index -> RAS+ world mm of the array (a 2D array's third axis: the unit plane normal);
    # None when the file carries no usable geometry (PNG, NPY, TIFF, NIfTI without qform/sform)
    affine: np.ndarray | None = None


# PIL modes by channel count, for the message about multi-channel label maps
_PNG_MODES = {2: "LA", 3: "RGB", 4: "RGBA"}


def _read_itk(path: Path, case: str, error: type[Exception] = PredictionError) -> tuple[np.ndarray, tuple[float, ...], np.ndarray | None]:
    """An MHA/MHD/NRRD/NHDR file through SimpleITK: the array in ITK index order ``(x, y, z)``
    (``GetArrayFromImage`` gives ``(z, y, x)``; it is transposed back), ``GetSpacing()`` (also x, y, z)
    and the RAS+ affine (ITK's direction and origin are LPS: the x and y rows change sign)."""
    try:
        import SimpleITK as sitk
    except ImportError:
        raise PredictionError(f"case {case!r}: {path}: reading {path.suffix} label maps needs SimpleITK, an optional "
                              "extra: pip install openmia[io]") from None
    try:
        img = sitk.ReadImage(str(path))
        arr = sitk.GetArrayFromImage(img)
    except Exception as exc:  # RuntimeError from ITK for truncated or malformed files
        raise error(f"case {case!r}: cannot read {path} ({type(exc).__name__}: {str(exc).strip()[:300]})") from None
    ncomp = img.GetNumberOfComponentsPerPixel()
    if ncomp > 1:
        raise PredictionError(f"case {case!r}: {path}: label maps must be single-channel (found a {ncomp}-component "
                              f"{path.suffix} image of size {img.GetSize()}); save the labels as one integer channel")
    arr = np.ascontiguousarray(arr.transpose(tuple(range(arr.ndim))[::-1]))
    dim = img.GetDimension()
    spacing = tuple(float(s) for s in img.GetSpacing())
    k = min(dim, 3)
    direction = np.asarray(img.GetDirection(), float).reshape(dim, dim)[:k, :k]
    affine = np.eye(4)
    affine[:k, :k] = direction * np.asarray(spacing[:k])  # column j = physical step along index axis j
    affine[:k, 3] = np.asarray(img.GetOrigin(), float)[:k]
    affine[:2] *= -1  # LPS -> RAS
    return arr, spacing, affine


_TIFF_EXTRA = "reading multi-page (3D) TIFF label maps needs tifffile: pip install openmia[io]"


def _read_tiff(path: Path, case: str, error: type[Exception] = PredictionError) -> np.ndarray:
    """A TIFF label map: tifffile when installed (2D or a 3D ``(z, y, x)`` stack), else PIL (2D only)."""
    def multi(n: int, shape: tuple[int, ...]) -> PredictionError:
        return PredictionError(f"case {case!r}: {path}: label maps must be single-channel (found {n} samples per pixel, "
                               f"TIFF of shape {shape}); save the labels as a single-channel integer TIFF")

    try:
        import tifffile
    except ImportError:
        tifffile = None
    try:
        if tifffile is not None:
            with tifffile.TiffFile(str(path)) as tf:
                series = tf.series[0]
                arr, axes = series.asarray(), series.axes
        else:
            from PIL import Image

            with Image.open(path) as im:
                if getattr(im, "n_frames", 1) > 1:
                    raise PredictionError(f"case {case!r}: {path} holds {im.n_frames} pages; {_TIFF_EXTRA}")
                arr, axes = np.asarray(im), None
    except PredictionError:
        raise
    except Exception as exc:
        raise error(f"case {case!r}: cannot read {path} ({type(exc).__name__}: {exc})") from None
    if axes is None:
        if arr.ndim == 3:
            raise multi(arr.shape[2], arr.shape)
        return arr
    for ax in "SC":  # samples per pixel (RGB) or an ImageJ channel axis
        if ax in axes:
            i = axes.index(ax)
            if arr.shape[i] > 1:
                raise multi(arr.shape[i], arr.shape)
            arr, axes = arr.squeeze(i), axes.replace(ax, "")
    return arr


def read_array(path: Path, case: str, error: type[Exception] = PredictionError) -> tuple[np.ndarray, Any]:
    """The array in a label-map or image file and, for NIfTI, the nibabel image (its header and
    affine; None for the other formats); an unreadable file raises ``error`` naming the case."""
    name = path.name
    if name.endswith(ITK_SUFFIXES):
        return _read_itk(path, case, error)[0], None
    if name.endswith(TIFF_SUFFIXES):
        return _read_tiff(path, case, error), None
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


def _nifti_affine(img) -> np.ndarray | None:
    """The RAS+ affine of a NIfTI image, or None when its header declares no orientation (qform and
    sform codes 0: nibabel's fall-back affine is a guess, not a geometry to compare)."""
    try:
        if int(img.header["sform_code"]) == 0 and int(img.header["qform_code"]) == 0:
            return None
        return np.array(img.affine, float)
    except Exception:  # a header broken beyond reading its affine: no geometry (the spacing checks still run)
        return None


def _usable(affine: np.ndarray | None) -> np.ndarray | None:
    """``affine`` if finite with non-degenerate axes, else None."""
    if affine is None or affine.shape != (4, 4) or not np.all(np.isfinite(affine)):
        return None
    m = affine[:3, :3]
    norms = np.linalg.norm(m, axis=0)
    if np.any(norms <= 0) or abs(np.linalg.det(m)) <= 1e-6 * float(np.prod(norms)):
        return None
    return affine


def read_label_map(path: Path, case: str) -> LabelMap:
    """Read one label map; clear errors for unreadable files and non-integer content."""
    name = path.name
    affine = None
    if name.endswith(ITK_SUFFIXES):
        arr, zooms, affine = _read_itk(path, case)
    elif name.endswith(TIFF_SUFFIXES):
        arr, zooms = _read_tiff(path, case), None
    else:
        arr, img = read_array(path, case)
        if img is None and name.lower().endswith((".png", ".jpg", ".jpeg")) and arr.ndim == 3:
            mode = _PNG_MODES.get(arr.shape[2], f"{arr.shape[2]}-channel")
            raise PredictionError(f"case {case!r}: {path}: label maps must be single-channel (found {mode} PNG of shape "
                                  f"{arr.shape}); save the labels as a greyscale ('L') or palette ('P') PNG of integer values")
        zooms = None if img is None else tuple(float(z) for z in img.header.get_zooms())
        affine = None if img is None else _nifti_affine(img)
    keep = list(range(arr.ndim))
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
    if affine is not None:  # the affine of the kept axes (a squeezed singleton axis sits at index 0: no offset)
        if any(i > 2 for i in keep):
            affine = None
        else:
            cols = keep + [i for i in range(3) if i not in keep]
            affine = affine[:, [*cols, 3]].copy()
            if arr.ndim == 2:  # a 2D map's third axis: the unit normal of its plane
                n = np.cross(affine[:3, 0], affine[:3, 1])
                affine[:3, 2] = n / np.linalg.norm(n) if np.linalg.norm(n) > 0 else np.nan
        affine = _usable(affine)
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
    if name.lower().endswith(EIGHT_BIT_SUFFIXES) and arr.size and arr.max() == 255 and np.isin(arr, (0, 255)).all():
        # a binary mask saved as 0/255 (BUSI, Kvasir-SEG, most drawing tools): read as 0/1, as the
        # folder: reader does for training, so a run's predictions score against the user's masks
        logger.debug("case %r: %s holds only 0 and 255; read as a binary mask (255 -> label 1)", case, path)
        arr = (arr > 0).astype(np.uint8)
    return LabelMap(arr, spacing, path, affine)


# ----------------------------------------------------------------------------- geometry

# Two grids are the same when every axis step agrees to 1e-3 of its length (direction and spacing:
# the tolerance the spacing check always had) and the origins to 1e-2 of the smallest voxel size
# (float32 header round trips stay far below both).
AXIS_RTOL, ORIGIN_VOXELS = 1e-3, 1e-2


def _pad3(arr: np.ndarray) -> np.ndarray:
    return arr if arr.ndim == 3 else arr[..., None]


def _same_grid(a: np.ndarray, b: np.ndarray) -> bool:
    norms = np.linalg.norm(b[:3, :3], axis=0)
    axes_ok = np.all(np.linalg.norm(a[:3, :3] - b[:3, :3], axis=0) <= AXIS_RTOL * norms)
    return bool(axes_ok and np.linalg.norm(a[:3, 3] - b[:3, 3]) <= ORIGIN_VOXELS * norms.min())


def _fmt_affine(a: np.ndarray) -> str:
    return "[" + ", ".join("[" + ", ".join(f"{round(float(v), 3) + 0.0:g}" for v in row) + "]" for row in a[:3]) + "]"


def _fmt(values) -> str:
    return "(" + ", ".join(f"{round(float(v), 3) + 0.0:g}" for v in values) + ")"


def _reorientation(pred_affine: np.ndarray, truth_affine: np.ndarray, shape: tuple[int, ...]):
    """``(ornt, affine, shape)``: the nibabel orientation transform taking the prediction's voxel
    axes to the truth's (closest axis order and flips), and the prediction's affine and shape after
    it; None when the axes cannot be matched (oblique by about 45°)."""
    from nibabel.orientations import inv_ornt_aff, io_orientation, ornt_transform

    try:
        op, ot = io_orientation(pred_affine), io_orientation(truth_affine)
        if np.isnan(op).any() or np.isnan(ot).any():
            return None
        tr = ornt_transform(op, ot)
    except ValueError:
        return None
    new_shape = [0, 0, 0]
    for i, (ax, _) in enumerate(tr):
        new_shape[int(ax)] = shape[i]
    return tr, pred_affine @ inv_ornt_aff(tr, shape), tuple(new_shape)


def _differences(pa: np.ndarray, pshape, ta: np.ndarray, tshape) -> list[str]:
    out = []
    if tuple(pshape) != tuple(tshape):
        out.append(f"shape {tuple(pshape)} vs {tuple(tshape)}")
    pn, tn = np.linalg.norm(pa[:3, :3], axis=0), np.linalg.norm(ta[:3, :3], axis=0)
    if np.any(np.abs(pn - tn) > AXIS_RTOL * tn):
        out.append(f"voxel spacing {_fmt(pn)} vs {_fmt(tn)} mm")
    cos = np.clip(np.sum(pa[:3, :3] / pn * (ta[:3, :3] / tn), axis=0), -1.0, 1.0)
    angle = float(np.degrees(np.arccos(cos)).max())
    if np.any(np.linalg.norm(pa[:3, :3] / pn - ta[:3, :3] / tn, axis=0) > AXIS_RTOL):
        out.append(f"axes rotated by up to {angle:.3g} degrees")
    shift = pa[:3, 3] - ta[:3, 3]
    if np.linalg.norm(shift) > ORIGIN_VOXELS * tn.min():
        out.append(f"origin shifted by {_fmt(shift)} mm")
    return out or ["grids differ"]


def _resample_nearest(arr3: np.ndarray, pred_affine: np.ndarray, truth_affine: np.ndarray,
                      shape: tuple[int, ...]) -> np.ndarray:
    """The prediction sampled at the truth's voxel centres, nearest neighbour; outside its grid = 0."""
    from scipy import ndimage

    m = np.linalg.inv(pred_affine) @ truth_affine  # truth voxel index -> prediction voxel index
    return ndimage.affine_transform(arr3, m[:3, :3], offset=m[:3, 3], output_shape=shape, order=0,
                                    mode="grid-constant", cval=0, prefilter=False)


def align_prediction(case: str, pred: LabelMap, truth: LabelMap, resample: bool = False) -> tuple[LabelMap, str | None]:
    """Put a prediction on the truth's voxel grid, comparing the files' affines.

    Returns ``(label map, action)``: ``action`` None when the grids already agree (or either file
    has no geometry: the shape and spacing checks then decide), ``"reoriented"`` when the
    prediction is the same physical grid stored with another axis order or flipped axes (exact;
    nibabel ``io_orientation``/``ornt_transform``/``apply_orientation``), ``"resampled"`` when
    ``resample`` and the grids differ otherwise (shift, rotation, spacing, extent): nearest
    neighbour at the truth's voxel centres (``scipy.ndimage.affine_transform``, order 0, background
    outside the prediction). Without ``resample`` such a difference is a PredictionError naming the
    case, both files and both affines.
    """
    if pred.affine is None or truth.affine is None:
        return pred, None
    pa, ta = pred.affine, truth.affine
    p3, tshape = _pad3(pred.array), _pad3(truth.array).shape
    if p3.shape == tshape and _same_grid(pa, ta):
        return pred, None
    from nibabel.orientations import aff2axcodes, apply_orientation

    ro = _reorientation(pa, ta, p3.shape)
    if ro is not None and ro[2] == tshape and _same_grid(ro[1], ta):
        tr = ro[0]
        arr = np.ascontiguousarray(apply_orientation(p3, tr)).reshape(truth.array.shape)
        spacing = pred.spacing
        if spacing is not None:
            padded, new = [*spacing, 1.0, 1.0][:3], [0.0, 0.0, 0.0]
            for i, (ax, _) in enumerate(tr):
                new[int(ax)] = padded[i]
            spacing = tuple(new[: truth.array.ndim])
        logger.debug("case %r: prediction %s stored in %s voxel order, truth in %s; reoriented to the truth's",
                     case, pred.path, "".join(map(str, aff2axcodes(pa))), "".join(map(str, aff2axcodes(ta))))
        return LabelMap(arr, spacing, pred.path, ta), "reoriented"
    if resample:
        arr = _resample_nearest(p3, pa, ta, tshape).reshape(truth.array.shape)
        logger.debug("case %r: resampled the prediction %s (spacing %s, shape %s) onto the truth grid (spacing %s, "
                     "shape %s), nearest neighbour", case, pred.path, _fmt(np.linalg.norm(pa[:3, :3], axis=0)),
                     pred.array.shape, _fmt(np.linalg.norm(ta[:3, :3], axis=0)), truth.array.shape)
        return LabelMap(arr, truth.spacing, pred.path, ta), "resampled"
    shown_a, shown_shape = (ro[1], ro[2]) if ro is not None else (pa, p3.shape)
    what = "; ".join(_differences(shown_a, shown_shape, ta, tshape))
    flipped = ro is not None and not np.array_equal(ro[0], [[0, 1], [1, 1], [2, 1]])
    raise PredictionError(
        f"case {case!r}: the prediction {pred.path} is not on the truth's voxel grid ({what}"
        + (", after matching axis order and flips" if flipped else "") + "): "
        f"prediction affine {_fmt_affine(pa)} (spacing {_fmt(np.linalg.norm(pa[:3, :3], axis=0)[: pred.array.ndim])}, "
        f"shape {pred.array.shape}), truth {truth.path} affine {_fmt_affine(ta)} "
        f"(spacing {_fmt(np.linalg.norm(ta[:3, :3], axis=0)[: truth.array.ndim])}, shape {truth.array.shape}). "
        "Save the prediction with the truth's header (affine and shape), or pass --resample-pred (API: resample_pred=True) "
        "to resample it onto the truth grid with nearest neighbour"
    )


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
