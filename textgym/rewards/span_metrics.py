"""Span metrics for IOB2 tagging, for NERTag rewards and evaluation scripts.

Spans follow seqeval's strict IOB2 mode (``mode="strict", scheme=IOB2``): an entity is a
``B-X`` followed by any number of ``I-X``; an ``I-X`` that does not continue a ``B-X`` or
``I-X`` belongs to no entity. These are pure functions and match seqeval exactly (see
``tests/rewards/test_span_metrics.py``) while being fast enough to run at every env step.

F1 where there is nothing to find: when gold and prediction both have no entity,
precision, recall and F1 are 1.0 (nothing was missed and nothing invented); when only one
side has entities they are 0.0. seqeval reports 0.0 (with a warning) in the first case.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

Span = tuple[str, int, int]  # (type, start, end), end exclusive


def iob2_spans(tags: Sequence[str]) -> list[Span]:
    """Entity spans of one tagged sentence, in order (seqeval strict IOB2)."""
    spans = []
    open_type, start = None, 0
    for i, tag in enumerate(tags):
        if open_type is not None and tag[:2] == "I-" and tag[2:] == open_type:
            continue
        if open_type is not None:
            spans.append((open_type, start, i))
        open_type, start = (tag[2:], i) if tag[:2] == "B-" else (None, 0)
    if open_type is not None:
        spans.append((open_type, start, len(tags)))
    return spans


def precision_recall_f1(n_correct: int, n_gold: int, n_pred: int) -> tuple[float, float, float]:
    """Span precision, recall and F1 from counts, 1.0 each when both sides are empty."""
    if n_gold == 0 and n_pred == 0:
        return 1.0, 1.0, 1.0
    precision = n_correct / n_pred if n_pred else 0.0
    recall = n_correct / n_gold if n_gold else 0.0
    f1 = 2 * n_correct / (n_gold + n_pred)  # equals the harmonic mean of precision and recall
    return precision, recall, f1


def span_f1(gold: Sequence[str], pred: Sequence[str]) -> float:
    """Span F1 of one sentence's predicted tags against its gold tags."""
    gold_spans, pred_spans = set(iob2_spans(gold)), set(iob2_spans(pred))
    return precision_recall_f1(len(gold_spans & pred_spans), len(gold_spans), len(pred_spans))[2]


def ner_report(gold: Sequence[Sequence[str]], pred: Sequence[Sequence[str]]) -> dict[str, dict[str, float]]:
    """Span precision, recall, F1 and support per entity type and in total (``"micro"``).

    ``gold`` and ``pred`` are lists of sentences, each a list of IOB2 tags. The keys are the
    entity types found in either side, sorted, then ``"micro"``; each value holds
    ``precision``, ``recall``, ``f1`` and ``support`` (the number of gold spans).
    """
    if len(gold) != len(pred):
        raise ValueError(f"{len(gold)} gold sentences but {len(pred)} predicted ones")
    n_gold: Counter[str] = Counter()
    n_pred: Counter[str] = Counter()
    n_correct: Counter[str] = Counter()
    for i, (gold_tags, pred_tags) in enumerate(zip(gold, pred)):
        if len(gold_tags) != len(pred_tags):
            raise ValueError(f"sentence {i}: {len(gold_tags)} gold tags but {len(pred_tags)} predicted ones")
        gold_spans, pred_spans = set(iob2_spans(gold_tags)), set(iob2_spans(pred_tags))
        n_gold.update(span[0] for span in gold_spans)
        n_pred.update(span[0] for span in pred_spans)
        n_correct.update(span[0] for span in gold_spans & pred_spans)
    report = {}
    for kind in sorted(n_gold.keys() | n_pred.keys()):
        report[kind] = _row(n_correct[kind], n_gold[kind], n_pred[kind])
    report["micro"] = _row(sum(n_correct.values()), sum(n_gold.values()), sum(n_pred.values()))
    return report


def _row(n_correct: int, n_gold: int, n_pred: int) -> dict[str, float]:
    precision, recall, f1 = precision_recall_f1(n_correct, n_gold, n_pred)
    return {"precision": precision, "recall": recall, "f1": f1, "support": float(n_gold)}
