"""Text views: what an LM policy reads of each env, and how its outputs map to the env's
actions (see :mod:`agents.text_views.base`)."""

from __future__ import annotations

from typing import Any

import gymnasium as gym

from agents.text_views.base import TextView
from agents.text_views.ner_tag import NERTagView
from agents.text_views.token_edit import TokenEditView
from agents.text_views.token_gen import TokenGenView

__all__ = ["NERTagView", "TextView", "TokenEditView", "TokenGenView", "text_view"]


def text_view(env: gym.Env, tokenizer: Any = None, causal: bool = False) -> TextView:
    """The view of ``env`` (TokenGen, NERTag or TokenEdit, wrapped or not). NERTag and
    TokenEdit are read through ``tokenizer``; ``causal`` says whether the model is a decoder."""
    from textgym.envs.ner_tag import NERTagEnv
    from textgym.envs.token_edit import TokenEditEnv
    from textgym.envs.token_gen import TokenGenEnv

    unwrapped = env.unwrapped
    if isinstance(unwrapped, TokenGenEnv):
        return TokenGenView(env)
    if isinstance(unwrapped, NERTagEnv):
        return NERTagView(env, tokenizer, causal)
    if isinstance(unwrapped, TokenEditEnv):
        return TokenEditView(env, tokenizer, causal)
    raise ValueError(f"LM policies run on TokenGen, NERTag and TokenEdit envs, not {type(unwrapped).__name__}")
