"""MaskablePPO learns to tag entities under a BIO action mask, and is scored by span F1 on unseen names.

The built-in ``entities`` task fills template sentences with made-up names, and its test
split uses names never seen in training. The agent sees a 5-word window (``window=2``)
with word shapes and the previous tag; training words seen once become UNK
(``min_freq=2``), so the policy learns to tag unknown capitalised words from context,
which is what it meets on the test split. sb3-contrib's ``MaskablePPO`` reads the env's
``action_masks()``, so every tag sequence it writes is valid IOB2 (no ``I-X`` without a
``B-X`` before it). Lesson 03 solves the same task with DQN and a 3-word window.

SB3's ``MultiInputPolicy`` would feed token ids to an MLP as raw numbers;
``textgym.sb3.policy_kwargs`` embeds every ``*_ids`` key instead (textgym's observation
convention).

    python examples/05_maskable_ppo_ner.py                   # 30 s on 2 shared CPU cores
    TEXTGYM_QUICK=1 python examples/05_maskable_ppo_ner.py   # a smoke run, 7 s
"""

from __future__ import annotations

import os
import random
import time

import gymnasium as gym
import numpy as np
import torch
from sb3_contrib import MaskablePPO
from stable_baselines3.common.env_util import make_vec_env

import textgym  # noqa: F401  (registers NERTag-v0)
from textgym.rewards.span_metrics import ner_report
from textgym.sb3 import policy_kwargs

QUICK = os.environ.get("TEXTGYM_QUICK") == "1"
SEED = 0
TOTAL_STEPS = 2_000 if QUICK else 60_000
ENV_KWARGS = {"task": "entities", "window": 2, "min_freq": 2, "reward_mode": "f1_delta"}
if QUICK:
    ENV_KWARGS["task_kwargs"] = {"n_train": 100, "n_validation": 20, "n_test": 50}


def tag_test_split(policy) -> tuple[list[list[str]], list[list[str]]]:
    """Gold and predicted tags of every test sentence; ``policy(obs, info) -> action``."""
    env = gym.make("NERTag-v0", split="test", **ENV_KWARGS)
    gold, pred = [], []
    for index in range(len(env.unwrapped.examples)):
        obs, info = env.reset(seed=SEED, options={"index": index})
        done = False
        while not done:
            obs, _, terminated, truncated, info = env.step(policy(obs, info))
            done = terminated or truncated
        gold.append(list(env.unwrapped.example.tags))
        pred.append(env.unwrapped.predicted_tags)
    return gold, pred


def main() -> None:
    random.seed(SEED)
    np.random.seed(SEED)
    torch.manual_seed(SEED)
    torch.set_num_threads(1)  # small MLPs: more threads only add overhead

    # make_vec_env asks for render_mode="rgb_array" unless told otherwise
    envs = make_vec_env("NERTag-v0", n_envs=8, seed=SEED, env_kwargs={**ENV_KWARGS, "render_mode": None})
    model = MaskablePPO(
        "MultiInputPolicy", envs, n_steps=256, batch_size=256, n_epochs=4, learning_rate=1e-3, ent_coef=0.01,
        policy_kwargs=policy_kwargs(envs, embed_dim=16, net_arch=[64]), seed=SEED, verbose=0,
    )
    start = time.perf_counter()
    model.learn(total_timesteps=TOTAL_STEPS)
    elapsed = time.perf_counter() - start
    print(f"trained MaskablePPO for {TOTAL_STEPS} steps in {elapsed:.0f}s ({TOTAL_STEPS / elapsed:.0f} steps/s)")

    def trained(obs, info):
        action, _ = model.predict(obs, action_masks=info["action_mask"].astype(bool), deterministic=True)
        return int(action)

    gold, pred = tag_test_split(trained)
    all_o = [["O"] * len(tags) for tags in gold]
    trained_report, baseline = ner_report(gold, pred), ner_report(gold, all_o)
    print(f"\nspan F1 on the {len(gold)} test sentences (names unseen in training):")
    print(f"  {'all-O baseline':<16}{baseline['micro']['f1']:.3f}")
    print(f"  {'MaskablePPO':<16}{trained_report['micro']['f1']:.3f}")
    print("\nper type (precision / recall / F1):")
    for kind, row in trained_report.items():
        print(f"  {kind:<8}{row['precision']:.3f} / {row['recall']:.3f} / {row['f1']:.3f}  ({row['support']:.0f} gold)")
    example = next(i for i, tags in enumerate(gold) if tags != all_o[i])
    env = gym.make("NERTag-v0", split="test", **ENV_KWARGS).unwrapped
    env.reset(options={"index": example})
    print("\ne.g.  " + " ".join(f"{w}/{t}" if t != "O" else w for w, t in zip(env.example.tokens, pred[example])))


if __name__ == "__main__":
    main()
