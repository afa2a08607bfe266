"""The landmark environment (gymnasium's env checker, 2D and 3D), its rules by hand, bad settings,
and the batched greedy rollouts against step-by-step episodes in the environment."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("gymnasium")

from openmia.errors import ConfigError  # noqa: E402
from openmia.rl.env import LandmarkEnv, PatchObserver, extract_patch  # noqa: E402


def _data(dims: int, n: int = 4, size: int = 16, seed: int = 0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, 1, *[size] * dims)).astype(np.float32), rng.uniform(2, size - 3, (n, dims))


@pytest.mark.parametrize("dims", [2, 3])
def test_gymnasium_env_checker(dims):
    from gymnasium.utils.env_checker import check_env

    x, t = _data(dims)
    env = LandmarkEnv(x, t, patch=5, scales=(1, 2), max_steps=10)
    check_env(env, skip_render_check=True)
    obs, _ = env.reset(seed=3)
    assert obs.shape == (2, *[5] * dims) and env.action_space.n == 2 * dims


def test_seeded_starts_are_reproducible():
    x, t = _data(2)
    a, b = LandmarkEnv(x, t), LandmarkEnv(x, t)
    for seed in range(5):
        ia, ib = a.reset(seed=seed)[1], b.reset(seed=seed)[1]
        assert ia["case"] == ib["case"] and np.array_equal(ia["position"], ib["position"])


@pytest.mark.parametrize("kw, match", [({"max_steps": 0}, r"landmarks.max_steps: expected a positive integer, found 0"),
                                       ({"patch": 4}, "odd patch"), ({"scales": (1, 1)}, "distinct"),
                                       ({"max_visits": 1}, "max_visits")])
def test_bad_settings(kw, match):
    x, t = _data(2)
    with pytest.raises(ConfigError, match=match):
        LandmarkEnv(x, t, **kw)


def test_step_limit_zero_in_the_task_config():
    from openmia.tasks.landmarks import LandmarkOptions

    with pytest.raises(ConfigError, match="landmarks.max_steps"):
        LandmarkOptions(max_steps=0)


def test_landmark_outside_the_image_is_refused():
    x, t = _data(2)
    t[1] = (3.0, 16.0)
    with pytest.raises(ConfigError, match=r"landmark of image 1 at \[3.0, 16.0\] lies outside"):
        LandmarkEnv(x, t)


def test_reward_moves_and_oscillation_by_hand():
    x = np.zeros((1, 1, 10, 10), np.float32)
    env = LandmarkEnv(x, np.array([[5.0, 5.0]]), spacing=(2.0, 1.0), max_steps=20, max_visits=3)
    env.reset(options={"case": 0, "position": (3, 5)})
    _, r, term, trunc, _ = env.step(1)  # +x: distance 2 * 2 mm -> 1 * 2 mm
    assert r == pytest.approx(2.0) and not term and not trunc
    _, r, *_ = env.step(2)  # -y: 2 mm -> sqrt(4 + 1)
    assert r == pytest.approx(2.0 - np.sqrt(5.0))
    env.step(3)  # back to (4, 5): second visit
    env.step(2)  # (4, 4): second visit
    _, _, term, _, info = env.step(3)  # (4, 5): third visit -> oscillation
    assert term and np.allclose(info["estimate"], [4.0, 4.5])  # the mean of the last cycle: (4, 4) and (4, 5)
    # a move out of the image is refused
    env.reset(options={"case": 0, "position": (0, 0)})
    _, r, *_ = env.step(0)
    assert r == 0.0 and tuple(env.pos) == (0, 0)
    # the step limit truncates
    env = LandmarkEnv(x, np.array([[5.0, 5.0]]), max_steps=2, max_visits=5)
    env.reset(options={"case": 0, "position": (3, 3)})
    env.step(1)
    assert env.step(3)[3] is True


def test_extract_patch_by_hand():
    img = np.arange(36, dtype=np.float32).reshape(1, 6, 6)
    p1 = extract_patch(img, np.array([2, 3]), 3, 1, fill=-1.0)
    np.testing.assert_array_equal(p1[0], img[0, 1:4, 2:5])
    p2 = extract_patch(img, np.array([2, 2]), 3, 2, fill=-1.0)
    # cells of 2 x 2 voxels starting at (2 - 2 - 1) = -1: the first row/column of cells half outside (fill -1)
    assert p2[0, 1, 1] == pytest.approx(img[0, 1:3, 1:3].mean())
    assert p2[0, 0, 0] == pytest.approx((-1 * 3 + img[0, 0, 0]) / 4)
    assert np.all(extract_patch(img, np.array([40, 40]), 3, 2, fill=-7.0) == -7.0)


@pytest.mark.parametrize("dims", [2, 3])
def test_greedy_rollouts_match_env_episodes(dims):
    import torch

    from openmia.rl.agent import greedy_rollouts

    x, t = _data(dims, n=5, size=12, seed=dims)
    env = LandmarkEnv(x, t, patch=3, scales=(1, 2), max_steps=15, max_visits=3)
    torch.manual_seed(0)
    c = env.observation_space.shape[0]
    q_net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(c * 3**dims, 2 * dims))
    starts = np.full((5, dims), 6)
    est = greedy_rollouts(q_net, PatchObserver(x, 3, (1, 2)), starts, env.bounds, max_steps=15, max_visits=3)
    for i in range(5):
        obs, info = env.reset(options={"case": i, "position": starts[i]})
        done = False
        while not done:
            a = int(q_net(torch.as_tensor(obs[None])).argmax(1))
            obs, _, term, trunc, info = env.step(a)
            done = term or trunc
        np.testing.assert_allclose(est[i], info["estimate"])
