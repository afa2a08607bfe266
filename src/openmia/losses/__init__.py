"""Losses, one module per task family. The names each family offers are listed here (one table,
importable without torch, so the config can validate them)."""

SEGMENTATION_LOSSES = ("dice", "ce", "dice_ce", "focal", "tversky")
