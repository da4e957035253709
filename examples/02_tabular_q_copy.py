"""Tabular Q-learning solves a small text task: copying the prompt, with a dense reward per correct token.

TokenGen-Copy-v0 shows three letters (of five) and pays each correct token as it is
written (``reward_mode="dense"``). The observation is small enough to be a table key, so
``TabularQAgent`` learns one row of Q-values per state it meets. The script scores a
random agent and the trained one with ``agents.evaluate`` (greedy, on the same seeded
episodes), shows a few episodes, and checks that a saved agent loads back unchanged.

    python examples/02_tabular_q_copy.py                   # 13 s on 2 shared CPU cores
    TEXTGYM_QUICK=1 python examples/02_tabular_q_copy.py   # a smoke run, 4 s
"""

import os
import tempfile
from pathlib import Path

import gymnasium as gym
import torch

import textgym  # noqa: F401  (registers the ids)
from agents import RandomAgent, TabularQAgent, evaluate

QUICK = os.environ.get("TEXTGYM_QUICK") == "1"
TRAIN_STEPS = 2_000 if QUICK else 60_000
EVAL_EPISODES = 20 if QUICK else 200
torch.set_num_threads(1)

env = gym.make("TokenGen-Copy-v0", reward_mode="dense")

before = evaluate(RandomAgent(env, seed=0), env, n_episodes=EVAL_EPISODES, seed=10_000)
# the env is deterministic given the observation, so a full step (alpha = 1) is safe
agent = TabularQAgent(env, seed=0, learning_rate=1.0).learn(total_timesteps=TRAIN_STEPS)
after = evaluate(agent, env, n_episodes=EVAL_EPISODES, seed=10_000)
print(f"token_accuracy on {EVAL_EPISODES} episodes: random {before['token_accuracy']:.3f} -> "
      f"Q-learning after {TRAIN_STEPS} steps {after['token_accuracy']:.3f} ({agent.n_states} states in the table)")

for seed in range(3):
    obs, info = env.reset(seed=seed)
    prompt, done = info["prompt"], False
    while not done:
        obs, reward, terminated, truncated, info = env.step(agent.act(obs, info))
        done = terminated or truncated
    print(f"  {prompt!r} -> {info['text']!r}")

with tempfile.TemporaryDirectory() as tmp:
    path = Path(tmp) / "copy_q.pt"
    agent.save(path)
    loaded = TabularQAgent.load(path, env=env)
reloaded = evaluate(loaded, env, n_episodes=EVAL_EPISODES, seed=10_000)
assert reloaded == after, (reloaded, after)
print(f"saved and loaded: {loaded.n_states} states, same score ({reloaded['token_accuracy']:.3f})")
