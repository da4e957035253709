"""Plumbing shared by every textgym env: argument checks, action checks, masks, info and
rendering. Each env subclasses :class:`TextEnv` and keeps only its own MDP.

Observation convention (it lets agents and SB3 extractors read any textgym env): keys
ending in ``_ids`` hold token or tag ids padded with the vocabulary's pad id, keys ending
in ``_mask`` mark the real entries with 1, and the other keys are small integer counters.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.error import InvalidAction, ResetNeeded

from textgym.vocab import Vocabulary

RENDER_MODES = ("ansi", "human")
RESET_OPTIONS = ("index",)  # the keys reset(options=...) takes


def is_int(value: Any) -> bool:
    """Whether ``value`` is an integer (Python or numpy), bools excluded."""
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def _plain(value: Any) -> Any:
    """numpy scalars as Python ones, so that messages show ``-1``, not ``np.int64(-1)``."""
    return value.item() if isinstance(value, np.generic) else value


def checked_int(name: str, value: Any, minimum: int = 1, optional: bool = False) -> int | None:
    """``value`` as an int, or a ValueError naming ``name`` unless it is an int >= ``minimum``
    (numpy integers count, bools do not); ``optional`` also lets None through."""
    if optional and value is None:
        return None
    if not is_int(value) or value < minimum:
        expected = "a positive int" if minimum == 1 else f"an int >= {minimum}"
        raise ValueError(f"{name} must be {'None or ' if optional else ''}{expected}, got {_plain(value)!r}")
    return int(value)


def checked_seed(seed: Any) -> int | None:
    """A reset seed as None or an int; gymnasium's own check raises a generic Error."""
    if seed is not None and (not is_int(seed) or seed < 0):
        raise ValueError(f"seed must be None or a non-negative int, got {_plain(seed)!r}")
    return None if seed is None else int(seed)


def checked_options(options: Any, valid: Sequence[str] = RESET_OPTIONS) -> dict:
    """``reset``'s ``options`` as a dict (empty for None) with only the ``valid`` keys."""
    if options is None:
        return {}
    if not isinstance(options, dict):
        raise ValueError(f"options must be None or a dict with keys {list(valid)}, got {options!r}")
    unknown = sorted(map(repr, set(options) - set(valid)))
    if unknown:
        raise ValueError(f"unknown reset options {', '.join(unknown)}; valid keys: {list(valid)}")
    return options


def id_box(length: int, n_ids: int) -> gym.spaces.Box:
    """A fixed-length int64 array of ids in [0, n_ids)."""
    return gym.spaces.Box(0, n_ids - 1, shape=(length,), dtype=np.int64)


def mask_box(length: int) -> gym.spaces.Box:
    return gym.spaces.Box(0, 1, shape=(length,), dtype=np.int64)


def counter_box(high: int) -> gym.spaces.Box:
    """A single int64 counter in [0, high]."""
    return gym.spaces.Box(0, high, shape=(1,), dtype=np.int64)


def token_ids(vocab: Vocabulary, tokens: Iterable[str | int], argument: str) -> list[int]:
    """Ids of tokens given as ids or strings; a clear ValueError for any that is not valid."""
    ids = []
    for token in tokens:
        if is_int(token):
            if not 0 <= token < len(vocab):
                raise ValueError(f"{argument}: token id {token} is outside the vocabulary [0, {len(vocab)})")
            ids.append(int(token))
        elif isinstance(token, str):
            try:
                ids.append(vocab.token_to_id(token))
            except KeyError as err:
                raise ValueError(f"{argument}: {err.args[0]}") from None
        else:
            raise ValueError(f"{argument}: a token is a str or an int id, not {type(token).__name__}: {token!r}")
    return ids


def example_index(options: dict, n_examples: int, rng: np.random.Generator) -> int:
    """``options={"index": i}`` picks an example (for evaluation sweeps); else a random one.
    ``options`` is already checked (:func:`checked_options`)."""
    index = options.get("index")
    if index is None:
        return int(rng.integers(n_examples))
    if not is_int(index) or not 0 <= index < n_examples:
        raise ValueError(f"options['index'] must be an int in [0, {n_examples}), got {_plain(index)!r}")
    return int(index)


class _RenderModes(list):
    """The render modes, a list that "contains" every non-str, so that ``gym.make`` hands
    such a ``render_mode`` on to the constructor's clear error (its own check crashes on
    ``render_mode=1``)."""

    def __contains__(self, mode: object) -> bool:
        return not isinstance(mode, str) or super().__contains__(mode)


class TextEnv(gym.Env):
    """Base class: subclasses set ``action_space``/``observation_space`` and implement
    ``_legal_mask()`` (bool array), ``_render_text()`` and their own ``reset``/``step``,
    calling ``_checked_action`` first in ``step`` and ``_info`` to build infos."""

    metadata = {"render_modes": _RenderModes(RENDER_MODES), "render_fps": 4}

    def __init__(self, render_mode: str | None = None, action_mask: bool = True):
        if render_mode is not None and (not isinstance(render_mode, str) or render_mode not in RENDER_MODES):
            raise ValueError(f"unknown render_mode {render_mode!r}; valid: None, {', '.join(map(repr, RENDER_MODES))}")
        if not isinstance(action_mask, bool):
            raise ValueError(f"action_mask must be True or False, got {action_mask!r}")
        self.render_mode = render_mode
        self.report_action_mask = action_mask
        self._episode_over = True
        self._started = False
        self._prompt_ids_cache: dict[int, list[int]] = {}

    def _checked_action(self, action: Any) -> int:
        if not self._started:
            raise ResetNeeded("Cannot call step() before reset(): call env.reset() first.")
        if self._episode_over:
            raise ResetNeeded("The episode has ended (terminated or truncated): call env.reset() before step().")
        # what Discrete(n).contains accepts (ints, numpy integers, 0-d integer arrays, in
        # range) but bools, checked inline: contains costs ~10 µs, a tenth of a TokenEdit step
        if isinstance(action, np.ndarray) and action.shape == () and np.issubdtype(action.dtype, np.integer):
            value = action.item()
        else:
            value = action
        if not (is_int(value) and 0 <= value < self.action_space.n):
            raise InvalidAction(
                f"action {_plain(action)!r} is not in the action space {self.action_space}: "
                f"valid actions are integers 0..{self.action_space.n - 1}"
            )
        return int(value)

    def _checked_reset(self, seed: Any, options: Any) -> dict:
        """Check ``reset``'s arguments and seed ``self.np_random``; returns the options."""
        options = checked_options(options)
        super().reset(seed=checked_seed(seed))
        return options

    def _draw_example(self, options: dict) -> list[int]:
        """Pick the episode's example from ``self.examples`` (at random, or
        ``options["index"]``) into ``self.example``; returns its prompt's token ids, encoded
        once per example with ``self.vocab``."""
        index = example_index(options, len(self.examples), self.np_random)
        self.example = self.examples[index]
        return self.encoded_prompt(index)

    def encoded_prompt(self, index: int) -> list[int]:
        """The token ids of example ``index``'s prompt, encoded once (vector envs share it)."""
        ids = self._prompt_ids_cache.get(index)
        if ids is None:
            ids = self._prompt_ids_cache[index] = self.vocab.encode(self.examples[index].prompt)
        return ids

    def decoded_word(self, token: int) -> str:
        """What a word vocabulary decodes ``token`` to on its own: "" for pad, bos and eos,
        which decoding drops. Dense rewards feed these words to incremental scorers."""
        vocab = self.vocab
        return "" if token in (vocab.pad_id, vocab.bos_id, vocab.eos_id) else vocab.id_to_token(token)

    def _begin_episode(self) -> None:
        self._started = True
        self._episode_over = False

    def _info(self, text: str, done: bool = False, metrics: dict[str, float] | None = None, **extra: Any) -> dict:
        self._episode_over = done
        info: dict[str, Any] = {"text": text, **extra}
        if self.report_action_mask:
            info["action_mask"] = self._legal_mask().astype(np.int8)
        if done:
            info["metrics"] = dict(metrics or {})
        return info

    def action_masks(self) -> np.ndarray:
        """Legal actions as a bool array, for sb3-contrib's MaskablePPO."""
        return self._legal_mask().copy()

    def _legal_mask(self) -> np.ndarray:
        raise NotImplementedError

    def render(self) -> str | None:
        if self.render_mode is None:
            gym.logger.warn(f"render() called with render_mode=None; make the env with render_mode in {list(RENDER_MODES)}")
            return None
        text = self._render_text()
        if self.render_mode == "human":
            print(text)
            return None
        return text

    def _render_text(self) -> str:
        raise NotImplementedError
