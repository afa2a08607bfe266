"""Generative models (conv_ae, conv_vae, gated_unet, denoise_unet) and their losses: forward +
backward on tiny 2D/3D inputs, output contracts, and the losses against hand-computed values and
scikit-image's SSIM."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from openmia.errors import ConfigError
from openmia.losses import generative as L
from openmia.models import build_model, load_all

CASES = [("conv_ae", 0), ("conv_vae", 0), ("gated_unet", 1), ("denoise_unet", 0)]


@pytest.mark.parametrize("name,extra", CASES)
@pytest.mark.parametrize("dims,shape", [(2, (20, 18)), (3, (10, 12, 9))])
def test_forward_backward_any_size(name, extra, dims, shape):
    torch.manual_seed(0)
    m = build_model(name, in_channels=1, num_classes=1, dims=dims, input_size=16, width=4, depth=2)
    x = torch.rand(2, 1 + extra, *shape)
    out = m(x)
    assert out.shape == (2, 1, *shape)  # sizes not divisible by 2**depth are padded and cropped back
    out.mean().backward()
    grads = [p.grad for p in m.parameters() if p.requires_grad]
    assert grads and all(g is not None and torch.isfinite(g).all() for g in grads)
    z = m.encode(x)
    assert z.ndim == 2 and z.shape[0] == 2


def test_registry_tasks_and_dims():
    reg = load_all()
    assert {reg.get(n).meta["task"] for n in ("conv_ae", "conv_vae")} == {"reconstruction"}
    assert reg.get("gated_unet").meta["task"] == "inpainting"
    assert reg.get("denoise_unet").meta["task"] == "denoising"
    with pytest.raises(ConfigError, match="depth"):
        build_model("conv_ae", in_channels=1, num_classes=1, dims=2, input_size=16, depth=0)
    with pytest.raises(ConfigError):
        build_model("gated_unet", in_channels=1, num_classes=1, dims=4, input_size=16)


def test_vae_keeps_moments_and_is_deterministic_in_eval():
    torch.manual_seed(0)
    m = build_model("conv_vae", in_channels=1, num_classes=1, dims=2, input_size=16, width=4, depth=2, latent=3)
    x = torch.rand(2, 1, 16, 16)
    m.train()
    m(x)
    assert m.last_mu.shape == (2, 3, 4, 4) and m.last_logvar.shape == (2, 3, 4, 4)
    m.eval()
    with torch.no_grad():
        torch.testing.assert_close(m(x), m(x))  # z = mu in eval mode
        assert m.encode(x).shape == (2, 3)
        torch.testing.assert_close(m.encode(x), m.last_mu.flatten(2).mean(2))


def test_embedding_rows_do_not_depend_on_the_batch():
    torch.manual_seed(0)
    m = build_model("conv_ae", in_channels=1, num_classes=1, dims=2, input_size=16, width=4, depth=2).eval()
    x = torch.rand(3, 1, 16, 16)
    with torch.no_grad():
        torch.testing.assert_close(m.encode(x)[1:2], m.encode(x[1:2]))  # instance norm: no batch statistics


def test_denoise_unet_is_residual_and_inpainting_unet_takes_the_mask_channel():
    m = build_model("denoise_unet", in_channels=1, num_classes=1, dims=2, input_size=16, width=4, depth=2)
    with torch.no_grad():
        x = torch.rand(1, 1, 16, 16)
        torch.testing.assert_close(m(x), x)  # the residual head starts at zero: an untrained net returns its input
    g = build_model("gated_unet", in_channels=1, num_classes=1, dims=2, input_size=16, width=4, depth=2)
    assert g.stem[0].conv.in_channels == 2


def test_masked_l1_hand_computed():
    pred = torch.tensor([[[[1.0, 2.0], [3.0, 4.0]]]])
    target = torch.zeros_like(pred)
    mask = torch.tensor([[[[1.0, 0.0], [0.0, 1.0]]]])
    # hole: (1 + 4) / 2 = 2.5; known: (2 + 3) / 2 = 2.5; 2.5 + 0.1 * 2.5
    assert L.masked_l1(pred, target, mask, 0.1).item() == pytest.approx(2.75)
    assert L.masked_l1(pred, target, mask, 0.0).item() == pytest.approx(2.5)


@pytest.mark.parametrize("shape", [(1, 1, 24, 20), (1, 1, 12, 14, 11)])
def test_ssim_matches_scikit_image(shape):
    from skimage.metrics import structural_similarity

    rng = np.random.default_rng(0)
    a = rng.random(shape[2:])
    b = np.clip(a + 0.2 * rng.standard_normal(shape[2:]), 0, 1)
    ours = L.ssim(torch.tensor(b)[None, None], torch.tensor(a)[None, None], data_range=1.0).item()
    ref = structural_similarity(a, b, data_range=1.0)  # skimage: 7-px uniform window, sample covariance
    assert ours == pytest.approx(ref, abs=1e-6)
    assert L.ssim(torch.tensor(a)[None, None], torch.tensor(a)[None, None]).item() == pytest.approx(1.0)


def test_kl_and_elbo_hand_computed():
    mu = torch.tensor([[1.0, 0.0]])
    logvar = torch.tensor([[0.0, np.log(2.0)]])
    # 0.5 (1 + 1 - 0 - 1) + 0.5 (0 + 2 - ln 2 - 1) = 0.5 + 0.5 (1 - ln 2)
    expected = 0.5 + 0.5 * (1 - np.log(2.0))
    assert L.kl_standard_normal(mu, logvar).item() == pytest.approx(expected)
    # cross-check with torch.distributions (independent implementation)
    q = torch.distributions.Normal(mu, torch.exp(0.5 * logvar))
    p = torch.distributions.Normal(torch.zeros(2), torch.ones(2))
    assert torch.distributions.kl_divergence(q, p).sum().item() == pytest.approx(expected, rel=1e-6)
    recon, target = torch.ones(1, 1, 2, 2), torch.zeros(1, 1, 2, 2)
    out = L.vae_elbo(recon, target, mu, logvar, beta=2.0)
    assert out["recon"].item() == pytest.approx(4.0)
    assert out["loss"].item() == pytest.approx((4.0 + 2.0 * expected) / 4)


def test_push_pull_fill_hand_computed_and_keeps_known_voxels():
    from openmia.models.generative import push_pull_fill

    x = torch.tensor([[[[1.0, 2.0], [3.0, 0.0]]]])
    known = torch.tensor([[[[1.0, 1.0], [1.0, 0.0]]]])
    # one pyramid level: the 1x1 average of the known voxels (1 + 2 + 3) / 3 = 2 fills the hole
    torch.testing.assert_close(push_pull_fill(x, known), torch.tensor([[[[1.0, 2.0], [3.0, 2.0]]]]))
    rng = torch.Generator().manual_seed(0)
    v = torch.rand(1, 1, 9, 10, 7, generator=rng)
    k = (torch.rand(1, 1, 9, 10, 7, generator=rng) > 0.3).float()
    f = push_pull_fill(v * k, k)
    torch.testing.assert_close(f[k > 0], v[k > 0])  # known voxels unchanged
    assert torch.isfinite(f).all()
    c = torch.full((1, 1, 12, 12), 0.7)
    k2 = torch.ones_like(c)
    k2[..., 3:9, 2:10] = 0
    torch.testing.assert_close(push_pull_fill(c * k2, k2), c)  # a constant image is filled exactly


def test_biharmonic_fill_is_scikit_images_and_exact_on_a_plane():
    from skimage.restoration import inpaint_biharmonic

    from openmia.models.generative import biharmonic_fill

    yy, xx = torch.meshgrid(torch.arange(12.0), torch.arange(14.0), indexing="ij")
    plane = (0.2 + 0.03 * xx + 0.02 * yy)[None, None]  # a plane is biharmonic: filled exactly
    k = torch.ones_like(plane)
    k[..., 4:8, 5:10] = 0
    torch.testing.assert_close(biharmonic_fill(plane * k, k), plane, atol=1e-5, rtol=0)
    rng = np.random.default_rng(0)  # colour and 3D: channel by channel, scikit-image's own solution
    v = rng.random((2, 3, 10, 11)).astype(np.float32)
    holes = rng.random((2, 10, 11)) > 0.7
    kt = torch.as_tensor(~holes, dtype=torch.float32)[:, None]
    f = biharmonic_fill(torch.as_tensor(v) * kt, kt).numpy()
    for i in range(2):
        ref = inpaint_biharmonic(np.moveaxis(v[i] * ~holes[i], 0, -1).astype(float), holes[i], channel_axis=-1)
        np.testing.assert_allclose(np.moveaxis(f[i], 0, -1), ref, atol=1e-6)
    v3 = torch.rand(1, 1, 6, 7, 8)
    k3 = torch.ones_like(v3)
    k3[..., 2:4, :, :] = 0  # a slice gap
    f3 = biharmonic_fill(v3 * k3, k3)
    ref3 = inpaint_biharmonic((v3 * k3)[0, 0].double().numpy(), (k3[0, 0] == 0).numpy())
    np.testing.assert_allclose(f3[0, 0].numpy(), ref3, atol=1e-6)
    assert biharmonic_fill(v3, torch.ones_like(v3)) is v3  # nothing to fill


def test_untrained_gated_unet_returns_its_coarse_fill():
    from openmia.models.generative import biharmonic_fill, push_pull_fill

    v = torch.rand(2, 1, 16, 16)
    m = torch.zeros(2, 1, 16, 16)
    m[..., 4:9, 3:12] = 1
    x = torch.cat([v * (1 - m), m], 1)
    for kw, fill in (({}, push_pull_fill), ({"coarse_fill": "biharmonic"}, biharmonic_fill),
                     ({"coarse_fill": True}, push_pull_fill)):
        g = build_model("gated_unet", in_channels=1, num_classes=1, dims=2, input_size=16, width=4, depth=2, **kw)
        with torch.no_grad():
            torch.testing.assert_close(g(x), fill(v * (1 - m), 1 - m))
    plain = build_model("gated_unet", in_channels=1, num_classes=1, dims=2, input_size=16, width=4, depth=2, coarse_fill=False)
    assert plain.coarse_fill is None and not plain.residual
    with pytest.raises(ConfigError, match="coarse_fill must be one of .*got 'telea'"):
        build_model("gated_unet", in_channels=1, num_classes=1, dims=2, input_size=16, width=4, depth=2, coarse_fill="telea")
