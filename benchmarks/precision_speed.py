"""Training-step speed with ``train.precision=bf16`` against fp32, in the same process.

Times one optimiser step (forward under the trainer's own ``Trainer._forward``, fp32 loss,
backward, AdamW) of the models the benchmarks train, on their benchmark input shapes, one torch
thread, process CPU time. fp32 and bf16 alternate round by round (median of rounds), so background
load affects both alike. bf16 pays off only on CPUs with bfloat16 matrix units (Intel AMX /
AVX-512 BF16); the report names the CPU and the units torch sees. Usage::

    python benchmarks/precision_speed.py            # writes benchmarks/results/precision_speed.{md,json}
    python benchmarks/precision_speed.py --quick    # small sizes, a smoke test
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

# name -> (model, factory kwargs, input shape (N, C, *spatial), task)
CASES: dict[str, tuple[str, dict[str, Any], tuple[int, ...], str]] = {
    "resunet 2D (Kvasir-SEG 256², batch 16)": ("resunet", {"channels": [16, 32, 64, 128, 256]}, (16, 3, 256, 256), "seg"),
    "resunet 3D (hippocampus 48x64x48, batch 4)": ("resunet", {"channels": [16, 32, 64, 128, 256]}, (4, 1, 48, 64, 48), "seg"),
    "FCOS (BCCD 480x360, batch 8)": ("fcos", {"width": 16}, (8, 3, 360, 480), "det"),
    "density U-Net (VGG cells 256², batch 8)": ("density_counter", {"width": 16, "depth": 3}, (8, 3, 256, 256), "count"),
}
QUICK_SHAPES = {"seg": {4: (2, 3, 64, 64), 5: (2, 1, 16, 16, 16)}, "det": (2, 3, 64, 96), "count": (2, 3, 64, 64)}


class _Stepper:
    """The trainer's forward (``Trainer._forward`` with a given precision) bound to one model."""

    def __init__(self, model, precision: str) -> None:
        from types import SimpleNamespace

        from openmia.engine.trainer import Trainer

        self.model = model
        self.cfg = SimpleNamespace(train=SimpleNamespace(precision=precision))
        self.forward = Trainer._forward.__get__(self)


def _step(model, stepper: _Stepper, x, task: str, opt) -> None:
    import torch

    out = stepper.forward(x)
    if task == "seg":
        y = torch.zeros(x.shape[0], *x.shape[2:], dtype=torch.long)
        loss = torch.nn.functional.cross_entropy(out, y)
    elif task == "det":
        w = x.shape[-1]
        boxes = [torch.tensor([[w * 0.1, 10.0, w * 0.3, 40.0], [w * 0.5, 20.0, w * 0.6, 35.0]]) for _ in range(x.shape[0])]
        loss = model.compute_loss(out, boxes, [torch.tensor([0, 1]) for _ in range(x.shape[0])])
    else:
        loss = out.float().square().mean()
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()


def measure(rounds: int, steps: int, quick: bool) -> list[dict[str, Any]]:
    import torch

    from openmia.models import build_model

    torch.set_num_threads(1)
    records = []
    for name, (model_name, kw, shape, task) in CASES.items():
        if quick:
            shape = QUICK_SHAPES[task][len(shape)] if task == "seg" else QUICK_SHAPES[task]
            kw = {**kw, "channels": [4, 8, 16]} if model_name == "resunet" else {**kw, "width": 4}
        torch.manual_seed(0)
        dims = len(shape) - 2
        model = build_model(model_name, in_channels=shape[1], num_classes={"seg": 2, "det": 3, "count": 1}[task], dims=dims, **kw)
        model.train()
        opt = torch.optim.AdamW(model.parameters(), 1e-4)
        x = torch.rand(shape)
        times: dict[str, list[float]] = {"fp32": [], "bf16": []}
        steppers = {p: _Stepper(model, p) for p in times}
        for p in times:  # warm-up: oneDNN picks its kernels on the first calls
            _step(model, steppers[p], x, task, opt)
        for _ in range(rounds):
            for p in times:
                t0 = time.process_time()
                for _ in range(steps):
                    _step(model, steppers[p], x, task, opt)
                times[p].append((time.process_time() - t0) / steps)
        fp32, bf16 = statistics.median(times["fp32"]), statistics.median(times["bf16"])
        records.append({"case": name + (" [quick: small shapes]" if quick else ""), "model": model_name, "input_shape": list(shape), "fp32_s_per_step": fp32,
                        "bf16_s_per_step": bf16, "speedup": fp32 / bf16, "rounds": rounds, "steps_per_round": steps})
    return records


def _bf16_units() -> str:
    import torch

    from openmia.cli.env_cmd import _bf16_units as units

    return units(torch)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--steps", type=int, default=2, help="steps per timed round")
    ap.add_argument("--quick", action="store_true", help="small shapes and widths: a smoke test")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results"))
    args = ap.parse_args(argv)

    from openmia import fileio
    from openmia.engine.provenance import git_commit, hardware

    records = measure(args.rounds, args.steps, args.quick)
    cpu, units = hardware()["cpu"], _bf16_units()
    out = Path(args.out)
    fileio.write_json(out / "precision_speed.json", {"cpu": cpu, "bf16_units": units, "records": records})
    lines = ["# Training step: bf16 autocast vs fp32", "",
             f"CPU: {cpu} (bf16 units: {units}); one torch thread, process CPU time, median of {args.rounds} alternating "
             f"rounds of {args.steps} step(s). Generated by `python benchmarks/precision_speed.py"
             f"{' --quick' if args.quick else ''}` on {time.strftime('%Y-%m-%d')} (openmia git {git_commit(ROOT)}).", "",
             "| model and input | fp32 s/step | bf16 s/step | speed-up |", "|---|---|---|---|"]
    lines += [f"| {r['case']} | {r['fp32_s_per_step']:.3f} | {r['bf16_s_per_step']:.3f} | {r['speedup']:.2f}x |" for r in records]
    fileio.write_text(out / "precision_speed.md", "\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
