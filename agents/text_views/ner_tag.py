"""NERTag's text view: the model reads the sentence's words through its own tokenizer and a
head scores the tags of the current word."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import gymnasium as gym
import torch
from torch import nn

from agents.text_views.base import TextView, WordPieces, encode, step_pairs

TAG_EMBEDDING_SIZE = 32


@dataclass(frozen=True)
class TaggingReading:
    words: tuple[str, ...]  # the sentence, as the env's info["words"] gives it
    position: int  # the word to tag
    previous_tag: int  # the previous word's tag id + 1; 0 at the first word


@dataclass
class TaggingState:
    words: list[tuple[str, ...]]
    word_states: torch.Tensor  # (N, W, H): the hidden state of each word's first piece


class NERTagView(TextView):
    """Logits of word t's tags = ``Linear([h_t ; e(previous tag)])``, h_t being the hidden
    state of the word's first piece. An encoder reads the sentence once per episode; a
    causal model reads it twice (``words [SEP] words``) and h_t comes from the second copy,
    so that it too has seen the whole sentence. The env's BIO mask applies as usual."""

    def __init__(self, env: gym.Env, tokenizer, causal: bool):
        self.n_actions = int(env.action_space.n)
        self.pieces = WordPieces(tokenizer)
        self.causal = causal
        self.feature_size = 0  # set by heads()

    def heads(self, trunk: nn.Module) -> nn.ModuleDict:
        self.pieces.fit(trunk)
        self.feature_size = trunk.config.hidden_size + TAG_EMBEDDING_SIZE
        return nn.ModuleDict({"previous_tag": nn.Embedding(self.n_actions + 1, TAG_EMBEDDING_SIZE),
                              "tags": nn.Linear(self.feature_size, self.n_actions)})

    def read(self, obs: dict, info: dict) -> TaggingReading:
        if info is None or "words" not in info or "position" not in info:
            raise ValueError("NERTag's LM policy reads the sentence from info['words'] and info['position']; "
                             "pass the info of reset/step")
        position = int(info["position"])
        if "tag_ids" in obs:
            previous = int(obs["tag_ids"][position - 1]) if position else 0
        else:  # window mode
            previous = int(obs["prev_tag_ids"][0])
        return TaggingReading(tuple(info["words"]), position, previous)

    def _word_states(self, trunk: nn.Module, sentences: Sequence[tuple[str, ...]], device) -> torch.Tensor:
        """(B, W, H): the trunk's hidden state at each word's first piece."""
        texts, starts = [], []
        for words in sentences:
            ids, segments = self.pieces.frame([words, words] if self.causal else [words])
            texts.append(ids)
            starts.append(segments[-1][:-1])
        hidden = encode(trunk, texts, self.pieces.pad_id, device)
        index = torch.zeros((len(texts), max(map(len, starts))), dtype=torch.long)
        for row, positions in enumerate(starts):
            index[row, : len(positions)] = torch.tensor(positions)
        return hidden.gather(1, index.to(device)[..., None].expand(-1, -1, hidden.shape[-1]))

    def _features(self, policy, word_states: torch.Tensor, positions: torch.Tensor, previous: torch.Tensor) -> torch.Tensor:
        """Features of the words at ``positions`` (B, T) of each row given the previous tags."""
        h = word_states.gather(1, positions[..., None].expand(-1, -1, word_states.shape[-1]))
        return torch.cat([h, policy.heads["previous_tag"](previous)], -1)

    def start(self, policy, readings: Sequence[TaggingReading]) -> TaggingState:
        words = [r.words for r in readings]
        return TaggingState(words, self._word_states(policy.trunk, words, policy.device))

    def continues(self, state: TaggingState, reading: TaggingReading) -> bool:
        return state.words[0] == reading.words

    def logits(self, policy, state: TaggingState, readings: Sequence[TaggingReading]) -> torch.Tensor:
        device = policy.device
        # a finished sentence's position is past its end; its row is not stepped
        positions = torch.tensor([[min(r.position, len(r.words) - 1)] for r in readings], device=device)
        previous = torch.tensor([[r.previous_tag] for r in readings], device=device)
        return policy.heads["tags"](self._features(policy, state.word_states, positions, previous))[:, 0].float()

    def replay(self, policy, episodes, actions, valid, values=True):
        device = policy.device
        word_states = self._word_states(policy.trunk, [steps[0].words for steps in episodes], device)
        pairs, width = step_pairs(episodes), actions.shape[1]
        positions = torch.zeros((len(episodes), width), dtype=torch.long)
        previous = torch.zeros((len(episodes), width), dtype=torch.long)
        for b, t in pairs:
            positions[b, t], previous[b, t] = episodes[b][t].position, episodes[b][t].previous_tag
        features = self._features(policy, word_states, positions.to(device), previous.to(device))
        logits = policy.heads["tags"](features).float()
        return logits, policy.value_head(features).squeeze(-1).float() if values else None

    def demonstration(self, env: gym.Env, index: int) -> list[list[int]]:
        unwrapped = env.unwrapped
        return [[unwrapped.tag_id(tag) for tag in unwrapped.examples[index].tags]]
