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
- ``resunet``: residual U-Net with strided-convolution down-sampling (Kerfoot et al., STACOM 2018;
  the design behind MONAI's ``UNet``): no convolution pair at full resolution, so 3-4x cheaper
  per voxel than the classic U-Net — the fast choice for CPU training of 3D models.
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


def _memory_format(choice: str, norm: str, dims: int) -> torch.memory_format:
    """``auto`` = channels-last with batch norm (oneDNN's fast layout; instance norm is slower in it)."""
    if choice not in ("auto", "channels_last", "contiguous"):
        raise ConfigError(f"memory_format must be auto, channels_last or contiguous, found {choice!r}")
    cl = choice == "channels_last" or (choice == "auto" and norm == "batch")
    return {2: torch.channels_last, 3: torch.channels_last_3d}[dims] if cl else torch.contiguous_format


def _prepare_input(x: torch.Tensor, name: str, dims: int, multiple: int, fmt: torch.memory_format) -> torch.Tensor:
    """Check ``(N, C, *spatial)``, zero-pad the spatial axes at the end to a multiple of ``multiple``
    (the caller crops the output back) and switch to the model's memory layout."""
    if x.dim() != dims + 2:
        raise ConfigError(f"{dims}D {name} expects input (N, C, {'D, ' if dims == 3 else ''}H, W), found shape {tuple(x.shape)}")
    pad = [(-s) % multiple for s in x.shape[2:]]
    if any(pad):  # F.pad takes the last axis first
        x = F.pad(x, [p for s in reversed(pad) for p in (0, s)])
    return x.contiguous(memory_format=fmt)


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
        channels: explicit channels per level (overrides depth/width), e.g. ``(8, 32, 64, 128, 256)``:
            a narrow full-resolution level is much cheaper on a CPU, where that level dominates.
        norm: batch | instance | group.
        residual: residual conv blocks.
        attention: attention gates on the skips.
        se: squeeze-and-excitation in every block.
        deep_supervision: in training mode, also compute 1x1-conv outputs at the ``depth - 1``
            coarser decoder levels, kept in ``aux_outputs`` (finest first) for the loss.
        memory_format: ``channels_last`` (NHWC / NDHWC: oneDNN's fast layout for convolutions,
            2x faster 3D convs on a CPU), ``contiguous``, or ``auto`` = channels_last with batch
            norm (instance norm is slower in that layout).
    """

    def __init__(self, dims: int, in_channels: int, num_classes: int, *, depth: int = 4, width: int = 32,
                 max_width: int = 320, norm: str = "instance", residual: bool = False, attention: bool = False,
                 se: bool = False, deep_supervision: bool = False, channels: tuple[int, ...] | list[int] | None = None,
                 memory_format: str = "auto") -> None:
        super().__init__()
        if channels is not None:
            if len(channels) < 2 or any(not isinstance(c, int) or c < 1 for c in channels):
                raise ConfigError(f"U-Net channels must list >= 2 positive integers (one per level), found {channels!r}")
            chans = list(channels)
            depth = len(chans) - 1
        else:
            if depth < 1 or width < 1:
                raise ConfigError(f"U-Net depth and width must be >= 1, found depth={depth}, width={width}")
            chans = [min(width * 2**i, max_width) for i in range(depth + 1)]
        self.memory_format = _memory_format(memory_format, norm, dims)
        self.dims, self.depth, self.deep_supervision = dims, depth, deep_supervision
        Conv = conv_nd(dims)
        ConvT = {2: nn.ConvTranspose2d, 3: nn.ConvTranspose3d}[dims]
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
        self.to(memory_format=self.memory_format)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, C, *spatial)`` -> logits ``(N, K, *spatial)``."""
        size = x.shape[2:]
        x = _prepare_input(x, "U-Net", self.dims, 2**self.depth, self.memory_format)
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
        return out[(slice(None), slice(None), *crop)].contiguous()




class ResidualUnit(nn.Module):
    """``subunits`` x (conv-norm-PReLU); the first conv has ``stride``; the identity path is a
    strided 3x3 convolution when down-sampling, a 1x1 one when only the width changes. ``last_conv_only`` leaves the last conv
    bare (output layers)."""

    def __init__(self, dims: int, cin: int, cout: int, *, stride: int = 1, subunits: int = 2, norm: str = "batch",
                 last_conv_only: bool = False) -> None:
        super().__init__()
        Conv = conv_nd(dims)
        layers: list[nn.Module] = []
        c = cin
        for i in range(subunits):
            bare = last_conv_only and i == subunits - 1
            layers.append(Conv(c, cout, 3, stride if i == 0 else 1, 1, bias=bare))
            if not bare:
                layers += [norm_nd(norm, dims, cout), nn.PReLU()]
            c = cout
        self.body = nn.Sequential(*layers)
        # strided identity path: a 3x3 conv (a strided 1x1 conv in channels-last layout with 2-7 input
        # channels crashes oneDNN in torch 2.13's backward pass; 3x3 also sees every input pixel)
        if stride != 1:
            self.skip: nn.Module = Conv(cin, cout, 3, stride, 1, bias=False)
        else:
            self.skip = Conv(cin, cout, 1, bias=False) if cin != cout else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x) + self.skip(x)


class ResUNet(nn.Module):
    """Residual U-Net with strided convolutions (Kerfoot et al. 2018), 2D or 3D.

    ``channels[i]`` is the width after down-sampling step ``i`` (``len(channels) - 1`` steps of
    stride 2, then a stride-1 bottom unit). Each decoder step concatenates the skip, up-samples
    with a stride-2 transposed convolution and refines with one residual unit; the last step
    outputs the class logits at full resolution. Inputs of any size (padded to ``2**steps``).
    With ``deep_supervision``, training-mode forwards also keep 1x1-conv logits of every coarser
    decoder output (``steps - 1`` levels, finest first, cropped to the input's extent) in
    ``aux_outputs`` for :class:`openmia.losses.segmentation.DeepSupervision`.
    """

    def __init__(self, dims: int, in_channels: int, num_classes: int, *, channels: tuple[int, ...] = (16, 32, 64, 128, 256),
                 subunits: int = 2, norm: str = "batch", deep_supervision: bool = False, memory_format: str = "auto") -> None:
        super().__init__()
        chans = list(channels)
        if len(chans) < 2 or any(isinstance(c, bool) or not isinstance(c, int) or c < 1 for c in chans):
            raise ConfigError(f"resunet channels must list >= 2 positive integers, found {channels!r}")
        if not isinstance(subunits, int) or subunits < 1:
            raise ConfigError(f"resunet subunits must be an integer >= 1, found {subunits!r}")
        self.memory_format = _memory_format(memory_format, norm, dims)
        self.dims, self.steps = dims, len(chans) - 1
        ConvT = {2: nn.ConvTranspose2d, 3: nn.ConvTranspose3d}[dims]
        self.down = nn.ModuleList()
        c = in_channels
        for ch in chans[:-1]:
            self.down.append(ResidualUnit(dims, c, ch, stride=2, subunits=subunits, norm=norm))
            c = ch
        self.bottom = ResidualUnit(dims, c, chans[-1], stride=1, subunits=subunits, norm=norm)
        self.up = nn.ModuleList()
        below = chans[-1]  # channels arriving from the level below
        for i in range(self.steps - 1, -1, -1):
            out = chans[i - 1] if i > 0 else num_classes
            last = i == 0
            layers: list[nn.Module] = [ConvT(chans[i] + below, out, 3, 2, 1, output_padding=1, bias=last)]
            if not last:
                layers += [norm_nd(norm, dims, out), nn.PReLU()]
            layers.append(ResidualUnit(dims, out, out, stride=1, subunits=1, norm=norm, last_conv_only=last))
            self.up.append(nn.Sequential(*layers))
            below = out
        Conv = conv_nd(dims)
        # decoder level i (1 = half resolution) outputs chans[i - 1] channels
        self.aux_heads = (nn.ModuleList([Conv(chans[i - 1], num_classes, 1) for i in range(1, self.steps)])
                          if deep_supervision else None)
        self.aux_outputs: list[torch.Tensor] = []
        self.to(memory_format=self.memory_format)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, C, *spatial)`` -> logits ``(N, K, *spatial)``."""
        size = x.shape[2:]
        x = _prepare_input(x, "resunet", self.dims, 2**self.steps, self.memory_format)
        skips = []
        for d in self.down:
            x = d(x)
            skips.append(x)
        x = self.bottom(x)
        aux = []
        for j, (up, skip) in enumerate(zip(self.up, reversed(skips))):
            x = up(torch.cat([skip, x], dim=1))
            level = self.steps - 1 - j  # resolution level of x now (0 = full)
            if self.aux_heads is not None and self.training and level >= 1:
                crop = tuple(slice(0, -(-s // 2**level)) for s in size)
                aux.append(self.aux_heads[level - 1](x)[(slice(None), slice(None), *crop)])
        self.aux_outputs = aux[::-1]  # finest first
        return x[(slice(None), slice(None), *(slice(0, s) for s in size))].contiguous()


def _unet(name: str, in_channels: int, num_classes: int, dims: int, input_size: int, **kw) -> nn.Module:
    check_args(name, in_channels=in_channels, num_classes=num_classes, dims=dims, input_size=input_size, supported=(2, 3))
    if kw.get("norm", "instance") not in NORMS:
        raise ConfigError(f"model {name!r}: norm must be one of {NORMS}, found {kw['norm']!r}")
    return UNet(dims, in_channels, num_classes, **kw)


@register_model("unet", task="segmentation", dims=(2, 3), family="unet")
def unet(in_channels: int, num_classes: int, dims: int = 2, input_size: int = 64, depth: int = 4, width: int = 32,
         norm: str = "instance", residual: bool = False, deep_supervision: bool = False, channels: list[int] | None = None,
         memory_format: str = "auto") -> nn.Module:
    """U-Net (Ronneberger et al., MICCAI 2015; 3D Çiçek et al. 2016): depth/width or channels, norm, residual."""
    return _unet("unet", in_channels, num_classes, dims, input_size, depth=depth, width=width, norm=norm, residual=residual,
                 deep_supervision=deep_supervision, channels=channels, memory_format=memory_format)


@register_model("attention_unet", task="segmentation", dims=(2, 3), family="unet")
def attention_unet(in_channels: int, num_classes: int, dims: int = 2, input_size: int = 64, depth: int = 4, width: int = 32,
                   norm: str = "instance", residual: bool = False, deep_supervision: bool = False,
                   channels: list[int] | None = None, memory_format: str = "auto") -> nn.Module:
    """Attention U-Net (Oktay et al., MIDL 2018): additive attention gates on every skip connection."""
    return _unet("attention_unet", in_channels, num_classes, dims, input_size, depth=depth, width=width, norm=norm,
                 residual=residual, attention=True, deep_supervision=deep_supervision, channels=channels,
                 memory_format=memory_format)


@register_model("se_unet", task="segmentation", dims=(2, 3), family="unet")
def se_unet(in_channels: int, num_classes: int, dims: int = 2, input_size: int = 64, depth: int = 4, width: int = 32,
            norm: str = "instance", residual: bool = True, deep_supervision: bool = False,
            channels: list[int] | None = None, memory_format: str = "auto") -> nn.Module:
    """Residual U-Net with squeeze-and-excitation in every block (channel SE, Roy et al. MICCAI 2018)."""
    return _unet("se_unet", in_channels, num_classes, dims, input_size, depth=depth, width=width, norm=norm,
                 residual=residual, se=True, deep_supervision=deep_supervision, channels=channels,
                 memory_format=memory_format)


@register_model("unet_small", task="segmentation", dims=(2, 3), family="unet")
def unet_small(in_channels: int, num_classes: int, dims: int = 2, input_size: int = 64, width: int = 8,
               norm: str = "batch") -> nn.Module:
    """Small fast U-Net (depth 3, width 8, batch norm): the CPU default for quick runs and tests."""
    return _unet("unet_small", in_channels, num_classes, dims, input_size, depth=3, width=width, norm=norm)


@register_model("resunet", task="segmentation", dims=(2, 3), family="unet")
def resunet(in_channels: int, num_classes: int, dims: int = 2, input_size: int = 64,
            channels: list[int] | tuple[int, ...] = (16, 32, 64, 128, 256), subunits: int = 2, norm: str = "batch",
            deep_supervision: bool = False, memory_format: str = "auto") -> nn.Module:
    """Residual U-Net with strided convolutions (Kerfoot et al., STACOM 2018): fast on a CPU."""
    check_args("resunet", in_channels=in_channels, num_classes=num_classes, dims=dims, input_size=input_size, supported=(2, 3))
    if norm not in NORMS:
        raise ConfigError(f"model 'resunet': norm must be one of {NORMS}, found {norm!r}")
    return ResUNet(dims, in_channels, num_classes, channels=tuple(channels), subunits=subunits, norm=norm,
                   deep_supervision=deep_supervision, memory_format=memory_format)
