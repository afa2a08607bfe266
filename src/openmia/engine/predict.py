"""Predicting with a trained run on new images: ``openmia predict --model RUN_DIR --input DIR --out DIR``.

Segmentation runs write one label map per input, in the input's format; NIfTI outputs keep the
input's affine and header geometry exactly (only the data type changes to uint8). Images larger
than the training size go through sliding-window inference (Gaussian weighting, overlap 0.5,
optional flip TTA). Sets trained on whole images resized to a square (``spec.resized_input``: BUSI,
Kvasir-SEG) are predicted the same way as their evaluation scored them: each image resized to the
training size (bilinear) and predicted whole at every TTA scale (no windows), and the logits
resized back to the image's own size (bilinear) before the argmax. Classification runs
write ``predictions.csv`` in the evaluator's format. What a run writes is its Task's business
(``Task.predict``); this module loads the run, reads the inputs and holds the shared helpers.

Outputs never replace inputs: an output folder that is, contains or lies inside the input folder
is refused, as is a non-empty one without ``overwrite``. An image that cannot be read or does not
fit the run is reported at the end (all such images at once) with a PredictionError, after the
other images' outputs are written.

Intensities: the run's data spec states the normalisation. ``uint8_unit`` needs uint8 images
(another dtype is an error, never a silent rescale); ``float`` sets (e.g. MSD MRI) apply the spec's
modality rule to the raw intensities, as the training loader did. 3D NIfTI inputs are reoriented
to RAS+ like the training data, predicted, and the label map is oriented back to the input's own
voxel order before writing.

Memory (a 512 x 512 x 300 CT): the float32 image, one float32 ``(K, *spatial)`` accumulator and one
weight map; the argmax runs slab by slab so no int64 label volume is ever held.
"""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from openmia import fileio
from openmia.errors import DataError, OpenmiaError, PredictionError, RunDirError

# the progress callback of the running predict_folder, reported by iter_input_arrays
_PROGRESS: ContextVar[Callable[[int, int], None] | None] = ContextVar("openmia_predict_progress", default=None)


@dataclass
class LoadedRun:
    """A finished run, ready to predict: the model (kept weights, eval mode, on ``device``), its
    Task (without splits), the data spec and the config."""

    model: Any
    task: Any
    spec: Any
    cfg: Any
    run_dir: Path
    device: Any = None


def load_run(run_dir: str | Path, *, device: str | None = None) -> LoadedRun:
    """Model (best checkpoint, eval mode), task and data spec of a finished run; ``device`` (e.g.
    ``cpu``, ``cuda``) overrides the run's ``train.device``."""
    import torch

    from openmia.config import load_run_config, task_class
    from openmia.engine.device import resolve_device
    from openmia.engine.run_dir import check_run_dir

    rd = check_run_dir(run_dir)
    ck = rd / "checkpoints" / "best.pt"
    if not ck.is_file():
        raise RunDirError(f"{rd}: no checkpoints/best.pt; the run has not finished an epoch (resume it with `openmia train --resume {rd}`)")
    cfg = load_run_config(rd / "config.yaml")
    dev = resolve_device(device or cfg.train.device)
    task_cls = task_class(cfg.task)
    spec = task_cls.data_spec(cfg)
    task = task_cls(cfg, spec, None, dev)
    model = task.build_model()
    try:
        model.load_state_dict(torch.load(ck, map_location="cpu", weights_only=True)["model"])
    except Exception as exc:  # torch raises many kinds for a torn or foreign file
        raise RunDirError(f"{ck}: cannot load the checkpoint into {cfg.model.name} ({type(exc).__name__}: {exc})") from exc
    model.to(dev).eval()
    return LoadedRun(model, task, spec, cfg, rd, dev)


def to_batch(arr: np.ndarray, spec, case: str, path: Path) -> np.ndarray:
    """``(1, C, *spatial)`` from a file's array, checked against the run's spec."""
    if arr.ndim == spec.dims and spec.channels == 1:
        arr = arr[None]
    elif arr.ndim == spec.dims + 1 and spec.dims == 2 and arr.shape[-1] == spec.channels and arr.shape[0] != spec.channels:
        arr = np.moveaxis(arr, -1, 0)  # PNG (H, W, C)
    if arr.ndim != spec.dims + 1 or arr.shape[0] != spec.channels:
        raise DataError(f"case {case!r}: {path.name} has shape {arr.shape}; the model expects {spec.channels} channel(s) "
                        f"and {spec.dims} spatial axes")
    norm = getattr(spec.normalization, "value", spec.normalization)
    if norm == "uint8_unit" and arr.dtype != np.uint8:
        raise DataError(f"case {case!r}: {path.name} has dtype {arr.dtype}, but the model was trained on uint8 images "
                        "(normalization uint8_unit); convert the images to 0-255 uint8 the same way as the training data")
    if norm == "float":
        from openmia.transforms.intensity import normalize_for_modality

        if not np.all(np.isfinite(arr)):
            raise DataError(f"case {case!r}: {path.name} contains NaN or infinite voxels")
        arr = np.stack([normalize_for_modality(c, spec.modality) for c in arr])
    return arr[None]


def argmax_slabs(logits, slab: int = 16) -> np.ndarray:
    """uint8 argmax over classes of ``(1, K, *spatial)``, ``slab`` planes of the first axis at a time."""
    out = np.empty(tuple(logits.shape[2:]), np.uint8)
    for z in range(0, out.shape[0], slab):
        out[z : z + slab] = logits[0, :, z : z + slab].argmax(0).numpy().astype(np.uint8)
    return out


def class_prob_slabs(logits, k: int, slab: int = 16) -> np.ndarray:
    """float32 softmax probability of class ``k`` from ``(1, K, *spatial)`` logits, slab by slab
    (computed only when ``eval.fill_empty`` needs it)."""
    out = np.empty(tuple(logits.shape[2:]), np.float32)
    for z in range(0, out.shape[0], slab):
        out[z : z + slab] = logits[0, :, z : z + slab].float().softmax(0)[k].numpy()
    return out


def _canonical(arr: np.ndarray, nifti, dims: int):
    """Reorient a 3D NIfTI array (``(X, Y, Z)`` or channels-last 4D) to RAS+; returns it and the
    orientation to undo it (None when nothing to do)."""
    if nifti is None or dims != 3:
        return arr, None
    import nibabel as nib

    ornt = nib.orientations.io_orientation(nifti.affine)
    if np.array_equal(ornt, nib.orientations.axcodes2ornt("RAS")):
        return arr, None
    full = np.vstack([ornt, [[3, 1]]]) if arr.ndim == 4 else ornt
    return nib.orientations.apply_orientation(arr, full), ornt


def iter_input_arrays(input_dir: str | Path, spec, failures: list[str] | None = None):
    """Yield ``(case_id, path, batch (1, C, *spatial), meta)`` for every image in ``input_dir``,
    checked against the run's spec (3D NIfTI reoriented to RAS+ like the training data; ``meta``
    holds the NIfTI image and the orientation to undo). An image that cannot be read or does
    not fit is appended to ``failures`` (one line each) and skipped, or raised when ``failures``
    is None."""
    from openmia.evaluation.label_maps import IMAGE_SUFFIXES, index_folder, read_array

    files = index_folder(input_dir, "input", IMAGE_SUFFIXES)
    progress = _PROGRESS.get()
    for done, (cid, path) in enumerate(files.items()):
        if progress is not None and done:
            progress(done, len(files))
        try:
            arr, nifti = read_array(path, cid, DataError)
            arr, ornt = _canonical(arr, nifti, spec.dims)
            batch = to_batch(arr, spec, cid, path)
        except OpenmiaError as exc:
            if failures is None:
                raise
            failures.append(str(exc))
            continue
        del arr
        yield cid, path, batch, {"nifti": nifti, "ornt": ornt}
    if progress is not None:
        progress(len(files), len(files))


def predict_folder(run_dir: str | Path, input_dir: str | Path, out_dir: str | Path, *, tta: bool = False,
                   scales: list[float] | tuple[float, ...] | None = None, overlap: float = 0.5,
                   batch_size: int = 4, device: str | None = None, overwrite: bool = False,
                   progress: Callable[[int, int], None] | None = None,
                   spacing: tuple[float, ...] | None = None) -> dict[str, Any]:
    """Predict every image in ``input_dir`` into ``out_dir``; returns ``{"cases": n, "out": path, "task": ...}``.
    ``scales``: segmentation multi-scale TTA factors (None = the run's ``segmentation.tta_scales``).
    ``progress``: called ``f(done, total)`` as images are predicted (tasks reading their inputs
    with :func:`iter_input_arrays`). ``spacing``: voxel size in mm per axis for the images (landmark
    runs: written beside the points for the evaluator; overrides the NIfTI header's)."""
    if not Path(input_dir).is_dir():
        raise DataError(f"input folder {input_dir} does not exist or is not a folder")
    out = fileio.prepare_output_dir(out_dir, inputs=(input_dir,), overwrite=overwrite, atomic=False)
    run = load_run(run_dir, device=device)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise fileio.output_error(out, exc, "create") from exc
    failures: list[str] = []
    token = _PROGRESS.set(progress)
    try:
        res = run.task.predict(run, Path(input_dir), out, tta=tta, scales=scales, overlap=overlap,
                               batch_size=batch_size, failures=failures, spacing=spacing)
    finally:
        _PROGRESS.reset(token)
    if failures:
        raise PredictionError(f"{len(failures)} input image(s) could not be predicted (the other {res['cases']} were "
                              f"written to {out}):\n  " + "\n  ".join(failures))
    return res


def write_label_map(labels: np.ndarray, src: Path, out: Path, cid: str, meta: dict[str, Any]) -> Path:
    """Write a label map in the input's format: NIfTI with the input's geometry, PNG for 8-bit
    photographs (always lossless), else ``.npy``; ``meta`` is :func:`iter_input_arrays`'s."""
    nifti, ornt = meta.get("nifti"), meta.get("ornt")
    if ornt is not None:  # back to the file's own voxel order: the input's affine applies unchanged
        import nibabel as nib

        back = nib.orientations.ornt_transform(nib.orientations.axcodes2ornt("RAS"), ornt)
        labels = nib.orientations.apply_orientation(labels, back)
    labels = np.ascontiguousarray(labels)
    if nifti is not None:
        import nibabel as nib

        header = nifti.header.copy()
        header.set_data_dtype(np.uint8)
        data = nib.Nifti1Image(labels, nifti.affine, header).to_bytes()
        if src.name.endswith(".gz"):
            import gzip

            data = gzip.compress(data, compresslevel=6)
        dst = out / src.name
        with fileio.atomic_path(dst) as tmp:
            tmp.write_bytes(data)
        return dst
    if src.name.endswith((".png", ".jpg", ".jpeg")):  # label maps are always lossless PNG
        from PIL import Image

        dst = out / f"{cid}.png"
        with fileio.atomic_path(dst) as tmp:
            Image.fromarray(labels).save(tmp, format="PNG")
        return dst
    return fileio.save_npy(out / f"{cid}.npy", labels)
