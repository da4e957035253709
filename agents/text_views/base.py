"""What a text view is, and the word-piece reading that the NERTag and TokenEdit views share.

A text view says what an LM policy reads of an env and how the model's outputs map to the
env's actions. The rollout and ``act`` call it the same way:

- ``read(obs, info)``: the text of one env state, as a small immutable *reading*, and
  ``read_rows(step, rows)`` the readings of rows of a batched env step;
- ``start(policy, readings)``: an acting state for one episode per row (caches: encodings,
  a KV cache), and ``continues(state, reading)``: whether ``act`` may keep using it;
- ``logits(policy, state, readings)``: (N, A) action logits for the rows' current readings,
  reusing what the state has already encoded;
- ``replay(policy, episodes, actions, valid, values)``: (B, T, A) logits and (B, T) values
  for whole episodes at once, with gradients: what PPO and the warm start train on. It
  gives the same logits as ``logits`` did step by step (tests check it);
- ``demonstration(env, index)``: the actions of a supervised target for example ``index``
  (gold tags, the oracle's edits, a reference's tokens), for the warm start.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from typing import Any

import gymnasium as gym
import torch
from torch import nn

from agents.env_batch import BatchStep


class TextView(ABC):
    n_actions: int
    feature_size: int  # what the value head reads
    needs_lm_head: bool = False  # True: the trunk is a causal LM whose LM head scores the actions

    @abstractmethod
    def heads(self, trunk: nn.Module) -> nn.ModuleDict:
        """The view's action heads for ``trunk`` (and sets ``feature_size``)."""

    @abstractmethod
    def read(self, obs: dict, info: dict) -> Any: ...

    def read_rows(self, step: BatchStep, rows: Iterable[int]) -> list[Any]:
        """The readings of envs ``rows`` of a batched reset or step."""
        return [self.read(step.row(i), step.info(i)) for i in rows]

    @abstractmethod
    def start(self, policy: Any, readings: Sequence[Any]) -> Any: ...

    @abstractmethod
    def continues(self, state: Any, reading: Any) -> bool: ...

    @abstractmethod
    def logits(self, policy: Any, state: Any, readings: Sequence[Any]) -> torch.Tensor: ...

    @abstractmethod
    def replay(self, policy: Any, episodes: Sequence[Sequence[Any]], actions: torch.Tensor, valid: torch.Tensor,
               values: bool = True) -> tuple[torch.Tensor, torch.Tensor | None]: ...

    @abstractmethod
    def demonstration(self, env: gym.Env, index: int) -> list[list[int]]: ...


class WordPieces:
    """Words as the model's tokenizer splits them (each word on its own, after a space, as
    ``is_split_into_words=True`` does), memoised, and texts framed with the model's special
    tokens: ``[CLS] segment [SEP] segment [SEP]`` for an encoder (BOS / EOS for a decoder)."""

    def __init__(self, tokenizer: Any, max_length: int | None = None):
        self.tokenizer = tokenizer
        first = tokenizer.cls_token_id if tokenizer.cls_token_id is not None else tokenizer.bos_token_id
        self.start_ids = [] if first is None else [first]
        sep = tokenizer.sep_token_id if tokenizer.sep_token_id is not None else tokenizer.eos_token_id
        if sep is None:
            raise ValueError(f"the tokenizer {type(tokenizer).__name__} has no sep_token or eos_token to separate texts")
        self.sep_id = sep
        pad = tokenizer.pad_token_id
        self.pad_id = pad if pad is not None else sep
        self.unk_id = tokenizer.unk_token_id if tokenizer.unk_token_id is not None else sep
        limit = getattr(tokenizer, "model_max_length", None)
        self.max_length = max_length or (limit if isinstance(limit, int) and limit < 100_000 else 512)
        self._pieces: dict[str, list[int]] = {}

    def fit(self, trunk: nn.Module) -> None:
        """Cap ``max_length`` at the positions ``trunk`` has learned, so that a longer text is
        a clear error rather than an index error inside the model."""
        positions = getattr(trunk.config, "max_position_embeddings", None)
        if isinstance(positions, int):
            self.max_length = min(self.max_length, positions)

    def ids(self, word: str) -> list[int]:
        pieces = self._pieces.get(word)
        if pieces is None:
            pieces = self.tokenizer(" " + word, add_special_tokens=False)["input_ids"] or [self.unk_id]
            self._pieces[word] = pieces
        return pieces

    def frame(self, segments: Sequence[Sequence[str]]) -> tuple[list[int], list[list[int]]]:
        """The ids of the segments joined by separators, and for each segment the position of
        each word's first piece, plus the position of the separator that ends the segment."""
        ids, starts = list(self.start_ids), []
        for words in segments:
            positions = []
            for word in words:
                positions.append(len(ids))
                ids.extend(self.ids(word))
            positions.append(len(ids))
            ids.append(self.sep_id)
            starts.append(positions)
        if len(ids) > self.max_length:
            raise ValueError(f"a text of {len(ids)} model tokens is longer than the model's {self.max_length}")
        return ids, starts


def encode(trunk: nn.Module, texts: Sequence[Sequence[int]], pad_id: int, device: torch.device) -> torch.Tensor:
    """(B, L, H) last hidden states of right-padded token id lists."""
    width = max(map(len, texts))
    ids = torch.full((len(texts), width), pad_id, dtype=torch.long)
    attention = torch.zeros((len(texts), width), dtype=torch.long)
    for row, text in enumerate(texts):
        ids[row, : len(text)] = torch.tensor(text)
        attention[row, : len(text)] = 1
    return trunk(input_ids=ids.to(device), attention_mask=attention.to(device)).last_hidden_state.float()


def step_pairs(episodes: Sequence[Sequence[Any]]) -> list[tuple[int, int]]:
    """(episode, step) of every step."""
    return [(b, t) for b, steps in enumerate(episodes) for t in range(len(steps))]
