"""Sentence compression by deletion: MaskablePPO learns which words to keep.

The built-in ``compress`` task pads core sentences with removable modifiers, clauses and
filler; the reference is the core sentence, reachable by deletions alone. In
``TokenEdit-Compress-v0`` the only operations are keep, delete and stop, and the reward is
ROUGE-L of the final text. sb3-contrib's MaskablePPO reads ``env.action_masks()``, so it
never deletes past the end of the text.

    python examples/token_edit_compress.py            # about a minute on 2 CPU cores
    TEXTGYM_QUICK=1 python examples/token_edit_compress.py   # a few seconds, for smoke tests
"""

from __future__ import annotations

import os

import gymnasium as gym
import numpy as np
from sb3_contrib import MaskablePPO

import textgym  # noqa: F401  (registers TokenEdit-Compress-v0)
from textgym.rewards import rougeL

QUICK = os.environ.get("TEXTGYM_QUICK") == "1"
STEPS = 512 if QUICK else 60_000
EPISODES = 10 if QUICK else 200


def score(model: MaskablePPO, env: gym.Env, episodes: int) -> tuple[float, str]:
    """Mean final ROUGE-L over ``episodes`` test sentences, and one sample edit."""
    rewards, sample = [], ""
    for index in range(episodes):
        obs, info = env.reset(options={"index": index % len(env.unwrapped.examples)})
        done = False
        while not done:
            action, _ = model.predict(obs, action_masks=env.unwrapped.action_masks(), deterministic=True)
            obs, reward, terminated, truncated, info = env.step(int(action))
            done = terminated or truncated
        rewards.append(info["metrics"]["rougeL"])
        if index == 0:
            sample = f"{env.unwrapped.example.prompt!r}\n     -> {info['text']!r}"
    return float(np.mean(rewards)), sample


def main() -> None:
    env = gym.make("TokenEdit-Compress-v0")
    test_env = gym.make("TokenEdit-Compress-v0", split="test")
    model = MaskablePPO("MultiInputPolicy", env, seed=0, n_steps=512, batch_size=128, verbose=0)

    before, sample_before = score(model, test_env, EPISODES)
    model.learn(STEPS, progress_bar=not QUICK)
    after, sample_after = score(model, test_env, EPISODES)

    keep_all = float(np.mean([
        rougeL(e.prompt, e.references) for e in test_env.unwrapped.examples[:EPISODES]
    ]))
    print(f"ROUGE-L on {EPISODES} test sentences:")
    print(f"  keep every word        {keep_all:.3f}")
    print(f"  before training        {before:.3f}")
    print(f"  {f'after {STEPS:,} steps':<23}{after:.3f}")
    print(f"\nbefore: {sample_before}\nafter:  {sample_after}")


if __name__ == "__main__":
    main()
