"""NERTag-v0 as a native vector env: span bookkeeping of all sub-envs in numpy arrays."""

from __future__ import annotations

from typing import Any

import numpy as np

from textgym.envs.ner_tag import PREFIX_B, PREFIX_I, NERTagEnv, NERTagTables
from textgym.envs.vector_base import TextVectorEnv
from textgym.rewards.span_metrics import precision_recall_f1


class NERTagVectorEnv(TextVectorEnv):
    """``num_envs`` copies of :class:`~textgym.envs.ner_tag.NERTagEnv` stepped together.

    ``gym.make_vec("NERTag-v0", num_envs=N)`` builds it. Arguments are the single env's,
    plus ``num_envs`` and ``max_episode_steps``. Every sentence of the split is prepared
    once into padded tables (words, shapes, gold tags, gold spans by start), so a step is a
    few array operations for all sub-envs. Observations, rewards, flags and infos equal
    ``SyncVectorEnv``'s over the single env (next-step autoreset). Infos: ``text``,
    ``words``, ``position`` and ``action_mask`` for every sub-env, ``metrics`` for sub-envs whose sentence is done.
    """

    def __init__(self, num_envs: int = 1, max_episode_steps: int | None = None, **kwargs: Any):
        env = NERTagEnv(**kwargs)
        self._setup(env, num_envs, max_episode_steps)
        tables = env.batch_tables()
        self._build_tables(env, tables)
        self._tag_prefix, self._tag_type, self._legal_tags = tables.tag_prefixes, tables.tag_types, tables.legal_tags
        self._tag_names = np.array(env.tags, dtype=object)
        n, length = num_envs, env.max_tokens
        self._example = np.zeros(n, dtype=np.int64)
        self._position = np.zeros(n, dtype=np.int64)
        self._chosen = np.zeros((n, length), dtype=np.int64)  # tag id + 1, 0 = untagged
        self._open_type = np.full(n, -1, dtype=np.int64)  # the predicted entity still open
        self._open_start = np.zeros(n, dtype=np.int64)
        self._n_pred = np.zeros(n, dtype=np.int64)
        self._n_correct_spans = np.zeros(n, dtype=np.int64)
        self._n_correct_tags = np.zeros(n, dtype=np.int64)
        self._potential = np.zeros(n, dtype=np.float64)
        self._pieces: list[list[str]] = [[] for _ in range(n)]

    def _build_tables(self, env: NERTagEnv, tables: NERTagTables) -> None:
        """Padded per-example arrays from the single env's prepared sentences."""
        n_examples, length, k = len(env.examples), env.max_tokens, env.window or 0
        pad = env.vocab.pad_id
        # k pad columns on each side (k + 1 after, for the window past the last token), so
        # that windows are plain gathers
        self._words = np.full((n_examples, length + 2 * k + 1), pad, dtype=np.int64)
        self._shapes = np.zeros((n_examples, length + 2 * k + 1), dtype=np.int64)
        self._gold = np.full((n_examples, length), -1, dtype=np.int64)
        self._lengths = np.zeros(n_examples, dtype=np.int64)
        self._gold_before = np.zeros((n_examples, length + 1), dtype=np.int64)
        self._gold_type_from = np.full((n_examples, length), -1, dtype=np.int64)  # gold span starting here
        self._gold_end_from = np.zeros((n_examples, length), dtype=np.int64)
        self._n_gold = np.zeros(n_examples, dtype=np.int64)
        for e, sentence in enumerate(tables.sentences):
            m = len(sentence.gold)
            self._lengths[e] = m
            self._words[e, k : k + m] = sentence.word_ids
            self._shapes[e, k : k + m] = sentence.shape_ids
            self._gold[e, :m] = sentence.gold
            self._gold_before[e, : m + 1] = sentence.gold_before
            self._gold_before[e, m + 1 :] = sentence.gold_before[-1]
            self._n_gold[e] = len(sentence.gold_spans)
            for start, (kind, end) in sentence.gold_from.items():
                self._gold_type_from[e, start], self._gold_end_from[e, start] = kind, end
        self._rows_from = np.arange(length)
        self._window_offsets = np.arange(2 * k + 1)

    def _reset_envs(self, rows: np.ndarray, options: dict, infos: dict[str, Any]) -> None:
        examples = self.env.examples
        self._example[rows] = indices = self._draw_examples(rows, options)
        for i, e in zip(rows.tolist(), indices.tolist()):
            self._pieces[i] = list(examples[e].tokens)
        self._position[rows] = 0
        self._chosen[rows] = 0
        self._open_type[rows] = -1
        self._open_start[rows] = 0
        self._n_pred[rows] = self._n_correct_spans[rows] = self._n_correct_tags[rows] = 0
        self._potential[rows] = 0.0
        self._set_info(infos, "text", rows, [examples[e].prompt for e in self._example[rows]])
        self._set_info(infos, "words", rows, _tuples([examples[e].tokens for e in self._example[rows]]))
        self._set_info(infos, "position", rows, 0, dtype=np.int64)

    def _step_envs(self, rows, tags, rewards, terminated, truncated, infos) -> None:
        e, position = self._example[rows], self._position[rows]
        prefix, kind = self._tag_prefix[tags], self._tag_type[tags]
        restart = ~((prefix == PREFIX_I) & (kind == self._open_type[rows]))
        self._close_entities(rows[restart], position[restart])
        begins = restart & (prefix == PREFIX_B)
        self._open_type[rows[begins]] = kind[begins]
        self._open_start[rows[begins]] = position[begins]
        correct_tag = tags == self._gold[e, position]
        self._n_correct_tags[rows] += correct_tag
        self._chosen[rows, position] = tags + 1
        self._position[rows] = n = position + 1
        done = n == self._lengths[e]
        terminated[rows] = done
        self._close_entities(rows[done], n[done])

        examples, names = self.env.examples, self._tag_names[tags]
        for i, ex, pos, name in zip(rows.tolist(), e.tolist(), position.tolist(), names):
            self._pieces[i][pos] = f"{examples[ex].tokens[pos]}/{name}"
        f1, ended, metrics = np.zeros(rows.size), np.flatnonzero(done), []
        for j in ended.tolist():
            i = rows[j]
            precision, recall, f1[j] = precision_recall_f1(
                int(self._n_correct_spans[i]), int(self._n_gold[e[j]]), int(self._n_pred[i])
            )
            accuracy = int(self._n_correct_tags[i]) / int(n[j])
            metrics.append({"precision": precision, "recall": recall, "f1": float(f1[j]), "accuracy": accuracy})
        self._set_metrics(infos, rows[ended], metrics)

        mode = self.env.reward_mode
        if mode == "token":
            rewards[rows] = correct_tag
        elif mode == "f1":
            rewards[rows] = np.where(done, f1, 0.0)
        else:
            potential = np.where(done, f1, self._prefix_f1(rows, n))
            rewards[rows] = potential - self._potential[rows]
            self._potential[rows] = potential
        self._set_info(infos, "text", rows, [" ".join(self._pieces[i]) for i in rows.tolist()])
        self._set_info(infos, "words", rows, _tuples([examples[ex].tokens for ex in e.tolist()]))
        self._set_info(infos, "position", rows, n, dtype=np.int64)

    def _close_entities(self, rows: np.ndarray, end: np.ndarray) -> None:
        """End the open predicted entity of sub-envs ``rows`` (if any) before token ``end``."""
        open_type = self._open_type[rows]
        has_open = open_type >= 0
        rows, end, open_type = rows[has_open], end[has_open], open_type[has_open]
        e, start = self._example[rows], self._open_start[rows]
        self._n_pred[rows] += 1
        self._n_correct_spans[rows] += (self._gold_type_from[e, start] == open_type) & (self._gold_end_from[e, start] == end)
        self._open_type[rows] = -1

    def _prefix_f1(self, rows: np.ndarray, n: np.ndarray) -> np.ndarray:
        """Span F1 of the first n tags, as ``NERTagEnv._prefix_f1``, for sub-envs ``rows``."""
        e = self._example[rows]
        n_gold = self._gold_before[e, n]
        open_type, start = self._open_type[rows], self._open_start[rows]
        has_open = open_type >= 0
        n_pred = self._n_pred[rows] + has_open
        n_correct = self._n_correct_spans[rows] + (
            has_open & (self._gold_type_from[e, start] == open_type) & (self._gold_end_from[e, start] >= n)
        )
        total = n_gold + n_pred
        return np.where(total > 0, 2 * n_correct / np.maximum(total, 1), 0.0)

    def _observation(self) -> dict[str, np.ndarray]:
        env, e, position = self.env, self._example, self._position
        if env.window is None:
            length = env.max_tokens
            obs = {
                "token_ids": self._words[e, :length],
                "token_mask": (self._rows_from < self._lengths[e][:, None]).astype(np.int64),
                "position": position[:, None].copy(),
                "tag_ids": self._chosen.copy(),
            }
            if env.word_shape:
                obs["shape_ids"] = self._shapes[e, :length]
            return obs
        columns = position[:, None] + self._window_offsets
        obs = {"window_ids": self._words[e[:, None], columns]}
        if env.word_shape:
            obs["window_shape_ids"] = self._shapes[e[:, None], columns]
        previous = self._chosen[np.arange(self.num_envs), np.maximum(position - 1, 0)]
        obs["prev_tag_ids"] = np.where(position > 0, previous, 0)[:, None]
        return obs

    def _legal_masks(self) -> np.ndarray:
        return self._legal_tags[self._open_type + 1]


def _tuples(values: list[tuple[str, ...]]) -> np.ndarray:
    """An object array of tuples (``np.array`` would make a 2-D array of equal-length ones)."""
    array = np.empty(len(values), dtype=object)
    for i, value in enumerate(values):
        array[i] = value
    return array
