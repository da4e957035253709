"""Every agent on every registered env: learn, act legally, save/load, evaluate."""

import csv
import json

import gymnasium as gym
import numpy as np
import pytest

import textgym  # noqa: F401
from agents import DQNAgent, LMPPOAgent, RandomAgent, TabularQAgent, evaluate
from envs_registry import ENVS

AGENTS = [RandomAgent, TabularQAgent, DQNAgent, LMPPOAgent]
# LMPPOAgent's actions are its LM's tokens, so it runs on TokenGen envs only
AGENT_ENVS = [(agent, env_id) for agent in AGENTS for env_id in sorted(ENVS)
              if agent is not LMPPOAgent or env_id.startswith("TokenGen")]


def greedy_actions(agent, env, n_steps=30, seed=5):
    obs, info = env.reset(seed=seed)
    actions = []
    for _ in range(n_steps):
        action = agent.act(obs, info)
        actions.append(action)
        obs, _, terminated, truncated, info = env.step(action)
        if terminated or truncated:
            obs, info = env.reset()
    return actions


@pytest.mark.parametrize(("agent_cls", "env_id"), AGENT_ENVS)
def test_learn_act_save_load(agent_cls, env_id, tmp_path):
    env = gym.make(env_id)
    agent = agent_cls(env, seed=0).learn(300)
    assert agent.num_timesteps == 300 and agent.log.records

    obs, info = env.reset(seed=1)
    for _ in range(50):
        for deterministic in (True, False):
            assert info["action_mask"][agent.act(obs, info, deterministic=deterministic)] == 1
        obs, _, terminated, truncated, info = env.step(agent.act(obs, info))
        if terminated or truncated:
            obs, info = env.reset()

    agent.save(tmp_path / "agent.pt")
    loaded = agent_cls.load(tmp_path / "agent.pt", env=gym.make(env_id))
    agent.rng, loaded.rng = np.random.default_rng(9), np.random.default_rng(9)  # same draws for RandomAgent
    assert greedy_actions(loaded, gym.make(env_id)) == greedy_actions(agent, gym.make(env_id))
    assert loaded.config == agent.config and loaded.num_timesteps == 300

    result = evaluate(agent, gym.make(env_id), n_episodes=5, seed=0)
    assert {"return_mean", "return_std", "length_mean"} <= set(result)
    assert all(np.isfinite(v) for v in result.values())
    obs, info = env.reset(seed=0)
    done = False
    while not done:
        obs, _, terminated, truncated, info = env.step(agent.act(obs, info))
        done = terminated or truncated
    assert set(info["metrics"]) <= set(result)


@pytest.mark.parametrize("agent_cls", AGENTS)
def test_load_into_other_spaces_is_a_clear_error(agent_cls, tmp_path):
    agent_cls(gym.make("TokenGen-v0"), seed=0).save(tmp_path / "agent.pt")
    with pytest.raises(ValueError, match="trained on different spaces"):
        agent_cls.load(tmp_path / "agent.pt", env=gym.make("TokenGen-Keywords-v0"))
    with pytest.raises(ValueError, match="needs env="):
        agent_cls.load(tmp_path / "agent.pt")
    with pytest.raises(FileNotFoundError, match="no checkpoint at"):
        agent_cls.load(tmp_path / "missing.pt", env=gym.make("TokenGen-v0"))


@pytest.mark.parametrize("agent_cls", AGENTS)
def test_unknown_hyperparameter_lists_valid_ones(agent_cls):
    with pytest.raises(ValueError, match="unknown hyperparameters \\['gama'\\].*valid: \\["):
        agent_cls(gym.make("TokenGen-v0"), gama=0.9)


@pytest.mark.parametrize("agent_cls", AGENTS)
def test_same_seed_same_learning(agent_cls):
    runs = [agent_cls(gym.make("TokenGen-v0"), seed=3).learn(500) for _ in range(2)]
    assert [r["return"] for r in runs[0].log.records] == [r["return"] for r in runs[1].log.records]


@pytest.mark.parametrize("suffix", [".csv", ".jsonl"])
def test_learn_logs_episodes_to_a_file(tmp_path, suffix):
    path = tmp_path / f"log{suffix}"
    agent = TabularQAgent(gym.make("TokenGen-v0"), seed=0, log_path=path).learn(200)
    if suffix == ".csv":
        rows = list(csv.DictReader(path.open()))
    else:
        rows = [json.loads(line) for line in path.open()]
    assert len(rows) == len(agent.log.records) > 0
    assert {"step", "return", "length", "metric/token_accuracy", "steps_per_second"} <= set(rows[0])


def test_writer_and_callback_can_stop_learning():
    scalars = []

    class Writer:
        def add_scalar(self, tag, value, step):
            scalars.append(tag)

    agent = TabularQAgent(gym.make("TokenGen-v0"), seed=0, writer=Writer())
    agent.learn(1000, callback=lambda agent, record: len(agent.log.records) < 3)
    assert len(agent.log.records) == 3 and agent.num_timesteps < 1000
    assert "charts/return" in scalars


def test_bad_total_timesteps():
    with pytest.raises(ValueError, match="total_timesteps must be a positive int"):
        TabularQAgent(gym.make("TokenGen-v0")).learn(0)
