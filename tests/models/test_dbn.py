from __future__ import annotations

import torch

from openmia.models import build_model
from openmia.models.dbn import RBM


def test_cd1_gradient_hand_computed():
    # 2 visible x 1 hidden, one case v0 = [1, 0], W = [[1], [-1]], biases 0.
    rbm = RBM(2, 1)
    with torch.no_grad():
        rbm.W.copy_(torch.tensor([[1.0], [-1.0]]))
        rbm.b_v.zero_()
        rbm.b_h.zero_()
    v0 = torch.tensor([[1.0, 0.0]])
    # ph0 = sigmoid(1) = 0.7311; sampled h is random, so check the statistics with both outcomes:
    dW, dbv, dbh, vk = rbm.cd_gradients(v0, k=1, gen=torch.Generator().manual_seed(0))
    ph0 = torch.sigmoid(torch.tensor(1.0))
    h = 1.0 if torch.allclose(vk, torch.sigmoid(torch.tensor([[1.0, -1.0]]))) else 0.0
    vk_exp = torch.sigmoid(torch.tensor([[1.0, -1.0]]) * h)
    phk = torch.sigmoid(vk_exp @ rbm.W.detach())
    assert torch.allclose(vk, vk_exp)
    assert torch.allclose(dW, v0.t() * ph0 - vk_exp.t() @ phk)
    assert torch.allclose(dbv, (v0 - vk_exp)[0]) and torch.allclose(dbh, (ph0 - phk)[0])


def test_pretraining_reduces_reconstruction_error():
    torch.manual_seed(0)
    # structured data: two prototypes with noise, in [-1, 1] as openmia feeds images
    protos = torch.stack([torch.tensor([1.0] * 8 + [-1.0] * 8), torch.tensor([-1.0] * 8 + [1.0] * 8)])
    data = protos[torch.randint(0, 2, (256,))] * (torch.rand(256, 16) > 0.1).float()
    data = data.view(256, 1, 4, 4)
    model = build_model("dbn", in_channels=1, num_classes=2, dims=2, input_size=4, hidden=(12, 6))
    hist = model.pretrain(lambda: iter(data.split(32)), epochs=8, lr=0.1, seed=0)
    first = [h["recon_error"] for h in hist if h["layer"] == 0]
    assert len(hist) == 16 and first[-1] < 0.6 * first[0]
    assert model(data[:3]).shape == (3, 2)
