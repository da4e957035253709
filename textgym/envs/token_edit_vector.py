"""TokenEdit-v0 as a native vector env: all sub-envs' texts, cursors and masks in arrays."""

from __future__ import annotations

from typing import Any

import numpy as np

from textgym.envs.token_edit import DELETE, KEEP, STOP, TokenEditEnv, end_metrics
from textgym.envs.vector_base import TextVectorEnv
from textgym.rewards.incremental import IncrementalReward


class TokenEditVectorEnv(TextVectorEnv):
    """``num_envs`` copies of :class:`~textgym.envs.token_edit.TokenEditEnv` stepped together.

    ``gym.make_vec("TokenEdit-v0", num_envs=N)`` builds it. Arguments are the single env's,
    plus ``num_envs`` and ``max_episode_steps``. Cursors, edit counts, the current texts'
    ids and the action masks of all sub-envs are arrays, updated at once; each edit splices
    one sub-env's token list. Observations, rewards, flags and infos equal
    ``SyncVectorEnv``'s over the single env (next-step autoreset). Infos: ``text`` and
    ``action_mask`` for every sub-env, ``source`` for sub-envs that reset, ``metrics`` for
    sub-envs whose episode ended.

    The texts that need the reward's full score in a step (every finished episode, and in
    dense mode the edited texts that have no incremental scorer) are scored by one
    ``reward.batch`` call, so model-based rewards score them in one batch. A dense reward
    with incremental scorers keeps one per sub-env, as the single env does.
    """

    def __init__(self, num_envs: int = 1, max_episode_steps: int | None = None, **kwargs: Any):
        env = TokenEditEnv(**kwargs)
        self._setup(env, num_envs, max_episode_steps)
        self.vocab, self.mode = env.vocab, env.mode
        self.max_length, self.max_edits, self.max_steps = env.max_length, env.max_edits, env.max_steps
        self._dense = env.reward_mode == "dense"
        pad, n_examples = self.vocab.pad_id, len(env.examples)
        # every source of the split, padded, so that resets are array gathers
        self._sources = [env.encoded_prompt(e) for e in range(n_examples)]
        self._source_ids = np.full((n_examples, env.max_source_tokens), pad, dtype=np.int64)
        self._source_lengths = np.array([len(ids) for ids in self._sources], dtype=np.int64)
        for e, ids in enumerate(self._sources):
            self._source_ids[e, : len(ids)] = ids
        self._source_mask = (np.arange(env.max_source_tokens) < self._source_lengths[:, None]).astype(np.int64)
        self._source_texts: dict[int, str] = {}  # each source's decoded text, decoded once
        self._candidates, self._candidate_slot = env.candidates, env._candidate_slot
        self._replace, self._insert = env._replace, env._insert
        # the token each action writes: its candidate for replace and insert, else -1
        self._action_token = np.full(env.action_space.n, -1, dtype=np.int64)
        self._action_token[self._replace] = self._action_token[self._insert] = self._candidates

        self._example = np.zeros(num_envs, dtype=np.int64)
        self._tokens: list[list[int]] = [[] for _ in range(num_envs)]
        self._texts = np.full(num_envs, "", dtype=object)
        self._current_ids = np.full((num_envs, self.max_length), pad, dtype=np.int64)
        self._current_mask = np.zeros((num_envs, self.max_length), dtype=np.int64)
        self._length = np.zeros(num_envs, dtype=np.int64)
        self._cursor = np.zeros(num_envs, dtype=np.int64)
        self._edits = np.zeros(num_envs, dtype=np.int64)
        self._steps = np.zeros(num_envs, dtype=np.int64)
        self._masks = np.zeros((num_envs, env.action_space.n), dtype=bool)
        self._potential = np.zeros(num_envs, dtype=np.float64)
        # dense rewards with incremental scorers: one per sub-env, made on its reset
        self._scorers: list[IncrementalReward] | None = None
        if env._episode_reward.tracks_words:
            self._scorers = [None] * num_envs  # type: ignore[list-item]
            self._words = [env.decoded_word(i) for i in range(len(self.vocab))]

    # -- episodes --------------------------------------------------------------------------

    def _reset_envs(self, rows: np.ndarray, options: dict, infos: dict[str, Any]) -> None:
        indices = self._draw_examples(rows, options)
        self._example[rows] = indices
        lengths = self._source_lengths[indices]
        self._length[rows] = lengths
        self._current_ids[rows] = self.vocab.pad_id
        self._current_ids[rows, : self._source_ids.shape[1]] = self._source_ids[indices]
        self._current_mask[rows] = 0
        self._current_mask[rows, : self._source_ids.shape[1]] = self._source_mask[indices]
        self._cursor[rows] = self._edits[rows] = self._steps[rows] = 0
        self._potential[rows] = 0.0
        examples = self.env.examples
        for i, e in zip(rows.tolist(), indices.tolist()):
            tokens = self._tokens[i] = list(self._sources[e])
            self._texts[i] = self._source_text(e)
            if self._scorers is not None:
                scorer = self._scorers[i] = IncrementalReward(self.env.reward, examples[e].references)
                for token in tokens:
                    scorer.append(self._words[token])
        self._update_masks(rows)
        self._set_info(infos, "text", rows, self._texts[rows])
        self._set_info(infos, "source", rows, [examples[e].prompt for e in indices.tolist()])

    def _source_text(self, e: int) -> str:
        text = self._source_texts.get(e)
        if text is None:
            text = self._source_texts[e] = self.vocab.decode(self._sources[e])
        return text

    def _step_envs(self, rows, actions, rewards, terminated, truncated, infos) -> None:
        # a masked action is a no-op that still counts as a step, as in the single env
        legal = self._masks[rows, actions]
        self._steps[rows] += 1
        keep = legal & (actions == KEEP)
        self._cursor[rows[keep]] += 1
        changed = legal & (actions != KEEP) & (actions != STOP)
        self._edit(rows[changed], actions[changed])
        self._update_masks(rows)

        length = self._length[rows]
        can_append = (length < self.max_length) if self.mode == "edit" else np.zeros(rows.size, dtype=bool)
        ended = (legal & (actions == STOP)) | ((self._cursor[rows] == length) & ~can_append)
        spent = self._edits[rows] >= self.max_edits if self.max_edits is not None else np.zeros(rows.size, dtype=bool)
        cut = ~ended & (spent | (self._steps[rows] >= self.max_steps))
        terminated[rows], truncated[rows] = ended, cut
        done = ended | cut
        self._score(rows, done, changed | done | (self._steps[rows] == 1), rewards, infos)
        self._set_info(infos, "text", rows, self._texts[rows])

    def _edit(self, rows: np.ndarray, actions: np.ndarray) -> None:
        """Apply each row's delete, replace or insert at its cursor, as ``TokenEditEnv._edit``:
        to the id arrays of all rows at once, then to each row's token list, scorer and text."""
        if not rows.size:
            return
        cursor = self._cursor[rows]
        written = self._action_token[actions]  # -1 for a delete
        delete, insert = actions == DELETE, actions >= self._insert.start
        # the ids from the cursor on move one left (delete) or right (insert); past the text
        # they are pad, and a pad column past the end feeds a delete's last position
        positions = np.arange(self.max_length)
        shift = delete.astype(np.int64) - insert
        source = positions + shift[:, None] * (positions >= cursor[:, None])
        padded = np.concatenate([self._current_ids[rows], np.full((rows.size, 1), self.vocab.pad_id)], axis=1)
        ids = np.take_along_axis(padded, np.maximum(source, 0), axis=1)
        writes = ~delete
        ids[np.flatnonzero(writes), cursor[writes]] = written[writes]
        self._current_ids[rows] = ids
        length = self._length[rows] - shift
        self._length[rows] = length
        self._current_mask[rows] = positions < length[:, None]
        self._cursor[rows] = cursor + writes
        self._edits[rows] += 1
        for i, c, token, inserts in zip(rows.tolist(), cursor.tolist(), written.tolist(), insert.tolist()):
            tokens = self._tokens[i]
            scorer = self._scorers[i] if self._scorers is not None else None
            if token < 0:
                del tokens[c]
                if scorer is not None:
                    scorer.delete(c)
            elif inserts:
                tokens.insert(c, token)
                if scorer is not None:
                    scorer.insert(c, self._words[token])
            else:
                tokens[c] = token
                if scorer is not None:
                    scorer.replace(c, self._words[token])
            self._texts[i] = self.vocab.decode(tokens)

    def _score(self, rows: np.ndarray, done: np.ndarray, scored: np.ndarray, rewards: np.ndarray,
               infos: dict[str, Any]) -> None:
        """Rewards of ``rows`` (those marked ``scored`` pay one, as the single env's step), and
        the end metrics of the ``done`` ones. Every text that needs the reward itself is scored
        in one ``reward.batch`` call."""
        if self._dense:
            tracked = scored & ~done if self._scorers is not None else np.zeros(rows.size, dtype=bool)
            full = scored & ~tracked
        else:
            full = done
        value = np.zeros(rows.size, dtype=np.float64)
        metrics: list[dict[str, float]] = []
        full_rows = rows[full]
        if full_rows.size:
            indices = self._example[full_rows].tolist()
            scores = self.env.reward.batch(list(self._texts[full_rows]),
                                           [self.env.examples[e].references for e in indices],
                                           [self._source_text(e) for e in indices])
            value[full] = [v for v, _ in scores]
            metrics = [m for (_, m), finished in zip(scores, done[full].tolist()) if finished]
        if self._dense:
            for j in np.flatnonzero(tracked).tolist():
                value[j] = self._scorers[rows[j]].value  # type: ignore[index]
            scored_rows = rows[scored]
            rewards[scored_rows] = value[scored] - self._potential[scored_rows]
            self._potential[scored_rows] = value[scored]
        else:
            rewards[rows[done]] = value[done]
        self._set_end_metrics(infos, rows[done], metrics)

    def _set_end_metrics(self, infos: dict[str, Any], rows: np.ndarray, metrics: list[dict[str, float]]) -> None:
        """``info["metrics"]`` of ended sub-envs, as ``TokenEditEnv._end_metrics``."""
        examples = self.env.examples
        rows_metrics = [
            end_metrics(reward_metrics, self._texts[i], examples[e].references, n, len(self._sources[e]), edits)
            for i, e, n, edits, reward_metrics in zip(rows.tolist(), self._example[rows].tolist(),
                                                      self._length[rows].tolist(), self._edits[rows].tolist(), metrics)
        ]
        self._set_metrics(infos, rows, rows_metrics)

    # -- arrays ----------------------------------------------------------------------------

    def _update_masks(self, rows: np.ndarray) -> None:
        """Legal actions of ``rows``, as ``TokenEditEnv._update_mask``."""
        cursor, length = self._cursor[rows], self._length[rows]
        on_token = cursor < length
        can_edit = self._edits[rows] < self.max_edits if self.max_edits is not None else np.ones(rows.size, dtype=bool)
        masks = self._masks
        masks[rows, KEEP] = on_token
        masks[rows, DELETE] = on_token & can_edit
        masks[rows, STOP] = True
        if self.mode == "edit":
            masks[rows, self._replace] = (on_token & can_edit)[:, None]
            under = self._current_ids[rows, np.minimum(cursor, self.max_length - 1)]
            slot = self._candidate_slot[under]
            own = on_token & (slot >= 0)
            masks[rows[own], self._replace.start + slot[own]] = False
            masks[rows, self._insert] = (can_edit & (length < self.max_length))[:, None]

    def _observation(self) -> dict[str, np.ndarray]:
        e = self._example
        return {
            "source_ids": self._source_ids[e],
            "source_mask": self._source_mask[e],
            "current_ids": self._current_ids.copy(),
            "current_mask": self._current_mask.copy(),
            "cursor": self._cursor[:, None].copy(),
            "edits": self._edits[:, None].copy(),
        }

    def _legal_masks(self) -> np.ndarray:
        return self._masks

