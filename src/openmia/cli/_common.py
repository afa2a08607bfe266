"""Small helpers shared by CLI subcommands (the table helpers live in :mod:`openmia.evaluation.table`,
below the CLI, and are re-exported here)."""

from __future__ import annotations

from openmia.evaluation.table import format_table, summary_table

__all__ = ["format_table", "human_echo", "print_json", "summary_table"]


def human_echo(args):
    """``print`` for a command's human text: on stderr with ``--json`` (stdout holds only the JSON)."""
    import functools
    import sys

    return functools.partial(print, file=sys.stderr) if getattr(args, "json", False) else print


def print_json(data) -> None:
    """Print ``data`` (a dict, or the text of a JSON file) on stdout for ``--json``."""
    import json

    text = data if isinstance(data, str) else json.dumps(data, indent=2, default=str)
    print(text.rstrip("\n"))
