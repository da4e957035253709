"""Text metrics scaled to [0, 1]: pure functions of (prediction, references, source).

Every metric is a callable ``metric(prediction: str, references: Sequence[str], source: str)
-> float``. Built-ins call sacreBLEU and rouge-score directly (no ``evaluate``, no network)
and keep their scorer objects, and work that depends only on the references is cached,
because dense rewards score the same references at every step.

Token-level metrics (exact_match, token_f1, token_accuracy, length) compare sacreBLEU 13a
tokens (see :func:`textgym.vocab.word_tokenize`), case-sensitively.

Empty texts: a prediction with no tokens scores 1.0 against a reference with no tokens
(each metric's own tokens: 13a words for BLEU, rouge-score's for ROUGE, non-space
characters for chrF), as an exact match should; sacreBLEU and rouge-score give 0 there.
Against non-empty references an empty prediction scores as the libraries score it (0).

Three names score without references (``REFERENCE_FREE_METRICS``): ``coverage`` (the share
of the source's concepts that the prediction uses, lemma-insensitive), and two model
metrics, ``lm_fluency`` (:class:`~textgym.rewards.lm_fluency.LMFluency`, a causal LM,
SmolLM2 by default) and ``similarity`` (:class:`~textgym.rewards.similarity.SentenceSimilarity`,
the cosine of sentence embeddings with the source, MiniLM by default). The model metrics
load their model when built (once per process, shared) and score lists of texts in one
batch (``batch``).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Sequence
from functools import lru_cache
from numbers import Integral

from rouge_score.scoring import fmeasure

from textgym.rewards.lemmas import lemma_keys
from textgym.rewards.lm_fluency import LMFluency
from textgym.rewards.similarity import SentenceSimilarity
from textgym.vocab import word_tokenize

Metric = Callable[[str, Sequence[str], str], float]

_MAX_ORDER = 4


def _ngrams(tokens: Sequence[str]) -> Counter:
    return Counter(tuple(tokens[i : i + n]) for n in range(1, _MAX_ORDER + 1) for i in range(len(tokens) - n + 1))


@lru_cache(maxsize=4096)
def _bleu_reference_stats(references: tuple[str, ...]) -> tuple[dict, tuple[int, ...]]:
    """Max n-gram counts over the references, and their lengths (as sacreBLEU does)."""
    merged: Counter = Counter()
    lengths = []
    for reference in references:
        tokens = word_tokenize(reference)
        lengths.append(len(tokens))
        merged |= _ngrams(tokens)
    return dict(merged), tuple(lengths)


def bleu(prediction: str, references: Sequence[str], source: str = "") -> float:
    """Sentence BLEU / 100, equal to ``sacrebleu.sentence_bleu`` (13a tokenization, exp
    smoothing, effective order), with the reference n-grams cached across calls."""
    ref_counts, ref_lens = _bleu_reference_stats(tuple(references))
    tokens = word_tokenize(prediction)
    correct = [0] * _MAX_ORDER
    total = [0] * _MAX_ORDER
    for ngram, count in _ngrams(tokens).items():
        order = len(ngram) - 1
        total[order] += count
        correct[order] += min(count, ref_counts.get(ngram, 0))
    return bleu_from_counts(correct, total, len(tokens), ref_lens)


def bleu_from_counts(correct: Sequence[int], total: Sequence[int], hyp_len: int, ref_lens: Sequence[int]) -> float:
    """Sentence BLEU / 100 from clipped n-gram matches and n-gram totals per order (shared
    by :func:`bleu` and the incremental scorer, which keeps these counts up to date)."""
    if hyp_len == 0:  # the closest reference is an empty one, if any: an exact match
        return float(0 in ref_lens)
    if not any(correct):
        return 0.0
    # sacreBLEU's rule: the closest reference length, the shorter one on ties
    ref_len = min(ref_lens, key=lambda n: (abs(n - hyp_len), n))
    # sacreBLEU's compute_bleu for smooth_method="exp", effective_order=True
    log_precision_sum, order, smooth = 0.0, 0, 1.0
    for matched, count in zip(correct, total):
        if count == 0:
            break
        order += 1
        if matched == 0:
            smooth *= 2
            log_precision_sum += math.log(1.0 / (smooth * count))
        else:
            log_precision_sum += math.log(matched / count)
    brevity = 1.0 if hyp_len >= ref_len else math.exp(1 - ref_len / hyp_len)
    return min(brevity * math.exp(log_precision_sum / order), 1.0)


@lru_cache(maxsize=1)
def _sacrebleu_metrics():
    from sacrebleu.metrics import CHRF, TER

    return CHRF(), TER()


def chrf(prediction: str, references: Sequence[str], source: str = "") -> float:
    """chrF (sacreBLEU defaults) / 100; 1.0 for an empty prediction of an empty reference."""
    if not prediction.split():  # chrF ignores whitespace
        return float(any(not reference.split() for reference in references))
    return _sacrebleu_metrics()[0].sentence_score(prediction, list(references)).score / 100.0


def ter(prediction: str, references: Sequence[str], source: str = "") -> float:
    """1 - min(TER, 1): 1 for a perfect match, 0 when edits reach the reference length."""
    value = _sacrebleu_metrics()[1].sentence_score(prediction, list(references)).score / 100.0
    return 1.0 - min(value, 1.0)


ROUGE_TYPES = ("rouge1", "rouge2", "rougeL")


@lru_cache(maxsize=16384)
def rouge_tokens(text: str) -> tuple[str, ...]:
    """rouge-score's tokens of ``text`` (its default tokenizer, no stemming), cached: a
    reward and the end metrics score the same texts, dense rewards the same words."""
    from rouge_score.tokenize import tokenize  # not rouge_scorer, which imports nltk and scipy

    return tuple(tokenize(text, None))


def _rouge_ngrams(tokens: tuple[str, ...], n: int) -> Counter:
    return Counter(tokens[i : i + n] for i in range(len(tokens) - n + 1))


@lru_cache(maxsize=4096)
def _reference_rouge_ngrams(reference: str, n: int) -> tuple[Counter, int]:
    """A reference's n-gram counts and their total."""
    ngrams = _rouge_ngrams(rouge_tokens(reference), n)
    return ngrams, sum(ngrams.values())


@lru_cache(maxsize=4096)
def lcs_masks(reference: tuple[str, ...]) -> dict[str, int]:
    """Token -> bit mask of its positions in ``reference``, for bit-parallel LCS
    (Allison-Dix / Hyyro): with ``V`` all ones over ``len(reference)`` bits, each
    hypothesis token does ``U = V & masks[token]; V = ((V + U) | (V - U)) & full``, and the
    LCS length is ``len(reference) - V.bit_count()``. Cached: do not modify it."""
    masks: dict[str, int] = {}
    for j, token in enumerate(reference):
        masks[token] = masks.get(token, 0) | 1 << j
    return masks


def _rouge_n_fmeasure(predicted: Counter, n_predicted: int, reference: str, n: int) -> float:
    """As rouge-score's ``_score_ngrams``."""
    target, n_target = _reference_rouge_ngrams(reference, n)
    overlap = sum(min(count, predicted[ngram]) for ngram, count in target.items())
    return fmeasure(overlap / max(n_predicted, 1), overlap / max(n_target, 1))


def _rouge_l_fmeasure(tokens: tuple[str, ...], reference: tuple[str, ...]) -> float:
    """As rouge-score's ``_score_lcs``, with a bit-parallel LCS instead of its table."""
    if not tokens or not reference:
        return 0.0
    masks, full = lcs_masks(reference), (1 << len(reference)) - 1
    v = full
    for token in tokens:
        u = v & masks.get(token, 0)
        v = ((v + u) | (v - u)) & full
    lcs = len(reference) - v.bit_count()
    return fmeasure(lcs / len(tokens), lcs / len(reference))


def rouge_scores(prediction: str, references: Sequence[str], rouge_types: Sequence[str] = ROUGE_TYPES) -> dict[str, float]:
    """F-measures of several ROUGE types at once (``rougeL`` and ``rouge<n>``), each equal to
    that metric's function (:func:`rouge1`, :func:`rouge2`, :func:`rougeL`): rouge-score's
    ``score_multi`` (no stemming), best over the references; 1.0 for an empty prediction of
    an empty reference. Tokens and reference n-grams are computed once per text."""
    tokens = rouge_tokens(prediction)
    scores = {}
    for rouge_type in rouge_types:
        if rouge_type == "rougeL":
            value = max(_rouge_l_fmeasure(tokens, rouge_tokens(r)) for r in references)
        elif rouge_type[:5] == "rouge" and rouge_type[5:].isdigit() and int(rouge_type[5:]) > 0:
            n = int(rouge_type[5:])
            predicted = _rouge_ngrams(tokens, n)
            n_predicted = max(0, len(tokens) - n + 1)
            value = max(_rouge_n_fmeasure(predicted, n_predicted, r, n) for r in references)
        else:
            raise ValueError(f"unknown ROUGE type {rouge_type!r}; valid: 'rougeL' or 'rouge<n>' with n >= 1")
        if value == 0 and not tokens:
            value = float(any(not rouge_tokens(r) for r in references))
        scores[rouge_type] = value
    return scores


def _rouge(rouge_type: str) -> Metric:
    def rouge(prediction: str, references: Sequence[str], source: str = "") -> float:
        return rouge_scores(prediction, references, (rouge_type,))[rouge_type]

    rouge.__name__ = rouge.__qualname__ = rouge_type
    rouge.__doc__ = (f"{rouge_type} F-measure (rouge-score, no stemming), best over the references; "
                     "1.0 for an empty prediction of an empty reference.")
    return rouge


rouge1, rouge2, rougeL = _rouge("rouge1"), _rouge("rouge2"), _rouge("rougeL")


@lru_cache(maxsize=4096)
def _reference_tokens(references: tuple[str, ...]) -> tuple[tuple[str, ...], ...]:
    return tuple(tuple(word_tokenize(r)) for r in references)


def exact_match(prediction: str, references: Sequence[str], source: str = "") -> float:
    """1 if the prediction's tokens equal some reference's tokens, else 0."""
    tokens = tuple(word_tokenize(prediction))
    return float(tokens in _reference_tokens(tuple(references)))


def token_f1(prediction: str, references: Sequence[str], source: str = "") -> float:
    """SQuAD-style bag-of-tokens F1, best over the references (1 when both are empty)."""
    tokens = word_tokenize(prediction)
    best = 0.0
    for reference in _reference_tokens(tuple(references)):
        if not tokens or not reference:
            best = max(best, float(not tokens and not reference))
            continue
        overlap = sum((Counter(tokens) & Counter(reference)).values())
        if overlap:
            precision, recall = overlap / len(tokens), overlap / len(reference)
            best = max(best, 2 * precision * recall / (precision + recall))
    return best


def token_accuracy(prediction: str, references: Sequence[str], source: str = "") -> float:
    """Position-wise matches / max(prediction length, reference length), best over the
    references: the fraction copied, with extra tokens counted as errors."""
    tokens = word_tokenize(prediction)
    best = 0.0
    for reference in _reference_tokens(tuple(references)):
        longest = max(len(tokens), len(reference))
        if longest == 0:
            return 1.0
        best = max(best, sum(a == b for a, b in zip(tokens, reference)) / longest)
    return best


class Length:
    """max(0, 1 - |n - target| / target) for a prediction of n tokens.

    ``target`` is a token count; None uses the length of the reference closest to the
    prediction's length.
    """

    def __init__(self, target: int | None = None):
        if target is not None and (isinstance(target, bool) or not isinstance(target, Integral) or target < 1):
            raise ValueError(f"length target must be a positive int or None, got {target!r}")
        self.target = None if target is None else int(target)
        self.__name__ = "length"

    @property
    def needs_references(self) -> bool:
        return self.target is None

    def __call__(self, prediction: str, references: Sequence[str], source: str = "") -> float:
        n = len(word_tokenize(prediction))
        target = self.target
        if target is None:
            target = min((len(r) for r in _reference_tokens(tuple(references))), key=lambda m: (abs(m - n), m))
        if target == 0:
            return float(n == 0)
        return max(0.0, 1.0 - abs(n - target) / target)


def concept_coverage(text: str, concepts: Sequence[str]) -> float:
    """The share of the distinct ``concepts`` that ``text`` uses, lemma- and case-insensitive:
    a concept is used when each of its words (rouge-score's tokens) matches a word of the
    text (see :func:`~textgym.rewards.lemmas.lemma_keys`: "dog" matches "dogs", "run"
    matches "ran"). 1.0 when there are no concepts."""
    wanted = {tokens for tokens in map(rouge_tokens, concepts) if tokens}
    if not wanted:
        return 1.0
    used = set().union(*map(lemma_keys, rouge_tokens(text)))
    return sum(all(lemma_keys(token) & used for token in tokens) for tokens in wanted) / len(wanted)


def coverage(prediction: str, references: Sequence[str] = (), source: str = "") -> float:
    """The share of the source's concepts, its whitespace-separated words, that the
    prediction uses (:func:`concept_coverage`). TokenGen's source is the prompt, and a
    CommonGen prompt is its concepts joined by spaces. Needs no references."""
    return concept_coverage(prediction, source.split())


coverage.needs_references = False


def distinct_n(texts: Sequence[str], n: int = 2) -> float:
    """Corpus diversity: distinct n-grams / all n-grams over ``texts`` (sacreBLEU 13a tokens,
    n-grams within a text), 0.0 when no text has n tokens. Low values mean that outputs
    repeat each other (a policy that collapsed to one safe sentence)."""
    if isinstance(n, bool) or not isinstance(n, Integral) or n < 1:
        raise ValueError(f"distinct_n: n must be an int >= 1, got {n!r}")
    if isinstance(texts, str):
        raise TypeError("distinct_n takes a list of texts, not one str")
    distinct: set[tuple[str, ...]] = set()
    total = 0
    for text in texts:
        tokens = word_tokenize(text)
        ngrams = [tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1)]
        distinct.update(ngrams)
        total += len(ngrams)
    return len(distinct) / total if total else 0.0


# name -> factory taking the metric's keyword arguments
METRICS: dict[str, Callable[..., Metric]] = {
    "bleu": lambda: bleu,
    "chrf": lambda: chrf,
    "ter": lambda: ter,
    "rouge1": lambda: rouge1,
    "rouge2": lambda: rouge2,
    "rougeL": lambda: rougeL,
    "exact_match": lambda: exact_match,
    "token_f1": lambda: token_f1,
    "token_accuracy": lambda: token_accuracy,
    "length": Length,
    "lm_fluency": LMFluency,
    "similarity": SentenceSimilarity,
    "coverage": lambda: coverage,
}
# the named metrics that score without references
REFERENCE_FREE_METRICS = ("coverage", "lm_fluency", "similarity")
