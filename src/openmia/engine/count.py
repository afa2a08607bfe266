"""``openmia count``: count (and mark) objects in images with a trained run or the classical baseline.

Writes to ``out``:

    counts.csv       ``case_id,label,count`` per image and class (the evaluator's counting format)
    detections.csv   ``case_id,label,score,x1,y1,x2,y2`` or ``x,y`` (detectors; original pixels)
    overlays/<case_id>.png   the image with the counted boxes/points and the count drawn on it

Images are read with Pillow (PNG, JPEG, TIFF, ...) in the run's channel layout and resized to the
run's input shape, as the training data were; coordinates are mapped back to the original
pixels. A 3D run (points ``x,y,z``) reads NIfTI volumes (``.nii``/``.nii.gz``) with nibabel: the
volume keeps its voxel grid (x = the file's first axis i, y = j, z = k; no resampling, the
detector is fully convolutional), its intensities are min-max scaled to the training range, and
the overlay is the maximum-intensity projection along z with the points drawn on it. A detector
counts the detections at or above the run's count threshold (chosen per class on the validation
split, saved in ``result.json``) unless ``score_threshold`` is given. The classical baseline
(``method="log"``) needs no run: Laplacian-of-Gaussian blobs (scikit-image).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from openmia import fileio
from openmia.errors import ConfigError, DataError, RunDirError

OVERLAY_MIN_SIZE = 256  # px: overlays of smaller images are enlarged (nearest neighbour) by an integer factor
COLOURS = ((255, 40, 40), (40, 220, 40), (60, 120, 255), (255, 200, 0), (255, 0, 255))


def _read_image(path: Path, channels: int | None) -> np.ndarray:
    """``(H, W)`` or ``(H, W, 3)`` uint8 (``channels`` 1 or 3; None keeps RGB)."""
    from PIL import Image

    if not path.is_file():
        raise DataError(f"{path}: no such image file")
    try:
        with Image.open(path) as im:
            return np.asarray(im.convert("L" if channels == 1 else "RGB"))
    except Exception as exc:
        raise DataError(f"{path}: cannot read the image ({type(exc).__name__}: {exc})") from None


def _is_nifti(path: Path) -> bool:
    return path.name.endswith((".nii", ".nii.gz"))


def _read_volume(path: Path) -> np.ndarray:
    """A NIfTI volume as uint8 ``(D, H, W)`` = the file's (k, j, i) axes, min-max scaled to 0-255."""
    from openmia.evaluation.label_maps import read_array

    if not path.is_file():
        raise DataError(f"{path}: no such volume file")
    a = read_array(path, path.name, DataError)[0].astype(np.float32)
    if a.ndim == 4 and a.shape[3] == 1:
        a = a[..., 0]
    if a.ndim != 3:
        raise DataError(f"{path}: expected a 3D volume (one channel), found shape {a.shape}")
    if not np.isfinite(a).all():
        raise DataError(f"{path}: {int((~np.isfinite(a)).sum())} voxel(s) are NaN or infinite; fix or mask them first")
    lo, hi = float(a.min()), float(a.max())
    u8 = np.round((a - lo) / (hi - lo) * 255) if hi > lo else np.zeros_like(a)
    return np.ascontiguousarray(u8.astype(np.uint8).transpose(2, 1, 0))


def _case_ids(paths: Sequence[Path]) -> list[str]:
    ids = [p.name.removesuffix(".gz").removesuffix(".nii") if _is_nifti(p) else p.stem for p in paths]
    seen: dict[str, Path] = {}
    for cid, p in zip(ids, paths):
        if cid in seen:
            raise DataError(f"{p} and {seen[cid]} give the same case id {cid!r}; count them in separate calls")
        seen[cid] = p
    return ids


def _overlay(img: np.ndarray, objects: np.ndarray, labels: np.ndarray, kind: str, text: str, path: Path) -> None:
    from PIL import Image, ImageDraw

    im = Image.fromarray(img).convert("RGB")
    f = max(1, -(-OVERLAY_MIN_SIZE // max(im.size)))  # small images (e.g. 32^3 stacks) are enlarged to be legible
    if f > 1:
        im = im.resize((im.width * f, im.height * f), Image.NEAREST)
    d = ImageDraw.Draw(im)
    for o, k in zip(objects, labels):
        c = COLOURS[int(k) % len(COLOURS)]
        if kind == "box":
            d.rectangle([float(v) * f for v in o], outline=c, width=2)
        else:
            x, y = (float(o[0]) + 0.5) * f - 0.5, (float(o[1]) + 0.5) * f - 0.5  # pixel centres stay centres
            d.ellipse([x - 3, y - 3, x + 3, y + 3], outline=c, width=1)
    d.rectangle([0, 0, 7 * len(text) + 8, 16], fill=(0, 0, 0))
    d.text((4, 2), text, fill=(255, 255, 255))
    fileio.save_png(path, im)


def count_images(images: Sequence[str | Path], out_dir: str | Path, *, run_dir: str | Path | None = None,
                 method: str = "model", score_threshold: float | None = None, log_threshold: float = 0.05,
                 overlays: bool = True, device: str | None = None, overwrite: bool = False,
                 progress: Callable[[int, int], None] | None = None) -> dict[str, Any]:
    """Count objects in ``images``; returns ``{"cases": n, "out": path, "counts": {case: {label: count}}}``.
    ``progress`` is called ``f(done, total)`` as images are counted.

    ``out_dir`` must not hold an input image and must be empty unless ``overwrite``."""
    paths = [Path(p) for p in images]
    if not paths:
        raise DataError("no images given")
    ids = _case_ids(paths)
    out = fileio.prepare_output_dir(out_dir, inputs=paths, overwrite=overwrite, atomic=False)
    if method == "log":
        if run_dir is not None:
            raise ConfigError("--method log is the classical baseline and takes no --model run")
        from openmia.models.classical_counting import log_blob_points

        results = []
        for p in paths:
            img = _read_image(p, None)
            pts = log_blob_points(img, threshold=log_threshold)
            results.append((img, {"objects": pts, "scores": np.ones(len(pts)), "labels": np.zeros(len(pts), int)}))
            if progress is not None:
                progress(len(results), len(paths))
        names, kind, thresholds, dims = ("object",), "point", np.zeros(1), 2
    elif method == "model":
        if run_dir is None:
            raise ConfigError("give --model RUN_DIR (a detection or counting run), or --method log for the classical baseline")
        results, names, kind, thresholds, dims = _predict_with_run(run_dir, paths, score_threshold, device, progress)
    else:
        raise ConfigError(f"method must be 'model' or 'log', found {method!r}")

    counts_rows, det_rows = [["case_id", "label", "count"]], []
    coords = ["x1", "y1", "x2", "y2"] if kind == "box" else ["x", "y", "z"][:dims]
    counts: dict[str, dict[str, float]] = {}
    if overlays:
        (out / "overlays").mkdir(parents=True, exist_ok=True)
    for cid, (img, pred) in zip(ids, results):
        if "count" in pred:  # density model: no objects to mark
            counts[cid] = {names[0]: float(pred["count"])}
            text = f"{cid}: {pred['count']:.1f} {names[0]}"
            objs, labs = np.zeros((0, 2)), np.zeros(0, int)
        else:
            keep = pred["scores"] >= thresholds[pred["labels"]]
            objs, labs = pred["objects"][keep], pred["labels"][keep]
            counts[cid] = {n: float(np.sum(labs == k)) for k, n in enumerate(names)}
            det_rows += [[cid, names[k], f"{s:.6g}", *(f"{v:.6g}" for v in o)]
                         for o, s, k in zip(pred["objects"], pred["scores"], pred["labels"])]
            text = f"{cid}: " + ", ".join(f"{int(v)} {n}" for n, v in counts[cid].items())
        counts_rows += [[cid, n, f"{v:.6g}"] for n, v in counts[cid].items()]
        if overlays:
            _overlay(img, objs, labs, kind, text, out / "overlays" / f"{cid}.png")
    fileio.write_csv(out / "counts.csv", counts_rows)
    if det_rows or method == "log" or kind != "density":
        fileio.write_csv(out / "detections.csv", [["case_id", "label", "score", *coords], *det_rows])
    return {"cases": len(ids), "out": str(out), "counts": counts}


def _predict_with_run(run_dir, paths: list[Path], score_threshold: float | None, device: str | None, progress=None):
    from openmia.engine.predict import load_run

    run = load_run(run_dir, device=device)
    spec, model, task = run.spec, run.model, run.task
    if not hasattr(task, "detect"):
        raise RunDirError(f"{run_dir} is a {spec.task} run; openmia count needs a run whose task detects or counts "
                          "objects (detection, counting)")
    density = not hasattr(model, "detect")
    kind = "point" if getattr(model, "points", False) or density else "box"
    names = tuple(spec.label_names)
    if score_threshold is not None:
        thresholds = np.full(len(names), float(score_threshold))
    else:
        res = json.loads((Path(run_dir) / "result.json").read_text()) if (Path(run_dir) / "result.json").is_file() else {}
        chosen = res.get("count_thresholds")
        if not density and not chosen:
            raise RunDirError(f"{run_dir}: no count thresholds in result.json (unfinished run?); pass --score-threshold")
        thresholds = np.array([chosen[n] for n in names]) if chosen else np.zeros(len(names))
    from PIL import Image

    results = []
    for p in paths:
        if spec.dims == 3:
            if not _is_nifti(p):
                raise DataError(f"{p}: {run_dir} is a 3D run; it counts NIfTI volumes (.nii / .nii.gz)")
            vol = _read_volume(p)
            pred = task.detect(model, vol[None, None])[0]
            results.append((vol.max(axis=0), pred))  # overlay: maximum-intensity projection along z
            if progress is not None:
                progress(len(results), len(paths))
            continue
        h, w = spec.spatial_shape
        img = _read_image(p, spec.channels)
        oh, ow = img.shape[:2]
        small = np.asarray(Image.fromarray(img).resize((w, h), Image.BILINEAR))
        x = (small.transpose(2, 0, 1) if small.ndim == 3 else small[None])[None]
        pred = task.detect(model, np.ascontiguousarray(x))[0]
        if "objects" in pred:
            sx, sy = ow / w, oh / h
            pred["objects"] = pred["objects"] * (np.array([sx, sy, sx, sy]) if kind == "box" else np.array([sx, sy]))
        results.append((img, pred))
        if progress is not None:
            progress(len(results), len(paths))
    return results, names, "density" if density else kind, thresholds, spec.dims

