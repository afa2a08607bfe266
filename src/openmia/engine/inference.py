"""Sliding-window inference for 2D/3D segmentation (patch-trained models on whole images).

Windows of ``window`` size are placed on a regular grid (step = window x (1 - overlap), the last
window flush with the border — the same grid as MONAI's ``sliding_window_inference``); each
window's output is weighted by an importance map (``constant``, or ``gaussian``: centred, sigma =
``sigma_scale`` x window, as nnU-Net/MONAI, because predictions near a window's edge see less
context) and the weighted outputs are averaged. Images smaller than the window are padded (centred) and
the output cropped back. Optional test-time augmentation averages the outputs over flips.

Memory: the input, one accumulator of ``(N, K, *spatial)`` float32 and one weight map — the windows
are run ``batch_size`` at a time, never all at once.

Also here: the batching every task shares (:func:`iterate_batches`) and whole-image prediction of a
split in eval mode on any device (:func:`predict_proba`).
"""

from __future__ import annotations

import itertools
import math
from typing import Any, Callable, Iterator, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from openmia.errors import ConfigError


def iterate_batches(n: int, batch_size: int, *, shuffle: bool, gen: torch.Generator | None = None) -> Iterator[np.ndarray]:
    """Index batches over ``n`` cases; shuffled with the torch generator ``gen``."""
    order = torch.randperm(n, generator=gen).numpy() if shuffle else np.arange(n)
    for s in range(0, n, batch_size):
        # sorted indices read the (possibly strided) uint8 array faster; order within a batch is irrelevant
        yield np.sort(order[s : s + batch_size])


def predict_proba(model, task: Any, images: np.ndarray, normalization: str, batch_size: int, *, tta: bool = False,
                  scales: Sequence[float] = (1.0,), device: torch.device | None = None) -> np.ndarray:
    """Probabilities ``(N, K)`` (segmentation ``(N, K, *spatial)``) for images ``(N, C, *spatial)``
    in eval mode, on the model's device; ``task.probabilities`` turns logits into probabilities,
    ``tta`` averages the logits over every combination of axis flips, ``scales`` over input
    scale factors (:func:`multiscale_logits`)."""
    from openmia.transforms.intensity import to_float_tensor

    device = device if device is not None else next(model.parameters()).device
    model.eval()
    out = []
    with torch.no_grad():
        for idx in iterate_batches(len(images), batch_size, shuffle=False):
            x = to_float_tensor(images[idx], normalization).to(device, non_blocking=device.type == "cuda")
            out.append(task.probabilities(multiscale_logits(x, lambda xs: flip_tta_logits(model, xs, tta), scales)))
    return np.concatenate(out, axis=0) if out else np.zeros((0, task.num_outputs()))


def window_starts(size: int, window: int, overlap: float) -> list[int]:
    """Start offsets along one axis (MONAI's grid: step = int(window (1 - overlap)), last clipped)."""
    if size <= window:
        return [0]
    step = max(1, int(window * (1 - overlap)))
    n = math.ceil((size - window) / step) + 1
    return sorted({min(i * step, size - window) for i in range(n)})


def importance_map(window: Sequence[int], mode: str = "gaussian", sigma_scale: float = 0.125) -> torch.Tensor:
    """Weights ``window``-shaped: 1 everywhere (``constant``) or a separable Gaussian with max 1."""
    if mode == "constant":
        return torch.ones(tuple(window))
    if mode != "gaussian":
        raise ConfigError(f"sliding-window mode must be 'gaussian' or 'constant', found {mode!r}")
    w = torch.ones(())
    for n in window:
        x = torch.arange(n, dtype=torch.float32) - (n - 1) / 2
        g = torch.exp(-0.5 * (x / max(sigma_scale * n, 1e-6)) ** 2)
        w = w.unsqueeze(-1) * g
    w = w / w.max()
    return w.clamp_min(1e-3)  # no zero weights at the window corners: every voxel gets a prediction


def sliding_window_inference(image: torch.Tensor, predictor: Callable[[torch.Tensor], torch.Tensor],
                             window: Sequence[int], *, overlap: float = 0.5, batch_size: int = 4,
                             mode: str = "gaussian", sigma_scale: float = 0.125, flip_tta: bool = False) -> torch.Tensor:
    """Predict a whole image ``(N, C, *spatial)`` -> ``(N, K, *spatial)`` window by window.

    Args:
        predictor: maps ``(B, C, *window)`` to ``(B, K, *window)`` (e.g. a model in eval mode).
        window: window size per spatial axis.
        overlap: fraction of a window shared with its neighbour, in [0, 1).
        flip_tta: also predict every axis-flip combination (2^d passes) and average.
    """
    d = image.dim() - 2
    window = tuple(int(w) for w in window)
    if d not in (2, 3) or len(window) != d:
        raise ConfigError(f"sliding window: image (N, C, *spatial) with 2 or 3 spatial axes and one window size per axis, "
                          f"found image {tuple(image.shape)} and window {window}")
    if not 0 <= overlap < 1:
        raise ConfigError(f"sliding window: overlap must be in [0, 1), found {overlap}")
    size = image.shape[2:]
    # an image smaller than the window is zero-padded on both sides, centred (as MONAI, and as the
    # catalogue pads small volumes for training), and cropped back at the end
    pad = [max(0, w - s) for s, w in zip(size, window)]
    before = [q // 2 for q in pad]
    if any(pad):
        image = F.pad(image, [p for q, b in zip(reversed(pad), reversed(before)) for p in (b, q - b)])
    full = image.shape[2:]
    weight = importance_map(window, mode, sigma_scale).to(image.device)
    starts = [window_starts(s, w, overlap) for s, w in zip(full, window)]
    slices = [tuple(slice(a, a + w) for a, w in zip(pos, window)) for pos in itertools.product(*starts)]
    out = None
    norm = torch.zeros((1, 1, *full), device=image.device)
    for n in range(image.shape[0]):
        for i in range(0, len(slices), batch_size):
            chunk = slices[i : i + batch_size]
            x = torch.cat([image[(slice(n, n + 1), slice(None), *sl)] for sl in chunk])
            y = flip_tta_logits(predictor, x, flip_tta)
            if y.shape[2:] != x.shape[2:] or y.shape[0] != x.shape[0]:
                raise ConfigError(f"sliding window: the predictor returned {tuple(y.shape)} for windows {tuple(x.shape)}; "
                                  "expected (B, K, *window)")
            if out is None:
                out = torch.zeros((image.shape[0], y.shape[1], *full), dtype=torch.float32, device=image.device)
            for j, sl in enumerate(chunk):
                out[(slice(n, n + 1), slice(None), *sl)] += y[j : j + 1] * weight
                if n == 0:
                    norm[(0, 0, *sl)] += weight
    out /= norm
    return out[(slice(None), slice(None), *(slice(b, b + s) for b, s in zip(before, size)))]


def flip_tta_logits(predictor: Callable[[torch.Tensor], torch.Tensor], image: torch.Tensor, tta: bool = True) -> torch.Tensor:
    """Logits ``(N, K, *spatial)`` of a whole image ``(N, C, *spatial)`` in one pass, or with ``tta``
    averaged over every combination of axis flips (2^d passes, each flipped back)."""
    if not tta:
        return predictor(image)
    axes = range(2, image.dim())
    flips = [c for r in range(len(axes) + 1) for c in itertools.combinations(axes, r)]
    return sum(torch.flip(predictor(torch.flip(image, f)), f) if f else predictor(image) for f in flips) / len(flips)


def multiscale_logits(image: torch.Tensor, logits_fn: Callable[[torch.Tensor], torch.Tensor],
                      scales: Sequence[float] = (1.0,)) -> torch.Tensor:
    """Logits ``(N, K, *spatial)`` averaged over input scales (multi-scale test-time augmentation).

    For each factor ``s`` the image ``(N, C, *spatial)`` is resized to ``round(s x size)`` per axis
    (bilinear / trilinear), ``logits_fn`` predicts on it, and its logits are resized back to the
    image's size; scale 1 is the image itself. Zooming out (s < 1) lets a model see large
    structures whole; zooming in (s > 1) shows small ones with more pixels.
    """
    if not scales or any(isinstance(s, bool) or not isinstance(s, (int, float)) or not 0 < s <= 4 for s in scales):
        raise ConfigError(f"multi-scale TTA: expected scale factors in (0, 4], found {list(scales)!r}")
    if tuple(scales) == (1.0,):  # the plain prediction, without a second accumulator (CT-sized volumes)
        return logits_fn(image)
    size = tuple(image.shape[2:])
    mode = {1: "linear", 2: "bilinear", 3: "trilinear"}[len(size)]
    total = None
    for s in scales:
        if s == 1:
            out = logits_fn(image)
        else:
            scaled = tuple(max(1, round(n * s)) for n in size)
            out = logits_fn(F.interpolate(image, size=scaled, mode=mode, align_corners=False))
            out = F.interpolate(out.float(), size=size, mode=mode, align_corners=False)
        if total is None:
            total = out.to(torch.float32, copy=True)  # never accumulate into a tensor the predictor owns
        else:
            total += out  # in place: one accumulator besides the current scale's logits
        del out
    return total.div_(len(scales))
