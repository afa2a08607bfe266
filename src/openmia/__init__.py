"""openmia — open medical image analysis.

Deep-learning models, training and one evaluation standard (every number with its confidence
interval, paired comparisons) for medical images. ``import openmia`` stays light: torch and other
heavy libraries are imported only by the functions that need them.
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__", "train", "evaluate", "quickstart"]


def __getattr__(name: str):  # lazy public API (PEP 562)
    if name in {"train", "evaluate", "quickstart"}:
        from openmia import api

        return getattr(api, name)
    raise AttributeError(f"module 'openmia' has no attribute {name!r}")
