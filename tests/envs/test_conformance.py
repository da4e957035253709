"""Every registered id: both env checkers, a random-action fuzz, determinism, errors."""

import json
import warnings

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.error import InvalidAction, ResetNeeded
from gymnasium.utils.env_checker import check_env
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from stable_baselines3.common.env_checker import check_env as sb3_check_env

import textgym  # noqa: F401  (registers the ids)
from envs_registry import ENVS

ENV_IDS = sorted(ENVS)


def legal_actions(info):
    return np.flatnonzero(info["action_mask"])


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_gymnasium_check_env_without_warnings(env_id):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_env(gym.make(env_id).unwrapped, skip_render_check=False)


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_sb3_check_env_without_warnings(env_id, capsys):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        sb3_check_env(gym.make(env_id).unwrapped, warn=True)


@pytest.mark.parametrize("env_id", ENV_IDS)
@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 2**31 - 1), picks=st.lists(st.integers(0, 10**6), min_size=1, max_size=400))
def test_random_legal_actions_fuzz(env_id, seed, picks):
    env = gym.make(env_id)
    obs, info = env.reset(seed=seed)
    assert env.observation_space.contains(obs)
    steps_left = env.spec.max_episode_steps or 1000
    for pick in picks:
        legal = legal_actions(info)
        assert legal.size > 0, "a state with no legal action"
        assert info["action_mask"].dtype == np.int8 and info["action_mask"].shape == (env.action_space.n,)
        np.testing.assert_array_equal(env.unwrapped.action_masks(), info["action_mask"].astype(bool))
        obs, reward, terminated, truncated, info = env.step(legal[pick % legal.size])
        assert env.observation_space.contains(obs)
        assert type(reward) is float and np.isfinite(reward)
        assert type(terminated) is bool and type(truncated) is bool
        assert isinstance(info["text"], str)
        steps_left -= 1
        if terminated or truncated:
            assert all(type(v) is float for v in info["metrics"].values()) and info["metrics"]
            obs, info = env.reset()
            steps_left = env.spec.max_episode_steps or 1000
        assert steps_left > 0, "episode did not end"


def rollout(env, seed, n_steps=60):
    obs, info = env.reset(seed=seed)
    trace = [(obs, info["text"])]
    rng = np.random.default_rng(0)
    for _ in range(n_steps):
        action = rng.choice(legal_actions(info))
        obs, reward, terminated, truncated, info = env.step(action)
        trace.append((obs, reward, terminated, truncated, info["text"], info.get("metrics")))
        if terminated or truncated:
            obs, info = env.reset()
            trace.append((obs, info["text"]))
    return trace


def assert_same(a, b):
    if isinstance(a, dict):
        assert a.keys() == b.keys()
        for key in a:
            assert_same(a[key], b[key])
    elif isinstance(a, (tuple, list)):
        assert len(a) == len(b)
        for x, y in zip(a, b):
            assert_same(x, y)
    elif isinstance(a, np.ndarray):
        np.testing.assert_array_equal(a, b)
    else:
        assert a == b


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_same_seed_same_trajectory(env_id):
    assert_same(rollout(gym.make(env_id), seed=123), rollout(gym.make(env_id), seed=123))


@pytest.mark.parametrize("env_id", ENV_IDS)
@pytest.mark.parametrize("bad", [-1, 10**9, 1.5, "a", None])
def test_invalid_action_raises(env_id, bad):
    env = gym.make(env_id).unwrapped
    env.reset(seed=0)
    with pytest.raises(InvalidAction, match="not in the action space"):
        env.step(bad)


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_step_before_reset_and_after_end_raise(env_id):
    env = gym.make(env_id).unwrapped
    with pytest.raises(ResetNeeded, match="reset"):
        env.step(0)
    obs, info = env.reset(seed=0)
    done = False
    while not done:
        _, _, terminated, truncated, info = env.step(legal_actions(info)[0])
        done = terminated or truncated
    with pytest.raises(ResetNeeded, match="call env.reset"):
        env.step(legal_actions(info)[0])


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_ansi_render_returns_text(env_id):
    env = gym.make(env_id, render_mode="ansi")
    _, info = env.reset(seed=0)
    frame = env.render()
    assert isinstance(frame, str) and frame
    env.step(legal_actions(info)[0])
    assert env.render() != frame or info["text"] == ""


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_spec_round_trips_through_json(env_id):
    env = gym.make(env_id)
    spec = json.loads(env.spec.to_json())
    assert spec["id"] == env_id
    assert gym.make(spec["id"], **spec["kwargs"]).observation_space == env.observation_space


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_bad_render_mode_is_rejected(env_id):
    with pytest.raises(ValueError, match="render_mode 'rgb'"):
        gym.make(env_id, render_mode="rgb")


def test_numpy_integers_are_accepted_wherever_ints_are():
    env = gym.make("TokenGen-v0", max_new_tokens=np.int64(5))
    assert env.unwrapped.max_new_tokens == 5 and type(env.unwrapped.max_new_tokens) is int
    obs, _ = env.reset(seed=np.int64(3), options={"index": np.int32(1)})
    same, _ = gym.make("TokenGen-v0", max_new_tokens=5).reset(seed=3, options={"index": 1})
    np.testing.assert_array_equal(obs["prompt_ids"], same["prompt_ids"])
    env.step(np.int64(4))
    edit = gym.make("TokenEdit-v0", max_edits=np.int16(2), max_length=np.uint8(40), max_steps=np.int64(9))
    assert (edit.unwrapped.max_edits, edit.unwrapped.max_length, edit.unwrapped.max_steps) == (2, 40, 9)
    ner = gym.make("NERTag-v0", window=np.int64(1), min_freq=np.int64(2))
    assert ner.unwrapped.window == 1
    envs = gym.make_vec("TokenGen-v0", num_envs=np.int64(2), max_episode_steps=np.int64(3))
    envs.reset(seed=[np.int64(0), 1])
    assert envs.num_envs == 2
