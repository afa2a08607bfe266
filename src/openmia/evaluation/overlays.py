"""Worst-case overlays for segmentation reports.

The ``k`` cases with the lowest Dice (label ``all``; ties broken by case id, cases whose Dice is
undefined — every label empty in both maps — left out) are shown as one figure each: the truth
and prediction contours on the slice where they disagree most. A 3D case ``(D, H, W)`` is cut
along its first axis at the index with the most voxels where ``pred != truth`` (the first such
index on ties); a 2D case is shown whole. The background is the case's image when an image folder
is given (``openmia evaluate --images DIR``), else blank; the disagreeing voxels are shaded.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from openmia.errors import PredictionError

TRUTH_COLOUR, PRED_COLOUR, ERROR_COLOUR = "#00b050", "#e8168b", "#ffd400"


def worst_case_order(cases: Sequence[str], dice: Sequence[float], k: int = 3) -> list[int]:
    """Indices of the ``k`` lowest finite ``dice`` values, ascending, ties by case id."""
    d = np.asarray(dice, dtype=float)
    if d.shape != (len(cases),):
        raise PredictionError(f"worst cases: {len(cases)} case ids but Dice of shape {d.shape}")
    ok = [i for i in range(len(cases)) if np.isfinite(d[i])]
    return sorted(ok, key=lambda i: (d[i], str(cases[i])))[: max(0, int(k))]


def largest_error_slice(pred: np.ndarray, truth: np.ndarray) -> tuple[int | None, int]:
    """``(index, n)``: the first-axis slice of a 3D pair ``(D, H, W)`` with the most voxels where
    ``pred != truth`` (lowest index on ties) and that count; ``(None, n)`` for a 2D pair ``(H, W)``."""
    pred, truth = np.asarray(pred), np.asarray(truth)
    if pred.shape != truth.shape:
        raise PredictionError(f"overlay: prediction shape {pred.shape} differs from truth shape {truth.shape}")
    wrong = pred != truth
    if wrong.ndim == 2:
        return None, int(wrong.sum())
    if wrong.ndim != 3:
        raise PredictionError(f"overlay: expected a 2D or 3D label map, found shape {wrong.shape}")
    per_slice = wrong.reshape(wrong.shape[0], -1).sum(axis=1)
    i = int(np.argmax(per_slice))  # argmax: the first maximum
    return i, int(per_slice[i])


def _image_like(image: np.ndarray, shape: tuple[int, ...], case: str) -> np.ndarray:
    """``image`` as a float array of ``shape``: a trailing channel axis is reduced (RGB(A) 2D
    images to their mean grey value, other channel stacks to their first channel)."""
    a = np.asarray(image)
    if a.shape != shape and a.ndim == len(shape) + 1 and a.shape[:-1] == shape:
        a = a[..., :3].mean(axis=-1) if len(shape) == 2 and a.shape[-1] in (3, 4) else a[..., 0]
    elif a.shape != shape and np.squeeze(a).shape == shape:
        a = np.squeeze(a)
    if a.shape != shape:
        raise PredictionError(f"case {case!r}: image of shape {np.asarray(image).shape} does not match its truth "
                              f"of shape {shape}; expected the truth's voxel grid (optionally with a trailing channel axis)")
    if a.dtype.kind not in "biuf":
        raise PredictionError(f"case {case!r}: image has dtype {a.dtype}; expected numbers")
    return a.astype(np.float32, copy=False)


def worst_case_slices(cases: Sequence[str], dice: Sequence[float], load: Callable[[str], tuple], *, k: int = 3,
                      load_image: Callable[[str], np.ndarray] | None = None) -> list[dict[str, Any]]:
    """The data of the ``k`` worst-case overlays (small 2D arrays, no figure yet).

    ``load`` is the evaluator's ``case_id -> (pred, truth, spacing[, info])``. Each entry holds
    ``rank`` (1 = worst), ``case``, ``dice``, ``slice`` (first-axis index, None for 2D),
    ``n_disagree`` (on that slice), ``shape`` (of the case), ``spacing`` (in-plane, mm) and the
    2D ``truth``, ``pred`` and ``image`` (None without ``load_image``) arrays.
    """
    out = []
    for rank, i in enumerate(worst_case_order(cases, dice, k), 1):
        cid = str(cases[i])
        pred, truth, spacing = load(cid)[:3]
        pred, truth = np.asarray(pred), np.asarray(truth)
        idx, n = largest_error_slice(pred, truth)
        image = None if load_image is None else _image_like(load_image(cid), truth.shape, cid)
        cut = (lambda a: a) if idx is None else (lambda a, j=idx: a[j])
        out.append({"rank": rank, "case": cid, "dice": float(np.asarray(dice, float)[i]), "slice": idx, "n_disagree": n,
                    "shape": tuple(int(s) for s in truth.shape), "spacing": tuple(float(s) for s in spacing)[-2:],
                    "truth": np.ascontiguousarray(cut(truth)), "pred": np.ascontiguousarray(cut(pred)),
                    "image": None if image is None else np.ascontiguousarray(cut(image))})
    return out


class FolderImageLoader:
    """``case_id -> image array`` for a folder of ``<case_id>.<suffix>`` images (NIfTI, MHA/NRRD,
    TIFF, PNG/JPEG, NPY), in the file's voxel order as the truth label maps are read. Every case
    in ``cases`` must have an image (checked when the loader is made)."""

    def __init__(self, folder: str | Path, cases: Sequence[str] | None = None) -> None:
        from openmia.evaluation.label_maps import IMAGE_SUFFIXES, ITK_SUFFIXES, TIFF_SUFFIXES, index_folder

        self.folder = Path(folder)
        self.files: dict[str, Path] = index_folder(self.folder, "image", (*IMAGE_SUFFIXES, *ITK_SUFFIXES, *TIFF_SUFFIXES))
        lacking = [c for c in (cases or ()) if c not in self.files]
        if lacking:
            raise PredictionError(f"--images {self.folder}: no image for case(s) {', '.join(lacking[:5])}"
                                  f"{f' and {len(lacking) - 5} more' if len(lacking) > 5 else ''}; expected "
                                  "<case_id>.<suffix> for every truth case")

    def __call__(self, cid: str) -> np.ndarray:
        from openmia.evaluation.label_maps import read_array

        if cid not in self.files:
            raise PredictionError(f"--images {self.folder}: no image for case {cid!r}")
        return read_array(self.files[cid], cid)[0]


def overlay_figure(entry: Mapping[str, Any]):
    """A matplotlib figure of one :func:`worst_case_slices` entry: background (image or blank),
    disagreeing voxels shaded, truth and prediction contours of every label, legend."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.colors import ListedColormap
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    truth, pred, image = entry["truth"], entry["pred"], entry.get("image")
    h, w = truth.shape
    fig, ax = plt.subplots(figsize=(4.2, 4.2 * min(2.0, max(0.5, h / max(w, 1)))))
    sp = entry.get("spacing") or (1.0, 1.0)
    aspect = float(sp[0]) / float(sp[1]) if len(sp) == 2 and sp[1] > 0 else 1.0
    if image is not None:
        lo, hi = np.percentile(image, [1, 99]) if image.size else (0.0, 1.0)
        ax.imshow(image, cmap="gray", vmin=lo, vmax=hi if hi > lo else lo + 1, aspect=aspect, interpolation="nearest")
    else:
        ax.imshow(np.zeros((h, w)), cmap=ListedColormap(["white"]), aspect=aspect)
    wrong = (pred != truth).astype(float)
    ax.imshow(np.ma.masked_where(wrong == 0, wrong), cmap=ListedColormap([ERROR_COLOUR]), alpha=0.45, aspect=aspect,
              interpolation="nearest")
    for arr, colour, style in ((truth, TRUTH_COLOUR, "solid"), (pred, PRED_COLOUR, "dashed")):
        for lab in sorted(set(np.unique(arr).tolist()) - {0}):
            m = (arr == lab).astype(float)
            if 0 < m.sum() < m.size:  # a contour needs both sides
                ax.contour(m, levels=[0.5], colors=[colour], linewidths=1.3, linestyles=style)
    ax.legend(handles=[Line2D([], [], color=TRUTH_COLOUR, lw=1.5, label="truth"),
                       Line2D([], [], color=PRED_COLOUR, lw=1.5, ls="--", label="prediction"),
                       Patch(color=ERROR_COLOUR, alpha=0.45, label="disagreement")],
              fontsize=7, loc="upper right", framealpha=0.8)
    where = "2D case" if entry.get("slice") is None else f"slice {entry['slice']} of {entry['shape'][0]} (axis 0)"
    ax.set_title(f"#{entry['rank']} worst: {entry['case']}, Dice {entry['dice']:.3f}\n{where}, "
                 f"{entry['n_disagree']} disagreeing voxels", fontsize=8)
    ax.set_xticks([])
    ax.set_yticks([])
    return fig


def overlay_filename(entry: Mapping[str, Any]) -> str:
    """``worst_<rank>_<case>.png`` with characters outside ``[A-Za-z0-9._-]`` replaced."""
    return f"worst_{entry['rank']}_{re.sub(r'[^A-Za-z0-9._-]', '_', str(entry['case']))[:80]}.png"


def write_overlays(entries: Sequence[Mapping[str, Any]], folder: str | Path) -> list[Path]:
    """One PNG per entry in ``folder`` (:func:`overlay_filename`), each written atomically."""
    import matplotlib.pyplot as plt

    from openmia import fileio

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for e in entries:
        fig = overlay_figure(e)
        try:
            paths.append(fileio.save_figure(fig, folder / overlay_filename(e), dpi=110))
        finally:
            plt.close(fig)
    return paths
