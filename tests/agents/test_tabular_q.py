import gymnasium as gym
import numpy as np
import pytest

import textgym  # noqa: F401
from agents import TabularQAgent, evaluate


def test_solves_copy_3():
    env = gym.make("TokenGen-v0", task="copy", reward_mode="dense")
    agent = TabularQAgent(env, seed=0, learning_rate=1.0).learn(60_000)
    assert evaluate(agent, gym.make("TokenGen-v0", task="copy"), n_episodes=200)["token_accuracy"] >= 0.95


def test_double_q_learns_too():
    env = gym.make("TokenGen-v0", task="copy", reward_mode="dense", task_kwargs={"length": 2, "n_symbols": 3})
    agent = TabularQAgent(env, seed=0, double_q=True).learn(5_000)
    assert len(agent.tables) == 2
    assert evaluate(agent, env, n_episodes=50)["return_mean"] >= 0.95


def test_one_update_matches_the_formula():
    env = gym.make("TokenGen-v0", task=[{"prompt": "a", "target": "a"}], reward="exact_match", max_new_tokens=1)
    agent = TabularQAgent(env, seed=0, learning_rate=0.5, gamma=0.9, q_init=0.2).learn(1)
    obs, _ = env.reset(seed=0)
    q = agent.q_values(agent.state_fn(obs))
    [action] = np.flatnonzero(q != 0.2)
    vocab = env.unwrapped.vocab
    if action == vocab.eos_id:  # terminated on an empty text: r = 0, no bootstrap
        target = 0.0
    else:  # truncated after one token: r = exact match, bootstrapped from the unseen next state
        target = float(vocab.id_to_token(action) == "a") + 0.9 * 0.2
    assert q[action] == pytest.approx(0.2 + 0.5 * (target - 0.2))


def test_state_fn_and_epsilon_schedule_validation():
    env = gym.make("TokenGen-v0")
    agent = TabularQAgent(env, state_fn=lambda obs: obs["position"].tobytes()).learn(100)
    assert agent.n_states <= env.unwrapped.max_new_tokens + 1
    with pytest.raises(ValueError, match="unknown epsilon_schedule 'cosine'; valid: \\['linear', 'exponential'\\]"):
        TabularQAgent(env, epsilon_schedule="cosine")
    with pytest.raises(ValueError, match="gamma must be a number in \\[0, 1\\], got 1.5"):
        TabularQAgent(env, gamma=1.5)


def test_acting_on_unseen_states_does_not_grow_the_table():
    env = gym.make("TokenGen-Copy-v0", reward_mode="dense")
    agent = TabularQAgent(env, seed=0).learn(200)
    n_states = agent.n_states
    evaluate(agent, gym.make("TokenGen-Copy-v0", split="test"), n_episodes=20, seed=123)
    assert agent.n_states == n_states
    unseen = agent.q_values(b"never seen")
    assert unseen.shape == (env.action_space.n,) and np.all(unseen == agent.config.q_init)
