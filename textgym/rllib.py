"""Ray RLlib integration: textgym envs by id, their action masks, and a token-embedding PPO module.

Importing this module imports Ray and registers ``"textgym:<id>"`` with
``ray.tune.registry.register_env`` for every id in ``envs_registry.ENVS``; ``import textgym``
does not import it. :func:`ppo_config` is the one call a user writes:

    from textgym.rllib import ppo_config
    config = ppo_config("TokenGen-Copy-v0", reward_mode="dense").env_runners(num_env_runners=1)
    algo = config.build_algo()

Masks. textgym reports the legal actions in ``info["action_mask"]``, but an RLlib module
reads only observations, so the registered envs are wrapped in
:class:`ActionMaskObservation`, which moves the mask into the observation with the layout
of RLlib's action-masking example::

    {"observations": <the env's Dict observation>, "action_mask": int8 array (n_actions,), 1 = legal}

:class:`TokenPPOModule` embeds ``"observations"`` with ``textgym.features.TokenEncoder``
(the network behind ``textgym.sb3.TokenFeaturesExtractor``) and sets the logits of masked
actions to ``FLOAT_MIN`` (-3.4e38) before the action distribution: their probability is
exactly 0, so they are never sampled, nor picked greedily.

Workers. The creators are ``functools.partial(make_env, env_id)`` of this module's
functions; Ray ships the registry to every process, and unpickling a creator imports
``textgym.rllib`` there, so ``num_env_runners >= 1`` builds the envs in the workers.
"""

from __future__ import annotations

import functools
import numbers
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from ray.rllib.algorithms.ppo import PPOConfig
from ray.rllib.core.columns import Columns
from ray.rllib.core.rl_module.apis import ValueFunctionAPI
from ray.rllib.core.rl_module.rl_module import RLModule, RLModuleSpec
from ray.rllib.core.rl_module.torch import TorchRLModule
from ray.rllib.utils.torch_utils import FLOAT_MIN
from ray.tune.registry import register_env
from torch import nn

import textgym  # noqa: F401  (registers the Gymnasium ids that make_env makes)
from envs_registry import ENVS
from textgym.features import EXTRACTOR_ARGUMENTS, TokenEncoder

# TokenPPOModule's model_config: TokenEncoder's arguments, and the width of the policy and value heads
MODEL_ARGUMENTS = (*EXTRACTOR_ARGUMENTS, "head_dim")
PREFIX = "textgym:"


class ActionMaskObservation(gym.Wrapper, gym.utils.RecordConstructorArgs):
    """Puts the legal actions into the observation: ``{"observations": obs, "action_mask": mask}``.

    The mask is ``env.unwrapped.action_masks()`` where the env has it (every textgym env
    does, even with ``action_mask=False``), else ``info["action_mask"]``, else all ones.
    """

    def __init__(self, env: gym.Env):
        gym.utils.RecordConstructorArgs.__init__(self)  # so env.spec can rebuild the wrapped env
        gym.Wrapper.__init__(self, env)
        if not isinstance(env.action_space, gym.spaces.Discrete):
            raise ValueError(f"ActionMaskObservation needs a Discrete action space, got {env.action_space}")
        n = int(env.action_space.n)
        self.observation_space = gym.spaces.Dict({
            "observations": env.observation_space,
            "action_mask": gym.spaces.Box(0, 1, shape=(n,), dtype=np.int8),
        })
        self._action_masks = getattr(env.unwrapped, "action_masks", None)

    def _with_mask(self, obs: Any, info: dict) -> dict[str, Any]:
        if self._action_masks is not None:
            mask = self._action_masks()
        else:
            mask = info.get("action_mask", np.ones(self.observation_space["action_mask"].shape))
        return {"observations": obs, "action_mask": np.asarray(mask, dtype=np.int8)}

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[dict, dict]:
        obs, info = self.env.reset(seed=seed, options=options)
        return self._with_mask(obs, info), info

    def step(self, action: Any) -> tuple[dict, float, bool, bool, dict]:
        obs, reward, terminated, truncated, info = self.env.step(action)
        return self._with_mask(obs, info), reward, terminated, truncated, info


def make_env(env_id: str, env_config: dict | None = None) -> gym.Env:
    """The env RLlib builds for ``"textgym:<env_id>"``: ``gym.make(env_id, **env_config)``
    wrapped in :class:`ActionMaskObservation`."""
    return ActionMaskObservation(gym.make(env_id, **dict(env_config or {})))


def register_envs() -> None:
    """Register ``"textgym:<id>"`` with ``ray.tune`` for every textgym id (idempotent; runs at import)."""
    for env_id in ENVS:
        register_env(PREFIX + env_id, functools.partial(make_env, env_id))


class TokenPPOModule(TorchRLModule, ValueFunctionAPI):
    """A PPO actor-critic on textgym observations, action masks applied.

    One :class:`textgym.features.TokenEncoder` (shared by both heads) reads
    ``obs["observations"]``; the policy and value heads are ``Linear(features, head_dim)``,
    ``tanh``, ``Linear`` (as SB3's PPO with ``textgym.sb3.policy_kwargs``). The logits of
    actions that ``obs["action_mask"]`` forbids are ``FLOAT_MIN``. ``model_config`` takes
    the encoder's arguments (``embed_dim``, ``encoder``, ...) and ``head_dim`` (128).
    """

    def setup(self) -> None:
        space = self.observation_space
        if not isinstance(space, gym.spaces.Dict) or set(space.spaces) != {"observations", "action_mask"}:
            raise ValueError(
                "TokenPPOModule needs observations {'observations': <textgym Dict>, 'action_mask': Box}, as the "
                f"'textgym:<id>' envs of textgym.rllib make them (ActionMaskObservation); got {space}"
            )
        config = self.model_config or {}
        head_dim = int(config.get("head_dim", 128))
        self.encoder = TokenEncoder(space["observations"], **{k: config[k] for k in EXTRACTOR_ARGUMENTS if k in config})
        features = self.encoder.features_dim
        self.pi = nn.Sequential(nn.Linear(features, head_dim), nn.Tanh(), nn.Linear(head_dim, int(self.action_space.n)))
        self.vf = nn.Sequential(nn.Linear(features, head_dim), nn.Tanh(), nn.Linear(head_dim, 1))

    def _forward(self, batch: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        return {Columns.ACTION_DIST_INPUTS: self._masked_logits(batch, self.encoder(batch[Columns.OBS]["observations"]))}

    def _forward_train(self, batch: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        features = self.encoder(batch[Columns.OBS]["observations"])
        return {Columns.ACTION_DIST_INPUTS: self._masked_logits(batch, features), Columns.EMBEDDINGS: features}

    def compute_values(self, batch: dict[str, Any], embeddings: torch.Tensor | None = None) -> torch.Tensor:
        if embeddings is None:
            embeddings = self.encoder(batch[Columns.OBS]["observations"])
        return self.vf(embeddings).squeeze(-1)

    def _masked_logits(self, batch: dict[str, Any], features: torch.Tensor) -> torch.Tensor:
        # FLOAT_MIN rather than -inf: the entropy's 0 * logit stays 0 instead of NaN
        return self.pi(features).masked_fill(batch[Columns.OBS]["action_mask"] == 0, FLOAT_MIN)


class ModulePolicy:
    """An RLModule acting in the standard loop, ``action = policy.act(obs, info)`` (so
    ``agents.evaluate`` scores it): one observation, batched as RLlib batches them."""

    def __init__(self, module: RLModule):
        self.module = module

    @torch.no_grad()
    def act(self, obs: Any, info: dict | None = None, deterministic: bool = True) -> int:
        batch = {Columns.OBS: _batch_of_one(obs)}
        if deterministic:
            return int(self.module.forward_inference(batch)[Columns.ACTION_DIST_INPUTS][0].argmax())
        logits = self.module.forward_exploration(batch)[Columns.ACTION_DIST_INPUTS][0]
        return int(torch.distributions.Categorical(logits=logits).sample())


def _batch_of_one(obs: Any) -> Any:
    if isinstance(obs, dict):
        return {key: _batch_of_one(value) for key, value in obs.items()}
    return torch.as_tensor(np.asarray(obs))[None]


def module_spec(**model_config: Any) -> RLModuleSpec:
    """An ``RLModuleSpec`` for :class:`TokenPPOModule`; ``model_config`` keys are
    :data:`MODEL_ARGUMENTS` (``embed_dim``, ``encoder``, ``hidden_dim``, ``n_layers``,
    ``n_heads``, ``pointed_tokens``, ``head_dim``)."""
    unknown = sorted(set(model_config) - set(MODEL_ARGUMENTS))
    if unknown:
        raise ValueError(f"unknown TokenPPOModule argument(s) {unknown}; valid: {list(MODEL_ARGUMENTS)}")
    head_dim = model_config.get("head_dim", 128)
    if isinstance(head_dim, (bool, np.bool_)) or not isinstance(head_dim, numbers.Integral) or head_dim < 1:
        raise ValueError(f"head_dim must be a positive int, got {head_dim!r}")
    return RLModuleSpec(module_class=TokenPPOModule, model_config=model_config)


def ppo_config(env_id: str, model_config: dict[str, Any] | None = None, **env_kwargs: Any) -> PPOConfig:
    """A ``PPOConfig`` on ``"textgym:<env_id>"`` made with ``env_kwargs``, with :class:`TokenPPOModule`
    (built with ``model_config``, see :func:`module_spec`). Chain ``.training(...)``,
    ``.env_runners(...)`` and so on as on any ``PPOConfig``. The env is made once here, so
    that a bad ``env_kwargs`` raises now rather than in the env-runner processes."""
    if not isinstance(env_id, str) or env_id.removeprefix(PREFIX) not in ENVS:
        raise ValueError(f"unknown textgym env id {env_id!r}; valid: {list(ENVS)}")
    env_id = env_id.removeprefix(PREFIX)
    make_env(env_id, env_kwargs).close()
    register_envs()  # again: a ray.shutdown() empties the driver's registry
    return (PPOConfig()
            .environment(PREFIX + env_id, env_config=env_kwargs)
            .rl_module(rl_module_spec=module_spec(**(model_config or {}))))


register_envs()
