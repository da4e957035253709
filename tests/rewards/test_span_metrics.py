import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from seqeval.metrics import classification_report
from seqeval.scheme import IOB2, Entities

from textgym.rewards.span_metrics import iob2_spans, ner_report, precision_recall_f1, span_f1

TAGS = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"]
sentences = st.lists(st.sampled_from(TAGS), min_size=1, max_size=12)


@settings(max_examples=300, deadline=None)
@given(tags=sentences)
def test_spans_match_seqeval_strict_iob2_even_for_invalid_sequences(tags):
    expected = [(e.tag, e.start, e.end) for e in Entities([tags], IOB2).entities[0]]
    assert iob2_spans(tags) == expected


@settings(max_examples=100, deadline=None)
@given(pairs=st.lists(st.tuples(sentences, sentences), min_size=1, max_size=6))
def test_report_matches_seqeval(pairs):
    gold = [g[: len(p)] for g, p in pairs]
    pred = [p[: len(g)] for g, p in pairs]
    report = ner_report(gold, pred)
    if not any(iob2_spans(g) for g in gold) or not any(iob2_spans(p) for p in pred):
        return  # seqeval divides by zero there; our convention is tested below
    expected = classification_report(gold, pred, mode="strict", scheme=IOB2, output_dict=True, zero_division=0)
    for kind in ("PER", "LOC"):
        if kind in expected:
            for key in ("precision", "recall", "f1-score"):
                assert report[kind][key.removesuffix("-score")] == pytest.approx(expected[kind][key])
    for key in ("precision", "recall", "f1-score"):
        assert report["micro"][key.removesuffix("-score")] == pytest.approx(expected["micro avg"][key])


def test_hand_computed_report():
    gold = [["B-PER", "I-PER", "O", "B-LOC"], ["O", "O"]]
    pred = [["B-PER", "O", "O", "B-LOC"], ["B-LOC", "O"]]
    report = ner_report(gold, pred)
    assert report["PER"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 1.0}
    assert report["LOC"] == {"precision": 0.5, "recall": 1.0, "f1": pytest.approx(2 / 3), "support": 1.0}
    assert report["micro"]["precision"] == pytest.approx(1 / 3) and report["micro"]["recall"] == 0.5


def test_f1_without_entities():
    assert precision_recall_f1(0, 0, 0) == (1.0, 1.0, 1.0)
    assert span_f1(["O", "O"], ["O", "O"]) == 1.0
    assert span_f1(["O", "O"], ["B-PER", "O"]) == 0.0
    assert span_f1(["B-PER", "O"], ["O", "O"]) == 0.0
    assert ner_report([["O"]], [["O"]]) == {"micro": {"precision": 1.0, "recall": 1.0, "f1": 1.0, "support": 0.0}}


def test_report_checks_lengths():
    with pytest.raises(ValueError, match="2 gold sentences but 1"):
        ner_report([["O"], ["O"]], [["O"]])
    with pytest.raises(ValueError, match="sentence 0: 2 gold tags but 1"):
        ner_report([["O", "O"]], [["O"]])
