"""Classification models: ``(N, C, *spatial)`` -> ``(N, num_classes)`` logits.

All are written natively in PyTorch and registered in :data:`openmia.models.MODELS`. For inputs
smaller than 64 px the ImageNet stems (large strided kernels, early pooling) would destroy a 28 px
image, so the models switch to a small-input stem (3x3, stride 1, no pooling), as MedMNIST does.
At 224 px with 3 channels and 1000 classes the ImageNet layouts are reproduced exactly: the
parameter counts of AlexNet, VGG-11/16-BN, ResNet-18/34/50 and SE-ResNet-50 equal the published
(torchvision / SENet) numbers, which the tests check.
"""

from __future__ import annotations

import torch
import torch.nn as nn

from openmia.errors import ConfigError, DataError
from openmia.models import register_model
from openmia.models.blocks import (
    AABasicBlock,
    BasicBlock,
    Bottleneck,
    adaptive_avg_pool_nd,
    bn_nd,
    check_args,
    check_positive_ints,
    check_prob,
    conv_bn_relu,
    conv_nd,
    init_weights,
    pool_nd,
)

SMALL_INPUT = 64  # below this edge length a model uses its small-input stem


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters (works on ``meta``-device models too)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def _check_width(name: str, width: int, low: int = 1) -> int:
    if isinstance(width, bool) or not isinstance(width, int) or width < low:
        raise ConfigError(f"model {name!r}: width must be an integer >= {low}, got {width!r}")
    return width


# ----------------------------------------------------------------------------- MLP


class MLP(nn.Module):
    """Flatten, then ``Linear-ReLU-Dropout`` per hidden size, then a linear head."""

    def __init__(self, in_features: int, num_classes: int, hidden: tuple[int, ...], dropout: float) -> None:
        super().__init__()
        self.in_features = in_features
        layers: list[nn.Module] = []
        d = in_features
        for h in hidden:
            layers += [nn.Linear(d, h), nn.ReLU(inplace=True), nn.Dropout(dropout)]
            d = h
        layers.append(nn.Linear(d, num_classes))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, C, *spatial)`` -> ``(N, K)``."""
        x = x.flatten(1)
        if x.shape[1] != self.in_features:
            raise DataError(
                f"mlp: input has {x.shape[1]} values per case, the model was built for {self.in_features} "
                "(in_channels * input_size**dims); build it with the data's channels and input_size"
            )
        return self.net(x)


@register_model("mlp", task="classification", dims=(2, 3), family="mlp")
def mlp(in_channels: int, num_classes: int, dims: int = 2, input_size: int = 28,
        hidden: tuple[int, ...] = (256, 128), dropout: float = 0.1) -> nn.Module:
    """Multi-layer perceptron on the flattened image (Rumelhart, Hinton & Williams, Nature 1986).

    The first layer has ``in_channels * input_size**dims`` inputs, so ``input_size`` must match
    the images.
    """
    check_args("mlp", in_channels=in_channels, num_classes=num_classes, dims=dims, input_size=input_size, supported=(2, 3))
    return MLP(in_channels * input_size**dims, num_classes, check_positive_ints("mlp", "hidden", hidden),
               check_prob("mlp", "dropout", dropout))


# ----------------------------------------------------------------------------- small CNN


class SmallCNN(nn.Module):
    """A single-conv stem, three conv-conv stages with max-pooling, global average pooling."""

    def __init__(self, dims: int, in_channels: int, num_classes: int, width: int, dropout: float) -> None:
        super().__init__()
        w = width

        def stage(cin: int, cout: int) -> nn.Sequential:
            return nn.Sequential(conv_bn_relu(dims, cin, cout), conv_bn_relu(dims, cout, cout))

        # ceil_mode keeps pools valid on tiny inputs (a 1-px map stays 1 px instead of vanishing)
        self.features = nn.Sequential(
            conv_bn_relu(dims, in_channels, w), pool_nd(dims)(2, ceil_mode=True),
            stage(w, 2 * w), pool_nd(dims)(2, ceil_mode=True),
            stage(2 * w, 4 * w), pool_nd(dims)(2, ceil_mode=True),
            stage(4 * w, 8 * w), adaptive_avg_pool_nd(dims)(1), nn.Flatten(),
        )
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(8 * w, num_classes))
        init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, C, *spatial)`` -> ``(N, K)``."""
        return self.head(self.features(x))


@register_model("cnn_small", task="classification", dims=(2, 3), family="cnn")
def cnn_small(in_channels: int, num_classes: int, dims: int = 2, input_size: int = 28,
              width: int = 8, dropout: float = 0.2) -> nn.Module:
    """Small fast CNN (7 conv-BN-ReLU layers, widths w..8w, global pooling): the quick CPU default.

    A LeNet-style conv/pool stack (LeCun et al., Proc. IEEE 1998) with batch norm (Ioffe &
    Szegedy, ICML 2015) and global average pooling (Lin et al., ICLR 2014); 2D and 3D, any size.
    """
    check_args("cnn_small", in_channels=in_channels, num_classes=num_classes, dims=dims, input_size=input_size,
               supported=(2, 3))
    return SmallCNN(dims, in_channels, num_classes, _check_width("cnn_small", width), check_prob("cnn_small", "dropout", dropout))


# ----------------------------------------------------------------------------- AlexNet / VGG


class AlexNet(nn.Module):
    """AlexNet; ImageNet layout at >= 64 px, a 3x3 small-input stem and a 1024-wide head below."""

    def __init__(self, in_channels: int, num_classes: int, input_size: int, dropout: float) -> None:
        super().__init__()
        big = input_size >= SMALL_INPUT
        if big:  # Krizhevsky et al. 2012 layout (single-GPU variant, as torchvision)
            stem = [nn.Conv2d(in_channels, 64, 11, 4, 2), nn.ReLU(inplace=True), nn.MaxPool2d(3, 2),
                    nn.Conv2d(64, 192, 5, padding=2), nn.ReLU(inplace=True), nn.MaxPool2d(3, 2)]
        else:  # small input: 3x3 convs, one pooling
            stem = [nn.Conv2d(in_channels, 64, 3, 1, 1), nn.ReLU(inplace=True),
                    nn.Conv2d(64, 192, 3, 1, 1), nn.ReLU(inplace=True), nn.MaxPool2d(2, ceil_mode=True)]
        self.features = nn.Sequential(
            *stem,
            nn.Conv2d(192, 384, 3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(384, 256, 3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(256, 256, 3, padding=1), nn.ReLU(inplace=True),
            nn.MaxPool2d(3, 2) if big else nn.MaxPool2d(2, ceil_mode=True),
        )
        side, hidden = (6, 4096) if big else (3, 1024)
        self.pool = nn.AdaptiveAvgPool2d(side)
        self.classifier = nn.Sequential(
            nn.Dropout(dropout), nn.Linear(256 * side * side, hidden), nn.ReLU(inplace=True),
            nn.Dropout(dropout), nn.Linear(hidden, hidden), nn.ReLU(inplace=True),
            nn.Linear(hidden, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, C, H, W)`` -> ``(N, K)``."""
        return self.classifier(torch.flatten(self.pool(self.features(x)), 1))


@register_model("alexnet", task="classification", dims=(2,), family="alexnet")
def alexnet(in_channels: int, num_classes: int, dims: int = 2, input_size: int = 28, dropout: float = 0.5) -> nn.Module:
    """AlexNet (Krizhevsky, Sutskever & Hinton, NeurIPS 2012), 2D; small-input stem below 64 px.

    At >= 64 px: the torchvision single-tower layout (61.1M parameters at 224 px, 1000 classes).
    Below: 3x3 stride-1 convs, 2x2 pools, a 3x3 adaptive pool and a 1024-wide head.
    """
    check_args("alexnet", in_channels=in_channels, num_classes=num_classes, dims=dims, input_size=input_size,
               supported=(2,))
    return AlexNet(in_channels, num_classes, input_size, check_prob("alexnet", "dropout", dropout))


VGG_CFG = {
    "vgg11": [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "vgg16": [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"],
}


class VGG(nn.Module):
    """VGG with batch norm; pools that would shrink a small input below 1 px are left out."""

    def __init__(self, cfg: list, in_channels: int, num_classes: int, input_size: int, dropout: float) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        c, side = in_channels, input_size
        for v in cfg:
            if v == "M":
                if side >= 2:  # skip pools that would collapse a small input below 1 px
                    layers.append(nn.MaxPool2d(2))
                    side //= 2
            else:
                layers += [nn.Conv2d(c, v, 3, padding=1), nn.BatchNorm2d(v), nn.ReLU(inplace=True)]
                c = v
        self.features = nn.Sequential(*layers)
        big = input_size >= SMALL_INPUT
        self.pool = nn.AdaptiveAvgPool2d(7 if big else 1)
        hidden = 4096 if big else 512
        self.classifier = nn.Sequential(
            nn.Linear(512 * (49 if big else 1), hidden), nn.ReLU(inplace=True), nn.Dropout(dropout),
            nn.Linear(hidden, hidden), nn.ReLU(inplace=True), nn.Dropout(dropout), nn.Linear(hidden, num_classes),
        )
        init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, C, H, W)`` -> ``(N, K)``."""
        return self.classifier(torch.flatten(self.pool(self.features(x)), 1))


def _vgg(name: str, cfg: str, in_channels: int, num_classes: int, dims: int, input_size: int, dropout: float) -> nn.Module:
    check_args(name, in_channels=in_channels, num_classes=num_classes, dims=dims, input_size=input_size, supported=(2,))
    return VGG(VGG_CFG[cfg], in_channels, num_classes, input_size, check_prob(name, "dropout", dropout))


@register_model("vgg11_bn", task="classification", dims=(2,), family="vgg")
def vgg11_bn(in_channels: int, num_classes: int, dims: int = 2, input_size: int = 28, dropout: float = 0.5) -> nn.Module:
    """VGG-11 with batch norm (Simonyan & Zisserman, ICLR 2015), 2D.

    At >= 64 px the ImageNet classifier (7x7 adaptive pool, 4096-wide; 132.9M parameters at
    1000 classes); below, a 1x1 pool and a 512-wide head (as for CIFAR-sized inputs).
    """
    return _vgg("vgg11_bn", "vgg11", in_channels, num_classes, dims, input_size, dropout)


@register_model("vgg16_bn", task="classification", dims=(2,), family="vgg")
def vgg16_bn(in_channels: int, num_classes: int, dims: int = 2, input_size: int = 28, dropout: float = 0.5) -> nn.Module:
    """VGG-16 with batch norm (Simonyan & Zisserman, ICLR 2015), 2D.

    At >= 64 px the ImageNet classifier (138.4M parameters at 1000 classes); below, a 512-wide head.
    """
    return _vgg("vgg16_bn", "vgg16", in_channels, num_classes, dims, input_size, dropout)


# ----------------------------------------------------------------------------- GoogLeNet


class Inception(nn.Module):
    """Inception-v1 module: 1x1 | 1x1-3x3 | 1x1-5x5 | 3x3 maxpool-1x1, concatenated on channels."""

    def __init__(self, cin: int, c1: int, c3r: int, c3: int, c5r: int, c5: int, cp: int) -> None:
        super().__init__()
        self.b1 = conv_bn_relu(2, cin, c1, 1)
        self.b2 = nn.Sequential(conv_bn_relu(2, cin, c3r, 1), conv_bn_relu(2, c3r, c3, 3))
        self.b3 = nn.Sequential(conv_bn_relu(2, cin, c5r, 1), conv_bn_relu(2, c5r, c5, 5))
        self.b4 = nn.Sequential(nn.MaxPool2d(3, 1, 1), conv_bn_relu(2, cin, cp, 1))
        self.out_channels = c1 + c3 + c5 + cp

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, cin, H, W)`` -> ``(N, c1 + c3 + c5 + cp, H, W)``."""
        return torch.cat([self.b1(x), self.b2(x), self.b3(x), self.b4(x)], 1)


class GoogLeNet(nn.Module):
    """GoogLeNet with batch-normalised convolutions (as torchvision), without auxiliary heads."""

    def __init__(self, in_channels: int, num_classes: int, input_size: int, dropout: float) -> None:
        super().__init__()
        if input_size >= SMALL_INPUT:
            self.stem = nn.Sequential(conv_bn_relu(2, in_channels, 64, 7, 2), nn.MaxPool2d(3, 2, 1),
                                      conv_bn_relu(2, 64, 64, 1), conv_bn_relu(2, 64, 192, 3), nn.MaxPool2d(3, 2, 1))
        else:  # small input: keep full resolution into inception 3a
            self.stem = conv_bn_relu(2, in_channels, 192, 3)
        self.i3 = nn.Sequential(Inception(192, 64, 96, 128, 16, 32, 32), Inception(256, 128, 128, 192, 32, 96, 64),
                                nn.MaxPool2d(3, 2, 1))
        self.i4 = nn.Sequential(
            Inception(480, 192, 96, 208, 16, 48, 64), Inception(512, 160, 112, 224, 24, 64, 64),
            Inception(512, 128, 128, 256, 24, 64, 64), Inception(512, 112, 144, 288, 32, 64, 64),
            Inception(528, 256, 160, 320, 32, 128, 128), nn.MaxPool2d(3, 2, 1),
        )
        self.i5 = nn.Sequential(Inception(832, 256, 160, 320, 32, 128, 128), Inception(832, 384, 192, 384, 48, 128, 128))
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(dropout), nn.Linear(1024, num_classes))
        init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, C, H, W)`` -> ``(N, K)``."""
        return self.head(self.i5(self.i4(self.i3(self.stem(x)))))


@register_model("googlenet", task="classification", dims=(2,), family="inception")
def googlenet(in_channels: int, num_classes: int, dims: int = 2, input_size: int = 28, dropout: float = 0.4) -> nn.Module:
    """GoogLeNet / Inception-v1 (Szegedy et al., CVPR 2015), 2D, batch norm, no auxiliary heads.

    The 5x5 branch is a real 5x5 convolution as in the paper (torchvision uses 3x3 there, so
    this model has 380,928 more parameters than torchvision's 6,624,904 at 1000 classes).
    Below 64 px the stem is a single 3x3 conv (no downsampling before inception 3a).
    """
    check_args("googlenet", in_channels=in_channels, num_classes=num_classes, dims=dims, input_size=input_size,
               supported=(2,))
    return GoogLeNet(in_channels, num_classes, input_size, check_prob("googlenet", "dropout", dropout))


# ----------------------------------------------------------------------------- ResNets


def _down(n: int) -> int:
    """Edge length after a stride-2 conv/pool with 'same' padding: ceil(n / 2)."""
    return -(-n // 2)


class ResNet(nn.Module):
    """ResNet for 2D or 3D input (He et al., CVPR 2016), optionally with SE or attention-augmented blocks.

    Args:
        block: block class of all stages (BasicBlock or Bottleneck).
        layers: blocks per stage (four stages, widths ``width * (1, 2, 4, 8)``).
        late_block: if given, the block class of stages 3 and 4 (where maps are small), e.g. AABasicBlock;
            it receives ``max_size`` = the edge of the feature map entering the stage.
    """

    def __init__(self, block: type[nn.Module], layers: list[int], *, dims: int, in_channels: int, num_classes: int,
                 input_size: int, width: int = 64, se: bool = False, late_block: type[nn.Module] | None = None) -> None:
        super().__init__()
        Conv, BN = conv_nd(dims), bn_nd(dims)
        if input_size >= SMALL_INPUT:  # ImageNet stem: /4
            self.stem = nn.Sequential(Conv(in_channels, width, 7, 2, 3, bias=False), BN(width), nn.ReLU(inplace=True),
                                      pool_nd(dims)(3, 2, 1))
            size = _down(_down(input_size))
        else:  # MedMNIST-style small-input stem: full resolution
            self.stem = nn.Sequential(Conv(in_channels, width, 3, 1, 1, bias=False), BN(width), nn.ReLU(inplace=True))
            size = input_size
        self.cin = width
        stages = []
        for i, (n, mult) in enumerate(zip(layers, (1, 2, 4, 8))):
            late = late_block is not None and i >= 2
            extra = {"max_size": size} if late else {}
            stride = 1 if i == 0 else 2
            stages.append(self._stage(late_block if late else block, dims, width * mult, n, stride, se, extra))
            size = size if stride == 1 else _down(size)
        self.stages = nn.Sequential(*stages)
        self.pool = adaptive_avg_pool_nd(dims)(1)
        self.fc = nn.Linear(self.cin, num_classes)
        init_weights(self)

    def _stage(self, block, dims: int, planes: int, n: int, stride: int, se: bool, extra: dict) -> nn.Sequential:
        blocks = []
        for j in range(n):
            blocks.append(block(dims, self.cin, planes, stride if j == 0 else 1, se=se, **extra))
            self.cin = planes * block.expansion
            if j == 0 and "max_size" in extra and stride != 1:
                extra = {"max_size": _down(extra["max_size"])}
        return nn.Sequential(*blocks)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, C, *spatial)`` -> ``(N, K)``."""
        return self.fc(torch.flatten(self.pool(self.stages(self.stem(x))), 1))


def _resnet(name: str, block, layers, in_channels, num_classes, dims, input_size, width, *, supported=(2, 3),
            se=False, late_block=None) -> nn.Module:
    check_args(name, in_channels=in_channels, num_classes=num_classes, dims=dims, input_size=input_size, supported=supported)
    # the AA block needs >= 4 attention channels below its block width (layer3 has 4*width channels)
    _check_width(name, width, 2 if late_block is not None else 1)
    return ResNet(block, layers, dims=dims, in_channels=in_channels, num_classes=num_classes, input_size=input_size,
                  width=width, se=se, late_block=late_block)


@register_model("resnet18", task="classification", dims=(2, 3), family="resnet")
def resnet18(in_channels: int, num_classes: int, dims: int = 2, input_size: int = 28, width: int = 64) -> nn.Module:
    """ResNet-18 (He, Zhang, Ren & Sun, CVPR 2016), 2D or 3D; the MedMNIST v2 baseline.

    Small-input stem (3x3, stride 1, no max-pool) below 64 px, else 7x7 stride 2 + max-pool
    (11,689,512 parameters at 224 px / 3 channels / 1000 classes, as torchvision).
    """
    return _resnet("resnet18", BasicBlock, [2, 2, 2, 2], in_channels, num_classes, dims, input_size, width)


@register_model("resnet34", task="classification", dims=(2, 3), family="resnet")
def resnet34(in_channels: int, num_classes: int, dims: int = 2, input_size: int = 28, width: int = 64) -> nn.Module:
    """ResNet-34 (He, Zhang, Ren & Sun, CVPR 2016), 2D or 3D; stems as ResNet-18."""
    return _resnet("resnet34", BasicBlock, [3, 4, 6, 3], in_channels, num_classes, dims, input_size, width)


@register_model("resnet50", task="classification", dims=(2, 3), family="resnet")
def resnet50(in_channels: int, num_classes: int, dims: int = 2, input_size: int = 28, width: int = 64) -> nn.Module:
    """ResNet-50 with bottleneck blocks (He, Zhang, Ren & Sun, CVPR 2016), 2D or 3D.

    Stride on the 3x3 conv of the bottleneck ("ResNet v1.5", as torchvision; 25,557,032 parameters).
    """
    return _resnet("resnet50", Bottleneck, [3, 4, 6, 3], in_channels, num_classes, dims, input_size, width)


@register_model("se_resnet18", task="classification", dims=(2, 3), family="resnet")
def se_resnet18(in_channels: int, num_classes: int, dims: int = 2, input_size: int = 28, width: int = 64) -> nn.Module:
    """SE-ResNet-18: squeeze-and-excitation (reduction 16) in every block (Hu, Shen & Sun, CVPR 2018), 2D or 3D."""
    return _resnet("se_resnet18", BasicBlock, [2, 2, 2, 2], in_channels, num_classes, dims, input_size, width, se=True)


@register_model("se_resnet50", task="classification", dims=(2, 3), family="resnet")
def se_resnet50(in_channels: int, num_classes: int, dims: int = 2, input_size: int = 28, width: int = 64) -> nn.Module:
    """SE-ResNet-50 (Hu, Shen & Sun, CVPR 2018), reduction 16, 2D or 3D (28,088,024 parameters, as the SENet release)."""
    return _resnet("se_resnet50", Bottleneck, [3, 4, 6, 3], in_channels, num_classes, dims, input_size, width, se=True)


@register_model("aa_resnet18", task="classification", dims=(2,), family="resnet")
def aa_resnet18(in_channels: int, num_classes: int, dims: int = 2, input_size: int = 28, width: int = 64) -> nn.Module:
    """Attention-augmented ResNet-18 (Bello, Zoph, Vaswani, Shlens & Le, ICCV 2019), 2D.

    The first conv of every block in stages 3-4 is an :class:`~openmia.models.blocks.AugmentedConv2d`
    (conv features concatenated with 4-head self-attention over all positions, learned relative-position
    bias); attention only where feature maps are small keeps it affordable on a CPU.
    """
    return _resnet("aa_resnet18", BasicBlock, [2, 2, 2, 2], in_channels, num_classes, dims, input_size, width,
                   supported=(2,), late_block=AABasicBlock)
