"""Small helpers shared by CLI subcommands (the table helpers live in :mod:`openmia.evaluation.table`,
below the CLI, and are re-exported here)."""

from __future__ import annotations

from openmia.evaluation.table import format_table, summary_table

__all__ = ["format_table", "summary_table"]
