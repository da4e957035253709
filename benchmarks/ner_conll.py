"""MaskablePPO on a CoNLL NER file: span F1 per entity type against the all-O baseline.

    python benchmarks/ner_conll.py [--train PATH] [--test PATH] [--steps N]

By default it trains on ``../shared/data/wnut17/train.conll`` and tests on
``dev.conll`` next to it, when they are present. Without ``--test`` the training file is
scored too (memorisation, not generalisation). The agent and its observation are the
ones of ``examples/05_maskable_ppo_ner.py`` (a 5-word window, word shapes, ids embedded by
``textgym.sb3.policy_kwargs``).
``TEXTGYM_QUICK=1`` trains for a few hundred steps only.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import gymnasium as gym
import torch
from sb3_contrib import MaskablePPO
from stable_baselines3.common.env_util import make_vec_env

import textgym  # noqa: F401
from textgym.rewards.span_metrics import ner_report
from textgym.sb3 import policy_kwargs

WNUT = Path(__file__).resolve().parents[2] / "shared" / "data" / "wnut17"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train", type=Path, default=WNUT / "train.conll", help="CoNLL file to train on")
    parser.add_argument("--test", type=Path, default=None, help="CoNLL file to score (default: dev.conll beside train)")
    parser.add_argument("--steps", type=int, default=300 if os.environ.get("TEXTGYM_QUICK") == "1" else 200_000)
    parser.add_argument("--window", type=int, default=2)
    parser.add_argument("--min-freq", type=int, default=2)
    parser.add_argument("--reward-mode", default="f1_delta", choices=["token", "f1_delta", "f1"])
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args()


def tag_all(env: gym.Env, model: MaskablePPO) -> tuple[list[list[str]], list[list[str]]]:
    gold, pred = [], []
    for index in range(len(env.unwrapped.examples)):
        obs, info = env.reset(options={"index": index})
        done = False
        while not done:
            action, _ = model.predict(obs, action_masks=info["action_mask"].astype(bool), deterministic=True)
            obs, _, terminated, truncated, info = env.step(int(action))
            done = terminated or truncated
        gold.append(list(env.unwrapped.example.tags))
        pred.append(env.unwrapped.predicted_tags)
    return gold, pred


def main() -> int:
    args = parse_args()
    if not args.train.is_file():
        print(f"no CoNLL file at {args.train}; give one with --train PATH", file=sys.stderr)
        return 0
    test = args.test or (args.train.with_name("dev.conll") if (args.train.with_name("dev.conll")).is_file() else None)
    task = {"train": str(args.train), "test": str(test or args.train)}
    kwargs = {"task": task, "window": args.window, "min_freq": args.min_freq, "reward_mode": args.reward_mode}
    torch.manual_seed(args.seed)
    torch.set_num_threads(2)

    envs = make_vec_env("NERTag-v0", n_envs=8, seed=args.seed, env_kwargs={**kwargs, "render_mode": None})
    model = MaskablePPO(
        "MultiInputPolicy", envs, n_steps=256, batch_size=256, n_epochs=4, learning_rate=1e-3, ent_coef=0.01,
        policy_kwargs=policy_kwargs(envs, net_arch=[64]), seed=args.seed, verbose=0,
    )
    start = time.perf_counter()
    model.learn(total_timesteps=args.steps)
    elapsed = time.perf_counter() - start

    env = gym.make("NERTag-v0", split="test", **kwargs)
    gold, pred = tag_all(env, model)
    trained, baseline = ner_report(gold, pred), ner_report(gold, [["O"] * len(g) for g in gold])
    print(f"train {args.train} ({len(envs.get_attr('examples')[0])} sentences), test {task['test']} ({len(gold)})")
    print(f"MaskablePPO, {args.steps} steps in {elapsed:.0f}s ({args.steps / elapsed:.0f} steps/s), "
          f"window={args.window}, min_freq={args.min_freq}, reward_mode={args.reward_mode}\n")
    print(f"| {'type':<16} | {'gold':>5} | {'all-O F1':>8} | {'precision':>9} | {'recall':>6} | {'F1':>6} |")
    print(f"|{'-' * 18}|{'-' * 7}|{'-' * 10}|{'-' * 11}|{'-' * 8}|{'-' * 8}|")
    for kind, row in trained.items():
        base = baseline.get(kind, {"f1": 0.0})["f1"]
        print(f"| {kind:<16} | {row['support']:>5.0f} | {base:>8.3f} | {row['precision']:>9.3f} | "
              f"{row['recall']:>6.3f} | {row['f1']:>6.3f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
