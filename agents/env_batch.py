"""A batch of envs stepped in lockstep: a list of envs or a Gymnasium vector env, seen
the same way (one observation, reward and info per env), for agents that batch their
forward passes across envs."""

from __future__ import annotations

from collections.abc import Sequence

import gymnasium as gym
import numpy as np

from textgym.envs.vector_base import unbatch_info

Transition = tuple[dict, float, bool, bool, dict]


class EnvBatch:
    """``reset(seeds)`` and ``step(actions, active)`` over n envs. Only active envs are
    stepped in a list; a vector env steps all, so an inactive env gets a legal filler
    action and its result is dropped (its next ``reset`` starts it afresh)."""

    def __init__(self, envs: Sequence[gym.Env] | gym.vector.VectorEnv):
        self.vector = isinstance(envs, gym.vector.VectorEnv)
        if self.vector:
            self.envs, self.n = envs, envs.num_envs
        else:
            self.envs, self.n = list(envs), len(envs)
            if not self.envs:
                raise ValueError("an EnvBatch needs at least one env")
        self._masks: list[np.ndarray | None] = [None] * self.n

    def reset(self, seeds: Sequence[int], options: Sequence[dict] | None = None) -> list[tuple[dict, dict]]:
        """Reset every env; ``options`` (one dict per env, a list of envs only) picks, say,
        the example each env starts from (``{"index": i}``)."""
        if self.vector:
            if options is not None:
                raise ValueError("per-env reset options need a list of envs, not a vector env")
            obs, info = self.envs.reset(seed=list(seeds))
            results = [({k: v[i] for k, v in obs.items()}, unbatch_info(info, i)) for i in range(self.n)]
        else:
            options = options if options is not None else [None] * self.n
            results = [env.reset(seed=int(seed), options=option) for env, seed, option in zip(self.envs, seeds, options)]
        self._masks = [info.get("action_mask") for _, info in results]
        return results

    def step(self, actions: Sequence[int], active: Sequence[bool]) -> list[Transition | None]:
        if self.vector:
            filled = [a if on else self._filler(i) for i, (a, on) in enumerate(zip(actions, active))]
            obs, rewards, terminated, truncated, info = self.envs.step(np.asarray(filled))
            results: list[Transition | None] = [
                ({k: v[i] for k, v in obs.items()}, float(rewards[i]), bool(terminated[i]), bool(truncated[i]),
                 unbatch_info(info, i)) if on else None
                for i, on in enumerate(active)
            ]
        else:
            results = [env.step(int(a)) if on else None for env, a, on in zip(self.envs, actions, active)]
        for i, result in enumerate(results):
            if result is not None:
                self._masks[i] = result[4].get("action_mask")
        return results

    def _filler(self, index: int) -> int:
        mask = self._masks[index]
        return 0 if mask is None else int(np.flatnonzero(mask)[0])
