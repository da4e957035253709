"""The baseline every learning curve is compared against: uniformly random legal actions."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from agents.base import Agent, Callback, EpisodeTracker, legal_mask, random_legal


@dataclass
class RandomConfig:
    pass


class RandomAgent(Agent):
    """Picks a uniformly random legal action; ``learn`` only runs and logs episodes."""

    Config = RandomConfig

    def act(self, obs: Any, info: dict | None = None, deterministic: bool = True) -> int:
        return random_legal(legal_mask(info, self.n_actions), self.rng)

    def learn(self, total_timesteps: int, progress_bar: bool = False, callback: Callback | None = None) -> RandomAgent:
        total_timesteps = self._check_timesteps(total_timesteps)
        tracker = EpisodeTracker(self, total_timesteps, progress_bar, callback)
        obs, info = self.env.reset(seed=self.seed)
        for step in range(total_timesteps):
            obs, reward, terminated, truncated, info = self.env.step(self.act(obs, info))
            self.num_timesteps += 1
            keep_going = tracker.step(step, reward, terminated or truncated, info)
            if terminated or truncated:
                obs, info = self.env.reset()
            if not keep_going:
                break
        tracker.close()
        return self

    def _state(self) -> dict:
        return {}

    def _load_state(self, state: dict) -> None:
        pass
