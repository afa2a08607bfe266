"""Training-step speed with ``train.precision=bf16`` against fp32, in the same process.

Times one optimiser step (the training loop's forward: the model under
``openmia.engine.device.autocast`` with its outputs cast back to fp32; fp32 loss, backward, AdamW)
of the models the benchmarks train, on their benchmark input shapes, one torch thread, process CPU
time. fp32 and bf16 alternate round by round (median of rounds), so background load affects both
alike. bf16 pays off only on CPUs with bfloat16 matrix units (Intel AMX / AVX-512 BF16); the report
names the CPU and the units torch sees. ``--device cuda`` times the same steps on a GPU (wall
time, synchronised). Usage::

    python benchmarks/precision_speed.py            # writes benchmarks/results/precision_speed.{md,json}
    python benchmarks/precision_speed.py --quick    # small sizes, a smoke test
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]

# name -> (model, factory kwargs, input shape (N, C, *spatial), task)
CASES: dict[str, tuple[str, dict[str, Any], tuple[int, ...], str]] = {
    "resunet 2D (Kvasir-SEG 256², batch 16)": ("resunet", {"channels": [16, 32, 64, 128, 256]}, (16, 3, 256, 256), "seg"),
    "resunet 3D (hippocampus 48x64x48, batch 4)": ("resunet", {"channels": [16, 32, 64, 128, 256]}, (4, 1, 48, 64, 48), "seg"),
    "FCOS (BCCD 480x360, batch 8)": ("fcos", {"width": 16}, (8, 3, 360, 480), "det"),
    "density U-Net (VGG cells 256², batch 8)": ("density_counter", {"width": 16, "depth": 3}, (8, 3, 256, 256), "count"),
}
QUICK_SHAPES = {"seg": {4: (2, 3, 64, 64), 5: (2, 1, 16, 16, 16)}, "det": (2, 3, 64, 96), "count": (2, 3, 64, 64)}


def forward(model, x, precision: str, device):
    """The training loop's forward pass: ``model(x)`` under the autocast of ``precision`` on
    ``device`` (a null context for fp32), every floating output cast back to fp32 so the loss and
    the gradients it starts are fp32, as in training."""
    from openmia.engine.device import autocast, to_fp32

    with autocast(precision, device):
        return to_fp32(model(x))


def _step(model, x, task: str, opt, precision: str, device) -> None:
    import torch

    out = forward(model, x, precision, device)
    if task == "seg":
        y = torch.zeros(x.shape[0], *x.shape[2:], dtype=torch.long, device=device)
        loss = torch.nn.functional.cross_entropy(out, y)
    elif task == "det":
        w = x.shape[-1]
        boxes = [torch.tensor([[w * 0.1, 10.0, w * 0.3, 40.0], [w * 0.5, 20.0, w * 0.6, 35.0]], device=device)
                 for _ in range(x.shape[0])]
        loss = model.compute_loss(out, boxes, [torch.tensor([0, 1], device=device) for _ in range(x.shape[0])])
    else:
        loss = out.float().square().mean()
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()


def _clock(device):
    """Process CPU time on the CPU (fair under background load); synchronised wall time on a GPU."""
    import torch

    if device.type == "cuda":
        def now() -> float:
            torch.cuda.synchronize(device)
            return time.perf_counter()
        return now
    return time.process_time


def measure(rounds: int, steps: int, quick: bool, device_name: str = "cpu") -> list[dict[str, Any]]:
    import torch

    from openmia.engine.device import resolve_device
    from openmia.models import build_model

    device = resolve_device(device_name)
    clock = _clock(device)
    torch.set_num_threads(1)
    records = []
    for name, (model_name, kw, shape, task) in CASES.items():
        if quick:
            shape = QUICK_SHAPES[task][len(shape)] if task == "seg" else QUICK_SHAPES[task]
            kw = {**kw, "channels": [4, 8, 16]} if model_name == "resunet" else {**kw, "width": 4}
        torch.manual_seed(0)
        dims = len(shape) - 2
        model = build_model(model_name, in_channels=shape[1], num_classes={"seg": 2, "det": 3, "count": 1}[task], dims=dims, **kw)
        model.to(device).train()
        opt = torch.optim.AdamW(model.parameters(), 1e-4)
        x = torch.rand(shape).to(device)
        times: dict[str, list[float]] = {"fp32": [], "bf16": []}
        for p in times:  # warm-up: oneDNN (cuDNN) picks its kernels on the first calls
            _step(model, x, task, opt, p, device)
        for _ in range(rounds):
            for p in times:
                t0 = clock()
                for _ in range(steps):
                    _step(model, x, task, opt, p, device)
                times[p].append((clock() - t0) / steps)
        fp32, bf16 = statistics.median(times["fp32"]), statistics.median(times["bf16"])
        records.append({"case": name + (" [quick: small shapes]" if quick else ""), "model": model_name, "input_shape": list(shape),
                        "device": str(device), "fp32_s_per_step": fp32, "bf16_s_per_step": bf16, "speedup": fp32 / bf16,
                        "rounds": rounds, "steps_per_round": steps})
    return records


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--steps", type=int, default=2, help="steps per timed round")
    ap.add_argument("--quick", action="store_true", help="small shapes and widths: a smoke test")
    ap.add_argument("--device", default="cpu", help="cpu (default), cuda, cuda:N or auto")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results"))
    args = ap.parse_args(argv)

    from openmia import fileio
    from openmia.engine.device import bf16_units
    from openmia.engine.provenance import git_commit, hardware

    records = measure(args.rounds, args.steps, args.quick, args.device)
    cpu, units = hardware()["cpu"], bf16_units()
    device = records[0]["device"] if records else args.device
    out = Path(args.out)
    where = ("one torch thread, process CPU time" if device == "cpu" else
             f"on {device} (one torch thread for the host), synchronised wall time")
    flags = (" --quick" if args.quick else "") + (f" --device {args.device}" if args.device != "cpu" else "")
    fileio.write_json(out / "precision_speed.json", {"cpu": cpu, "bf16_units": units, "device": device, "records": records})
    lines = ["# Training step: bf16 autocast vs fp32", "",
             f"CPU: {cpu} (bf16 units: {units}); {where}, median of {args.rounds} alternating "
             f"rounds of {args.steps} step(s). Generated by `python benchmarks/precision_speed.py"
             f"{flags}` on {time.strftime('%Y-%m-%d')} (openmia git {git_commit(ROOT)}).", "",
             "| model and input | fp32 s/step | bf16 s/step | speed-up |", "|---|---|---|---|"]
    lines += [f"| {r['case']} | {r['fp32_s_per_step']:.3f} | {r['bf16_s_per_step']:.3f} | {r['speedup']:.2f}x |" for r in records]
    fileio.write_text(out / "precision_speed.md", "\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
