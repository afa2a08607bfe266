from __future__ import annotations

import pytest

from openmia.errors import ConfigError, UnknownNameError
from openmia.registry import Registry


def make():
    reg = Registry("model")

    @reg.register("resnet18", task="classification", dims=(2, 3))
    def resnet18(in_channels: int, num_classes: int, width: int = 64):
        """A ResNet."""
        return (in_channels, num_classes, width)

    @reg.register("unet", task="segmentation", dims=(2,))
    def unet(**kw):
        return kw

    return reg


def test_build_passes_kwargs_and_filters_by_meta():
    reg = make()
    assert reg.build("resnet18", in_channels=1, num_classes=3, width=8) == (1, 3, 8)
    assert reg.names(task="classification") == ["resnet18"]
    assert reg.names(dims=3) == ["resnet18"]
    assert reg.names(dims=2) == ["resnet18", "unet"]
    assert reg.get("resnet18").doc == "A ResNet."
    assert "unet" in reg and len(reg) == 2


def test_unknown_name_suggests_close_match():
    with pytest.raises(UnknownNameError, match="Did you mean 'resnet18'") as ei:
        make().get("resnet81")
    assert isinstance(ei.value, LookupError)


def test_unknown_kwarg_lists_accepted_names():
    with pytest.raises(ConfigError, match=r"unknown argument\(s\) 'depth'.*accepted: in_channels, num_classes, width"):
        make().build("resnet18", in_channels=1, num_classes=2, depth=3)


def test_duplicate_registration_raises():
    reg = make()
    with pytest.raises(ValueError, match="already registered"):
        reg.register("unet")(lambda: None)
