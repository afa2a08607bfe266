"""Model zoo: registered factories, native PyTorch (no torchvision/timm).

Factory convention (every registered model)::

    @register_model("resnet18", task="classification", dims=(2, 3))
    def resnet18(in_channels: int, num_classes: int, dims: int = 2, input_size: int = 28, **kw) -> nn.Module

Output contract (DESIGN §2): classification models return ``(N, K)`` logits for input
``(N, C, *spatial)``; segmentation models ``(N, K, *spatial)`` logits of the input's size. Importing this package does not import torch; :func:`load_all` does.
"""

from __future__ import annotations

from openmia.registry import Registry

MODELS: Registry = Registry("model")
register_model = MODELS.register

# modules that register models; imported on demand so `openmia --help` stays fast
_MODEL_MODULES = ("openmia.models.classification", "openmia.models.dbn", "openmia.models.segmentation",
                  "openmia.models.detection", "openmia.models.fcos", "openmia.models.generative",
                  "openmia.models.landmarks")


def load_all() -> Registry:
    """Import every model module (registers them) and return the registry."""
    import importlib

    for mod in _MODEL_MODULES:
        importlib.import_module(mod)
    return MODELS


def build_model(name: str, **kwargs):
    """Build a registered model by name; kwargs are checked against its factory signature."""
    return load_all().build(name, **kwargs)
