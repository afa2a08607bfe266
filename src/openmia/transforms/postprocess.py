"""Post-processing of predicted label maps (applied after argmax, before scoring or writing).

``largest``: for every foreground class keep only its largest connected component (face
connectivity), the rule nnU-Net chooses on validation for single-object structures such as a breast
lesion, a polyp or a hippocampus. Voxels of removed components become background.
"""

from __future__ import annotations

import numpy as np

from openmia.errors import ConfigError

POSTPROCESS = ("none", "largest")


def postprocess_labels(labels: np.ndarray, method: str, num_classes: int) -> np.ndarray:
    """Apply ``method`` to one integer label map ``(*spatial)``; returns a new array (same dtype)."""
    if method == "none":
        return labels
    if method != "largest":
        raise ConfigError(f"eval.postprocess: expected one of {POSTPROCESS}, found {method!r}")
    return keep_largest_component(labels, range(1, num_classes))


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
