"""U-Net family (2D/3D) contracts and segmentation losses (hand values, MONAI cross-check)."""

from __future__ import annotations

import pytest
import torch

from openmia.errors import ConfigError
from openmia.losses.segmentation import DeepSupervision, dice_loss, focal_loss, make_loss, tversky_loss
from openmia.models import build_model

SEG_MODELS = ("unet", "attention_unet", "se_unet", "unet_small")


@pytest.mark.parametrize("name", SEG_MODELS)
@pytest.mark.parametrize("dims,shape", [(2, (2, 1, 37, 30)), (3, (1, 2, 12, 17, 9))])
def test_output_contract_and_backward(name, dims, shape):
    torch.manual_seed(0)
    kw = {"width": 4} if name != "unet_small" else {"width": 4}
    if name != "unet_small":
        kw["depth"] = 3
    m = build_model(name, in_channels=shape[1], num_classes=3, dims=dims, input_size=shape[-1], **kw)
    x = torch.randn(*shape)
    out = m(x)
    assert out.shape == (shape[0], 3, *shape[2:])  # same spatial size, odd sizes included
    out.sum().backward()
    assert all(p.grad is not None for p in m.parameters() if p.requires_grad)
    m.eval()
    with torch.no_grad():
        assert torch.isfinite(m(x)).all()


def test_attention_gates_and_deep_supervision():
    m = build_model("attention_unet", in_channels=1, num_classes=2, dims=2, depth=3, width=4, deep_supervision=True)
    m.train()
    out = m(torch.randn(2, 1, 32, 32))
    assert [a.shape[2:] for a in m.aux_outputs] == [(16, 16), (8, 8)]  # finest first
    gate = m.gates[0]
    assert gate.last_alpha is not None and gate.last_alpha.min() >= 0 and gate.last_alpha.max() <= 1
    target = torch.randint(0, 2, (2, 32, 32))
    loss = DeepSupervision(make_loss("dice_ce"))(out, m.aux_outputs, target)
    loss.backward()
    assert torch.isfinite(loss)


def test_bad_config_is_clear():
    with pytest.raises(ConfigError, match="norm must be one of"):
        build_model("unet", in_channels=1, num_classes=2, dims=2, norm="layer")
    with pytest.raises(ConfigError, match="supports dims"):
        build_model("unet", in_channels=1, num_classes=2, dims=4)
    m = build_model("unet_small", in_channels=1, num_classes=2, dims=3)
    with pytest.raises(ConfigError, match="3D U-Net expects input"):
        m(torch.randn(1, 1, 8, 8))


def test_losses_hand_computed():
    # perfect, confident prediction: Dice loss ~ 0, CE ~ 0
    t = torch.tensor([[[0, 1], [1, 1]]])
    logits = torch.stack([(t == 0).float(), (t == 1).float()], 1) * 50
    assert dice_loss(logits, t) < 1e-5 and focal_loss(logits, t) < 1e-8
    # uniform prediction p = 0.5 everywhere, foreground class 1 with 3 of 4 pixels:
    # Dice_1 = 2 * (0.5 * 3) / (0.5 * 4 + 3) = 3 / 5 -> loss 0.4
    assert dice_loss(torch.zeros(1, 2, 2, 2), t).item() == pytest.approx(0.4, abs=1e-5)
    # focal with gamma = 0 is cross-entropy
    lo = torch.randn(2, 3, 5, 5)
    tt = torch.randint(0, 3, (2, 5, 5))
    assert focal_loss(lo, tt, gamma=0.0).item() == pytest.approx(torch.nn.functional.cross_entropy(lo, tt).item(), rel=1e-6)
    # Tversky with alpha = beta = 0.5 is Dice; alpha > beta penalises false positives more
    assert tversky_loss(lo, tt).item() == pytest.approx(dice_loss(lo, tt).item())
    with pytest.raises(ConfigError, match="unknown segmentation loss"):
        make_loss("lovasz")
    with pytest.raises(ConfigError, match="must match"):
        dice_loss(lo, tt[:, :4])


def test_dice_loss_matches_monai():
    """Source: MONAI DiceLoss(softmax=True, to_onehot_y=True, include_background=False, batch=True)."""
    monai_losses = pytest.importorskip("monai.losses")
    torch.manual_seed(1)
    lo = torch.randn(2, 3, 6, 7, 5)
    tt = torch.randint(0, 3, (2, 6, 7, 5))
    ref = monai_losses.DiceLoss(softmax=True, to_onehot_y=True, include_background=False, batch=True,
                                smooth_nr=1e-5, smooth_dr=1e-5)(lo, tt.unsqueeze(1))
    assert dice_loss(lo, tt).item() == pytest.approx(ref.item(), rel=1e-5)
    ref_t = monai_losses.TverskyLoss(softmax=True, to_onehot_y=True, include_background=False, batch=True, alpha=0.7,
                                     beta=0.3, smooth_nr=1e-5, smooth_dr=1e-5)(lo, tt.unsqueeze(1))
    assert tversky_loss(lo, tt, alpha=0.7, beta=0.3).item() == pytest.approx(ref_t.item(), rel=1e-5)
