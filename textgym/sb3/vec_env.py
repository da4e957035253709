"""A Stable-Baselines3 ``VecEnv`` over a Gymnasium vector env, e.g. a native textgym one.

Gymnasium's vector envs autoreset on the next step and return infos as one dict of arrays;
SB3 expects the reset observation on the step that ends an episode, the last observation
in ``infos[i]["terminal_observation"]`` and one info dict per env. The adapter does that
conversion, resetting ended sub-envs at once through ``options={"reset_mask": ...}``.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.vector import AutoresetMode, VectorEnv
from stable_baselines3.common.vec_env import VecEnv
from stable_baselines3.common.vec_env.base_vec_env import VecEnvIndices, VecEnvObs, VecEnvStepReturn

from textgym.envs.vector_base import unbatch_info


def to_sb3_vec_env(vec_env: VectorEnv) -> GymnasiumVecEnv:
    """Wrap a Gymnasium vector env (next-step autoreset, e.g. ``gym.make_vec("TokenGen-v0",
    num_envs=8)``) as an SB3 ``VecEnv``: ``PPO("MultiInputPolicy", to_sb3_vec_env(envs))``."""
    return GymnasiumVecEnv(vec_env)


def unbatch_infos(infos: dict[str, Any], num_envs: int) -> list[dict[str, Any]]:
    """Gymnasium's batched infos (arrays with ``_key`` masks) as one dict per env."""
    return [unbatch_info(infos, i) for i in range(num_envs)]


class GymnasiumVecEnv(VecEnv):
    """SB3 view of a Gymnasium ``VectorEnv`` with ``AutoresetMode.NEXT_STEP``.

    ``action_masks()`` (and ``env_method("action_masks")``, which sb3-contrib's
    ``get_action_masks`` calls) return the vector env's masks. ``get_attr`` reads the
    vector env's ``get_attr``; sub-envs carry no wrappers of their own, so
    ``env_is_wrapped`` is False for each.
    """

    def __init__(self, vec_env: VectorEnv):
        mode = vec_env.metadata.get("autoreset_mode", AutoresetMode.NEXT_STEP)
        if mode != AutoresetMode.NEXT_STEP:
            raise ValueError(f"to_sb3_vec_env needs a vector env with AutoresetMode.NEXT_STEP, got {mode}")
        self.vec_env = vec_env
        super().__init__(vec_env.num_envs, vec_env.single_observation_space, vec_env.single_action_space)
        self._actions: np.ndarray | None = None

    def reset(self) -> VecEnvObs:
        seeds = self._seeds if any(seed is not None for seed in self._seeds) else None
        options = self._options[0] if self._options[0] else None
        obs, infos = self.vec_env.reset(seed=seeds, options=options)
        self.reset_infos = unbatch_infos(infos, self.num_envs)
        self._reset_seeds()
        self._reset_options()
        return obs

    def step_async(self, actions: np.ndarray) -> None:
        self._actions = np.asarray(actions)

    def step_wait(self) -> VecEnvStepReturn:
        obs, rewards, terminated, truncated, infos = self.vec_env.step(self._actions)
        dones = terminated | truncated
        per_env = unbatch_infos(infos, self.num_envs)
        for i, info in enumerate(per_env):
            info["TimeLimit.truncated"] = bool(truncated[i] and not terminated[i])
        if dones.any():
            # SB3 wants the next episode's first observation now, not on the next step
            terminal_obs = obs
            obs, reset_infos = self.vec_env.reset(options={"reset_mask": dones})
            reset_per_env = unbatch_infos(reset_infos, self.num_envs)
            for i in np.flatnonzero(dones):
                per_env[i]["terminal_observation"] = _row(terminal_obs, i)
                self.reset_infos[i] = reset_per_env[i]
        return obs, np.asarray(rewards, dtype=np.float32), dones, per_env

    def action_masks(self) -> np.ndarray:
        """Legal actions of every env, a ``(num_envs, n)`` bool array."""
        return self.vec_env.action_masks()

    def close(self) -> None:
        self.vec_env.close()

    def get_attr(self, attr_name: str, indices: VecEnvIndices = None) -> list[Any]:
        values = self.vec_env.get_attr(attr_name)
        return [values[i] for i in self._get_indices(indices)]

    def set_attr(self, attr_name: str, value: Any, indices: VecEnvIndices = None) -> None:
        raise NotImplementedError(
            "sub-envs of a vector env share their settings: make a new vector env with the new value"
        )

    def env_method(self, method_name: str, *method_args, indices: VecEnvIndices = None, **method_kwargs) -> list[Any]:
        if method_name != "action_masks":
            raise AttributeError(f"{type(self).__name__} supports env_method('action_masks') only, not {method_name!r}")
        masks = self.action_masks()
        return [masks[i] for i in self._get_indices(indices)]

    def env_is_wrapped(self, wrapper_class: type[gym.Wrapper], indices: VecEnvIndices = None) -> list[bool]:
        return [False for _ in self._get_indices(indices)]


def _row(obs: Any, i: int) -> Any:
    if isinstance(obs, dict):
        return {key: value[i].copy() for key, value in obs.items()}
    return obs[i].copy()
