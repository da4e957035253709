"""Stable-Baselines3 integration: token-aware features for SB3 policies, and an adapter
from textgym's native vector envs to SB3's ``VecEnv``.

Importing this package imports SB3; ``import textgym`` does not.

    from stable_baselines3 import PPO
    from textgym.sb3 import policy_kwargs
    model = PPO("MultiInputPolicy", env, policy_kwargs=policy_kwargs(env))
"""

from textgym.sb3.features import EXTRACTOR_ENCODERS, TokenFeaturesExtractor, policy_kwargs
from textgym.sb3.vec_env import to_sb3_vec_env

__all__ = ["EXTRACTOR_ENCODERS", "TokenFeaturesExtractor", "policy_kwargs", "to_sb3_vec_env"]
