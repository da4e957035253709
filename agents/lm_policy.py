"""The LM policy of :class:`agents.LMPPOAgent`: a transformers model (its trunk), the
action heads that its env's text view adds, and a value head. The frozen reference of
PPO's KL penalty is a copy of the whole policy, heads included."""

from __future__ import annotations

import copy
import os
from typing import Any

import torch
from torch import nn


class LMPolicy(nn.Module):
    """``trunk``: a transformers model (a causal LM whose LM head scores TokenGen's tokens,
    or an encoder / decoder trunk whose hidden states a view's ``heads`` turn into action
    logits); ``value_head``: features -> V(s), zero at the start; ``value_trunk``: an own copy
    of the trunk for the value head (``value_model="separate"``), else None. ``tokenizer`` is
    the model's tokenizer (None when the env's vocabulary is the model's, as in TokenGen)."""

    def __init__(self, trunk: nn.Module, heads: nn.ModuleDict, feature_size: int, tokenizer: Any = None,
                 separate_value_trunk: bool = False):
        super().__init__()
        self.trunk, self.heads = trunk, heads
        self.value_trunk = copy.deepcopy(trunk) if separate_value_trunk else None
        self.value_head = nn.Linear(feature_size, 1)
        nn.init.zeros_(self.value_head.weight)
        nn.init.zeros_(self.value_head.bias)
        self.tokenizer = tokenizer

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    def frozen(self, device: torch.device | None = None, dtype: torch.dtype | None = None) -> LMPolicy:
        """A copy that does not learn (the reference, or a lagged mask model)."""
        copied = copy.deepcopy(self, memo={id(self.tokenizer): self.tokenizer})
        copied.value_trunk = None  # a frozen copy scores actions; it never needs a critic
        copied = copied.to(device or self.device, dtype).eval()
        copied.requires_grad_(False)
        return copied

    def modules_to_save(self) -> dict[str, nn.Module]:
        modules = {"trunk": self.trunk, "heads": self.heads, "value_head": self.value_head}
        if self.value_trunk is not None:
            modules["value_trunk"] = self.value_trunk
        return modules


def build_policy(env: Any, model: Any = None, tokenizer: Any = None, separate_value_trunk: bool = False) -> tuple[Any, LMPolicy]:
    """The text view of ``env`` and a policy over it.

    ``model``: None (an offline tiny model: a GPT-2 over TokenGen's vocabulary, else a BERT
    with a word-piece tokenizer trained on the task's text), a shortcut (``"minilm"``,
    ``"smollm2"``) or local transformers directory, or a model object (then give its
    ``tokenizer`` too, except on TokenGen, whose env vocabulary is the model's)."""
    from agents.lm import is_causal, load_causal_lm, load_text_model, tiny_causal_lm, tiny_text_model, word_piece_tokenizer
    from agents.text_views import TokenGenView, text_view, view_class

    # an env that no view reads fails here, before a tokenizer is trained on its text
    view = text_view(env) if view_class(env) is TokenGenView else None
    if view is not None:  # TokenGen: the causal LM's own head scores the env's tokens
        if model is None:
            model = tiny_causal_lm(env.unwrapped.vocab)
        elif isinstance(model, (str, os.PathLike)):
            model, _ = load_causal_lm(model)
        if not hasattr(model, "get_output_embeddings") or model.get_output_embeddings() is None:
            raise ValueError(f"TokenGen needs a causal LM with an LM head (AutoModelForCausalLM), got {type(model).__name__}")
        assert isinstance(view, TokenGenView)
        view.check_model(model)
        trunk = model
    else:
        if model is None:
            tokenizer = tokenizer if tokenizer is not None else word_piece_tokenizer(task_texts(env))
            trunk = tiny_text_model(tokenizer)
        elif isinstance(model, (str, os.PathLike)):
            trunk, loaded = load_text_model(model)
            tokenizer = tokenizer if tokenizer is not None else loaded
        else:
            if tokenizer is None:
                raise ValueError("a model object needs its tokenizer too: LMPPOAgent(env, model=model, tokenizer=tokenizer)")
            trunk = model.base_model  # hidden states: an LM head, if any, is not used
        if getattr(trunk, "pooler", None) is not None:
            # the views read hidden states, never BERT's pooler: dropping it keeps it out of the
            # checkpoint, so that load's model from config (pooler or not) matches what was saved
            trunk.pooler = None
        view = text_view(env, tokenizer, causal=is_causal(trunk))
    heads = view.heads(trunk)
    policy = LMPolicy(trunk, heads, view.feature_size, None if view.needs_lm_head else tokenizer, separate_value_trunk)
    return view, policy


def task_texts(env: Any) -> list[str]:
    """Every prompt and reference of the env's task: what a tiny model's tokenizer learns from."""
    return [text for example in env.unwrapped.task.examples()
            for text in (example.prompt, *getattr(example, "references", ()))]
