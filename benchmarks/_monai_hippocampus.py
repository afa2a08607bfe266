"""MONAI's standard 3D recipe on the hippocampus, run beside openmia's in
``benchmarks/segmentation.py`` (needs MONAI: ``pip install -e '.[bench]'``)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np

# for the results table's list of configurations
DESCRIPTION = ("monai.networks.nets.UNet(3, 1, 3, channels=(16, 32, 64, 128, 256), strides=(2, 2, 2, 2), "
               "num_res_units=2) DiceCELoss Adam 1e-3 batch 4 random flips best validation Dice")


def run_monai(job: dict[str, Any]) -> dict[str, Any]:
    """MONAI's standard 3D recipe on the same fold, padded volumes and normalisation: ``UNet``
    (channels 16-256, strides 2, two residual units), ``DiceCELoss``, Adam 1e-3, batch 4, random
    flips, model chosen by validation Dice; scored by openmia's evaluator like every run."""
    import torch
    from monai.losses import DiceCELoss
    from monai.networks.nets import UNet

    from openmia import api, fileio
    from openmia.data.catalog import load_split
    from openmia.tasks.segmentation import mean_foreground_dice, safe_name

    rd = Path(job["run_dir"])
    if (rd / "result.json").is_file():
        return {**job, "reused": True}
    import shutil

    shutil.rmtree(rd, ignore_errors=True)  # an interrupted run starts over (no stale history or weights)
    torch.set_num_threads(1)
    torch.manual_seed(job["seed"])
    splits = {s: load_split("hippocampus", s, root=job["root"], fold=job["fold"]) for s in ("train", "val", "test")}
    k = splits["train"].spec.num_classes
    net = UNet(spatial_dims=3, in_channels=1, out_channels=k, channels=(16, 32, 64, 128, 256), strides=(2, 2, 2, 2),
               num_res_units=2)
    loss_fn = DiceCELoss(to_onehot_y=True, softmax=True)
    opt = torch.optim.Adam(net.parameters(), 1e-3)
    tr = splits["train"]
    x_all, y_all = torch.from_numpy(np.array(tr.images)), torch.from_numpy(np.array(tr.labels, dtype=np.int64))
    gen = torch.Generator().manual_seed(job["seed"])
    budget, used, epoch, best = 60.0 * job["minutes"], 0.0, 0, -1.0
    (rd / "checkpoints").mkdir(parents=True, exist_ok=True)

    def predict(images: np.ndarray) -> np.ndarray:
        net.eval()
        with torch.no_grad():
            return np.concatenate([net(torch.from_numpy(np.array(images[i:i + 8]))).argmax(1).numpy().astype(np.uint8)
                                   for i in range(0, len(images), 8)])

    while used < budget:
        t0 = time.process_time()
        net.train()
        for idx in torch.randperm(len(x_all), generator=gen).split(4):
            x, y = x_all[idx].clone(), y_all[idx].clone()
            for axis in range(3):  # RandFlip on each axis, p = 0.5, per volume
                flip = torch.rand(len(idx), generator=gen) < 0.5
                x[flip], y[flip] = x[flip].flip(2 + axis), y[flip].flip(1 + axis)
            loss = loss_fn(net(x), y.unsqueeze(1))
            opt.zero_grad()
            loss.backward()
            opt.step()
            if used + time.process_time() - t0 >= budget:
                break
        val = mean_foreground_dice(predict(splits["val"].images), np.asarray(splits["val"].labels), k)
        used += time.process_time() - t0
        epoch += 1
        if val > best:
            best = val
            fileio.torch_save(net.state_dict(), rd / "checkpoints" / "best.pt")
        with open(rd / "metrics.jsonl", "a") as f:
            f.write(json.dumps({"epoch": epoch, "val_dice": val, "elapsed": used}) + "\n")
    net.load_state_dict(torch.load(rd / "checkpoints" / "best.pt", weights_only=True))
    te = splits["test"]
    pred = predict(te.images)
    for i, cid in enumerate(te.case_ids):
        region = te.regions[i]
        fileio.save_npy(rd / "predictions" / "test" / f"{safe_name(cid)}.npy", pred[i][region])
        fileio.save_npy(rd / "truth" / "test" / f"{safe_name(cid)}.npy", np.asarray(te.labels[i][region]))
    spec = te.spec
    api.evaluate("segmentation", rd / "predictions" / "test", rd / "truth" / "test", rd / "eval" / "test",
                 spacing=spec.spacing, labels=range(1, k), label_names={j: spec.label_names[j] for j in range(1, k)},
                 n_resamples=job["resamples"])
    fileio.write_json(rd / "result.json", {"status": "complete", "epochs_done": epoch, "best_val": best,
                                           "train_seconds": round(used, 3), "recipe": "monai"})
    return {**job, "reused": False}
