"""Deep Q-learning over token observations (Mnih et al., 2015), with double DQN
(van Hasselt et al., 2016), n-step returns and action masks.

    y = R_t^(n) + gamma^n * Q_target(s_{t+n}, argmax_{a' legal} Q(s_{t+n}, a'))
    loss = Huber(Q(s_t, a_t) - y)

Masked actions get -inf before every argmax, in acting and in the target.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from torch import nn

from agents.base import (
    SCHEDULES,
    Agent,
    Callback,
    EpisodeTracker,
    check_bool,
    check_choice,
    check_range,
    legal_mask,
    random_legal,
)
from agents.networks import Q_NETWORK_ENCODERS, TokenQNetwork
from agents.replay import NStepReturns, ReplayBuffer


@dataclass
class DQNConfig:
    learning_rate: float = 5e-4  # Adam step size
    buffer_size: int = 50_000  # transitions kept for replay
    batch_size: int = 64  # transitions per gradient step
    gamma: float = 0.9  # discount; text episodes are short, and a short horizon learns faster
    learning_starts: int = 1_000  # env steps before the first gradient step
    train_frequency: int = 2  # env steps between gradient steps
    target_update_interval: int = 100  # env steps between hard target updates (when tau == 1)
    tau: float = 1.0  # soft target update rate; 1.0 means hard updates
    epsilon_start: float = 1.0  # exploration rate at the start
    epsilon_end: float = 0.05  # exploration rate after the decay
    exploration_fraction: float = 0.3  # fraction of training over which epsilon decays
    epsilon_schedule: str = "linear"  # "linear" or "exponential"
    double_q: bool = True  # pick the next action with the online net, value it with the target net
    n_step: int = 1  # steps summed before bootstrapping
    max_grad_norm: float = 10.0  # gradient clipping
    encoder: str = "concat"  # "concat", "transformer" or "gru"
    embed_dim: int = 64  # token embedding size
    hidden_dim: int = 128  # encoder feed-forward / GRU and head size
    n_layers: int = 1  # encoder layers
    device: str = "auto"  # "cpu", "cuda" or "auto"

    def __post_init__(self):
        self.learning_rate = check_range("learning_rate", self.learning_rate, 0, low_open=True)
        self.max_grad_norm = check_range("max_grad_norm", self.max_grad_norm, 0, low_open=True)
        self.tau = check_range("tau", self.tau, 0, 1, low_open=True)
        for name in ("gamma", "epsilon_start", "epsilon_end", "exploration_fraction"):
            setattr(self, name, check_range(name, getattr(self, name), 0, 1))
        self.learning_starts = check_range("learning_starts", self.learning_starts, 0, integer=True)
        for name in ("buffer_size", "batch_size", "train_frequency", "target_update_interval", "n_step",
                     "embed_dim", "hidden_dim", "n_layers"):
            setattr(self, name, check_range(name, getattr(self, name), 1, integer=True))
        check_choice("epsilon_schedule", self.epsilon_schedule, SCHEDULES)
        check_choice("encoder", self.encoder, Q_NETWORK_ENCODERS)
        self.double_q = check_bool("double_q", self.double_q)
        resolve_device(self.device)


def resolve_device(device: str) -> torch.device:
    """``"auto"`` (CUDA when available, else CPU) or a torch device name, as a ``torch.device``."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        return torch.device(device)
    except (RuntimeError, TypeError):
        raise ValueError(f"device must be 'auto' or a torch device name ('cpu', 'cuda', 'cuda:1'), got {device!r}") from None


class DQNAgent(Agent):
    """DQN with a token-embedding Q-network (:class:`agents.networks.TokenQNetwork`), a
    preallocated replay buffer, a target network and double DQN, on CPU or GPU."""

    Config = DQNConfig

    def __init__(self, env: gym.Env, seed: int = 0, **kwargs: Any):
        super().__init__(env, seed=seed, **kwargs)
        cfg = self.config
        self.device = resolve_device(cfg.device)
        self.q_network = self._network().to(self.device)
        self.target_network = self._network().to(self.device)
        self.target_network.load_state_dict(self.q_network.state_dict())
        self.optimizer = torch.optim.Adam(self.q_network.parameters(), lr=cfg.learning_rate)

    def _network(self) -> TokenQNetwork:
        cfg = self.config
        return TokenQNetwork(self.env.observation_space, self.n_actions, encoder=cfg.encoder,
                             embed_dim=cfg.embed_dim, hidden_dim=cfg.hidden_dim, n_layers=cfg.n_layers)

    def _batch(self, obs: dict[str, np.ndarray]) -> dict[str, torch.Tensor]:
        return {k: torch.as_tensor(v, device=self.device)[None] for k, v in obs.items()}

    @torch.no_grad()
    def act(self, obs: Any, info: dict | None = None, deterministic: bool = True) -> int:
        mask = torch.as_tensor(legal_mask(info, self.n_actions), device=self.device)
        q = self.q_network(self._batch(obs))[0].masked_fill(~mask, -torch.inf)
        if deterministic:
            return int(q.argmax())
        return int(torch.distributions.Categorical(logits=q).sample())

    def learn(self, total_timesteps: int, progress_bar: bool = False, callback: Callback | None = None) -> DQNAgent:
        total_timesteps = self._check_timesteps(total_timesteps)
        cfg = self.config
        epsilon_at = SCHEDULES[cfg.epsilon_schedule]
        buffer = ReplayBuffer(self.env.observation_space, self.n_actions, cfg.buffer_size)
        n_step = NStepReturns(cfg.n_step, cfg.gamma)
        tracker = EpisodeTracker(self, total_timesteps, progress_bar, callback)

        obs, info = self.env.reset(seed=self.seed)
        mask = legal_mask(info, self.n_actions)
        for step in range(total_timesteps):
            epsilon = epsilon_at(cfg.epsilon_start, cfg.epsilon_end, cfg.exploration_fraction, step / total_timesteps)
            action = random_legal(mask, self.rng) if self.rng.random() < epsilon else self.act(obs, info)

            next_obs, reward, terminated, truncated, info = self.env.step(action)
            next_mask = legal_mask(info, self.n_actions)
            for transition in n_step.push(obs, action, reward, next_obs, terminated, truncated, next_mask):
                buffer.add(transition)

            self.num_timesteps += 1
            keep_going = tracker.step(step, reward, terminated or truncated, info)
            if terminated or truncated:
                next_obs, info = self.env.reset()
                next_mask = legal_mask(info, self.n_actions)
            obs, mask = next_obs, next_mask

            if step >= cfg.learning_starts and step % cfg.train_frequency == 0:
                self._gradient_step(buffer)
            if cfg.tau < 1.0:
                self._soft_update(cfg.tau)
            elif step % cfg.target_update_interval == 0:
                self.target_network.load_state_dict(self.q_network.state_dict())
            if not keep_going:
                break
        tracker.close()
        return self

    def _gradient_step(self, buffer: ReplayBuffer) -> float:
        cfg = self.config
        batch = buffer.sample(cfg.batch_size, self.rng, self.device)
        with torch.no_grad():
            next_target = self.target_network(batch.next_obs)
            chooser = self.q_network(batch.next_obs) if cfg.double_q else next_target
            best = chooser.masked_fill(~batch.next_masks, -torch.inf).argmax(dim=1, keepdim=True)
            next_value = next_target.gather(1, best).squeeze(1)
            target = batch.rewards + batch.discounts * (1.0 - batch.dones) * next_value
        q = self.q_network(batch.obs).gather(1, batch.actions[:, None]).squeeze(1)
        loss = nn.functional.smooth_l1_loss(q, target)
        self.optimizer.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(self.q_network.parameters(), cfg.max_grad_norm)
        self.optimizer.step()
        return loss.item()

    @torch.no_grad()
    def _soft_update(self, tau: float) -> None:
        for target, online in zip(self.target_network.parameters(), self.q_network.parameters()):
            target.lerp_(online, tau)

    def _state(self) -> dict:
        return {"q_network": self.q_network.state_dict(), "target_network": self.target_network.state_dict()}

    def _load_state(self, state: dict) -> None:
        self.q_network.load_state_dict(state["q_network"])
        self.target_network.load_state_dict(state["target_network"])
