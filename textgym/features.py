"""Token features of textgym observations, in plain torch: the encoder that the SB3 and
RLlib integrations share (``textgym.sb3.TokenFeaturesExtractor``, ``textgym.rllib``).

textgym's observation convention (see ``textgym.envs.base``): keys ending in ``_ids`` hold
token (or tag) ids, ``<stem>_mask`` keys hide the padding of ``<stem>_ids``, and every
other key is a small integer counter (position, cursor, edits). Importing this module
imports torch; ``import textgym`` does not import it.
"""

from __future__ import annotations

import numbers

import gymnasium as gym
import numpy as np
import torch
from torch import nn

# how TokenEncoder summarises the tokens; DQNAgent's Q-network has its own set
# (agents.networks.Q_NETWORK_ENCODERS), built on the same observation reading below
EXTRACTOR_ENCODERS = ("concat", "mean", "gru", "transformer")
EXTRACTOR_ARGUMENTS = ("embed_dim", "encoder", "hidden_dim", "n_layers", "n_heads", "pointed_tokens")


def check_observation_space(observation_space: gym.spaces.Space,
                            reader: str = "TokenFeaturesExtractor") -> dict[str, gym.spaces.Box]:
    """The spaces of a textgym-style observation; a ValueError (naming ``reader``, the
    class that needs them) for anything else."""
    spaces = getattr(observation_space, "spaces", None)
    if not isinstance(observation_space, gym.spaces.Dict) or not all(
        isinstance(s, gym.spaces.Box) and np.issubdtype(s.dtype, np.integer) and len(s.shape) == 1
        for s in spaces.values()
    ):
        raise ValueError(
            f"{reader} needs a Dict of 1-D integer Boxes (the textgym observation "
            f"convention), got {observation_space}"
        )
    if not any(key.endswith("_ids") for key in spaces):
        raise ValueError(f"the observation space has no '*_ids' key to embed: {sorted(spaces)}")
    return dict(spaces)


def observation_keys(spaces: dict[str, gym.spaces.Box]) -> tuple[list[str], dict[str, str], list[str]]:
    """The keys of a textgym observation by role: the ``_ids`` keys, the ``_mask`` key of
    each one that has one, and the counters (every other key), each sorted."""
    id_keys = sorted(k for k in spaces if k.endswith("_ids"))
    mask_keys = {k: k[:-4] + "_mask" for k in id_keys if k[:-4] + "_mask" in spaces}
    counter_keys = sorted(k for k in spaces if k not in id_keys and k not in mask_keys.values())
    return id_keys, mask_keys, counter_keys


class TokenEncoder(nn.Module):
    """Features of a textgym observation: a ``(batch, features_dim)`` tensor from a dict of
    ``(batch, length)`` tensors (integers, or floats holding integers as SB3 hands them over).

    Every entry of an ``_ids`` key becomes a token: its id's embedding plus an embedding of
    the key it came from and of its slot in that key. Keys with the same id range (a
    prompt and an output written with one vocabulary) share their id embeddings, so that
    "the same token" means the same vector wherever it appears; keys with other ranges
    (tags, word shapes) get their own rows of the one table.

    ``encoder`` summarises the tokens, padding removed by the masks:

    - ``"concat"`` (default): every token's vector side by side. textgym observations are
      short and fixed-size, and the MLP after it then reads "the token in slot i" directly;
    - ``"mean"``: the mean token of each key, concatenated over keys. The slot embeddings
      add up to a constant, so this is a bag of tokens: enough for keyword-like tasks, not
      for copying;
    - ``"gru"``: a GRU over each key's tokens (weights shared by the keys), final states
      concatenated;
    - ``"transformer"``: a small transformer over all tokens plus one "state" token built
      from the counters; the state token's output is the summary, so attention can pick
      the token the counters point at (the prompt token to copy next, the word under the
      cursor).

    The counters' embeddings are always appended to the summary: the policy must know
    where it is (which position it writes, where the cursor is) to act. With
    ``pointed_tokens=True`` (default), so is the token each pointer points at: a
    one-element counter whose range fits a key (``position`` in [0, N] and an N-token key)
    is read as an index into it, and the id embedding at that slot (zeros past the end or
    on padding) is appended. That is the prompt token to copy next, the word to tag, the
    word under the cursor: an MLP would otherwise have to learn that selection from the
    slot-by-slot features.
    """

    def __init__(self, observation_space: gym.spaces.Dict, embed_dim: int = 32, encoder: str = "concat",
                 hidden_dim: int = 64, n_layers: int = 1, n_heads: int = 4, pointed_tokens: bool = True):
        spaces = check_observation_space(observation_space, reader=type(self).__name__)
        if encoder not in EXTRACTOR_ENCODERS:
            raise ValueError(f"unknown encoder {encoder!r}; valid: {list(EXTRACTOR_ENCODERS)}")
        sizes = {"embed_dim": embed_dim, "hidden_dim": hidden_dim, "n_layers": n_layers, "n_heads": n_heads}
        for name, value in sizes.items():
            if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        embed_dim, hidden_dim, n_layers, n_heads = (int(value) for value in sizes.values())  # numpy ints too
        if not isinstance(pointed_tokens, (bool, np.bool_)):
            raise ValueError(f"pointed_tokens must be True or False, got {pointed_tokens!r}")
        if encoder == "transformer" and embed_dim % n_heads:
            raise ValueError(f"embed_dim ({embed_dim}) must be divisible by n_heads ({n_heads})")

        id_keys, mask_keys, counter_keys = observation_keys(spaces)
        summary_dim = {"concat": embed_dim * sum(spaces[k].shape[0] for k in id_keys),
                       "mean": len(id_keys) * embed_dim, "gru": len(id_keys) * hidden_dim,
                       "transformer": embed_dim}[encoder]
        counter_dim = embed_dim * sum(spaces[k].shape[0] for k in counter_keys)
        # (key, counter) pairs where the counter can index the key: [0, high] with high <= length
        pointers = [(key, counter) for key in id_keys for counter in counter_keys
                    if pointed_tokens and spaces[counter].shape == (1,)
                    and int(spaces[counter].high[0]) <= spaces[key].shape[0]]
        # nn.Module's __init__, not super()'s: in TokenFeaturesExtractor SB3's BaseFeaturesExtractor
        # comes next, and its __init__ wants the features_dim computed here; what it sets is set here
        nn.Module.__init__(self)
        self._observation_space = observation_space
        self._features_dim = summary_dim + counter_dim + embed_dim * len(pointers)
        self.pointers = pointers
        self.id_keys, self.mask_keys, self.counter_keys = id_keys, mask_keys, counter_keys
        self.encoder_name = encoder

        # one table; keys sharing an id range share its rows, other ranges start further on
        sizes = {k: int(spaces[k].high.max()) + 1 for k in id_keys}
        first_row: dict[int, int] = {}  # id range size -> its first row
        n_rows = 0
        for size in sizes.values():
            if size not in first_row:
                first_row[size], n_rows = n_rows, n_rows + size
        self.id_offsets = {k: first_row[sizes[k]] for k in id_keys}
        self.id_sizes = sizes
        self.token_embedding = nn.Embedding(n_rows, embed_dim)
        self.key_embedding = nn.Embedding(len(id_keys), embed_dim)
        self.slot_embedding = nn.Embedding(max(spaces[k].shape[0] for k in id_keys), embed_dim)
        # each element of a counter gets its own rows, so (a, b) != (b, a)
        self.counter_sizes = {k: int(spaces[k].high.max()) + 1 for k in counter_keys}
        self.counter_offsets: dict[str, torch.Tensor] = {}
        total = 0
        for k in counter_keys:
            n = spaces[k].shape[0]
            self.counter_offsets[k] = torch.arange(n) * self.counter_sizes[k] + total
            total += n * self.counter_sizes[k]
        self.counter_embedding = nn.Embedding(max(total, 1), embed_dim)

        if encoder == "gru":
            self.encoder = nn.GRU(embed_dim, hidden_dim, num_layers=n_layers, batch_first=True)
        elif encoder == "transformer":
            layer = nn.TransformerEncoderLayer(embed_dim, n_heads, dim_feedforward=hidden_dim, dropout=0.0,
                                               batch_first=True, norm_first=True)
            self.encoder = nn.TransformerEncoder(layer, n_layers, enable_nested_tensor=False)
            self.state_bias = nn.Parameter(torch.zeros(embed_dim))

    @property
    def features_dim(self) -> int:
        """The width of the features :meth:`forward` returns."""
        return self._features_dim

    def forward(self, observations: dict[str, torch.Tensor]) -> torch.Tensor:
        # SB3 hands observations over as floats; ids are exact small integers, so round-trip safely
        tokens, valid = [], []
        for key_index, key in enumerate(self.id_keys):
            ids = observations[key].long().clamp(0, self.id_sizes[key] - 1)
            slots = torch.arange(ids.shape[1], device=ids.device)
            tokens.append(self.token_embedding(ids + self.id_offsets[key]) + self.key_embedding.weight[key_index]
                          + self.slot_embedding(slots))
            mask_key = self.mask_keys.get(key)
            valid.append(observations[mask_key].bool() if mask_key else torch.ones_like(ids, dtype=torch.bool))

        counters = [self._counter_vectors(key, observations[key]) for key in self.counter_keys]
        summary = getattr(self, f"_{self.encoder_name}")(tokens, valid, counters)
        pointed = [self._pointed_token(observations, key, counter) for key, counter in self.pointers]
        return torch.cat([summary] + [c.flatten(1) for c in counters] + pointed, dim=1)

    def _pointed_token(self, observations: dict[str, torch.Tensor], key: str, counter: str) -> torch.Tensor:
        ids = observations[key].long().clamp(0, self.id_sizes[key] - 1)
        index = observations[counter].long()  # (batch, 1)
        inside = (index >= 0) & (index < ids.shape[1])
        mask_key = self.mask_keys.get(key)
        slot = index.clamp(0, ids.shape[1] - 1)
        if mask_key:
            inside = inside & observations[mask_key].gather(1, slot).bool()
        vectors = self.token_embedding(ids.gather(1, slot)[:, 0] + self.id_offsets[key])
        return vectors * inside.float()

    def _counter_vectors(self, key: str, values: torch.Tensor) -> torch.Tensor:
        values = values.long().clamp(0, self.counter_sizes[key] - 1)
        return self.counter_embedding(values + self.counter_offsets[key].to(values.device))

    def _concat(self, tokens: list[torch.Tensor], valid: list[torch.Tensor],
                counters: list[torch.Tensor]) -> torch.Tensor:
        return torch.cat([(x * v.float()[..., None]).flatten(1) for x, v in zip(tokens, valid)], dim=1)

    def _mean(self, tokens: list[torch.Tensor], valid: list[torch.Tensor], counters: list[torch.Tensor]) -> torch.Tensor:
        pooled = []
        for x, v in zip(tokens, valid):
            weights = v.float()[..., None]
            pooled.append((x * weights).sum(1) / weights.sum(1).clamp(min=1.0))
        return torch.cat(pooled, dim=1)

    def _gru(self, tokens: list[torch.Tensor], valid: list[torch.Tensor], counters: list[torch.Tensor]) -> torch.Tensor:
        # padding is zeroed rather than packed: textgym pads at the end and the sequences are short
        finals = []
        for x, v in zip(tokens, valid):
            _, hidden = self.encoder(x * v.float()[..., None])
            finals.append(hidden[-1])
        return torch.cat(finals, dim=1)

    def _transformer(self, tokens: list[torch.Tensor], valid: list[torch.Tensor],
                     counters: list[torch.Tensor]) -> torch.Tensor:
        state = self.state_bias.expand(tokens[0].shape[0], -1)
        for c in counters:
            state = state + c.sum(1)
        # the state token is never padding, so even an all-padding observation has a summary
        sequence = torch.cat([state[:, None]] + tokens, dim=1)
        keep = torch.cat([torch.ones_like(valid[0][:, :1])] + valid, dim=1)
        return self.encoder(sequence, src_key_padding_mask=~keep)[:, 0]
