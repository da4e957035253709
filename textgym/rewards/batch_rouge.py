"""ROUGE-1, ROUGE-2 and ROUGE-L of many word-id texts at once, with array operations.

A native vector env keeps its sub-envs' texts as rows of word ids. Scoring them one text at
a time costs a Python loop per text; :class:`BatchRouge` scores all of them with a number of
array operations that depends on the text length, not on the number of texts.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from textgym.rewards.metrics import rouge_tokens

ROUGE_TYPES = ("rouge1", "rouge2", "rougeL")
# elements of the largest (texts, text tokens, references, reference tokens) comparison
# made at once; more texts are scored in chunks
_MAX_COMPARED = 1 << 22
_NO_TOKEN, _REFERENCE_PAD = -1, -2  # pads that match nothing
_TINY = np.finfo(np.float64).tiny


class BatchRouge:
    """ROUGE F-measures (rouge-score, no stemming, best over the references) of texts that
    are space-joins of vocabulary words, equal to :func:`textgym.rewards.metrics.rouge_scores`
    of the joined texts.

    rouge-score's tokenizer splits at every character that is not a letter or a digit, so
    the tokens of a space-join of words are each word's tokens in turn: every word id maps
    to its ROUGE token ids once, and each example's references are kept as token-id arrays.
    ROUGE-N counts the n-grams of a text that occur fewer times earlier in it than in a
    reference (the clipped matches); ROUGE-L runs the bit-parallel LCS
    (:func:`~textgym.rewards.metrics.lcs_masks`) for all texts together, one machine word
    per reference (Python ints past 64 reference tokens).

    ``words[i]`` is the text word id i writes ("" for ids that decode to nothing) and
    ``references[e]`` are example e's references.
    """

    def __init__(self, words: Sequence[str], references: Sequence[Sequence[str]]):
        ids: dict[str, int] = {}
        word_tokens = [[ids.setdefault(token, len(ids)) for token in rouge_tokens(word)] for word in words]
        self._word_tokens = np.full((len(words), max(1, max(map(len, word_tokens), default=0))), _NO_TOKEN, dtype=np.int32)
        for i, tokens in enumerate(word_tokens):
            self._word_tokens[i, : len(tokens)] = tokens

        tokenized = [[rouge_tokens(reference) for reference in refs] for refs in references]
        n_refs = max(1, max(map(len, tokenized), default=0))
        ref_size = max(1, max((len(tokens) for refs in tokenized for tokens in refs), default=0))
        # a reference token that no word writes can never match: it is a pad too
        self._refs = np.full((len(references), n_refs, ref_size), _REFERENCE_PAD, dtype=np.int32)
        self._ref_lens = np.zeros((len(references), n_refs), dtype=np.int64)
        for e, refs in enumerate(tokenized):
            for k, tokens in enumerate(refs):
                self._refs[e, k, : len(tokens)] = [ids.get(token, _REFERENCE_PAD) for token in tokens]
                self._ref_lens[e, k] = len(tokens)
        # as rouge_scores: an empty text matches an example with an empty reference
        self._empty_reference = np.array([any(not tokens for tokens in refs) for refs in tokenized])
        # LCS bit vectors: bit j is reference token j; uint64 up to 64 tokens, else Python ints
        dtype = np.uint64 if ref_size <= 64 else object
        self._bits = np.array([1 << j for j in range(ref_size)], dtype=dtype)
        self._all_ones = np.concatenate([np.zeros(1, dtype=dtype), np.cumsum(self._bits)]).astype(dtype)  # by length

    def scores(self, ids: np.ndarray, examples: np.ndarray, rouge_types: Sequence[str] = ROUGE_TYPES) -> dict[str, np.ndarray]:
        """The F-measure of each of ``rouge_types`` for the texts ``ids`` (a (B, L) array of
        word ids, the words past a text's end writing nothing) against the references of
        ``examples`` (B,): ``{rouge_type: (B,) float64 array}``."""
        unknown = sorted(set(rouge_types) - set(ROUGE_TYPES))
        if unknown:
            raise ValueError(f"unknown ROUGE types {unknown}; valid: {list(ROUGE_TYPES)}")
        per_text = self._word_tokens.shape[1] * ids.shape[1] * self._refs[0].size
        chunk = max(1, _MAX_COMPARED // max(per_text, 1))
        if len(ids) <= chunk:
            return self._chunk_scores(ids, examples, rouge_types)
        parts = [self._chunk_scores(ids[start : start + chunk], examples[start : start + chunk], rouge_types)
                 for start in range(0, len(ids), chunk)]
        return {name: np.concatenate([part[name] for part in parts]) for name in rouge_types}

    def _chunk_scores(self, ids: np.ndarray, examples: np.ndarray, rouge_types: Sequence[str]) -> dict[str, np.ndarray]:
        # each text's ROUGE tokens, moved to the front of its row (a word may write none)
        tokens = self._word_tokens[ids].reshape(len(ids), -1)
        size = (tokens != _NO_TOKEN).sum(1)
        order = np.argsort(tokens == _NO_TOKEN, axis=1, kind="stable")[:, : max(1, int(size.max(initial=0)))]
        tokens = tokens[np.arange(len(ids))[:, None], order]
        refs, ref_lens = self._refs[examples], self._ref_lens[examples]
        # same[b, t, k, j]: token t of text b is token j of its reference k
        same = tokens[:, :, None, None] == refs[:, None, :, :]
        text_same = None
        empty = size == 0
        scores = {}
        for name in rouge_types:
            if name == "rougeL":
                lcs = self._lcs(same, ref_lens)
                f = _fmeasure(lcs / np.maximum(size, 1)[:, None], lcs / np.maximum(ref_lens, 1))
            else:
                if text_same is None:  # text_same[b, t, s]: token t of text b is its token s, for s < t
                    positions = np.arange(tokens.shape[1])
                    text_same = (tokens[:, :, None] == tokens[:, None, :]) & (positions[:, None] > positions)
                n = int(name[5:])
                matched = _ngram_matches(same, text_same, n)
                f = _fmeasure(matched / np.maximum(size - n + 1, 1)[:, None], matched / np.maximum(ref_lens - n + 1, 1))
            best = f.max(1)
            scores[name] = np.where(empty & (best == 0), self._empty_reference[examples], best)
        return scores

    def _lcs(self, same: np.ndarray, ref_lens: np.ndarray) -> np.ndarray:
        """(B, K) LCS lengths of each text and each of its references."""
        masks = (same * self._bits).sum(-1, dtype=self._bits.dtype)  # (B, T, K): where each token occurs
        full = self._all_ones[ref_lens]
        v = full.copy()
        for t in range(masks.shape[1]):  # a token that occurs nowhere (or a pad) leaves v as it is
            u = v & masks[:, t]
            v = ((v + u) | (v - u)) & full
        return ref_lens - _bit_counts(v)


def _ngram_matches(same: np.ndarray, text_same: np.ndarray, n: int) -> np.ndarray:
    """(B, K) clipped n-gram matches: the n-grams of each text that occur fewer times earlier
    in the text than in the reference. An n-gram that runs into the pads past a text's end
    occurs in no reference, so it never matches."""
    for _ in range(1, n):  # the n-grams starting at t: tokens t..t+n-1 all equal
        same = same[:, :-1, :, :-1] & same[:, 1:, :, 1:]
        text_same = text_same[:, :-1, :-1] & text_same[:, 1:, 1:]
    return (text_same.sum(-1)[:, :, None] < same.sum(-1)).sum(1)


def _fmeasure(precision: np.ndarray, recall: np.ndarray) -> np.ndarray:
    """rouge-score's ``fmeasure``, elementwise (0 where precision and recall are 0)."""
    return 2 * precision * recall / np.maximum(precision + recall, _TINY)


def _bit_counts(v: np.ndarray) -> np.ndarray:
    if v.dtype == object:
        return np.array([x.bit_count() for x in v.flat], dtype=np.int64).reshape(v.shape)
    return np.bitwise_count(v).astype(np.int64)
