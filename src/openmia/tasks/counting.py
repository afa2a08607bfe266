"""Counting task: objects per image (cells, nuclei) from a density-map model (count = integral) or
a point detector (count = detections at or above a threshold chosen on validation); see
:mod:`openmia.tasks.objects`."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from openmia.errors import ConfigError
from openmia.tasks.base import CompareInputs
from openmia.tasks.objects import ObjectOptions, ObjectTask
from openmia.tasks.registry import register_task


@dataclass(frozen=True)
class CountingOptions(ObjectOptions):
    """The ``counting`` config section: the object options and the density-map targets' width."""

    density_sigma: float = 2.0  # px; the Gaussian of the density-map targets (cells are 4-8 px across)
    where = "counting"

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.density_sigma > 0:
            raise ConfigError(f"counting.density_sigma: expected a positive width in px, found {self.density_sigma}")


@register_task("counting")
class CountingTask(ObjectTask):
    """Cell / object counting with per-class counts and CIs on the count errors."""

    section = CountingOptions
    default_dataset = "synthetic/cells"
    default_model = "density_counter"
    select_metrics = ("count_mae",)
    lower_is_better = frozenset({"count_mae", "loss"})
    default_max_detections = 1000
    headline_metrics = ("count_mae",)
    leaderboard_metrics = ("count_abs_error",)  # compare's per-case name of count_mae

    @classmethod
    def compare_inputs(cls, run_dir: Path, cfg: Any) -> CompareInputs | None:
        return cls.counting_inputs(run_dir)

    @property
    def density_sigma(self) -> float:  # type: ignore[override]
        return self.options.density_sigma
