"""DQN landmark agents with stable-baselines3, driven by openmia's training loop.

Division of labour (why not ``DQN.learn`` alone): stable-baselines3 does what is specific to
reinforcement learning — acting epsilon-greedily in the environment, the replay buffer, the
target-network updates (every ``target_update`` environment steps) and the learning-start phase of
random actions — through ``DQN.learn(n, reset_num_timesteps=False)`` with ``gradient_steps=0``.
The gradient step is the engine's: :func:`td_loss` is SB3's DQN loss (Huber loss between Q(s, a)
and ``r + gamma (1 - done) max_a' Q_target(s', a')``, the same formula as ``DQN.train``) on a
replay batch, and the loop's optimiser, learning-rate schedule, time budget, checkpoints and
``metrics.jsonl`` apply to it as to every other task. The policies (Q and target networks) are
the run's model, so ``checkpoints/best.pt`` holds them.

:func:`greedy_rollouts` runs the greedy policy on many images at once (one batched Q-network
call per step) with exactly the environment's rules (:class:`openmia.rl.env.LandmarkEnv`); a test
checks it against step-by-step rollouts in the environment.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from openmia.rl.env import PatchObserver


def make_learner(env: Any, policy: Any, *, buffer: int, warmup: int, batch_size: int, gamma: float, env_steps: int,
                 target_update: int, seed: int, epsilon: Callable[[int], float], device: Any = "cpu") -> Any:
    """An SB3 ``DQN`` on ``env`` that acts with ``policy`` (an SB3 ``DQNPolicy`` owned by the run's
    model) and never takes gradient steps itself; ``epsilon(num_timesteps)`` is its exploration rate."""
    from stable_baselines3 import DQN
    from stable_baselines3.common.logger import Logger
    from stable_baselines3.common.utils import get_parameters_by_name

    learner = DQN("MlpPolicy", env, buffer_size=buffer, learning_starts=warmup, batch_size=batch_size, gamma=gamma,
                  train_freq=(env_steps, "step"), gradient_steps=0, target_update_interval=target_update,
                  policy_kwargs={"net_arch": [1]}, seed=seed, device=device, verbose=0)
    learner.policy = policy  # the run's networks replace the throwaway ones SB3 built
    learner._create_aliases()  # q_net / q_net_target now point at them (SB3's own re-aliasing)
    learner.batch_norm_stats = get_parameters_by_name(learner.q_net, ["running_"])
    learner.batch_norm_stats_target = get_parameters_by_name(learner.q_net_target, ["running_"])
    learner.exploration_schedule = lambda _progress: epsilon(learner.num_timesteps)
    # a logger of no outputs: SB3's default one makes an empty /tmp/SB3-<time> folder on every learn()
    learner.set_logger(Logger(folder=None, output_formats=[]))
    return learner


def linear_epsilon(start: float, end: float, steps: int) -> Callable[[int], float]:
    """Epsilon falling linearly from ``start`` to ``end`` over ``steps`` environment steps."""
    def eps(t: int) -> float:
        return end if t >= steps else start + (end - start) * t / max(steps, 1)

    return eps


def collect(learner: Any, n_steps: int) -> None:
    """``n_steps`` more environment steps (replay buffer, exploration, target updates) — SB3's own
    rollout collection, continued where the last call stopped."""
    learner.learn(total_timesteps=n_steps, reset_num_timesteps=False, progress_bar=False)


def td_loss(learner: Any, batch_size: int):
    """SB3's DQN loss on a replay batch of ``batch_size`` transitions (a scalar tensor)."""
    import torch
    import torch.nn.functional as F

    data = learner.replay_buffer.sample(batch_size, env=learner._vec_normalize_env)
    discounts = data.discounts if getattr(data, "discounts", None) is not None else learner.gamma
    with torch.no_grad():
        next_q = learner.q_net_target(data.next_observations).max(dim=1)[0].reshape(-1, 1)
        target = data.rewards + (1 - data.dones) * discounts * next_q
    q = torch.gather(learner.q_net(data.observations), dim=1, index=data.actions.long())
    return F.smooth_l1_loss(q, target)


def greedy_rollouts(q_net: Any, observer: PatchObserver, starts: np.ndarray, bounds: np.ndarray, *, max_steps: int,
                    max_visits: int, step: int = 1, batch_size: int = 256, device: Any = "cpu") -> np.ndarray:
    """Greedy episodes on every image of ``observer`` at once; returns the estimates ``(N, D)``.

    Args:
        q_net: observations ``(B, S*C, *[P] * D)`` -> Q-values ``(B, 2 * D)``.
        starts: integer start positions ``(N, D)``; bounds: inclusive ``(N, D, 2)`` position limits.

    The rules are :class:`~openmia.rl.env.LandmarkEnv`'s: moves out of bounds are refused; an
    episode ends when a position is visited ``max_visits`` times (estimate = the mean of the last
    cycle's positions) or after ``max_steps`` steps (estimate = the final position).
    """
    import torch

    n, d = starts.shape
    pos = np.array(starts, dtype=int)
    paths = [[tuple(p)] for p in pos]
    visits = [{tuple(p): 1} for p in pos]
    est = pos.astype(float)
    active = np.ones(n, bool)
    was_training = getattr(q_net, "training", False)
    q_net.train(False)
    with torch.no_grad():
        for _ in range(max_steps):
            idx = np.flatnonzero(active)
            if idx.size == 0:
                break
            actions = []
            for s in range(0, idx.size, batch_size):
                obs = np.stack([observer(int(i), pos[i]) for i in idx[s : s + batch_size]])
                actions.append(q_net(torch.as_tensor(obs, device=device)).argmax(1).cpu().numpy())
            for i, a in zip(idx, np.concatenate(actions)):
                new = pos[i].copy()
                new[a // 2] += step if a % 2 else -step
                if np.all(new >= bounds[i, :, 0]) and np.all(new <= bounds[i, :, 1]):
                    pos[i] = new
                key = tuple(pos[i])
                prev = max(j for j, p in enumerate(paths[i]) if p == key) if key in visits[i] else None
                visits[i][key] = visits[i].get(key, 0) + 1
                paths[i].append(key)
                est[i] = pos[i]
                if visits[i][key] >= max_visits:
                    if prev is not None:
                        est[i] = np.mean(np.array(paths[i][prev + 1 :], dtype=float), axis=0)
                    active[i] = False
    q_net.train(was_training)
    return est
