"""Classical counting baseline: Laplacian-of-Gaussian blob detection (scikit-image), so users can
see what a learned counter adds. Not a torch model: a function from an image to points."""

from __future__ import annotations

import numpy as np


def log_blob_points(image: np.ndarray, *, min_sigma: float = 2.0, max_sigma: float = 6.0, num_sigma: int = 5,
                    threshold: float = 0.05, channel: int | None = None) -> np.ndarray:
    """Blob centres ``(n, 2)`` as ``(x, y)``; ``image`` ``(H, W)`` or ``(H, W, C)`` (``channel`` picks
    one channel, default the mean), intensities rescaled to [0, 1] first."""
    from skimage.feature import blob_log

    x = np.asarray(image, dtype=float)
    if x.ndim == 3:
        x = x[..., channel] if channel is not None else x.mean(-1)
    rng = x.max() - x.min()
    x = (x - x.min()) / rng if rng > 0 else np.zeros_like(x)
    blobs = blob_log(x, min_sigma=min_sigma, max_sigma=max_sigma, num_sigma=num_sigma, threshold=threshold)
    return blobs[:, [1, 0]].astype(float) if len(blobs) else np.zeros((0, 2))
