"""Deep belief network (Hinton, Osindero & Teh, Neural Computation 2006): stacked Bernoulli RBMs
pre-trained greedily with contrastive divergence (CD-k), then fine-tuned as a sigmoid MLP with a
linear head. Works on the flattened image, so 2D and 3D alike."""

from __future__ import annotations

from typing import Callable, Iterable

import torch
import torch.nn as nn

from openmia.models import register_model
from openmia.models.blocks import check_dims


class RBM(nn.Module):
    """Bernoulli-Bernoulli restricted Boltzmann machine with ``n_visible`` x ``n_hidden`` weights."""

    def __init__(self, n_visible: int, n_hidden: int) -> None:
        super().__init__()
        self.W = nn.Parameter(torch.randn(n_visible, n_hidden) * 0.01)
        self.b_v = nn.Parameter(torch.zeros(n_visible))
        self.b_h = nn.Parameter(torch.zeros(n_hidden))

    def p_h(self, v: torch.Tensor) -> torch.Tensor:
        """P(h = 1 | v), ``(N, H)``."""
        return torch.sigmoid(v @ self.W + self.b_h)

    def p_v(self, h: torch.Tensor) -> torch.Tensor:
        """P(v = 1 | h), ``(N, V)``."""
        return torch.sigmoid(h @ self.W.t() + self.b_v)

    @torch.no_grad()
    def cd_gradients(self, v0: torch.Tensor, k: int = 1, gen: torch.Generator | None = None):
        """CD-k estimates of the log-likelihood gradient (dW, db_v, db_h) and the reconstruction.

        dW = <v h>_data - <v h>_model, with hidden *probabilities* in both statistics (Hinton's
        practical guide, 2010) and k steps of block Gibbs sampling from the data.
        """
        ph0 = self.p_h(v0)
        vk, phk = v0, ph0
        for _ in range(k):
            hk = torch.bernoulli(phk, generator=gen)
            vk = self.p_v(hk)  # mean-field visible reconstruction
            phk = self.p_h(vk)
        n = v0.shape[0]
        dW = (v0.t() @ ph0 - vk.t() @ phk) / n
        return dW, (v0 - vk).mean(0), (ph0 - phk).mean(0), vk


class DBN(nn.Module):
    """Stacked RBMs; after pre-training the stack acts as a sigmoid MLP feeding a linear head."""

    def __init__(self, in_features: int, num_classes: int, hidden: tuple[int, ...]) -> None:
        super().__init__()
        sizes = (in_features, *hidden)
        self.rbms = nn.ModuleList(RBM(a, b) for a, b in zip(sizes[:-1], sizes[1:]))
        self.head = nn.Linear(sizes[-1], num_classes)

    @staticmethod
    def to_visible(x: torch.Tensor) -> torch.Tensor:
        """Map normalised images (openmia feeds [-1, 1]) to Bernoulli probabilities in [0, 1]."""
        return ((x.flatten(1) + 1.0) * 0.5).clamp(0.0, 1.0)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        h = self.to_visible(x)
        for rbm in self.rbms:
            h = rbm.p_h(h)
        return h

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))

    def pretrain(self, batches: Callable[[], Iterable[torch.Tensor]], *, epochs: int = 5, lr: float = 0.05,
                 k: int = 1, momentum: float = 0.5, seed: int = 0) -> list[dict]:
        """Greedy layer-wise CD-k pre-training.

        Args:
            batches: called once per epoch; yields input batches ``(N, C, *spatial)``.
        Returns:
            One record per layer and epoch: ``{"layer", "epoch", "recon_error"}`` (mean squared
            error of the mean-field reconstruction of that layer's input).
        """
        gen = torch.Generator().manual_seed(seed)
        history = []
        for li, rbm in enumerate(self.rbms):
            vel = [torch.zeros_like(p) for p in (rbm.W, rbm.b_v, rbm.b_h)]
            for ep in range(epochs):
                err, n = 0.0, 0
                for xb in batches():
                    with torch.no_grad():
                        v = self.to_visible(xb)
                        for lower in self.rbms[:li]:
                            v = lower.p_h(v)
                    grads = rbm.cd_gradients(v, k=k, gen=gen)
                    with torch.no_grad():
                        for p, g, vv in zip((rbm.W, rbm.b_v, rbm.b_h), grads[:3], vel):
                            vv.mul_(momentum).add_(g, alpha=lr)
                            p.add_(vv)
                    err += float(((v - grads[3]) ** 2).mean()) * v.shape[0]
                    n += v.shape[0]
                history.append({"layer": li, "epoch": ep + 1, "recon_error": err / max(n, 1)})
        return history


@register_model("dbn", task="classification", dims=(2, 3), family="dbn")
def dbn(in_channels: int, num_classes: int, dims: int = 2, input_size: int = 28,
        hidden: tuple[int, ...] = (500, 250)) -> nn.Module:
    """Deep belief network: stacked RBMs with CD-k pre-training (set train.pretrain_epochs), then fine-tuning."""
    check_dims("dbn", dims, (2, 3))
    return DBN(in_channels * input_size**dims, num_classes, tuple(hidden))
