"""Data-parallel training throughput on this machine: 1 process x 2 threads vs 2 processes x 1
thread (``openmia train --nproc 2``, torchrun + gloo), and 1 process x 1 thread as the reference,
through ``openmia.api.train``.

    python benchmarks/ddp_throughput.py [--repeats 1] [--epochs 2]

Cases (the global batch is the same in both settings):

* ``seg2d``: ``synthetic/seg2d``, ``unet_small`` width 8, batch 8.
* ``binary``: ``synthetic/binary``, ``cnn_small`` (the classification default), batch 128.

``train samples/s`` = training cases x epochs / ``train_seconds`` (the run's budget clock: the
epochs *including* rank 0's per-epoch validation, excluding start-up and the final test
evaluation). ``wall s`` is the whole ``api.train`` call: for 2 processes it includes torchrun and
two Python + torch start-ups. The machine is shared: the 1-minute load average is recorded before
and after every run, and the runs alternate between settings.
Writes ``benchmarks/results/ddp_throughput.{md,json}``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"

CASES = {
    "seg2d": ["task=segmentation", "data.dataset=synthetic/seg2d", "model.name=unet_small", "model.kwargs.width=8",
              "data.batch_size=8"],
    "binary": ["data.dataset=synthetic/binary", "model.name=cnn_small", "data.batch_size=128"],
}
# (nproc, train.threads in all); 1 x 1 is the reference that separates the thread effect from DDP's
SETTINGS = {"1 proc x 2 threads": (1, 2), "2 proc x 1 thread": (2, 2), "1 proc x 1 thread": (1, 1)}


def run_one(case: str, nproc: int, threads: int, epochs: int, work: Path) -> dict:
    from openmia import api

    ov = [*CASES[case], f"train.epochs={epochs}", f"train.threads={threads}", "eval.n_resamples=200",
          f"out_dir={work}"]
    load0 = os.getloadavg()[0]
    t0 = time.perf_counter()
    res = api.train(None, ov, progress=False, index=False, nproc=nproc)
    wall = time.perf_counter() - t0
    prov = json.loads((res.run_dir / "provenance.json").read_text())
    n_train = prov["data"]["splits"]["train"]["n"]
    return {"case": case, "nproc": nproc, "threads_total": threads, "epochs": res.epochs_done, "n_train": n_train,
            "train_seconds": round(res.train_seconds, 3), "wall_seconds": round(wall, 2),
            "train_samples_per_s": round(n_train * res.epochs_done / res.train_seconds, 1),
            "load_before": round(load0, 2), "load_after": round(os.getloadavg()[0], 2)}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=1)
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--cases", nargs="+", default=list(CASES), choices=list(CASES))
    a = p.parse_args(argv)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(a.repeats):
            for case in a.cases:
                order = list(SETTINGS.items()) if r % 2 == 0 else list(SETTINGS.items())[::-1]
                for name, (nproc, threads) in order:
                    row = {"setting": name, "repeat": r, **run_one(case, nproc, threads, a.epochs, Path(tmp) / f"{case}{r}{nproc}")}
                    print(json.dumps(row), file=sys.stderr)
                    rows.append(row)
    from openmia import fileio

    meta = {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version(),
            "date_utc": time.strftime("%Y-%m-%d %H:%M", time.gmtime())}
    import torch

    meta["torch"] = torch.__version__
    fileio.write_json(RESULTS / "ddp_throughput.json", {"meta": meta, "rows": rows})
    lines = ["# Data-parallel training throughput (`openmia train --nproc`)", "",
             f"Machine: {meta['cpus']} CPUs, shared with other jobs; {meta['platform']}, torch {meta['torch']}, "
             f"{meta['date_utc']} UTC. Command: `python benchmarks/ddp_throughput.py --repeats {a.repeats} "
             f"--epochs {a.epochs}`.", "",
             "train samples/s = training cases x epochs / train_seconds (epochs incl. rank 0's validation); "
             "wall s = the whole `api.train` call (start-up, torchrun, final test evaluation).", "",
             "| case | setting | repeat | n_train | train s | train samples/s | wall s | load avg before / after |",
             "|---|---|---|---|---|---|---|---|"]
    for row in rows:
        lines.append(f"| {row['case']} | {row['setting']} | {row['repeat']} | {row['n_train']} | {row['train_seconds']} | "
                     f"{row['train_samples_per_s']} | {row['wall_seconds']} | {row['load_before']} / {row['load_after']} |")
    fileio.write_text(RESULTS / "ddp_throughput.md", "\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
