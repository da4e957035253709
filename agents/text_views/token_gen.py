"""TokenGen's text view: the causal LM reads ``prompt, BOS, output so far`` in the env's
vocabulary (the model's own tokenizer), and its LM head scores the next token: the model's
vocabulary is the action space. A KV cache per row makes each step one incremental pass."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from torch import nn

from agents.lm import check_vocab_size, prompt_context
from agents.text_views.base import TextView

OBSERVATION_KEYS = ("prompt_ids", "prompt_mask", "output_ids", "position")


@dataclass(frozen=True, eq=False)
class WritingReading:
    context: tuple[int, ...]  # prompt, then BOS
    output_ids: np.ndarray  # the observation's output array (not copied)
    length: int  # tokens written so far

    def tokens(self) -> list[int]:
        return [*self.context, *self.output_ids[: self.length].tolist()]

    def written_since(self, n_tokens: int) -> list[int]:
        """The tokens after the first ``n_tokens`` (at least the context): only the new ones
        are copied, so that a step costs the same at any output length."""
        return self.output_ids[n_tokens - len(self.context): self.length].tolist()


@dataclass
class WritingState:
    cache: Any  # a transformers DynamicCache, one row per reading
    tokens: list[list[int]]  # what each row of the cache holds
    attention: torch.Tensor  # (N, L): 0 for left padding and for steps a row sat out
    positions: torch.Tensor  # (N, 1): the position of each row's last token
    logits: torch.Tensor | None = None  # (N, V) after the last token


def new_cache(model: Any) -> Any:
    """An empty KV cache, filled in place by ``model(..., cache=cache, use_cache=True)``."""
    from transformers import DynamicCache

    return DynamicCache(config=model.config)


def position_ids(attention_mask: torch.Tensor) -> torch.Tensor:
    """Positions that skip left padding, so a padded row sees the same positions as alone."""
    return (attention_mask.cumsum(-1) - 1).clamp(min=0)


class TokenGenView(TextView):
    needs_lm_head = True

    def __init__(self, env: gym.Env):
        missing = [k for k in OBSERVATION_KEYS if k not in getattr(env.observation_space, "spaces", {})]
        if missing:
            raise ValueError(f"a TokenGen view needs a TokenGen-style observation; {env.observation_space} lacks {missing}")
        self.vocab = env.unwrapped.vocab
        self.n_actions = int(env.action_space.n)
        self.feature_size = 0

    def heads(self, trunk: nn.Module) -> nn.ModuleDict:
        self.feature_size = trunk.config.hidden_size  # the value head reads the LM's last hidden state
        return nn.ModuleDict()

    def check_model(self, model: Any) -> None:
        check_vocab_size(model, self.n_actions)

    def read(self, obs: dict, info: dict | None) -> WritingReading:
        prompt = obs["prompt_ids"][obs["prompt_mask"] == 1]
        return WritingReading(tuple(prompt_context(prompt, self.vocab)), obs["output_ids"], int(obs["position"][0]))

    def start(self, policy, readings: Sequence[WritingReading]) -> WritingState:
        n = len(readings)
        return WritingState(new_cache(policy.trunk), [[] for _ in range(n)],
                            torch.zeros((n, 0), dtype=torch.long, device=policy.device),
                            torch.full((n, 1), -1, dtype=torch.long, device=policy.device))

    def continues(self, state: WritingState, reading: WritingReading) -> bool:
        held = state.tokens[0]
        return reading.tokens()[: len(held)] == held

    def logits(self, policy, state: WritingState, readings: Sequence[WritingReading]) -> torch.Tensor:
        """Feeds each row's tokens that the cache lacks: the whole left-padded context at the
        first call, then one token per row (a pad that is not attended for a row with none)."""
        device = policy.device
        new = [r.written_since(len(held)) if held else r.tokens() for r, held in zip(readings, state.tokens)]
        width = max(map(len, new))
        if width == 0:
            return state.logits
        if width > 1 and len(readings) > 1 and any(state.tokens):
            raise ValueError("a batched step feeds at most one new token per row")
        ids = torch.full((len(new), width), self.vocab.pad_id, dtype=torch.long)
        attention = torch.zeros((len(new), width), dtype=torch.long)
        for row, tokens in enumerate(new):  # left padding: every row's next token is at the end
            if tokens:
                ids[row, width - len(tokens):] = torch.tensor(tokens)
                attention[row, width - len(tokens):] = 1
        state.attention = torch.cat([state.attention, attention.to(device)], 1)
        positions = state.positions + attention.to(device).cumsum(-1)
        positions = positions.clamp(min=0)
        out = policy.trunk(input_ids=ids.to(device), attention_mask=state.attention, position_ids=positions,
                           cache=state.cache, use_cache=True)
        state.positions = positions[:, -1:]
        for held, tokens in zip(state.tokens, new):
            held.extend(tokens)
        state.logits = out.logits[:, -1].float()
        return state.logits

    def replay(self, policy, episodes, actions, valid, values=True):
        """One forward pass over ``context, actions`` per episode; step t is predicted at
        column ``C - 1 + t`` (C: the longest context, contexts left-padded)."""
        device = policy.device
        contexts = [steps[0].context for steps in episodes]
        width = max(map(len, contexts))
        context_ids = torch.full((len(contexts), width), self.vocab.pad_id, dtype=torch.long)
        context_mask = torch.zeros((len(contexts), width), dtype=torch.long)
        for row, context in enumerate(contexts):
            context_ids[row, width - len(context):] = torch.tensor(context)
            context_mask[row, width - len(context):] = 1
        ids = torch.cat([context_ids, actions.cpu().where(valid.cpu(), self.vocab.pad_id)], 1).to(device)
        attention = torch.cat([context_mask, valid.cpu().long()], 1).to(device)
        columns = slice(width - 1, width - 1 + actions.shape[1])
        positions = position_ids(attention)
        separate = values and policy.value_trunk is not None
        out = policy.trunk(input_ids=ids, attention_mask=attention, position_ids=positions,
                           output_hidden_states=values and not separate)
        if not values:
            return out.logits[:, columns].float(), None
        trunk = policy.value_trunk(input_ids=ids, attention_mask=attention, position_ids=positions,
                                   output_hidden_states=True) if separate else out
        value = policy.value_head(trunk.hidden_states[-1][:, columns].float()).squeeze(-1)
        return out.logits[:, columns].float(), value

    def demonstration(self, env: gym.Env, index: int) -> list[list[int]]:
        vocab, example = self.vocab, env.unwrapped.examples[index]
        return [vocab.encode(reference) + [vocab.eos_id] for reference in example.references]
