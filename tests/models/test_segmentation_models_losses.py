"""U-Net family (2D/3D) contracts and segmentation losses (hand values, MONAI cross-check)."""

from __future__ import annotations

import pytest
import torch

from openmia.errors import ConfigError
from openmia.losses.segmentation import DeepSupervision, dice_loss, focal_loss, make_loss, tversky_loss
from openmia.models import build_model

SEG_MODELS = ("unet", "attention_unet", "se_unet", "unet_small", "resunet")


@pytest.mark.parametrize("name", SEG_MODELS)
@pytest.mark.parametrize("dims,shape", [(2, (2, 1, 37, 30)), (3, (1, 2, 12, 17, 9))])
def test_output_contract_and_backward(name, dims, shape):
    torch.manual_seed(0)
    kw = {"width": 4} if name != "resunet" else {"channels": [4, 8, 16, 32]}
    if name not in ("unet_small", "resunet"):
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


@pytest.mark.parametrize("dims,shape", [(2, (2, 1, 30, 34)), (3, (1, 1, 12, 16, 18))])
def test_resunet_deep_supervision_outputs_every_coarser_level(dims, shape):
    m = build_model("resunet", in_channels=1, num_classes=3, dims=dims, channels=[4, 8, 16, 16], deep_supervision=True)
    m.train()
    x = torch.randn(*shape)
    out = m(x)
    # 3 down-sampling steps -> levels 1 and 2 (half and quarter size, rounded up), finest first
    assert out.shape == (shape[0], 3, *shape[2:])
    assert [a.shape[2:] for a in m.aux_outputs] == [tuple(-(-s // 2**k) for s in shape[2:]) for k in (1, 2)]
    target = torch.randint(0, 3, (shape[0], *shape[2:]))
    loss = DeepSupervision(make_loss("dice_ce"))(out, m.aux_outputs, target)
    loss.backward()
    assert torch.isfinite(loss) and all(h.weight.grad is not None and h.weight.grad.abs().sum() > 0 for h in m.aux_heads)
    # inference: no auxiliary outputs, and the main logits do not depend on the heads
    m.eval()
    with torch.no_grad():
        main = m(x)
        assert m.aux_outputs == []
        plain = build_model("resunet", in_channels=1, num_classes=3, dims=dims, channels=[4, 8, 16, 16])
        plain.load_state_dict({k: v for k, v in m.state_dict().items() if not k.startswith("aux_heads")})
        plain.eval()
        torch.testing.assert_close(plain(x), main)


@pytest.mark.parametrize("memory_format", ["channels_last", "contiguous"])
@pytest.mark.parametrize("in_channels", [1, 3])
def test_memory_format_gives_the_same_function(memory_format, in_channels):
    # channels-last is a layout, not a different network: same weights -> same logits and gradients
    torch.manual_seed(0)
    kw = dict(in_channels=in_channels, num_classes=2, dims=2, norm="batch")
    a = build_model("resunet", **kw, channels=[4, 8, 16], memory_format=memory_format)
    b = build_model("resunet", **kw, channels=[4, 8, 16], memory_format="contiguous")
    b.load_state_dict(a.state_dict())
    x = torch.randn(2, in_channels, 20, 24)
    ya, yb = a(x), b(x)
    torch.testing.assert_close(ya, yb, rtol=1e-4, atol=1e-5)
    ya.square().sum().backward()
    yb.square().sum().backward()
    torch.testing.assert_close(a.down[0].skip.weight.grad, b.down[0].skip.weight.grad, rtol=1e-3, atol=1e-4)


def test_resunet_matches_monais_design():
    # the same design as MONAI's UNet (strided residual units, transposed-conv decoder): same
    # parameter count up to the biases MONAI keeps before normalisation, same output contract
    monai_nets = pytest.importorskip("monai.networks.nets")
    for dims in (2, 3):
        ours = build_model("resunet", in_channels=1, num_classes=3, dims=dims, channels=[16, 32, 64, 128, 256], norm="instance")
        ref = monai_nets.UNet(dims, 1, 3, channels=(16, 32, 64, 128, 256), strides=(2, 2, 2, 2), num_res_units=2)
        n_ours = sum(p.numel() for p in ours.parameters())
        n_ref = sum(p.numel() for p in ref.parameters())
        assert abs(n_ours - n_ref) / n_ref < 0.01, (n_ours, n_ref)
        x = torch.randn(1, 1, *([32] * dims))
        assert ours(x).shape == ref(x).shape


def test_unet_explicit_channels():
    m = build_model("unet", in_channels=1, num_classes=2, dims=2, channels=[4, 8, 16])
    assert m.depth == 2 and m.head.in_channels == 4
    assert m(torch.randn(1, 1, 10, 12)).shape == (1, 2, 10, 12)
    with pytest.raises(ConfigError, match="channels must list"):
        build_model("unet", in_channels=1, num_classes=2, dims=2, channels=[4])
    with pytest.raises(ConfigError, match="resunet channels"):
        build_model("resunet", in_channels=1, num_classes=2, dims=2, channels=[0, 4])
    with pytest.raises(ConfigError, match="memory_format"):
        build_model("resunet", in_channels=1, num_classes=2, dims=2, memory_format="nhwc")


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
    # per-image Dice (batch=False): MONAI's batch=False averages over images and classes
    ref_i = monai_losses.DiceLoss(softmax=True, to_onehot_y=True, include_background=False, batch=False,
                                  smooth_nr=1e-5, smooth_dr=1e-5)(lo, tt.unsqueeze(1))
    assert dice_loss(lo, tt, batch=False).item() == pytest.approx(ref_i.item(), rel=1e-5)


def test_per_image_dice_hand_computed():
    # image 0: foreground 1 of 4 pixels, image 1: 3 of 4; uniform prediction p = 0.5 everywhere.
    # per image: Dice_0 = 2 * 0.5 / (2 + 1) = 1/3, Dice_1 = 2 * 1.5 / (2 + 3) = 3/5 -> loss 1 - 7/15
    # batch: 2 * (0.5 + 1.5) / (4 + 4) = 1/2 -> loss 1/2 (the large structure dominates)
    t = torch.tensor([[[1, 0], [0, 0]], [[1, 1], [1, 0]]])
    lo = torch.zeros(2, 2, 2, 2)
    assert dice_loss(lo, t, batch=False).item() == pytest.approx(1 - 7 / 15, abs=1e-5)
    assert dice_loss(lo, t).item() == pytest.approx(0.5, abs=1e-5)
    # make_loss passes batch_dice to the Dice term of dice_ce; CE is unchanged
    ce = torch.nn.functional.cross_entropy(lo, t).item()
    assert make_loss("dice_ce", batch_dice=False)(lo, t).item() == pytest.approx(1 - 7 / 15 + ce, abs=1e-5)
    assert make_loss("ce", batch_dice=False)(lo, t).item() == pytest.approx(ce)
