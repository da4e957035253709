"""BatchRouge equals rouge_scores of the decoded texts, for many texts at once."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from textgym.rewards.batch_rouge import BatchRouge
from textgym.rewards.metrics import rouge_scores

# id 0 writes nothing (a pad); words with punctuation that rouge-score splits or drops
WORDS = ["", "the", "dog", "sees", "a", "ball", ".", "Dog", "ball,", "x-y", "3.5", "(a)", "don't", "!", "saw", "<unk>"]
REFERENCE_WORDS = ["the", "dog", "sees", "a", "ball", "zebra", "x", "y", "3", "5", "don", "t", "."]


def joined(ids):
    return " ".join(WORDS[i] for i in ids if WORDS[i])


reference = st.lists(st.sampled_from(REFERENCE_WORDS), max_size=12).map(" ".join)
text = st.lists(st.integers(0, len(WORDS) - 1), max_size=10)


@settings(max_examples=60, deadline=None)
@given(references=st.lists(st.lists(reference, min_size=1, max_size=3), min_size=1, max_size=4),
       texts=st.lists(st.tuples(text, st.integers(0, 10**6)), min_size=1, max_size=8))
def test_equals_rouge_scores(references, texts):
    scorer = BatchRouge(WORDS, references)
    ids = np.zeros((len(texts), 10), dtype=np.int64)
    for row, (words, _) in enumerate(texts):
        ids[row, : len(words)] = words
    examples = np.array([pick % len(references) for _, pick in texts])
    scores = scorer.scores(ids, examples)
    for row, (words, _) in enumerate(texts):
        expected = rouge_scores(joined(words), references[examples[row]])
        assert {name: scores[name][row] for name in expected} == expected  # exactly, not approximately


def test_long_references_use_python_ints_and_chunks_agree(monkeypatch):
    # 70 tokens is past one 64-bit word; chunks of one text give the same as one batch
    rng = np.random.default_rng(0)
    references = [[" ".join(rng.choice(REFERENCE_WORDS, size=70))], ["the dog sees a ball"]]
    scorer = BatchRouge(WORDS, references)
    ids = rng.integers(0, len(WORDS), size=(6, 10))
    examples = np.array([0, 1, 0, 1, 0, 0])
    scores = scorer.scores(ids, examples)
    for row in range(6):
        assert {n: scores[n][row] for n in scores} == rouge_scores(joined(ids[row]), references[examples[row]])
    monkeypatch.setattr("textgym.rewards.batch_rouge._MAX_COMPARED", 1)  # one text per chunk
    chunked = scorer.scores(ids, examples, ["rougeL", "rouge2"])
    np.testing.assert_array_equal(chunked["rougeL"], scores["rougeL"])
    np.testing.assert_array_equal(chunked["rouge2"], scores["rouge2"])


def test_empty_texts_and_references():
    scorer = BatchRouge(WORDS, [["the dog", ""], ["a ball"]])
    ids = np.array([[0, 0], [6, 0], [0, 0], [1, 2]])  # "", ".", "", "the dog"
    scores = scorer.scores(ids, np.array([0, 0, 1, 0]), ["rouge1", "rougeL"])
    # an empty text matches an empty reference (1.0), not a non-empty one (0.0)
    assert scores["rouge1"].tolist() == [1.0, 1.0, 0.0, 1.0]
    assert scores["rougeL"].tolist() == [1.0, 1.0, 0.0, 1.0]


def test_unknown_rouge_type():
    with pytest.raises(ValueError, match="unknown ROUGE types \\['rougeLsum'\\]; valid: \\['rouge1', 'rouge2', 'rougeL'\\]"):
        BatchRouge(WORDS, [["the dog"]]).scores(np.zeros((1, 2), dtype=np.int64), np.zeros(1, dtype=np.int64), ["rougeLsum"])
