"""Where openmia keeps data: ``OPENMIA_HOME`` (default ``~/.cache/openmia``)."""

from __future__ import annotations

import os
from pathlib import Path


def openmia_home() -> Path:
    """The cache root: ``$OPENMIA_HOME`` or ``~/.cache/openmia``."""
    return Path(os.environ.get("OPENMIA_HOME") or Path.home() / ".cache" / "openmia")


def medmnist_dir(home: str | Path | None = None) -> Path:
    return (Path(home) if home else openmia_home()) / "medmnist"


def data_file(spec, root=None) -> Path:
    """Where the file of a downloadable set lives (``root`` or ``OPENMIA_HOME/medmnist``)."""
    from openmia.errors import DataError

    if spec.filename is None:
        raise DataError(f"{spec.name} is generated, it has no file")
    return (Path(root) if root else medmnist_dir()) / spec.filename
