"""Applying an image-restoration method to a folder: ``openmia inpaint`` and ``openmia denoise``.

The method is either a finished generative run (its Task's ``restore_image`` hook: the run's own
intensity convention and network) or a classical baseline
(:mod:`openmia.models.classical_generative`). Inputs are ``<case_id>.npy|.png|.jpg|.nii.gz|...``
images (2D, 2D colour, or 3D); masks (inpainting) are files of the same case ids and spatial
shape, nonzero = hole (one mask for every channel; an RGB mask image: its first channel). Every
output is ``<out>/<case_id>.npy`` float32 in the input's intensity scale, voxel order and layout,
plus ``restore.json`` (method, cases, seconds per case), so the predictions can be scored directly
by ``openmia evaluate --task inpainting|denoising``.

Colour: an RGB(A) PNG/JPEG is ``(H, W, 3)`` (alpha dropped); array files hold colour with the
channel axis last, as the generative runs save them (``(*spatial, C)``: the ``inputs/`` and
``truth/`` of a colour run). Arrays whose first axis is the channel one are also taken when a
mask (or the run's channel count) says so. The methods see ``(C, *spatial)``; the output goes
back to the input's layout, so a colour prediction is ``(H, W, C)`` float32 (not an 8-bit PNG).
A run trained on grey images takes a greyscale photograph saved as RGB (three equal channels, as
BUSI's files) as one channel and writes ``(H, W)``; other colour inputs to a grey run (or grey
inputs to a colour run) are errors naming the case.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

from openmia import fileio
from openmia.errors import ConfigError, DataError

RESTORE_SCHEMA = "openmia.restore/1"


PHOTO_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff")


def channel_layout(arr: np.ndarray, path: Path, spatial: tuple[int, ...] | None, dims: int | None = None,
                   channels: int | None = None) -> str:
    """Where ``arr``'s channel axis is: ``"none"`` (a grey image/volume), ``"last"`` or ``"first"``.

    ``spatial``: the mask's shape (inpainting); ``dims``/``channels``: a run's (``--model``).
    Without either, an array is colour when :func:`openmia.evaluation.generative.channel_axis_of`
    says so (4D, or 3D with at most 4 entries on the last axis), channels last."""
    from openmia.evaluation.generative import channel_axis_of

    if arr.ndim == 3 and path.suffix.lower() in PHOTO_SUFFIXES and arr.shape[-1] in (3, 4):
        return "last"  # a colour photograph, (H, W, 3|4)
    if spatial is not None:
        spatial = tuple(spatial)
        if arr.ndim == len(spatial) + 1:
            if tuple(arr.shape[:-1]) == spatial:
                return "last"
            if tuple(arr.shape[1:]) == spatial:
                return "first"
        return "none"  # the mask check names any shape mismatch
    if dims is not None:
        if arr.ndim != dims + 1:
            return "none"
        if channels is not None and arr.shape[0] == channels and arr.shape[-1] != channels:
            return "first"
        return "last"
    return "none" if channel_axis_of(arr) is None else "last"


def _grey_photo(arr: np.ndarray, path: Path) -> bool:
    """True for an RGB(A) photograph whose three colour channels are equal (greyscale saved as RGB)."""
    return (path.suffix.lower() in PHOTO_SUFFIXES and arr.ndim == 3 and arr.shape[-1] in (3, 4)
            and bool(np.array_equal(arr[..., 0], arr[..., 1]) and np.array_equal(arr[..., 0], arr[..., 2])))


def to_channels_first(arr: np.ndarray, layout: str) -> np.ndarray:
    """``arr`` as ``(*spatial)`` or ``(C, *spatial)`` (an alpha channel of a photograph dropped)."""
    if layout != "last":
        return arr
    if arr.ndim == 3 and arr.shape[-1] == 4:
        arr = arr[..., :3]
    return np.moveaxis(arr, -1, 0)


def from_channels_first(arr: np.ndarray, layout: str) -> np.ndarray:
    """The inverse of :func:`to_channels_first` (the input's own layout)."""
    return np.ascontiguousarray(np.moveaxis(arr, 0, -1)) if layout == "last" and arr.ndim > 1 else arr


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
        run_dims, run_channels = run.spec.dims, run.spec.channels

        def apply(image: np.ndarray, mask: np.ndarray | None, case: str, dims: int | None = None) -> np.ndarray:
            if mask is not None:
                from openmia.transforms.corruption import check_mask

                mask = check_mask(mask, image.shape[-run_dims:], case)
            if image.ndim not in (run_dims, run_dims + 1):
                raise DataError(f"case {case!r}: the run expects {run_dims}D images, found shape {image.shape}")
            c = 1 if image.ndim == run_dims else image.shape[0]
            if c != run_channels:
                raise DataError(f"case {case!r}: the run was trained on {run_channels}-channel images, found {c} "
                                f"channel(s) (image shape {image.shape} after moving the channel axis first)")
            return hook(run.model, image, mask, scale)

        label = f"model:{Path(run_dir).name}"
    else:
        # f(image, mask, case, dims=): the denoisers are told the spatial dimensions ((3, H, W) is colour)
        apply = cg.inpainter(method) if masked else cg.denoiser(method, sigma)

        label = str(method)
        run = None
        run_dims = run_channels = None

    out.mkdir(parents=True, exist_ok=True)
    seconds: dict[str, float] = {}
    for done, (cid, path) in enumerate(files.items()):
        arr, _ = read_array(path, cid, DataError)
        mask = None
        if masks is not None:
            mask = np.asarray(read_array(masks[cid], cid, DataError)[0])
            if mask.ndim == 3 and masks[cid].suffix.lower() in (".png", ".jpg", ".jpeg") and mask.shape[-1] in (3, 4):
                mask = mask[..., 0]  # an RGB(A) mask image: its first channel
        arr = np.asarray(arr)
        layout = channel_layout(arr, path, None if mask is None else mask.shape, run_dims, run_channels)
        if run_channels == 1 and layout == "last" and _grey_photo(arr, path):
            arr, layout = arr[..., 0], "none"  # greyscale saved as RGB (e.g. BUSI) for a grey run
        t0 = time.perf_counter()
        res = apply(to_channels_first(arr, layout).astype(np.float32), mask, cid, dims=arr.ndim - (layout != "none"))
        seconds[cid] = time.perf_counter() - t0
        fileio.save_npy(out / f"{cid}.npy", from_channels_first(np.asarray(res, dtype=np.float32), layout))
        if progress is not None:
            progress(done + 1, len(files))
    record = {"schema": RESTORE_SCHEMA, "mode": mode, "method": label, "input": str(input_dir),
              "masks": None if mask_dir is None else str(mask_dir), "run": None if run_dir is None else str(run_dir),
              "sigma": sigma, "scale": scale if run_dir is not None else None, "cases": len(files), "seconds_per_case": seconds,
              "mean_seconds_per_case": float(np.mean(list(seconds.values())))}
    fileio.write_json(out / "restore.json", record)
    return {"cases": len(files), "out": str(out), "method": label,
            "mean_seconds_per_case": record["mean_seconds_per_case"]}
