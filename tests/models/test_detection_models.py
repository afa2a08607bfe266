"""CenterNet-style detector: output contract, targets, loss, and that it learns to find boxes."""

from __future__ import annotations

import pytest
import torch

from openmia.errors import ConfigError
from openmia.models import build_model
from openmia.models.detection import centernet_loss, centernet_targets


def _scene(n=8, size=64, seed=0):
    g = torch.Generator().manual_seed(seed)
    imgs = torch.zeros(n, 1, size, size)
    boxes, labels = [], []
    for i in range(n):
        k = int(torch.randint(1, 4, (1,), generator=g))
        bs = []
        for _ in range(k):
            x, y = (int(v) for v in torch.randint(4, size - 20, (2,), generator=g))
            s = int(torch.randint(8, 16, (1,), generator=g))
            imgs[i, 0, y : y + s, x : x + s] = 1.0
            bs.append([x, y, x + s, y + s])
        boxes.append(torch.tensor(bs, dtype=torch.float32))
        labels.append(torch.zeros(k, dtype=torch.long))
    return imgs, boxes, labels


def test_contract_targets_and_decoding():
    m = build_model("centernet", in_channels=1, num_classes=2, input_size=64, width=4, depth=2)
    out = m(torch.randn(2, 1, 64, 64))
    assert out["heatmap"].shape == (2, 2, 16, 16) and out["size"].shape == (2, 2, 16, 16)
    t = centernet_targets([torch.tensor([[8.0, 8, 24, 24]]), torch.zeros(0, 4)], [torch.tensor([1]), torch.zeros(0)], 2,
                          (16, 16), 4)
    # the centre (16, 16) px is cell (4, 4) on the stride-4 grid; size 16 px = 4 cells
    assert t["heatmap"][0, 1, 4, 4] == 1 and t["mask"].sum() == 1 and t["size"][0, :, 4, 4].tolist() == [4.0, 4.0]
    loss = centernet_loss(out, t)
    loss.backward()
    assert torch.isfinite(loss)
    m.eval()
    dets = m.detect(torch.randn(2, 1, 64, 64), score_threshold=0.0, max_detections=5)
    assert len(dets) == 2 and dets[0]["boxes"].shape == (5, 4) and set(dets[0]) == {"boxes", "scores", "labels"}
    pm = build_model("centernet", in_channels=1, num_classes=1, input_size=64, width=4, depth=2, points=True).eval()
    assert "points" in pm.detect(torch.randn(1, 1, 64, 64), score_threshold=0.0, max_detections=3)[0]
    with pytest.raises(ConfigError, match="stride"):
        build_model("centernet", in_channels=1, num_classes=1, stride=3)


def test_learns_squares():
    torch.manual_seed(0)
    imgs, boxes, labels = _scene(16)
    m = build_model("centernet", in_channels=1, num_classes=1, input_size=64, width=8, depth=2)
    opt = torch.optim.Adam(m.parameters(), 3e-3)
    t = centernet_targets(boxes, labels, 1, (16, 16), 4)
    for _ in range(150):
        loss = centernet_loss(m(imgs), t)
        opt.zero_grad()
        loss.backward()
        opt.step()
    m.eval()
    from openmia.metrics.detection import Detections, detection_metrics

    dets = m.detect(imgs, score_threshold=0.3)
    pred = Detections(torch.cat([torch.full((len(d["scores"]),), i) for i, d in enumerate(dets)]).numpy(),
                      torch.cat([d["labels"] for d in dets]).numpy().astype(str),
                      torch.cat([d["boxes"] for d in dets]).numpy(), torch.cat([d["scores"] for d in dets]).numpy())
    truth = Detections(torch.cat([torch.full((len(b),), i) for i, b in enumerate(boxes)]).numpy(),
                       torch.cat(labels).numpy().astype(str), torch.cat(boxes).numpy())
    ap = detection_metrics(pred, truth, len(boxes))["ap50"]
    assert ap > 0.8, ap  # on its training scenes: the pipeline (targets, loss, decoding) is consistent
