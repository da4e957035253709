"""The standard Gymnasium loop drives every textgym env: reset(), then step() legal random actions until done.

Each of the three envs (writing, editing, tagging) is run with random legal actions,
``env.action_space.sample(mask=info["action_mask"])``. The script prints a few rendered
episodes (``render_mode="ansi"``), the text the agent produced (``info["text"]``), the
metrics it was scored by (``info["metrics"]``), and the mean of the main metric over
many episodes: the random baseline that the later lessons try to beat.

    python examples/01_random_agent.py                   # 5 s on 2 shared CPU cores
    TEXTGYM_QUICK=1 python examples/01_random_agent.py   # a smoke run, 3 s
"""

import os

import gymnasium as gym
import numpy as np

import textgym  # noqa: F401  (registers the ids)

QUICK = os.environ.get("TEXTGYM_QUICK") == "1"
SHOWN_EPISODES = 2
BASELINE_EPISODES = 50 if QUICK else 1_000
MAIN_METRIC = {"TokenGen-v0": "token_accuracy", "TokenEdit-v0": "rougeL", "NERTag-v0": "f1"}

for env_id, metric in MAIN_METRIC.items():
    env = gym.make(env_id, render_mode="ansi")
    env.action_space.seed(0)  # sample() draws from the space's own generator
    print(f"=== {env_id}: observation keys {sorted(env.observation_space.spaces)}, actions {env.action_space}")
    scores = []
    for episode in range(BASELINE_EPISODES):
        obs, info = env.reset(seed=episode)
        shown = episode < SHOWN_EPISODES
        if shown:
            print(f"--- episode {episode}, at reset:\n{env.render()}")
        episode_return, done = 0.0, False
        while not done:
            action = env.action_space.sample(mask=info["action_mask"])
            obs, reward, terminated, truncated, info = env.step(action)
            episode_return += reward
            done = terminated or truncated
        if shown:
            print(f"--- at the end:\n{env.render()}")
            print(f"info['text']    = {info['text']!r}")
            print(f"info['metrics'] = { {k: round(v, 3) for k, v in info['metrics'].items()} }")
            print(f"return {episode_return:.3f}, {'terminated' if terminated else 'truncated'}\n")
        scores.append(info["metrics"][metric])
    print(f"random legal actions, mean {metric} over {BASELINE_EPISODES} episodes: {np.mean(scores):.3f}\n")
