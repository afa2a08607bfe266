"""Detection models: an anchor-free CenterNet-style detector (Zhou et al., "Objects as Points", 2019).

The network predicts, on a grid of stride ``stride``, a per-class centre heatmap (sigmoid), a box
size (w, h) and a sub-cell offset. Training targets are Gaussian splats at object centres
(:func:`centernet_targets`) with the focal loss of CornerNet/CenterNet; decoding keeps heatmap
peaks (3x3 max-pooling instead of NMS) above a score threshold.

Detector protocol (DESIGN §2; every detection model, also :class:`openmia.models.fcos.FCOS`):

- ``points: bool``: True for a point detector (``"points"`` ``(n, 2)`` x y instead of ``"boxes"``
  ``(n, 4)`` x1 y1 x2 y2);
- ``forward(x)`` returns the raw head outputs (a dict of tensors, batch first);
- ``compute_loss(out, boxes, labels) -> Tensor`` with ``out = model(x)`` in train mode,
  ``boxes[i]`` ``(n_i, 4)`` (or ``(n_i, 2)`` points) float in input pixels, ``labels[i]`` ``(n_i,)``
  long in 0..K-1; images may have no objects;
- ``detect(x, *, score_threshold, max_detections, nms_iou) -> list[dict]`` (no grad; one
  ``dict(boxes | points, scores (n,), labels (n,))`` per image, by decreasing score, coordinates
  in input pixels, clipped to the image). It uses the current mode: call ``model.eval()`` first.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from openmia.errors import ConfigError
from openmia.models import register_model
from openmia.models.blocks import check_args
from openmia.models.box_ops import batched_nms
from openmia.models.segmentation import UNet


class CenterNet(nn.Module):
    """U-Net backbone at full resolution, pooled to ``stride``, with heatmap / size / offset heads.

    2D predicts boxes or points; 3D (``dims=3``, volumes ``(N, C, D, H, W)``) predicts points
    ``(n, 3)`` x y z (x along W, y along H, z along D), e.g. nuclei or lesion centres.
    """

    def __init__(self, in_channels: int, num_classes: int, *, dims: int = 2, width: int = 16, depth: int = 3, stride: int = 4,
                 points: bool = False) -> None:
        super().__init__()
        if stride not in (1, 2, 4, 8):
            raise ConfigError(f"centernet stride must be 1, 2, 4 or 8, found {stride}")
        if dims == 3 and not points:
            raise ConfigError("centernet in 3D predicts points only; set model.kwargs.points=true (3D boxes are not supported)")
        self.num_classes, self.stride, self.points, self.dims = num_classes, stride, points, dims
        feat = 2 * width
        Conv = nn.Conv2d if dims == 2 else nn.Conv3d
        self.backbone = UNet(dims, in_channels, feat, depth=depth, width=width, norm="batch")

        def head(out: int) -> nn.Sequential:
            return nn.Sequential(Conv(feat, feat, 3, padding=1), nn.ReLU(inplace=True), Conv(feat, out, 1))

        self.heat, self.size, self.offset = head(num_classes), head(dims), head(dims)
        # focal-loss prior: initial heatmap probability 0.1 (CenterNet's -2.19 bias)
        nn.init.constant_(self.heat[-1].bias, -math.log((1 - 0.1) / 0.1))

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """``(N, C, *spatial)`` -> ``{"heatmap": (N, K, *spatial/s) logits, "size": (N, dims, ...), "offset": (N, dims, ...)}``
        (size/offset channels in x, y[, z] order)."""
        f = F.relu(self.backbone(x))
        if self.stride > 1:
            f = (F.avg_pool2d if self.dims == 2 else F.avg_pool3d)(f, self.stride, ceil_mode=True)
        return {"heatmap": self.heat(f), "size": self.size(f), "offset": self.offset(f)}

    def compute_loss(self, out: dict[str, torch.Tensor], boxes: list[torch.Tensor], labels: list[torch.Tensor]) -> torch.Tensor:
        """:func:`centernet_loss` against :func:`centernet_targets` built on ``out["heatmap"]``'s grid and device.

        ``boxes[i]``: ``(n_i, 4)`` x1 y1 x2 y2 (``(n_i, dims)`` x y [z] with ``points``) in input pixels;
        ``labels[i]``: ``(n_i,)`` in 0..K-1; images may be empty.
        """
        heat = out["heatmap"]
        dim = self.dims if self.points else 4
        target = centernet_targets([b.detach().cpu().float().reshape(-1, dim) for b in boxes],
                                   [lab.detach().cpu() for lab in labels], self.num_classes, tuple(heat.shape[2:]),
                                   self.stride, points=self.points)
        return centernet_loss(out, {k: v.to(device=heat.device, dtype=heat.dtype) for k, v in target.items()})

    @torch.no_grad()
    def detect(self, x: torch.Tensor, *, score_threshold: float = 0.1, max_detections: int = 300,
               nms_iou: float | None = None) -> list[dict[str, torch.Tensor]]:
        """Decoded detections per image (see the module docstring), coordinates clipped to the image.

        ``nms_iou``: ``None``/<=0 keeps every heatmap peak (3x3 local maxima, CenterNet's own
        rule); otherwise boxes also go through class-aware NMS at that IoU (peaks of one object at
        distant cells can survive the 3x3 pooling). Points skip NMS: the peak rule already
        suppresses neighbours, and an IoU has no meaning for points.
        """
        out = self(x)
        heat = torch.sigmoid(out["heatmap"])
        pool = F.max_pool2d if self.dims == 2 else F.max_pool3d
        peaks = heat * (pool(heat, 3, 1, 1) == heat)  # local maxima only (replaces NMS)
        n, k = heat.shape[:2]
        grid = heat.shape[2:]  # (h, w) or (d, h, w)
        cells = math.prod(grid)
        extent = x.shape[2:][::-1]  # input size in x, y[, z] order
        results = []
        for i in range(n):
            scores, idx = peaks[i].reshape(-1).topk(min(max_detections, k * cells))
            keep = scores >= score_threshold
            scores, idx = scores[keep], idx[keep]
            labels = idx // cells
            pos = torch.stack(torch.unravel_index(idx % cells, grid))  # (dims, n) in array order (z,) y, x
            off = out["offset"][i][(slice(None), *pos)]  # (dims, n) in x, y[, z] order
            centre = torch.stack([((pos[-1 - a].float() + off[a]) * self.stride).clamp(0, extent[a]) for a in range(self.dims)], 1)
            res = {"scores": scores, "labels": labels}
            if self.points:
                res["points"] = centre
            else:
                sz = out["size"][i][(slice(None), *pos)].clamp_min(0).T * self.stride
                boxes = torch.cat([centre - sz / 2, centre + sz / 2], 1)
                boxes[:, 0::2] = boxes[:, 0::2].clamp(0, extent[0])
                boxes[:, 1::2] = boxes[:, 1::2].clamp(0, extent[1])
                res["boxes"] = boxes
                if nms_iou is not None and nms_iou > 0:
                    kept = batched_nms(boxes, scores, labels, nms_iou)
                    res = {key: v[kept] for key, v in res.items()}
            results.append(res)
        return results


def centernet_targets(boxes: list[torch.Tensor], labels: list[torch.Tensor], num_classes: int, out_shape: tuple[int, ...],
                      stride: int, *, points: bool = False, radius: float | None = None) -> dict[str, torch.Tensor]:
    """Heatmap (Gaussian splats, max-combined), size/offset targets and their mask at the centres.

    ``out_shape``: the output grid ``(h, w)`` or, for 3D points, ``(d, h, w)``.
    ``boxes[i]``: ``(n, 4)`` x1 y1 x2 y2 (or ``(n, dims)`` points x y [z] with ``points=True``) in
    input pixels. The Gaussian's sigma follows the object size (box: a third of the smaller
    output-grid side, at least 1; points: ``radius`` or 2 cells). Size/offset channels are in
    x, y[, z] order.
    """
    dims = len(out_shape)
    n = len(boxes)
    heat = torch.zeros(n, num_classes, *out_shape)
    size = torch.zeros(n, dims, *out_shape)
    offset = torch.zeros(n, dims, *out_shape)
    mask = torch.zeros(n, 1, *out_shape)
    axes = torch.meshgrid(*(torch.arange(s, dtype=torch.float32) for s in out_shape), indexing="ij")  # array order
    for i, (b, lab) in enumerate(zip(boxes, labels)):
        for j in range(len(b)):
            if points:
                c = [float(v) / stride for v in b[j, :dims]]  # x, y[, z]
                sigma = radius if radius is not None else 2.0
                extent = [0.0] * dims
            else:
                x1, y1, x2, y2 = (float(v) for v in b[j])
                c = [(x1 + x2) / 2 / stride, (y1 + y2) / 2 / stride]
                extent = [(x2 - x1) / stride, (y2 - y1) / stride]
                sigma = max(1.0, min(extent) / 3)
            # integer cell per axis, x, y[, z] order; out_shape is in array order (z,) y, x
            cell = [min(max(int(v), 0), out_shape[dims - 1 - a] - 1) for a, v in enumerate(c)]
            at = tuple(cell[::-1])  # array index (z,) y, x
            g = torch.exp(-sum((ax - cell[dims - 1 - a]) ** 2 for a, ax in enumerate(axes)) / (2 * sigma**2))
            k = int(lab[j])
            heat[i, k] = torch.maximum(heat[i, k], g)
            heat[(i, k, *at)] = 1.0
            size[(i, slice(None), *at)] = torch.tensor(extent)
            offset[(i, slice(None), *at)] = torch.tensor([v - q for v, q in zip(c, cell)])
            mask[(i, 0, *at)] = 1.0
    return {"heatmap": heat, "size": size, "offset": offset, "mask": mask}


def centernet_loss(out: dict[str, torch.Tensor], target: dict[str, torch.Tensor], *, size_weight: float = 0.1,
                   alpha: float = 2.0, beta: float = 4.0) -> torch.Tensor:
    """CenterNet loss: penalty-reduced focal loss on the heatmap (normalised by the number of
    objects) + L1 on size (x ``size_weight``) and offset at object centres."""
    p = torch.sigmoid(out["heatmap"]).clamp(1e-4, 1 - 1e-4)
    gt = target["heatmap"]
    pos = gt.eq(1).float()
    neg_w = (1 - gt) ** beta
    pos_loss = (torch.log(p) * (1 - p) ** alpha * pos).sum()
    neg_loss = (torch.log(1 - p) * p**alpha * neg_w * (1 - pos)).sum()
    n_obj = pos.sum().clamp_min(1.0)
    focal = -(pos_loss + neg_loss) / n_obj
    m = target["mask"]
    n_comp = out["size"].shape[1]
    l1 = lambda a, b: (F.l1_loss(a * m, b * m, reduction="sum") / (m.sum() * n_comp).clamp_min(1.0))  # noqa: E731
    return focal + size_weight * l1(out["size"], target["size"]) + l1(out["offset"], target["offset"])


@register_model("centernet", task="detection", dims=(2, 3), family="centernet")
def centernet(in_channels: int, num_classes: int, dims: int = 2, input_size: int = 256, width: int = 16, depth: int = 3,
              stride: int = 4, points: bool = False) -> nn.Module:
    """CenterNet-style anchor-free detector (Zhou et al. 2019): centre heatmap + size + offset; boxes or
    points in 2D, points in 3D."""
    check_args("centernet", in_channels=in_channels, num_classes=num_classes, dims=dims, input_size=input_size, supported=(2, 3))
    return CenterNet(in_channels, num_classes, dims=dims, width=width, depth=depth, stride=stride, points=points)


class DensityCounter(nn.Module):
    """Density-map regression for counting (Lempitsky & Zisserman 2010 with a U-Net, as in later
    work): ``(N, C, H, W)`` -> non-negative density ``(N, 1, H, W)`` in units of ``1/scale`` cells
    per pixel; the count is ``sum / scale``. Targets are scaled by ``scale`` (100) because a
    unit-mass Gaussian peaks near 0.04: unscaled, the MSE is minimised by predicting ~0."""

    scale = 100.0

    def __init__(self, in_channels: int, *, width: int = 16, depth: int = 3) -> None:
        super().__init__()
        self.net = UNet(2, in_channels, 1, depth=depth, width=width, norm="batch")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.net(x))  # exact zeros on the background (softplus leaves ~0.7 per pixel)

    @torch.no_grad()
    def count(self, x: torch.Tensor) -> torch.Tensor:
        """Counts ``(N,)``."""
        return self(x).sum(dim=(1, 2, 3)) / self.scale


def density_loss(pred: torch.Tensor, density: torch.Tensor, *, scale: float = DensityCounter.scale,
                 count_weight: float = 0.01) -> torch.Tensor:
    """Pixel MSE against the scaled target density + a small L1 term on the per-image count."""
    counts = pred.sum(dim=(1, 2, 3)) / scale
    return F.mse_loss(pred, density * scale) + count_weight * (counts - density.sum(dim=(1, 2, 3))).abs().mean()


@register_model("density_counter", task="counting", dims=(2,), family="unet")
def density_counter(in_channels: int, num_classes: int = 1, dims: int = 2, input_size: int = 128, width: int = 16,
                    depth: int = 3) -> nn.Module:
    """U-Net density-map counter (count = integral of the predicted density)."""
    check_args("density_counter", in_channels=in_channels, num_classes=num_classes, dims=dims, input_size=input_size,
               supported=(2,))
    return DensityCounter(in_channels, width=width, depth=depth)
