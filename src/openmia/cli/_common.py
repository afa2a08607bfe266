"""Small helpers shared by CLI subcommands (the table helpers live in :mod:`openmia.evaluation.table`,
below the CLI, and are re-exported here)."""

from __future__ import annotations

from openmia.evaluation.table import format_table, summary_table

__all__ = ["add_restore_options", "format_table", "human_echo", "print_json", "report_restore", "summary_table"]


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


def add_restore_options(p) -> None:
    """The options `inpaint` and `denoise` share (applying a run or a classical method to a folder)."""
    p.add_argument("--scale", choices=("auto", "unit", "uint8", "minmax"), default="auto",
                   help="--model: how the images map to the run's [0, 1] scale: unit (already on it, e.g. the run's own "
                        "inputs/ files), uint8 (/255), minmax (of the known voxels), auto (uint8 for runs trained on uint8 "
                        "images, else minmax; default)")
    p.add_argument("--device", help="--model: auto, cpu, cuda, cuda:N or mps (default: the run's train.device)")
    p.add_argument("--overwrite", action="store_true", help="replace earlier results in a non-empty --out folder")
    p.add_argument("--json", action="store_true", help="print the result as JSON on stdout (the human text goes to stderr)")


def report_restore(args, res: dict, verb: str) -> int:
    """Print what `inpaint`/`denoise` did (and the JSON with ``--json``); the exit code."""
    human_echo(args)(f"{verb} {res['cases']} image(s) with {res['method']} ({res['mean_seconds_per_case']:.3g} s per image); "
                     f"wrote {res['out']}")
    if getattr(args, "json", False):
        print_json(res)
    return 0
