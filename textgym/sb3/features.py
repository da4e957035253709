"""A Stable-Baselines3 features extractor that reads textgym observations as tokens.

SB3's ``MultiInputPolicy`` feeds every ``Box`` to an MLP as floats, so token 7 sits next to
token 8 and a position of 2 is "twice" a position of 1. :class:`TokenFeaturesExtractor`
follows textgym's observation convention instead (see ``textgym.envs.base``): keys ending
in ``_ids`` are embedded, ``<stem>_mask`` keys hide the padding of ``<stem>_ids``, and every
other key is a small integer counter (position, cursor, edits) that gets an embedding of
its own. The network is ``textgym.features.TokenEncoder``, shared with ``textgym.rllib``;
:func:`policy_kwargs` wires it into PPO, A2C, DQN or MaskablePPO in one call.
"""

from __future__ import annotations

from typing import Any

from stable_baselines3.common.torch_layers import BaseFeaturesExtractor

# observation_keys is read from here by agents.networks
from textgym.features import (  # noqa: F401
    EXTRACTOR_ARGUMENTS,
    EXTRACTOR_ENCODERS,
    TokenEncoder,
    check_observation_space,
    observation_keys,
)


class TokenFeaturesExtractor(TokenEncoder, BaseFeaturesExtractor):
    """Features of a textgym observation for any SB3 policy: :class:`textgym.features.TokenEncoder`
    (its arguments, encoders and pointed tokens) as an SB3 ``BaseFeaturesExtractor``."""


def policy_kwargs(env: Any, **overrides: Any) -> dict[str, Any]:
    """``policy_kwargs`` for PPO, A2C, DQN or MaskablePPO with ``"MultiInputPolicy"`` on a
    textgym env (a ``gym.Env``, a wrapped env, an SB3 ``VecEnv`` or a Gymnasium vector env).

    ``overrides`` naming an extractor argument (``embed_dim``, ``encoder``, ``hidden_dim``,
    ``n_layers``, ``n_heads``, ``pointed_tokens``) go to :class:`TokenFeaturesExtractor`; any other (``net_arch``,
    ``activation_fn``, ...) goes to the policy itself.
    """
    # a Gymnasium vector env's observation_space is batched; its single_observation_space is not
    observation_space = getattr(env, "single_observation_space", getattr(env, "observation_space", None))
    if observation_space is None:
        raise ValueError(f"expected a gym.Env or VecEnv with an observation_space, got {type(env).__name__}")
    check_observation_space(observation_space)
    extractor_kwargs = {k: overrides.pop(k) for k in EXTRACTOR_ARGUMENTS if k in overrides}
    encoder = extractor_kwargs.get("encoder", "concat")
    if encoder not in EXTRACTOR_ENCODERS:
        raise ValueError(f"unknown encoder {encoder!r}; valid: {list(EXTRACTOR_ENCODERS)}")
    # a list net_arch gives on-policy algorithms separate pi/vf layers and DQN its Q layers
    return {"features_extractor_class": TokenFeaturesExtractor, "features_extractor_kwargs": extractor_kwargs,
            "net_arch": [128], **overrides}
