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

Two names build model metrics that need no references (``REFERENCE_FREE_METRICS``):
``lm_fluency`` (:class:`~textgym.rewards.lm_fluency.LMFluency`, a causal LM, SmolLM2 by
default) and ``similarity`` (:class:`~textgym.rewards.similarity.SentenceSimilarity`, the
cosine of sentence embeddings with the source, MiniLM by default). They load their model
when built (once per process, shared) and score lists of texts in one batch (``batch``).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Sequence
from functools import cache, lru_cache
from numbers import Integral

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


@cache
def _rouge_scorer(rouge_type: str):
    from rouge_score.rouge_scorer import RougeScorer

    return RougeScorer([rouge_type])


def lcs_masks(reference: Sequence[str]) -> dict[str, int]:
    """Token -> bit mask of its positions in ``reference``, for bit-parallel LCS
    (Allison-Dix / Hyyro): with ``V`` all ones over ``len(reference)`` bits, each
    hypothesis token does ``U = V & masks[token]; V = ((V + U) | (V - U)) & full``, and the
    LCS length is ``len(reference) - V.bit_count()``."""
    masks: dict[str, int] = {}
    for j, token in enumerate(reference):
        masks[token] = masks.get(token, 0) | 1 << j
    return masks


def _rouge(rouge_type: str) -> Metric:
    def rouge(prediction: str, references: Sequence[str], source: str = "") -> float:
        scorer = _rouge_scorer(rouge_type)
        value = scorer.score_multi(list(references), prediction)[rouge_type].fmeasure
        if value == 0 and not scorer._tokenizer.tokenize(prediction):
            return float(any(not scorer._tokenizer.tokenize(r) for r in references))
        return value

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
}
# the named metrics that score without references
REFERENCE_FREE_METRICS = ("lm_fluency", "similarity")
