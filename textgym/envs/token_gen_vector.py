"""TokenGen-v0 as a native vector env: all sub-envs' outputs in one array, stepped at once."""

from __future__ import annotations

from typing import Any

import numpy as np

from textgym.envs.token_gen import TokenGenEnv
from textgym.envs.vector_base import TextVectorEnv
from textgym.rewards.incremental import AppendedBleu, IncrementalReward
from textgym.rewards.metrics import bleu


class TokenGenVectorEnv(TextVectorEnv):
    """``num_envs`` copies of :class:`~textgym.envs.token_gen.TokenGenEnv` stepped together.

    ``gym.make_vec("TokenGen-v0", num_envs=N)`` builds it. Arguments are the single env's,
    plus ``num_envs`` and ``max_episode_steps``. Spaces are the single env's batched;
    observations, rewards, flags and infos equal ``SyncVectorEnv``'s over the single env
    (next-step autoreset). Infos: ``text`` and ``action_mask`` for every sub-env, ``prompt``
    for sub-envs that reset, ``metrics`` for sub-envs whose episode ended, each with its
    ``_key`` mask.

    Rewards equal the single env's. The reward's metrics score each finished text, except
    that a dense BLEU reward takes phi (the reward of the text so far) from one
    :class:`~textgym.rewards.incremental.AppendedBleu` for all sub-envs, finished texts
    included, as it equals ``bleu()`` exactly (with a word vocabulary). Other dense
    rewards keep phi with an incremental scorer per sub-env where the metrics have one,
    fed with the words written or, for a tokenizer, the text
    (:meth:`~textgym.rewards.incremental.IncrementalReward.follow`), else by rescoring
    the text.
    """

    def __init__(self, num_envs: int = 1, max_episode_steps: int | None = None, **kwargs: Any):
        env = TokenGenEnv(**kwargs)
        self._setup(env, num_envs, max_episode_steps)
        self.vocab, self.max_new_tokens = env.vocab, env.max_new_tokens
        tables = env.batch_tables()
        # every prompt of the split, padded, so that resets are array gathers
        self._split_prompt_ids, self._split_prompt_mask = tables.prompt_ids, tables.prompt_mask
        self._prompts = np.array([example.prompt for example in env.examples], dtype=object)
        self._example_index = np.zeros(num_envs, dtype=np.int64)
        pad = self.vocab.pad_id
        self._output_ids = np.full((num_envs, self.max_new_tokens), pad, dtype=np.int64)
        self._output_mask = np.zeros((num_envs, self.max_new_tokens), dtype=np.int64)
        self._position = np.zeros(num_envs, dtype=np.int64)
        self._texts = np.full(num_envs, "", dtype=object)
        self._static_masks = np.broadcast_to(tables.legal_tokens, (num_envs, len(tables.legal_tokens)))
        self._early_legal_tokens = tables.early_legal_tokens

        # a word vocabulary's text is the space-join of the words written, so texts grow by
        # a word a step; other vocabularies get an incremental decoder per sub-env
        self._words = tables.words
        if self._words is not None:
            self._shown = self._words != ""
        else:
            self._decoders = [self.vocab.incremental_decoder() for _ in range(num_envs)]
        self._n_words = np.zeros(num_envs, dtype=np.int64)

        # dense rewards: phi of every sub-env, and what keeps it up to date as words come
        self._potential = np.zeros(num_envs, dtype=np.float64)
        self._bleu: AppendedBleu | None = None
        self._scorers: list[IncrementalReward | None] | None = None
        terms = env.reward.terms
        if tables.incremental_reward and self._words is not None and [metric for _, metric, _ in terms] == [bleu]:
            self._bleu_name, _, self._bleu_weight = terms[0]
            references = [example.references for example in env.examples]
            self._bleu = AppendedBleu(list(self._words), references, num_envs, self.max_new_tokens)
        elif tables.incremental_reward:
            self._scorers = [None] * num_envs  # each sub-env's is made on its reset

    def _reset_envs(self, rows: np.ndarray, options: dict, infos: dict[str, Any]) -> None:
        indices = self._draw_examples(rows, options)
        self._example_index[rows] = indices
        self._output_ids[rows] = self.vocab.pad_id
        self._output_mask[rows] = 0
        self._position[rows] = 0
        self._texts[rows] = ""
        self._n_words[rows] = 0
        if self._words is None:
            for i in rows.tolist():
                self._decoders[i].reset()
        self._potential[rows] = 0.0
        if self._bleu is not None:
            self._bleu.reset(rows, indices)
        elif self._scorers is not None:
            for i, index in zip(rows.tolist(), indices.tolist()):
                self._scorers[i] = IncrementalReward(self.env.reward, self.env.examples[index].references)
        self._set_info(infos, "text", rows, "")
        self._set_info(infos, "prompt", rows, self._prompts[indices])

    def _step_envs(self, rows, actions, rewards, terminated, truncated, infos) -> None:
        eos = actions == self.vocab.eos_id
        terminated[rows] = eos
        writing, tokens = rows[~eos], actions[~eos]
        positions = self._position[writing]
        self._output_ids[writing, positions] = tokens
        self._output_mask[writing, positions] = 1
        self._position[writing] = positions + 1
        truncated[writing] = positions + 1 >= self.max_new_tokens
        self._append_texts(writing, tokens)

        done = terminated[rows] | truncated[rows]
        ended = rows[done]
        if self.env.reward_mode == "sparse":
            rewards[ended], metrics = self._final_scores(ended)
        else:
            potential, metrics = self._potentials(rows, done, writing, tokens)
            rewards[rows] = potential - self._potential[rows]
            self._potential[rows] = potential
        self._set_metrics(infos, ended, metrics)
        self._set_info(infos, "text", rows, self._texts[rows])

    def _append_texts(self, rows: np.ndarray, tokens: np.ndarray) -> None:
        """Update the texts of ``rows``, which wrote ``tokens``."""
        if self._words is None:  # other vocabularies: one incremental decoder per sub-env
            for i, token in zip(rows.tolist(), tokens.tolist()):
                self._texts[i] = self._decoders[i].append(token)
            return
        shown = self._shown[tokens]
        rows, words = rows[shown], self._words[tokens[shown]]
        texts = self._texts[rows]
        self._texts[rows] = np.where(self._n_words[rows] > 0, texts + " " + words, words)
        self._n_words[rows] += 1

    def _final_scores(self, rows: np.ndarray) -> tuple[np.ndarray, list[dict[str, float]]]:
        """The reward and metrics of the texts of ``rows``, scored by the metrics themselves."""
        reward, examples = self.env.reward, self.env.examples
        scores = [
            reward(self._texts[i], examples[index].references, examples[index].prompt)
            for i, index in zip(rows.tolist(), self._example_index[rows].tolist())
        ]
        return np.array([value for value, _ in scores], dtype=np.float64), [metrics for _, metrics in scores]

    def _set_metrics(self, infos: dict[str, Any], rows: np.ndarray, metrics: list[dict[str, float]]) -> None:
        """``info["metrics"]`` of ended sub-envs, as ``TokenGenEnv.end_metrics``."""
        examples = self.env.examples
        ended = [self.env.end_metrics(reward_metrics, self._texts[i], examples[index])
                 for i, index, reward_metrics in zip(rows.tolist(), self._example_index[rows].tolist(), metrics)]
        super()._set_metrics(infos, rows, ended)

    def _potentials(self, rows: np.ndarray, done: np.ndarray, writing: np.ndarray,
                    tokens: np.ndarray) -> tuple[np.ndarray, list[dict[str, float]]]:
        """phi of the texts of ``rows`` after ``writing`` wrote ``tokens``, and the metrics of
        the finished ones (``rows[done]``)."""
        if self._bleu is not None:
            # the tracker's BLEU equals bleu() of the text exactly (the same n-gram counts
            # through the same bleu_from_counts), so it scores finished texts too
            self._bleu.append(writing, tokens)
            values = self._bleu.values(rows)
            return self._bleu_weight * values, [{self._bleu_name: value} for value in values[done].tolist()]
        potential = np.empty(rows.size, dtype=np.float64)
        # as EpisodeReward: finished texts are scored by the metrics themselves
        potential[done], metrics = self._final_scores(rows[done])
        going = rows[~done]
        if self._scorers is not None:
            if self._words is None:  # a tokenizer: follow the texts of the sub-envs going on
                for i in going.tolist():
                    self._scorers[i].follow(self._texts[i])
            else:
                for i, token in zip(writing.tolist(), tokens.tolist()):
                    self._scorers[i].append(self._words[token])
            potential[~done] = [self._scorers[i].value for i in going.tolist()]
        else:
            potential[~done] = self._final_scores(going)[0]
        return potential, metrics

    def _observation(self) -> dict[str, np.ndarray]:
        return {
            "prompt_ids": self._split_prompt_ids[self._example_index],
            "prompt_mask": self._split_prompt_mask[self._example_index],
            "output_ids": self._output_ids.copy(),
            "output_mask": self._output_mask.copy(),
            "position": self._position[:, None].copy(),
        }

    def _legal_masks(self) -> np.ndarray:
        if self.env.mask_fn is None:
            early = self._position < self.env.min_new_tokens
            if not early.any():
                return self._static_masks
            return np.where(early[:, None], self._early_legal_tokens, self._static_masks)
        masks = np.empty(self._static_masks.shape, dtype=bool)
        for i in range(self.num_envs):
            prompt_ids = self.env.encoded_prompt(int(self._example_index[i]))
            masks[i] = self.env.legal_mask(prompt_ids, self._output_ids[i, : self._position[i]].tolist())
        return masks
