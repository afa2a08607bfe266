"""Learning-rate factor as a function of training progress (epochs or time budget)."""

from __future__ import annotations

import math

from openmia.config import ScheduleConfig


def lr_factor(cfg: ScheduleConfig, *, progress: float, epoch_float: float) -> float:
    """Multiplier of the base learning rate.

    Args:
        progress: fraction of the budget used, in [0, 1] (max of epoch and time fractions).
        epoch_float: epochs done so far, fractional (for ``step`` and warm-up).
    """
    p = min(max(progress, 0.0), 1.0)
    if cfg.name == "none":
        f = 1.0
    elif cfg.name == "multistep":
        f = cfg.gamma ** sum(p >= m for m in cfg.milestones)
    elif cfg.name == "step":
        f = cfg.gamma ** int(epoch_float // cfg.step_epochs)
    elif cfg.name == "cosine":
        f = 0.5 * (1.0 + math.cos(math.pi * p))
    else:  # validated by ScheduleConfig
        raise ValueError(cfg.name)
    if cfg.warmup_epochs and epoch_float < cfg.warmup_epochs:
        f *= (epoch_float + 1e-3) / cfg.warmup_epochs
    return f
