"""The SB3 VecEnv adapter: SB3 autoreset semantics, masks, and training runs."""

import gymnasium as gym
import numpy as np
import pytest
from sb3_contrib import MaskablePPO
from sb3_contrib.common.maskable.utils import get_action_masks
from stable_baselines3 import PPO
from stable_baselines3.common.env_checker import check_env  # noqa: F401  (SB3 must import)

import textgym  # noqa: F401  (registers the ids)
from textgym.sb3 import to_sb3_vec_env
from textgym.sb3.vec_env import unbatch_infos


@pytest.mark.parametrize("mode", ["vector_entry_point", "sync"])
def test_done_returns_the_reset_observation_and_the_terminal_one(mode):
    envs = to_sb3_vec_env(gym.make_vec("TokenGen-v0", num_envs=2, vectorization_mode=mode))
    eos, token = envs.get_attr("vocab")[0].eos_id, 5
    envs.seed(0)
    obs = envs.reset()
    assert envs.reset_infos[0]["prompt"] and obs["position"].tolist() == [[0], [0]]
    obs, rewards, dones, infos = envs.step(np.array([token, token]))
    assert not dones.any() and obs["position"].tolist() == [[1], [1]]
    obs, rewards, dones, infos = envs.step(np.array([eos, token]))
    assert dones.tolist() == [True, False]
    assert infos[0]["terminal_observation"]["position"].tolist() == [1]   # the ended episode's last obs
    assert obs["position"].tolist() == [[0], [2]]                        # env 0 already reset
    assert infos[0]["TimeLimit.truncated"] is False and "metrics" in infos[0]
    assert "terminal_observation" not in infos[1]
    assert envs.reset_infos[0]["prompt"]
    obs, rewards, dones, infos = envs.step(np.array([token, token]))
    assert obs["position"].tolist() == [[1], [0]]                        # no lost step after the reset
    assert dones.tolist() == [False, True] and infos[1]["TimeLimit.truncated"] is True  # max_new_tokens=3
    assert infos[1]["terminal_observation"]["position"].tolist() == [3]


def test_truncation_is_reported_as_time_limit():
    envs = to_sb3_vec_env(gym.make_vec("TokenGen-v0", num_envs=2, max_episode_steps=1))
    envs.reset()
    _, _, dones, infos = envs.step(np.array([5, 5]))
    assert dones.all() and all(info["TimeLimit.truncated"] for info in infos)


def test_seeded_resets_repeat():
    envs = to_sb3_vec_env(gym.make_vec("NERTag-v0", num_envs=3))
    envs.seed(7)
    first = envs.reset()
    envs.seed(7)
    again = envs.reset()
    for key in first:
        np.testing.assert_array_equal(first[key], again[key])


def test_masks_attrs_and_wrappers():
    envs = to_sb3_vec_env(gym.make_vec("NERTag-v0", num_envs=3))
    envs.reset()
    masks = get_action_masks(envs)
    assert masks.shape == (3, envs.action_space.n) and masks.dtype == bool
    np.testing.assert_array_equal(masks, envs.action_masks())
    assert envs.get_attr("tags", indices=[1])[0][0] == "O"
    assert envs.env_is_wrapped(gym.Wrapper) == [False] * 3
    with pytest.raises(AttributeError, match="action_masks"):
        envs.env_method("render")


def test_unbatch_infos_keeps_masked_keys_only():
    infos = {"a": np.array([1.0, 2.0]), "_a": np.array([True, False]), "m": {"f1": np.array([0.5, 0.0]),
             "_f1": np.array([True, False])}, "_m": np.array([True, False])}
    assert unbatch_infos(infos, 2) == [{"a": 1.0, "m": {"f1": 0.5}}, {}]


@pytest.mark.parametrize("env_id", ["TokenGen-v0", "NERTag-v0"])
def test_ppo_and_maskable_ppo_train(env_id):
    envs = to_sb3_vec_env(gym.make_vec(env_id, num_envs=4))
    PPO("MultiInputPolicy", envs, n_steps=64, batch_size=64, n_epochs=1, seed=0).learn(300)
    MaskablePPO("MultiInputPolicy", envs, n_steps=64, batch_size=64, n_epochs=1, seed=0).learn(300)
