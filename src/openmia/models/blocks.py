"""Building blocks shared by the model zoo, generic over 2D and 3D.

Importing this module imports torch; the registry in ``openmia.models`` imports it only on demand.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from openmia.errors import ConfigError


def check_dims(model: str, dims: int, supported: tuple[int, ...]) -> None:
    """Raise ConfigError when ``model`` does not support ``dims`` spatial dimensions."""
    if dims not in supported:
        raise ConfigError(
            f"model {model!r} supports dims {supported}, not dims={dims}; use dims="
            f"{' or '.join(map(str, supported))}, or a model with {dims}D support (e.g. resnet18, cnn_small)"
        )


def check_args(model: str, *, in_channels: int, num_classes: int, dims: int, input_size: int,
               supported: tuple[int, ...], min_size: int = 1) -> None:
    """Validate the arguments every classification factory takes; raise ConfigError naming the bad one."""
    check_dims(model, dims, supported)
    for field, value, low in (("in_channels", in_channels, 1), ("num_classes", num_classes, 1),
                              ("input_size", input_size, min_size)):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ConfigError(f"model {model!r}: {field} must be an integer >= {low}, got {value!r}")


def check_positive_ints(model: str, field: str, values) -> tuple[int, ...]:
    """``values`` as a tuple of positive ints (YAML gives lists), else ConfigError."""
    try:
        out = tuple(values)
    except TypeError:
        out = None
    if not out or any(isinstance(v, bool) or not isinstance(v, int) or v < 1 for v in out):
        raise ConfigError(f"model {model!r}: {field} must be a non-empty list of positive integers, got {values!r}")
    return out


def check_prob(model: str, field: str, value: float) -> float:
    """``value`` in [0, 1), else ConfigError (dropout rates)."""
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not 0.0 <= value < 1.0:
        raise ConfigError(f"model {model!r}: {field} must be a number in [0, 1), got {value!r}")
    return float(value)


def conv_nd(dims: int) -> type[nn.Module]:
    """``nn.Conv2d`` or ``nn.Conv3d``."""
    return {2: nn.Conv2d, 3: nn.Conv3d}[dims]


def bn_nd(dims: int) -> type[nn.Module]:
    """``nn.BatchNorm2d`` or ``nn.BatchNorm3d``."""
    return {2: nn.BatchNorm2d, 3: nn.BatchNorm3d}[dims]


def pool_nd(dims: int) -> type[nn.Module]:
    """``nn.MaxPool2d`` or ``nn.MaxPool3d``."""
    return {2: nn.MaxPool2d, 3: nn.MaxPool3d}[dims]


def adaptive_avg_pool_nd(dims: int) -> type[nn.Module]:
    """``nn.AdaptiveAvgPool2d`` or ``nn.AdaptiveAvgPool3d``."""
    return {2: nn.AdaptiveAvgPool2d, 3: nn.AdaptiveAvgPool3d}[dims]


maxpool_nd = pool_nd  # older names, kept for callers
adaptive_avgpool_nd = adaptive_avg_pool_nd


def conv_bn_relu(dims: int, cin: int, cout: int, k: int = 3, stride: int = 1) -> nn.Sequential:
    """``k``x``k`` convolution (same padding) + batch norm + ReLU."""
    return nn.Sequential(conv_nd(dims)(cin, cout, k, stride, k // 2, bias=False), bn_nd(dims)(cout), nn.ReLU(inplace=True))


class SEBlock(nn.Module):
    """Squeeze-and-excitation (Hu et al., CVPR 2018): per-channel gates in (0, 1) from global context.

    ``x * sigmoid(W2 relu(W1 mean(x)))`` for ``x`` of shape ``(N, C, *spatial)``.
    """

    def __init__(self, channels: int, reduction: int = 16) -> None:
        super().__init__()
        hidden = max(1, channels // reduction)
        self.fc1 = nn.Linear(channels, hidden)
        self.fc2 = nn.Linear(hidden, channels)

    def gate(self, x: torch.Tensor) -> torch.Tensor:
        """Per-channel gates ``(N, C)``."""
        s = x.flatten(2).mean(-1)
        return torch.sigmoid(self.fc2(F.relu(self.fc1(s))))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        g = self.gate(x)
        return x * g.view(*g.shape, *([1] * (x.dim() - 2)))


class BasicBlock(nn.Module):
    """ResNet basic block (two 3x3 convs), optional SE, for 2D or 3D."""

    expansion = 1

    def __init__(self, dims: int, cin: int, planes: int, stride: int = 1, se: bool = False) -> None:
        super().__init__()
        Conv, BN = conv_nd(dims), bn_nd(dims)
        self.conv1 = Conv(cin, planes, 3, stride, 1, bias=False)
        self.bn1 = BN(planes)
        self.conv2 = Conv(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = BN(planes)
        self.se = SEBlock(planes) if se else nn.Identity()
        self.shortcut = (
            nn.Sequential(Conv(cin, planes, 1, stride, bias=False), BN(planes)) if stride != 1 or cin != planes else nn.Identity()
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.se(self.bn2(self.conv2(out)))
        return F.relu(out + self.shortcut(x))


class Bottleneck(nn.Module):
    """ResNet bottleneck block (1x1, 3x3, 1x1; expansion 4), optional SE, for 2D or 3D."""

    expansion = 4

    def __init__(self, dims: int, cin: int, planes: int, stride: int = 1, se: bool = False) -> None:
        super().__init__()
        Conv, BN = conv_nd(dims), bn_nd(dims)
        out = planes * self.expansion
        self.conv1 = Conv(cin, planes, 1, bias=False)
        self.bn1 = BN(planes)
        self.conv2 = Conv(planes, planes, 3, stride, 1, bias=False)
        self.bn2 = BN(planes)
        self.conv3 = Conv(planes, out, 1, bias=False)
        self.bn3 = BN(out)
        self.se = SEBlock(out) if se else nn.Identity()
        self.shortcut = nn.Sequential(Conv(cin, out, 1, stride, bias=False), BN(out)) if stride != 1 or cin != out else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu(self.bn1(self.conv1(x)))
        y = F.relu(self.bn2(self.conv2(y)))
        y = self.se(self.bn3(self.conv3(y)))
        return F.relu(y + self.shortcut(x))


class AugmentedConv2d(nn.Module):
    """Attention-augmented convolution (Bello et al., ICCV 2019), 2D.

    Output = concat(conv(x) with ``cout - dv`` channels, multi-head self-attention over all
    positions with ``dv`` channels, projected by a 1x1 convolution (the paper's W^O)).

    Positional encoding: a learned relative-position *bias* per head, indexed by the offset
    (dy, dx) between query and key and added to the attention logits. This is a simplification
    of the paper's content-dependent relative logits ``q^T r_{dx} + q^T r_{dy}`` (the form Swin
    Transformer uses); it keeps the attention pattern translation-equivariant, as the paper's
    does, at a fraction of the code.

    Args:
        cin: input channels.
        cout: output channels (convolution + attention).
        k: kernel size of the convolutional part.
        stride: stride of both parts (the attention sees a strided 1x1 projection of ``x``).
        dk: total key/query channels, divisible by ``heads``.
        dv: total value (attention output) channels, divisible by ``heads``, ``0 < dv < cout``.
        heads: attention heads.
        max_size: largest feature-map edge (after the stride) the relative-bias table covers.

    Set ``keep_attention = True`` to keep the last attention weights ``(N, heads, HW, HW)`` in
    ``last_attention`` (off by default: they would hold memory during training).
    """

    def __init__(self, cin: int, cout: int, *, k: int = 3, stride: int = 1, dk: int = 32, dv: int = 32,
                 heads: int = 4, max_size: int = 32) -> None:
        super().__init__()
        if heads < 1 or dk < heads or dv < heads or dk % heads or dv % heads or dv >= cout or max_size < 1:
            raise ConfigError(
                f"AugmentedConv2d: need dk ({dk}) and dv ({dv}) positive and divisible by heads ({heads}), "
                f"dv < cout ({cout}) and max_size >= 1 (got {max_size})"
            )
        self.dk, self.dv, self.heads, self.stride, self.max_size = dk, dv, heads, stride, max_size
        self.conv = nn.Conv2d(cin, cout - dv, k, stride, k // 2, bias=False)
        self.qkv = nn.Conv2d(cin, 2 * dk + dv, 1, stride, bias=False)
        self.proj = nn.Conv2d(dv, dv, 1, bias=False)
        # one learned logit bias per head and relative offset (dy, dx) in [-(max_size-1), max_size-1]^2
        self.rel_bias = nn.Parameter(torch.zeros(heads, 2 * max_size - 1, 2 * max_size - 1))
        self.keep_attention = False
        self.last_attention: torch.Tensor | None = None

    def relative_bias(self, h: int, w: int) -> torch.Tensor:
        """Attention-logit bias ``(heads, HW, HW)`` for an ``h`` x ``w`` feature map."""
        dev = self.rel_bias.device
        ys, xs = torch.meshgrid(torch.arange(h, device=dev), torch.arange(w, device=dev), indexing="ij")
        ys, xs = ys.flatten(), xs.flatten()
        dy = ys[:, None] - ys[None, :] + self.max_size - 1
        dx = xs[:, None] - xs[None, :] + self.max_size - 1
        return self.rel_bias[:, dy, dx]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, cin, H, W)`` -> ``(N, cout, H / stride, W / stride)``."""
        conv_out = self.conv(x)
        q, k, v = torch.split(self.qkv(x), [self.dk, self.dk, self.dv], dim=1)
        n, _, h, w = q.shape
        if h > self.max_size or w > self.max_size:
            raise ConfigError(
                f"AugmentedConv2d: feature map {h}x{w} is larger than the relative-position table "
                f"(max_size={self.max_size}); build the model with input_size equal to the image size"
            )
        dkh, dvh = self.dk // self.heads, self.dv // self.heads
        q = q.reshape(n, self.heads, dkh, h * w).transpose(2, 3) * dkh**-0.5  # (N, heads, HW, dkh)
        k = k.reshape(n, self.heads, dkh, h * w)  # (N, heads, dkh, HW)
        v = v.reshape(n, self.heads, dvh, h * w).transpose(2, 3)  # (N, heads, HW, dvh)
        attn = torch.softmax(q @ k + self.relative_bias(h, w).unsqueeze(0), dim=-1)  # rows: queries
        self.last_attention = attn.detach() if self.keep_attention else None
        out = (attn @ v).transpose(2, 3).reshape(n, self.dv, h, w)
        return torch.cat([conv_out, self.proj(out)], dim=1)


class AABasicBlock(nn.Module):
    """ResNet basic block whose first convolution is attention-augmented (2D).

    Attention widths follow the paper's ResNet setting in spirit: ``dv`` ~ a quarter of the block's
    channels and ``dk = 2 dv`` (Bello et al. use kappa = 2 upsilon), 4 heads.

    Args:
        dims: must be 2.
        cin, planes, stride: as :class:`BasicBlock`.
        se: not supported (must be False).
        max_size: largest feature-map edge entering this block (sizes the relative-bias table).
    """

    expansion = 1

    def __init__(self, dims: int, cin: int, planes: int, stride: int = 1, se: bool = False, max_size: int = 32) -> None:
        super().__init__()
        if dims != 2 or se:
            raise ConfigError(f"AABasicBlock supports dims=2 without SE, got dims={dims}, se={se}")
        heads = 4
        dv = max(heads, (planes // 4) // heads * heads)
        self.conv1 = AugmentedConv2d(cin, planes, stride=stride, dk=2 * dv, dv=dv, heads=heads,
                                     max_size=max(1, -(-max_size // stride)))
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.shortcut = (
            nn.Sequential(nn.Conv2d(cin, planes, 1, stride, bias=False), nn.BatchNorm2d(planes))
            if stride != 1 or cin != planes else nn.Identity()
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        return F.relu(self.bn2(self.conv2(out)) + self.shortcut(x))


def init_weights(model: nn.Module) -> None:
    """Kaiming-normal convolutions, unit batch norm, small linear layers (He et al. 2015)."""
    for m in model.modules():
        if isinstance(m, (nn.Conv2d, nn.Conv3d)):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(m, (nn.BatchNorm2d, nn.BatchNorm3d)):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, 0, 1 / math.sqrt(m.in_features))
            if m.bias is not None:
                nn.init.zeros_(m.bias)
