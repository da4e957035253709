"""SB3 PPO learns to copy text once it embeds token ids: textgym.sb3.policy_kwargs(env) vs plain MultiInputPolicy.

SB3's ``MultiInputPolicy`` runs on textgym's Dict observations unchanged, but feeds token
ids to its MLP as floats, so token 7 sits next to token 8. ``policy_kwargs(env)`` swaps in
``TokenFeaturesExtractor``, which embeds the ids, hides padding and adds the prompt token
at the current position. The same PPO, hyperparameters and budget are trained both ways
on TokenGen-Copy-v0 (4 tokens of 8 symbols, dense reward), and each is scored greedily
before and after training.

    python examples/04_sb3_ppo_copy.py                   # 51 s on 2 shared CPU cores
    TEXTGYM_QUICK=1 python examples/04_sb3_ppo_copy.py   # a smoke run, 8 s
"""

import os
import time

import gymnasium as gym
import numpy as np
import torch
from stable_baselines3 import PPO

import textgym  # noqa: F401  (registers the ids)
from textgym.sb3 import policy_kwargs

QUICK = os.environ.get("TEXTGYM_QUICK") == "1"
TRAIN_STEPS = 512 if QUICK else 12_000
EVAL_EPISODES = 20 if QUICK else 200
TASK_KWARGS = {"length": 4, "n_symbols": 8}
# tuned on copy: short episodes and a dense reward want a short horizon and large updates
PPO_KWARGS = {"learning_rate": 2e-3, "n_steps": 256, "batch_size": 64, "gamma": 0.9, "ent_coef": 0.0}
torch.set_num_threads(1)


def token_accuracy(model: PPO) -> float:
    """Mean token accuracy of the greedy policy on fixed episodes of a separate env."""
    env = gym.make("TokenGen-Copy-v0", task_kwargs=TASK_KWARGS)
    scores = []
    for episode in range(EVAL_EPISODES):
        obs, info = env.reset(seed=10_000 + episode)
        done = False
        while not done:
            action, _ = model.predict(obs, deterministic=True)
            obs, reward, terminated, truncated, info = env.step(int(action))
            done = terminated or truncated
        scores.append(info["metrics"]["token_accuracy"])
    return float(np.mean(scores))


env = gym.make("TokenGen-Copy-v0", task_kwargs=TASK_KWARGS, reward_mode="dense")
print(f"token_accuracy on {EVAL_EPISODES} episodes, greedy, before -> after {TRAIN_STEPS} PPO steps:")
for name, kwargs in [("MultiInputPolicy", None), ("policy_kwargs(env)", policy_kwargs(env))]:
    model = PPO("MultiInputPolicy", env, policy_kwargs=kwargs, seed=0, verbose=0, **PPO_KWARGS)
    before = token_accuracy(model)
    start = time.perf_counter()
    model.learn(total_timesteps=TRAIN_STEPS)
    seconds = time.perf_counter() - start
    after = token_accuracy(model)
    print(f"  {name:<20} {before:.3f} -> {after:.3f}  ({seconds:.0f} s, {TRAIN_STEPS / seconds:.0f} steps/s)")
