"""TokenGen-v0: token-by-token text generation scored by a text metric."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np

from textgym.envs.base import TextEnv, checked_int, counter_box, id_box, mask_box, token_ids
from textgym.rewards import EpisodeReward, Reward, bleu, coverage, make_reward, rougeL
from textgym.tasks import TextExample, load_task
from textgym.vocab import WordVocabulary, resolve_vocabulary

MaskFn = Callable[[Sequence[int], Sequence[int]], Any]
# what a task with concepts (CommonGen) reports at the end of an episode, whatever the reward
CONCEPT_END_METRICS = {"bleu": bleu, "rougeL": rougeL, "coverage": coverage}


@dataclass(frozen=True)
class TokenGenTables:
    """A TokenGen env's tables for a batched version of it (:meth:`TokenGenEnv.batch_tables`)."""

    prompt_ids: np.ndarray  # (examples, P): each prompt's token ids, padded with the pad id
    prompt_mask: np.ndarray  # (examples, P): 1 on the real ids
    legal_tokens: np.ndarray  # (vocab,) bool: the legal tokens before mask_fn
    early_legal_tokens: np.ndarray  # (vocab,) bool: the same without EOS, before min_new_tokens
    # (vocab,) str: what each id appends to the text (pad, bos, eos append nothing), for a
    # word vocabulary, whose text is the space-join of these; None for tokenizers
    words: np.ndarray | None
    # a dense reward kept up to date by incremental scorers, fed with ``words``, or with
    # the text (IncrementalReward.follow) when ``words`` is None
    incremental_reward: bool


class TokenGenEnv(TextEnv):
    """
    ## Description
    The agent writes a text one token at a time after a prompt, and is scored by a text
    metric (BLEU, chrF, ROUGE, ...) against the example's references. Each episode draws
    one example (a prompt and its references) from the task split.

    ## Action Space
    ``Discrete(len(vocab))``: the id of the next token. The vocabulary's EOS ends the
    episode. ``info["action_mask"]`` marks the legal tokens: every token but PAD, BOS and
    UNK, narrowed by ``allowed_tokens`` and ``mask_fn``; EOS is legal once ``min_new_tokens``
    tokens are written (at once by default), and then always. An agent that
    ignores the mask may still write any token in the space; the metric scores it.

    ## Observation Space
    A ``Dict`` of int64 ``Box`` arrays:
    - ``prompt_ids`` (P,): the prompt's token ids, padded with the pad id; ``prompt_mask`` (P,)
    - ``output_ids`` (N,): the tokens written so far, padded; ``output_mask`` (N,)
    - ``position`` (1,): the number of tokens written, in [0, N]

    P is the longest prompt of the task, N is ``max_new_tokens``.

    ## Starting State
    An example drawn uniformly from the split (or ``options={"index": i}`` in ``reset``),
    with an empty output.

    ## Rewards
    ``reward`` names a metric in [0, 1], a callable ``(prediction, references, source)``, or
    a weighted list of them (see ``textgym.rewards.make_reward``); weights are relative
    (normalised to sum to 1), so the reward stays in [0, 1]. The default is the task's
    own (``token_accuracy`` for copy/reverse/sort, ``bleu`` otherwise). A callable is
    called once at construction, on the first example's prompt, so that one that raises or
    returns no finite number fails there.
    ``reward_mode="sparse"`` pays the metric of the final text at the end;
    ``"dense"`` pays the change in the metric of the text at every step, which sums to the
    sparse reward. A reference-free task (rows without references, or a ``.txt`` file of
    prompts) takes only rewards that need none, such as ``"lm_fluency"`` or a callable;
    the others are an error at construction.

    ## Episode End
    Terminated when the agent writes EOS. Truncated when ``max_new_tokens`` tokens are
    written (so writing a longest-length reference in full ends by truncation, no EOS needed).

    ## Information
    ``info["text"]`` is the text written so far, ``info["action_mask"]`` an ``int8`` array of
    legal actions (unless ``action_mask=False``), ``info["prompt"]`` the prompt text (on
    reset), and ``info["metrics"]`` the reward's metrics at the end of an episode. On a task
    whose examples have concepts (CommonGen), ``info["metrics"]`` also holds ``bleu``
    (BLEU-4), ``rougeL`` (when the examples have references) and ``coverage`` (the share of
    the prompt's concept words used), whatever the reward.

    ## Arguments
    - ``task``: built-in name (copy, reverse, sort, keywords), ``.jsonl`` path, ``{split:
      source}`` dict, list of ``{"prompt", "references"}`` dicts, HF dataset or ``Task``.
    - ``split``: "train" (default), "validation" or "test". ``task_kwargs``: sizes of a
      built-in task, e.g. ``{"length": 5, "n_symbols": 8}``; for one file or list of rows,
      ``{"validation": 0.05, "seed": 0}`` holds out concept sets as a validation split
      (``textgym.tasks.split_concept_sets``), e.g. of CommonGen's train file.
    - ``vocab``: None (a word vocabulary built from all the task's text), a ``Vocabulary``,
      a transformers tokenizer or a tokenizer directory.
    - ``reward``, ``reward_mode``: see Rewards.
    - ``max_new_tokens``: default the length of the task's longest reference (at least 1),
      so the best output is always reachable while the MDP stays as small as it can be;
      required for a reference-free task.
    - ``allowed_tokens``: tokens (str or id) the agent may write; ``mask_fn(prompt_ids,
      output_ids) -> bool array`` narrows the legal set per step. ``mask_fn`` is called
      once at construction (first example, empty output): it must return a bool array of
      ``len(vocab)`` that leaves some token legal.
    - ``min_new_tokens``: EOS is not legal before this many tokens are written (default 0),
      as ``generate``'s ``min_new_tokens``. Like every mask, it guides agents that read it:
      an EOS written anyway still ends the episode.
    - ``action_mask``: False skips computing the mask for every info (huge vocabularies).
    - ``render_mode``: None, "ansi" (returns a str) or "human" (prints).

    ## Version History
    - v0: initial version.
    """

    def __init__(
        self,
        task: Any = "copy",
        split: str = "train",
        vocab: Any = None,
        reward: Any = None,
        reward_mode: str = "sparse",
        max_new_tokens: int | None = None,
        allowed_tokens: Sequence[str | int] | None = None,
        mask_fn: MaskFn | None = None,
        min_new_tokens: int = 0,
        action_mask: bool = True,
        task_kwargs: dict | None = None,
        render_mode: str | None = None,
    ):
        super().__init__(render_mode=render_mode, action_mask=action_mask)
        self.task = load_task(task, task_kwargs)
        self.examples = self.task.split(split)
        self.split = split
        self.vocab = resolve_vocabulary(vocab, self.task.texts())
        self.reward = make_reward(reward if reward is not None else self.task.default_reward or "bleu")
        self.reward.check_references(self.examples, self.task.name)
        first = self.examples[0]
        self.reward.check(first.prompt, first.references, first.prompt)
        self._extra_end_metrics = _extra_end_metrics(self.reward, self.examples)
        # a word vocabulary decodes to the space-join of its tokens, so dense rewards follow
        # appended words; a tokenizer's text grows at its end, so they follow the text
        # (IncrementalReward.follow): neither rescores the whole text
        self.word_edits = isinstance(self.vocab, WordVocabulary)
        self._episode_reward = EpisodeReward(self.reward, reward_mode, word_edits=True)
        self.reward_mode = reward_mode

        longest_prompt = max(len(self.vocab.encode(e.prompt)) for e in self.task.examples())
        if max_new_tokens is None:
            references = [r for e in self.task.examples() for r in e.references]
            if not references:
                raise ValueError("a reference-free task gives no output length: set max_new_tokens")
            # at least 1, so that a task of empty references still has an action (EOS)
            max_new_tokens = max(1, max(len(self.vocab.encode(r)) for r in references))
        self.max_new_tokens = max_new_tokens = checked_int("max_new_tokens", max_new_tokens)
        self.max_prompt_tokens = max(1, longest_prompt)

        n = len(self.vocab)
        self.action_space = gym.spaces.Discrete(n)
        self.observation_space = gym.spaces.Dict(
            {
                "prompt_ids": id_box(self.max_prompt_tokens, n),
                "prompt_mask": mask_box(self.max_prompt_tokens),
                "output_ids": id_box(max_new_tokens, n),
                "output_mask": mask_box(max_new_tokens),
                "position": counter_box(max_new_tokens),
            }
        )
        self._static_mask = self._make_static_mask(allowed_tokens)
        self.min_new_tokens = self._checked_min_new_tokens(min_new_tokens)
        # the legal tokens before min_new_tokens are written: the static ones but EOS
        self._early_mask = self._static_mask.copy()
        self._early_mask[self.vocab.eos_id] = False
        for mask in (self._static_mask, self._early_mask):
            mask.flags.writeable = False  # legal_mask() hands them out
        if mask_fn is not None and not callable(mask_fn):
            raise ValueError(f"mask_fn must be callable, got {type(mask_fn).__name__}")
        self.mask_fn = mask_fn

        pad = self.vocab.pad_id
        self._prompt_ids = np.full(self.max_prompt_tokens, pad, dtype=np.int64)
        self._prompt_mask = np.zeros(self.max_prompt_tokens, dtype=np.int64)
        self._output_ids = np.full(max_new_tokens, pad, dtype=np.int64)
        self._output_mask = np.zeros(max_new_tokens, dtype=np.int64)
        self.example = self.examples[0]
        self.prompt_token_ids: list[int] = []
        self.output_token_ids: list[int] = []
        self._decoder = self.vocab.incremental_decoder()
        self.text = ""
        if mask_fn is not None:
            self._check_mask_fn()

    def _make_static_mask(self, allowed_tokens: Sequence[str | int] | None) -> np.ndarray:
        vocab = self.vocab
        if allowed_tokens is None:
            mask = np.ones(len(vocab), dtype=bool)
            # tokenizers often reuse EOS as pad/bos/unk: only forbid ids that are not EOS
            mask[[i for i in (vocab.pad_id, vocab.bos_id, vocab.unk_id) if i != vocab.eos_id]] = False
        else:
            if isinstance(allowed_tokens, (str, bytes)) or not hasattr(allowed_tokens, "__iter__"):
                raise ValueError(f"allowed_tokens must be a list of tokens (str or id), got {allowed_tokens!r}")
            mask = np.zeros(len(vocab), dtype=bool)
            mask[token_ids(vocab, allowed_tokens, "allowed_tokens")] = True
        mask[vocab.eos_id] = True
        return mask

    def _checked_min_new_tokens(self, min_new_tokens: Any) -> int:
        min_new_tokens = checked_int("min_new_tokens", min_new_tokens, minimum=0)
        if min_new_tokens > self.max_new_tokens:
            raise ValueError(f"min_new_tokens={min_new_tokens} exceeds max_new_tokens={self.max_new_tokens}")
        if min_new_tokens > 0 and self._static_mask.sum() == 1:
            raise ValueError(f"min_new_tokens={min_new_tokens} makes EOS illegal at first, and allowed_tokens "
                             "leaves no other token")
        return min_new_tokens

    def batch_tables(self) -> TokenGenTables:
        """What a batched version of this env needs (``TokenGenVectorEnv`` uses it), computed
        once: every prompt of the split padded into one table, the static legal tokens,
        and how the text and the dense reward grow. Per-step rules come from
        :meth:`legal_mask` and ``self.reward``."""
        pad, n_examples = self.vocab.pad_id, len(self.examples)
        prompt_ids = np.full((n_examples, self.max_prompt_tokens), pad, dtype=np.int64)
        prompt_mask = np.zeros(prompt_ids.shape, dtype=np.int64)
        for index in range(n_examples):
            ids = self.encoded_prompt(index)
            prompt_ids[index, : len(ids)] = ids
            prompt_mask[index, : len(ids)] = 1
        words = None
        if self.word_edits:
            words = np.array([self.decoded_word(i) for i in range(len(self.vocab))], dtype=object)
        return TokenGenTables(
            prompt_ids=prompt_ids,
            prompt_mask=prompt_mask,
            legal_tokens=self._static_mask,
            early_legal_tokens=self._early_mask,
            words=words,
            incremental_reward=self._episode_reward.tracks_words,
        )

    def legal_mask(self, prompt_ids: Sequence[int], output_ids: Sequence[int]) -> np.ndarray:
        """The legal tokens (a bool array) after ``output_ids`` were written for a prompt of
        ``prompt_ids``: the static ones (without EOS before ``min_new_tokens``), narrowed by
        ``mask_fn``."""
        legal = self._early_mask if len(output_ids) < self.min_new_tokens else self._static_mask
        if self.mask_fn is None:
            return legal
        narrowed = np.asarray(self.mask_fn(prompt_ids, output_ids), dtype=bool)
        if narrowed.shape != legal.shape:
            raise ValueError(f"mask_fn returned shape {narrowed.shape}, expected {legal.shape}")
        mask = legal & narrowed
        if not mask.any():
            keep = "EOS" if legal is self._static_mask else f"a token other than EOS before min_new_tokens={self.min_new_tokens}"
            raise ValueError(f"mask_fn left no legal action; keep at least {keep} legal")
        return mask

    def _check_mask_fn(self) -> None:
        """Call ``mask_fn`` once, on the first example's prompt ids and an empty output, so
        that a broken one fails at construction rather than at the first step."""
        try:
            self.legal_mask(self.encoded_prompt(0), [])
        except Exception as err:  # noqa: BLE001 (any failure of user code is reported)
            name = getattr(self.mask_fn, "__name__", type(self.mask_fn).__name__)
            message = str(err) if isinstance(err, ValueError) else f"raised {type(err).__name__}: {err}"
            kind = TypeError if isinstance(err, TypeError) else ValueError
            raise kind(f"mask_fn={name}: on the first example's prompt ids and an empty output, {message}") from err

    def _legal_mask(self) -> np.ndarray:
        return self.legal_mask(self.prompt_token_ids, self.output_token_ids)

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        options = self._checked_reset(seed, options)
        self.prompt_token_ids = self._draw_example(options)
        self.output_token_ids = []
        self._decoder.reset()
        self.text = ""

        n_prompt = len(self.prompt_token_ids)
        self._prompt_ids.fill(self.vocab.pad_id)
        self._prompt_ids[:n_prompt] = self.prompt_token_ids
        self._prompt_mask.fill(0)
        self._prompt_mask[:n_prompt] = 1
        self._output_ids.fill(self.vocab.pad_id)
        self._output_mask.fill(0)

        self._episode_reward.reset(self.example.references, self.example.prompt)
        self._begin_episode()
        return self._observation(), self._info("", prompt=self.example.prompt)

    def step(self, action):
        token = self._checked_action(action)
        terminated = token == self.vocab.eos_id
        if not terminated:
            position = len(self.output_token_ids)
            self.output_token_ids.append(token)
            self._output_ids[position] = token
            self._output_mask[position] = 1
            self.text = self._decoder.append(token)
            self.report_appended(self._episode_reward, token, self.text)
        truncated = not terminated and len(self.output_token_ids) >= self.max_new_tokens
        done = terminated or truncated
        reward = self._episode_reward.step(self.text, done)
        metrics = self.end_metrics(self._episode_reward.metrics, self.text, self.example) if done else None
        info = self._info(self.text, done, metrics)
        return self._observation(), reward, terminated, truncated, info

    def end_metrics(self, reward_metrics: dict[str, float], text: str, example: TextExample) -> dict[str, float]:
        """``info["metrics"]`` of an episode on ``example`` that ended with ``text``: the
        reward's metrics, plus on a task with concepts the ``CONCEPT_END_METRICS`` that the
        reward did not score."""
        if not self._extra_end_metrics:
            return reward_metrics
        metrics = dict(reward_metrics)
        for name in self._extra_end_metrics:
            metrics[name] = CONCEPT_END_METRICS[name](text, example.references, example.prompt)
        return metrics

    def report_appended(self, episode_reward: EpisodeReward, token: int, text: str) -> None:
        """Tell ``episode_reward``'s incremental scorer (if any) that ``token`` was written,
        which made the text ``text``."""
        scorer = episode_reward.words
        if scorer is None:
            return
        if self.word_edits:
            scorer.append(self.decoded_word(token))
        else:
            scorer.follow(text)

    def _observation(self) -> dict[str, np.ndarray]:
        return {
            "prompt_ids": self._prompt_ids.copy(),
            "prompt_mask": self._prompt_mask.copy(),
            "output_ids": self._output_ids.copy(),
            "output_mask": self._output_mask.copy(),
            "position": np.array([len(self.output_token_ids)], dtype=np.int64),
        }

    def _render_text(self) -> str:
        return f"prompt: {self.example.prompt}\noutput: {self.text}▌ ({len(self.output_token_ids)}/{self.max_new_tokens})"


def _extra_end_metrics(reward: Reward, examples: Sequence[TextExample]) -> tuple[str, ...]:
    """The ``CONCEPT_END_METRICS`` an env on ``examples`` adds to the reward's at the end:
    none unless an example has concepts; BLEU and ROUGE-L only when all have references.
    The same names for every example, so that vector envs batch them."""
    if not any(example.concepts for example in examples):
        return ()
    with_references = all(example.references for example in examples)
    return tuple(name for name in CONCEPT_END_METRICS
                 if name not in reward.names and (with_references or name == "coverage"))
