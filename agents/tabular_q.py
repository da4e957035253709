"""Tabular Q-learning, written to be read next to the update it implements.

    Q(s, a) <- Q(s, a) + alpha * (r + gamma * max_{a' legal in s'} Q(s', a') - Q(s, a))

with the max term dropped when s' is terminal. Double Q-learning keeps two tables, picks
a' with one and evaluates it with the other (van Hasselt, 2010), which removes the
overestimation that the max brings.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np
import torch

from agents.base import (
    SCHEDULES,
    Agent,
    Callback,
    EpisodeTracker,
    check_bool,
    check_choice,
    check_range,
    legal_mask,
    masked_argmax,
    random_legal,
)


def observation_key(obs: Any) -> bytes:
    """The default state: the raw bytes of every observation array, in key order."""
    if isinstance(obs, dict):
        return b"|".join(np.ascontiguousarray(obs[k]).tobytes() for k in sorted(obs))
    return np.ascontiguousarray(obs).tobytes()


@dataclass
class TabularQConfig:
    learning_rate: float = 0.5  # alpha: step size of the update
    learning_rate_end: float | None = None  # decay alpha linearly to this over training (None: constant)
    gamma: float = 0.99  # discount
    epsilon_start: float = 1.0  # exploration rate at the start
    epsilon_end: float = 0.05  # exploration rate after the decay
    exploration_fraction: float = 0.5  # fraction of training over which epsilon decays
    epsilon_schedule: str = "linear"  # "linear" or "exponential"
    double_q: bool = False  # two tables, double Q-learning
    q_init: float = 0.0  # value of unseen state-actions (> 0 is optimistic exploration)

    def __post_init__(self):
        self.learning_rate = check_range("learning_rate", self.learning_rate, 0, 1, low_open=True)
        if self.learning_rate_end is not None:
            self.learning_rate_end = check_range("learning_rate_end", self.learning_rate_end, 0, 1)
        for name in ("gamma", "epsilon_start", "epsilon_end", "exploration_fraction"):
            setattr(self, name, check_range(name, getattr(self, name), 0, 1))
        self.q_init = check_range("q_init", self.q_init)
        check_choice("epsilon_schedule", self.epsilon_schedule, SCHEDULES)
        self.double_q = check_bool("double_q", self.double_q)


class TabularQAgent(Agent):
    """Q-learning with a table keyed by the observation's bytes (or ``state_fn(obs)``),
    rows created lazily, epsilon-greedy exploration and action masks respected both when
    exploring and in the greedy choice and the target's max."""

    Config = TabularQConfig

    def __init__(self, env: gym.Env, seed: int = 0, state_fn: Callable[[Any], bytes] | None = None, **kwargs: Any):
        super().__init__(env, seed=seed, **kwargs)
        self.state_fn = state_fn or observation_key
        self.tables: list[dict[bytes, np.ndarray]] = [{} for _ in range(2 if self.config.double_q else 1)]

    def q_values(self, state: bytes, table: int | None = None) -> np.ndarray:
        """Q(s, .) from one table, or the sum of both for double Q (what acting uses). An
        unseen state reads as ``q_init``; only updates add rows, so acting (evaluation
        included) never grows the table."""
        if table is not None:
            row = self.tables[table].get(state)
            return row if row is not None else np.full(self.n_actions, self.config.q_init)
        return sum(self.q_values(state, t) for t in range(len(self.tables)))

    def _row(self, state: bytes, table: int) -> np.ndarray:
        """The row of ``state`` in ``table``, created on its first update."""
        row = self.tables[table].get(state)
        if row is None:
            row = self.tables[table][state] = np.full(self.n_actions, self.config.q_init)
        return row

    def act(self, obs: Any, info: dict | None = None, deterministic: bool = True) -> int:
        mask = legal_mask(info, self.n_actions)
        values = self.q_values(self.state_fn(obs))
        return masked_argmax(values, mask, None if deterministic else self.rng)

    def learn(self, total_timesteps: int, progress_bar: bool = False, callback: Callback | None = None) -> TabularQAgent:
        total_timesteps = self._check_timesteps(total_timesteps)
        cfg = self.config
        epsilon_at = SCHEDULES[cfg.epsilon_schedule]
        alpha_end = cfg.learning_rate if cfg.learning_rate_end is None else cfg.learning_rate_end
        tracker = EpisodeTracker(self, total_timesteps, progress_bar, callback)

        obs, info = self.env.reset(seed=self.seed)
        state, mask = self.state_fn(obs), legal_mask(info, self.n_actions)
        for step in range(total_timesteps):
            progress = step / total_timesteps
            epsilon = epsilon_at(cfg.epsilon_start, cfg.epsilon_end, cfg.exploration_fraction, progress)
            alpha = cfg.learning_rate + (alpha_end - cfg.learning_rate) * progress

            # epsilon-greedy over the legal actions
            if self.rng.random() < epsilon:
                action = random_legal(mask, self.rng)
            else:
                action = masked_argmax(self.q_values(state), mask, self.rng)

            next_obs, reward, terminated, truncated, info = self.env.step(action)
            next_state, next_mask = self.state_fn(next_obs), legal_mask(info, self.n_actions)

            # with two tables, update one (at random) and evaluate its argmax with the other
            updated = int(self.rng.integers(2)) if cfg.double_q else 0
            evaluator = 1 - updated if cfg.double_q else 0
            target = reward
            if not terminated:  # a truncated episode still has a future: bootstrap it
                best_next = masked_argmax(self.q_values(next_state, updated), next_mask)
                target += cfg.gamma * self.q_values(next_state, evaluator)[best_next]
            q = self._row(state, updated)
            q[action] += alpha * (target - q[action])

            self.num_timesteps += 1
            keep_going = tracker.step(step, reward, terminated or truncated, info)
            if terminated or truncated:
                next_obs, info = self.env.reset()
                next_state, next_mask = self.state_fn(next_obs), legal_mask(info, self.n_actions)
            if not keep_going:
                break
            state, mask = next_state, next_mask
        tracker.close()
        return self

    def _state(self) -> dict:
        return {"tables": [{key: torch.from_numpy(row) for key, row in table.items()} for table in self.tables]}

    def _load_state(self, state: dict) -> None:
        self.tables = [{key: row.numpy().copy() for key, row in table.items()} for table in state["tables"]]

    @classmethod
    def load(cls, path: str | os.PathLike, env: gym.Env | None = None,
             state_fn: Callable[[Any], bytes] | None = None) -> TabularQAgent:
        """Load a checkpoint; pass the same ``state_fn`` the agent was trained with."""
        agent = super().load(path, env)
        agent.state_fn = state_fn or observation_key
        return agent

    @property
    def n_states(self) -> int:
        return len(self.tables[0])
