import gymnasium as gym
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import textgym  # noqa: F401
from textgym.envs import NERTagEnv
from textgym.envs.ner_tag import SHAPES, word_shape
from textgym.rewards.span_metrics import ner_report, span_f1
from textgym.tasks import to_iob2

ROWS = [
    {"tokens": ["John", "Smith", "lives", "in", "Paris"], "tags": ["B-PER", "I-PER", "O", "O", "B-LOC"]},
    {"tokens": ["nothing", "here"], "tags": ["O", "O"]},
]


def play(env, tags, index=0):
    """Tag the sentence ``index`` with ``tags`` (names); the rewards and the last info."""
    env.reset(options={"index": index})
    rewards, info = [], None
    for tag in tags:
        _, reward, terminated, truncated, info = env.step(env.tag_id(tag))
        rewards.append(reward)
    assert terminated and not truncated
    return rewards, info


def test_spaces_tags_and_reset():
    env = NERTagEnv(task=ROWS)
    assert env.tags == ["O", "B-LOC", "I-LOC", "B-PER", "I-PER"]
    assert env.action_space == gym.spaces.Discrete(5) and env.tag_id("B-PER") == 3
    obs, info = env.reset(options={"index": 0})
    assert set(obs) == {"token_ids", "token_mask", "position", "tag_ids", "shape_ids"}
    assert all(v.dtype == np.int64 for v in obs.values())
    assert [env.vocab.id_to_token(i) for i in obs["token_ids"]] == ROWS[0]["tokens"]
    assert obs["shape_ids"].tolist() == [SHAPES.index(s) for s in ("Title", "Title", "lower", "lower", "Title")]
    assert info["text"] == "John Smith lives in Paris" and "metrics" not in info
    obs, *_ , info = env.step(env.tag_id("B-PER"))
    assert obs["tag_ids"].tolist() == [4, 0, 0, 0, 0] and obs["position"] == [1]
    assert info["text"] == "John/B-PER Smith lives in Paris"


def test_tag_id_names_the_valid_tags():
    with pytest.raises(ValueError, match=r"unknown tag 'B-XYZ'; valid tags: \['O', 'B-LOC'"):
        NERTagEnv(task=ROWS).tag_id("B-XYZ")


def test_bio_mask_allows_inside_tags_only_after_their_entity():
    env = NERTagEnv(task=ROWS)
    _, info = env.reset(options={"index": 0})
    legal = lambda: [env.tags[i] for i in np.flatnonzero(info["action_mask"])]  # noqa: E731
    assert legal() == ["O", "B-LOC", "B-PER"] and info["action_mask"].dtype == np.int8
    _, _, _, _, info = env.step(env.tag_id("B-PER"))
    assert legal() == ["O", "B-LOC", "B-PER", "I-PER"]
    np.testing.assert_array_equal(env.action_masks(), info["action_mask"].astype(bool))
    _, _, _, _, info = env.step(env.tag_id("I-PER"))
    assert legal() == ["O", "B-LOC", "B-PER", "I-PER"]
    _, _, _, _, info = env.step(env.tag_id("O"))
    assert legal() == ["O", "B-LOC", "B-PER"]
    assert NERTagEnv(task=ROWS, bio_mask=False).reset()[1]["action_mask"].all()


def test_a_masked_tag_is_applied_and_scored_not_raised():
    env = NERTagEnv(task=ROWS, reward_mode="token")
    env.reset(options={"index": 0})
    _, reward, _, _, info = env.step(env.tag_id("I-PER"))  # illegal: no entity to continue
    assert reward == 0.0 and info["text"].startswith("John/I-PER ")
    assert not info["action_mask"][env.tag_id("I-PER")]  # a stray I- opens no entity
    rewards, info = play(env, ["I-PER", "I-PER", "O", "O", "B-LOC"])
    assert info["metrics"]["f1"] == pytest.approx(2 / 3)  # stray I-PERs are no entity (strict IOB2)


def test_token_reward_hand_computed():
    rewards, info = play(NERTagEnv(task=ROWS, reward_mode="token"), ["B-PER", "O", "O", "O", "B-LOC"])
    assert rewards == [1.0, 0.0, 1.0, 1.0, 1.0]
    assert info["metrics"] == {"precision": 0.5, "recall": 0.5, "f1": 0.5, "accuracy": 0.8}
    assert info["text"] == "John/B-PER Smith/O lives/O in/O Paris/B-LOC"


def test_sparse_f1_reward_hand_computed():
    rewards, _ = play(NERTagEnv(task=ROWS, reward_mode="f1"), ["B-PER", "O", "O", "O", "B-LOC"])
    assert rewards == [0.0, 0.0, 0.0, 0.0, 0.5]


def test_f1_delta_reward_hand_computed():
    env = NERTagEnv(task=ROWS)
    assert env.reward_mode == "f1_delta"
    # prefix "John/B-PER": gold and predicted PER both cut at token 1 match -> F1 1; then
    # "Smith/O" closes the predicted PER at one token (wrong) -> 0; the end scores 1 of 2 -> 0.5
    rewards, info = play(env, ["B-PER", "O", "O", "O", "B-LOC"])
    assert rewards == pytest.approx([1.0, -1.0, 0.0, 0.0, 0.5])
    rewards, info = play(env, ["B-PER", "I-PER", "O", "O", "B-LOC"])
    assert rewards == pytest.approx([1.0, 0.0, 0.0, 0.0, 0.0]) and info["metrics"]["f1"] == 1.0


@pytest.mark.parametrize("mode", ["f1", "f1_delta"])
def test_sentences_without_entities_score_one_only_when_nothing_is_predicted(mode):
    env = NERTagEnv(task=ROWS, reward_mode=mode)
    rewards, info = play(env, ["O", "O"], index=1)
    assert rewards == [0.0, 1.0] and info["metrics"] == {"precision": 1.0, "recall": 1.0, "f1": 1.0, "accuracy": 1.0}
    rewards, info = play(env, ["B-PER", "O"], index=1)
    assert rewards == [0.0, 0.0] and info["metrics"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "accuracy": 0.5}


TAGS = ["O", "B-A", "I-A", "B-B", "I-B"]
tag_lists = st.lists(st.sampled_from(TAGS), min_size=1, max_size=10)


@settings(max_examples=150, deadline=None)
@given(gold=tag_lists, picks=st.lists(st.sampled_from(TAGS), min_size=10, max_size=10), masked=st.booleans())
def test_dense_rewards_sum_to_the_sparse_span_f1(gold, picks, masked):
    gold = to_iob2(gold)
    pred = picks[: len(gold)]
    row = [{"tokens": [f"w{i}" for i in range(len(gold))], "tags": gold}]
    dense, info = play(NERTagEnv(task=row, tags=TAGS, bio_mask=masked), pred)
    sparse, sparse_info = play(NERTagEnv(task=row, tags=TAGS, reward_mode="f1"), pred)
    assert sum(dense) == pytest.approx(sparse[-1], abs=1e-6)
    assert info["metrics"] == sparse_info["metrics"]
    assert info["metrics"]["f1"] == pytest.approx(span_f1(gold, pred))
    report = ner_report([gold], [pred])["micro"]
    assert info["metrics"]["precision"] == pytest.approx(report["precision"])
    assert info["metrics"]["recall"] == pytest.approx(report["recall"])


def oracle_f1(env):
    gold, pred = [], []
    for index in range(len(env.examples)):
        _, info = env.reset(options={"index": index})
        for tag in env.example.tags:
            assert info["action_mask"][env.tag_id(tag)], "the gold tag is masked"
            _, _, terminated, _, info = env.step(env.tag_id(tag))
        assert terminated and info["metrics"]["f1"] == 1.0 and info["metrics"]["accuracy"] == 1.0
        gold.append(list(env.example.tags))
        pred.append(env.predicted_tags)
    return ner_report(gold, pred)["micro"]["f1"]


def test_oracle_policy_reaches_f1_one_on_the_test_split():
    assert oracle_f1(NERTagEnv(split="test")) == 1.0


def test_oracle_on_wnut17(shared_data):
    env = NERTagEnv(task=str(shared_data / "wnut17" / "dev.conll"))
    assert len(env.tags) == 13
    assert oracle_f1(env) == 1.0


def test_window_view_for_tabular_agents():
    env = NERTagEnv(task=ROWS, window=1)
    obs, _ = env.reset(options={"index": 0})
    assert set(obs) == {"window_ids", "window_shape_ids", "prev_tag_ids"}
    word = env.vocab.token_to_id
    assert obs["window_ids"].tolist() == [env.vocab.pad_id, word("John"), word("Smith")]
    assert obs["prev_tag_ids"].tolist() == [0]
    obs, *_ = env.step(env.tag_id("B-PER"))
    assert obs["window_ids"].tolist() == [word("John"), word("Smith"), word("lives")]
    assert obs["prev_tag_ids"].tolist() == [env.tag_id("B-PER") + 1]
    for tag in ("I-PER", "O", "O"):
        obs, *_ = env.step(env.tag_id(tag))
    assert obs["window_ids"].tolist() == [word("in"), word("Paris"), env.vocab.pad_id]
    assert set(NERTagEnv(task=ROWS, window=2, word_shape=False).reset()[0]) == {"window_ids", "prev_tag_ids"}


def test_vocabulary_comes_from_train_with_unk_lowercase_and_min_freq():
    task = {"train": [ROWS[0], ROWS[0], ROWS[1]], "test": [{"tokens": ["PARIS", "Rome"], "tags": ["B-LOC", "B-LOC"]}]}
    env = NERTagEnv(task=task, split="test")
    assert "Rome" not in env.vocab and "nothing" in env.vocab
    obs, _ = env.reset()
    assert obs["token_ids"][:2].tolist() == [env.vocab.unk_id, env.vocab.unk_id]
    obs, _ = NERTagEnv(task=task, split="test", lowercase=True).reset()
    assert obs["token_ids"][0] != env.vocab.unk_id
    assert "nothing" not in NERTagEnv(task=task, min_freq=2).vocab


def test_word_shapes():
    shapes = [SHAPES[word_shape(w)] for w in ("dog", "Paris", "NASA", "3.5", "!!", "@bob", "https://t.co", "iPhone")]
    assert shapes == ["lower", "Title", "UPPER", "number", "punct", "mention", "url", "mixed"]


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"reward_mode": "dense"}, "unknown reward_mode 'dense'; valid modes: \\['token', 'f1_delta', 'f1'\\]"),
        ({"window": -1}, "window must be None or an int >= 0, got -1"),
        ({"min_freq": 0}, "min_freq must be a positive int, got 0"),
        ({"bio_mask": "yes"}, "bio_mask must be True or False, got 'yes'"),
        ({"split": "dev"}, "unknown split 'dev'; valid splits"),
        ({"task": "copy"}, "task 'copy' is not a TaggedSentence task; built-in ones: \\['entities'\\]"),
        ({"task": "nope"}, "unknown task 'nope'; built-in tasks: \\['entities'\\]"),
        ({"tags": ["O", "B-PER"]}, "the task uses tags \\['B-LOC', 'I-PER'\\] that are not in tags"),
        ({"tags": ["B-PER", "I-PER"]}, "including 'O'"),
        ({"render_mode": "rgb"}, "render_mode 'rgb'"),
    ],
)
def test_bad_arguments_name_the_value_and_the_choices(kwargs, message):
    with pytest.raises(ValueError, match=message):
        NERTagEnv(**{"task": ROWS, **kwargs})


def test_registered_ids_and_render():
    env = gym.make("NERTag-v0", render_mode="ansi")
    assert env.unwrapped.task.name == "entities"
    env.reset(seed=0)
    env.step(0)
    assert env.render().endswith(f"(1/{len(env.unwrapped.example.tokens)} tagged)")
    assert gym.make("NERTag-Entities-v0").unwrapped.window == 1
