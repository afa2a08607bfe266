"""The entry point of each rank of a data-parallel run (``python -m openmia.cli.ddp_worker``,
started under torchrun by :func:`openmia.engine.distributed.launch`). It lives above the engine
because every rank trains through the same door as a one-process run, :mod:`openmia.api`."""

from __future__ import annotations

import argparse
import os
import pickle
import sys
from pathlib import Path
from typing import Sequence



def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of each rank (``python -m openmia.cli.ddp_worker``, started by :func:`openmia.engine.distributed.launch`)."""
    import logging

    p = argparse.ArgumentParser(prog="openmia.cli.ddp_worker")
    p.add_argument("--config")
    p.add_argument("--run-dir")
    p.add_argument("--resume")
    p.add_argument("--result", required=True)
    p.add_argument("--errors", required=True)
    p.add_argument("--progress", action="store_true")
    p.add_argument("--no-index", action="store_true")
    a = p.parse_args(argv)
    rank = int(os.environ.get("RANK", "0"))
    logging.basicConfig(level=logging.INFO if rank == 0 else logging.WARNING,
                        format=f"%(levelname)s [rank {rank}] %(name)s: %(message)s")
    from openmia import api  # the process's entry point: the same door as a one-process run

    try:
        show = a.progress and rank == 0
        if a.resume:
            res = api.resume(a.resume, progress=show, index=not a.no_index)
        else:
            res = api.train(a.config, progress=show, run_dir=a.run_dir, index=not a.no_index)
        if rank == 0:
            from openmia import fileio

            with fileio.atomic_path(Path(a.result)) as tmp:
                with open(tmp, "wb") as f:
                    pickle.dump(res, f)
    except BaseException as exc:
        from openmia import fileio

        fileio.write_json(Path(a.errors) / f"rank{rank}.json",
                          {"rank": rank, "type": type(exc).__name__, "message": str(exc)})
        raise
    finally:
        import torch.distributed as dist

        if dist.is_available() and dist.is_initialized():
            dist.destroy_process_group()
    return 0


if __name__ == "__main__":
    sys.exit(main())
