"""Plumbing shared by textgym's native vector envs: seeding, next-step autoreset, step
limits, action checks and Gymnasium's vector-info convention.

A native vector env holds the state of all its sub-envs in numpy arrays and steps them at
once. It builds one single env as its blueprint (task, vocabulary, reward, spaces), so the
MDP is defined in one place, and gives the same observations, rewards, flags and infos as
``SyncVectorEnv`` over that single env, for the same seeds and actions.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.error import InvalidAction
from gymnasium.utils import seeding
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from textgym.envs.base import RESET_OPTIONS, TextEnv, checked_int, checked_options, checked_seed, example_index, is_int

# example indices each sub-env's generator draws at a time (see _draw_examples)
_DRAW_BATCH = 64


def unbatch_info(info: dict[str, Any], index: int) -> dict[str, Any]:
    """Sub-env ``index``'s info from a vector env's batched info.

    Gymnasium batches each info key into an array with a ``_key`` bool mask of the sub-envs
    that reported it; a key without a mask counts as reported by all. Nested dicts (such as
    ``info["metrics"]``) are unbatched the same way, and numpy scalars become Python
    numbers, as a single env reports them.
    """
    out: dict[str, Any] = {}
    for key, value in info.items():
        if key.startswith("_"):
            continue
        present = info.get(f"_{key}")
        if present is not None and not present[index]:
            continue
        if isinstance(value, dict):
            out[key] = unbatch_info(value, index)
        else:
            item = value[index]
            out[key] = item.item() if isinstance(item, np.generic) else item
    return out


class TextVectorEnv(VectorEnv):
    """Base class: subclasses build ``self.env`` (the blueprint single env), then call
    ``_setup``; they implement ``_reset_envs(rows, options)``, ``_step_envs(rows, actions)``,
    ``_observation()`` and ``_legal_masks()``.

    Sub-env i draws its examples from its own generator, seeded ``seed + i`` as
    ``SyncVectorEnv`` seeds its sub-envs, so the two give the same episodes
    (``_draw_examples``).
    """

    metadata = {"render_modes": [], "autoreset_mode": AutoresetMode.NEXT_STEP}

    def _setup(self, env: TextEnv, num_envs: int, max_episode_steps: int | None) -> None:
        num_envs = checked_int("num_envs", num_envs)
        max_episode_steps = checked_int("max_episode_steps", max_episode_steps, optional=True)
        if env.render_mode is not None:
            raise ValueError("native vector envs do not render; use vectorization_mode='sync' to render sub-envs")
        self.env = env
        self.num_envs = num_envs
        self.max_episode_steps = max_episode_steps
        self.single_observation_space = env.observation_space
        self.single_action_space = env.action_space
        self.observation_space = batch_space(env.observation_space, num_envs)
        self.action_space = batch_space(env.action_space, num_envs)
        self.report_action_mask = env.report_action_mask
        self.render_mode = None
        self._rngs = [seeding.np_random()[0] for _ in range(num_envs)]
        # the next example indices of each generator, drawn ahead; _DRAW_BATCH = none left
        self._draws = np.zeros((num_envs, _DRAW_BATCH), dtype=np.int64)
        self._next_draw = np.full(num_envs, _DRAW_BATCH, dtype=np.int64)
        self._elapsed = np.zeros(num_envs, dtype=np.int64)
        # NEXT_STEP autoreset: sub-envs whose episode ended reset on the next step() call
        self._autoreset = np.zeros(num_envs, dtype=bool)
        self._started = False

    # -- the VectorEnv API ----------------------------------------------------------------

    def reset(self, *, seed: int | list[int | None] | None = None, options: dict | None = None):
        """Reset every sub-env; ``seed`` is None, an int (sub-env i gets ``seed + i``) or a
        list of per-env seeds, and ``options`` go to every sub-env; ``options["reset_mask"]``
        (bool, one per sub-env) resets only the marked ones."""
        if seed is None or is_int(seed):
            first = checked_seed(seed)
            seeds = [None if first is None else first + i for i in range(self.num_envs)]
        elif isinstance(seed, (list, tuple, np.ndarray)):
            seeds = [checked_seed(s) for s in seed]
            if len(seeds) != self.num_envs:
                raise ValueError(f"got {len(seeds)} seeds for {self.num_envs} envs")
            first = None
        else:
            raise ValueError(f"seed must be None, a non-negative int or a list of {self.num_envs} of them, got {seed!r}")
        super().reset(seed=first)
        options = dict(checked_options(options, (*RESET_OPTIONS, "reset_mask")))
        # as SyncVectorEnv: options["reset_mask"] resets only some sub-envs
        reset_mask = options.pop("reset_mask", None)
        if reset_mask is None:
            rows = np.arange(self.num_envs)
        elif not self._started:
            raise gym.error.ResetNeeded("options['reset_mask'] needs a first reset() of every sub-env")
        else:
            reset_mask = np.asarray(reset_mask)
            if reset_mask.shape != (self.num_envs,) or reset_mask.dtype != np.bool_ or not reset_mask.any():
                raise ValueError(f"options['reset_mask'] must be a bool array of shape ({self.num_envs},) with a True")
            rows = np.flatnonzero(reset_mask)
        for i in rows:
            if seeds[i] is not None:
                self._rngs[i] = seeding.np_random(seeds[i])[0]
                self._next_draw[i] = _DRAW_BATCH
        infos: dict[str, Any] = {}
        self._reset_rows(rows, options, infos)
        self._started = True
        self._autoreset[rows] = False
        self._add_action_masks(infos)
        return self._observation(), infos

    def step(self, actions):
        return self.step_active(actions, np.ones(self.num_envs, dtype=bool))

    def step_active(self, actions, active: np.ndarray):
        """``step``, but only for the sub-envs marked in ``active`` (a bool array, one per
        sub-env): the others neither step nor autoreset, and get reward 0 and no flags or
        info; their actions must be valid but are ignored. A batched rollout that runs each
        sub-env for one episode steps with it, so that finished sub-envs do not play, and
        score, episodes nobody reads."""
        if not self._started:
            raise gym.error.ResetNeeded("Cannot call step() before reset(): call envs.reset() first.")
        actions = self._checked_actions(actions)
        active = np.asarray(active)
        if active.shape != (self.num_envs,) or active.dtype != np.bool_:
            raise ValueError(f"active must be a bool array of shape ({self.num_envs},), got {active!r}")
        resetting = np.flatnonzero(self._autoreset & active)
        stepping = np.flatnonzero(~self._autoreset & active)
        rewards = np.zeros(self.num_envs, dtype=np.float64)
        terminated = np.zeros(self.num_envs, dtype=bool)
        truncated = np.zeros(self.num_envs, dtype=bool)
        infos: dict[str, Any] = {}
        if stepping.size:
            self._step_envs(stepping, actions[stepping], rewards, terminated, truncated, infos)
            self._elapsed[stepping] += 1
            if self.max_episode_steps is not None:
                # as gymnasium's TimeLimit: truncated once the step budget is spent
                truncated[stepping] |= self._elapsed[stepping] >= self.max_episode_steps
        if resetting.size:
            self._reset_rows(resetting, {}, infos)
        self._autoreset[active] = (terminated | truncated)[active]
        self._add_action_masks(infos)
        return self._observation(), rewards, terminated, truncated, infos

    def get_attr(self, name: str) -> tuple[Any, ...]:
        """The blueprint single env's attribute ``name`` once per sub-env (as
        ``SyncVectorEnv.get_attr``): sub-envs share task, vocabulary, spaces and settings."""
        value = getattr(self.env, name)
        return (value,) * self.num_envs

    def action_masks(self) -> np.ndarray:
        """Legal actions of every sub-env, a ``(num_envs, n)`` bool array (MaskablePPO)."""
        return self._legal_masks().copy()

    # -- helpers for subclasses -----------------------------------------------------------

    def _reset_rows(self, rows: np.ndarray, options: dict, infos: dict[str, Any]) -> None:
        self._elapsed[rows] = 0
        self._reset_envs(rows, options, infos)

    def _draw_examples(self, rows: np.ndarray, options: dict) -> np.ndarray:
        """The example index of each sub-env in ``rows`` that resets: ``options["index"]``,
        else the next draw of the sub-env's own generator, as the single env's reset draws it.
        A generator draws ``_DRAW_BATCH`` indices at a time (the same numbers as one call per
        reset), so that most resets are an array lookup instead of a generator call."""
        n_examples = len(self.env.examples)
        if options.get("index") is not None:
            return np.full(rows.size, example_index(options, n_examples, self._rngs[rows[0]]), dtype=np.int64)
        used_up = rows[self._next_draw[rows] == _DRAW_BATCH]
        for i in used_up.tolist():
            self._draws[i] = self._rngs[i].integers(n_examples, size=_DRAW_BATCH)
        self._next_draw[used_up] = 0
        indices = self._draws[rows, self._next_draw[rows]]
        self._next_draw[rows] += 1
        return indices

    def _checked_actions(self, actions: Any) -> np.ndarray:
        array = np.asarray(actions)
        n = self.single_action_space.n
        if (
            array.shape != (self.num_envs,)
            or not np.issubdtype(array.dtype, np.integer)
            or (array.size and (array.min() < 0 or array.max() >= n))
        ):
            raise InvalidAction(
                f"actions {actions!r} are not in the action space {self.action_space}: "
                f"one integer in 0..{n - 1} per env, shape ({self.num_envs},)"
            )
        return array.astype(np.int64, copy=False)

    def _add_action_masks(self, infos: dict[str, Any]) -> None:
        if self.report_action_mask:
            infos["action_mask"] = self._legal_masks().astype(np.int8)
            infos["_action_mask"] = np.ones(self.num_envs, dtype=bool)

    def _set_info(self, infos: dict[str, Any], key: str, rows: np.ndarray, values: Any, dtype: Any = object) -> None:
        """Write ``values`` of sub-envs ``rows`` under ``key``, with the ``_key`` mask, as
        ``VectorEnv._add_info`` would."""
        if key not in infos:
            infos[key] = np.full(self.num_envs, None, dtype=object) if dtype is object else np.zeros(self.num_envs, dtype)
            infos[f"_{key}"] = np.zeros(self.num_envs, dtype=bool)
        infos[key][rows] = values
        infos[f"_{key}"][rows] = True

    def _set_metrics(self, infos: dict[str, Any], rows: np.ndarray, metrics: list[dict[str, float]]) -> None:
        """``info["metrics"]`` of ended sub-envs ``rows``: one float array and mask per metric."""
        if not len(metrics):
            return
        for name in metrics[0]:
            self._set_metric(infos, name, rows, [m[name] for m in metrics])

    def _set_metric(self, infos: dict[str, Any], name: str, rows: np.ndarray, values: Any) -> None:
        """``info["metrics"][name]`` of ended sub-envs ``rows``."""
        self._set_info(infos.setdefault("metrics", {}), name, rows, values, np.float64)
        infos.setdefault("_metrics", np.zeros(self.num_envs, dtype=bool))[rows] = True

    def _reset_envs(self, rows: np.ndarray, options: dict, infos: dict[str, Any]) -> None:
        raise NotImplementedError

    def _step_envs(self, rows, actions, rewards, terminated, truncated, infos) -> None:
        raise NotImplementedError

    def _observation(self) -> dict[str, np.ndarray]:
        raise NotImplementedError

    def _legal_masks(self) -> np.ndarray:
        raise NotImplementedError
