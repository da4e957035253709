"""What an agent learns depends on how it sees the text: MaskablePPO compresses once it sees the words at the cursor.

TokenEdit-v0 in "compress" mode gives the agent three actions at each word (keep, delete,
stop) and pays ROUGE-L against the core sentence, densely: each deletion is rewarded by
how much it raised the score. The script prints test scores before and after training.

SB3's ``MultiInputPolicy`` reads id arrays as plain numbers, which its MLP cannot tell
apart: on the raw observation it learns little more than "keep everything". A small
wrapper shows it one-hot codes of the words around the cursor instead, and it learns to
compress. Lesson 04 makes the same point with SB3 PPO and ``textgym.sb3.policy_kwargs``.

    python examples/06_token_edit_compress.py                   # 43 s on 2 shared CPU cores
    TEXTGYM_QUICK=1 python examples/06_token_edit_compress.py   # a smoke run, 10 s
"""

import os

import gymnasium as gym
import numpy as np
import torch
from sb3_contrib import MaskablePPO

import textgym  # noqa: F401  (registers the ids)

QUICK = os.environ.get("TEXTGYM_QUICK") == "1"
TRAIN_STEPS = 2_000 if QUICK else 20_000
EVAL_EPISODES = 20 if QUICK else 50
ENV_KWARGS = {"task": "compress", "mode": "compress", "reward_mode": "dense", "task_kwargs": {"n_removable": 2}}


class WordsAroundCursor(gym.ObservationWrapper):
    """Observes only ``"focus"``: one-hot codes of the words before, under and after the
    cursor (the pad id where there is none)."""

    def __init__(self, env: gym.Env):
        super().__init__(env)
        vocab = env.unwrapped.vocab
        self.n_ids, self.pad_id = len(vocab), vocab.pad_id
        focus = gym.spaces.Box(0, 1, shape=(3 * self.n_ids,), dtype=np.int64)
        self.observation_space = gym.spaces.Dict({"focus": focus})

    def observation(self, obs: dict) -> dict:
        ids, cursor, length = obs["current_ids"], int(obs["cursor"][0]), int(obs["current_mask"].sum())
        focus = np.zeros((3, self.n_ids), dtype=np.int64)
        for row, position in enumerate((cursor - 1, cursor, cursor + 1)):
            focus[row, ids[position] if 0 <= position < length else self.pad_id] = 1
        return {"focus": focus.ravel()}


def make_env(split: str = "train") -> gym.Env:
    return WordsAroundCursor(gym.make("TokenEdit-v0", split=split, **ENV_KWARGS))


def evaluate(model: MaskablePPO) -> tuple[float, list[str]]:
    """Mean final ROUGE-L of the greedy policy on the first test examples, and a few outputs."""
    env = make_env("test")
    scores, samples = [], []
    for index in range(EVAL_EPISODES):
        obs, info = env.reset(options={"index": index})
        done = False
        while not done:
            action, _ = model.predict(obs, action_masks=info["action_mask"].astype(bool), deterministic=True)
            obs, _, terminated, truncated, info = env.step(int(action))
            done = terminated or truncated
        scores.append(info["metrics"]["rougeL"])
        samples.append(f"{env.unwrapped.example.prompt!r} -> {info['text']!r}")
    return float(np.mean(scores)), samples[:3]


def main() -> None:
    torch.set_num_threads(1)  # small MLPs: more threads only add overhead
    model = MaskablePPO("MultiInputPolicy", make_env(), seed=0, n_steps=512, batch_size=128, verbose=0)
    for title in ("before training", f"after {TRAIN_STEPS} steps"):
        if title != "before training":
            model.learn(total_timesteps=TRAIN_STEPS)
        score, samples = evaluate(model)
        print(f"{title}: test ROUGE-L {score:.3f}")
        print("\n".join("  " + sample for sample in samples))


if __name__ == "__main__":
    main()
