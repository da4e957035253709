"""TokenEdit's text views: the model reads the text through its own tokenizer, and heads at
the cursor score the actions. In edit mode it reads the source and the current text and
scores keep, delete, stop and the replace / insert candidates; in compress mode it reads
the source once per episode and scores keep, delete and stop."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import gymnasium as gym
import torch
from torch import nn

from agents.text_views.base import TextView, WordPieces, encode, step_pairs


@dataclass(frozen=True)
class EditingReading:
    source: tuple[str, ...]
    current: tuple[str, ...]
    cursor: int  # index into current; len(current) is the end slot

    @property
    def text(self) -> tuple[tuple[str, ...], tuple[str, ...]]:
        return self.source, self.current


@dataclass
class EditingState:
    texts: list[tuple | None]  # the text each row's encoding is of
    hidden: list[torch.Tensor | None]  # per row: (L, H) hidden states of that text
    cursor_columns: list[list[int]]  # per row: the column of each current word, then of the end slot
    candidates: torch.Tensor | None  # (K, E) candidate embeddings; None in mode="compress"


class TokenEditView(TextView):
    """The model reads ``[CLS] source [SEP] current [SEP]``; h is the hidden state at the
    cursor (the first piece of the word under it, or the final separator at the end slot).
    Logits: ``[W_op h ; (W_replace h) C^T ; (W_insert h) C^T]``, C holding each candidate
    token's mean input embedding, so that candidates are scored by what they spell. A text
    is encoded once and reused while the cursor moves over it (keep); an edit re-encodes."""

    def __init__(self, env: gym.Env, tokenizer, causal: bool):
        unwrapped = env.unwrapped
        self.env = unwrapped
        self.n_actions = int(env.action_space.n)
        self.pieces = WordPieces(tokenizer)
        self.causal = causal
        self.feature_size = 0
        self._words: dict[int, str] = {}
        candidate_words = [self._word(int(token)) for token in unwrapped.candidates]
        self.candidate_pieces = [self.pieces.ids(word) for word in candidate_words]
        self.n_fixed = self.n_actions - 2 * len(candidate_words)

    def _word(self, token: int) -> str:
        word = self._words.get(token)
        if word is None:
            word = self._words[token] = self.env.decoded_word(token)
        return word

    def heads(self, trunk: nn.Module) -> nn.ModuleDict:
        self.pieces.fit(trunk)
        hidden_size = self.feature_size = trunk.config.hidden_size
        heads = nn.ModuleDict({"ops": nn.Linear(hidden_size, self.n_fixed)})
        if self.candidate_pieces:
            embedding_size = trunk.get_input_embeddings().weight.shape[1]
            heads["replace"] = nn.Linear(hidden_size, embedding_size, bias=False)
            heads["insert"] = nn.Linear(hidden_size, embedding_size, bias=False)
        return heads

    def read(self, obs: dict, info: dict | None) -> EditingReading:
        source = obs["source_ids"][obs["source_mask"] == 1].tolist()
        current = obs["current_ids"][obs["current_mask"] == 1].tolist()
        return EditingReading(tuple(map(self._word, source)), tuple(map(self._word, current)), int(obs["cursor"][0]))

    def _encode(self, trunk, texts: Sequence[tuple], device) -> tuple[torch.Tensor, list[list[int]]]:
        framed = [self.pieces.frame([source, current]) for source, current in texts]
        hidden = encode(trunk, [ids for ids, _ in framed], self.pieces.pad_id, device)
        return hidden, [segments[1] for _, segments in framed]

    def _candidates(self, policy) -> torch.Tensor | None:
        if not self.candidate_pieces:
            return None
        embeddings = policy.trunk.get_input_embeddings().weight
        width = max(map(len, self.candidate_pieces))
        index = torch.zeros((len(self.candidate_pieces), width), dtype=torch.long)
        weight = torch.zeros((len(self.candidate_pieces), width))
        for row, pieces in enumerate(self.candidate_pieces):
            index[row, : len(pieces)] = torch.tensor(pieces)
            weight[row, : len(pieces)] = 1 / len(pieces)
        index, weight = index.to(embeddings.device), weight.to(embeddings.device)
        return (embeddings[index].float() * weight[..., None]).sum(1)

    def _scores(self, policy, h: torch.Tensor, candidates: torch.Tensor | None) -> torch.Tensor:
        parts = [policy.heads["ops"](h)]
        if candidates is not None:
            parts += [policy.heads["replace"](h) @ candidates.T, policy.heads["insert"](h) @ candidates.T]
        return torch.cat(parts, -1).float()

    def start(self, policy, readings: Sequence[EditingReading]) -> EditingState:
        n = len(readings)
        return EditingState([None] * n, [None] * n, [[] for _ in range(n)], self._candidates(policy))

    def continues(self, state: EditingState, reading: EditingReading) -> bool:
        return True  # the state re-encodes whatever text it has not seen

    def logits(self, policy, state: EditingState, readings: Sequence[EditingReading]) -> torch.Tensor:
        stale = [row for row, r in enumerate(readings) if state.texts[row] != r.text]
        if stale:
            hidden, columns = self._encode(policy.trunk, [readings[row].text for row in stale], policy.device)
            for i, row in enumerate(stale):
                state.texts[row], state.hidden[row], state.cursor_columns[row] = readings[row].text, hidden[i], columns[i]
        h = torch.stack([state.hidden[row][state.cursor_columns[row][min(r.cursor, len(r.current))]]
                         for row, r in enumerate(readings)])
        return self._scores(policy, h, state.candidates)

    def replay(self, policy, episodes, actions, valid, values=True):
        device = policy.device
        pairs, width = step_pairs(episodes), actions.shape[1]
        texts = list(dict.fromkeys(episodes[b][t].text for b, t in pairs))  # each distinct text once
        hidden, columns = self._encode(policy.trunk, texts, device)
        text_index = {text: i for i, text in enumerate(texts)}
        rows = torch.zeros((len(episodes), width), dtype=torch.long)
        cols = torch.zeros((len(episodes), width), dtype=torch.long)
        for b, t in pairs:
            reading = episodes[b][t]
            i = text_index[reading.text]
            rows[b, t], cols[b, t] = i, columns[i][min(reading.cursor, len(reading.current))]
        h = hidden[rows.to(device), cols.to(device)]
        logits = self._scores(policy, h, self._candidates(policy))
        return logits, policy.value_head(h).squeeze(-1).float() if values else None

    def demonstration(self, env: gym.Env, index: int) -> list[list[int]]:
        """The oracle's edits to each reference the env's action space can reach."""
        from textgym.envs.token_edit import oracle_actions

        unwrapped = env.unwrapped
        example, vocab = unwrapped.examples[index], unwrapped.vocab
        source = vocab.encode(example.prompt)
        demonstrations = []
        for reference in example.references:
            try:
                demonstrations.append(oracle_actions(source, vocab.encode(reference), env))
            except ValueError:  # compress mode and a reference that is not a subsequence, say
                continue
        return demonstrations


COMPRESSION_FEATURES = 5  # see CompressView.features


class CompressView(TokenEditView):
    """Compress mode (keep, delete, stop), SCRL's keep/delete labelling made sequential: the
    model reads ``[CLS] source [SEP]`` once per episode (a causal model reads ``source [SEP]
    source`` and h comes from the second copy, so that it has seen the whole sentence), and
    ``Linear([h ; f])`` scores the actions, h being the hidden state of the source word under
    the cursor (the final separator at the end) and f the edits so far (:meth:`features`).
    Deletes leave the encoding valid: the current text is the source minus the deleted words,
    and the cursor's word in the source is ``cursor + deletes``."""

    def heads(self, trunk: nn.Module) -> nn.ModuleDict:
        self.pieces.fit(trunk)
        self.feature_size = trunk.config.hidden_size + COMPRESSION_FEATURES
        return nn.ModuleDict({"ops": nn.Linear(self.feature_size, self.n_fixed)})

    @staticmethod
    def position(reading: EditingReading) -> int:
        """The index in the source of the word under the cursor (its length at the end slot)."""
        return reading.cursor + len(reading.source) - len(reading.current)

    @classmethod
    def features(cls, reading: EditingReading) -> list[float]:
        """The kept fraction of the words passed (1 before the first), the fraction of the
        source passed, the deleted fraction of the source, whether the word before the cursor
        was kept (its word and the source's agree), and whether the cursor is on the first word:
        what a length target needs, which the source's encoding cannot show."""
        n, position, cursor = len(reading.source), cls.position(reading), reading.cursor
        last_kept = cursor > 0 and reading.current[cursor - 1] == reading.source[position - 1]
        return [cursor / position if position else 1.0, position / max(n, 1), (position - cursor) / max(n, 1),
                float(last_kept), float(position == 0)]

    def _encode_sources(self, trunk, sources: Sequence[tuple[str, ...]], device) -> tuple[torch.Tensor, list[list[int]]]:
        framed = [self.pieces.frame([source, source] if self.causal else [source]) for source in sources]
        hidden = encode(trunk, [ids for ids, _ in framed], self.pieces.pad_id, device)
        return hidden, [segments[-1] for _, segments in framed]

    def _scores_and_values(self, policy, h: torch.Tensor, readings: Sequence[EditingReading], shape: tuple,
                           values: bool) -> tuple[torch.Tensor, torch.Tensor | None]:
        f = torch.tensor([self.features(r) for r in readings], device=h.device).reshape(*shape, COMPRESSION_FEATURES)
        x = torch.cat([h, f.to(h.dtype)], -1)
        return policy.heads["ops"](x).float(), policy.value_head(x).squeeze(-1).float() if values else None

    def start(self, policy, readings: Sequence[EditingReading]) -> EditingState:
        sources = [r.source for r in readings]
        hidden, columns = self._encode_sources(policy.trunk, sources, policy.device)
        return EditingState(sources, list(hidden), columns, None)

    def continues(self, state: EditingState, reading: EditingReading) -> bool:
        return state.texts[0] == reading.source

    def logits(self, policy, state: EditingState, readings: Sequence[EditingReading]) -> torch.Tensor:
        h = torch.stack([state.hidden[row][state.cursor_columns[row][min(self.position(r), len(r.source))]]
                         for row, r in enumerate(readings)])
        return self._scores_and_values(policy, h, readings, (len(readings),), values=False)[0]

    def replay(self, policy, episodes, actions, valid, values=True):
        pairs, width = step_pairs(episodes), actions.shape[1]
        hidden, columns = self._encode_sources(policy.trunk, [steps[0].source for steps in episodes], policy.device)
        cols = torch.zeros((len(episodes), width), dtype=torch.long)
        readings = [episodes[0][0]] * (len(episodes) * width)  # padding steps read the first step; they are masked
        for b, t in pairs:
            reading = readings[b * width + t] = episodes[b][t]
            cols[b, t] = columns[b][min(self.position(reading), len(reading.source))]
        h = hidden.gather(1, cols.to(hidden.device)[..., None].expand(-1, -1, hidden.shape[-1]))
        return self._scores_and_values(policy, h, readings, (len(episodes), width), values)
