"""Incremental metrics: BLEU, ROUGE-1/2/L and token F1 of a text kept up to date as words
are appended, inserted, deleted or replaced, so that dense rewards do not rescore the
whole text at every step.

The text is the space-join of whitespace-free words (what a word vocabulary decodes to).
The metrics' tokenizers (sacreBLEU 13a, rouge-score's) split each word independently of
its neighbours, so a word's metric tokens are computed once and spliced in. Each scorer
keeps the hypothesis n-gram counts and the clipped matches per reference; an edit touches
only the n-grams that overlap it (O(1) per word for n-gram metrics). ROUGE-L keeps a
bit-parallel LCS state per token: O(1) big-int operations per appended word, O(words after
the edit) for an edit inside the text.
Values equal the full recomputation (``textgym.rewards.metrics``) up to float rounding.

:class:`AppendedBleu` follows the BLEU of many texts that only grow (a native vector env's
sub-envs) at once, with array operations instead of one scorer per text.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Callable, Sequence
from functools import lru_cache
from typing import TYPE_CHECKING

import numpy as np
from rouge_score.scoring import fmeasure

from textgym.rewards.metrics import (
    _MAX_ORDER,
    _bleu_reference_stats,
    _reference_tokens,
    bleu,
    bleu_from_counts,
    lcs_masks,
    rouge1,
    rouge2,
    rouge_tokens,
    rougeL,
    token_f1,
)
from textgym.vocab import word_tokenize

if TYPE_CHECKING:  # reward.py imports this module
    from textgym.rewards.reward import Reward


@lru_cache(maxsize=65536)
def _tokens_13a(word: str) -> tuple[str, ...]:
    return tuple(word_tokenize(word))


class IncrementalScore:
    """A metric of a word sequence under edits. Subclasses keep their statistics in
    ``_splice`` (metric tokens ``[start, stop)`` replaced by ``new``) and compute ``value``.

    Word positions are indices into the current word list.
    """

    tokenize: Callable[[str], tuple[str, ...]] = staticmethod(_tokens_13a)

    def __init__(self) -> None:
        self.tokens: list[str] = []  # the metric tokens of the whole text
        self._word_sizes: list[int] = []  # metric tokens per word

    def append(self, word: str) -> None:
        self.insert(len(self._word_sizes), word)

    def insert(self, i: int, word: str) -> None:
        """Insert ``word`` before word ``i``."""
        start = self._offset(i)
        new = self.tokenize(word)
        self._word_sizes.insert(i, len(new))
        self._splice(start, start, new)

    def delete(self, i: int) -> None:
        start = self._offset(i)
        self._splice(start, start + self._word_sizes.pop(i), ())

    def replace(self, i: int, word: str) -> None:
        start = self._offset(i)
        new = self.tokenize(word)
        stop = start + self._word_sizes[i]
        self._word_sizes[i] = len(new)
        # only the tokens after the common prefix change (a word being written grows at its end)
        tokens, same = self.tokens, 0
        while same < len(new) and start + same < stop and tokens[start + same] == new[same]:
            same += 1
        if start + same < stop or same < len(new):
            self._splice(start + same, stop, new[same:])

    def _offset(self, i: int) -> int:
        sizes = self._word_sizes
        if not 0 <= i <= len(sizes):
            raise IndexError(f"word position {i} is outside [0, {len(sizes)}]")
        # summed from the nearer end, so that edits of the last words cost O(1)
        return sum(sizes[:i]) if i <= len(sizes) // 2 else len(self.tokens) - sum(sizes[i:])

    def _splice(self, start: int, stop: int, new: Sequence[str]) -> None:
        raise NotImplementedError

    @property
    def value(self) -> float:
        raise NotImplementedError


class _NgramCounts(IncrementalScore):
    """Hypothesis n-grams (orders 1..``max_order``) and their matches clipped by each of
    ``targets`` (n-gram -> count tables): ``matched[t][n - 1]``."""

    def __init__(self, targets: Sequence[dict], max_order: int):
        super().__init__()
        self.targets, self.max_order = targets, max_order
        self.counts: dict[tuple[str, ...], int] = {}
        self.matched = [[0] * max_order for _ in targets]

    def _splice(self, start: int, stop: int, new: Sequence[str]) -> None:
        tokens = self.tokens
        # n-grams that overlap [start, stop) go (none on an append), the ones overlapping
        # the new words come
        if start < len(tokens):
            self._update(start, stop, -1)
        tokens[start:stop] = new
        self._update(start, start + len(new), +1)

    def _update(self, start: int, stop: int, sign: int) -> None:
        tokens, counts, size, max_order = self.tokens, self.counts, len(self.tokens), self.max_order
        pairs = list(zip(self.targets, self.matched))
        for first in range(max(0, start - max_order + 1), stop):
            for n in range(max(1, start - first + 1), min(max_order, size - first) + 1):
                ngram = tuple(tokens[first : first + n])
                count = counts.get(ngram, 0)
                counts[ngram] = count + sign
                if sign > 0:
                    count += 1
                for target, matched in pairs:
                    if count <= target.get(ngram, 0):
                        matched[n - 1] += sign

    def _total(self, n: int) -> int:
        return max(0, len(self.tokens) - n + 1)


class IncrementalBleu(_NgramCounts):
    """Sentence BLEU / 100 as :func:`textgym.rewards.metrics.bleu` (sacreBLEU)."""

    def __init__(self, references: Sequence[str]):
        ref_counts, self.ref_lens = _bleu_reference_stats(tuple(references))
        super().__init__([ref_counts], _MAX_ORDER)

    @property
    def value(self) -> float:
        totals = [self._total(n) for n in range(1, _MAX_ORDER + 1)]
        return bleu_from_counts(self.matched[0], totals, len(self.tokens), self.ref_lens)


class IncrementalRougeN(_NgramCounts):
    """ROUGE-n F-measure (rouge-score, no stemming), best over the references."""

    tokenize = staticmethod(rouge_tokens)

    def __init__(self, references: Sequence[str], n: int):
        self.n = n
        targets = []
        for reference in references:
            tokens = rouge_tokens(reference)  # rouge-score's tokenizer works on whole texts too
            targets.append(Counter(tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1)))
        self.target_sizes = [sum(t.values()) for t in targets]
        self.empty_reference = any(not rouge_tokens(reference) for reference in references)
        super().__init__(targets, n)

    @property
    def value(self) -> float:
        if not self.tokens:  # as metrics.rouge*: an empty prediction matches an empty reference
            return float(self.empty_reference)
        predicted = max(self._total(self.n), 1)
        return max(
            fmeasure(matched[self.n - 1] / predicted, matched[self.n - 1] / max(size, 1))
            for matched, size in zip(self.matched, self.target_sizes)
        )


class IncrementalTokenF1(_NgramCounts):
    """SQuAD-style bag-of-tokens F1 as :func:`textgym.rewards.metrics.token_f1`."""

    def __init__(self, references: Sequence[str]):
        self.references = _reference_tokens(tuple(references))
        super().__init__([Counter((token,) for token in r) for r in self.references], 1)

    @property
    def value(self) -> float:
        size, best = len(self.tokens), 0.0
        for matched, reference in zip(self.matched, self.references):
            if not size or not reference:
                best = max(best, float(not size and not reference))
            elif matched[0]:
                precision, recall = matched[0] / size, matched[0] / len(reference)
                best = max(best, 2 * precision * recall / (precision + recall))
        return best


class IncrementalRougeL(IncrementalScore):
    """ROUGE-L F-measure (rouge-score, no stemming), best over the references. Keeps the
    bit-parallel LCS state (:func:`~textgym.rewards.metrics.lcs_masks`) after each
    hypothesis token, so appending costs a few int operations per reference and an edit
    recomputes only the states after it."""

    tokenize = staticmethod(rouge_tokens)

    def __init__(self, references: Sequence[str]):
        super().__init__()
        self.references = [rouge_tokens(r) for r in references]
        self._masks = [lcs_masks(r) for r in self.references]
        self._full = [(1 << len(r)) - 1 for r in self.references]
        # states[k][t]: reference k's LCS bit vector after the first t hypothesis tokens
        self.states: list[list[int]] = [[full] for full in self._full]

    def _splice(self, start: int, stop: int, new: Sequence[str]) -> None:
        tokens = self.tokens
        tokens[start:stop] = new
        for masks, full, states in zip(self._masks, self._full, self.states):
            del states[start + 1 :]
            v = states[-1]
            for token in tokens[start:]:
                u = v & masks.get(token, 0)
                v = ((v + u) | (v - u)) & full
                states.append(v)

    @property
    def value(self) -> float:
        size, best = len(self.tokens), 0.0
        if not size:  # as metrics.rougeL: an empty prediction matches an empty reference
            return float(any(not reference for reference in self.references))
        for reference, states in zip(self.references, self.states):
            if reference:
                lcs = len(reference) - states[-1].bit_count()
                best = max(best, fmeasure(lcs / size, lcs / len(reference)))
        return best


# the built-in metrics that have an incremental scorer, keyed by the metric function
INCREMENTAL_SCORERS: dict[Callable, Callable[[Sequence[str]], IncrementalScore]] = {
    bleu: IncrementalBleu,
    rouge1: lambda references: IncrementalRougeN(references, 1),
    rouge2: lambda references: IncrementalRougeN(references, 2),
    rougeL: IncrementalRougeL,
    token_f1: IncrementalTokenF1,
}


def supports_incremental(reward: Reward) -> bool:
    """Whether every term of ``reward`` has an incremental scorer."""
    return all(metric in INCREMENTAL_SCORERS for _, metric, _ in reward.terms)


class IncrementalReward:
    """A :class:`Reward` of one episode's text under word edits: one incremental scorer
    per term, and their weighted sum as ``value``. A text that is not a space-join of
    words, such as a tokenizer's decode, is scored as it grows by :meth:`follow`."""

    def __init__(self, reward: Reward, references: Sequence[str]):
        if not supports_incremental(reward):
            raise ValueError(f"{reward!r} has terms without an incremental scorer; supported: bleu, rouge1, "
                             "rouge2, rougeL, token_f1")
        self.terms = [(INCREMENTAL_SCORERS[metric](references), weight) for _, metric, weight in reward.terms]
        # follow(): the scorers' words are the settled pieces of the text, then its tail
        self._piece_ends: list[int] = []  # where each settled piece ends in the text
        self._settled = ""  # the text of the settled pieces
        self._tail: str | None = None  # the rest of the text; None before the first follow()

    def append(self, word: str) -> None:
        for scorer, _ in self.terms:
            scorer.append(word)

    def insert(self, i: int, word: str) -> None:
        for scorer, _ in self.terms:
            scorer.insert(i, word)

    def delete(self, i: int) -> None:
        for scorer, _ in self.terms:
            scorer.delete(i)

    def replace(self, i: int, word: str) -> None:
        for scorer, _ in self.terms:
            scorer.replace(i, word)

    def follow(self, text: str) -> None:
        """Score ``text``: the whole output so far of a text that grows at its end (a
        tokenizer's decode, token by token), instead of word edits.

        The text up to its last break (:func:`last_break`) is settled: scored once, as
        pieces appended to the scorers. Only the tail after it, the word being written, is
        scored again at the next call, so a call costs O(tail) and not O(text). Settled
        pieces that ``text`` no longer starts with (a tokenizer's clean-up turns "do n" +
        "'t" into "don't") are taken back first."""
        ends = self._piece_ends
        if self._tail is None or not text.startswith(self._settled):
            if self._tail is not None:
                self.delete(len(ends))  # the tail, then the pieces that changed
                while ends and not text.startswith(self._settled[: ends[-1]]):
                    ends.pop()
                    self.delete(len(ends))
                self._settled = self._settled[: ends[-1]] if ends else ""
            self._tail = ""
            self.append("")
        start = ends[-1] if ends else 0
        stop = last_break(text, start)
        if stop > start:
            self.replace(len(ends), text[start:stop])
            ends.append(stop)
            self._settled = text[:stop]
            self._tail = text[stop:]
            self.append(self._tail)
        elif text[start:] != self._tail:
            self._tail = text[start:]
            self.replace(len(ends), self._tail)

    @property
    def value(self) -> float:
        return sum(weight * scorer.value for scorer, weight in self.terms)


_LAST_SPACE = re.compile(r".*\s", re.DOTALL)


def last_break(text: str, start: int = 0) -> int:
    """The end of the last whitespace character of ``text[start:]`` at which every
    incremental metric's tokenizer splits ``text`` (``start`` if there is none): the
    tokens of ``text[:j]`` followed by those of ``text[j:]`` are the tokens of ``text``.

    rouge-score's tokenizer splits at any whitespace. sacreBLEU's 13a pads the text with
    spaces, so its rules look no further than the spaces around a word, but it first
    deletes "-\\n" (joining the words around it), after deleting "<skipped>": a newline
    after "-" or "<skipped>" is no break."""
    end = len(text)
    while (match := _LAST_SPACE.match(text, start, end)) is not None:
        j = match.end()
        if text[j - 1] != "\n" or not (text.endswith("-", 0, j - 1) or text.endswith("<skipped>", 0, j - 1)):
            return j
        end = j - 1
    return start


class AppendedBleu:
    """Sentence BLEU / 100 of ``n_rows`` texts that only grow by appended words (the outputs
    of a native TokenGen vector env, one row per sub-env), equal to :class:`IncrementalBleu`'s
    value, updated for all rows at once with array operations.

    Metric tokens (13a) become ids. A row keeps its text's token ids, its clipped n-gram
    matches per order and its example; each example's references are kept as token ids.
    Appending a token counts, for every row at once, how often each n-gram ending at it
    occurs earlier in the row and in each reference. BLEU is a function of (matches per
    order, length, closest reference length), so each distinct state is scored once by
    :func:`bleu_from_counts`, exactly as ``IncrementalBleu.value`` scores it.
    """

    # distinct states scored before the cache of scores is emptied (it only saves time)
    _MAX_SCORES = 1 << 16

    def __init__(self, words: Sequence[str], references: Sequence[Sequence[str]], n_rows: int, max_words: int):
        """``words[i]`` is what token id i appends ("" for nothing), ``references[e]`` are
        example e's references, and a row gets at most ``max_words`` words."""
        ids: dict[str, int] = {}
        word_tokens = [[ids.setdefault(token, len(ids)) for token in _tokens_13a(word)] for word in words]
        width = max(max(map(len, word_tokens)), 1)  # the most tokens a word appends
        self._word_sizes = np.array([len(tokens) for tokens in word_tokens], dtype=np.int64)
        self._word_tokens = np.zeros((len(words), width), dtype=np.int32)
        for i, tokens in enumerate(word_tokens):
            self._word_tokens[i, : len(tokens)] = tokens

        # references as token ids padded with -1, also the id of tokens no word writes, so
        # that n-grams with a -1 match nothing
        tokenized = [[word_tokenize(reference) for reference in refs] for refs in references]
        n_refs = max(map(len, tokenized))
        ref_size = max(len(tokens) for refs in tokenized for tokens in refs)
        size = max_words * width
        self._refs = np.full((len(references), n_refs, ref_size), -1, dtype=np.int32)
        # reference lengths, padded with one that is never the closest to a text's length
        far = 2 * (size + ref_size) + 1
        self._ref_lens = np.full((len(references), n_refs), far, dtype=np.int64)
        for e, refs in enumerate(tokenized):
            for k, tokens in enumerate(refs):
                self._refs[e, k, : len(tokens)] = [ids.get(token, -1) for token in tokens]
                self._ref_lens[e, k] = len(tokens)

        self._tokens = np.zeros((n_rows, size), dtype=np.int32)
        self._length = np.zeros(n_rows, dtype=np.int64)
        self._matched = np.zeros((n_rows, _MAX_ORDER), dtype=np.int64)
        self._example = np.zeros(n_rows, dtype=np.int64)
        # a state's key: its numbers in mixed radix (Python ints where int64 would overflow)
        radix = [size + 1] * (_MAX_ORDER + 1) + [far + 1]
        self._key_dtype = np.int64 if math.prod(radix) < 2**63 else object
        self._key_weights = np.array([math.prod(radix[i + 1 :]) for i in range(len(radix))], dtype=self._key_dtype)
        self._scores: dict[int, float] = {}

    def reset(self, rows: np.ndarray, examples: np.ndarray) -> None:
        """Empty the texts of ``rows``, which are now scored against ``examples``' references."""
        self._length[rows] = 0
        self._matched[rows] = 0
        self._example[rows] = examples

    def append(self, rows: np.ndarray, word_ids: np.ndarray) -> None:
        """Append word ``word_ids[j]`` to the text of row ``rows[j]``."""
        sizes, tokens = self._word_sizes[word_ids], self._word_tokens[word_ids]
        for t in range(sizes.max(initial=0)):
            has = sizes > t
            self._append_token(rows[has], tokens[has, t])

    def _append_token(self, rows: np.ndarray, token: np.ndarray) -> None:
        end = self._length[rows]  # the new token's position: the new n-grams end there
        self._tokens[rows, end] = token
        self._length[rows] = end + 1
        tokens, refs = self._tokens[rows], self._refs[self._example[rows]]
        picked = np.arange(rows.size)
        # same[j, s] (ref_same[j, k, s]): the n-gram starting at s in row j's text (in its
        # k-th reference) equals row j's new n-gram, for n = 1, then 2, ...; the text's
        # n-grams count only if they end before the new token
        same = (tokens == token[:, None]) & (np.arange(tokens.shape[1]) < end[:, None])
        ref_same = refs == token[:, None, None]
        matches = np.zeros((rows.size, _MAX_ORDER), dtype=bool)
        for n in range(1, _MAX_ORDER + 1):
            if n > 1:  # n-grams that start with the new one's first token, then its (n-1)-gram
                first = tokens[picked, np.maximum(end - n + 1, 0)]
                same = same[:, 1:] & (tokens[:, : 1 - n] == first[:, None])
                ref_same = ref_same[:, :, 1:] & (refs[:, :, : 1 - n] == first[:, None, None])
            # as IncrementalBleu: the new n-gram's c-th occurrence matches while some
            # reference has it c times
            matches[:, n - 1] = (end >= n - 1) & (same.sum(axis=1) < ref_same.sum(axis=2).max(axis=1))
        self._matched[rows] += matches

    def values(self, rows: np.ndarray) -> np.ndarray:
        """BLEU / 100 of the texts of ``rows``."""
        length = self._length[rows]
        ref_lens = self._ref_lens[self._example[rows]]
        # sacreBLEU's closest reference length, the shorter one on ties
        distance = 2 * np.abs(ref_lens - length[:, None]) + (ref_lens > length[:, None])
        closest = ref_lens[np.arange(rows.size), distance.argmin(axis=1)]
        states = np.column_stack([self._matched[rows], length, closest])
        keys, first, inverse = np.unique(states.astype(self._key_dtype) @ self._key_weights,
                                         return_index=True, return_inverse=True)
        if len(self._scores) > self._MAX_SCORES:
            self._scores.clear()
        scores = [self._score(key, states[j]) for key, j in zip(keys.tolist(), first.tolist())]
        return np.array(scores, dtype=np.float64)[inverse]

    def _score(self, key: int, state: np.ndarray) -> float:
        score = self._scores.get(key)
        if score is None:
            *matched, length, ref_len = state.tolist()
            totals = [max(0, length - n) for n in range(_MAX_ORDER)]
            score = self._scores[key] = bleu_from_counts(matched, totals, length, (ref_len,))
        return score
