"""Helper for tests/engine/test_distributed.py (not a test): train one epoch with the engine's Loop
and write the loss of every optimiser step (the global batch's mean loss) to a JSON file.

Run as ``python tests/engine/ddp_steps.py OUT.json STEPS KEY=VALUE ...`` (one process) or under
``python -m torch.distributed.run --nproc-per-node N`` with ``OPENMIA_DDP=1`` (N ranks).
"""

from __future__ import annotations

import json
import sys
import tempfile

from openmia.config import load_config
from openmia.engine.loop import Loop


class _Enough(Exception):
    """Raised on every rank after the same step: the steps asked for are recorded."""


def main(out: str, steps: int, overrides: list[str]) -> None:
    loop = Loop(load_config(None, overrides), progress=False).setup()
    losses: list[float] = []
    apply = loop._apply

    def recording_apply(loss, epoch, step):
        value = loss.item()
        if loop.dist is not None:  # each rank passes its weighted part: mean over ranks = global batch mean
            value = loop.dist.sum_floats([value])[0] / loop.dist.world
        losses.append(value)
        apply(loss, epoch, step)
        if len(losses) >= steps:
            raise _Enough

    loop._apply = recording_apply
    with tempfile.TemporaryDirectory() as tmp:
        loop.start(tmp if loop.writer else None)
        try:
            loop.fit(stop_after_epoch=1)
        except _Enough:
            pass
    if loop.writer:
        with open(out, "w") as f:
            json.dump({"losses": losses, "world": 1 if loop.dist is None else loop.dist.world}, f)
    if loop.dist is not None:
        import torch.distributed as dist

        dist.destroy_process_group()


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), sys.argv[3:])
