"""NERTag-v0: named-entity tagging, one IOB2 tag per token, scored by span F1."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np

from textgym.envs.base import TextEnv, checked_int, counter_box, example_index, id_box, mask_box
from textgym.rewards import check_reward_mode
from textgym.rewards.span_metrics import iob2_spans, precision_recall_f1
from textgym.tasks import TaggedSentence, load_task
from textgym.vocab import SPECIAL_TOKENS, Vocabulary, WordVocabulary, resolve_vocabulary

TAG_REWARD_MODES = ("token", "f1_delta", "f1")  # NERTag's reward_mode (see Rewards)
SHAPES = ("<pad>", "lower", "Title", "UPPER", "number", "punct", "mention", "url", "mixed")
_NUMBER = re.compile(r"[\d.,:/%-]*\d[\d.,:/%-]*")
PREFIX_O, PREFIX_B, PREFIX_I = 0, 1, 2  # a tag's IOB2 prefix, as NERTagTables.tag_prefixes codes it


def word_shape(token: str) -> int:
    """Index in ``SHAPES`` of a token's shape: what tells names apart when the word is UNK."""
    if token.startswith(("http:", "https:", "www.")):
        return SHAPES.index("url")
    if token[0] in "@#" and len(token) > 1:
        return SHAPES.index("mention")
    if _NUMBER.fullmatch(token):
        return SHAPES.index("number")
    if not any(c.isalnum() for c in token):
        return SHAPES.index("punct")
    if token.islower():
        return SHAPES.index("lower")
    if token.isupper():
        return SHAPES.index("UPPER")
    if token[0].isupper() and (token[1:].islower() or not token[1:].isalpha()):
        return SHAPES.index("Title")
    return SHAPES.index("mixed")


@dataclass(frozen=True)
class PreparedSentence:
    """What an episode needs of one example, computed once per example
    (:meth:`NERTagEnv.prepared`)."""

    word_ids: np.ndarray  # (L,)
    shape_ids: np.ndarray  # (L,)
    gold: np.ndarray  # (L,) tag ids
    gold_spans: frozenset[tuple[int, int, int]]  # (type id, start, end)
    gold_from: dict[int, tuple[int, int]]  # start -> (type id, end)
    gold_before: np.ndarray  # (L + 1,): gold spans starting before n, i.e. in the n-token prefix


@dataclass(frozen=True)
class NERTagTables:
    """A NERTag env's tables for a batched version of it (:meth:`NERTagEnv.batch_tables`)."""

    sentences: list[PreparedSentence]  # every example of the split
    tag_prefixes: np.ndarray  # (tags,): PREFIX_O, PREFIX_B or PREFIX_I of each tag id
    tag_types: np.ndarray  # (tags,): the entity type id of each tag, -1 for O
    # (types + 1, tags) bool: the legal tags outside an entity (row 0) and inside an
    # entity of type t (row 1 + t)
    legal_tags: np.ndarray


class NERTagEnv(TextEnv):
    """
    ## Description
    Named-entity recognition as a sequential decision process. Each episode is one
    sentence; step t assigns an IOB2 tag (``O``, ``B-X`` or ``I-X``) to token t, and the
    episode ends when the last token is tagged. Entities are scored as spans, as seqeval
    does in strict IOB2 mode (``textgym.rewards.span_metrics``).

    ## Action Space
    ``Discrete(len(tags))``: the tag of the current token. ``env.unwrapped.tags`` lists the
    tag names (``"O"`` first, then ``B-X``, ``I-X`` per entity type, sorted) and
    ``env.unwrapped.tag_id(name)`` gives an id. With ``bio_mask=True``, ``I-X`` is legal
    only when it continues an entity of type X (the previous tag is ``B-X`` or a valid
    ``I-X``). An agent that ignores the mask (SB3's plain PPO does) may still take a masked
    tag: it is recorded and scored as given, so a stray ``I-X`` starts no entity (strict
    IOB2) and earns no token reward.

    ## Observation Space
    A ``Dict`` of int64 ``Box`` arrays, L being the longest sentence of the task:
    - ``token_ids`` (L,): word ids, padded with the pad id; ``token_mask`` (L,)
    - ``position`` (1,): the index of the token to tag, in [0, L]
    - ``tag_ids`` (L,): the tags chosen so far as ``tag id + 1``; 0 marks untagged tokens
      and padding, so that ``O`` (id 0) and "not yet tagged" differ
    - ``shape_ids`` (L,) when ``word_shape=True``: the shape of each word (lower, Title,
      UPPER, number, punct, mention, url, mixed; see ``SHAPES``), 0 for padding. It tells
      names apart when the word itself is unknown.

    With ``window=k`` the observation is instead the local view around the current token,
    small enough for a tabular agent (which keys its table on the whole observation):
    ``window_ids`` (2k+1,) the words from t-k to t+k (pad id outside the sentence),
    ``window_shape_ids`` (2k+1,) their shapes when ``word_shape=True``, and
    ``prev_tag_ids`` (1,) the previous tag + 1 (0 at the first token).

    ## Starting State
    A sentence drawn uniformly from the split (or ``options={"index": i}`` in ``reset``),
    with no token tagged.

    ## Rewards
    - ``"f1_delta"`` (default): dense. The potential of a state is the span F1 of the
      tagged prefix (2·correct / (gold + predicted spans), with the gold and predicted spans
      cut at the prefix end, and 0 when both are empty); at the last step it is the
      sentence's span F1. Step rewards are the changes of the potential, so an episode's
      return is exactly its span F1, and shaping leaves the optimal policy unchanged.
    - ``"f1"``: sparse; 0 until the last step, then the sentence's span F1.
    - ``"token"``: 1.0 for a tag equal to the gold tag, else 0.0.

    A sentence without gold entities has F1 1.0 when no entity is predicted and 0.0
    otherwise (precision and recall alike).

    ## Episode End
    Terminated when the last token is tagged. Never truncated.

    ## Information
    ``info["text"]`` is the sentence with tagged tokens written ``token/TAG`` and the rest
    bare (at reset, the plain sentence); ``info["words"]`` is the sentence's words as a tuple
    of str, unseen words included, and ``info["position"]`` the index of the word to tag
    (what LM policies read, in ``window`` mode too). ``info["action_mask"]`` is an ``int8`` array of
    legal tags (unless ``action_mask=False``). At the end, ``info["metrics"]`` holds span
    ``precision``, ``recall``, ``f1`` and tag ``accuracy``. ``env.unwrapped.example`` is the
    current ``TaggedSentence`` and ``env.unwrapped.predicted_tags`` the tags chosen so far.

    ## Arguments
    - ``task``: built-in name (entities), a CoNLL (``.conll``, ``.txt``, ...) or ``.jsonl``
      path (rows ``{"tokens": [...], "tags": [...]}``), a ``{split: source}`` dict, a list
      of such rows, a HF dataset with ``tokens`` and ``ner_tags``, or a ``Task``.
    - ``split``: "train" (default), "validation" or "test". ``task_kwargs``: sizes of a
      built-in task, or reader options of a file (``token_column``, ``tag_column``,
      ``scheme``, ``label_names``; IOB1 and BIOES are converted to IOB2).
    - ``vocab``: None (a word vocabulary built from the train split; unseen words are UNK),
      a ``Vocabulary`` or a saved one's path. ``lowercase``: lowercase words first.
      ``min_freq``: train words seen fewer times become UNK too, so that the agent learns
      what to do with unknown words (2 is the classic choice).
    - ``tags``: the tag names (default: ``O`` and ``B-X``/``I-X`` for every type in the data).
    - ``reward_mode``: see Rewards (``TAG_REWARD_MODES``). ``bio_mask``: see Action Space.
    - ``reward``: not taken. NERTag's reward is span F1 (dense or sparse) or tag accuracy,
      chosen by ``reward_mode``; any ``reward=`` value raises a ValueError that says so.
    - ``window``: None (whole sentence) or k for a (2k+1)-word local view.
    - ``word_shape``: add the word-shape channel (default True).
    - ``action_mask``: False leaves ``info["action_mask"]`` out.
    - ``render_mode``: None, "ansi" (returns a str) or "human" (prints).

    ## Version History
    - v0: initial version.
    """

    def __init__(
        self,
        task: Any = "entities",
        split: str = "train",
        vocab: Any = None,
        reward: None = None,
        reward_mode: str = "f1_delta",
        bio_mask: bool = True,
        window: int | None = None,
        word_shape: bool = True,
        lowercase: bool = False,
        min_freq: int = 1,
        tags: Sequence[str] | None = None,
        action_mask: bool = True,
        task_kwargs: dict | None = None,
        render_mode: str | None = None,
    ):
        super().__init__(render_mode=render_mode, action_mask=action_mask)
        if reward is not None:
            raise ValueError(
                f"NERTag takes no reward= (got {reward!r}): its reward is chosen by reward_mode, "
                f"one of {list(TAG_REWARD_MODES)} (span F1 as a dense or sparse reward, or per-token accuracy)"
            )
        check_reward_mode(reward_mode, TAG_REWARD_MODES)
        for name, value in (("bio_mask", bio_mask), ("word_shape", word_shape), ("lowercase", lowercase)):
            if not isinstance(value, bool):
                raise ValueError(f"{name} must be True or False, got {value!r}")
        window = checked_int("window", window, minimum=0, optional=True)
        min_freq = checked_int("min_freq", min_freq)
        self.task = load_task(task, task_kwargs, example_type=TaggedSentence)
        self.examples = self.task.split(split)
        self.split = split
        self.reward_mode = reward_mode
        self.window = window
        self.word_shape = word_shape
        self.tags = self._tag_set(tags)
        self._tag_ids = {tag: i for i, tag in enumerate(self.tags)}
        types = sorted({tag[2:] for tag in self.tags if tag != "O"})
        self._type_ids = {kind: i for i, kind in enumerate(types)}
        # plain lists: indexing them per step is cheaper than numpy scalars
        self._prefix = [PREFIX_O if t == "O" else (PREFIX_B if t[0] == "B" else PREFIX_I) for t in self.tags]
        self._type = [self._type_ids[t[2:]] if t != "O" else -1 for t in self.tags]
        if vocab is None:
            vocab = _train_vocabulary(self.task.split("train"), lowercase, min_freq)
        self.vocab: Vocabulary = resolve_vocabulary(vocab, ())
        self._masks = self._make_masks(bio_mask)
        self._masks.flags.writeable = False  # batch_tables() hands it out
        self.max_tokens = max(len(e.tokens) for e in self.task.examples())

        n_words, n_tags, n = len(self.vocab), len(self.tags), self.max_tokens
        self.action_space = gym.spaces.Discrete(n_tags)
        if window is None:
            spaces = {
                "token_ids": id_box(n, n_words),
                "token_mask": mask_box(n),
                "position": counter_box(n),
                "tag_ids": id_box(n, n_tags + 1),
            }
            if word_shape:
                spaces["shape_ids"] = id_box(n, len(SHAPES))
        else:
            spaces = {"window_ids": id_box(2 * window + 1, n_words)}
            if word_shape:
                spaces["window_shape_ids"] = id_box(2 * window + 1, len(SHAPES))
            spaces["prev_tag_ids"] = id_box(1, n_tags + 1)
        self.observation_space = gym.spaces.Dict(spaces)

        self._cache: dict[int, PreparedSentence] = {}
        self._chosen = np.zeros(n, dtype=np.int64)  # tag id + 1, 0 = untagged
        self._start(0)

    # -- construction helpers -------------------------------------------------------------

    def _tag_set(self, tags: Sequence[str] | None) -> list[str]:
        seen = {tag for example in self.task.examples() for tag in example.tags}
        if tags is None:
            types = sorted({tag[2:] for tag in seen if tag != "O"})
            return ["O"] + [f"{prefix}-{kind}" for kind in types for prefix in "BI"]
        if isinstance(tags, str) or not all(isinstance(t, str) for t in tags):
            raise ValueError(f"tags must be a list of tag names, got {tags!r}")
        tags = list(tags)
        bad = [t for t in tags if not (t == "O" or (t[:2] in ("B-", "I-") and len(t) > 2))]
        if bad or "O" not in tags or len(set(tags)) != len(tags):
            raise ValueError(f"tags must be distinct IOB2 names ('O', 'B-X', 'I-X') including 'O'; got {tags!r}")
        missing = sorted(seen - set(tags))
        if missing:
            raise ValueError(f"the task uses tags {missing} that are not in tags={tags}")
        return tags

    def _make_masks(self, bio_mask: bool) -> np.ndarray:
        """Row 0: the legal tags outside an entity; row 1 + type: inside one of that type."""
        n_types = len(self._type_ids)
        if not bio_mask:
            return np.ones((n_types + 1, len(self.tags)), dtype=bool)
        masks = np.tile(np.array(self._prefix) != PREFIX_I, (n_types + 1, 1))
        for tag, (prefix, kind) in enumerate(zip(self._prefix, self._type)):
            if prefix == PREFIX_I:
                masks[1 + kind, tag] = True
        return masks

    def prepared(self, index: int) -> PreparedSentence:
        """Example ``index`` as ids, shapes and gold spans, computed once (cached)."""
        sentence = self._cache.get(index)
        if sentence is not None:
            return sentence
        example = self.examples[index]
        words = [self._word_id(token) for token in example.tokens]
        shapes = [word_shape(token) for token in example.tokens]
        spans = [(self._type_ids[kind], start, end) for kind, start, end in iob2_spans(example.tags)]
        before = np.zeros(len(example.tokens) + 1, dtype=np.int64)
        for _, start, _ in spans:
            before[start + 1:] += 1
        sentence = self._cache[index] = PreparedSentence(
            word_ids=np.array(words, dtype=np.int64),
            shape_ids=np.array(shapes, dtype=np.int64),
            gold=np.array([self._tag_ids[tag] for tag in example.tags], dtype=np.int64),
            gold_spans=frozenset(spans),
            gold_from={start: (kind, end) for kind, start, end in spans},
            gold_before=before,
        )
        return sentence

    def _word_id(self, token: str) -> int:
        if getattr(self.vocab, "lowercase", False):
            token = token.lower()
        try:
            return self.vocab.token_to_id(token)
        except KeyError:
            return self.vocab.unk_id

    # -- public helpers -------------------------------------------------------------------

    def tag_id(self, name: str) -> int:
        """The action id of a tag name."""
        try:
            return self._tag_ids[name]
        except KeyError:
            raise ValueError(f"unknown tag {name!r}; valid tags: {self.tags}") from None

    def batch_tables(self) -> NERTagTables:
        """What a batched version of this env needs (``NERTagVectorEnv`` uses it): every
        sentence of the split prepared, and the tag rules as arrays."""
        return NERTagTables(
            sentences=[self.prepared(index) for index in range(len(self.examples))],
            tag_prefixes=np.array(self._prefix, dtype=np.int64),
            tag_types=np.array(self._type, dtype=np.int64),
            legal_tags=self._masks,
        )

    @property
    def predicted_tags(self) -> list[str]:
        """The tag names chosen so far in this episode."""
        return [self.tags[i - 1] for i in self._chosen[: self._position]]

    # -- MDP ------------------------------------------------------------------------------

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        options = self._checked_reset(seed, options)
        self._start(example_index(options, len(self.examples), self.np_random))
        self._begin_episode()
        return self._observation(), self._info(self.example.prompt, words=self.example.tokens, position=0)

    def _start(self, index: int) -> None:
        self.example: TaggedSentence = self.examples[index]
        self._sentence = self.prepared(index)
        self._position = 0
        self._chosen.fill(0)
        self._pieces = list(self.example.tokens)
        self._open_type, self._open_start = -1, 0  # the predicted entity still open, if any
        self._n_pred = self._n_correct_spans = self._n_correct_tags = 0
        self._potential = 0.0

    def step(self, action):
        tag = self._checked_action(action)
        sentence, position = self._sentence, self._position
        prefix, kind = self._prefix[tag], self._type[tag]
        if not (prefix == PREFIX_I and kind == self._open_type):
            self._close_entity(position)
            if prefix == PREFIX_B:
                self._open_type, self._open_start = kind, position
        correct_tag = bool(tag == sentence.gold[position])
        self._n_correct_tags += correct_tag
        self._chosen[position] = tag + 1
        self._pieces[position] = f"{self.example.tokens[position]}/{self.tags[tag]}"
        self._position = n = position + 1
        done = n == len(sentence.gold)

        metrics = None
        if done:
            self._close_entity(n)
            precision, recall, f1 = precision_recall_f1(self._n_correct_spans, len(sentence.gold_spans), self._n_pred)
            metrics = {"precision": precision, "recall": recall, "f1": f1, "accuracy": self._n_correct_tags / n}
        if self.reward_mode == "token":
            reward = 1.0 if correct_tag else 0.0
        elif self.reward_mode == "f1":
            reward = metrics["f1"] if done else 0.0
        else:
            potential = metrics["f1"] if done else self._prefix_f1(n)
            reward, self._potential = potential - self._potential, potential
        info = self._info(" ".join(self._pieces), done, metrics, words=self.example.tokens, position=n)
        return self._observation(), float(reward), done, False, info

    def _close_entity(self, end: int) -> None:
        """End the open predicted entity (if any) before token ``end``, and score it."""
        if self._open_type >= 0:
            self._n_pred += 1
            self._n_correct_spans += (self._open_type, self._open_start, end) in self._sentence.gold_spans
            self._open_type = -1

    def _prefix_f1(self, n: int) -> float:
        """Span F1 of the first n tags, gold and predicted entities cut at token n."""
        sentence = self._sentence
        n_gold = int(sentence.gold_before[n])
        n_pred, n_correct = self._n_pred, self._n_correct_spans
        if self._open_type >= 0:
            n_pred += 1
            gold = sentence.gold_from.get(self._open_start)
            n_correct += gold is not None and gold[0] == self._open_type and gold[1] >= n
        return 2 * n_correct / (n_gold + n_pred) if n_gold + n_pred else 0.0

    def _legal_mask(self) -> np.ndarray:
        return self._masks[self._open_type + 1]

    def _observation(self) -> dict[str, np.ndarray]:
        sentence, position = self._sentence, self._position
        length = len(sentence.gold)
        if self.window is None:
            obs = {
                "token_ids": np.full(self.max_tokens, self.vocab.pad_id, dtype=np.int64),
                "token_mask": np.zeros(self.max_tokens, dtype=np.int64),
                "position": np.array([position], dtype=np.int64),
                "tag_ids": self._chosen.copy(),
            }
            obs["token_ids"][:length] = sentence.word_ids
            obs["token_mask"][:length] = 1
            if self.word_shape:
                obs["shape_ids"] = np.zeros(self.max_tokens, dtype=np.int64)
                obs["shape_ids"][:length] = sentence.shape_ids
            return obs
        k = self.window
        lo, hi = max(position - k, 0), min(position + k + 1, length)
        window = np.full(2 * k + 1, self.vocab.pad_id, dtype=np.int64)
        window[lo - position + k:hi - position + k] = sentence.word_ids[lo:hi]
        obs = {"window_ids": window}
        if self.word_shape:
            shapes = np.zeros(2 * k + 1, dtype=np.int64)
            shapes[lo - position + k:hi - position + k] = sentence.shape_ids[lo:hi]
            obs["window_shape_ids"] = shapes
        obs["prev_tag_ids"] = self._chosen[position - 1:position].copy() if position else np.zeros(1, dtype=np.int64)
        return obs

    def _render_text(self) -> str:
        return f"{' '.join(self._pieces)}  ({self._position}/{len(self.example.tokens)} tagged)"


def _train_vocabulary(sentences: Sequence[TaggedSentence], lowercase: bool, min_freq: int) -> WordVocabulary:
    """Words of the train split as given (no re-tokenization), by decreasing frequency."""
    counts = Counter(token.lower() if lowercase else token for s in sentences for token in s.tokens)
    for special in SPECIAL_TOKENS:
        counts.pop(special, None)
    words = sorted((w for w, c in counts.items() if c >= min_freq), key=lambda w: (-counts[w], w))
    return WordVocabulary(SPECIAL_TOKENS + tuple(words), lowercase=lowercase)
