"""The ``textgym`` command (also ``python -m textgym``)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

import numpy as np


def evaluate_policy(env, policy: Callable, n_episodes: int, seed: int) -> tuple[float, list[str]]:
    """Mean final reward of ``policy(obs, info) -> action`` and the texts it wrote."""
    rewards, texts = [], []
    for episode in range(n_episodes):
        obs, info = env.reset(seed=seed + episode)
        total, done = 0.0, False
        while not done:
            obs, reward, terminated, truncated, info = env.step(policy(obs, info))
            total += reward
            done = terminated or truncated
        rewards.append(total)
        texts.append(f"{env.unwrapped.example.prompt!r} -> {info['text']!r}  (reward {total:.2f})")
    return float(np.mean(rewards)), texts


def demo(args: argparse.Namespace) -> int:
    """Train MaskablePPO on a built-in task and print episodes and scores before and after."""
    import gymnasium as gym
    from sb3_contrib import MaskablePPO

    import textgym  # noqa: F401

    env = gym.make(args.env)
    rng = np.random.default_rng(args.seed)

    def random_policy(obs, info):
        return int(rng.choice(np.flatnonzero(info["action_mask"])))

    model = MaskablePPO("MultiInputPolicy", env, seed=args.seed, verbose=0)

    def trained_policy(obs, info):
        action, _ = model.predict(obs, action_masks=info["action_mask"].astype(bool), deterministic=True)
        return int(action)

    eval_env = gym.make(args.env, split="test")
    eval_seed = 10_000
    random_score, _ = evaluate_policy(eval_env, random_policy, args.eval_episodes, eval_seed)
    before_score, before = evaluate_policy(eval_env, trained_policy, args.eval_episodes, eval_seed)
    print(f"textgym demo: MaskablePPO on {args.env} ({env.unwrapped.task.name!r} task, reward {env.unwrapped.reward})")
    print("\nbefore training:")
    print("\n".join("  " + line for line in before[:3]))
    model.learn(total_timesteps=args.steps, progress_bar=not args.no_progress)
    after_score, after = evaluate_policy(eval_env, trained_policy, args.eval_episodes, eval_seed)
    print("\nafter training:")
    print("\n".join("  " + line for line in after[:3]))
    print(f"\nmean reward on {args.eval_episodes} test episodes:")
    print(f"  {'random legal actions':<22}{random_score:.3f}")
    print(f"  {'before training':<22}{before_score:.3f}")
    print(f"  {f'after {args.steps} steps':<22}{after_score:.3f}")
    return 0


def list_envs(args: argparse.Namespace) -> int:
    """Print the registered envs, built-in tasks and reward metrics."""
    from envs_registry import ENVS
    from textgym.rewards import METRICS
    from textgym.tasks import BUILTIN_TASKS

    print("envs:")
    for env_id, row in ENVS.items():
        print(f"  {env_id:<24}{row['description']}")
    print("tasks:")
    for name, generator in BUILTIN_TASKS.items():
        print(f"  {name:<24}{generator.__doc__.splitlines()[0]}")
    print("rewards:")
    for name, factory in METRICS.items():
        doc = (factory() if name != "length" else factory).__doc__ or ""
        print(f"  {name:<24}{doc.strip().splitlines()[0]}")
    return 0


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="textgym", description="Gymnasium environments for text tasks.")
    commands = parser.add_subparsers(dest="command", required=True)

    demo_parser = commands.add_parser("demo", help="train a small agent on a built-in task (about a minute)")
    demo_parser.add_argument("--env", default="TokenGen-v0", help="env id (default: TokenGen-v0, the copy task)")
    demo_parser.add_argument("--steps", type=positive_int, default=50_000, help="training steps (default: 50000)")
    demo_parser.add_argument("--seed", type=int, default=0)
    demo_parser.add_argument("--eval-episodes", type=positive_int, default=200, help="test episodes per score")
    demo_parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    demo_parser.set_defaults(run=demo)

    list_parser = commands.add_parser("list", help="registered envs, built-in tasks and rewards")
    list_parser.set_defaults(run=list_envs)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from gymnasium.error import Error as GymError

    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except (ValueError, FileNotFoundError, GymError) as err:
        print(f"textgym {args.command}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
