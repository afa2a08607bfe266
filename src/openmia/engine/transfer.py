"""``train.init_from``: start a run from another run's kept weights.

Transfer learning (train on one set, fine-tune on another) and progressive resizing (train at a
small resolution, continue at a larger one) both start from weights that exist already. Every
parameter and buffer whose name and shape match is copied; the rest keep their fresh
initialisation and are listed (a classification head for another number of classes, say). The
source is a run directory (its ``checkpoints/best.pt``, the weights that run kept) or a ``.pt``
checkpoint file; what was loaded, with the file's SHA-256, is recorded in the run's
``init_from.json`` and provenance.
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path
from typing import Any

from openmia.errors import ConfigError

log = logging.getLogger(__name__)


def resolve_source(source: str | Path) -> Path:
    """The checkpoint file ``source`` names: a run directory's ``checkpoints/best.pt``, or a file."""
    p = Path(source).expanduser()
    if p.is_dir():
        ck = p / "checkpoints" / "best.pt"
        if not ck.is_file():
            raise ConfigError(f"train.init_from={str(source)!r}: {p} has no checkpoints/best.pt "
                              "(expected a finished openmia run directory or a .pt checkpoint file)")
        return ck
    if not p.is_file():
        raise ConfigError(f"train.init_from={str(source)!r}: no such run directory or checkpoint file")
    return p


def _state_dict(ck: Any, path: Path) -> dict[str, Any]:
    """The weights in a loaded checkpoint: openmia's ``{"model": state_dict, ...}`` or a bare state dict."""
    import torch

    sd = ck.get("model", ck) if isinstance(ck, dict) else None
    if not isinstance(sd, dict) or not sd or not all(isinstance(v, torch.Tensor) for v in sd.values()):
        raise ConfigError(f"train.init_from: {path} holds no model weights (expected openmia's checkpoint with a "
                          "'model' state dict, or a state dict of tensors)")
    return sd


def load_matching_weights(model, source: str | Path) -> dict[str, Any]:
    """Copy every tensor of ``source``'s weights whose name and shape match ``model``'s state dict.

    Returns the record kept in ``init_from.json``: source path, its SHA-256, and the names loaded,
    kept fresh (absent from the source or of another shape) and unused (only in the source).
    Raises ConfigError when the file cannot be read or nothing matches."""
    import torch

    path = resolve_source(source).resolve()
    try:
        ck = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # a torn, foreign or pickled-object file
        raise ConfigError(f"train.init_from: cannot load {path} ({type(exc).__name__}: {exc})") from None
    src = _state_dict(ck, path)
    own = model.state_dict()
    loaded = [k for k, v in own.items() if k in src and tuple(src[k].shape) == tuple(v.shape)]
    if not loaded:
        raise ConfigError(f"train.init_from: no tensor of {path} fits this model (no name with the same shape); "
                          "is it a run of another architecture?")
    fresh = [k for k in own if k not in set(loaded)]
    with torch.no_grad():
        for k in loaded:
            own[k].copy_(src[k].to(own[k].dtype))
    if fresh:
        log.warning("train.init_from: %d of %d tensors loaded from %s; kept fresh: %s", len(loaded), len(own), path,
                    ", ".join(fresh[:8]) + (" ..." if len(fresh) > 8 else ""))
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    return {"source": str(path), "sha256": digest, "loaded": len(loaded), "total": len(own), "fresh": fresh,
            "unused": [k for k in src if k not in own]}
