"""Incremental metrics equal the full recomputation on random edit sequences."""

import gymnasium as gym
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import textgym  # noqa: F401  (registers the ids)
from textgym.rewards import make_reward
from textgym.rewards.incremental import (
    AppendedBleu,
    IncrementalBleu,
    IncrementalReward,
    IncrementalRougeL,
    IncrementalRougeN,
    IncrementalTokenF1,
    last_break,
    supports_incremental,
)
from textgym.rewards.metrics import bleu, rouge1, rouge2, rouge_tokens, rougeL, token_f1
from textgym.vocab import word_tokenize

# words with punctuation and case, so that 13a and rouge-score tokenizers split them
WORDS = ["the", "dog", "sees", "a", "ball", ".", "Dog", "ball,", "x-y", "3.5", "(a)", "don't", "!", "saw"]
SCORERS = [
    (IncrementalBleu, bleu),
    (lambda refs: IncrementalRougeN(refs, 1), rouge1),
    (lambda refs: IncrementalRougeN(refs, 2), rouge2),
    (IncrementalRougeL, rougeL),
    (IncrementalTokenF1, token_f1),
]

word = st.sampled_from(WORDS)
edit = st.one_of(
    st.tuples(st.just("append"), word),
    st.tuples(st.just("insert"), st.integers(0, 10**6), word),
    st.tuples(st.just("delete"), st.integers(0, 10**6)),
    st.tuples(st.just("replace"), st.integers(0, 10**6), word),
)
references = st.lists(st.lists(word, min_size=0, max_size=8).map(" ".join), min_size=1, max_size=3)


@pytest.mark.parametrize("make_scorer, metric", SCORERS)
@settings(max_examples=150, deadline=None)
@given(refs=references, edits=st.lists(edit, max_size=40))
def test_incremental_equals_full_recomputation(make_scorer, metric, refs, edits):
    scorer, words = make_scorer(refs), []
    assert scorer.value == pytest.approx(metric("", refs), abs=1e-9)
    for op, *args in edits:
        if op == "append":
            words.append(args[0])
            scorer.append(args[0])
        elif op == "insert":
            i = args[0] % (len(words) + 1)
            words.insert(i, args[1])
            scorer.insert(i, args[1])
        elif words:
            i = args[0] % len(words)
            if op == "delete":
                del words[i]
                scorer.delete(i)
            else:
                words[i] = args[1]
                scorer.replace(i, args[1])
        assert abs(scorer.value - metric(" ".join(words), refs)) <= 1e-9


def test_incremental_reward_is_the_weighted_sum():
    reward = make_reward([("bleu", 0.5), ("rougeL", 0.3), ("token_f1", 0.2)])
    refs = ["the dog sees a ball .", "a dog saw the ball"]
    tracker = IncrementalReward(reward, refs)
    for w in ["a", "dog", "sees", "the", "ball"]:
        tracker.append(w)
    assert abs(tracker.value - reward("a dog sees the ball", refs)[0]) <= 1e-9


def test_unsupported_metrics_are_reported():
    assert supports_incremental(make_reward("rouge2"))
    assert not supports_incremental(make_reward("chrf"))
    with pytest.raises(ValueError, match="incremental"):
        IncrementalReward(make_reward([("bleu", 0.5), ("chrf", 0.5)]), ["a"])
    with pytest.raises(IndexError):
        IncrementalBleu(["a"]).delete(0)



# snippets of decoded text: 13a's context rules (".,-" by digits, entities, "-\\n" and
# "<skipped>" deletions), case, and whitespace other than a space
SNIPPETS = ["a", "Dog", "5", ".", ",", "-", "'", "&quot;", "&", "amp;", "<skipped>", "<", "skipped>", " ", "\n", "\t",
            "  ", " the", " .5", "3.", "x-y", "don", "'t", "é"]
snippets = st.lists(st.sampled_from(SNIPPETS), max_size=12).map("".join)


@settings(max_examples=500, deadline=None)
@given(text=snippets, start=st.integers(0, 40))
def test_the_metrics_tokenizers_split_a_text_at_its_last_break(text, start):
    start = min(start, len(text))
    j = last_break(text, start)
    if j == start:  # no break after start
        return
    assert start < j <= len(text) and text[j - 1].isspace()
    for tokenize in (word_tokenize, rouge_tokens):
        assert list(tokenize(text)) == list(tokenize(text[:j])) + list(tokenize(text[j:]))


def test_a_newline_that_13a_deletes_is_no_break():
    assert last_break("a b-\nc") == 2 and last_break("a<skipped>\nc") == 0
    assert last_break("a -\n\nb") == 5 and last_break("a\n") == 2 and last_break("ab") == 0


@settings(max_examples=200, deadline=None)
@given(refs=references, edits=st.lists(st.tuples(st.integers(0, 4), snippets), max_size=20))
def test_following_a_growing_text_equals_rescoring_it(refs, edits):
    """Each call cuts 0-4 characters off the text's end (as a tokenizer's clean-up may)
    and appends a snippet; the value is always the full reward of the text."""
    reward = make_reward([("bleu", 0.3), ("rouge1", 0.1), ("rouge2", 0.2), ("rougeL", 0.3), ("token_f1", 0.1)])
    tracker, text = IncrementalReward(reward, refs), ""
    for cut, snippet in edits:
        text = text[: max(0, len(text) - cut)] + snippet
        tracker.follow(text)
        assert abs(tracker.value - reward(text, refs)[0]) <= 1e-9


def test_following_scores_the_tail_alone():
    tracker = IncrementalReward(make_reward("bleu"), ["the dog sees a ball"])
    for text in ["the", "the do", "the dog s", "the dog sees a ball"]:
        tracker.follow(text)
    scorer = tracker.terms[0][0]
    assert scorer.tokens == ["the", "dog", "sees", "a", "ball"] and scorer._word_sizes == [1, 1, 2, 1]  # "the ", "dog ", "sees a ", then the tail "ball"
    assert tracker.value == 1.0
    tracker.follow("the dog")  # the settled "the dog sees a " is taken back
    assert scorer._word_sizes == [1, 1] and tracker.value == bleu("the dog", ["the dog sees a ball"])


# "" appends nothing (as pad/eos decode); "a b" is one action that writes two words
APPENDED_WORDS = ["", *WORDS, "a b"]
batch_step = st.tuples(st.lists(st.sampled_from(range(len(APPENDED_WORDS))), min_size=3, max_size=3),
                       st.lists(st.booleans(), min_size=3, max_size=3))


@settings(max_examples=150, deadline=None)
@given(refs=st.lists(references, min_size=1, max_size=3), examples=st.lists(st.integers(0, 2), min_size=3, max_size=3),
       steps=st.lists(batch_step, max_size=12))
def test_appended_bleu_of_many_rows_equals_bleu_of_each_text(refs, examples, steps):
    """Three rows append words (or reset, the boolean) at once; every row's value is bleu()."""
    examples = np.array(examples) % len(refs)
    rows, texts = np.arange(3), [[], [], []]
    tracker = AppendedBleu(APPENDED_WORDS, refs, n_rows=3, max_words=12)
    tracker.reset(rows, examples)
    for word_ids, resets in steps:
        reset = rows[np.array(resets)]
        tracker.reset(reset, examples[reset])
        for r in reset:
            texts[r] = []
        tracker.append(rows, np.array(word_ids))
        for r, w in zip(rows, word_ids):
            texts[r].append(APPENDED_WORDS[w])
        values = tracker.values(rows)
        for r in rows:
            assert values[r] == bleu(" ".join(w for w in texts[r] if w), refs[examples[r]])


def assert_dense_rewards_rescore_the_text(env, n_episodes=20):
    """Every dense reward equals phi(text after) - phi(text before), phi the full reward."""
    assert env.unwrapped._episode_reward.tracks_words
    rng = np.random.default_rng(0)
    for episode in range(n_episodes):
        obs, info = env.reset(seed=episode)
        refs, potential, done = env.unwrapped.example.references, 0.0, False
        while not done:
            obs, reward, terminated, truncated, info = env.step(int(rng.choice(np.flatnonzero(info["action_mask"]))))
            done = terminated or truncated
            value = env.unwrapped.reward(info["text"], refs)[0]
            assert abs(reward - (value - potential)) <= 1e-9
            potential = value


def test_dense_token_gen_rewards_equal_rescoring_the_text():
    env = gym.make("TokenGen-v0", task="keywords", reward=[("bleu", 0.6), ("rouge2", 0.4)], reward_mode="dense")
    assert_dense_rewards_rescore_the_text(env)


@pytest.mark.parametrize("kwargs", [
    {"task": "compress", "reward_mode": "dense"},
    {"task": "fix", "reward": [("rougeL", 0.5), ("rouge1", 0.3), ("bleu", 0.2)], "reward_mode": "dense"},
])
def test_dense_token_edit_rewards_equal_rescoring_the_text(kwargs):
    assert_dense_rewards_rescore_the_text(gym.make("TokenEdit-v0", **kwargs))
