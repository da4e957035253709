"""TokenGen-v0 as a native vector env: all sub-envs' outputs in one array, stepped at once."""

from __future__ import annotations

from typing import Any

import numpy as np

from textgym.envs.base import example_index
from textgym.envs.token_gen import TokenGenEnv
from textgym.envs.vector_base import TextVectorEnv
from textgym.rewards import EpisodeReward


class TokenGenVectorEnv(TextVectorEnv):
    """``num_envs`` copies of :class:`~textgym.envs.token_gen.TokenGenEnv` stepped together.

    ``gym.make_vec("TokenGen-v0", num_envs=N)`` builds it. Arguments are the single env's,
    plus ``num_envs`` and ``max_episode_steps``. Spaces are the single env's batched;
    observations, rewards, flags and infos equal ``SyncVectorEnv``'s over the single env
    (next-step autoreset). Infos: ``text`` and ``action_mask`` for every sub-env, ``prompt``
    for sub-envs that reset, ``metrics`` for sub-envs whose episode ended, each with its
    ``_key`` mask.
    """

    def __init__(self, num_envs: int = 1, max_episode_steps: int | None = None, **kwargs: Any):
        env = TokenGenEnv(**kwargs)
        self._setup(env, num_envs, max_episode_steps)
        self.vocab, self.max_new_tokens = env.vocab, env.max_new_tokens
        pad = self.vocab.pad_id
        # every prompt of the split, padded, so that resets are array gathers
        self._split_prompt_ids = np.full((len(env.examples), env.max_prompt_tokens), pad, dtype=np.int64)
        self._split_prompt_mask = np.zeros(self._split_prompt_ids.shape, dtype=np.int64)
        for index in range(len(env.examples)):
            ids = env.encoded_prompt(index)
            self._split_prompt_ids[index, : len(ids)] = ids
            self._split_prompt_mask[index, : len(ids)] = 1
        self._example_index = np.zeros(num_envs, dtype=np.int64)
        self._output_ids = np.full((num_envs, self.max_new_tokens), pad, dtype=np.int64)
        self._output_mask = np.zeros((num_envs, self.max_new_tokens), dtype=np.int64)
        self._position = np.zeros(num_envs, dtype=np.int64)
        self._examples = [env.examples[0]] * num_envs
        self._outputs: list[list[int]] = [[] for _ in range(num_envs)]
        self._texts = np.full(num_envs, "", dtype=object)
        self._rewards = [EpisodeReward(env.reward, env.reward_mode, env.word_edits) for _ in range(num_envs)]
        self._static_masks = np.broadcast_to(env._static_mask, (num_envs, len(env._static_mask)))

    def _reset_envs(self, rows: np.ndarray, options: dict | None, infos: dict[str, Any]) -> None:
        examples, rngs = self.env.examples, self._rngs
        indices = [example_index(options, len(examples), rngs[i]) for i in rows.tolist()]
        prompts = []
        for i, index in zip(rows.tolist(), indices):
            example = self._examples[i] = examples[index]
            self._outputs[i] = []
            self._rewards[i].reset(example.references, example.prompt)
            prompts.append(example.prompt)
        self._example_index[rows] = indices
        self._output_ids[rows] = self.vocab.pad_id
        self._output_mask[rows] = 0
        self._position[rows] = 0
        self._texts[rows] = ""
        self._set_info(infos, "text", rows, "")
        self._set_info(infos, "prompt", rows, prompts)

    def _step_envs(self, rows, actions, rewards, terminated, truncated, infos) -> None:
        eos = actions == self.vocab.eos_id
        terminated[rows] = eos
        writing, tokens = rows[~eos], actions[~eos]
        positions = self._position[writing]
        self._output_ids[writing, positions] = tokens
        self._output_mask[writing, positions] = 1
        self._position[writing] = positions + 1
        truncated[writing] = positions + 1 >= self.max_new_tokens
        decode, texts, outputs, report = self.vocab.decode, self._texts, self._outputs, self.env.report_appended
        for i, token in zip(writing.tolist(), tokens.tolist()):
            outputs[i].append(token)
            texts[i] = decode(outputs[i])
            report(self._rewards[i], token)
        done = terminated | truncated
        dense = self.env.reward_mode == "dense"
        for i in rows.tolist() if dense else np.flatnonzero(done).tolist():
            rewards[i] = self._rewards[i].step(texts[i], bool(done[i]))
        ended = np.flatnonzero(done)
        self._set_metrics(infos, ended, [self._rewards[i].metrics for i in ended.tolist()])
        self._set_info(infos, "text", rows, texts[rows])

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
            return self._static_masks
        env = self.env
        masks = np.empty(self._static_masks.shape, dtype=bool)
        for i in range(self.num_envs):
            # the blueprint's mask_fn check runs on this sub-env's prompt and output
            env.prompt_token_ids, env.output_token_ids = self._prompt_token_ids(i), self._outputs[i]
            masks[i] = env._legal_mask()
        return masks

    def _prompt_token_ids(self, i: int) -> list[int]:
        return self.env.encoded_prompt(int(self._example_index[i]))
