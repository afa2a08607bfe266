"""Predicting with a trained run on new images: ``openmia predict --model RUN_DIR --input DIR --out DIR``.

Segmentation runs write one label map per input, in the input's format; NIfTI outputs keep the
input's affine and header geometry exactly (only the data type changes to uint8). Images larger
than the training size go through sliding-window inference (Gaussian weighting, overlap 0.5,
optional flip TTA). Sets trained on whole images resized to a square (``spec.resized_input``: BUSI,
Kvasir-SEG) are predicted the same way as their evaluation scored them: each image resized to the
training size (bilinear) and predicted whole at every TTA scale (no windows), and the logits
resized back to the image's own size (bilinear) before the argmax. Classification runs
write ``predictions.csv`` in the evaluator's format.

Intensities: the run's data spec states the normalisation. ``uint8_unit`` needs uint8 images
(another dtype is an error, never a silent rescale); ``float`` sets (e.g. MSD MRI) apply the spec's
modality rule to the raw intensities, as the training loader did. 3D NIfTI inputs are reoriented
to RAS+ like the training data, predicted, and the label map is oriented back to the input's own
voxel order before writing.

Memory (a 512 x 512 x 300 CT): the float32 image, one float32 ``(K, *spatial)`` accumulator and one
weight map; the argmax runs slab by slab so no int64 label volume is ever held.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from openmia import fileio
from openmia.errors import DataError, RunDirError


@dataclass
class LoadedRun:
    model: Any
    task: Any
    spec: Any
    cfg: Any


def load_run(run_dir: str | Path) -> LoadedRun:
    """Model (best checkpoint, eval mode), task and data spec of a finished run."""
    import torch

    from openmia.config import load_config
    from openmia.data.catalog import get_spec
    from openmia.engine.trainer import check_run_dir
    from openmia.models import build_model

    rd = check_run_dir(run_dir)
    ck = rd / "checkpoints" / "best.pt"
    if not ck.is_file():
        raise RunDirError(f"{rd}: no checkpoints/best.pt; the run has not finished an epoch (resume it with `openmia train --resume {rd}`)")
    cfg = load_config(rd / "config.yaml")
    spec = get_spec(cfg.data.dataset, cfg.data.size)
    kwargs = dict(cfg.model.kwargs)
    if spec.task in ("detection", "counting"):
        from openmia.data.object_sets import ANNOTATION, base_name
        from openmia.engine.object_trainer import model_kwargs

        kwargs = model_kwargs(cfg, spec, ANNOTATION[base_name(spec.name)])
    model = build_model(cfg.model.name, in_channels=spec.channels, num_classes=spec.num_classes, dims=spec.dims,
                        input_size=spec.size, **kwargs)
    try:
        model.load_state_dict(torch.load(ck, map_location="cpu", weights_only=True)["model"])
    except Exception as exc:
        raise RunDirError(f"{ck}: cannot load the checkpoint into {cfg.model.name} ({type(exc).__name__}: {exc})") from None
    model.eval()
    if spec.task in ("detection", "counting"):
        task = None  # the model decodes its own outputs (detect / count)
    elif spec.task == "segmentation":
        from openmia.tasks.segmentation import SegmentationTask

        task = SegmentationTask(spec.num_classes)
    else:
        from openmia.tasks.classification import ClassificationTask

        task = ClassificationTask(spec.task_type, spec.num_classes)
    return LoadedRun(model, task, spec, cfg)


def _to_batch(arr: np.ndarray, spec, case: str, path: Path) -> np.ndarray:
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


def _argmax_slabs(logits, slab: int = 16) -> np.ndarray:
    """uint8 argmax over classes of ``(1, K, *spatial)``, ``slab`` planes of the first axis at a time."""
    out = np.empty(tuple(logits.shape[2:]), np.uint8)
    for z in range(0, out.shape[0], slab):
        out[z : z + slab] = logits[0, :, z : z + slab].argmax(0).numpy().astype(np.uint8)
    return out


def _class_prob_slabs(logits, k: int, slab: int = 16) -> np.ndarray:
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


def predict_folder(run_dir: str | Path, input_dir: str | Path, out_dir: str | Path, *, tta: bool = False,
                   scales: list[float] | tuple[float, ...] | None = None, overlap: float = 0.5,
                   batch_size: int = 4) -> dict[str, Any]:
    """Predict every image in ``input_dir``; returns ``{"cases": n, "out": path, "task": ...}``.
    ``scales``: segmentation multi-scale TTA factors (None = the run's ``eval.tta_scales``)."""
    import torch

    from openmia.config import check_tta_scales
    from openmia.engine.inference import flip_tta_logits, multiscale_logits, sliding_window_inference
    from openmia.evaluation.label_maps import IMAGE_SUFFIXES, index_folder, read_array
    from openmia.transforms.intensity import to_float_tensor
    from openmia.transforms.postprocess import postprocess_labels

    run = load_run(run_dir)
    spec, model = run.spec, run.model
    scales = tuple(run.cfg.eval.tta_scales if scales is None else scales)
    check_tta_scales(scales, "--tta-scales")
    if scales != (1.0,) and spec.task != "segmentation":
        raise RunDirError(f"{run_dir} is a {spec.task} run; multi-scale TTA (--tta-scales) applies to segmentation")
    if spec.task in ("detection", "counting"):
        raise RunDirError(f"{run_dir} is a {spec.task} run; use `openmia count --model {run_dir} IMAGES... --out DIR` "
                          "(counts, detections and overlays)")
    files = index_folder(input_dir, "input", IMAGE_SUFFIXES)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    with torch.no_grad():
        for cid, path in files.items():
            arr, nifti = read_array(path, cid, DataError)
            arr, ornt = _canonical(arr, nifti, spec.dims)
            batch = _to_batch(arr, spec, cid, path)
            del arr
            shape = batch.shape[2:]
            if spec.task == "segmentation" and spec.resized_input:  # as the training images were made
                from openmia.data.segmentation_sets import resize_image

                batch = resize_image(batch[0], spec.size)[None]
            x = to_float_tensor(batch, spec.normalization)
            del batch
            if spec.task == "segmentation":
                if spec.resized_input:  # whole images at every scale, as the run's own evaluation scored them
                    logits = multiscale_logits(x, lambda xs: flip_tta_logits(model, xs, tta), scales)
                else:
                    logits = multiscale_logits(x, lambda xs: sliding_window_inference(
                        xs, model, spec.spatial_shape, overlap=overlap, batch_size=batch_size, flip_tta=tta), scales)
                del x
                if tuple(logits.shape[2:]) != shape:  # back to the input's size (resized_input sets)
                    logits = torch.nn.functional.interpolate(logits, size=shape, mode="bilinear", align_corners=False)
                labels = postprocess_labels(_argmax_slabs(logits), run.cfg.eval.postprocess, spec.num_classes,
                                            fill_empty=run.cfg.eval.fill_empty, prob=lambda k: _class_prob_slabs(logits, k))
                del logits
                if ornt is not None:  # back to the file's own voxel order: the input's affine applies unchanged
                    import nibabel as nib

                    back = nib.orientations.ornt_transform(nib.orientations.axcodes2ornt("RAS"), ornt)
                    labels = nib.orientations.apply_orientation(labels, back)
                _write_label_map(np.ascontiguousarray(labels), path, out, cid, nifti)
            else:
                if tuple(x.shape[2:]) != spec.spatial_shape:
                    raise DataError(f"case {cid!r}: image size {tuple(x.shape[2:])}, the classifier was trained on "
                                    f"{spec.spatial_shape}")
                rows.append((cid, run.task.probabilities(model(x))[0]))
    if rows:
        import csv
        import io

        buf = io.StringIO()
        w = csv.writer(buf)
        binary = spec.task_type == "binary"
        w.writerow(["case_id", "score"] if binary else ["case_id", *spec.label_names])
        for cid, p in rows:
            w.writerow([cid, repr(float(p[1]))] if binary else [cid, *(repr(float(v)) for v in p)])
        fileio.write_text(out / "predictions.csv", buf.getvalue())
    return {"cases": len(files), "out": str(out), "task": spec.task}


def _write_label_map(labels: np.ndarray, src: Path, out: Path, cid: str, nifti) -> Path:
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
