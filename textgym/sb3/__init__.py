"""Stable-Baselines3 integration. Importing this package needs stable-baselines3;
``import textgym`` does not import it."""

from textgym.sb3.vec_env import to_sb3_vec_env

__all__ = ["to_sb3_vec_env"]
