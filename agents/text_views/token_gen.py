"""TokenGen's text view: the causal LM reads ``prompt, BOS, output so far`` in the env's
vocabulary (the model's own tokenizer), and its LM head scores the next token: the model's
vocabulary is the action space. A static KV cache, preallocated for the task's longest
context (prompt, BOS) plus ``max_new_tokens``, makes each step one incremental pass that
writes one column in place: no concatenation or reallocation, and the same shapes at
every one-token step, so that ``torch.compile`` compiles it once. Compiled, the first pass
(the prompts) is padded to the longest context too, so it also keeps one shape."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from torch import nn

from agents.env_batch import BatchStep
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
    cache: Any  # a transformers StaticCache, one row per reading, ``attention.shape[1]`` columns
    tokens: list[list[int]]  # what each row of the cache holds
    attention: torch.Tensor  # (N, L): 1 on the columns a row attends to; 0 for left padding, steps a row sat out
    filled: int  # the columns of the cache written so far
    positions: torch.Tensor  # (N, 1): the position of each row's last token
    logits: torch.Tensor | None = None  # (N, V) after the last token


def position_ids(attention_mask: torch.Tensor) -> torch.Tensor:
    """Positions that skip left padding, so a padded row sees the same positions as alone."""
    return (attention_mask.cumsum(-1) - 1).clamp(min=0)


class TokenGenView(TextView):
    needs_lm_head = True

    def __init__(self, env: gym.Env, compile_decode: bool = False):
        """``compile_decode``: run the rollout's passes (the prompts, then one token a step)
        through ``torch.compile`` of the model: two graphs per model and batch size, compiled
        at the first rollout."""
        missing = [k for k in OBSERVATION_KEYS if k not in getattr(env.observation_space, "spaces", {})]
        if missing:
            raise ValueError(f"a TokenGen view needs a TokenGen-style observation; {env.observation_space} lacks {missing}")
        self.vocab = env.unwrapped.vocab
        self.n_actions = int(env.action_space.n)
        self.max_new_tokens = int(env.observation_space["output_ids"].shape[0])
        # every cache has the columns of the longest context (prompt, BOS) and the longest
        # output, so that the shapes of the one-token steps never change
        self.columns = int(env.observation_space["prompt_ids"].shape[0]) + 1 + self.max_new_tokens
        self.feature_size = 0
        self.compile_decode = compile_decode
        self._compiled: dict[nn.Module, Any] = {}  # model -> its compiled forward

    def heads(self, trunk: nn.Module) -> nn.ModuleDict:
        self.feature_size = trunk.config.hidden_size  # the value head reads the LM's last hidden state
        return nn.ModuleDict()

    def check_model(self, model: Any) -> None:
        check_vocab_size(model, self.n_actions)

    def read(self, obs: dict, info: dict | None) -> WritingReading:
        return self._reading(obs["prompt_ids"].tolist(), obs["prompt_mask"].tolist(), obs["output_ids"], obs["position"][0])

    def read_rows(self, step: BatchStep, rows: Iterable[int]) -> list[WritingReading]:
        """``read`` of each row (a TokenGen reading needs no info), the rows' prompts turned
        into lists at once."""
        rows, obs = list(rows), step.obs
        prompts = zip(rows, obs["prompt_ids"][rows].tolist(), obs["prompt_mask"][rows].tolist())
        return [self._reading(ids, mask, obs["output_ids"][i], obs["position"][i, 0]) for i, ids, mask in prompts]

    def _reading(self, prompt_ids: list[int], prompt_mask: list[int], output_ids: np.ndarray, position: Any) -> WritingReading:
        prompt = [token for token, on in zip(prompt_ids, prompt_mask) if on == 1]
        return WritingReading(tuple(prompt_context(prompt, self.vocab)), output_ids, int(position))

    def start(self, policy, readings: Sequence[WritingReading]) -> WritingState:
        from transformers import StaticCache

        n, columns = len(readings), self.columns
        return WritingState(StaticCache(config=policy.trunk.config, max_cache_len=columns), [[] for _ in range(n)],
                            torch.zeros((n, columns), dtype=torch.long, device=policy.device), 0,
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
        start = state.filled  # the cache column of this pass's first token
        if start == 0 and self.compile_decode:  # the longest context any task example has: one shape to compile
            width = self.columns - self.max_new_tokens
        if width > 1 and len(readings) > 1 and any(state.tokens):
            raise ValueError("a batched step feeds at most one new token per row")
        if start + width > state.attention.shape[1]:
            raise ValueError(f"the cache holds {state.attention.shape[1]} columns and is full: an episode of TokenGen "
                             f"writes at most max_new_tokens={self.max_new_tokens} tokens")
        # left padding: every row's next token is at the end
        ids = torch.tensor([[self.vocab.pad_id] * (width - len(tokens)) + tokens for tokens in new])
        attention = torch.tensor([[0] * (width - len(tokens)) + [1] * len(tokens) for tokens in new], device=device)
        state.attention[:, start: start + width] = attention
        state.filled += width
        positions = (state.positions + attention.cumsum(-1)).clamp(min=0)
        model, mask = policy.trunk, state.attention
        if start == 0 or width == 1:
            model = self._decoder(model)
        if policy.trunk.config._attn_implementation == "sdpa":
            # what transformers would build (causal, padding) in a few ops: query i is column
            # start + i. A left-padding query also sees itself, so that no row of scores is
            # all -inf: some torch versions' sdpa returns NaN there, which the pad's keys and
            # values would carry into later layers (masked, but 0 * NaN is NaN)
            columns, queries = torch.arange(mask.shape[1], device=device), torch.arange(start, start + width, device=device)
            mask = (columns <= queries[:, None]) & (mask.bool()[:, None, None, :] | (columns == queries[:, None]))
        out = model(input_ids=ids.to(device), attention_mask=mask, position_ids=positions, cache=state.cache,
                    use_cache=True, logits_to_keep=1)
        state.positions = positions[:, -1:]
        for held, tokens in zip(state.tokens, new):
            held.extend(tokens)
        state.logits = out.logits[:, -1].float()
        return state.logits

    def _decoder(self, trunk: nn.Module) -> Any:
        """``trunk``, or its compiled version with ``compile_decode``."""
        if not self.compile_decode:
            return trunk
        if trunk not in self._compiled:
            self._compiled[trunk] = torch.compile(trunk, dynamic=False)
        return self._compiled[trunk]

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
