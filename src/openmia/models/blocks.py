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
        raise ConfigError(f"model {model!r} supports dims {supported}, not dims={dims}")


def conv_nd(dims: int) -> type[nn.Module]:
    return {2: nn.Conv2d, 3: nn.Conv3d}[dims]


def bn_nd(dims: int) -> type[nn.Module]:
    return {2: nn.BatchNorm2d, 3: nn.BatchNorm3d}[dims]


def maxpool_nd(dims: int) -> type[nn.Module]:
    return {2: nn.MaxPool2d, 3: nn.MaxPool3d}[dims]


def adaptive_avgpool_nd(dims: int) -> type[nn.Module]:
    return {2: nn.AdaptiveAvgPool2d, 3: nn.AdaptiveAvgPool3d}[dims]


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

    Output = concat(conv(x) with ``out - dv`` channels, multi-head self-attention over all
    positions with ``dv`` channels). Positions enter the attention logits through a learned
    relative-position bias per head, indexed by (dy, dx) — a simplification of the paper's
    relative logits that keeps translation equivariance of the attention pattern.

    Args:
        cin, cout: channels in and out.
        dk, dv: total key/query and value channels (divisible by ``heads``).
        heads: attention heads.
        max_size: largest feature-map edge the relative bias table covers.
    """

    def __init__(self, cin: int, cout: int, *, k: int = 3, stride: int = 1, dk: int = 32, dv: int = 32,
                 heads: int = 4, max_size: int = 32) -> None:
        super().__init__()
        if dk % heads or dv % heads or dv >= cout:
            raise ConfigError(f"AugmentedConv2d: dk ({dk}) and dv ({dv}) must be divisible by heads ({heads}) and dv < cout ({cout})")
        self.dk, self.dv, self.heads, self.stride, self.max_size = dk, dv, heads, stride, max_size
        self.conv = nn.Conv2d(cin, cout - dv, k, stride, k // 2, bias=False)
        self.qkv = nn.Conv2d(cin, 2 * dk + dv, 1, stride, bias=False)
        self.proj = nn.Conv2d(dv, dv, 1, bias=False)
        self.rel_bias = nn.Parameter(torch.zeros(heads, 2 * max_size - 1, 2 * max_size - 1))
        self.last_attention: torch.Tensor | None = None  # (N, heads, HW, HW), for inspection/tests

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        conv_out = self.conv(x)
        q, k, v = torch.split(self.qkv(x), [self.dk, self.dk, self.dv], dim=1)
        n, _, h, w = q.shape
        if h > self.max_size or w > self.max_size:
            raise ConfigError(f"AugmentedConv2d: feature map {h}x{w} exceeds max_size {self.max_size}")
        dkh, dvh = self.dk // self.heads, self.dv // self.heads
        q = q.reshape(n, self.heads, dkh, h * w).transpose(2, 3) * dkh**-0.5
        k = k.reshape(n, self.heads, dkh, h * w)
        v = v.reshape(n, self.heads, dvh, h * w).transpose(2, 3)
        logits = q @ k  # (N, heads, HW, HW)
        ys, xs = torch.meshgrid(torch.arange(h, device=x.device), torch.arange(w, device=x.device), indexing="ij")
        ys, xs = ys.flatten(), xs.flatten()
        dy = (ys[:, None] - ys[None, :]) + self.max_size - 1
        dx = (xs[:, None] - xs[None, :]) + self.max_size - 1
        logits = logits + self.rel_bias[:, dy, dx].unsqueeze(0)
        attn = torch.softmax(logits, dim=-1)
        self.last_attention = attn.detach()
        out = (attn @ v).transpose(2, 3).reshape(n, self.dv, h, w)
        return torch.cat([conv_out, self.proj(out)], dim=1)


class AABasicBlock(nn.Module):
    """ResNet basic block whose first convolution is attention-augmented (2D)."""

    expansion = 1

    def __init__(self, dims: int, cin: int, planes: int, stride: int = 1, se: bool = False) -> None:
        super().__init__()
        dv = max(8, (planes // 4) // 4 * 4)
        self.conv1 = AugmentedConv2d(cin, planes, stride=stride, dk=dv, dv=dv, heads=4)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.shortcut = (
            nn.Sequential(nn.Conv2d(cin, planes, 1, stride, bias=False), nn.BatchNorm2d(planes)) if stride != 1 or cin != planes else nn.Identity()
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
