"""Classification models: ``(N, C, *spatial)`` -> ``(N, num_classes)`` logits.

All are written natively in PyTorch and registered in :data:`openmia.models.MODELS`. For inputs
smaller than 64 px the ImageNet stems (large strided kernels, early pooling) would destroy a 28 px
image, so the models switch to a small-input stem (3x3, stride 1, no pooling), as MedMNIST does.
"""

from __future__ import annotations

import torch
import torch.nn as nn

from openmia.models import register_model
from openmia.models.blocks import (
    AABasicBlock,
    BasicBlock,
    Bottleneck,
    adaptive_avgpool_nd,
    bn_nd,
    check_dims,
    conv_bn_relu,
    conv_nd,
    init_weights,
    maxpool_nd,
)

SMALL_INPUT = 64  # below this edge length a model uses its small-input stem


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


# ----------------------------------------------------------------------------- MLP


class MLP(nn.Module):
    def __init__(self, in_features: int, num_classes: int, hidden: tuple[int, ...], dropout: float) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Flatten()]
        d = in_features
        for h in hidden:
            layers += [nn.Linear(d, h), nn.ReLU(inplace=True), nn.Dropout(dropout)]
            d = h
        layers.append(nn.Linear(d, num_classes))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


@register_model("mlp", task="classification", dims=(2, 3), family="mlp")
def mlp(in_channels: int, num_classes: int, dims: int = 2, input_size: int = 28,
        hidden: tuple[int, ...] = (256, 128), dropout: float = 0.1) -> nn.Module:
    """Multi-layer perceptron on the flattened image (the classic baseline)."""
    check_dims("mlp", dims, (2, 3))
    return MLP(in_channels * input_size**dims, num_classes, tuple(hidden), dropout)


# ----------------------------------------------------------------------------- small CNN


class SmallCNN(nn.Module):
    """A single-conv stem, three conv-conv stages with max-pooling, global average pooling."""

    def __init__(self, dims: int, in_channels: int, num_classes: int, width: int, dropout: float) -> None:
        super().__init__()
        w = width

        def stage(cin: int, cout: int) -> nn.Sequential:
            return nn.Sequential(conv_bn_relu(dims, cin, cout), conv_bn_relu(dims, cout, cout))

        self.features = nn.Sequential(
            conv_bn_relu(dims, in_channels, w), maxpool_nd(dims)(2),
            stage(w, 2 * w), maxpool_nd(dims)(2),
            stage(2 * w, 4 * w), maxpool_nd(dims)(2),
            stage(4 * w, 8 * w), adaptive_avgpool_nd(dims)(1), nn.Flatten(),
        )
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(8 * w, num_classes))
        init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


@register_model("cnn_small", task="classification", dims=(2, 3), family="cnn")
def cnn_small(in_channels: int, num_classes: int, dims: int = 2, input_size: int = 28,
              width: int = 8, dropout: float = 0.2) -> nn.Module:
    """Small fast CNN (7 convs, widths w..8w): the quick CPU default, 2D and 3D."""
    check_dims("cnn_small", dims, (2, 3))
    return SmallCNN(dims, in_channels, num_classes, width, dropout)


# ----------------------------------------------------------------------------- AlexNet / VGG


class AlexNet(nn.Module):
    def __init__(self, in_channels: int, num_classes: int, input_size: int, dropout: float) -> None:
        super().__init__()
        if input_size >= SMALL_INPUT:  # Krizhevsky et al. 2012 layout
            stem = [nn.Conv2d(in_channels, 64, 11, 4, 2), nn.ReLU(inplace=True), nn.MaxPool2d(3, 2),
                    nn.Conv2d(64, 192, 5, padding=2), nn.ReLU(inplace=True), nn.MaxPool2d(3, 2)]
        else:  # small input: 3x3 convs, one pooling
            stem = [nn.Conv2d(in_channels, 64, 3, 1, 1), nn.ReLU(inplace=True),
                    nn.Conv2d(64, 192, 3, 1, 1), nn.ReLU(inplace=True), nn.MaxPool2d(2)]
        self.features = nn.Sequential(
            *stem,
            nn.Conv2d(192, 384, 3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(384, 256, 3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(256, 256, 3, padding=1), nn.ReLU(inplace=True), nn.MaxPool2d(2) if input_size < SMALL_INPUT else nn.MaxPool2d(3, 2),
        )
        self.pool = nn.AdaptiveAvgPool2d(6 if input_size >= SMALL_INPUT else 3)
        side = 6 if input_size >= SMALL_INPUT else 3
        self.classifier = nn.Sequential(
            nn.Dropout(dropout), nn.Linear(256 * side * side, 4096 if input_size >= SMALL_INPUT else 1024), nn.ReLU(inplace=True),
            nn.Dropout(dropout), nn.Linear(4096 if input_size >= SMALL_INPUT else 1024, 4096 if input_size >= SMALL_INPUT else 1024),
            nn.ReLU(inplace=True), nn.Linear(4096 if input_size >= SMALL_INPUT else 1024, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.pool(self.features(x)), 1))


@register_model("alexnet", task="classification", dims=(2,), family="alexnet")
def alexnet(in_channels: int, num_classes: int, dims: int = 2, input_size: int = 28, dropout: float = 0.5) -> nn.Module:
    """AlexNet-style CNN (Krizhevsky et al., NeurIPS 2012); small-input stem below 64 px."""
    check_dims("alexnet", dims, (2,))
    return AlexNet(in_channels, num_classes, input_size, dropout)


VGG_CFG = {
    "vgg11": [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "vgg16": [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"],
}


class VGG(nn.Module):
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
        return self.classifier(torch.flatten(self.pool(self.features(x)), 1))


@register_model("vgg11_bn", task="classification", dims=(2,), family="vgg")
def vgg11_bn(in_channels: int, num_classes: int, dims: int = 2, input_size: int = 28, dropout: float = 0.5) -> nn.Module:
    """VGG-11 with batch norm (Simonyan & Zisserman, ICLR 2015); 512-wide head below 64 px."""
    check_dims("vgg11_bn", dims, (2,))
    return VGG(VGG_CFG["vgg11"], in_channels, num_classes, input_size, dropout)


@register_model("vgg16_bn", task="classification", dims=(2,), family="vgg")
def vgg16_bn(in_channels: int, num_classes: int, dims: int = 2, input_size: int = 28, dropout: float = 0.5) -> nn.Module:
    """VGG-16 with batch norm (Simonyan & Zisserman, ICLR 2015); 512-wide head below 64 px."""
    check_dims("vgg16_bn", dims, (2,))
    return VGG(VGG_CFG["vgg16"], in_channels, num_classes, input_size, dropout)


# ----------------------------------------------------------------------------- GoogLeNet


class Inception(nn.Module):
    """Inception-v1 module: 1x1 | 1x1-3x3 | 1x1-5x5 (as two 3x3) | pool-1x1, concatenated."""

    def __init__(self, cin: int, c1: int, c3r: int, c3: int, c5r: int, c5: int, cp: int) -> None:
        super().__init__()
        self.b1 = conv_bn_relu(2, cin, c1, 1)
        self.b2 = nn.Sequential(conv_bn_relu(2, cin, c3r, 1), conv_bn_relu(2, c3r, c3, 3))
        self.b3 = nn.Sequential(conv_bn_relu(2, cin, c5r, 1), conv_bn_relu(2, c5r, c5, 3), conv_bn_relu(2, c5, c5, 3))
        self.b4 = nn.Sequential(nn.MaxPool2d(3, 1, 1), conv_bn_relu(2, cin, cp, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.b1(x), self.b2(x), self.b3(x), self.b4(x)], 1)


class GoogLeNet(nn.Module):
    def __init__(self, in_channels: int, num_classes: int, input_size: int, dropout: float) -> None:
        super().__init__()
        if input_size >= SMALL_INPUT:
            self.stem = nn.Sequential(conv_bn_relu(2, in_channels, 64, 7, 2), nn.MaxPool2d(3, 2, 1),
                                      conv_bn_relu(2, 64, 64, 1), conv_bn_relu(2, 64, 192, 3), nn.MaxPool2d(3, 2, 1))
        else:
            self.stem = conv_bn_relu(2, in_channels, 192, 3)
        self.i3 = nn.Sequential(Inception(192, 64, 96, 128, 16, 32, 32), Inception(256, 128, 128, 192, 32, 96, 64), nn.MaxPool2d(3, 2, 1))
        self.i4 = nn.Sequential(
            Inception(480, 192, 96, 208, 16, 48, 64), Inception(512, 160, 112, 224, 24, 64, 64),
            Inception(512, 128, 128, 256, 24, 64, 64), Inception(512, 112, 144, 288, 32, 64, 64),
            Inception(528, 256, 160, 320, 32, 128, 128), nn.MaxPool2d(3, 2, 1),
        )
        self.i5 = nn.Sequential(Inception(832, 256, 160, 320, 32, 128, 128), Inception(832, 384, 192, 384, 48, 128, 128))
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(dropout), nn.Linear(1024, num_classes))
        init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.i5(self.i4(self.i3(self.stem(x)))))


@register_model("googlenet", task="classification", dims=(2,), family="inception")
def googlenet(in_channels: int, num_classes: int, dims: int = 2, input_size: int = 28, dropout: float = 0.4) -> nn.Module:
    """GoogLeNet / Inception-v1 (Szegedy et al., CVPR 2015) with batch norm, no auxiliary heads."""
    check_dims("googlenet", dims, (2,))
    return GoogLeNet(in_channels, num_classes, input_size, dropout)


# ----------------------------------------------------------------------------- ResNets


class ResNet(nn.Module):
    """ResNet for 2D or 3D input (He et al., CVPR 2016), optionally with SE or AA blocks."""

    def __init__(self, block: type[nn.Module], layers: list[int], *, dims: int, in_channels: int, num_classes: int,
                 input_size: int, width: int = 64, se: bool = False, late_block: type[nn.Module] | None = None) -> None:
        super().__init__()
        Conv, BN = conv_nd(dims), bn_nd(dims)
        if input_size >= SMALL_INPUT:
            self.stem = nn.Sequential(Conv(in_channels, width, 7, 2, 3, bias=False), BN(width), nn.ReLU(inplace=True),
                                      maxpool_nd(dims)(3, 2, 1))
        else:  # MedMNIST-style small-input stem
            self.stem = nn.Sequential(Conv(in_channels, width, 3, 1, 1, bias=False), BN(width), nn.ReLU(inplace=True))
        self.cin = width
        stages = []
        for i, (n, mult) in enumerate(zip(layers, (1, 2, 4, 8))):
            blk = late_block if (late_block is not None and i >= 2) else block
            stages.append(self._stage(blk, dims, width * mult, n, stride=1 if i == 0 else 2, se=se))
        self.stages = nn.Sequential(*stages)
        self.pool = adaptive_avgpool_nd(dims)(1)
        self.fc = nn.Linear(self.cin, num_classes)
        init_weights(self)

    def _stage(self, block, dims: int, planes: int, n: int, stride: int, se: bool) -> nn.Sequential:
        blocks = []
        for j in range(n):
            blocks.append(block(dims, self.cin, planes, stride if j == 0 else 1, se=se))
            self.cin = planes * block.expansion
        return nn.Sequential(*blocks)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.flatten(self.pool(self.stages(self.stem(x))), 1))


def _resnet(name: str, block, layers, in_channels, num_classes, dims, input_size, width, se=False, late_block=None):
    check_dims(name, dims, (2,) if late_block is not None else (2, 3))
    return ResNet(block, layers, dims=dims, in_channels=in_channels, num_classes=num_classes, input_size=input_size,
                  width=width, se=se, late_block=late_block)


@register_model("resnet18", task="classification", dims=(2, 3), family="resnet")
def resnet18(in_channels: int, num_classes: int, dims: int = 2, input_size: int = 28, width: int = 64) -> nn.Module:
    """ResNet-18 (He et al., CVPR 2016), 2D or 3D; the MedMNIST v2 baseline."""
    return _resnet("resnet18", BasicBlock, [2, 2, 2, 2], in_channels, num_classes, dims, input_size, width)


@register_model("resnet34", task="classification", dims=(2, 3), family="resnet")
def resnet34(in_channels: int, num_classes: int, dims: int = 2, input_size: int = 28, width: int = 64) -> nn.Module:
    """ResNet-34 (He et al., CVPR 2016), 2D or 3D."""
    return _resnet("resnet34", BasicBlock, [3, 4, 6, 3], in_channels, num_classes, dims, input_size, width)


@register_model("resnet50", task="classification", dims=(2, 3), family="resnet")
def resnet50(in_channels: int, num_classes: int, dims: int = 2, input_size: int = 28, width: int = 64) -> nn.Module:
    """ResNet-50 with bottleneck blocks (He et al., CVPR 2016), 2D or 3D."""
    return _resnet("resnet50", Bottleneck, [3, 4, 6, 3], in_channels, num_classes, dims, input_size, width)


@register_model("se_resnet18", task="classification", dims=(2, 3), family="resnet")
def se_resnet18(in_channels: int, num_classes: int, dims: int = 2, input_size: int = 28, width: int = 64) -> nn.Module:
    """SE-ResNet-18: squeeze-and-excitation in every block (Hu et al., CVPR 2018), 2D or 3D."""
    return _resnet("se_resnet18", BasicBlock, [2, 2, 2, 2], in_channels, num_classes, dims, input_size, width, se=True)


@register_model("se_resnet50", task="classification", dims=(2, 3), family="resnet")
def se_resnet50(in_channels: int, num_classes: int, dims: int = 2, input_size: int = 28, width: int = 64) -> nn.Module:
    """SE-ResNet-50 (Hu et al., CVPR 2018), 2D or 3D."""
    return _resnet("se_resnet50", Bottleneck, [3, 4, 6, 3], in_channels, num_classes, dims, input_size, width, se=True)


@register_model("aa_resnet18", task="classification", dims=(2,), family="resnet")
def aa_resnet18(in_channels: int, num_classes: int, dims: int = 2, input_size: int = 28, width: int = 64) -> nn.Module:
    """Attention-augmented ResNet-18 (Bello et al., ICCV 2019), AA convs in stages 3-4.

    Self-attention only in the late stages, where feature maps are small enough for a CPU."""
    return _resnet("aa_resnet18", BasicBlock, [2, 2, 2, 2], in_channels, num_classes, dims, input_size, width,
                   late_block=AABasicBlock)
