"""Deep belief network (Hinton, Osindero & Teh, Neural Computation 2006).

Stacked Bernoulli-Bernoulli RBMs pre-trained greedily with contrastive divergence (CD-k; Hinton,
Neural Computation 2002), then fine-tuned as a sigmoid MLP initialised from the RBM weights with a
linear head. Works on the flattened image, so 2D and 3D alike.

The comparison of Bengio, Lamblin, Popovici & Larochelle (NIPS 2006) is built in: with
``pretrain_method="autoencoder"`` each layer is instead pre-trained greedily as an autoencoder
with tied weights (encoder ``sigmoid(v W + b_h)``, decoder ``sigmoid(h W^T + b_v)``, the same
parameters as the RBM, cross-entropy reconstruction loss), so the fine-tuned network, the budget
and the schedule are identical and only the pre-training objective differs
(``benchmarks/dbn_pretraining.py``).

Visible units must be probabilities in [0, 1]. openmia feeds images normalised to [-1, 1]
(``uint8_unit``: ``x / 255 * 2 - 1``), so :meth:`DBN.to_visible` maps them back with
``(x + 1) / 2`` and clamps to [0, 1] (values outside come only from augmentation or foreign data).
"""

from __future__ import annotations

from typing import Callable, Iterable

import torch
import torch.nn as nn

from openmia.errors import ConfigError, DataError
from openmia.models import register_model
from openmia.models.blocks import check_args, check_positive_ints


PRETRAIN_METHODS = ("rbm", "autoencoder")


class RBM(nn.Module):
    """Bernoulli-Bernoulli restricted Boltzmann machine with ``n_visible`` x ``n_hidden`` weights.

    Energy ``E(v, h) = -v^T W h - b_v^T v - b_h^T h``; free energy
    ``F(v) = -b_v^T v - sum_j softplus((v W + b_h)_j)``.
    """

    def __init__(self, n_visible: int, n_hidden: int) -> None:
        super().__init__()
        self.W = nn.Parameter(torch.randn(n_visible, n_hidden) * 0.01)  # Hinton (2010): N(0, 0.01^2)
        self.b_v = nn.Parameter(torch.zeros(n_visible))
        self.b_h = nn.Parameter(torch.zeros(n_hidden))

    def p_h(self, v: torch.Tensor) -> torch.Tensor:
        """P(h = 1 | v): ``(N, V)`` -> ``(N, H)``."""
        return torch.sigmoid(v @ self.W + self.b_h)

    def p_v(self, h: torch.Tensor) -> torch.Tensor:
        """P(v = 1 | h): ``(N, H)`` -> ``(N, V)``."""
        return torch.sigmoid(h @ self.W.t() + self.b_v)

    def free_energy(self, v: torch.Tensor) -> torch.Tensor:
        """Free energy ``F(v)`` per case, ``(N, V)`` -> ``(N,)``."""
        return -(v @ self.b_v) - nn.functional.softplus(v @ self.W + self.b_h).sum(-1)

    @torch.no_grad()
    def cd_gradients(self, v0: torch.Tensor, k: int = 1, gen: torch.Generator | None = None, *,
                     sample: bool = True) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """CD-k estimates of the log-likelihood gradient and the reconstruction.

        ``dW = <v h>_data - <v h>_model`` with hidden *probabilities* in both statistics and
        mean-field visible reconstructions (Hinton's practical guide, 2010); the chain runs ``k``
        block-Gibbs steps from the data, sampling binary hidden states (``sample=False`` uses the
        probabilities instead: a deterministic mean-field chain, used in tests).

        Args:
            v0: data ``(N, V)`` in [0, 1].
        Returns:
            ``(dW (V, H), db_v (V,), db_h (H,), v_k (N, V))`` — ascent directions (add them).
        """
        ph0 = self.p_h(v0)
        vk, phk = v0, ph0
        for _ in range(k):
            hk = torch.bernoulli(phk, generator=gen) if sample else phk
            vk = self.p_v(hk)
            phk = self.p_h(vk)
        n = v0.shape[0]
        dW = (v0.t() @ ph0 - vk.t() @ phk) / n
        return dW, (v0 - vk).mean(0), (ph0 - phk).mean(0), vk


class DBN(nn.Module):
    """Stacked RBMs; after pre-training the stack acts as a sigmoid MLP feeding a linear head.

    Args:
        in_features: values per case (``C * prod(spatial)``).
        num_classes: logits out.
        hidden: hidden units of each RBM, bottom to top.
    """

    def __init__(self, in_features: int, num_classes: int, hidden: tuple[int, ...], pretrain_method: str = "rbm") -> None:
        super().__init__()
        if pretrain_method not in PRETRAIN_METHODS:
            raise ConfigError(f"dbn: pretrain_method must be one of {PRETRAIN_METHODS}, got {pretrain_method!r}")
        self.pretrain_method = pretrain_method
        self.in_features = in_features
        sizes = (in_features, *hidden)
        self.rbms = nn.ModuleList(RBM(a, b) for a, b in zip(sizes[:-1], sizes[1:]))
        self.head = nn.Linear(sizes[-1], num_classes)

    def to_visible(self, x: torch.Tensor) -> torch.Tensor:
        """Normalised images ``(N, C, *spatial)`` in [-1, 1] -> visible probabilities ``(N, V)`` in [0, 1]."""
        if not isinstance(x, torch.Tensor):
            raise DataError(f"dbn: expected an input tensor (N, C, *spatial), got {type(x).__name__}")
        x = x.flatten(1)
        if x.shape[1] != self.in_features:
            raise DataError(
                f"dbn: input has {x.shape[1]} values per case, the model was built for {self.in_features} "
                "(in_channels * input_size**dims); build it with the data's channels and input_size"
            )
        return ((x + 1.0) * 0.5).clamp(0.0, 1.0)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Top-layer hidden probabilities ``(N, hidden[-1])``."""
        h = self.to_visible(x)
        for rbm in self.rbms:
            h = rbm.p_h(h)
        return h

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, C, *spatial)`` -> ``(N, K)`` logits."""
        return self.head(self.features(x))

    def pretrain(self, batches: Callable[[], Iterable[torch.Tensor]], *, epochs: int = 5, lr: float = 0.05,
                 k: int = 1, momentum: float = 0.5, seed: int = 0) -> list[dict]:
        """Greedy layer-wise pre-training (SGD with momentum), bottom layer first: CD-k
        (``pretrain_method="rbm"``) or a tied-weight autoencoder's cross-entropy reconstruction
        gradient (``"autoencoder"``), with the same learning rate, momentum and epochs.

        Each layer is trained on the hidden probabilities of the (already trained, frozen) layers below.

        Args:
            batches: called once per epoch; yields input batches ``(N, C, *spatial)`` (normalised images).
            epochs: epochs per layer (0 does nothing).
            lr: learning rate of the CD updates.
            k: Gibbs steps per update (CD-k).
            momentum: momentum of the updates.
            seed: seeds the Gibbs sampling.
        Returns:
            One record per layer and epoch: ``{"layer", "epoch", "recon_error"}``, the mean squared
            error between that layer's input and its reconstruction (RBM: mean-field after ``k``
            Gibbs steps; autoencoder: the decoder's output).
        """
        for field, value, low in (("epochs", epochs, 0), ("k", k, 1)):
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ConfigError(f"dbn.pretrain: {field} must be an integer >= {low}, got {value!r}")
        if not lr > 0 or not 0 <= momentum < 1:
            raise ConfigError(f"dbn.pretrain: need lr > 0 and 0 <= momentum < 1, got lr={lr!r}, momentum={momentum!r}")
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
                    if self.pretrain_method == "rbm":
                        *grads, vk = rbm.cd_gradients(v, k=k, gen=gen)
                    else:
                        grads, vk = autoencoder_gradients(rbm, v)
                    with torch.no_grad():
                        for p, g, vv in zip((rbm.W, rbm.b_v, rbm.b_h), grads, vel):
                            vv.mul_(momentum).add_(g, alpha=lr)
                            p.add_(vv)
                    err += float(((v - vk) ** 2).mean()) * v.shape[0]
                    n += v.shape[0]
                if n == 0:
                    raise DataError("dbn.pretrain: batches() yielded no data; it must yield at least one batch per epoch")
                history.append({"layer": li, "epoch": ep + 1, "recon_error": err / n})
        return history


def autoencoder_gradients(rbm: RBM, v: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor]:
    """Descent directions (negated gradients) of a tied-weight autoencoder's mean cross-entropy
    reconstruction loss ``-mean_n sum_i [v log r + (1 - v) log(1 - r)]`` with ``r = p_v(p_h(v))``,
    for ``(W, b_v, b_h)``, and the reconstruction ``r`` ``(N, V)`` (autograd on the RBM's parameters)."""
    params = (rbm.W, rbm.b_v, rbm.b_h)
    with torch.enable_grad():
        r = rbm.p_v(rbm.p_h(v))
        loss = nn.functional.binary_cross_entropy(r, v, reduction="sum") / v.shape[0]
        grads = torch.autograd.grad(loss, params)
    return [-g for g in grads], r.detach()


@register_model("dbn", task="classification", dims=(2, 3), family="dbn")
def dbn(in_channels: int, num_classes: int, dims: int = 2, input_size: int = 28,
        hidden: tuple[int, ...] = (500, 250), pretrain_method: str = "rbm") -> nn.Module:
    """Deep belief network (Hinton, Osindero & Teh, Neural Computation 2006), 2D or 3D (flattened).

    Stacked RBMs (``hidden`` units per layer) with greedy CD-k pre-training — the trainer calls
    :meth:`DBN.pretrain` when ``train.pretrain_epochs > 0`` — then supervised fine-tuning of the
    sigmoid MLP plus linear head. ``pretrain_method="autoencoder"``: greedy tied-weight autoencoders
    instead of RBMs (Bengio et al., NIPS 2006), same parameters and schedule.
    """
    check_args("dbn", in_channels=in_channels, num_classes=num_classes, dims=dims, input_size=input_size, supported=(2, 3))
    return DBN(in_channels * input_size**dims, num_classes, check_positive_ints("dbn", "hidden", hidden), pretrain_method)
