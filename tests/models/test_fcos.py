"""FCOS detector: output contract, hand-checked target assignment, loss, and that it learns to find boxes."""

from __future__ import annotations

import pytest
import torch

from openmia.errors import ConfigError
from openmia.metrics.detection import detection_metrics
from openmia.models import MODELS, build_model
from openmia.models.box_ops import box_iou
from openmia.models.fcos import FCOS, centerness_target, fcos_targets, giou_loss


def _tiny(num_classes=2, **kw) -> FCOS:
    return build_model("fcos", in_channels=1, num_classes=num_classes, input_size=64, width=4, fpn_channels=8,
                       head_convs=1, **kw)


def test_output_contract_and_detect():
    torch.manual_seed(0)
    m = _tiny()
    assert m.points is False
    out = m(torch.randn(2, 1, 64, 48))
    n_loc = 16 * 12 + 8 * 6 + 4 * 3  # strides 4, 8, 16
    assert out["cls_logits"].shape == (2, n_loc, 2) and out["box_reg"].shape == (2, n_loc, 4)
    assert out["centerness"].shape == (2, n_loc) and out["locations"].shape == (2, n_loc, 2)
    assert out["strides"].shape == (2, n_loc) and (out["box_reg"] > 0).all()
    # level by level, row-major: the first location is the centre of the top-left stride-4 cell
    assert out["locations"][0, 0].tolist() == [2.0, 2.0] and out["locations"][0, 1].tolist() == [6.0, 2.0]
    assert out["locations"][0, 16 * 12].tolist() == [4.0, 4.0] and out["strides"][0, -1] == 16
    m.eval()
    dets = m.detect(torch.randn(3, 1, 64, 48), score_threshold=0.0, max_detections=7)
    assert len(dets) == 3
    for d in dets:
        assert set(d) == {"boxes", "scores", "labels"}
        assert d["boxes"].shape == (7, 4) and d["scores"].shape == (7,) and d["labels"].shape == (7,)
        b = d["boxes"]
        assert (b[:, 0] >= 0).all() and (b[:, 2] <= 48).all() and (b[:, 1] >= 0).all() and (b[:, 3] <= 64).all()
        assert (b[:, 2] >= b[:, 0]).all() and (d["scores"].diff() <= 0).all()
        assert d["labels"].dtype == torch.long and ((d["labels"] >= 0) & (d["labels"] < 2)).all()
    assert all(len(d["scores"]) == 0 for d in m.detect(torch.randn(1, 1, 64, 48), score_threshold=1.0))
    # without NMS more candidates survive than with it
    assert len(m.detect(torch.randn(1, 1, 64, 48), nms_iou=None)[0]["scores"]) == 300


def test_registry_three_channels_non_square():
    assert "fcos" in MODELS.names(task="detection")
    m = build_model("fcos", in_channels=3, num_classes=3, input_size=256)
    out = m(torch.randn(1, 3, 240, 320))
    assert out["cls_logits"].shape == (1, 60 * 80 + 30 * 40 + 15 * 20, 3)
    with pytest.raises(ConfigError, match="points"):
        build_model("fcos", in_channels=3, num_classes=1, points=True)
    with pytest.raises(ConfigError, match="strides"):
        build_model("fcos", in_channels=3, num_classes=1, strides=(8, 12))
    with pytest.raises(ConfigError, match="strides"):
        build_model("fcos", in_channels=3, num_classes=1, strides=(16, 8))


def _grid_targets(m: FCOS, boxes, labels, size=64):
    out = m(torch.zeros(1, 1, size, size))
    cls_t, reg_t = m.targets(out, [boxes], [labels])
    return out, cls_t[0], reg_t[0]


def test_target_assignment_by_hand():
    m = _tiny()  # strides 4, 8, 16; size ranges (0, 32], (32, 64], (64, inf); centre radius 1.5 strides
    out, cls_t, reg_t = _grid_targets(m, torch.tensor([[8.0, 8, 24, 24]]), torch.tensor([1]))
    loc = out["locations"][0]
    pos = (cls_t >= 0).nonzero().flatten()
    # stride 4 cell centres are 2, 6, 10, ...; the centre region is (16 -+ 6) clipped to the box = (10, 22),
    # so x, y in {14, 18}. At stride 8 (centres 4, 12, 20, ...) x = 12 or 20 is inside the region, but its
    # max(l, t, r, b) = 12 is below that level's range (32, 64]; at stride 16 no centre lies strictly inside.
    assert sorted(loc[pos].tolist()) == [[14.0, 14.0], [14.0, 18.0], [18.0, 14.0], [18.0, 18.0]]
    assert (cls_t[pos] == 1).all() and (out["strides"][0, pos] == 4).all()
    i = int(((loc[:, 0] == 18) & (loc[:, 1] == 14) & (out["strides"][0] == 4)).nonzero())
    assert reg_t[i].tolist() == [10.0, 6.0, 6.0, 10.0]  # l = 18-8, t = 14-8, r = 24-18, b = 24-14
    assert (reg_t[cls_t < 0] == 0).all()

    # no centre sampling: every stride-4 centre strictly inside the box (x, y in 10..22) is positive
    m.center_radius = None
    _, cls_t, _ = _grid_targets(m, torch.tensor([[8.0, 8, 24, 24]]), torch.tensor([1]))
    assert int((cls_t >= 0).sum()) == 16

    # ambiguity: a location in both a big and a nested small box goes to the smaller one
    m.center_radius = 1.5
    out, cls_t, reg_t = _grid_targets(m, torch.tensor([[0.0, 0, 40, 40], [8, 8, 24, 24]]), torch.tensor([0, 1]))
    loc = out["locations"][0]
    i = int(((loc[:, 0] == 18) & (loc[:, 1] == 18) & (out["strides"][0] == 4)).nonzero())
    assert cls_t[i] == 1 and reg_t[i].tolist() == [10.0, 10.0, 6.0, 6.0]
    j = int(((loc[:, 0] == 22) & (loc[:, 1] == 22) & (out["strides"][0] == 4)).nonzero())
    assert cls_t[j] == 0 and reg_t[j].tolist() == [22.0, 22.0, 18.0, 18.0]  # outside the small box's region


def test_target_helpers():
    loc = torch.tensor([[5.0, 5.0]])
    cls_t, reg_t = fcos_targets(loc, torch.tensor([4.0]), torch.tensor([[0.0, 100.0]]), torch.zeros(0, 4),
                                torch.zeros(0, dtype=torch.long))
    assert cls_t.tolist() == [-1] and reg_t.tolist() == [[0.0] * 4]
    assert centerness_target(torch.tensor([[2.0, 2, 2, 2], [1.0, 4, 4, 1]])).tolist() == [1.0, 0.25]
    t = torch.tensor([[2.0, 3, 4, 5]])
    assert giou_loss(t, t).abs().max() < 1e-6
    # pred box 4x4, target 2x2 inside it at the same location: IoU 1/4, enclosure = the pred box
    assert torch.allclose(giou_loss(torch.tensor([[2.0, 2, 2, 2]]), torch.tensor([[1.0, 1, 1, 1]])), torch.tensor([0.75]))


def test_loss_finite_with_empty_images_and_backpropagates():
    torch.manual_seed(0)
    m = _tiny()
    x = torch.randn(3, 1, 64, 64)
    boxes = [torch.tensor([[8.0, 8, 24, 24], [30, 30, 60, 50]]), torch.zeros(0, 4), torch.tensor([[0.0, 0, 64, 64]])]
    labels = [torch.tensor([0, 1]), torch.zeros(0, dtype=torch.long), torch.tensor([1])]
    loss = m.compute_loss(m(x), boxes, labels)
    assert torch.isfinite(loss)
    loss.backward()
    for name in ("cls_logits.weight", "box_pred.weight", "ctr_pred.weight", "scales", "stem.0.weight"):
        g = dict(m.named_parameters())[name].grad
        assert g is not None and g.abs().sum() > 0, name
    m.zero_grad()
    empty = m.compute_loss(m(x), [torch.zeros(0, 4)] * 3, [torch.zeros(0, dtype=torch.long)] * 3)
    assert torch.isfinite(empty) and empty > 0  # focal loss on all-background
    empty.backward()


def test_learns_squares(square_scene):
    torch.manual_seed(0)
    imgs, boxes, labels = square_scene(8)
    m = build_model("fcos", in_channels=1, num_classes=1, input_size=64, width=8, fpn_channels=32, head_convs=1)
    opt = torch.optim.Adam(m.parameters(), 3e-3)
    for _ in range(100):  # ~3 s on one core
        loss = m.compute_loss(m(imgs), boxes, labels)
        opt.zero_grad()
        loss.backward()
        opt.step()
    m.eval()
    dets = m.detect(imgs, score_threshold=0.3)
    best_iou = torch.cat([box_iou(b, d["boxes"]).max(1).values if len(d["boxes"]) else torch.zeros(len(b))
                          for b, d in zip(boxes, dets)])
    assert best_iou.mean() > 0.7, best_iou
    ap = detection_metrics([{k: v.numpy() for k, v in d.items()} for d in dets],
                           [{"boxes": b.numpy(), "labels": lab.numpy()} for b, lab in zip(boxes, labels)])["ap50"]
    assert ap > 0.8, ap  # on its training scenes: targets, loss and decoding are consistent
