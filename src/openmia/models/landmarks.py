"""Landmark models (task ``landmarks``): the DQN agents' networks, the heat-map U-Net and the atlas
prior. Every model has a ``kind`` the landmark task dispatches on: ``agent``, ``heatmap``, ``prior``.

- ``dqn_agent``: one stable-baselines3 ``DQNPolicy`` per landmark (Q-network + target network)
  over the environment's multi-scale patches (:mod:`openmia.rl.env`), with :class:`PatchCNN` — a
  small 2D/3D CNN written as an SB3 ``BaseFeaturesExtractor`` — as features extractor.
- ``heatmap_unet``: a segmentation U-Net of the zoo with one output channel per landmark, read as
  a heat map (spatial softmax); trained against Gaussian heat maps, decoded by argmax or soft-argmax.
- ``atlas_prior``: the mean landmark position in normalised image coordinates (0 = first voxel,
  1 = last voxel of the case's own image, per axis) over the training split, fitted in closed form.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import torch
from torch import nn

from openmia.errors import ConfigError
from openmia.models import register_model
from openmia.models.blocks import conv_nd

try:  # the optional `rl` extra
    from stable_baselines3.common.torch_layers import BaseFeaturesExtractor
except ImportError as _exc:  # pragma: no cover - exercised only without the extra
    BaseFeaturesExtractor, _SB3_ERROR = nn.Module, _exc
else:
    _SB3_ERROR = None


class PatchCNN(BaseFeaturesExtractor):  # type: ignore[misc,valid-type]
    """Features of a multi-scale patch observation ``(N, S*C, *[P] * D)`` (D = 2 or 3): three
    3-wide convolutions (the last two with stride 2), then a linear layer to ``features_dim``."""

    def __init__(self, observation_space: Any, features_dim: int = 128, width: int = 16) -> None:
        super().__init__(observation_space, features_dim)
        c, *spatial = observation_space.shape
        conv = conv_nd(len(spatial))
        self.cnn = nn.Sequential(
            conv(c, width, 3, padding=1), nn.ReLU(),
            conv(width, 2 * width, 3, stride=2, padding=1), nn.ReLU(),
            conv(2 * width, 2 * width, 3, stride=2, padding=1), nn.ReLU(), nn.Flatten())
        with torch.no_grad():
            n = self.cnn(torch.zeros(1, c, *spatial)).shape[1]
        self.linear = nn.Sequential(nn.Linear(n, features_dim), nn.ReLU())

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.linear(self.cnn(obs))


class DQNAgents(nn.Module):
    """One SB3 ``DQNPolicy`` per landmark (``policies["0"]``, ...); the landmark task couples them
    to stable-baselines3 ``DQN`` learners and environments (:mod:`openmia.rl.agent`)."""

    kind = "agent"

    def __init__(self, in_channels: int, landmarks: int, dims: int, *, patch: int, scales: Sequence[int],
                 features: int, width: int, hidden: Sequence[int]) -> None:
        super().__init__()
        if _SB3_ERROR is not None:
            raise ConfigError("the dqn_agent model needs stable-baselines3 and gymnasium: pip install 'openmia[rl]' "
                              f"(import failed with: {_SB3_ERROR})")
        from gymnasium import spaces
        from stable_baselines3.dqn.policies import DQNPolicy

        self.dims, self.patch, self.scales = dims, int(patch), tuple(int(s) for s in scales)
        self.observation_space = spaces.Box(-np.inf, np.inf, shape=(len(self.scales) * in_channels, *[self.patch] * dims),
                                            dtype=np.float32)
        self.action_space = spaces.Discrete(2 * dims)
        self.policy_kwargs = {"net_arch": list(hidden), "features_extractor_class": PatchCNN,
                              "features_extractor_kwargs": {"features_dim": int(features), "width": int(width)},
                              "normalize_images": False}
        # built on the CPU (the engine moves the model): SB3 moves each network to its device, which
        # a meta-device context (`openmia list models` counting parameters) would refuse
        with torch.device("cpu"):
            self.policies = nn.ModuleDict({
                str(k): DQNPolicy(self.observation_space, self.action_space, lambda _: 1e-4, **self.policy_kwargs)
                for k in range(landmarks)})

    def forward(self, obs: torch.Tensor, landmark: int = 0) -> torch.Tensor:
        """Q-values ``(N, 2 * D)`` of landmark ``landmark``'s agent for observations ``(N, S*C, *[P] * D)``."""
        return self.policies[str(landmark)].q_net(obs)


@register_model("dqn_agent", task="landmarks", dims=(2, 3), kind="agent")
def dqn_agent(in_channels: int, num_classes: int, dims: int = 2, input_size: int = 64, patch: int = 9,
              scales: Sequence[int] = (1, 2, 4), features: int = 128, width: int = 16,
              hidden: Sequence[int] = (64,)) -> nn.Module:
    """DQN landmark agents (one per landmark; ``num_classes`` = landmarks) on multi-scale patches of
    ``patch`` voxels per axis at ``scales`` (set by the task's ``landmarks.patch`` / ``landmarks.scales``)."""
    return DQNAgents(in_channels, num_classes, dims, patch=patch, scales=scales, features=features, width=width,
                     hidden=hidden)


class HeatmapNet(nn.Module):
    """A segmentation network whose ``K`` output channels are landmark heat maps (logits)."""

    kind = "heatmap"

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Heat-map logits ``(N, K, *spatial)`` for images ``(N, C, *spatial)``."""
        return self.net(x)


@register_model("heatmap_unet", task="landmarks", dims=(2, 3), kind="heatmap")
def heatmap_unet(in_channels: int, num_classes: int, dims: int = 2, input_size: int = 64, backbone: str = "unet_small",
                 **backbone_kwargs: Any) -> nn.Module:
    """Heat-map regression with a zoo U-Net (``backbone``: unet_small, unet, resunet, ...) whose
    output layer gives one heat map per landmark (``num_classes`` = landmarks)."""
    from openmia.models import load_all

    entry = load_all().get(backbone)
    if entry.meta.get("task") != "segmentation":
        raise ConfigError(f"heatmap_unet: backbone {backbone!r} is a {entry.meta.get('task')} model; "
                          "expected a segmentation network (unet_small, unet, resunet, ...)")
    return HeatmapNet(load_all().build(backbone, in_channels=in_channels, num_classes=num_classes, dims=dims,
                                       input_size=input_size, **backbone_kwargs))


class AtlasPrior(nn.Module):
    """The mean normalised position ``(K, D)`` of each landmark (buffer ``position``)."""

    kind = "prior"

    def __init__(self, landmarks: int, dims: int) -> None:
        super().__init__()
        self.register_buffer("position", torch.full((landmarks, dims), 0.5))
        # the engine's optimiser needs a parameter; this one is never used by a prediction
        self.unused = nn.Parameter(torch.zeros(1))

    def fit(self, normalised: np.ndarray) -> None:
        """Set ``position`` to the mean of ``normalised`` ``(N, K, D)`` (the least-squares fit)."""
        self.position.copy_(torch.as_tensor(np.asarray(normalised, dtype=np.float64).mean(axis=0)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The prior ``(N, K, D)`` (normalised coordinates) for a batch ``(N, ...)``."""
        return self.position.expand(x.shape[0], *self.position.shape)


@register_model("atlas_prior", task="landmarks", dims=(2, 3), kind="prior")
def atlas_prior(in_channels: int, num_classes: int, dims: int = 2, input_size: int = 64) -> nn.Module:
    """Baseline: every case gets the training split's mean landmark position in normalised image
    coordinates (no image is looked at)."""
    return AtlasPrior(num_classes, dims)


# -- heat maps


def gaussian_heatmaps(points: np.ndarray, shape: Sequence[int], sigma: float) -> np.ndarray:
    """Normalised Gaussian heat maps ``(N, K, *shape)`` (each sums to 1) centred on ``points`` ``(N, K, D)``."""
    grids = np.meshgrid(*[np.arange(s, dtype=np.float32) for s in shape], indexing="ij")
    p = np.asarray(points, dtype=np.float32)
    d2 = sum((g[None, None] - p[:, :, a].reshape(*p.shape[:2], *[1] * len(shape))) ** 2 for a, g in enumerate(grids))
    h = np.exp(-d2 / (2 * sigma**2))
    return h / h.reshape(*h.shape[:2], -1).sum(-1).reshape(*h.shape[:2], *[1] * len(shape))


def decode_heatmaps(logits: torch.Tensor, method: str = "soft_argmax") -> torch.Tensor:
    """Positions ``(N, K, D)`` in voxels from heat-map logits ``(N, K, *spatial)``.

    ``argmax``: the voxel of the highest logit. ``soft_argmax``: the expected position under the
    spatial softmax of the logits (sub-voxel, differentiable).
    """
    n, k, *spatial = logits.shape
    flat = logits.reshape(n, k, -1).float()
    if method == "argmax":
        idx = flat.argmax(-1)
        coords = torch.stack(torch.unravel_index(idx, tuple(spatial)), dim=-1)
        return coords.to(torch.float32)
    if method != "soft_argmax":
        raise ConfigError(f"landmarks.decode: expected argmax or soft_argmax, found {method!r}")
    p = torch.softmax(flat, dim=-1)
    grids = torch.meshgrid(*[torch.arange(s, dtype=torch.float32, device=logits.device) for s in spatial], indexing="ij")
    return torch.stack([p @ g.reshape(-1) for g in grids], dim=-1)
