import gymnasium as gym
import numpy as np
import pytest
from gymnasium.error import InvalidAction
from hypothesis import given, settings
from hypothesis import strategies as st

import textgym  # noqa: F401
from textgym.envs import TokenGenEnv
from textgym.vocab import WordVocabulary

ROWS = [{"prompt": "hello", "references": ["hi there .", "hello there ."]}, {"prompt": "bye", "target": "see you ."}]


def write(env, text):
    """Write text token by token, then EOS; returns the rewards and the last step."""
    vocab = env.unwrapped.vocab
    rewards, result = [], None
    for token in vocab.encode(text) + [vocab.eos_id]:
        result = env.step(token)
        rewards.append(result[1])
        if result[2] or result[3]:
            break
    return rewards, result


def test_spaces_follow_the_task():
    env = TokenGenEnv(task=ROWS)
    assert env.action_space == gym.spaces.Discrete(len(env.vocab))
    assert env.max_new_tokens == 3  # the longest reference
    obs, info = env.reset(options={"index": 0})
    assert set(obs) == {"prompt_ids", "prompt_mask", "output_ids", "output_mask", "position"}
    assert all(v.dtype == np.int64 for v in obs.values())
    assert env.vocab.decode(obs["prompt_ids"]) == "hello" and obs["prompt_mask"].tolist() == [1]
    assert info == {"text": "", "prompt": "hello", "action_mask": info["action_mask"]}


def test_eos_terminates_with_the_metric_and_observation_tracks_output():
    env = TokenGenEnv(task=ROWS, reward="exact_match")
    env.reset(options={"index": 0})
    hi = env.vocab.token_to_id("hi")
    obs, reward, terminated, truncated, info = env.step(hi)
    assert (reward, terminated, truncated) == (0.0, False, False)
    assert obs["output_ids"][0] == hi and obs["output_mask"].tolist() == [1, 0, 0] and obs["position"] == [1]
    assert info["text"] == "hi"
    rewards, (_, reward, terminated, truncated, info) = write(env, "there .")
    assert truncated and not terminated  # the longest reference fills max_new_tokens
    assert reward == 1.0 and info["metrics"] == {"exact_match": 1.0} and info["text"] == "hi there ."


def test_eos_before_the_limit_terminates():
    env = TokenGenEnv(task=ROWS, reward="token_f1")
    env.reset(options={"index": 0})
    env.step(env.vocab.token_to_id("hi"))
    _, reward, terminated, truncated, info = env.step(env.vocab.eos_id)
    assert terminated and not truncated
    assert info["text"] == "hi" and reward == pytest.approx(0.5)


def test_max_new_tokens_truncates():
    env = TokenGenEnv(task=ROWS, max_new_tokens=2, reward="token_f1")
    env.reset(options={"index": 1})
    _, reward, terminated, truncated, info = env.step(env.vocab.token_to_id("see"))
    assert not (terminated or truncated)
    _, reward, terminated, truncated, info = env.step(env.vocab.token_to_id("you"))
    assert truncated and not terminated
    assert reward == pytest.approx(0.8) and info["metrics"]["token_f1"] == pytest.approx(0.8)


def test_default_mask_forbids_pad_bos_unk_and_allows_eos():
    env = TokenGenEnv(task=ROWS)
    _, info = env.reset(seed=0)
    mask = info["action_mask"]
    v = env.vocab
    assert mask[[v.pad_id, v.bos_id, v.unk_id]].tolist() == [0, 0, 0] and mask[v.eos_id] == 1
    assert mask.sum() == len(v) - 3


def test_allowed_tokens_and_mask_fn_narrow_the_mask():
    n_tokens = len(TokenGenEnv(task=ROWS).vocab)

    def no_repeats(prompt_ids, output_ids):
        mask = np.ones(n_tokens, dtype=bool)
        mask[list(output_ids)] = False
        return mask

    env = TokenGenEnv(task=ROWS, allowed_tokens=["hi", "there", "."], mask_fn=no_repeats)
    _, info = env.reset(seed=0)
    allowed = {env.vocab.id_to_token(i) for i in np.flatnonzero(info["action_mask"])}
    assert allowed == {"hi", "there", ".", "<eos>"}
    _, _, _, _, info = env.step(env.vocab.token_to_id("hi"))
    assert {env.vocab.id_to_token(i) for i in np.flatnonzero(info["action_mask"])} == {"there", ".", "<eos>"}
    np.testing.assert_array_equal(env.action_masks(), info["action_mask"].astype(bool))


def test_min_new_tokens_masks_eos_until_that_many_tokens_are_written():
    env = TokenGenEnv(task=ROWS, min_new_tokens=2)
    eos, hi = env.vocab.eos_id, env.vocab.token_to_id("hi")
    _, info = env.reset(seed=0)
    assert info["action_mask"][eos] == 0 and info["action_mask"].sum() == len(env.vocab) - 4
    _, _, _, _, info = env.step(hi)
    assert info["action_mask"][eos] == 0 and not env.action_masks()[eos]
    _, _, _, _, info = env.step(hi)
    assert info["action_mask"][eos] == 1 and info["action_mask"].sum() == len(env.vocab) - 3
    env.reset(seed=0)
    _, _, terminated, _, _ = env.step(eos)  # a mask guides: EOS written anyway still ends the episode
    assert terminated


def test_masked_tokens_can_still_be_written():
    env = TokenGenEnv(task=ROWS)
    env.reset(seed=0)
    _, reward, terminated, truncated, info = env.step(env.vocab.unk_id)
    assert info["text"] == "<unk>" and not terminated


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"task": "nope"}, "unknown task 'nope'; built-in tasks: \\[.*'copy', .*'sort'\\]"),
        ({"split": "dev"}, "unknown split 'dev'; valid splits"),
        ({"reward": "blue"}, "unknown reward metric 'blue'; valid metrics: \\['bleu'"),
        ({"reward_mode": "dence"}, "unknown reward_mode 'dence'; valid modes: \\['sparse', 'dense'\\]"),
        ({"max_new_tokens": 0}, "max_new_tokens must be a positive int"),
        ({"allowed_tokens": ["zebra"]}, "allowed_tokens: token 'zebra' is not in the vocabulary"),
        ({"allowed_tokens": [999]}, "allowed_tokens: token id 999 is outside the vocabulary"),
        ({"task_kwargs": {"lenght": 3}}, "unknown task_kwargs \\['lenght'\\] for task 'copy'; valid: \\['length'"),
        ({"action_mask": "yes"}, "action_mask must be True or False"),
    ],
)
def test_bad_configuration_fails_at_construction(kwargs, message):
    with pytest.raises(ValueError, match=message):
        TokenGenEnv(**kwargs)


def test_bad_vocab_type_fails_at_construction():
    with pytest.raises(TypeError, match="vocab must be None, a textgym Vocabulary"):
        TokenGenEnv(vocab=42)


def test_action_mask_false_leaves_it_out_of_info():
    env = TokenGenEnv(action_mask=False)
    _, info = env.reset(seed=0)
    assert "action_mask" not in info and env.action_masks().dtype == bool


def test_given_vocabulary_sets_the_action_space():
    vocab = WordVocabulary.build(["a b c d e f g h"])
    env = TokenGenEnv(task="copy", vocab=vocab)
    assert env.action_space.n == len(vocab) == 12


def test_bad_index_option():
    env = TokenGenEnv(task=ROWS)
    with pytest.raises(ValueError, match="options\\['index'\\] must be an int in \\[0, 2\\)"):
        env.reset(options={"index": 2})


@pytest.mark.parametrize("reward", ["bleu", "chrf", "ter", "rougeL", "token_f1", ["bleu", ("rouge2", 0.5)]])
@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 10**6), actions=st.lists(st.integers(0, 10**6), max_size=12))
def test_dense_rewards_sum_to_the_sparse_reward(reward, seed, actions):
    returns = {}
    for mode in ("sparse", "dense"):
        env = TokenGenEnv(task="keywords", reward=reward, reward_mode=mode)
        _, info = env.reset(seed=seed)
        total, done, steps = 0.0, False, iter(actions)
        while not done:
            legal = np.flatnonzero(info["action_mask"])
            action = legal[next(steps, 0) % legal.size]
            _, r, terminated, truncated, info = env.step(action)
            total += r
            done = terminated or truncated
        returns[mode] = (total, info["metrics"], info["text"])
    assert returns["dense"][0] == pytest.approx(returns["sparse"][0], abs=1e-6)
    assert returns["dense"][1:] == returns["sparse"][1:]


def test_optimal_text_scores_one_on_keywords():
    env = gym.make("TokenGen-v0", task="keywords", reward="bleu", reward_mode="dense")
    env.reset(seed=3)
    rewards, (*_, info) = write(env, env.unwrapped.example.references[2])
    assert sum(rewards) == pytest.approx(1.0) and info["metrics"]["bleu"] == pytest.approx(1.0)


def test_human_render_prints(capsys):
    env = gym.make("TokenGen-v0", render_mode="human")
    env.reset(seed=0)
    assert env.render() is None
    assert "prompt:" in capsys.readouterr().out


def test_tokenizer_vocabulary_drives_the_env(tokenizer_dir):
    env = TokenGenEnv(task=ROWS, vocab=str(tokenizer_dir))
    assert env.action_space.n == len(env.vocab)
    env.reset(options={"index": 0})
    _, reward, terminated, truncated, _ = write(env, "hi there .")[1]
    assert truncated and env.text.replace(" ", "") == "hithere."


SUBWORD_ROWS = [{"prompt": "the dog", "references": ["the dog don't see it's a ball.", "hello, world!"]},
                {"prompt": "café", "references": ["the cat sat on the mat", "naïve café 3.5"]}]


@pytest.mark.parametrize("tokenizer", ["byte_level", "word_piece"])
@pytest.mark.parametrize("reward", ["bleu", "rougeL", [("bleu", 0.5), ("rouge2", 0.3), ("token_f1", 0.2)]])
def test_dense_rewards_of_a_tokenizer_vocabulary_follow_the_text(subword_tokenizers, tokenizer, reward):
    """Each dense reward is phi(text after) - phi(text before), phi the reward of the whole
    decoded text (what the env paid when it rescored the text at every step), and an
    episode's rewards sum to the sparse reward; the text is the decode of all the ids."""
    kwargs = {"task": SUBWORD_ROWS, "vocab": subword_tokenizers[tokenizer], "reward": reward, "max_new_tokens": 24}
    dense, sparse = TokenGenEnv(reward_mode="dense", **kwargs), TokenGenEnv(**kwargs)
    vocab, rng, best = dense.vocab, np.random.default_rng(0), 0.0
    for episode in range(20):
        dense.reset(seed=episode)
        sparse.reset(seed=episode)
        assert dense._episode_reward.words is not None  # followed, not rescored
        references = dense.example.references
        target = vocab.encode(references[episode % 2])
        potential = total = 0.0
        for t in range(dense.max_new_tokens):
            # mostly the reference's next token, so that the metrics are not all 0
            token = target[t] if t < len(target) and rng.random() < 0.8 else int(rng.integers(len(vocab)))
            _, reward_t, terminated, truncated, info = dense.step(token)
            final = sparse.step(token)[1]
            assert info["text"] == vocab.decode(dense.output_token_ids)
            value = dense.reward(info["text"], references)[0]
            assert abs(reward_t - (value - potential)) <= 1e-9
            potential, total, best = value, total + reward_t, max(best, value)
            if terminated or truncated:
                break
        assert abs(total - final) <= 1e-9
    assert best > 0.5


@pytest.mark.parametrize("algo", ["PPO", "A2C", "DQN", "MaskablePPO"])
def test_sb3_algorithms_run_unchanged(algo):
    import sb3_contrib
    import stable_baselines3

    cls = getattr(stable_baselines3, algo, None) or getattr(sb3_contrib, algo)
    kwargs = {"n_steps": 32} if algo in ("PPO", "A2C", "MaskablePPO") else {"learning_starts": 10}
    if algo in ("PPO", "MaskablePPO"):
        kwargs["batch_size"] = 32
    model = cls("MultiInputPolicy", gym.make("TokenGen-v0"), seed=0, **kwargs)
    model.learn(64)
    env = gym.make("TokenGen-v0")
    obs, info = env.reset(seed=0)
    action, _ = model.predict(obs, deterministic=True)
    assert env.action_space.contains(int(action))


def test_invalid_action_through_gym_make():
    env = gym.make("TokenGen-v0")
    env.reset(seed=0)
    with pytest.raises(InvalidAction, match="valid actions are integers 0..8"):
        env.step(9)
