"""textgym environments."""

from textgym.envs.base import TextEnv
from textgym.envs.ner_tag import NERTagEnv
from textgym.envs.token_gen import TokenGenEnv

__all__ = ["NERTagEnv", "TextEnv", "TokenGenEnv"]
