"""The benchmark scripts import their helpers (``_runs``, ...) as siblings, which works because
``python benchmarks/<name>.py`` puts the script's folder on ``sys.path``; the tests load the
scripts from their files, so they put that folder on the path the same way."""

from __future__ import annotations

import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "benchmarks"
if str(BENCH) not in sys.path:
    sys.path.append(str(BENCH))
