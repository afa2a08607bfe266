"""Applying an image-restoration method to a folder: ``openmia inpaint`` and ``openmia denoise``.

The method is either a finished generative run (its Task's ``restore_image`` hook: the run's own
intensity convention and network) or a classical baseline
(:mod:`openmia.models.classical_generative`). Inputs are ``<case_id>.npy|.png|.jpg|.nii.gz|...``
images (2D, 2D colour, or 3D); masks (inpainting) are files of the same case ids and spatial
shape, nonzero = hole. Every output is ``<out>/<case_id>.npy`` float32 in the input's intensity
scale and voxel order, plus ``restore.json`` (method, cases, seconds per case), so the
predictions can be scored directly by ``openmia evaluate --task inpainting|denoising``.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

from openmia import fileio
from openmia.errors import ConfigError, DataError

RESTORE_SCHEMA = "openmia.restore/1"


def _channels_first(arr: np.ndarray, path: Path, spatial: tuple[int, ...] | None) -> np.ndarray:
    """Colour photographs ``(H, W, C)`` as ``(C, H, W)``; other arrays unchanged."""
    if arr.ndim == 3 and path.suffix.lower() in (".png", ".jpg", ".jpeg", ".tif", ".tiff") and arr.shape[-1] in (3, 4):
        if spatial is None or tuple(arr.shape[:2]) == tuple(spatial):
            return np.moveaxis(arr[..., :3], -1, 0)
    return arr


# the two ways of restoring an image: whether the method is told where the holes are
MASKED = {"inpainting": True, "denoising": False}


def restore_folder(input_dir: str | Path, out_dir: str | Path, *, mode: str, mask_dir: str | Path | None = None,
                   run_dir: str | Path | None = None, method: str | None = None, sigma: float | None = None,
                   scale: str = "auto", device: str | None = None, overwrite: bool = False,
                   progress: Callable[[int, int], None] | None = None) -> dict[str, Any]:
    """Inpaint (``mode="inpainting"``) or denoise (``mode="denoising"``) every image of ``input_dir``.

    Exactly one of ``run_dir`` (a finished inpainting / denoising / reconstruction run) and
    ``method`` (a classical method) is given; ``scale`` is how a run maps the images to its [0, 1]
    scale (:meth:`openmia.tasks.generative.GenerativeTask.restore_image`; ignored by the classical
    methods, which work in the images' own unit). Returns ``{"cases", "out", "method", "seconds_per_case"}``.
    """
    from openmia.evaluation.label_maps import IMAGE_SUFFIXES, index_folder, read_array
    from openmia.models import classical_generative as cg

    if mode not in MASKED:
        raise ConfigError(f"mode: expected {' or '.join(MASKED)}, found {mode!r}")
    masked = MASKED[mode]
    from openmia.tasks.generative import RESTORE_SCALES

    if scale not in RESTORE_SCALES:
        raise ConfigError(f"--scale: expected one of {', '.join(RESTORE_SCALES)}, found {scale!r}")
    if (run_dir is None) == (method is None):
        raise ConfigError("give exactly one of --model RUN (a trained run) and --method NAME (a classical method)")
    if masked and mask_dir is None:
        raise ConfigError("inpainting needs --mask DIR: one mask per input image (same case id, nonzero = hole)")
    if not masked and mask_dir is not None:
        raise ConfigError("denoising works on the whole image; --mask applies to `openmia inpaint`")
    if not Path(input_dir).is_dir():
        raise DataError(f"input folder {input_dir} does not exist or is not a folder")
    out = fileio.prepare_output_dir(out_dir, inputs=(input_dir, mask_dir, run_dir), overwrite=overwrite, atomic=False)
    files = index_folder(input_dir, "input", IMAGE_SUFFIXES)
    if not files:
        raise DataError(f"input folder {input_dir} holds no images ({', '.join(IMAGE_SUFFIXES)})")
    masks = index_folder(mask_dir, "mask", IMAGE_SUFFIXES) if mask_dir is not None else None
    if masks is not None:
        lacking = [c for c in files if c not in masks]
        if lacking:
            raise DataError(f"mask folder {mask_dir}: no mask for input case(s) {', '.join(lacking[:5])}"
                            f"{f' and {len(lacking) - 5} more' if len(lacking) > 5 else ''}")

    if run_dir is not None:
        from openmia.engine.predict import load_run

        run = load_run(run_dir, device=device)
        hook = getattr(run.task, "restore_image", None)
        wants_mask = getattr(run.task, "uses_mask", None)
        if hook is None or wants_mask is None:
            raise ConfigError(f"run {run_dir} is a {run.cfg.task} run; `openmia inpaint`/`denoise` --model needs an "
                              "inpainting, denoising or reconstruction run")
        if wants_mask != masked:
            raise ConfigError(f"run {run_dir} is a {run.cfg.task} run; it cannot be used for {mode} "
                              f"(train one with task={mode})")
        dims = run.spec.dims

        def apply(image: np.ndarray, mask: np.ndarray | None, case: str) -> np.ndarray:
            if mask is not None:
                from openmia.transforms.corruption import check_mask

                mask = check_mask(mask, image.shape[-dims:], case)
            if image.ndim not in (dims, dims + 1):
                raise DataError(f"case {case!r}: the run expects {dims}D images, found shape {image.shape}")
            return hook(run.model, image, mask, scale)

        label = f"model:{Path(run_dir).name}"
    else:
        apply = cg.inpainter(method) if masked else cg.denoiser(method, sigma)
        label = str(method)
        run = None

    out.mkdir(parents=True, exist_ok=True)
    seconds: dict[str, float] = {}
    for done, (cid, path) in enumerate(files.items()):
        arr, _ = read_array(path, cid, DataError)
        mask = None
        if masks is not None:
            mask = np.asarray(read_array(masks[cid], cid, DataError)[0])
            if mask.ndim == 3 and masks[cid].suffix.lower() in (".png", ".jpg", ".jpeg") and mask.shape[-1] in (3, 4):
                mask = mask[..., 0]  # an RGB(A) mask image: its first channel
        arr = _channels_first(np.asarray(arr), path, None if mask is None else mask.shape)
        t0 = time.perf_counter()
        res = apply(arr.astype(np.float32), mask, cid)
        seconds[cid] = time.perf_counter() - t0
        fileio.save_npy(out / f"{cid}.npy", np.asarray(res, dtype=np.float32))
        if progress is not None:
            progress(done + 1, len(files))
    record = {"schema": RESTORE_SCHEMA, "mode": mode, "method": label, "input": str(input_dir),
              "masks": None if mask_dir is None else str(mask_dir), "run": None if run_dir is None else str(run_dir),
              "sigma": sigma, "scale": scale if run_dir is not None else None, "cases": len(files), "seconds_per_case": seconds,
              "mean_seconds_per_case": float(np.mean(list(seconds.values())))}
    fileio.write_json(out / "restore.json", record)
    return {"cases": len(files), "out": str(out), "method": label,
            "mean_seconds_per_case": record["mean_seconds_per_case"]}
