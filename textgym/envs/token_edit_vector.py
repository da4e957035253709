"""TokenEdit-v0 as a native vector env: all sub-envs' texts, cursors and masks in arrays."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from textgym.envs.token_edit import DELETE, KEEP, STOP, TokenEditEnv
from textgym.envs.vector_base import TextVectorEnv
from textgym.rewards import rouge1, rouge2, rouge_scores, rougeL
from textgym.rewards.batch_rouge import ROUGE_TYPES, BatchRouge
from textgym.vocab import WordVocabulary

# the ROUGE metrics that BatchRouge scores, by metric function
_ROUGE_METRICS = {rouge1: "rouge1", rouge2: "rouge2", rougeL: "rougeL"}


class TokenEditVectorEnv(TextVectorEnv):
    """``num_envs`` copies of :class:`~textgym.envs.token_edit.TokenEditEnv` stepped together.

    ``gym.make_vec("TokenEdit-v0", num_envs=N)`` builds it. Arguments are the single env's,
    plus ``num_envs`` and ``max_episode_steps``. Cursors, edit counts, the current texts'
    ids and the action masks of all sub-envs are arrays, updated at once; each edit splices
    one sub-env's token list. Observations, rewards, flags and infos equal
    ``SyncVectorEnv``'s over the single env (next-step autoreset). Infos: ``text`` and
    ``action_mask`` for every sub-env, ``source`` for sub-envs that reset, ``metrics`` for
    sub-envs whose episode ended.

    The rewards of a step (every finished episode, and in dense mode every text that
    changed) are scored together: with a word vocabulary, ROUGE terms and the end metrics'
    ROUGE by :class:`~textgym.rewards.batch_rouge.BatchRouge`, for all sub-envs at once
    with array operations; other terms by one ``reward.columns`` call, so that model-based
    rewards score their texts in one batch.
    """

    def __init__(self, num_envs: int = 1, max_episode_steps: int | None = None, **kwargs: Any):
        env = TokenEditEnv(**kwargs)
        self._setup(env, num_envs, max_episode_steps)
        self.vocab, self.mode, self.stop_anywhere = env.vocab, env.mode, env.stop_anywhere
        self.max_length, self.max_edits, self.max_steps = env.max_length, env.max_edits, env.max_steps
        self._dense = env.reward_mode == "dense"
        pad, n_examples = self.vocab.pad_id, len(env.examples)
        # every source of the split, padded, so that resets are array gathers
        sources = [env.encoded_prompt(e) for e in range(n_examples)]
        self._source_ids = np.full((n_examples, env.max_source_tokens), pad, dtype=np.int64)
        self._source_lengths = np.array([len(ids) for ids in sources], dtype=np.int64)
        for e, ids in enumerate(sources):
            self._source_ids[e, : len(ids)] = ids
        self._source_mask = (np.arange(env.max_source_tokens) < self._source_lengths[:, None]).astype(np.int64)
        # each source's decoded text and prompt, so that resets gather them
        self._source_texts = np.array(self.vocab.decode_rows(self._source_ids, self._source_lengths), dtype=object)
        self._prompts = np.array([e.prompt for e in env.examples], dtype=object)
        self._candidates, self._candidate_slot = env.candidates, env._candidate_slot
        self._replace, self._insert = env._replace, env._insert
        # the token each action writes: its candidate for replace and insert, else -1
        self._action_token = np.full(env.action_space.n, -1, dtype=np.int64)
        self._action_token[self._replace] = self._action_token[self._insert] = self._candidates

        self._example = np.zeros(num_envs, dtype=np.int64)
        self._texts = np.full(num_envs, "", dtype=object)
        self._current_ids = np.full((num_envs, self.max_length), pad, dtype=np.int64)
        self._current_mask = np.zeros((num_envs, self.max_length), dtype=np.int64)
        self._length = np.zeros(num_envs, dtype=np.int64)
        self._cursor = np.zeros(num_envs, dtype=np.int64)
        self._edits = np.zeros(num_envs, dtype=np.int64)
        self._steps = np.zeros(num_envs, dtype=np.int64)
        self._masks = np.zeros((num_envs, env.action_space.n), dtype=bool)
        self._masks_stale = True  # see _legal_masks
        self._potential = np.zeros(num_envs, dtype=np.float64)
        # a word vocabulary's texts are space-joins of words, so ROUGE can score their ids
        examples = env.examples
        self._has_references = np.array([bool(e.references) for e in examples])
        self._rouge: BatchRouge | None = None
        if isinstance(self.vocab, WordVocabulary) and self._has_references.any():
            self._rouge = BatchRouge([env.decoded_word(i) for i in range(len(self.vocab))], [e.references for e in examples])
        # the reward's ROUGE terms, name -> ROUGE type, which BatchRouge scores when there is one
        self._rouge_terms = {name: _ROUGE_METRICS[metric] for name, metric, _ in env.reward.terms
                             if metric in _ROUGE_METRICS and self._rouge is not None}
        # the ROUGE types that end metrics add to the reward's own
        self._end_rouge = [name for name in ROUGE_TYPES if name not in env.reward.names]

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
        self._texts[rows] = self._source_texts[indices]
        self._masks_stale = True
        self._set_info(infos, "text", rows, self._texts[rows])
        self._set_info(infos, "source", rows, self._prompts[indices])

    def _step_envs(self, rows, actions, rewards, terminated, truncated, infos) -> None:
        # a masked action is a no-op that still counts as a step, as in the single env
        legal = self._legal_masks()[rows, actions]
        self._steps[rows] += 1
        keep = legal & (actions == KEEP)
        self._cursor[rows[keep]] += 1
        changed = legal & (actions != KEEP) & (actions != STOP)
        self._edit(rows[changed], actions[changed])
        self._masks_stale = True

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
        to the id arrays of all rows at once, then decode each row's text."""
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
        ids = padded[np.arange(rows.size)[:, None], np.maximum(source, 0)]
        writes = ~delete
        ids[np.flatnonzero(writes), cursor[writes]] = written[writes]
        self._current_ids[rows] = ids
        length = self._length[rows] - shift
        self._length[rows] = length
        self._current_mask[rows] = positions < length[:, None]
        self._cursor[rows] = cursor + writes
        self._edits[rows] += 1
        self._texts[rows] = self.vocab.decode_rows(ids, length)

    def _score(self, rows: np.ndarray, done: np.ndarray, scored: np.ndarray, rewards: np.ndarray,
               infos: dict[str, Any]) -> None:
        """Rewards of ``rows`` (those marked ``scored`` pay one, as the single env's step), and
        the end metrics of the ``done`` ones."""
        paying = rows[scored] if self._dense else rows[done]
        # in sparse mode every paying text ends, so its end metrics' ROUGE comes in the same call
        columns = self._columns(paying, () if self._dense else self._end_rouge)
        value = sum(weight * columns[name] for name, _, weight in self.env.reward.terms)
        if self._dense:
            rewards[paying] = value - self._potential[paying]
            self._potential[paying] = value
        else:
            rewards[paying] = value
        ended = rows[done]
        if ended.size:
            self._set_end_metrics(infos, ended, {name: values[done[scored]] for name, values in columns.items()}
                                  if self._dense else columns)

    def _columns(self, rows: np.ndarray, rouge_types: Sequence[str] = ()) -> dict[str, np.ndarray]:
        """Each reward term's value of the texts of ``rows``, in term order, then the
        ``rouge_types`` that BatchRouge scores in the same call (none without it)."""
        extra = list(rouge_types) if self._rouge is not None else []
        rouge = self._rouge_scores(rows, [*self._rouge_terms.values(), *extra])
        columns = {name: rouge[rouge_type] for name, rouge_type in self._rouge_terms.items()}
        names = self.env.reward.names
        if len(columns) < len(names) and rows.size:
            indices, examples = self._example[rows], self.env.examples
            others = self.env.reward.columns(list(self._texts[rows]), [examples[e].references for e in indices.tolist()],
                                             list(self._source_texts[indices]), skip=self._rouge_terms)
            columns |= {name: np.array(values, dtype=np.float64) for name, values in others.items()}
        return {**{name: columns.get(name, np.zeros(0)) for name in names}, **{kind: rouge[kind] for kind in extra}}

    def _rouge_scores(self, rows: np.ndarray, rouge_types: list[str]) -> dict[str, np.ndarray]:
        """ROUGE of the texts of ``rows`` (whose examples have references), as ``rouge_scores``."""
        if not rouge_types or not rows.size:
            return {name: np.zeros(rows.size) for name in rouge_types}
        if self._rouge is not None:
            return self._rouge.scores(self._current_ids[rows], self._example[rows], list(dict.fromkeys(rouge_types)))
        examples = self.env.examples
        scores = [rouge_scores(self._texts[i], examples[e].references, rouge_types)
                  for i, e in zip(rows.tolist(), self._example[rows].tolist())]
        return {name: np.array([s[name] for s in scores], dtype=np.float64) for name in rouge_types}

    def _set_end_metrics(self, infos: dict[str, Any], rows: np.ndarray, columns: dict[str, np.ndarray]) -> None:
        """``info["metrics"]`` of ended sub-envs ``rows``, as ``token_edit.end_metrics``: the
        reward's metrics, the ROUGE F-measures it did not score (for examples with
        references; from ``columns`` when they hold them), compression ratio and edits."""
        for name in self.env.reward.names:
            self._set_metric(infos, name, rows, columns[name])
        has_references = self._has_references[self._example[rows]]
        if has_references.any():
            referenced = rows[has_references]
            missing = [name for name in self._end_rouge if name not in columns]
            scores = self._rouge_scores(referenced, missing)
            for name in self._end_rouge:
                values = scores[name] if name in scores else columns[name][has_references]
                self._set_metric(infos, name, referenced, values)
        n_source = np.maximum(1, self._source_lengths[self._example[rows]])
        self._set_metric(infos, "compression_ratio", rows, self._length[rows] / n_source)
        self._set_metric(infos, "edits_used", rows, self._edits[rows].astype(np.float64))

    # -- arrays ----------------------------------------------------------------------------

    def _legal_masks(self) -> np.ndarray:
        """Legal actions of every sub-env, as ``TokenEditEnv._update_mask``; recomputed for all
        of them at once after the state changed (a step and its resets change it once)."""
        if self._masks_stale:
            self._masks_stale = False
            on_token = self._cursor < self._length
            can_edit = self._edits < self.max_edits if self.max_edits is not None else np.ones(self.num_envs, dtype=bool)
            masks = self._masks
            masks[:, KEEP] = on_token
            masks[:, DELETE] = on_token & can_edit
            masks[:, STOP] = self.stop_anywhere | ~on_token
            if self.mode == "edit":
                masks[:, self._replace] = (on_token & can_edit)[:, None]
                under = self._current_ids[np.arange(self.num_envs), np.minimum(self._cursor, self.max_length - 1)]
                slot = self._candidate_slot[under]
                own = np.flatnonzero(on_token & (slot >= 0))
                masks[own, self._replace.start + slot[own]] = False
                masks[:, self._insert] = (can_edit & (self._length < self.max_length))[:, None]
        return self._masks

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
