"""openmia env: versions, threads and hardware, for bug reports."""

from __future__ import annotations

import argparse


def add_parser(sub) -> None:
    sub.add_parser("env", help="print versions, threads and hardware (for bug reports)")


def run(args: argparse.Namespace) -> int:
    import os

    import torch

    from openmia import api
    from openmia.engine.device import bf16_units
    from openmia.data.paths import openmia_home

    env = api.environment()
    for k, v in env["versions"].items():
        print(f"{k:14s} {v}")
    hw = env["hardware"]
    print(f"{'git commit':14s} {env['git_commit']}")
    print(f"{'cpu':14s} {hw['cpu']}")
    print(f"{'cpus':14s} {hw['usable_cpus']} usable / {hw['logical_cpus']} logical")
    print(f"{'ram':14s} {hw['ram_bytes'] / 2**30:.1f} GiB" if hw["ram_bytes"] else "ram            unknown")
    print(f"{'torch threads':14s} {torch.get_num_threads()} intra-op, {torch.get_num_interop_threads()} inter-op")
    print(f"{'cpu bf16':14s} {bf16_units()}  (train.precision=bf16 pays off with AMX or AVX-512 BF16)")
    print(f"{'devices':14s} {', '.join(env['devices'])}  (train.device=auto picks {'cuda:0' if torch.cuda.is_available() else 'cpu'})")
    print(f"{'threads':14s} {env['default_threads']} by default (train.threads: CPUs available minus busy ones)")
    print(f"{'os':14s} {hw['os']}")
    print(f"{'OPENMIA_HOME':14s} {openmia_home()}")
    print(f"{'OMP threads':14s} {os.environ.get('OMP_NUM_THREADS', '(unset)')}")
    return 0
