"""DBN pre-training: one CD-1 step and one autoencoder step against hand-computed numbers, and the
autoencoder method through the training loop (train.pretrain_epochs)."""

from __future__ import annotations

import json
import math

import pytest
import torch

from openmia.errors import ConfigError
from openmia.models import build_model
from openmia.models.dbn import RBM, autoencoder_gradients


def _rbm():
    rbm = RBM(2, 1)
    with torch.no_grad():
        rbm.W.copy_(torch.tensor([[1.0], [-1.0]]))
        rbm.b_v.zero_()
        rbm.b_h.zero_()
    return rbm


def test_cd1_mean_field_step_hand_computed():
    # v0 = [1, 0], W = [[1], [-1]], zero biases; mean-field chain (hidden probabilities, not samples):
    # ph0 = s(1) = 0.731059; vk = s([0.731059, -0.731059]) = [0.675038, 0.324962];
    # phk = s(0.675038 - 0.324962) = s(0.350075) = 0.586636
    # dW = v0^T ph0 - vk^T phk = [0.731059 - 0.675038 * 0.586636, -0.324962 * 0.586636] = [0.335057, -0.190635]
    dW, dbv, dbh, vk = _rbm().cd_gradients(torch.tensor([[1.0, 0.0]]), k=1, sample=False)
    assert vk[0].tolist() == pytest.approx([0.675038, 0.324962], abs=1e-6)
    assert dW[:, 0].tolist() == pytest.approx([0.335057, -0.190635], abs=2e-6)
    assert dbv.tolist() == pytest.approx([0.324962, -0.324962], abs=1e-6)
    assert dbh.tolist() == pytest.approx([0.731059 - 0.586636], abs=2e-6)


def test_one_pretraining_update_applies_lr_times_the_cd1_direction():
    # pretrain with momentum 0 and one batch: W <- W + lr * dW (sampled hidden states: compare with
    # the same generator's draw of cd_gradients)
    model = build_model("dbn", in_channels=1, num_classes=2, dims=2, input_size=2, hidden=(3,))
    x = torch.tensor([[[[1.0, -1.0], [1.0, 1.0]]], [[[-1.0, -1.0], [1.0, -1.0]]]])
    w0 = model.rbms[0].W.detach().clone()
    dW, *_ = model.rbms[0].cd_gradients(model.to_visible(x), k=1, gen=torch.Generator().manual_seed(3))
    model.pretrain(lambda: iter([x]), epochs=1, lr=0.1, momentum=0.0, seed=3)
    assert torch.allclose(model.rbms[0].W.detach(), w0 + 0.1 * dW, atol=1e-7)


def test_autoencoder_gradient_hand_computed():
    # r = s(h W^T), h = s(v W) with v = [1, 0]: h = 0.731059, r = [0.675038, 0.324962];
    # loss = -[log r1 + log(1 - r2)]; dL/db_v = r - v = [-0.324962, 0.324962]
    # dL/db_h = sum_i (r_i - v_i) W_i * h (1 - h) = (-0.324962 - 0.324962) * 0.196612 = -0.127783
    # dL/dW_i = (r_i - v_i) h + v_i * dL/db_h = [-0.237567 - 0.127783, 0.237567]
    (dW, dbv, dbh), r = autoencoder_gradients(_rbm(), torch.tensor([[1.0, 0.0]]))
    assert r[0].tolist() == pytest.approx([0.675038, 0.324962], abs=1e-6)
    assert dbv.tolist() == pytest.approx([0.324962, -0.324962], abs=1e-6)  # descent direction = -gradient
    assert dbh.tolist() == pytest.approx([0.127783], abs=2e-6)
    assert dW[:, 0].tolist() == pytest.approx([0.237567 + 0.127783, -0.237567], abs=2e-6)


def test_autoencoder_pretraining_reduces_reconstruction_error():
    torch.manual_seed(0)
    protos = torch.stack([torch.tensor([1.0] * 8 + [-1.0] * 8), torch.tensor([-1.0] * 8 + [1.0] * 8)])
    data = (protos[torch.randint(0, 2, (256,))] * (torch.rand(256, 16) > 0.1).float()).view(256, 1, 4, 4)
    model = build_model("dbn", in_channels=1, num_classes=2, dims=2, input_size=4, hidden=(12, 6),
                        pretrain_method="autoencoder")
    hist = model.pretrain(lambda: iter(data.split(32)), epochs=8, lr=0.1, seed=0)
    first = [h["recon_error"] for h in hist if h["layer"] == 0]
    assert len(hist) == 16 and first[-1] < 0.6 * first[0]
    with pytest.raises(ConfigError, match="pretrain_method must be one of"):
        build_model("dbn", in_channels=1, num_classes=2, dims=2, input_size=4, pretrain_method="pca")


def test_autoencoder_pretraining_runs_in_the_loop(small_data, tmp_path):
    from openmia import api

    res = api.train(None, ["data.dataset=synthetic/binary", "model.name=dbn", "model.kwargs.hidden=[32, 16]",
                           "model.kwargs.pretrain_method=autoencoder", "train.pretrain_epochs=1", "train.epochs=1",
                           "data.batch_size=32", "eval.n_resamples=50", "train.threads=1", f"out_dir={tmp_path}"],
                    run_dir=tmp_path / "run", progress=False, index=False)
    first = json.loads((res.run_dir / "metrics.jsonl").read_text().splitlines()[0])
    assert first["phase"] == "pretrain" and [h["layer"] for h in first["history"]] == [0, 1]
    assert all(math.isfinite(h["recon_error"]) for h in first["history"])
