"""The ``textgym`` command (also ``python -m textgym``)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence


def demo(args: argparse.Namespace) -> int:
    """Train tabular Q-learning on a built-in task; print episodes and scores before and after."""
    import gymnasium as gym

    import textgym  # noqa: F401
    from agents import RandomAgent, TabularQAgent, evaluate

    env = gym.make(args.env)
    agent = TabularQAgent(env, seed=args.seed, learning_rate=1.0)
    eval_env = gym.make(args.env, render_mode="ansi")
    reward = getattr(env.unwrapped, "reward", None)  # NERTag has span-F1 reward modes, not a Reward
    print(f"textgym demo: tabular Q-learning on {args.env} (task {env.unwrapped.task.name!r}, "
          f"reward_mode {env.unwrapped.reward_mode!r}{f', reward {reward}' if reward else ''})")

    def show(title: str) -> None:
        print(f"\n{title}")
        for index in range(3):
            obs, info = eval_env.reset(options={"index": index})
            done = False
            while not done:
                obs, _, terminated, truncated, info = eval_env.step(agent.act(obs, info))
                done = terminated or truncated
            metrics = ", ".join(f"{k} {v:.2f}" for k, v in info["metrics"].items())
            print(f"  {eval_env.unwrapped.example.prompt!r:>20} -> {info['text']!r}  ({metrics})")

    random_scores = evaluate(RandomAgent(env, seed=args.seed), eval_env, args.eval_episodes, seed=args.seed)
    before = evaluate(agent, eval_env, args.eval_episodes, seed=args.seed)
    show("before training:")
    agent.learn(args.steps, progress_bar=not args.no_progress)
    after = evaluate(agent, eval_env, args.eval_episodes, seed=args.seed)
    show(f"after {args.steps:,} steps ({len(agent.log.records):,} episodes, {agent.n_states:,} states in the Q-table):")

    print(f"\nmean over {args.eval_episodes} episodes on the training prompts:")
    print(f"  {'policy':<24}" + "".join(f"{name:>12}" for name in before if name != "return_std"))
    for label, scores in (("random legal actions", random_scores), ("before training", before),
                          ("after training", after)):
        print(f"  {label:<24}" + "".join(f"{v:>12.3f}" for k, v in scores.items() if k != "return_std"))
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

    demo_parser = commands.add_parser("demo", help="train a tabular Q agent on a built-in task (under a minute)")
    demo_parser.add_argument("--env", default="TokenGen-Keywords-v0",
                             help="env id (default: TokenGen-Keywords-v0, dense BLEU on the keywords task)")
    demo_parser.add_argument("--steps", type=positive_int, default=300_000, help="training steps (default: 300000)")
    demo_parser.add_argument("--seed", type=int, default=0)
    demo_parser.add_argument("--eval-episodes", type=positive_int, default=200, help="episodes per score (default: 200)")
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
