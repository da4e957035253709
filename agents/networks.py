"""A Q-network that reads any textgym observation through its space alone.

textgym observations are a ``Dict`` of int64 ``Box`` arrays: keys ending in ``_ids`` hold
token (or tag) ids, keys ending in ``_mask`` mark which of the matching ``_ids`` entries
are real, and every other key is a small integer counter (a position, a budget left).
"""

from __future__ import annotations

import gymnasium as gym
import torch
from torch import nn

from textgym.sb3.features import check_observation_space, observation_keys

# how TokenQNetwork summarises the tokens. SB3's TokenFeaturesExtractor reads observations
# the same way but is a different network (textgym.sb3.features.EXTRACTOR_ENCODERS)
Q_NETWORK_ENCODERS = ("concat", "gru", "transformer")


class TokenQNetwork(nn.Module):
    """Q(s, .) for a textgym observation.

    Every ``_ids`` entry becomes a token: a shared token embedding plus a channel embedding
    (which key it came from) plus a position embedding (where in that key). The counters
    are embedded and summed into one extra "state" token, read last. The tokens, padding
    removed by the masks, are encoded by ``"concat"`` (every token's vector side by side:
    the observations are short, and an MLP head reads "the token in slot i" directly), a
    GRU or a small transformer. A two-layer head maps the summary (and the state token, as
    a skip connection) to one value per action.
    """

    def __init__(self, observation_space: gym.spaces.Space, n_actions: int, encoder: str = "concat",
                 embed_dim: int = 64, hidden_dim: int = 128, n_layers: int = 1, n_heads: int = 4):
        super().__init__()
        if encoder not in Q_NETWORK_ENCODERS:
            raise ValueError(f"unknown encoder {encoder!r}; valid: {list(Q_NETWORK_ENCODERS)}")
        if encoder == "transformer" and embed_dim % n_heads:
            raise ValueError(f"embed_dim ({embed_dim}) must be divisible by n_heads ({n_heads}) for the transformer")
        spaces = check_observation_space(observation_space, reader="TokenQNetwork")
        self.id_keys, self.mask_keys, self.counter_keys = observation_keys(spaces)
        self.encoder_name = encoder

        n_ids = max(int(spaces[k].high.max()) for k in self.id_keys) + 1
        longest = max(spaces[k].shape[0] for k in self.id_keys)
        self.token_embedding = nn.Embedding(n_ids, embed_dim)
        self.channel_embedding = nn.Embedding(len(self.id_keys), embed_dim)
        self.position_embedding = nn.Embedding(longest, embed_dim)
        # each element of a counter gets its own slice of the table, so (a, b) != (b, a)
        self.counter_sizes = {k: int(spaces[k].high.max()) + 1 for k in self.counter_keys}
        self.counter_embeddings = nn.ModuleDict({
            k: nn.Embedding(self.counter_sizes[k] * spaces[k].shape[0], embed_dim) for k in self.counter_keys
        })
        for k in self.counter_keys:
            offsets = torch.arange(spaces[k].shape[0]) * self.counter_sizes[k]
            self.register_buffer(f"offsets_{k}", offsets, persistent=False)
        self.state_bias = nn.Parameter(torch.zeros(embed_dim))

        if encoder == "concat":
            summary_dim = embed_dim * sum(spaces[k].shape[0] for k in self.id_keys)
        elif encoder == "gru":
            self.encoder = nn.GRU(embed_dim, hidden_dim, num_layers=n_layers, batch_first=True)
            summary_dim = hidden_dim
        else:
            layer = nn.TransformerEncoderLayer(embed_dim, n_heads, dim_feedforward=hidden_dim, dropout=0.0,
                                               batch_first=True, norm_first=True)
            self.encoder = nn.TransformerEncoder(layer, n_layers, enable_nested_tensor=False)
            summary_dim = embed_dim
        self.head = nn.Sequential(nn.Linear(summary_dim + embed_dim, hidden_dim), nn.ReLU(),
                                  nn.Linear(hidden_dim, n_actions))

    def forward(self, obs: dict[str, torch.Tensor]) -> torch.Tensor:
        """``obs``: int64 tensors of shape (batch, length) per key; returns (batch, n_actions)."""
        tokens, valid = [], []
        for channel, key in enumerate(self.id_keys):
            ids = obs[key]
            positions = torch.arange(ids.shape[1], device=ids.device)
            tokens.append(self.token_embedding(ids) + self.channel_embedding.weight[channel]
                          + self.position_embedding(positions))
            mask = obs[self.mask_keys[key]] if key in self.mask_keys else torch.ones_like(ids)
            valid.append(mask.bool())
        state = self.state_bias.expand(tokens[0].shape[0], -1)
        for key in self.counter_keys:
            values = obs[key].clamp(0, self.counter_sizes[key] - 1) + getattr(self, f"offsets_{key}")
            state = state + self.counter_embeddings[key](values).sum(dim=1)
        # the state token is never padding, so even an all-padding observation has a summary
        sequence = torch.cat(tokens + [state[:, None]], dim=1)
        valid_all = torch.cat(valid + [torch.ones_like(valid[0][:, :1])], dim=1)

        if self.encoder_name == "concat":
            summary = (sequence[:, :-1] * valid_all[:, :-1, None]).flatten(1)  # the state token is added below
        elif self.encoder_name == "gru":
            _, hidden = self.encoder(sequence * valid_all[..., None])
            summary = hidden[-1]
        else:
            summary = self.encoder(sequence, src_key_padding_mask=~valid_all)[:, -1]
        return self.head(torch.cat([summary, state], dim=1))
