"""Every registered classification model: forward + backward on a tiny input, output contract."""

from __future__ import annotations

import inspect

import pytest
import torch

from openmia.errors import ConfigError, UnknownNameError
from openmia.models import MODELS, build_model, load_all
from openmia.models.classification import count_parameters

load_all()
CASES = [(e.name, d) for e in MODELS if e.meta.get("task") == "classification" for d in e.meta["dims"]]


def _small_kwargs(name: str, dims: int) -> dict:
    """Narrow widths keep 3D ResNets fast; the architecture is the same."""
    params = inspect.signature(MODELS.get(name).factory).parameters
    return {"width": 8} if "width" in params and dims == 3 else {}


@pytest.mark.parametrize("name, dims", CASES, ids=[f"{n}-{d}d" for n, d in CASES])
@pytest.mark.parametrize("channels", [1, 3])
def test_forward_backward_and_output_contract(name, dims, channels):
    torch.manual_seed(0)
    size = 28 if dims == 2 else 16
    model = build_model(name, in_channels=channels, num_classes=4, dims=dims, input_size=size, **_small_kwargs(name, dims))
    x = torch.randn(2, channels, *([size] * dims))
    out = model(x)
    assert out.shape == (2, 4) and torch.isfinite(out).all()
    out.logsumexp(1).sum().backward()
    first = next(p for p in model.parameters() if p.requires_grad)
    assert first.grad is not None and first.grad.abs().sum() > 0, "gradient does not reach the first layer"


@pytest.mark.parametrize("name", ["resnet18", "cnn_small", "vgg11_bn", "aa_resnet18", "googlenet", "alexnet"])
def test_larger_inputs(name):
    model = build_model(name, in_channels=3, num_classes=3, dims=2, input_size=64).eval()
    with torch.no_grad():
        assert model(torch.randn(1, 3, 64, 64)).shape == (1, 3)


@pytest.mark.parametrize("name", ["resnet18", "alexnet"])
def test_224px_forward(name):
    model = build_model(name, in_channels=3, num_classes=2, dims=2, input_size=224).eval()
    with torch.no_grad():
        assert model(torch.randn(1, 3, 224, 224)).shape == (1, 2)


def test_parameter_counts_match_published_architectures():
    # torchvision's published counts for the ImageNet configurations (1000 classes, 3 channels, 224 px)
    assert count_parameters(build_model("resnet18", in_channels=3, num_classes=1000, input_size=224)) == 11_689_512
    assert count_parameters(build_model("resnet50", in_channels=3, num_classes=1000, input_size=224)) == 25_557_032
    assert count_parameters(build_model("vgg16_bn", in_channels=3, num_classes=1000, input_size=224)) == 138_365_992


def test_errors_are_clear():
    with pytest.raises(ConfigError, match=r"'alexnet' supports dims \(2,\), not dims=3"):
        build_model("alexnet", in_channels=1, num_classes=2, dims=3)
    with pytest.raises(ConfigError, match=r"unknown argument\(s\) 'depth'"):
        build_model("resnet18", in_channels=1, num_classes=2, depth=3)
    with pytest.raises(UnknownNameError, match="Did you mean 'resnet18'"):
        build_model("resnet81", in_channels=1, num_classes=2)


def test_se_block_is_a_channel_gate():
    from openmia.models.blocks import SEBlock

    se = SEBlock(4, reduction=2)
    x = torch.rand(2, 4, 5, 5) + 0.1
    g = se.gate(x)
    assert g.shape == (2, 4) and ((g > 0) & (g < 1)).all()
    # hand check: gate = sigmoid(W2 relu(W1 mean(x)))
    s = x.mean((2, 3))
    expect = torch.sigmoid(se.fc2(torch.relu(se.fc1(s))))
    assert torch.allclose(g, expect)
    assert torch.allclose(se(x), x * expect[:, :, None, None])


def test_augmented_conv_shapes_and_attention_rows_sum_to_one():
    from openmia.models.blocks import AugmentedConv2d

    aa = AugmentedConv2d(8, 24, dk=8, dv=8, heads=2, stride=1)
    aa.keep_attention = True
    out = aa(torch.randn(2, 8, 6, 6))
    assert out.shape == (2, 24, 6, 6)
    att = aa.last_attention
    assert att.shape == (2, 2, 36, 36) and torch.allclose(att.sum(-1), torch.ones(2, 2, 36))
    with pytest.raises(ConfigError, match="divisible by heads"):
        AugmentedConv2d(8, 24, dk=7, dv=8, heads=2)
