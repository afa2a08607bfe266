"""Post-processing of predicted label maps (applied after argmax, before scoring or writing).

``largest``: for every foreground class keep only its largest connected component (face
connectivity), the rule nnU-Net chooses on validation for single-object structures such as a breast
lesion, a polyp or a hippocampus. Voxels of removed components become background.

``fill_empty`` (a fraction f in (0, 1]; 0 = off): for images known to contain every foreground class
(each Kvasir-SEG image shows a polyp), a class missing from the argmax gets the connected region
around its most probable voxel where its probability is at least f times that peak. An empty
prediction always scores Dice 0, so this can only turn a certain miss into a possible hit; it must
not be used where empty masks are real (BUSI's normal images).
"""

from __future__ import annotations

import numpy as np

from collections.abc import Callable

from openmia.errors import ConfigError

POSTPROCESS = ("none", "largest")


def postprocess_labels(labels: np.ndarray, method: str, num_classes: int, *, fill_empty: float = 0.0,
                       prob: Callable[[int], np.ndarray] | None = None) -> np.ndarray:
    """Apply ``method`` to one integer label map ``(*spatial)``, then (``fill_empty`` > 0) fill
    missing classes from ``prob(k)``, class k's probability map ``(*spatial)``; returns a new array
    (same dtype), or ``labels`` itself when nothing applies."""
    if method not in POSTPROCESS:
        raise ConfigError(f"segmentation.postprocess: expected one of {POSTPROCESS}, found {method!r}")
    if method == "largest":
        labels = keep_largest_component(labels, range(1, num_classes))
    if fill_empty:
        if prob is None:
            raise ValueError("fill_empty needs the class probabilities (prob)")
        labels = fill_empty_classes(labels, prob, range(1, num_classes), fill_empty)
    return labels


def keep_largest_component(labels: np.ndarray, classes) -> np.ndarray:
    """Keep the largest face-connected component of each class in ``classes``; ties keep the
    component met first in C order."""
    from scipy import ndimage

    out = labels.copy()
    for k in classes:
        comp, n = ndimage.label(labels == k)  # default structure: face connectivity in any dimension
        if n <= 1:
            continue
        sizes = np.bincount(comp.ravel())[1:]
        out[(comp > 0) & (comp != int(np.argmax(sizes)) + 1)] = 0
    return out


def fill_empty_classes(labels: np.ndarray, prob: Callable[[int], np.ndarray], classes, fraction: float) -> np.ndarray:
    """Give every class in ``classes`` that is absent from ``labels`` the face-connected region
    around the peak of ``prob(k)`` where ``prob(k) >= fraction * peak`` (those voxels become k);
    classes already present are untouched. Returns ``labels`` itself when no class is missing."""
    from scipy import ndimage

    out = labels
    for k in classes:
        if (labels == k).any():
            continue
        p = np.asarray(prob(k))
        if p.shape != labels.shape:
            raise ValueError(f"prob({k}) has shape {p.shape}, the label map {labels.shape}")
        peak = np.unravel_index(int(np.argmax(p)), p.shape)
        comp, _ = ndimage.label(p >= fraction * p[peak])
        if out is labels:
            out = labels.copy()
        out[comp == comp[peak]] = k
    return out
