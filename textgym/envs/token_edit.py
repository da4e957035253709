"""TokenEdit-v0: edit a source text into a summary, a compression or a correction, one
token edit at a time; plus the Levenshtein oracle that solves it."""

from __future__ import annotations

import math
from collections.abc import Sequence
from numbers import Real
from typing import Any

import gymnasium as gym
import numpy as np

from textgym.envs.base import TextEnv, checked_int, counter_box, id_box, mask_box, token_ids
from textgym.rewards import CompressionScore, EpisodeReward, Reward, make_reward, rouge_scores, scrl_reward
from textgym.rewards.incremental import IncrementalReward
from textgym.rewards.metrics import ROUGE_TYPES
from textgym.tasks import load_task
from textgym.vocab import WordVocabulary, resolve_vocabulary

OPS = ("keep", "delete", "replace", "insert", "stop")
MODES = ("edit", "compress")
KEEP, DELETE, STOP = 0, 1, 2
N_FIXED_ACTIONS = 3  # keep, delete, stop; the token actions follow them


class TokenEditEnv(TextEnv):
    """
    ## Description
    The agent edits a source text into a target (a summary, a compressed sentence, a
    corrected sentence) with token edits, and is scored by ROUGE against the example's
    references. The current text starts as the source; a cursor moves left to right over
    it. This is the edit MDP of LaserTagger (keep/delete/add), the Levenshtein Transformer
    (delete/insert) and SCRL (keep/delete with a length reward).

    ## Action Space
    ``Discrete(3 + 2 K)`` with K candidate tokens (``Discrete(3)`` when ``mode="compress"``):

    | action | op | effect |
    |---|---|---|
    | 0 | keep | move the cursor past the token under it |
    | 1 | delete | remove the token under the cursor (the cursor stays) |
    | 2 | stop | end the episode |
    | 3 + k | replace | put candidate k in place of the token under the cursor, then move past it |
    | 3 + K + k | insert | put candidate k before the cursor; the cursor stays after it |

    ``env.unwrapped.action_id(op, token=None)`` and ``describe_action(a) -> (op, token)``
    convert both ways; tokens are given as str or id and described as str.
    ``info["action_mask"]`` forbids keep, delete and replace past the end (cursor at the end
    slot), insert at ``max_length`` tokens, every edit once ``max_edits`` is spent, and
    replacing a token with itself. Stop is legal anywhere, or only past the last token with
    ``stop_anywhere=False``. A masked action chosen anyway (SB3 ``PPO`` ignores masks) is a
    no-op that still counts as a step.

    ## Observation Space
    A ``Dict`` of int64 ``Box`` arrays:
    - ``source_ids`` (S,): the source's token ids, padded with the pad id; ``source_mask`` (S,)
    - ``current_ids`` (L,): the current text's token ids, padded; ``current_mask`` (L,)
    - ``cursor`` (1,): the cursor position in the current text, in [0, L]
    - ``edits`` (1,): the edits (delete, replace, insert) used so far

    S is the longest source of the task and L is ``max_length``.

    ## Starting State
    An example drawn uniformly from the split (or ``options={"index": i}`` in ``reset``);
    the current text is its source, the cursor is on the first token, no edits are used.

    ## Rewards
    ``reward`` names a metric in [0, 1], a callable ``(prediction, references, source)``, or
    a weighted list of them (see ``textgym.rewards.make_reward``), for example a fluency
    model's score; weights are relative (normalised to sum to 1), so the reward stays in
    [0, 1], and a callable is called once at construction, on the first example. The
    default is the task's own, else ``rougeL`` (ROUGE-L F-measure).
    ``compression={"ratio": 0.5}`` (or ``{"length": 8}``) adds an SCRL-style length term,
    ``textgym.rewards.CompressionScore``, with keys ``ratio`` or ``length``, ``shape``
    ("gaussian" or "linear"), ``width`` and ``weight`` (default 1, relative to the
    ``reward``'s total of 1: the default pays half metric, half compression).
    ``reward="scrl"`` (with ``compression``) is the reference-free reward of SCRL for
    unsupervised compression: fluency under a causal LM relative to the source, the
    sentence-embedding similarity to the source and the compression term, in equal thirds
    (the compression ``weight`` scales its share); see ``textgym.rewards.scrl_reward``.
    On a reference-free task (no references), a reward that needs them (ROUGE, BLEU, ...)
    is an error at construction.
    ``reward_mode="sparse"`` pays the reward of the final text at the end; ``"dense"``
    pays the change in the reward of the text at each step, which sums to the sparse
    reward (the first step also pays the reward of the source itself).

    ## Episode End
    Terminated when the agent stops, or when the cursor has passed the last token and
    nothing can be appended there (``mode="compress"``, or ``max_length`` reached).
    Truncated when ``max_edits`` edits are used (the text can no longer change) or after
    ``max_steps`` steps.

    ## Information
    ``info["text"]`` is the current text, ``info["action_mask"]`` an ``int8`` array of legal
    actions (unless ``action_mask=False``), ``info["source"]`` the source text (on reset).
    ``info["metrics"]`` at the end holds rouge1, rouge2, rougeL, compression_ratio (current
    tokens / source tokens), edits_used, and the reward's own metrics (rouge only for
    examples with references).

    ## Arguments
    - ``task``: built-in name (compress, fix, ...), ``.jsonl`` path with ``{"source",
      "references"}`` rows (``"target"`` for one reference; ``{"source"}`` alone for no
      reference), a ``.txt`` file of one sentence per line (reference-free), ``{split: source}`` dict, list
      of dicts, HF dataset or ``Task``. ``split``: "train" (default), "validation" or "test".
      ``task_kwargs``: sizes of a built-in task, e.g. ``{"n_removable": 2}``.
    - ``vocab``: None (a word vocabulary built from all the task's text), a ``Vocabulary``,
      a transformers tokenizer or a tokenizer directory.
    - ``mode``: "edit" (every op, the default) or "compress" (keep, delete and stop).
    - ``stop_anywhere``: True (default) lets the agent stop with the cursor anywhere, which
      keeps the rest of the text as it is. False allows stop only past the last token, so
      every token is kept, deleted or replaced before the episode ends: in "compress" mode
      that is SCRL's keep/delete labelling of each token. In ``benchmarks/scrl_compression.py``
      policies that could stop anywhere learned to delete the sentences' opening words; with
      False they delete words all through the sentence.
    - ``candidate_tokens``: the tokens (str or id) that replace and insert may write, e.g.
      the task's source words plus a few more. Default: every non-special token of the
      vocabulary, which suits word vocabularies; give a list with a tokenizer vocabulary.
    - ``reward``, ``reward_mode``, ``compression``: see Rewards.
    - ``max_length``: room for the current text. Default: the longest source in
      "compress" mode, else the longest source plus its longest reference, enough for the
      oracle's edit script of any example.
    - ``max_edits``: edit budget (default None: no budget). ``max_steps``: step limit,
      default ``2 * max_length + 1``, more than any episode of legal actions can take.
    - ``action_mask``: False skips computing the mask for every info (huge vocabularies).
    - ``render_mode``: None, "ansi" (returns a str, the cursor shown as ▌) or "human".

    ## Version History
    - v0: initial version.
    """

    def __init__(
        self,
        task: Any = "compress",
        split: str = "train",
        vocab: Any = None,
        reward: Any = None,
        reward_mode: str = "sparse",
        mode: str = "edit",
        stop_anywhere: bool = True,
        candidate_tokens: Sequence[str | int] | None = None,
        compression: dict[str, Any] | None = None,
        max_length: int | None = None,
        max_edits: int | None = None,
        max_steps: int | None = None,
        action_mask: bool = True,
        task_kwargs: dict | None = None,
        render_mode: str | None = None,
    ):
        super().__init__(render_mode=render_mode, action_mask=action_mask)
        if mode not in MODES:
            raise ValueError(f"unknown mode {mode!r}; valid modes: {list(MODES)}")
        if not isinstance(stop_anywhere, bool):
            raise ValueError(f"stop_anywhere must be True or False, got {stop_anywhere!r}")
        self.mode, self.stop_anywhere = mode, stop_anywhere
        self.task = load_task(task, task_kwargs)
        self.examples = self.task.split(split)
        self.split = split
        self.vocab = resolve_vocabulary(vocab, self.task.texts())
        if isinstance(reward, str) and reward == "scrl":
            if compression is None:
                raise ValueError("reward='scrl' needs a length target: compression={'ratio': 0.4} or {'length': 10}")
            self.reward = scrl_reward(**_compression_settings(compression))
        else:
            base_reward = make_reward(reward if reward is not None else self.task.default_reward or "rougeL")
            self.reward = _with_compression(base_reward, compression)
        self.reward.check_references(self.examples, self.task.name)
        first = self.examples[0]
        self.reward.check(first.prompt, first.references, first.prompt)
        # word vocabularies decode to the space-join of their tokens, so dense rewards can
        # follow each edit incrementally instead of rescoring the text
        self._episode_reward = EpisodeReward(self.reward, reward_mode, word_edits=isinstance(self.vocab, WordVocabulary))
        self.reward_mode = reward_mode

        self.candidates = self._candidates(candidate_tokens)
        self._candidate_slot = np.full(len(self.vocab), -1, dtype=np.int64)
        self._candidate_slot[self.candidates] = np.arange(len(self.candidates))
        n_candidates = len(self.candidates)

        longest_source = longest_edit = 0
        for example in self.task.examples():
            n_source = len(self.vocab.encode(example.prompt))
            longest_source = max(longest_source, n_source)
            longest_reference = max((len(self.vocab.encode(r)) for r in example.references), default=0)
            longest_edit = max(longest_edit, n_source + longest_reference)
        if max_length is None:
            max_length = max(1, longest_source if mode == "compress" else longest_edit)
        max_length = checked_int("max_length", max_length)
        if max_length < longest_source:
            raise ValueError(f"max_length {max_length} is shorter than the longest source ({longest_source} tokens)")
        max_edits = checked_int("max_edits", max_edits, optional=True)
        if max_steps is None:
            max_steps = 2 * max_length + 1
        max_steps = checked_int("max_steps", max_steps)
        self.max_length, self.max_edits, self.max_steps = max_length, max_edits, max_steps
        self.max_source_tokens = max(1, longest_source)

        n = len(self.vocab)
        self.action_space = gym.spaces.Discrete(N_FIXED_ACTIONS + 2 * n_candidates)
        self.observation_space = gym.spaces.Dict(
            {
                "source_ids": id_box(self.max_source_tokens, n),
                "source_mask": mask_box(self.max_source_tokens),
                "current_ids": id_box(max_length, n),
                "current_mask": mask_box(max_length),
                "cursor": counter_box(max_length),
                "edits": counter_box(max_edits if max_edits is not None else max_steps),
            }
        )
        self._replace = slice(N_FIXED_ACTIONS, N_FIXED_ACTIONS + n_candidates)
        self._insert = slice(N_FIXED_ACTIONS + n_candidates, N_FIXED_ACTIONS + 2 * n_candidates)

        pad = self.vocab.pad_id
        self._source_ids = np.full(self.max_source_tokens, pad, dtype=np.int64)
        self._source_mask = np.zeros(self.max_source_tokens, dtype=np.int64)
        self._current_ids = np.full(max_length, pad, dtype=np.int64)
        self._current_mask = np.zeros(max_length, dtype=np.int64)
        self._mask = np.zeros(self.action_space.n, dtype=bool)
        self.example = self.examples[0]
        self.source_token_ids: list[int] = []
        self.tokens: list[int] = []
        self._words: IncrementalReward | None = None  # the dense reward's incremental scorer, if any
        self.cursor = self.edits_used = self.steps = 0
        self.text = ""

    def _candidates(self, candidate_tokens: Sequence[str | int] | None) -> np.ndarray:
        if self.mode == "compress":
            if candidate_tokens is not None:
                raise ValueError("candidate_tokens only apply to mode='edit'; mode='compress' has no replace or insert")
            return np.zeros(0, dtype=np.int64)
        special = self.vocab.special_ids
        if candidate_tokens is None:
            return np.array([i for i in range(len(self.vocab)) if i not in special], dtype=np.int64)
        if isinstance(candidate_tokens, (str, bytes)) or not hasattr(candidate_tokens, "__iter__"):
            raise ValueError(f"candidate_tokens must be a list of tokens (str or id), got {candidate_tokens!r}")
        ids = token_ids(self.vocab, candidate_tokens, "candidate_tokens")
        if not ids:
            raise ValueError("candidate_tokens is empty; give at least one token, or use mode='compress'")
        if len(set(ids)) != len(ids):
            raise ValueError(f"candidate_tokens has duplicates: {list(candidate_tokens)!r}")
        bad = [self.vocab.id_to_token(i) for i in ids if i in special]
        if bad:
            raise ValueError(f"candidate_tokens may not hold special tokens (pad, bos, eos, unk): {bad}")
        return np.array(ids, dtype=np.int64)

    # -- actions ---------------------------------------------------------------------------

    def action_id(self, op: str, token: str | int | None = None) -> int:
        """The action for ``op`` (keep, delete, replace, insert, stop), with ``token`` (str
        or id, one of the candidates) for replace and insert."""
        if op not in OPS:
            raise ValueError(f"unknown op {op!r}; valid ops: {list(OPS)}")
        if op in ("replace", "insert"):
            if self.mode == "compress":
                raise ValueError(f"mode='compress' has no {op!r} action; valid ops: ['keep', 'delete', 'stop']")
            if token is None:
                raise ValueError(f"op {op!r} needs a token")
            (token_id,) = token_ids(self.vocab, [token], "token")
            slot = int(self._candidate_slot[token_id])
            if slot < 0:
                name, n = self.vocab.id_to_token(token_id), len(self.candidates)
                raise ValueError(f"token {name!r} (id {token_id}) is not one of the {n} candidate_tokens")
            return (self._replace if op == "replace" else self._insert).start + slot
        if token is not None:
            raise ValueError(f"op {op!r} takes no token, got {token!r}")
        return {"keep": KEEP, "delete": DELETE, "stop": STOP}[op]

    def describe_action(self, action: int) -> tuple[str, str | None]:
        """``(op, token)`` of an action id; token is a str for replace and insert, else None."""
        if isinstance(action, (bool, np.bool_)) or not self.action_space.contains(action):
            raise ValueError(f"action {action!r} is not in the action space {self.action_space}")
        action = int(action)
        if action < N_FIXED_ACTIONS:
            return ("keep", "delete", "stop")[action], None
        op = "replace" if action < self._insert.start else "insert"
        slot = action - (self._replace.start if op == "replace" else self._insert.start)
        return op, self.vocab.id_to_token(int(self.candidates[slot]))

    def _update_mask(self) -> None:
        mask, n = self._mask, len(self.tokens)
        on_token = self.cursor < n
        can_edit = self.max_edits is None or self.edits_used < self.max_edits
        mask[KEEP] = on_token
        mask[DELETE] = on_token and can_edit
        mask[STOP] = self.stop_anywhere or not on_token
        if self.mode == "edit":
            mask[self._replace] = on_token and can_edit
            if on_token:
                slot = self._candidate_slot[self.tokens[self.cursor]]
                if slot >= 0:
                    mask[self._replace.start + slot] = False
            mask[self._insert] = can_edit and n < self.max_length

    def _legal_mask(self) -> np.ndarray:
        return self._mask

    # -- episode ---------------------------------------------------------------------------

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        options = self._checked_reset(seed, options)
        self.source_token_ids = self._draw_example(options)
        self.tokens = list(self.source_token_ids)
        self.cursor = self.edits_used = self.steps = 0
        self.text = self.vocab.decode(self.tokens)

        n = len(self.tokens)
        pad = self.vocab.pad_id
        for ids, mask in ((self._source_ids, self._source_mask), (self._current_ids, self._current_mask)):
            ids.fill(pad)
            ids[:n] = self.tokens
            mask.fill(0)
            mask[:n] = 1

        # the reward's source is the decoded source, which no-edit reproduces exactly
        # ("Paris ." for a word vocabulary, not the prompt "Paris.")
        self._episode_reward.reset(self.example.references, self.text)
        self._words = self._episode_reward.words
        if self._words is not None:
            for token in self.tokens:
                self._words.append(self.decoded_word(token))
        self._update_mask()
        self._begin_episode()
        return self._observation(), self._info(self.text, source=self.example.prompt)

    def step(self, action):
        action = self._checked_action(action)
        # a masked action is a no-op, so that agents which ignore masks cannot crash the
        # env; the step still counts toward max_steps
        legal = bool(self._mask[action])
        self.steps += 1
        changed = legal and action not in (KEEP, STOP)
        if legal and action == KEEP:
            self.cursor += 1
        elif changed:
            self._edit(action)
        self._update_mask()

        at_end = self.cursor == len(self.tokens)
        can_append = self.mode == "edit" and len(self.tokens) < self.max_length
        terminated = (legal and action == STOP) or (at_end and not can_append)
        budget_spent = self.max_edits is not None and self.edits_used >= self.max_edits
        truncated = not terminated and (budget_spent or self.steps >= self.max_steps)
        done = terminated or truncated
        # The reward only moves when the text does. The first step also pays phi(source),
        # since EpisodeReward takes phi(reset state) as 0 so that dense sums to sparse.
        if changed or done or self.steps == 1:
            reward = self._episode_reward.step(self.text, done)
        else:
            reward = 0.0
        info = self._info(self.text, done, self._end_metrics() if done else None)
        return self._observation(), reward, terminated, truncated, info

    def _edit(self, action: int) -> None:
        """Apply a delete, replace or insert at the cursor, to the list and the obs arrays."""
        c, n = self.cursor, len(self.tokens)
        words = self._words
        if action == DELETE:
            del self.tokens[c]
            if words is not None:
                words.delete(c)
            self._current_ids[c : n - 1] = self.tokens[c:]
            self._current_ids[n - 1] = self.vocab.pad_id
            self._current_mask[n - 1] = 0
        elif action < self._insert.start:
            token = int(self.candidates[action - self._replace.start])
            self.tokens[c] = token
            if words is not None:
                words.replace(c, self.decoded_word(token))
            self._current_ids[c] = token
            self.cursor += 1
        else:
            token = int(self.candidates[action - self._insert.start])
            self.tokens.insert(c, token)
            if words is not None:
                words.insert(c, self.decoded_word(token))
            self._current_ids[c : n + 1] = self.tokens[c:]
            self._current_mask[n] = 1
            self.cursor += 1
        self.edits_used += 1
        self.text = self.vocab.decode(self.tokens)

    def _end_metrics(self) -> dict[str, float]:
        return end_metrics(self._episode_reward.metrics, self.text, self.example.references, len(self.tokens),
                           len(self.source_token_ids), self.edits_used)

    def _observation(self) -> dict[str, np.ndarray]:
        return {
            "source_ids": self._source_ids.copy(),
            "source_mask": self._source_mask.copy(),
            "current_ids": self._current_ids.copy(),
            "current_mask": self._current_mask.copy(),
            "cursor": np.array([self.cursor], dtype=np.int64),
            "edits": np.array([self.edits_used], dtype=np.int64),
        }

    def _render_text(self) -> str:
        before = self.vocab.decode(self.tokens[: self.cursor])
        after = self.vocab.decode(self.tokens[self.cursor :])
        budget = "" if self.max_edits is None else f"/{self.max_edits}"
        current = " ".join(part for part in (before, "▌" + after) if part)
        return (f"source:  {self.example.prompt}\ncurrent: {current}"
                f"\n(cursor {self.cursor}/{len(self.tokens)}, edits {self.edits_used}{budget}, step {self.steps})")


def end_metrics(reward_metrics: dict[str, float], text: str, references: Sequence[str], n_tokens: int,
                n_source_tokens: int, edits_used: int) -> dict[str, float]:
    """An episode's ``info["metrics"]``: the reward's metrics, the ROUGE F-measures it did
    not score (one scorer call, for examples with references), compression ratio and edits."""
    metrics = dict(reward_metrics)
    missing = [name for name in ROUGE_TYPES if name not in metrics]
    if missing and references:
        metrics.update(rouge_scores(text, references, missing))
    metrics["compression_ratio"] = n_tokens / max(1, n_source_tokens)
    metrics["edits_used"] = float(edits_used)
    return metrics


COMPRESSION_KEYS = ("ratio", "length", "shape", "width", "weight")


def _with_compression(reward: Reward, compression: dict[str, Any] | None) -> Reward:
    """``reward`` plus a weighted ``CompressionScore`` term when ``compression`` is set."""
    if compression is None:
        return reward
    settings = _compression_settings(compression)
    weight = settings.pop("weight")
    return Reward([*reward.terms, ("compression", CompressionScore(**settings), weight)])


def _compression_settings(compression: Any) -> dict[str, Any]:
    """The ``compression`` argument checked: its keys, and ``weight`` as a float (default 1)."""
    if not isinstance(compression, dict):
        raise ValueError(f"compression must be a dict such as {{'ratio': 0.5}}, got {compression!r}")
    unknown = sorted(set(compression) - set(COMPRESSION_KEYS))
    if unknown:
        raise ValueError(f"unknown compression keys {unknown}; valid keys: {list(COMPRESSION_KEYS)}")
    settings = dict(compression)
    weight = settings.get("weight", 1.0)
    if isinstance(weight, bool) or not isinstance(weight, Real) or not math.isfinite(weight):
        raise ValueError(f"compression weight must be a finite number, got {weight!r}")
    settings["weight"] = float(weight)
    return settings


# -- oracle ------------------------------------------------------------------------------

def edit_script(source_ids: Sequence[int], target_ids: Sequence[int]) -> list[tuple[str, int | None]]:
    """A minimal Levenshtein edit script turning ``source_ids`` into ``target_ids``, as
    ``(op, token_id)`` pairs for a left-to-right cursor: keep, delete, replace and insert.

    Among minimal scripts it matches first, then deletes before it replaces or inserts,
    which keeps the text short while it is edited.
    """
    source, target = list(source_ids), list(target_ids)
    n, m = len(source), len(target)
    # cost[i][j]: edit distance between source[i:] and target[j:]
    cost = [[0] * (m + 1) for _ in range(n + 1)]
    for i in range(n, -1, -1):
        for j in range(m, -1, -1):
            if i == n or j == m:
                cost[i][j] = (n - i) + (m - j)
            elif source[i] == target[j]:
                cost[i][j] = cost[i + 1][j + 1]
            else:
                cost[i][j] = 1 + min(cost[i + 1][j + 1], cost[i + 1][j], cost[i][j + 1])
    script: list[tuple[str, int | None]] = []
    i = j = 0
    while i < n or j < m:
        if i < n and j < m and source[i] == target[j]:
            script.append(("keep", None))
            i, j = i + 1, j + 1
        elif i < n and cost[i][j] == 1 + cost[i + 1][j]:
            script.append(("delete", None))
            i += 1
        elif i < n and j < m and cost[i][j] == 1 + cost[i + 1][j + 1]:
            script.append(("replace", target[j]))
            i, j = i + 1, j + 1
        else:
            script.append(("insert", target[j]))
            j += 1
    return script


def oracle_actions(source_ids: Sequence[int], target_ids: Sequence[int], env: gym.Env) -> list[int]:
    """The actions of ``env`` (a TokenEditEnv, wrapped or not) that edit ``source_ids`` into
    ``target_ids`` with a minimal :func:`edit_script`, then stop; trailing keeps are left to
    the stop where ``stop_anywhere`` allows.

    Replay them until the episode ends: the last edit may end it before the stop. In
    "compress" mode the target must be a subsequence of the source; in "edit" mode its
    tokens must be candidates, and ``max_edits`` must allow the script.
    """
    unwrapped: TokenEditEnv = env.unwrapped  # type: ignore[assignment]
    script = edit_script(source_ids, target_ids)
    while unwrapped.stop_anywhere and script and script[-1][0] == "keep":
        script.pop()
    return [unwrapped.action_id(op, token) for op, token in script] + [STOP]
