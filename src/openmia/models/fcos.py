"""FCOS: fully convolutional one-stage, anchor-free box detector (Tian et al., ICCV 2019), sized for a CPU.

A small ResNet (BasicBlocks) gives features at each of ``strides``; a light FPN merges them top-down;
one head shared by all levels predicts per location a class score (sigmoid focal loss), a
"centerness" (BCE) and the distances ``(l, t, r, b)`` from the location to the four box sides (GIoU
loss). Training targets (:func:`fcos_targets`): a location is positive for a box when it lies inside
the box's centre region (``center_radius`` strides around the centre, clipped to the box: the
"centre sampling" of the FCOS follow-ups) and its largest distance ``max(l, t, r, b)`` falls in its
level's size range; a location claimed by several boxes takes the smallest. Decoding: score =
sqrt(class probability x centerness), top-k per level, score threshold, class-aware NMS.

Beside :class:`openmia.models.detection.CenterNet` (one stride-4 grid, Gaussian centre heatmap,
peak picking) this is the second, different design: dense per-location boxes on a feature pyramid.

Output contract (DESIGN §2, the detector protocol of ``openmia.models.detection``): ``forward``
returns the raw, flattened head outputs (every value has the batch first; ``L`` = locations over
all levels, level by level, row-major within a level)::

    cls_logits (N, L, K)   box_reg (N, L, 4) l, t, r, b in input pixels (> 0)
    centerness (N, L)      locations (N, L, 2) x, y in input pixels   strides (N, L)

:meth:`FCOS.compute_loss` takes that and the truth boxes; :meth:`FCOS.detect` returns one
``dict(boxes (n, 4), scores (n,), labels (n,))`` per image, boxes clipped to the image.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from openmia.errors import ConfigError
from openmia.models import register_model
from openmia.models.blocks import BasicBlock, check_args, check_positive_ints, conv_bn_relu
from openmia.models.box_ops import batched_nms

_MAX_LOG_DIST = 10.0  # clamp before exp(): no overflow from a diverging head


def _level_channels(width: int, k: int) -> int:
    """Backbone channels at stride ``2**k``: ``width`` up to stride 4, then doubling, capped at 8x."""
    return width * min(2 ** max(k - 2, 0), 8)


def _gn(channels: int) -> nn.GroupNorm:
    return nn.GroupNorm(math.gcd(channels, 8), channels)


def centerness_target(reg: torch.Tensor) -> torch.Tensor:
    """FCOS centerness ``sqrt(min(l, r)/max(l, r) * min(t, b)/max(t, b))`` of distances ``(..., 4)`` -> ``(...)``."""
    lr, tb = reg[..., [0, 2]], reg[..., [1, 3]]
    c = (lr.min(-1).values / lr.max(-1).values.clamp_min(1e-6)) * (tb.min(-1).values / tb.max(-1).values.clamp_min(1e-6))
    return c.clamp_min(0).sqrt()


def fcos_targets(locations: torch.Tensor, strides: torch.Tensor, ranges: torch.Tensor, boxes: torch.Tensor,
                 labels: torch.Tensor, *, center_radius: float | None = 1.5) -> tuple[torch.Tensor, torch.Tensor]:
    """FCOS target assignment for one image.

    Args:
        locations: ``(L, 2)`` x, y of every location in input pixels; ``strides``: ``(L,)`` its stride.
        ranges: ``(L, 2)`` its level's size range: positive only if ``lo < max(l, t, r, b) <= hi``.
        boxes: ``(n, 4)`` x1 y1 x2 y2 in input pixels; ``labels``: ``(n,)`` in 0..K-1.
        center_radius: positives only within ``center_radius * stride`` of the box centre (clipped
            to the box); ``None`` or 0 = anywhere inside the box (the original FCOS).

    Returns:
        ``labels (L,)`` long, ``-1`` for background, and ``reg (L, 4)``: distances l, t, r, b from
        each location to the sides of its assigned box (zeros on background).
    """
    n_loc = len(locations)
    if len(boxes) == 0:
        return torch.full((n_loc,), -1, dtype=torch.long, device=locations.device), locations.new_zeros(n_loc, 4)
    boxes = boxes.to(locations)
    x, y = locations[:, 0:1], locations[:, 1:2]  # (L, 1) against (n,) boxes
    x1, y1, x2, y2 = boxes.unbind(1)
    reg = torch.stack([x - x1, y - y1, x2 - x, y2 - y], -1)  # (L, n, 4)
    if center_radius:
        r = center_radius * strides[:, None]
        cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
        inside = ((x > torch.maximum(x1, cx - r)) & (x < torch.minimum(x2, cx + r))
                  & (y > torch.maximum(y1, cy - r)) & (y < torch.minimum(y2, cy + r)))
    else:
        inside = reg.min(-1).values > 0
    max_reg = reg.max(-1).values
    in_range = (max_reg > ranges[:, 0:1]) & (max_reg <= ranges[:, 1:2])
    area = ((x2 - x1) * (y2 - y1))[None].expand(n_loc, -1)
    area = torch.where(inside & in_range, area, torch.full_like(area, math.inf))
    best_area, best = area.min(1)  # ambiguous locations take the smallest box
    target = labels.to(locations.device).long()[best]
    target[torch.isinf(best_area)] = -1
    reg = reg[torch.arange(n_loc, device=locations.device), best]
    return target, reg * (target >= 0)[:, None]


def sigmoid_focal_loss(logits: torch.Tensor, target: torch.Tensor, *, alpha: float = 0.25, gamma: float = 2.0) -> torch.Tensor:
    """Elementwise focal loss (Lin et al. 2017) of logits against 0/1 targets of the same shape."""
    p = torch.sigmoid(logits)
    ce = F.binary_cross_entropy_with_logits(logits, target, reduction="none")
    p_t = p * target + (1 - p) * (1 - target)
    return (alpha * target + (1 - alpha) * (1 - target)) * (1 - p_t) ** gamma * ce


def giou_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """``1 - GIoU`` of boxes given as distances ``(n, 4)`` l, t, r, b from the same locations -> ``(n,)``."""
    pl, pt, pr, pb = pred.unbind(-1)
    tl, tt, tr, tb = target.unbind(-1)
    area_p, area_t = (pl + pr) * (pt + pb), (tl + tr) * (tt + tb)
    inter = (torch.minimum(pl, tl) + torch.minimum(pr, tr)) * (torch.minimum(pt, tt) + torch.minimum(pb, tb))
    union = area_p + area_t - inter
    enclose = (torch.maximum(pl, tl) + torch.maximum(pr, tr)) * (torch.maximum(pt, tt) + torch.maximum(pb, tb))
    iou = inter / union.clamp_min(1e-6)
    return 1 - (iou - (enclose - union) / enclose.clamp_min(1e-6))


class FCOS(nn.Module):
    """FCOS detector (see the module docstring).

    Args:
        in_channels, num_classes: image channels and object classes K (no background class).
        width: channels of the first backbone stage (stride 2 and 4); doubling per stage after, capped at 8x.
        strides: pyramid strides, increasing powers of two in 2..128. The default (4, 8, 16) suits
            small objects (cells, 10-150 px): objects need a side of at least about the smallest
            stride to own a location.
        blocks: BasicBlocks per backbone stage.
        fpn_channels: FPN / head channels (default ``4 * width``).
        head_convs: conv-GroupNorm-ReLU layers in each head tower (FCOS uses 4; 2 is cheaper on a CPU).
        size_ranges: the ``len(strides) - 1`` boundaries, in pixels of ``max(l, t, r, b)``, between
            consecutive levels (default ``8 * stride`` of the finer level, FCOS's 64/128/... rule).
        center_radius: centre-sampling radius in strides (``None``/0: the whole box).
        focal_alpha, focal_gamma: focal-loss parameters.
    """

    points = False

    def __init__(self, in_channels: int, num_classes: int, *, width: int = 16, strides: Sequence[int] = (4, 8, 16),
                 blocks: int = 1, fpn_channels: int | None = None, head_convs: int = 2,
                 size_ranges: Sequence[float] | None = None, center_radius: float | None = 1.5,
                 focal_alpha: float = 0.25, focal_gamma: float = 2.0) -> None:
        super().__init__()
        strides = tuple(int(s) for s in strides)
        if any(s < 2 or s > 128 or s & (s - 1) for s in strides) or list(strides) != sorted(set(strides)):
            raise ConfigError(f"fcos strides must be increasing powers of two in 2..128, found {strides}")
        if size_ranges is None:
            size_ranges = [8.0 * s for s in strides[:-1]]
        if len(size_ranges) != len(strides) - 1 or list(size_ranges) != sorted(size_ranges):
            raise ConfigError(f"fcos size_ranges must be {len(strides) - 1} increasing boundaries, found {size_ranges}")
        self.num_classes, self.strides = num_classes, strides
        self.center_radius, self.focal_alpha, self.focal_gamma = center_radius, focal_alpha, focal_gamma
        bounds = [0.0, *map(float, size_ranges), math.inf]
        self.size_ranges = [(bounds[i], bounds[i + 1]) for i in range(len(strides))]
        fpn = fpn_channels or 4 * width
        # backbone: a stride-2 stem, then one stage (blocks x BasicBlock, the first strided) per octave
        self.stem = conv_bn_relu(2, in_channels, width, 3, stride=2)
        self.stages = nn.ModuleList()
        cin = width
        for k in range(2, int(math.log2(strides[-1])) + 1):
            c = _level_channels(width, k)
            self.stages.append(nn.Sequential(BasicBlock(2, cin, c, stride=2), *[BasicBlock(2, c, c) for _ in range(blocks - 1)]))
            cin = c
        level_ch = [_level_channels(width, int(math.log2(s))) for s in strides]
        self.lateral = nn.ModuleList([nn.Conv2d(c, fpn, 1) for c in level_ch])
        self.smooth = nn.ModuleList([nn.Conv2d(fpn, fpn, 3, padding=1) for _ in strides])

        def tower() -> nn.Sequential:  # GroupNorm: the head is shared by levels with different statistics
            layers = [(nn.Conv2d(fpn, fpn, 3, padding=1), _gn(fpn), nn.ReLU(inplace=True)) for _ in range(head_convs)]
            return nn.Sequential(*[m for trio in layers for m in trio])

        self.cls_tower, self.box_tower = tower(), tower()
        self.cls_logits = nn.Conv2d(fpn, num_classes, 3, padding=1)
        self.box_pred = nn.Conv2d(fpn, 4, 3, padding=1)
        self.ctr_pred = nn.Conv2d(fpn, 1, 3, padding=1)  # on the box tower (FCOS follow-up: better than on cls)
        self.scales = nn.Parameter(torch.ones(len(strides)))  # per-level scale of the shared box head
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
        for m in [*self.cls_tower, *self.box_tower, self.cls_logits, self.box_pred, self.ctr_pred]:
            if isinstance(m, nn.Conv2d):
                nn.init.normal_(m.weight, std=0.01)
                nn.init.zeros_(m.bias)
        # focal-loss prior: every location starts at foreground probability 0.01 (RetinaNet/FCOS)
        nn.init.constant_(self.cls_logits.bias, -math.log((1 - 0.01) / 0.01))

    def features(self, x: torch.Tensor) -> list[torch.Tensor]:
        """FPN maps ``(N, fpn_channels, ceil(H/s), ceil(W/s))`` for each stride ``s``, finest first."""
        f = self.stem(x)
        feats = {2: f}
        for k, stage in enumerate(self.stages, start=2):
            f = stage(f)
            feats[2**k] = f
        c = [feats[s] for s in self.strides]
        p = self.lateral[-1](c[-1])
        outs = [self.smooth[-1](p)]
        for i in range(len(c) - 2, -1, -1):  # top-down: coarse context added to finer levels
            p = self.lateral[i](c[i]) + F.interpolate(p, size=c[i].shape[-2:], mode="nearest")
            outs.insert(0, self.smooth[i](p))
        return outs

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """``(N, C, H, W)`` -> the flattened head outputs of the module docstring."""
        n = x.shape[0]
        cls, box, ctr, locs, strides = [], [], [], [], []
        for level, (p, s) in enumerate(zip(self.features(x), self.strides)):
            ct, bt = self.cls_tower(p), self.box_tower(p)
            h, w = p.shape[-2:]
            cls.append(self.cls_logits(ct).flatten(2).transpose(1, 2))
            # exp keeps distances positive; dividing by the stride (x s) makes the shared head scale-free
            reg = torch.exp((self.scales[level] * self.box_pred(bt)).clamp(max=_MAX_LOG_DIST)) * s
            box.append(reg.flatten(2).transpose(1, 2))
            ctr.append(self.ctr_pred(bt).flatten(1))
            ys, xs = torch.meshgrid(torch.arange(h, device=x.device), torch.arange(w, device=x.device), indexing="ij")
            # cell centres, float32 even under autocast (bf16 would round pixel coordinates)
            locs.append((torch.stack([xs, ys], -1).reshape(-1, 2).float() + 0.5) * s)
            strides.append(torch.full((h * w,), float(s), device=x.device))
        loc, st = torch.cat(locs), torch.cat(strides)
        return {"cls_logits": torch.cat(cls, 1), "box_reg": torch.cat(box, 1), "centerness": torch.cat(ctr, 1),
                "locations": loc.expand(n, -1, -1), "strides": st.expand(n, -1)}

    def targets(self, out: dict[str, torch.Tensor], boxes: list[torch.Tensor],
                labels: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """Assigned class ``(N, L)`` (-1 = background) and distances ``(N, L, 4)`` for a batch (:func:`fcos_targets`)."""
        loc, st = out["locations"][0], out["strides"][0]
        ranges = torch.zeros(len(st), 2, device=st.device, dtype=st.dtype)
        for s, (lo, hi) in zip(self.strides, self.size_ranges):
            ranges[st == s] = torch.tensor([lo, hi], device=st.device, dtype=st.dtype)
        pairs = [fcos_targets(loc, st, ranges, b.reshape(-1, 4), lab, center_radius=self.center_radius)
                 for b, lab in zip(boxes, labels)]
        return torch.stack([p[0] for p in pairs]), torch.stack([p[1] for p in pairs])

    def compute_loss(self, out: dict[str, torch.Tensor], boxes: list[torch.Tensor], labels: list[torch.Tensor]) -> torch.Tensor:
        """Focal loss (all locations) + centerness-weighted GIoU + centerness BCE (positives), each per positive.

        ``boxes[i]`` ``(n_i, 4)`` x1 y1 x2 y2 in input pixels, ``labels[i]`` ``(n_i,)``; images may be empty.
        """
        cls_t, reg_t = self.targets(out, boxes, labels)
        pos = cls_t >= 0
        num_pos = pos.sum().clamp_min(1).float()
        onehot = torch.zeros_like(out["cls_logits"])
        onehot[pos, cls_t[pos]] = 1.0
        cls_loss = sigmoid_focal_loss(out["cls_logits"], onehot, alpha=self.focal_alpha, gamma=self.focal_gamma).sum() / num_pos
        ctr_t = centerness_target(reg_t[pos])
        # boxes weighted by their centerness: off-centre locations predict poorer boxes (FCOS)
        box_loss = (giou_loss(out["box_reg"][pos], reg_t[pos]) * ctr_t).sum() / ctr_t.sum().clamp_min(1e-6)
        ctr_loss = F.binary_cross_entropy_with_logits(out["centerness"][pos], ctr_t, reduction="sum") / num_pos
        return cls_loss + box_loss + ctr_loss

    @torch.no_grad()
    def detect(self, x: torch.Tensor, *, score_threshold: float = 0.05, max_detections: int = 300,
               nms_iou: float | None = 0.5, pre_nms_top_k: int = 1000) -> list[dict[str, torch.Tensor]]:
        """Decoded detections per image: ``boxes (n, 4)`` clipped to the image, ``scores (n,)``, ``labels (n,)``.

        score = sqrt(class probability x centerness); per level the ``pre_nms_top_k`` best
        (location, class) pairs above ``score_threshold``; then class-aware NMS at ``nms_iou``
        (``None``/<=0: none) and the ``max_detections`` best. Uses the current mode: call ``eval()`` first.
        """
        out = self(x)
        h, w = x.shape[-2:]
        k = self.num_classes
        scores_all = torch.sqrt(torch.sigmoid(out["cls_logits"]) * torch.sigmoid(out["centerness"])[..., None])
        st = out["strides"][0]
        results = []
        for i in range(x.shape[0]):
            cand_s, cand_loc, cand_lab = [], [], []
            for s in self.strides:
                idx_l = torch.nonzero(st == s).flatten()
                sc = scores_all[i, idx_l].flatten()
                sel = torch.nonzero(sc >= score_threshold).flatten()
                if len(sel) > pre_nms_top_k:
                    sel = sel[sc[sel].topk(pre_nms_top_k).indices]
                cand_s.append(sc[sel])
                cand_loc.append(idx_l[sel // k])
                cand_lab.append(sel % k)
            scores, loc_idx, labels = torch.cat(cand_s), torch.cat(cand_loc), torch.cat(cand_lab)
            loc, reg = out["locations"][i, loc_idx], out["box_reg"][i, loc_idx]
            boxes = torch.cat([loc - reg[:, :2], loc + reg[:, 2:]], 1)
            boxes[:, 0::2] = boxes[:, 0::2].clamp(0, w)
            boxes[:, 1::2] = boxes[:, 1::2].clamp(0, h)
            if nms_iou is not None and nms_iou > 0:
                keep = batched_nms(boxes, scores, labels, nms_iou)
            else:
                keep = torch.sort(scores, descending=True, stable=True).indices
            keep = keep[:max_detections]
            results.append({"boxes": boxes[keep], "scores": scores[keep], "labels": labels[keep]})
        return results


@register_model("fcos", task="detection", dims=(2,), family="fcos")
def fcos(in_channels: int, num_classes: int, dims: int = 2, input_size: int = 256, width: int = 16,
         strides: Sequence[int] = (4, 8, 16), blocks: int = 1, fpn_channels: int | None = None, head_convs: int = 2,
         center_radius: float = 1.5, points: bool = False) -> nn.Module:
    """FCOS anchor-free box detector (Tian et al. 2019): small ResNet + FPN, shared head (class, centerness, l/t/r/b)."""
    check_args("fcos", in_channels=in_channels, num_classes=num_classes, dims=dims, input_size=input_size, supported=(2,))
    if points:
        raise ConfigError("model 'fcos' is a box detector and cannot predict points; use centernet with points=true")
    strides = check_positive_ints("fcos", "strides", strides)
    for field, value, low in (("width", width, 1), ("blocks", blocks, 1), ("head_convs", head_convs, 0)):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ConfigError(f"model 'fcos': {field} must be an integer >= {low}, got {value!r}")
    return FCOS(in_channels, num_classes, width=width, strides=strides, blocks=blocks, fpn_channels=fpn_channels,
                head_convs=head_convs, center_radius=center_radius)
