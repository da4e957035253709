"""The ``textgym`` command (also ``python -m textgym``)."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any


def demo(args: argparse.Namespace) -> int:
    """Train tabular Q-learning on a built-in task; print episodes and scores before and after."""

    import textgym  # noqa: F401
    from agents import RandomAgent, TabularQAgent, evaluate
    from textgym.training import make_env

    env = make_env(args.env)
    agent = TabularQAgent(env, seed=args.seed, learning_rate=1.0)
    eval_env = make_env(args.env, render_mode="ansi")
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
    """Print the registered envs, built-in tasks, reward metrics and agents."""
    from envs_registry import ENVS
    from textgym.training import AGENT_DESCRIPTIONS
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
    print("agents (textgym train --agent NAME):")
    for name, description in AGENT_DESCRIPTIONS.items():
        print(f"  {name:<24}{description}")
    return 0


def json_object(text: str) -> dict:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as err:
        raise argparse.ArgumentTypeError(f"not valid JSON ({err.msg} at column {err.colno}): {text}") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(f"must be a JSON object like '{{\"task\": \"copy\"}}', got {text}")
    return value


def train(args: argparse.Namespace) -> int:
    """Train an agent and write its run folder (see ``textgym.training``)."""
    import textgym  # noqa: F401
    from agents import evaluate
    from textgym.training import format_scores, make_env
    from textgym.training import train as train_run

    policy = train_run(args.env, args.agent, args.steps, args.seed, args.out, args.env_kwargs, args.agent_kwargs,
                       eval_every=args.eval_every, eval_episodes=args.eval_episodes,
                       progress_bar=not args.no_progress)
    scores = evaluate(policy, make_env(args.env, **args.env_kwargs), args.eval_episodes, seed=args.seed + 10_000)
    print(f"trained {args.agent} on {args.env} for {args.steps:,} steps; wrote {args.out}/")
    print(f"final evaluation ({args.eval_episodes} greedy episodes): {format_scores(scores)}")
    return 0


def evaluate_run(args: argparse.Namespace) -> int:
    """Evaluate a run folder (or its checkpoint) and render sample episodes."""
    import textgym  # noqa: F401
    from agents import evaluate
    from textgym.training import format_scores, load_run

    agent, env, config = load_run(args.path)
    scores = evaluate(agent, env, args.episodes, seed=args.seed)
    print(f"{config['agent']} on {config['env']}, {args.episodes} episodes:")
    print(f"  {format_scores(scores)}")
    for episode in range(args.samples):
        obs, info = env.reset(seed=args.seed + episode)
        done = False
        while not done:
            obs, _, terminated, truncated, info = env.step(agent.act(obs, info))
            done = terminated or truncated
        print(f"\nsample {episode + 1}:\n{env.render()}\n  metrics: {format_scores(info['metrics'])}")
    return 0


def play(args: argparse.Namespace) -> int:
    """Act as the agent: read one action per line (its number or its label) from stdin."""
    import textgym  # noqa: F401
    from textgym.training import format_scores, make_env

    env = make_env(args.env, **args.env_kwargs, render_mode="ansi")
    obs, info = env.reset(seed=args.seed)
    labels = [action_label(env.unwrapped, a) for a in range(env.action_space.n)]
    total, done = 0.0, False
    while not done:
        print(env.render())
        legal = [a for a in range(env.action_space.n) if info["action_mask"][a]]
        print("legal actions: " + "  ".join(f"{a}={labels[a]}" for a in legal))
        line = sys.stdin.readline()
        if not line:
            print("\nno more input: stopping")
            return 0
        choice = line.strip()
        action = int(choice) if choice.isdigit() else labels.index(choice) if choice in labels else None
        if action is None or action not in legal:
            print(f"not a legal action: {choice!r}; type a number or label from the list")
            continue
        obs, reward, terminated, truncated, info = env.step(action)
        total += reward
        print(f"reward {reward:+.3f} (return {total:.3f})")
        done = terminated or truncated
    print(env.render())
    print(f"episode over: return {total:.3f}; metrics: {format_scores(info['metrics'])}")
    return 0


def bench(args: argparse.Namespace) -> int:
    """Run the throughput and learning benchmarks; write their tables and curves to --out."""
    import subprocess

    folder = Path(__file__).resolve().parents[1] / "benchmarks"
    if not folder.is_dir():
        raise FileNotFoundError(f"no benchmarks/ beside the package ({folder}): `textgym bench` runs from a "
                                "source checkout installed with `pip install -e .`")
    args.out.mkdir(parents=True, exist_ok=True)
    quick_throughput = ["--steps", "2000", "--repeats", "1"] if args.quick else []
    quick_learning = ["--quick", "--agents", *QUICK_BENCH_AGENTS, "--cases", *QUICK_BENCH_CASES] if args.quick else []
    throughput = subprocess.run([sys.executable, str(folder / "throughput.py"), *quick_throughput],
                                stdout=subprocess.PIPE, text=True)
    print(throughput.stdout, end="")
    if throughput.returncode:
        return throughput.returncode
    (args.out / "throughput.md").write_text(throughput.stdout)
    learning = subprocess.run([sys.executable, str(folder / "learning.py"), "--out", str(args.out), *quick_learning])
    if learning.returncode:
        return learning.returncode
    print(f"\nwrote {args.out}/throughput.md, {args.out}/results.md and {args.out}/curve_*.png")
    return 0


QUICK_BENCH_AGENTS = ["random", "tabular-q", "dqn"]
QUICK_BENCH_CASES = ["copy", "compress", "entities"]  # one built-in task per env


def action_label(env: Any, action: int) -> str:
    """How ``play`` names an action: an edit operation, a tag or a token."""
    if hasattr(env, "describe_action"):
        op, token = env.describe_action(action)
        return op if token is None else f"{op}:{token}"
    if hasattr(env, "tags"):
        return env.tags[action]
    return env.vocab.id_to_token(action)


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

    list_parser = commands.add_parser("list", help="registered envs, built-in tasks, rewards and agents")
    list_parser.set_defaults(run=list_envs)

    from textgym.training import AGENTS

    train_parser = commands.add_parser("train", help="train an agent; writes checkpoint, metrics.csv, curve.png, config.json")
    train_parser.add_argument("--env", required=True, help="env id, e.g. TokenGen-Copy-v0 (see `textgym list`)")
    train_parser.add_argument("--agent", required=True, choices=AGENTS)
    train_parser.add_argument("--steps", type=positive_int, default=50_000, help="env steps (default: 50000)")
    train_parser.add_argument("--seed", type=int, default=0)
    train_parser.add_argument("--out", type=Path, required=True, help="run folder to write")
    train_parser.add_argument("--env-kwargs", type=json_object, default={}, help='JSON, e.g. \'{"reward_mode": "dense"}\'')
    train_parser.add_argument("--agent-kwargs", type=json_object, default={}, help='JSON, e.g. \'{"learning_rate": 1.0}\'')
    train_parser.add_argument("--eval-every", type=int, default=None,
                              help="env steps between greedy evaluations (default: a tenth of --steps; 0: none)")
    train_parser.add_argument("--eval-episodes", type=positive_int, default=20,
                              help="episodes per evaluation (default: 20)")
    train_parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    train_parser.set_defaults(run=train)

    eval_parser = commands.add_parser("eval", help="evaluate a run folder written by `textgym train`")
    eval_parser.add_argument("path", metavar="RUN", type=Path, help="run folder (or its checkpoint)")
    eval_parser.add_argument("--episodes", type=positive_int, default=100)
    eval_parser.add_argument("--samples", type=int, default=3, help="episodes to render (default: 3)")
    eval_parser.add_argument("--seed", type=int, default=10_000)
    eval_parser.set_defaults(run=evaluate_run)

    play_parser = commands.add_parser("play", help="act as the agent in the terminal (reads stdin, so input can be piped)")
    play_parser.add_argument("env", help="env id, e.g. TokenGen-Copy-v0")
    play_parser.add_argument("--env-kwargs", type=json_object, default={}, help='JSON, e.g. \'{"task": "reverse"}\'')
    play_parser.add_argument("--seed", type=int, default=0)
    play_parser.set_defaults(run=play)

    bench_parser = commands.add_parser("bench", help="run benchmarks/ and write the results tables and curves")
    bench_parser.add_argument("--quick", action="store_true",
                              help=f"a short throughput run, and the learning benchmark's --quick mode for "
                                   f"{', '.join(QUICK_BENCH_AGENTS)} on {', '.join(QUICK_BENCH_CASES)}")
    bench_parser.add_argument("--out", type=Path, default=Path("runs/bench"), help="folder to write (default: runs/bench)")
    bench_parser.set_defaults(run=bench)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from gymnasium.error import Error as GymError

    args = build_parser().parse_args(argv)
    if getattr(args, "eval_every", 0) is None:
        args.eval_every = max(args.steps // 10, 1)
    try:
        return args.run(args)
    except (ValueError, FileNotFoundError, GymError) as err:
        print(f"textgym {args.command}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
