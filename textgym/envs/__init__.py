"""textgym environments."""

from textgym.envs.base import TextEnv
from textgym.envs.token_gen import TokenGenEnv

__all__ = ["TextEnv", "TokenGenEnv"]
