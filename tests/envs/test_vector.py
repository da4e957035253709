"""Native vector envs: make_vec picks them, and they equal SyncVectorEnv step for step."""

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.error import InvalidAction, ResetNeeded
from gymnasium.vector import AutoresetMode, SyncVectorEnv
from hypothesis import given, settings
from hypothesis import strategies as st

import textgym  # noqa: F401  (registers the ids)
from envs_registry import ENVS
from textgym.envs.ner_tag_vector import NERTagVectorEnv
from textgym.envs.token_edit_vector import TokenEditVectorEnv
from textgym.envs.token_gen_vector import TokenGenVectorEnv
from textgym.envs.vector_base import unbatch_info


def no_repeat(prompt_ids, output_ids):
    """A mask_fn: never write the previous token twice in a row."""
    mask = np.ones(16, dtype=bool)
    if output_ids:
        mask[output_ids[-1]] = False
    return mask


def shortness(prediction, references, source):
    """A reference-free callable reward: the share of the source's words that were cut."""
    return 1 - len(prediction.split()) / max(1, len(source.split()))


REFERENCE_FREE_TASK = [{"source": "the old cat sat on the mat"}, {"source": "a big dog ran far away"}]
COMMONGEN_TASK = [  # examples with concepts: end metrics add BLEU, ROUGE-L and coverage
    {"concepts": ["dog", "frisbee"], "prompt": "dog frisbee", "references": ["the dog caught a frisbee ."]},
    {"concepts": ["cat", "sit", "mat"], "prompt": "cat sit mat", "references": ["a cat sits on the mat .", "the cat sat ."]},
]

VECTOR_IDS = sorted(env_id for env_id, row in ENVS.items() if "vector_entry_point" in row)
CASES = [(env_id, {}) for env_id in VECTOR_IDS] + [
    ("TokenGen-v0", {"task": "keywords", "reward": "bleu", "reward_mode": "dense"}),
    ("TokenGen-v0", {"task": "keywords", "reward": [("rouge1", 0.5), ("token_f1", 0.5)], "reward_mode": "dense"}),
    ("TokenGen-v0", {"max_episode_steps": 2}),
    ("TokenGen-v0", {"task": COMMONGEN_TASK, "reward": "bleu", "reward_mode": "dense"}),
    ("TokenGen-v0", {"task": COMMONGEN_TASK, "reward": ["bleu", ("coverage", 0.5)], "reward_mode": "dense"}),
    ("TokenGen-v0", {"mask_fn": no_repeat, "task_kwargs": {"n_symbols": 12}}),
    ("TokenGen-v0", {"min_new_tokens": 2}),
    ("TokenGen-v0", {"min_new_tokens": 1, "mask_fn": no_repeat, "task_kwargs": {"n_symbols": 12}}),
    ("NERTag-v0", {"reward_mode": "f1"}),
    ("NERTag-v0", {"reward_mode": "token", "bio_mask": False, "word_shape": False}),
    ("NERTag-v0", {"window": 2}),
    ("TokenEdit-v0", {"reward_mode": "dense"}),
    ("TokenEdit-v0", {"reward_mode": "dense", "reward": [("rouge2", 0.5), ("token_f1", 0.5)], "max_edits": 3}),
    ("TokenEdit-v0", {"task": "fix", "compression": {"ratio": 0.5}, "max_length": 12}),
    ("TokenEdit-v0", {"reward_mode": "dense", "compression": {"length": 4}, "max_episode_steps": 6}),
    ("TokenEdit-Compress-v0", {"reward_mode": "dense", "task": REFERENCE_FREE_TASK, "reward": shortness}),
    ("TokenEdit-Compress-v0", {"task": REFERENCE_FREE_TASK, "reward": shortness, "compression": {"ratio": 0.5}}),
    ("TokenEdit-v0", {"reward_mode": "dense", "stop_anywhere": False, "max_episode_steps": 9}),
    ("TokenEdit-Compress-v0", {"task": REFERENCE_FREE_TASK, "reward": shortness, "stop_anywhere": False}),
]


def assert_same_infos(a, b):
    assert a.keys() == b.keys()
    for key in a:
        if isinstance(a[key], dict):
            assert_same_infos(a[key], b[key])
        else:
            assert a[key].dtype == b[key].dtype, key
            np.testing.assert_array_equal(a[key], b[key], err_msg=key)


def assert_same_step(a, b):
    for key in b[0]:
        assert a[0][key].dtype == b[0][key].dtype
        np.testing.assert_array_equal(a[0][key], b[0][key], err_msg=key)
    for x, y in zip(a[1:-1], b[1:-1]):
        assert x.dtype == y.dtype
        np.testing.assert_array_equal(x, y)
    assert_same_infos(a[-1], b[-1])


@pytest.mark.parametrize("env_id", VECTOR_IDS)
def test_make_vec_picks_the_native_env_and_sync_still_works(env_id):
    envs = gym.make_vec(env_id, num_envs=3)
    assert isinstance(envs, (TokenGenVectorEnv, NERTagVectorEnv, TokenEditVectorEnv))
    assert envs.metadata["autoreset_mode"] == AutoresetMode.NEXT_STEP
    assert envs.observation_space == gym.vector.utils.batch_space(envs.single_observation_space, 3)
    assert isinstance(gym.make_vec(env_id, num_envs=3, vectorization_mode="sync"), SyncVectorEnv)


@pytest.mark.parametrize("env_id, kwargs", CASES)
@settings(max_examples=8, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), num_envs=st.integers(1, 5), picks=st.lists(st.integers(0, 10**6), min_size=1, max_size=40))
def test_native_equals_sync_vector_env(env_id, kwargs, seed, num_envs, picks):
    native = gym.make_vec(env_id, num_envs=num_envs, **kwargs)
    sync = gym.make_vec(env_id, num_envs=num_envs, vectorization_mode="sync", **kwargs)
    first, expected = native.reset(seed=seed), sync.reset(seed=seed)
    assert_same_step(first, expected)
    info = first[-1]
    for pick in picks:
        # a legal action per env, or (every 7th pick) any action, to cover masked ones too
        actions = np.array([
            (pick + i) % native.single_action_space.n if pick % 7 == 0 else np.flatnonzero(mask)[(pick + i) % mask.sum()]
            for i, mask in enumerate(info["action_mask"])
        ])
        result, expected = native.step(actions), sync.step(actions)
        assert_same_step(result, expected)
        assert native.observation_space.contains(result[0])
        info = result[-1]
        np.testing.assert_array_equal(native.action_masks(), info["action_mask"].astype(bool))


@pytest.mark.parametrize("env_id, kwargs", CASES)
@settings(max_examples=6, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), num_envs=st.integers(1, 4), picks=st.lists(st.integers(0, 10**6), min_size=1, max_size=30))
def test_step_active_steps_only_the_marked_sub_envs(env_id, kwargs, seed, num_envs, picks):
    """Sub-env i under ``step_active`` follows the episodes of a one-env vector env seeded
    ``seed + i`` that is stepped only when i is active; an inactive sub-env keeps its state
    and reports nothing."""
    native = gym.make_vec(env_id, num_envs=num_envs, **kwargs)
    alone = [gym.make_vec(env_id, num_envs=1, **kwargs) for _ in range(num_envs)]
    obs, info = native.reset(seed=seed)
    for i, env in enumerate(alone):
        env.reset(seed=seed + i)
    for pick in picks:
        masks = info["action_mask"]
        actions = np.array([np.flatnonzero(mask)[(pick + i) % mask.sum()] if mask.any() else 0
                            for i, mask in enumerate(masks)])
        active = np.array([(pick >> i) % 3 != 0 for i in range(num_envs)])
        before = {key: value.copy() for key, value in obs.items()}
        obs, rewards, terminated, truncated, info = native.step_active(actions, active)
        for i, env in enumerate(alone):
            if not active[i]:
                assert rewards[i] == 0 and not terminated[i] and not truncated[i]
                for key in obs:
                    np.testing.assert_array_equal(obs[key][i], before[key][i], err_msg=key)
                assert all(not info[f"_{key}"][i] for key in info if not key.startswith("_") and key != "action_mask")
                continue
            one = env.step(actions[i:i + 1])
            for key in obs:
                np.testing.assert_array_equal(obs[key][i], one[0][key][0], err_msg=key)
            assert (rewards[i], terminated[i], truncated[i]) == (one[1][0], one[2][0], one[3][0])
            np.testing.assert_equal(unbatch_info(info, i), unbatch_info(one[4], 0))


def test_step_active_checks_the_mask():
    envs = gym.make_vec("TokenGen-v0", num_envs=2)
    envs.reset(seed=0)
    with pytest.raises(ValueError, match=r"active must be a bool array of shape \(2,\), got array\(\[1, 0\]\)"):
        envs.step_active(np.array([5, 5]), np.array([1, 0]))


def test_autoreset_is_next_step():
    envs = gym.make_vec("TokenGen-v0", num_envs=2)
    envs.reset(seed=0)
    eos = envs.unwrapped.vocab.eos_id
    _, rewards, terminated, _, info = envs.step(np.array([eos, 5]))
    assert terminated.tolist() == [True, False] and info["_metrics"].tolist() == [True, False]
    obs, rewards, terminated, truncated, info = envs.step(np.array([5, 5]))
    assert rewards[0] == 0.0 and not terminated[0] and not truncated[0]
    assert obs["position"][0, 0] == 0 and info["_prompt"].tolist() == [True, False]


def test_errors():
    envs = gym.make_vec("TokenGen-v0", num_envs=2)
    with pytest.raises(ResetNeeded):
        envs.step(np.array([5, 5]))
    envs.reset(seed=0)
    with pytest.raises(InvalidAction):
        envs.step(np.array([5]))
    with pytest.raises(InvalidAction):
        envs.step(np.array([5, 10**6]))
    with pytest.raises(ValueError, match="num_envs"):
        TokenGenVectorEnv(num_envs=0)
    with pytest.raises(ValueError, match="render"):
        NERTagVectorEnv(num_envs=2, render_mode="ansi")


def test_unbatch_info_honours_presence_masks():
    info = {
        "a": np.array([1.5, 0.0]),
        "_a": np.array([True, False]),
        "text": np.array(["x", "y"], dtype=object),
        "metrics": {"f1": np.array([0.0, 0.5]), "_f1": np.array([False, True])},
        "_metrics": np.array([False, True]),
    }
    first, second = unbatch_info(info, 0), unbatch_info(info, 1)
    assert first == {"a": 1.5, "text": "x"}
    assert type(first["a"]) is float
    assert second == {"text": "y", "metrics": {"f1": 0.5}}


def test_unbatch_info_of_a_native_vector_env_equals_the_single_env_info():
    envs = gym.make_vec("TokenGen-v0", num_envs=2)
    env = gym.make("TokenGen-v0")
    _, batched = envs.reset(seed=3)
    _, single = env.reset(seed=4)
    info = unbatch_info(batched, 1)
    assert info.keys() == single.keys()
    np.testing.assert_array_equal(info["action_mask"], single["action_mask"])


def test_native_equals_sync_with_a_tokenizer_vocabulary(tokenizer_dir):
    task = [{"prompt": "hi there", "references": ["hello there ."]}, {"prompt": "bye", "references": ["see you"]}]
    kwargs = {"task": task, "vocab": str(tokenizer_dir), "reward": "bleu", "reward_mode": "dense", "max_new_tokens": 6}
    assert_native_equals_sync(kwargs, n_steps=40)


SUBWORD_TASK = [{"prompt": "the dog", "references": ["the dog don't see it's a ball.", "hello, world!"]},
                {"prompt": "café", "references": ["the cat sat on the mat", "naïve café 3.5"]}]


@pytest.mark.parametrize("tokenizer", ["byte_level", "word_piece"])
@pytest.mark.parametrize("reward", ["bleu", "rougeL", [("bleu", 0.5), ("rouge2", 0.3), ("token_f1", 0.2)]])
def test_native_equals_sync_with_a_subword_tokenizer(subword_tokenizers, tokenizer, reward):
    """Dense rewards follow each sub-env's decoded text (IncrementalReward.follow)."""
    kwargs = {"task": SUBWORD_TASK, "vocab": subword_tokenizers[tokenizer], "reward": reward, "reward_mode": "dense",
              "max_new_tokens": 20}
    assert_native_equals_sync(kwargs, n_steps=120)


def assert_native_equals_sync(kwargs, n_steps):
    native = gym.make_vec("TokenGen-v0", num_envs=3, **kwargs)
    sync = gym.make_vec("TokenGen-v0", num_envs=3, vectorization_mode="sync", **kwargs)
    assert_same_step(native.reset(seed=1), sync.reset(seed=1))
    rng = np.random.default_rng(0)
    for _ in range(n_steps):
        actions = rng.integers(native.single_action_space.n, size=3)
        assert_same_step(native.step(actions), sync.step(actions))


def test_single_envs_hand_their_tables_to_batched_versions():
    gen = gym.make("TokenGen-v0").unwrapped
    tables = gen.batch_tables()
    assert tables.prompt_ids.shape == (len(gen.examples), gen.max_prompt_tokens)
    first = gen.encoded_prompt(0)
    assert tables.prompt_ids[0, : len(first)].tolist() == first and tables.prompt_mask[0].sum() == len(first)
    assert tables.words[gen.vocab.eos_id] == "" and tables.words[5] == gen.vocab.id_to_token(5)
    assert not tables.incremental_reward  # sparse
    np.testing.assert_array_equal(gen.legal_mask(first, []), tables.legal_tokens)
    with pytest.raises(ValueError, match="read-only"):
        tables.legal_tokens[0] = True

    ner = gym.make("NERTag-v0").unwrapped
    tables = ner.batch_tables()
    assert len(tables.sentences) == len(ner.examples)
    assert tables.sentences[0].gold.tolist() == [ner.tag_id(t) for t in ner.examples[0].tags]
    assert tables.tag_prefixes.tolist() == [0] + [1, 2] * ((len(ner.tags) - 1) // 2)
    b_per, i_per = ner.tag_id("B-PER"), ner.tag_id("I-PER")
    assert not tables.legal_tags[0, i_per] and tables.legal_tags[1 + tables.tag_types[b_per], i_per]


class CountingReward:
    """A reward metric with a ``batch`` method (as a model-based one): counts its calls."""

    __name__ = "counting"

    def __init__(self):
        self.batches = []

    def __call__(self, prediction, references, source):
        return self.batch([prediction], [references], [source])[0]

    def batch(self, predictions, references, sources):
        self.batches.append(list(predictions))
        return [1 - len(p.split()) / max(1, len(s.split())) for p, s in zip(predictions, sources)]


def test_token_edit_scores_the_finished_rows_of_a_step_in_one_batch():
    reward = CountingReward()
    envs = TokenEditVectorEnv(num_envs=4, task=REFERENCE_FREE_TASK, mode="compress", reward=reward)
    envs.reset(seed=0)
    reward.batches.clear()
    _, rewards, terminated, _, info = envs.step(np.array([1, 0, 1, 0]))  # delete, keep: no episode ends
    assert reward.batches == [] and rewards.tolist() == [0.0] * 4
    _, rewards, terminated, _, info = envs.step(np.array([2, 2, 0, 2]))  # three stops
    assert terminated.tolist() == [True, True, False, True]
    assert len(reward.batches) == 1 and len(reward.batches[0]) == 3
    assert info["_metrics"].tolist() == [True, True, False, True]
    np.testing.assert_allclose(info["metrics"]["counting"][[0, 1, 3]], rewards[[0, 1, 3]])
    assert rewards[0] > 0 and rewards[1] == 0.0  # row 0 deleted a word, row 1 kept them all


def test_token_edit_action_masks():
    envs = gym.make_vec("TokenEdit-v0", num_envs=3, max_edits=1)
    _, info = envs.reset(seed=0)
    masks = envs.action_masks()
    assert masks.shape == (3, envs.single_action_space.n) and masks.dtype == np.bool_
    np.testing.assert_array_equal(masks, info["action_mask"].astype(bool))
    env = envs.unwrapped.env
    assert masks[:, [0, 1, 2]].all()  # keep, delete and stop on the first token
    for i, token in enumerate(envs.unwrapped._current_ids[:, 0].tolist()):
        assert not masks[i, env.action_id("replace", token)]  # replacing a token with itself
    _, _, _, truncated, _ = envs.step(np.array([1, 0, 2]))  # row 0 spends its only edit
    assert truncated.tolist() == [True, False, False]
    masks = envs.action_masks()
    assert masks[0].tolist() == [True, False, True] + [False] * (envs.single_action_space.n - 3)
    assert masks[1, 1] and masks[1, 3:].any()
