"""CenterNet-style detector: output contract, targets, loss, and that it learns to find boxes."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from openmia.errors import ConfigError
from openmia.models import build_model
from openmia.models.detection import centernet_loss, centernet_targets


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


def test_learns_squares(square_scene):
    torch.manual_seed(0)
    imgs, boxes, labels = square_scene(16)
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


def test_centernet_compute_loss_matches_targets_and_loss():
    torch.manual_seed(0)
    m = build_model("centernet", in_channels=1, num_classes=2, input_size=64, width=4, depth=2)
    x = torch.randn(2, 1, 64, 48)
    out = m(x)
    boxes = [torch.tensor([[8.0, 8, 24, 24]]), torch.zeros(0, 4)]
    labels = [torch.tensor([1]), torch.zeros(0, dtype=torch.long)]
    expected = centernet_loss(out, centernet_targets(boxes, labels, 2, (16, 12), 4))
    loss = m.compute_loss(out, boxes, labels)
    assert torch.allclose(loss, expected)
    loss.backward()
    empty = m.compute_loss(m(x), [torch.zeros(0, 4)] * 2, [torch.zeros(0, dtype=torch.long)] * 2)
    assert torch.isfinite(empty)
    pm = build_model("centernet", in_channels=1, num_classes=1, input_size=64, width=4, depth=2, points=True)
    assert torch.isfinite(pm.compute_loss(pm(x), [torch.tensor([[10.0, 20]]), torch.zeros(0, 2)],
                                          [torch.tensor([0]), torch.zeros(0, dtype=torch.long)]))


def test_centernet_detect_nms_and_clipping():
    torch.manual_seed(0)
    m = build_model("centernet", in_channels=1, num_classes=2, input_size=64, width=4, depth=2).eval()
    x = torch.randn(1, 1, 64, 48)
    with torch.no_grad():  # huge sizes: every box overlaps every other one and crosses the border
        m.size[-1].bias.fill_(100.0)
    peaks = m.detect(x, score_threshold=0.0, max_detections=50)[0]
    kept = m.detect(x, score_threshold=0.0, max_detections=50, nms_iou=0.5)[0]
    assert len(peaks["scores"]) == 50 and 1 <= len(kept["scores"]) < 50
    assert len(kept["scores"]) <= 2 * 4  # roughly one per class: the clipped boxes nearly coincide
    for d in (peaks, kept):
        b = d["boxes"]
        assert (b[:, 0::2] >= 0).all() and (b[:, 0::2] <= 48).all() and (b[:, 1::2] >= 0).all() and (b[:, 1::2] <= 64).all()
    assert set(kept["labels"].tolist()) == set(peaks["labels"].tolist())  # class-aware
    assert len(m.detect(x, score_threshold=0.0, max_detections=50, nms_iou=0.0)[0]["scores"]) == 50  # 0 = off


@pytest.mark.parametrize("name,points", [("centernet", False), ("centernet", True), ("fcos", False)])
def test_detector_protocol(name, points):
    torch.manual_seed(0)
    kw = {"depth": 2} if name == "centernet" else {"fpn_channels": 8, "head_convs": 1}
    m = build_model(name, in_channels=3, num_classes=2, input_size=64, width=4, points=points, **kw)
    assert m.points is points
    x = torch.randn(2, 3, 48, 64)
    dim = 2 if points else 4
    obj = torch.tensor([[10.0, 12]]) if points else torch.tensor([[10.0, 12, 30, 40]])
    loss = m.compute_loss(m(x), [obj, torch.zeros(0, dim)], [torch.tensor([1]), torch.zeros(0, dtype=torch.long)])
    assert loss.dim() == 0 and torch.isfinite(loss)
    loss.backward()
    m.eval()
    dets = m.detect(x, score_threshold=0.0, max_detections=5, nms_iou=0.5)
    key = "points" if points else "boxes"
    assert len(dets) == 2 and all(set(d) == {key, "scores", "labels"} for d in dets)
    for d in dets:
        assert d[key].shape == (len(d["scores"]), dim) and len(d["scores"]) <= 5 and (d["scores"].diff() <= 0).all()
        assert (d[key][:, 0::2] <= 64).all() and (d[key][:, 1::2] <= 48).all() and (d[key] >= 0).all()
    assert all(len(d["scores"]) == 0 for d in m.detect(x, score_threshold=1.01))


def _blob_volumes(n: int, size: int = 16, seed: int = 0):
    """Volumes ``(n, 1, size, size, size)`` with 1-3 bright Gaussian blobs and their centres (x, y, z)."""
    g = torch.Generator().manual_seed(seed)
    zz, yy, xx = torch.meshgrid(*(torch.arange(size, dtype=torch.float32),) * 3, indexing="ij")
    vols, pts = [], []
    for _ in range(n):
        k = int(torch.randint(1, 4, (1,), generator=g))
        c = 3 + torch.rand(k, 3, generator=g) * (size - 6)
        v = sum(torch.exp(-((xx - p[0]) ** 2 + (yy - p[1]) ** 2 + (zz - p[2]) ** 2) / 4) for p in c)
        vols.append(v[None])
        pts.append(c)
    return torch.stack(vols), pts


def test_centernet_3d_points_targets_contract_and_learning():
    m = build_model("centernet", in_channels=1, num_classes=1, dims=3, input_size=16, width=4, depth=2, stride=2, points=True)
    out = m(torch.randn(2, 1, 16, 16, 12))  # (N, C, D, H, W)
    assert out["heatmap"].shape == (2, 1, 8, 8, 6) and out["offset"].shape == (2, 3, 8, 8, 6)
    # hand example: point x=9, y=5, z=13 at stride 4 -> grid x 2.25, y 1.25, z 3.25: cell (z 3, y 1, x 2)
    t = centernet_targets([torch.tensor([[9.0, 5, 13]])], [torch.tensor([0])], 1, (4, 4, 4), 4, points=True)
    assert t["heatmap"][0, 0, 3, 1, 2] == 1 and t["mask"].sum() == 1
    assert t["offset"][0, :, 3, 1, 2].tolist() == [0.25, 0.25, 0.25]
    # the splat is a 3D Gaussian (sigma 2 cells) about that cell: one cell away in z -> exp(-1/8)
    assert float(t["heatmap"][0, 0, 2, 1, 2]) == pytest.approx(float(torch.exp(torch.tensor(-1 / 8))))
    with pytest.raises(ConfigError, match="points only"):
        build_model("centernet", in_channels=1, num_classes=1, dims=3, input_size=16)
    # learns to find blob centres on its training volumes
    torch.manual_seed(0)
    vols, pts = _blob_volumes(8)
    labels = [torch.zeros(len(p), dtype=torch.long) for p in pts]
    opt = torch.optim.Adam(m.parameters(), 3e-3)
    for _ in range(120):
        loss = m.compute_loss(m(vols), pts, labels)
        opt.zero_grad()
        loss.backward()
        opt.step()
    m.eval()
    dets = m.detect(vols, score_threshold=0.3, max_detections=10)
    assert set(dets[0]) == {"points", "scores", "labels"} and dets[0]["points"].shape[1] == 3
    from openmia.metrics.detection import detection_metrics

    pred = {i: {"points": d["points"].numpy(), "scores": d["scores"].numpy(), "labels": d["labels"].numpy()}
            for i, d in enumerate(dets)}
    truth = {i: {"points": p.numpy(), "labels": np.zeros(len(p), int)} for i, p in enumerate(pts)}
    ap = detection_metrics(pred, truth, kind="point")["ap"]
    assert ap > 0.8, ap
