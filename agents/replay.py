"""Experience replay for DQN: a preallocated numpy ring buffer and n-step returns."""

from __future__ import annotations

from collections import deque
from typing import NamedTuple

import gymnasium as gym
import numpy as np
import torch


class Transition(NamedTuple):
    """One (possibly n-step) transition: from ``obs`` after ``action``, the discounted
    ``reward`` sum, then ``next_obs`` whose value counts with weight ``discount``
    (gamma^k after k steps) unless ``terminated``."""

    obs: dict[str, np.ndarray]
    action: int
    reward: float
    next_obs: dict[str, np.ndarray]
    terminated: bool
    next_mask: np.ndarray
    discount: float


class NStepReturns:
    """Turns the 1-step stream of an episode into n-step transitions:

        R_t = r_t + gamma r_{t+1} + ... + gamma^{k-1} r_{t+k-1},  bootstrapped from s_{t+k}

    with k = n, or fewer for the last steps of an episode. n = 1 is plain Q-learning.
    """

    def __init__(self, n: int, gamma: float):
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ValueError(f"n_step must be a positive int, got {n!r}")
        self.n, self.gamma = n, gamma
        self.pending: deque[tuple[dict[str, np.ndarray], int, float]] = deque()

    def push(self, obs: dict[str, np.ndarray], action: int, reward: float, next_obs: dict[str, np.ndarray],
             terminated: bool, truncated: bool, next_mask: np.ndarray) -> list[Transition]:
        """Add one env step; returns the transitions that are now complete."""
        self.pending.append((obs, action, reward))
        if terminated or truncated:  # the episode is over: flush every pending start
            return [self._pop(next_obs, terminated, next_mask) for _ in range(len(self.pending))]
        if len(self.pending) == self.n:
            return [self._pop(next_obs, False, next_mask)]
        return []

    def _pop(self, next_obs: dict[str, np.ndarray], terminated: bool, next_mask: np.ndarray) -> Transition:
        k = len(self.pending)
        ret = sum(self.gamma**i * reward for i, (_, _, reward) in enumerate(self.pending))
        obs, action, _ = self.pending.popleft()
        return Transition(obs, action, ret, next_obs, terminated, next_mask, self.gamma**k)


class ReplayBatch(NamedTuple):
    obs: dict[str, torch.Tensor]
    actions: torch.Tensor
    rewards: torch.Tensor
    next_obs: dict[str, torch.Tensor]
    dones: torch.Tensor
    next_masks: torch.Tensor
    discounts: torch.Tensor


class ReplayBuffer:
    """A ring buffer of ``capacity`` transitions, every array allocated up front."""

    def __init__(self, observation_space: gym.spaces.Dict, n_actions: int, capacity: int):
        def storage() -> dict[str, np.ndarray]:
            return {k: np.zeros((capacity, *s.shape), dtype=np.int64) for k, s in observation_space.spaces.items()}

        self.capacity = capacity
        self.obs, self.next_obs = storage(), storage()
        self.actions = np.zeros(capacity, dtype=np.int64)
        self.rewards = np.zeros(capacity, dtype=np.float32)
        self.dones = np.zeros(capacity, dtype=np.float32)
        self.next_masks = np.zeros((capacity, n_actions), dtype=bool)
        self.discounts = np.zeros(capacity, dtype=np.float32)
        self.position, self.size = 0, 0

    def add(self, transition: Transition) -> None:
        i = self.position
        for key in self.obs:
            self.obs[key][i] = transition.obs[key]
            self.next_obs[key][i] = transition.next_obs[key]
        self.actions[i] = transition.action
        self.rewards[i] = transition.reward
        self.dones[i] = transition.terminated
        self.next_masks[i] = transition.next_mask
        self.discounts[i] = transition.discount
        self.position = (i + 1) % self.capacity
        self.size = min(self.size + 1, self.capacity)

    def sample(self, batch_size: int, rng: np.random.Generator, device: torch.device) -> ReplayBatch:
        index = rng.integers(self.size, size=batch_size)

        def tensor(array: np.ndarray) -> torch.Tensor:
            return torch.as_tensor(array[index], device=device)

        return ReplayBatch(
            obs={k: tensor(v) for k, v in self.obs.items()},
            actions=tensor(self.actions),
            rewards=tensor(self.rewards),
            next_obs={k: tensor(v) for k, v in self.next_obs.items()},
            dones=tensor(self.dones),
            next_masks=tensor(self.next_masks),
            discounts=tensor(self.discounts),
        )
