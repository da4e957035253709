"""Every agent on every registered env: learn, act legally, save/load, evaluate."""

import csv
import itertools
import json
import multiprocessing
import os
import re
import signal
import time

import gymnasium as gym
import numpy as np
import pytest
import torch

import textgym  # noqa: F401
from agents import DQNAgent, LMPPOAgent, RandomAgent, TabularQAgent, evaluate
from agents.base import load_checkpoint, payload_digest, save_checkpoint
from envs_registry import ENVS

AGENTS = [RandomAgent, TabularQAgent, DQNAgent, LMPPOAgent]
AGENT_ENVS = [(agent, env_id) for agent in AGENTS for env_id in sorted(ENVS)]


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


def small_tabular_checkpoint(path):
    env = gym.make("TokenGen-v0")
    TabularQAgent(env, seed=0).learn(200).save(path)
    return env


def test_a_flipped_weight_byte_fails_the_digest(tmp_path):
    path = tmp_path / "checkpoint.pt"
    env = small_tabular_checkpoint(path)
    row = next(iter(load_checkpoint(path)["state"]["tables"][0].values()))
    data = bytearray(path.read_bytes())
    at = data.find(row.numpy().tobytes())
    assert at > 0
    data[at] ^= 0x01
    path.write_bytes(bytes(data))
    with pytest.raises(ValueError, match=f"checkpoint {re.escape(str(path))} is corrupted \\(digest mismatch\\)"):
        TabularQAgent.load(path, env)


def test_any_flipped_byte_loads_the_same_content_or_fails_naming_the_file(tmp_path):
    path = tmp_path / "checkpoint.pt"
    save_checkpoint(path, {"state": {"weights": torch.arange(64.0), "steps": 7}, "name": "q"})
    original = path.read_bytes()
    expected = payload_digest(load_checkpoint(path))
    for at in range(0, len(original), max(len(original) // 100, 1)):
        data = bytearray(original)
        data[at] ^= 0xFF
        path.write_bytes(bytes(data))
        try:
            payload = load_checkpoint(path)
        except ValueError as error:
            assert str(error).startswith(f"checkpoint {path} ") and "corrupted" in str(error)
        else:  # a byte torch.load does not read (a zip header field): the content is intact
            assert payload_digest(payload) == expected


def test_a_failed_save_keeps_the_old_checkpoint_and_no_temporary(tmp_path, monkeypatch):
    path = tmp_path / "checkpoint.pt"
    save_checkpoint(path, {"generation": 0})

    def fail_mid_write(obj, file):
        file.write(b"half a checkpoint")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", fail_mid_write)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(path, {"generation": 1})
    monkeypatch.undo()
    assert load_checkpoint(path) == {"generation": 0}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint.pt"]


def _save_forever(path, payloads):
    for generation in itertools.count(1):
        save_checkpoint(path, payloads[generation % 2])


@pytest.mark.skipif(not hasattr(signal, "SIGKILL") or "fork" not in multiprocessing.get_all_start_methods(),
                    reason="needs SIGKILL and fork")
def test_a_save_killed_at_any_moment_leaves_a_whole_checkpoint_and_the_next_save_cleans_up(tmp_path):
    path = tmp_path / "checkpoint.pt"
    # big enough (8 MB) that a kill often lands mid-write; built here, as the forked child
    # should only write
    payloads = [{"generation": g, "weights": torch.full((1 << 21,), float(g))} for g in (0, 1)]
    rng = np.random.default_rng(0)
    for trial in range(6):
        save_checkpoint(path, payloads[trial % 2])
        child = multiprocessing.get_context("fork").Process(target=_save_forever, args=(path, payloads))
        child.start()
        time.sleep(rng.uniform(0.0, 0.3))
        os.kill(child.pid, signal.SIGKILL)
        child.join()
        payload = load_checkpoint(path)  # the old or a new checkpoint, whole (its digest holds)
        assert payload["generation"] in (0, 1)
        assert torch.equal(payload["weights"], payloads[payload["generation"]]["weights"])
        save_checkpoint(path, payloads[0])
        assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint.pt"]


@pytest.mark.parametrize("stale", [b"", b"a save killed mid-write"])
def test_the_next_save_replaces_a_stale_temporary(tmp_path, stale):
    path = tmp_path / "checkpoint.pt"
    (tmp_path / ".checkpoint.pt.tmp").write_bytes(stale)
    save_checkpoint(path, {"generation": 2})
    assert load_checkpoint(path) == {"generation": 2}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint.pt"]


def test_numpy_numbers_are_accepted_and_stored_as_python_numbers(tmp_path):
    env = gym.make("TokenGen-v0")
    agent = DQNAgent(env, seed=np.int64(3), batch_size=np.int32(8), gamma=np.float32(0.5), learning_starts=np.int64(2))
    agent.learn(np.int64(5))
    assert (agent.seed, agent.num_timesteps) == (3, 5)
    assert type(agent.config.batch_size) is int and type(agent.config.gamma) is float
    agent.save(tmp_path / "checkpoint.pt")  # weights_only loading takes plain numbers only
    assert DQNAgent.load(tmp_path / "checkpoint.pt", env).config == agent.config
