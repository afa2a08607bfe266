"""openmia env: versions, threads and hardware, for bug reports."""

from __future__ import annotations

import argparse


def add_parser(sub) -> None:
    sub.add_parser("env", help="print versions, threads and hardware (for bug reports)")


def run(args: argparse.Namespace) -> int:
    import os

    import torch

    from openmia.bench.store import openmia_home
    from openmia.engine.provenance import git_commit, hardware, versions

    for k, v in versions().items():
        print(f"{k:14s} {v}")
    hw = hardware()
    print(f"{'git commit':14s} {git_commit()}")
    print(f"{'cpu':14s} {hw['cpu']}")
    print(f"{'cpus':14s} {hw['usable_cpus']} usable / {hw['logical_cpus']} logical")
    print(f"{'ram':14s} {hw['ram_bytes'] / 2**30:.1f} GiB" if hw["ram_bytes"] else "ram            unknown")
    print(f"{'torch threads':14s} {torch.get_num_threads()} intra-op, {torch.get_num_interop_threads()} inter-op")
    print(f"{'cuda':14s} {torch.cuda.is_available()}")
    print(f"{'os':14s} {hw['os']}")
    print(f"{'OPENMIA_HOME':14s} {openmia_home()}")
    print(f"{'OMP threads':14s} {os.environ.get('OMP_NUM_THREADS', '(unset)')}")
    return 0
