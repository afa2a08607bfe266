"""Reinforcement learning for localisation: the landmark environment (:mod:`openmia.rl.env`) and the
DQN agents trained with stable-baselines3 (:mod:`openmia.rl.agent`). Needs the ``rl`` extra."""
