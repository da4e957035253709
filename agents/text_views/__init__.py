"""Text views: what an LM policy reads of each env, and how its outputs map to the env's
actions (see :mod:`agents.text_views.base`)."""

from __future__ import annotations

from typing import Any

import gymnasium as gym

from agents.text_views.base import TextView
from agents.text_views.ner_tag import NERTagView
from agents.text_views.token_edit import CompressView, TokenEditView
from agents.text_views.token_gen import TokenGenView

__all__ = ["CompressView", "NERTagView", "TextView", "TokenEditView", "TokenGenView", "text_view", "view_class"]


def view_class(env: gym.Env) -> type[TextView]:
    """The view class of ``env`` (TokenGen, NERTag or TokenEdit, wrapped or not; TokenEdit in
    compress mode has its own); a ValueError names any other env."""
    from textgym.envs.ner_tag import NERTagEnv
    from textgym.envs.token_edit import TokenEditEnv
    from textgym.envs.token_gen import TokenGenEnv

    views = {TokenGenEnv: TokenGenView, NERTagEnv: NERTagView, TokenEditEnv: TokenEditView}
    for env_class, view in views.items():
        if isinstance(env.unwrapped, env_class):
            return CompressView if view is TokenEditView and env.unwrapped.mode == "compress" else view
    raise ValueError(f"LM policies run on TokenGen, NERTag and TokenEdit envs, not {type(env.unwrapped).__name__}")


def text_view(env: gym.Env, tokenizer: Any = None, causal: bool = False) -> TextView:
    """The view of ``env`` (see :func:`view_class`). NERTag and TokenEdit are read through
    ``tokenizer``; ``causal`` says whether the model is a decoder."""
    view = view_class(env)
    return TokenGenView(env) if view is TokenGenView else view(env, tokenizer, causal)
