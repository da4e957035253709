"""Concept coverage (lemma-insensitive) and distinct-n, against hand-computed values."""

import pytest

from textgym.rewards import METRICS, concept_coverage, coverage, distinct_n, make_reward, needs_references
from textgym.rewards.lemmas import lemma_keys


@pytest.mark.parametrize("concept, text", [
    ("dog", "two dogs"), ("run", "running"), ("run", "he ran"), ("make", "making"), ("make", "made"),
    ("sit", "the cat sat"), ("catch", "caught"), ("throw", "throws"), ("fly", "flies"), ("movie", "movies"),
    ("box", "boxes"), ("glass", "glasses"), ("ski", "skiing"), ("ski", "skis"), ("topping", "toppings"),
    ("child", "children"), ("knife", "knives"), ("leaf", "leaves"), ("mouse", "mice"), ("fireman", "firemen"),
    ("hike", "hiked"), ("hope", "hoping"), ("hop", "hopping"), ("stop", "stopped"), ("visit", "visited"), ("cry", "cried"), ("die", "dying"), ("Dog", "DOGS!"), ("t-shirt", "t shirts"),
])
def test_inflections_match(concept, text):
    assert concept_coverage(text, [concept]) == 1.0


@pytest.mark.parametrize("concept, text", [
    ("teach", "the teacher"), ("dog", "a cat"), ("bite", "a bit"), ("ground", "grind"), ("sing", "song"),
    ("bring", "br"), ("thing", "th"), ("bed", "b"), ("glass", "gas"), ("t-shirt", "a shirt"), ("car", "caring"),
    ("hop", "hoping"), ("hat", "hated"), ("sit", "a site"), ("not", "a note"), ("see", "seed"),
])
def test_other_words_do_not(concept, text):
    assert concept_coverage(text, [concept]) == 0.0


def test_lemma_keys():
    assert lemma_keys("run") == {"run"} and lemma_keys("bite") == {"bite"}  # a base word is itself
    assert lemma_keys("ran") == {"ran", "run"}  # an irregular form, and its base
    assert lemma_keys("running") == {"running", "runn", "runne", "run"}
    assert lemma_keys("making") == {"making", "make"}  # a base "mak" would write "makking"
    assert lemma_keys("jumping") == {"jumping", "jump", "jumpe"}
    assert lemma_keys("flies") == {"flies", "flie", "fly"}
    assert lemma_keys("boxes") == {"boxes", "boxe", "box"}
    assert lemma_keys("businessmen") == {"businessmen", "businessman"}  # an irregular form after a prefix


def test_coverage_hand_computed():
    # concepts dog, run, frisbee, catch: dogs and running are used, frisbee too, catch is not
    assert coverage("The dogs were running after a frisbee.", [], "dog run frisbee catch") == 0.75
    assert coverage("a dog", ["unused reference"], "dog dog cat") == 0.5  # distinct concepts
    assert coverage("", [], "dog cat") == 0.0
    assert coverage("anything", [], "") == 1.0  # no concepts: nothing is missing
    assert coverage("cats", [], " cat\tdog ") == 0.5


def test_coverage_is_a_reference_free_metric():
    assert METRICS["coverage"]() is coverage
    assert not needs_references(coverage)
    reward = make_reward("coverage")
    reward.check_references([type("Example", (), {"references": (), "prompt": "dog"})()], "no references")
    assert reward("dogs", [], "dog cat") == (0.5, {"coverage": 0.5})


def test_bleu_and_coverage_combine_as_the_weighted_mean():
    reward = make_reward(["bleu", ("coverage", 0.5)])
    references, source = ["the dog catches a frisbee ."], "dog frisbee catch throw"
    # the reference itself: BLEU 1, coverage 3/4 (no throw)
    assert reward(references[0], references, source) == ((1.0 + 0.5 * 0.75) / 1.5, {"bleu": 1.0, "coverage": 0.75})
    # no n-gram of the reference (13a tokens are case-sensitive), every concept but catch
    value, metrics = reward("Frisbee dogs throwing", references, source)
    assert metrics == {"bleu": 0.0, "coverage": 0.75} and value == pytest.approx(0.5 * 0.75 / 1.5)


def test_distinct_n_hand_computed():
    texts = ["a b a b", "a b c"]
    assert distinct_n(texts, 1) == 3 / 7  # a, b, c of 7 words
    assert distinct_n(texts, 2) == 3 / 5  # ab, ba, bc of ab ba ab | ab bc
    assert distinct_n(texts, 3) == 1.0  # aba, bab, abc
    assert distinct_n(texts, 4) == 1.0  # only "a b a b" has 4 words
    assert distinct_n(["the dog.", "the dog ."], 1) == 0.5  # 13a tokens: the, dog, "." twice
    assert distinct_n(["same sentence"] * 10, 2) == 0.1  # a collapse to one sentence
    assert distinct_n(["one"], 2) == 0.0 and distinct_n([], 1) == 0.0


@pytest.mark.parametrize("n", [0, 1.5, True])
def test_distinct_n_errors(n):
    with pytest.raises(ValueError, match=f"n must be an int >= 1, got {n}"):
        distinct_n(["a b"], n)
    with pytest.raises(TypeError, match="a list of texts, not one str"):
        distinct_n("a b", 1)
