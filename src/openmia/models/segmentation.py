"""Segmentation models (2D and 3D): the U-Net family, native PyTorch.

Output contract (DESIGN §2): ``(N, C, *spatial)`` in -> ``(N, K, *spatial)`` logits of the same
spatial size. Inputs of any size work: they are padded to a multiple of ``2**depth`` and the
output is cropped back, so odd CT slice counts need no resampling.

- ``unet``: U-Net (Ronneberger et al., MICCAI 2015; 3D: Çiçek et al. 2016) with configurable depth,
  width, normalisation (batch / instance / group), optional residual blocks (as in MONAI's
  residual units / nnU-Net's ResEnc) and optional deep supervision.
- ``attention_unet``: attention gates on the skip connections (Oktay et al., MIDL 2018).
- ``se_unet``: squeeze-and-excitation in every encoder and decoder block (Roy et al., "concurrent
  spatial and channel SE", MICCAI 2018 — the channel half).
- ``unet_small``: depth 3, width 8 — a fast CPU default for tests and quick runs.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from openmia.errors import ConfigError
from openmia.models import register_model
from openmia.models.blocks import SEBlock, check_args, conv_nd

NORMS = ("batch", "instance", "group")


def norm_nd(kind: str, dims: int, channels: int) -> nn.Module:
    """Normalisation layer by name; instance norm is affine (as nnU-Net)."""
    if kind == "batch":
        return {2: nn.BatchNorm2d, 3: nn.BatchNorm3d}[dims](channels)
    if kind == "instance":
        return {2: nn.InstanceNorm2d, 3: nn.InstanceNorm3d}[dims](channels, affine=True)
    if kind == "group":
        return nn.GroupNorm(min(8, channels), channels)
    raise ConfigError(f"norm must be one of {NORMS}, found {kind!r}")


class ConvBlock(nn.Module):
    """Two 3x3(x3) conv-norm-LeakyReLU layers; ``residual`` adds a (projected) identity path,
    ``se`` gates channels after the second convolution."""

    def __init__(self, dims: int, cin: int, cout: int, *, norm: str, residual: bool = False, se: bool = False) -> None:
        super().__init__()
        Conv = conv_nd(dims)
        self.conv1 = Conv(cin, cout, 3, 1, 1, bias=False)
        self.n1 = norm_nd(norm, dims, cout)
        self.conv2 = Conv(cout, cout, 3, 1, 1, bias=False)
        self.n2 = norm_nd(norm, dims, cout)
        self.se = SEBlock(cout, reduction=max(1, min(16, cout // 2))) if se else nn.Identity()
        self.skip = (Conv(cin, cout, 1, bias=False) if cin != cout else nn.Identity()) if residual else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.leaky_relu(self.n1(self.conv1(x)), 0.01, inplace=True)
        out = self.se(self.n2(self.conv2(out)))
        if self.skip is not None:
            out = out + self.skip(x)
        return F.leaky_relu(out, 0.01, inplace=True)


class AttentionGate(nn.Module):
    """Additive attention gate (Oktay et al. 2018): skip features ``x`` are scaled by
    ``sigmoid(psi(relu(W_x x + W_g g)))``, with ``g`` the coarser decoder signal upsampled to ``x``."""

    def __init__(self, dims: int, x_ch: int, g_ch: int, inter: int) -> None:
        super().__init__()
        Conv = conv_nd(dims)
        self.wx = Conv(x_ch, inter, 1, bias=False)
        self.wg = Conv(g_ch, inter, 1, bias=True)
        self.psi = Conv(inter, 1, 1, bias=True)
        self.last_alpha: torch.Tensor | None = None  # (N, 1, *spatial), for inspection

    def forward(self, x: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
        g = F.interpolate(g, size=x.shape[2:], mode="nearest")
        alpha = torch.sigmoid(self.psi(F.relu(self.wx(x) + self.wg(g))))
        self.last_alpha = alpha.detach()
        return x * alpha


class UNet(nn.Module):
    """U-Net for 2D or 3D input.

    Args:
        dims: 2 or 3.
        in_channels, num_classes: input channels (modalities) and output classes (incl. background).
        depth: number of down-sampling steps (resolution levels = depth + 1).
        width: channels of the first level; level i has ``width * 2**i`` (capped at ``max_width``).
        norm: batch | instance | group.
        residual: residual conv blocks.
        attention: attention gates on the skips.
        se: squeeze-and-excitation in every block.
        deep_supervision: in training mode, also compute 1x1-conv outputs at the ``depth - 1``
            coarser decoder levels, kept in ``aux_outputs`` (finest first) for the loss.
    """

    def __init__(self, dims: int, in_channels: int, num_classes: int, *, depth: int = 4, width: int = 32,
                 max_width: int = 320, norm: str = "instance", residual: bool = False, attention: bool = False,
                 se: bool = False, deep_supervision: bool = False) -> None:
        super().__init__()
        if depth < 1 or width < 1:
            raise ConfigError(f"U-Net depth and width must be >= 1, found depth={depth}, width={width}")
        self.dims, self.depth, self.deep_supervision = dims, depth, deep_supervision
        Conv = conv_nd(dims)
        ConvT = {2: nn.ConvTranspose2d, 3: nn.ConvTranspose3d}[dims]
        chans = [min(width * 2**i, max_width) for i in range(depth + 1)]
        self.enc = nn.ModuleList()
        cin = in_channels
        for c in chans:
            self.enc.append(ConvBlock(dims, cin, c, norm=norm, residual=residual, se=se))
            cin = c
        self.pool = {2: nn.MaxPool2d, 3: nn.MaxPool3d}[dims](2)
        self.up = nn.ModuleList()
        self.gates = nn.ModuleList()
        self.dec = nn.ModuleList()
        for i in range(depth, 0, -1):  # from the bottom up to level 1
            self.up.append(ConvT(chans[i], chans[i - 1], 2, 2))
            self.gates.append(AttentionGate(dims, chans[i - 1], chans[i], max(1, chans[i - 1] // 2)) if attention else nn.Identity())
            self.dec.append(ConvBlock(dims, 2 * chans[i - 1], chans[i - 1], norm=norm, residual=residual, se=se))
        self.head = Conv(chans[0], num_classes, 1)
        self.aux_heads = nn.ModuleList([Conv(chans[i], num_classes, 1) for i in range(1, depth)]) if deep_supervision else None
        self.aux_outputs: list[torch.Tensor] = []
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.Conv3d, nn.ConvTranspose2d, nn.ConvTranspose3d)):
                nn.init.kaiming_normal_(m.weight, a=0.01, nonlinearity="leaky_relu")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, C, *spatial)`` -> logits ``(N, K, *spatial)``."""
        if x.dim() != self.dims + 2:
            raise ConfigError(f"{self.dims}D U-Net expects input (N, C, {'D, ' if self.dims == 3 else ''}H, W), "
                              f"found shape {tuple(x.shape)}")
        size = x.shape[2:]
        m = 2**self.depth
        pad = [(-s) % m for s in size]
        if any(pad):  # F.pad takes the last axis first
            x = F.pad(x, [p for s in reversed(pad) for p in (0, s)])
        skips = []
        for i, block in enumerate(self.enc):
            x = block(x)
            if i < self.depth:
                skips.append(x)
                x = self.pool(x)
        aux = []
        for j, (up, gate, dec) in enumerate(zip(self.up, self.gates, self.dec)):
            skip = skips[self.depth - 1 - j]
            g = x
            x = up(x)
            skip = gate(skip, g) if isinstance(gate, AttentionGate) else skip
            x = dec(torch.cat([skip, x], dim=1))
            level = self.depth - 1 - j  # resolution level of x now
            if self.aux_heads is not None and self.training and 1 <= level < self.depth:
                aux.append(self.aux_heads[level - 1](x))
        out = self.head(x)
        crop = tuple(slice(0, s) for s in size)
        self.aux_outputs = [a for a in reversed(aux)] if aux else []  # finest first
        return out[(slice(None), slice(None), *crop)]


def _unet(name: str, in_channels: int, num_classes: int, dims: int, input_size: int, **kw) -> nn.Module:
    check_args(name, in_channels=in_channels, num_classes=num_classes, dims=dims, input_size=input_size, supported=(2, 3))
    if kw.get("norm", "instance") not in NORMS:
        raise ConfigError(f"model {name!r}: norm must be one of {NORMS}, found {kw['norm']!r}")
    return UNet(dims, in_channels, num_classes, **kw)


@register_model("unet", task="segmentation", dims=(2, 3), family="unet")
def unet(in_channels: int, num_classes: int, dims: int = 2, input_size: int = 64, depth: int = 4, width: int = 32,
         norm: str = "instance", residual: bool = False, deep_supervision: bool = False) -> nn.Module:
    """U-Net (Ronneberger et al., MICCAI 2015; 3D Çiçek et al. 2016): depth, width, norm, residual, deep supervision."""
    return _unet("unet", in_channels, num_classes, dims, input_size, depth=depth, width=width, norm=norm, residual=residual,
                 deep_supervision=deep_supervision)


@register_model("attention_unet", task="segmentation", dims=(2, 3), family="unet")
def attention_unet(in_channels: int, num_classes: int, dims: int = 2, input_size: int = 64, depth: int = 4, width: int = 32,
                   norm: str = "instance", residual: bool = False, deep_supervision: bool = False) -> nn.Module:
    """Attention U-Net (Oktay et al., MIDL 2018): additive attention gates on every skip connection."""
    return _unet("attention_unet", in_channels, num_classes, dims, input_size, depth=depth, width=width, norm=norm,
                 residual=residual, attention=True, deep_supervision=deep_supervision)


@register_model("se_unet", task="segmentation", dims=(2, 3), family="unet")
def se_unet(in_channels: int, num_classes: int, dims: int = 2, input_size: int = 64, depth: int = 4, width: int = 32,
            norm: str = "instance", residual: bool = True, deep_supervision: bool = False) -> nn.Module:
    """Residual U-Net with squeeze-and-excitation in every block (channel SE, Roy et al. MICCAI 2018)."""
    return _unet("se_unet", in_channels, num_classes, dims, input_size, depth=depth, width=width, norm=norm,
                 residual=residual, se=True, deep_supervision=deep_supervision)


@register_model("unet_small", task="segmentation", dims=(2, 3), family="unet")
def unet_small(in_channels: int, num_classes: int, dims: int = 2, input_size: int = 64, width: int = 8,
               norm: str = "batch") -> nn.Module:
    """Small fast U-Net (depth 3, width 8, batch norm): the CPU default for quick runs and tests."""
    return _unet("unet_small", in_channels, num_classes, dims, input_size, depth=3, width=width, norm=norm)
