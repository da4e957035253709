"""textgym environments."""

from textgym.envs.base import TextEnv
from textgym.envs.ner_tag import NERTagEnv
from textgym.envs.token_edit import TokenEditEnv
from textgym.envs.token_gen import TokenGenEnv

__all__ = ["NERTagEnv", "TextEnv", "TokenEditEnv", "TokenGenEnv"]
