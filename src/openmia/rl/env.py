"""A gymnasium environment for landmark localisation by an agent that moves through the image
(Ghesu et al. 2016/2019; Alansary et al., Medical Image Analysis 2019), in 2D and 3D.

State: the agent's voxel position in one image. Observation: patches of ``patch`` voxels per
axis centred on the position at several scales (coarse to fine; scale s averages s voxels per
axis, so the coarse patch sees s times further), stacked as channels: ``(len(scales) * C,
*[patch] * D)`` float32. Voxels outside the image read as the image's minimum (what an empty
border looks like after normalisation). Actions: ``Discrete(2 * D)``, action ``2a`` moves one
``step`` along axis ``a`` towards 0, ``2a + 1`` away from 0 (a move out of the image is refused:
the agent stays). Reward: the decrease of the distance to the landmark (in mm with ``spacing``,
or in voxels). The episode terminates on oscillation — the current position visited
``max_visits`` times — and is truncated after ``max_steps`` steps.

The estimate of the landmark (``info["estimate"]``) is the mean of the positions of the last
cycle when the episode ends by oscillation (the agent circles the point it believes in) and the
final position otherwise.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from openmia.errors import ConfigError

try:  # gymnasium is the optional `rl` extra; the classes below need it
    import gymnasium as gym
    from gymnasium import spaces
except ImportError as _exc:  # pragma: no cover - exercised only without the extra
    gym, spaces, _IMPORT_ERROR = None, None, _exc
else:
    _IMPORT_ERROR = None


def _need_gym() -> None:
    if gym is None:
        raise ConfigError("the landmark environment needs gymnasium: pip install 'openmia[rl]' "
                          f"(gymnasium and stable-baselines3); import failed with: {_IMPORT_ERROR}")


def check_env_options(*, patch: int, scales: Sequence[int], max_steps: int, max_visits: int, step: int,
                      where: str = "landmarks") -> None:
    """ConfigError for settings the environment cannot run with (names the option)."""
    for name, v in (("max_steps", max_steps), ("patch", patch), ("max_visits", max_visits), ("step", step)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
            raise ConfigError(f"{where}.{name}: expected a positive integer, found {v!r}"
                              + (" (an episode needs at least one step)" if name == "max_steps" else ""))
    if patch % 2 != 1:
        raise ConfigError(f"{where}.patch: expected an odd patch size (centred on the agent), found {patch}")
    if max_visits < 2:
        raise ConfigError(f"{where}.max_visits: expected >= 2 (visits of one position that mean oscillation), "
                          f"found {max_visits}")
    if not scales or any(isinstance(s, bool) or not isinstance(s, (int, np.integer)) or s < 1 for s in scales) \
            or len(set(scales)) != len(scales):
        raise ConfigError(f"{where}.scales: expected distinct positive integers (e.g. [1, 2, 4]), found {list(scales)!r}")


def extract_patch(image: np.ndarray, centre: np.ndarray, patch: int, scale: int, fill: float) -> np.ndarray:
    """The ``(C, *[patch] * D)`` patch of ``image`` ``(C, *spatial)`` around integer ``centre``
    ``(D,)``: cell k covers voxels ``centre + (k - patch // 2) * scale - scale // 2 + [0, scale)``
    per axis, averaged; outside the image counts as ``fill``."""
    c, spatial = image.shape[0], image.shape[1:]
    d, n = len(spatial), patch * scale
    start = np.asarray(centre, dtype=int) - (patch // 2) * scale - scale // 2
    buf = np.full((c, *[n] * d), fill, dtype=np.float32)
    src, dst = [slice(None)], [slice(None)]
    for a in range(d):
        lo, hi = max(start[a], 0), min(start[a] + n, spatial[a])
        if hi <= lo:  # the patch lies wholly outside the image
            return np.full((c, *[patch] * d), fill, dtype=np.float32)
        src.append(slice(lo, hi))
        dst.append(slice(lo - start[a], hi - start[a]))
    buf[tuple(dst)] = image[tuple(src)]
    if scale == 1:
        return buf
    shape = [c] + [v for _ in range(d) for v in (patch, scale)]
    return buf.reshape(shape).mean(axis=tuple(2 + 2 * a for a in range(d)))


class PatchObserver:
    """Multi-scale observations of a set of images (shared by the env and batched rollouts).

    Args:
        images: ``(N, C, *spatial)`` float32 (already normalised).
        patch: voxels per axis of every patch (odd); scales: averaging factors, e.g. (1, 2, 4).
    """

    def __init__(self, images: np.ndarray, patch: int, scales: Sequence[int]) -> None:
        self.images = images
        self.patch, self.scales = int(patch), tuple(int(s) for s in scales)
        self.dims = images.ndim - 2
        self.fill = [float(np.min(im)) for im in images]

    @property
    def shape(self) -> tuple[int, ...]:
        return (len(self.scales) * self.images.shape[1], *[self.patch] * self.dims)

    def __call__(self, i: int, pos: np.ndarray) -> np.ndarray:
        im = np.asarray(self.images[i], dtype=np.float32)
        return np.concatenate([extract_patch(im, pos, self.patch, s, self.fill[i]) for s in self.scales]).astype(np.float32)


if gym is not None:
    _Base = gym.Env
else:  # pragma: no cover
    _Base = object


class LandmarkEnv(_Base):
    """One landmark in a set of images; each episode picks an image and a start (seeded).

    Args:
        images: ``(N, C, *spatial)`` float32 normalised images (D = 2 or 3 spatial axes).
        targets: ``(N, D)`` landmark positions in voxels (fractional allowed).
        spacing: voxel size ``(D,)`` in mm (rewards in mm); ``None`` = rewards in voxels.
        regions: per image, the slice of the (padded) array holding the image's own voxels;
            starts are drawn inside it. ``None`` = the whole array.
        start: ``random`` (uniform inside the region's central ``start_fraction``), ``centre``
            (the region's centre), or a fixed ``(N, D)`` array of start positions.
        max_steps: step limit (truncation); ``max_visits``: visits of one position that end the
            episode (oscillation); ``step``: voxels moved per action.
    """

    metadata = {"render_modes": []}

    def __init__(self, images: np.ndarray, targets: np.ndarray, *, patch: int = 9, scales: Sequence[int] = (1, 2, 4),
                 max_steps: int = 50, max_visits: int = 3, step: int = 1, spacing: Sequence[float] | None = None,
                 regions: Sequence[tuple[slice, ...]] | None = None, start: Any = "random",
                 start_fraction: float = 0.8) -> None:
        _need_gym()
        check_env_options(patch=patch, scales=scales, max_steps=max_steps, max_visits=max_visits, step=step)
        images = np.asarray(images)
        if images.ndim not in (4, 5):
            raise ConfigError(f"LandmarkEnv: images must be (N, C, H, W) or (N, C, D, H, W), found shape {images.shape}")
        self.dims = images.ndim - 2
        targets = np.asarray(targets, dtype=float)
        if targets.shape != (len(images), self.dims):
            raise ConfigError(f"LandmarkEnv: targets must be (N, {self.dims}) = ({len(images)}, {self.dims}), "
                              f"found {targets.shape}")
        self.spatial = np.array(images.shape[2:])
        if np.any(targets < 0) or np.any(targets > self.spatial - 1):
            bad = int(np.argwhere((targets < 0) | (targets > self.spatial - 1))[0, 0])
            raise ConfigError(f"LandmarkEnv: landmark of image {bad} at {targets[bad].tolist()} lies outside the image "
                              f"of shape {tuple(self.spatial)}")
        if isinstance(start, str) and start not in ("random", "centre"):
            raise ConfigError(f"LandmarkEnv: start must be 'random', 'centre' or an (N, D) array, found {start!r}")
        self.observer = PatchObserver(images, patch, scales)
        self.targets = targets
        self.max_steps, self.max_visits, self.step_size = int(max_steps), int(max_visits), int(step)
        self.spacing = np.ones(self.dims) if spacing is None else np.asarray(spacing, dtype=float)
        full = tuple(slice(0, int(s)) for s in self.spatial)
        self.bounds = np.array([[(r[a].start or 0, (r[a].stop or int(self.spatial[a])) - 1) for a in range(self.dims)]
                                for r in (regions or [full] * len(images))])  # (N, D, 2) inclusive
        self.start, self.start_fraction = start, float(start_fraction)
        # patches are averages of image values or the fill (an image's minimum): within [min, max]
        self.observation_space = spaces.Box(float(np.min(images)), float(np.max(images)), shape=self.observer.shape,
                                            dtype=np.float32)
        self.action_space = spaces.Discrete(2 * self.dims)
        self.case, self.pos, self.steps, self.visits, self.path = 0, np.zeros(self.dims, int), 0, {}, []

    # -- helpers
    def distance(self, pos: np.ndarray) -> float:
        """Distance from ``pos`` to the current case's landmark (mm with spacing, else voxels)."""
        return float(np.sqrt((((pos - self.targets[self.case]) * self.spacing) ** 2).sum()))

    def start_position(self, case: int, rng: np.random.Generator) -> np.ndarray:
        lo, hi = self.bounds[case, :, 0], self.bounds[case, :, 1]
        if isinstance(self.start, np.ndarray):
            return np.clip(np.rint(self.start[case]).astype(int), lo, hi)
        mid = (lo + hi) / 2
        if isinstance(self.start, str) and self.start == "centre":
            return np.rint(mid).astype(int)
        half = (hi - lo) / 2 * self.start_fraction
        return np.clip(np.rint(rng.uniform(mid - half, mid + half)).astype(int), lo, hi)

    def _obs(self) -> np.ndarray:
        return self.observer(self.case, self.pos)

    def _info(self) -> dict[str, Any]:
        return {"case": self.case, "position": self.pos.copy(), "distance": self.distance(self.pos),
                "estimate": self.pos.astype(float)}

    # -- gymnasium API
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        """Start an episode: ``options={"case": i}`` picks the image (default: uniform at random),
        ``options={"position": (D,)}`` the start (default: the ``start`` rule)."""
        super().reset(seed=seed)
        options = options or {}
        n = len(self.targets)
        self.case = int(options["case"]) if "case" in options else int(self.np_random.integers(n))
        if not 0 <= self.case < n:
            raise ConfigError(f"LandmarkEnv.reset: case {self.case} out of range 0..{n - 1}")
        if "position" in options:
            self.pos = np.clip(np.asarray(options["position"], dtype=int), self.bounds[self.case, :, 0],
                               self.bounds[self.case, :, 1])
        else:
            self.pos = self.start_position(self.case, self.np_random)
        self.steps, self.visits, self.path = 0, {tuple(self.pos): 1}, [tuple(self.pos)]
        return self._obs(), self._info()

    def step(self, action):
        a = int(action)
        if not 0 <= a < 2 * self.dims:
            raise ConfigError(f"LandmarkEnv.step: action {action!r} outside 0..{2 * self.dims - 1}")
        before = self.distance(self.pos)
        new = self.pos.copy()
        new[a // 2] += self.step_size if a % 2 else -self.step_size
        lo, hi = self.bounds[self.case, :, 0], self.bounds[self.case, :, 1]
        if np.all(new >= lo) and np.all(new <= hi):  # a move out of the image is refused
            self.pos = new
        self.steps += 1
        key = tuple(self.pos)
        prev = max(i for i, p in enumerate(self.path) if p == key) if key in self.visits else None
        self.visits[key] = self.visits.get(key, 0) + 1
        self.path.append(key)
        reward = before - self.distance(self.pos)
        terminated = self.visits[key] >= self.max_visits
        truncated = not terminated and self.steps >= self.max_steps
        info = self._info()
        if terminated and prev is not None:
            info["estimate"] = np.mean(np.array(self.path[prev + 1 :], dtype=float), axis=0)  # the last cycle's positions
        return self._obs(), float(reward), bool(terminated), bool(truncated), info
