"""The one ``openmia`` command. Each subcommand lives in its own module exposing
``add_parser(subparsers)`` and ``run(args) -> int``; modules are imported lazily so that
``openmia --help`` answers fast."""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from openmia import __version__

# subcommand -> (module, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "quickstart": ("openmia.cli.quickstart_cmd", "train + evaluate a small model on synthetic data (no download)"),
    "env": ("openmia.cli.env_cmd", "print versions, threads and hardware (for bug reports)"),
    "list": ("openmia.cli.list_cmd", "list registered models, data sets or tasks"),
    "data": ("openmia.cli.data_cmd", "list, describe, fetch, import and verify data sets"),
    "train": ("openmia.cli.train_cmd", "train a model; writes a run directory"),
    "pretrain": ("openmia.cli.pretrain_cmd", "self-supervised pre-training (SimCLR, BYOL, masked images) on training images"),
    "reevaluate": ("openmia.cli.reevaluate_cmd", "score a finished run again with other evaluation settings"),
    "predict": ("openmia.cli.predict_cmd", "apply a trained run to a folder of images"),
    "count": ("openmia.cli.count_cmd", "count and mark objects (cells, lesions) in images"),
    "inpaint": ("openmia.cli.inpaint_cmd", "fill masked holes in images (trained run or classical method)"),
    "denoise": ("openmia.cli.denoise_cmd", "denoise images (trained run or classical method)"),
    "embed": ("openmia.cli.embed_cmd", "one feature vector per case from a trained run or raw-pixel PCA"),
    "cluster": ("openmia.cli.cluster_cmd", "cluster embeddings: k chosen or auto, stability, report, scores vs labels"),
    "profile": ("openmia.cli.profile_cmd", "patient profiles: embeddings + covariates/volumes clustered, with CIs"),
    "evaluate": ("openmia.cli.evaluate_cmd", "score prediction files from any tool against truth"),
    "compare": ("openmia.cli.compare_cmd", "compare models on the same cases: paired tests, Holm, rankings"),
    "rank": ("openmia.cli.rank_cmd", "rank models across data sets: Friedman, Nemenyi, Holm vs a control, CD diagram"),
    "plan": ("openmia.cli.plan_cmd", "sample size: cases needed for a CI half-width or to detect a difference"),
    "runs": ("openmia.cli.runs_cmd", "list and show recorded runs"),
    "benchmark": ("openmia.cli.benchmark_cmd", "run benchmark suites (local or Ray), their status and leaderboard"),
}


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """Build the argument parser; ``only`` imports just that subcommand's module."""
    parser = argparse.ArgumentParser(
        prog="openmia",
        description="openmia: deep learning for medical image analysis with one evaluation standard.",
    )
    parser.add_argument("--version", action="version", version=f"openmia {__version__}")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bars, warnings only")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module, help_) in COMMANDS.items():
        if only is not None and name == only:
            importlib.import_module(module).add_parser(sub)
        else:
            sub.add_parser(name, help=help_, add_help=False)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``openmia`` console script; returns the exit code."""
    from openmia.errors import OpenmiaError

    argv = list(sys.argv[1:] if argv is None else argv)
    # the subcommand is the first positional argument (global options take no values)
    command = next((a for a in argv if not a.startswith("-")), None)
    command = command if command in COMMANDS else None
    parser = build_parser(only=command)
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING if args.quiet else logging.INFO,
        format="%(levelname)s %(name)s: %(message)s",
    )
    module = importlib.import_module(COMMANDS[args.command][0])
    try:
        return int(module.run(args) or 0)
    except OpenmiaError as exc:
        print(f"openmia {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except ModuleNotFoundError as exc:
        if exc.name != "torch":
            raise
        # the evaluator installs without a deep-learning stack (`pip install openmia`); training does not
        print(f"openmia {args.command}: error: this command needs PyTorch, which is not installed; install it with "
              "pip install 'openmia[train]' (or pip install torch)", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # output piped into `head` etc.: stop quietly
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
