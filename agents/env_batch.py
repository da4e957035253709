"""A batch of envs stepped in lockstep: a list of envs or a Gymnasium vector env, seen
the same way (observations, rewards, flags and action masks as arrays with one row per
env), for agents that batch their forward passes across envs."""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np

from textgym.envs.vector_base import unbatch_info


@dataclass
class BatchStep:
    """What a reset or a step gave, one row per env; rows that did not step hold their last
    observation, reward 0 and both flags False."""

    obs: dict[str, np.ndarray]  # (N, ...) per key
    rewards: np.ndarray  # (N,) float64
    terminated: np.ndarray  # (N,) bool
    truncated: np.ndarray  # (N,) bool
    masks: np.ndarray | None  # (N, A) bool: info["action_mask"], None when the envs report none
    _infos: list[dict] | dict[str, Any]  # one info per env, or a vector env's batched info

    def info(self, index: int) -> dict:
        """Env ``index``'s info (unbatched from a vector env's on demand)."""
        return self._infos[index] if isinstance(self._infos, list) else unbatch_info(self._infos, index)

    def row(self, index: int) -> dict[str, np.ndarray]:
        """Env ``index``'s observation (views of the batched arrays)."""
        return {key: value[index] for key, value in self.obs.items()}


class EnvBatch:
    """``reset(seeds)`` and ``step(actions, active)`` over n envs. Only active envs are
    stepped: in a list, and in a native vector env (``step_active``). Another vector env
    steps all, so an inactive env gets a legal filler action and its result is dropped (its
    next ``reset`` starts it afresh)."""

    def __init__(self, envs: Sequence[gym.Env] | gym.vector.VectorEnv):
        self.vector = isinstance(envs, gym.vector.VectorEnv)
        if self.vector:
            self.envs, self.n = envs, envs.num_envs
        else:
            self.envs, self.n = list(envs), len(envs)
            if not self.envs:
                raise ValueError("an EnvBatch needs at least one env")
        self._last: BatchStep | None = None

    @classmethod
    def of(cls, env: gym.Env, n: int) -> EnvBatch:
        """``n`` envs like ``env``: its native vector env (``gym.make_vec`` of its spec) when
        its id has a ``vector_entry_point`` and no wrappers were added after ``gym.make``,
        else ``n`` copies of it. The rollout envs never render, whatever ``env``'s render mode."""
        spec = env.spec
        if spec is not None and spec.vector_entry_point is not None and not spec.additional_wrappers:
            spec = dataclasses.replace(spec, kwargs={k: v for k, v in spec.kwargs.items() if k != "render_mode"})
            return cls(gym.make_vec(spec, num_envs=n, vectorization_mode="vector_entry_point"))
        return cls([copy.deepcopy(env) for _ in range(n)])

    def reset(self, seeds: Sequence[int], options: Sequence[dict | None] | None = None) -> BatchStep:
        """Reset every env with its seed; ``options`` (one dict or None per env) picks, say,
        the example each env starts from (``{"index": i}``)."""
        if len(seeds) != self.n or (options is not None and len(options) != self.n):
            raise ValueError(f"reset takes one seed (and option) per env: {self.n}, got {len(seeds)} seeds"
                             + ("" if options is None else f" and {len(options)} options"))
        seeds = [int(seed) for seed in seeds]
        if self.vector:
            obs, info = self.envs.reset(seed=seeds)
            distinct = _distinct(options)
            if distinct:  # the envs that take each option are reset again, alone, with it
                info = [unbatch_info(info, i) for i in range(self.n)]
                for option in distinct:
                    rows = np.array([other == option for other in options])
                    obs, batched = self.envs.reset(seed=seeds, options={**option, "reset_mask": rows})
                    for i in np.flatnonzero(rows).tolist():
                        info[i] = unbatch_info(batched, i)
            masks = _list_masks(info) if isinstance(info, list) else _vector_masks(info)
            zeros = np.zeros(self.n, dtype=bool)
            self._last = BatchStep(obs, np.zeros(self.n), zeros, zeros.copy(), masks, info)
        else:
            options = options if options is not None else [None] * self.n
            results = [env.reset(seed=seed, options=option) for env, seed, option in zip(self.envs, seeds, options)]
            infos = [info for _, info in results]
            obs = {key: np.stack([o[key] for o, _ in results]) for key in results[0][0]}
            zeros = np.zeros(self.n, dtype=bool)
            self._last = BatchStep(obs, np.zeros(self.n), zeros, zeros.copy(), _list_masks(infos), infos)
        return self._last

    def step(self, actions: np.ndarray, active: np.ndarray) -> BatchStep:
        """Step the ``active`` envs (a bool array) with their ``actions`` (an int array)."""
        last = self._last
        if last is None:
            raise gym.error.ResetNeeded("call EnvBatch.reset() before step()")
        actions, active = np.asarray(actions, dtype=np.int64), np.asarray(active, dtype=bool)
        if self.vector:
            filler = np.zeros(self.n, dtype=np.int64) if last.masks is None else last.masks.argmax(1)
            actions = np.where(active, actions, filler)
            step_active = getattr(self.envs, "step_active", None)  # a native vector env (not wrapped)
            result = self.envs.step(actions) if step_active is None else step_active(actions, active)
            obs, rewards, terminated, truncated, info = result
            self._last = BatchStep(obs, np.where(active, rewards, 0.0), terminated & active, truncated & active,
                                   _vector_masks(info), info)
        else:
            obs = {key: value.copy() for key, value in last.obs.items()}
            rewards, terminated, truncated = np.zeros(self.n), np.zeros(self.n, dtype=bool), np.zeros(self.n, dtype=bool)
            infos = list(last._infos)
            for i in np.flatnonzero(active).tolist():
                row, rewards[i], terminated[i], truncated[i], infos[i] = self.envs[i].step(int(actions[i]))
                for key, value in row.items():
                    obs[key][i] = value
            masks = last.masks
            if masks is not None and active.any():
                masks = masks.copy()
                masks[active] = _list_masks([infos[i] for i in np.flatnonzero(active)])
            self._last = BatchStep(obs, rewards, terminated, truncated, masks, infos)
        return self._last


def _distinct(options: Sequence[dict | None] | None) -> list[dict]:
    """The distinct non-empty options, in order of first use."""
    seen: list[dict] = []
    for option in options or ():
        if option and option not in seen:
            seen.append(option)
    return seen


def _vector_masks(info: dict[str, Any]) -> np.ndarray | None:
    mask = info.get("action_mask")
    return None if mask is None else np.asarray(mask).astype(bool)


def _list_masks(infos: Sequence[dict]) -> np.ndarray | None:
    masks = [info.get("action_mask") for info in infos]
    if all(mask is None for mask in masks):
        return None
    if any(mask is None for mask in masks):
        raise ValueError("some envs report info['action_mask'] and some do not")
    return np.stack(masks).astype(bool)
