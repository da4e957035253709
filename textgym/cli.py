"""The ``textgym`` command (also ``python -m textgym``).

The env library does not import the agents: each command imports ``agents`` (and
``agents.runs``, the run folders) when it runs.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

# textgym's default models are small: more torch threads only add overhead, and on a busy machine
# make training 10-30x slower. The thread count also changes a run's numbers, so config.json records it.
DEFAULT_THREADS = 1


def demo(args: argparse.Namespace) -> int:
    """Train tabular Q-learning on a built-in task; print episodes and scores before and after."""
    from agents import RandomAgent, TabularQAgent, evaluate
    from agents.runs import make_env

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
    from agents.runs import AGENT_DESCRIPTIONS
    from envs_registry import ENVS
    from textgym.rewards import METRICS
    from textgym.tasks import BUILTIN_TASKS

    print("envs:")
    for env_id, row in ENVS.items():
        print(f"  {env_id:<24}{row['description']}")
    print("tasks:")
    for name, generator in BUILTIN_TASKS.items():
        print(f"  {name:<24}{summary(generator.__doc__)}")
    print("rewards:")
    for name, factory in METRICS.items():
        # a class's own docstring: building LMFluency or SentenceSimilarity would load a model
        print(f"  {name:<24}{summary((factory if isinstance(factory, type) else factory()).__doc__)}")
    print("agents (textgym train --agent NAME):")
    for name, description in AGENT_DESCRIPTIONS.items():
        print(f"  {name:<24}{description}")
    return 0


def summary(doc: str | None) -> str:
    """A docstring's first paragraph on one line (a first line alone can stop mid-sentence)."""
    return " ".join((doc or "").strip().split("\n\n")[0].split())


def train(args: argparse.Namespace) -> int:
    """Train an agent and write its run folder (see ``agents.runs``)."""
    from agents import evaluate
    from agents.runs import can_plot, format_scores, make_env
    from agents.runs import train as train_run

    if not can_plot():
        print("textgym train: note: matplotlib is not installed, so the run gets no curve.png "
              "(pip install matplotlib)", file=sys.stderr)
    eval_every = max(args.steps // 10, 1) if args.eval_every is None else args.eval_every
    policy = train_run(args.env, args.agent, args.steps, args.seed, args.out, args.env_kwargs, args.agent_kwargs,
                       eval_every=eval_every, eval_episodes=args.eval_episodes,
                       progress_bar=not args.no_progress, overwrite=args.overwrite)
    ranks = getattr(policy, "ranks", None)
    if ranks is not None and not ranks.is_main:  # data parallel: rank 0 reports
        return 0
    scores = evaluate(policy, make_env(args.env, args.env_kwargs), args.eval_episodes, seed=args.seed + 10_000)
    trained = f"for {args.steps:,} steps" if args.steps else "(its warm start alone)"
    print(f"trained {args.agent} on {args.env} {trained}; wrote {args.out}/")
    print(f"final evaluation ({args.eval_episodes} greedy episodes): {format_scores(scores)}")
    return 0


def evaluate_run(args: argparse.Namespace) -> int:
    """Evaluate a run folder (or its checkpoint) and render sample episodes."""
    from agents import evaluate
    from agents.runs import format_scores, load_run

    if args.trust_checkpoint:
        print("textgym eval: warning: --trust-checkpoint: SB3 unpickles checkpoint.zip, which runs any code "
              "it holds; use it only on runs you or someone you trust made", file=sys.stderr)
    agent, env, config = load_run(args.path, trust_checkpoint=args.trust_checkpoint)
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
    """Act as the agent: read one action per line (its label, or ``#`` and its id) from stdin."""
    from agents.runs import format_scores, make_env

    if args.env_id and args.env and args.env_id != args.env:
        raise ValueError(f"two env ids, {args.env_id!r} and --env {args.env!r}: give one")
    env_id = args.env or args.env_id
    if env_id is None:
        raise ValueError("give an env id: `textgym play --env TokenGen-Copy-v0` (see `textgym list`)")
    env = make_env(env_id, args.env_kwargs, render_mode="ansi", source="--env-kwargs")
    obs, info = env.reset(seed=args.seed)
    labels = [action_label(env.unwrapped, a) for a in range(env.action_space.n)]
    total, done = 0.0, False
    while not done:
        print(env.render())
        legal = [a for a in range(env.action_space.n) if info["action_mask"][a]]
        print("legal actions (type a label, or #id): " + "  ".join(f"#{a}={labels[a]}" for a in legal))
        line = sys.stdin.readline()
        if not line:
            print("\nno more input: stopping")
            return 0
        choice = line.strip()
        action = parse_action(choice, labels)
        if action is None or action not in legal:
            print(f"not a legal action: {choice!r}; type a label, or #id, from the list")
            continue
        _, reward, terminated, truncated, info = env.step(action)
        total += reward
        print(f"reward {reward:+.3f} (return {total:.3f})")
        done = terminated or truncated
    print(env.render())
    print(f"episode over: return {total:.3f}; metrics: {format_scores(info['metrics'])}")
    return 0


def parse_action(choice: str, labels: list[str]) -> int | None:
    """The action a typed line names: a label (so the word ``7`` is the token 7), or ``#id``;
    None for anything else, however it is spelt (``²``, a 5,000-digit number)."""
    if choice in labels:
        return labels.index(choice)
    digits = choice[1:]
    if choice.startswith("#") and digits.isascii() and digits.isdigit() and len(digits) <= len(str(len(labels))):
        return int(digits)
    return None


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
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be an integer >= 0, got {text}")
    return value


def json_object(text: str) -> dict:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as err:
        raise argparse.ArgumentTypeError(f"not valid JSON ({err.msg} at column {err.colno}): {text}") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(f"must be a JSON object like '{{\"task\": \"copy\"}}', got {text}")
    return value


EPILOG = """examples:
  textgym list
  textgym demo
  textgym play --env TokenGen-Copy-v0
  textgym train --env TokenGen-Copy-v0 --agent tabular-q --steps 60000 --out runs/copy \\
                --env-kwargs '{"reward_mode": "dense"}' --agent-kwargs '{"learning_rate": 1.0}'
  textgym eval runs/copy --episodes 200
  textgym bench --quick

`textgym COMMAND --help` describes each command."""

TRAIN_EPILOG = """examples:
  textgym train --env TokenGen-Copy-v0 --agent tabular-q --steps 60000 --out runs/copy \\
                --env-kwargs '{"reward_mode": "dense"}' --agent-kwargs '{"learning_rate": 1.0}'
  textgym train --env NERTag-Entities-v0 --agent dqn --steps 10000 --out runs/ner --agent-kwargs '{"gamma": 0.0}'
  textgym train --env TokenGen-Copy-v0 --agent sb3-ppo --steps 50000 --out runs/ppo --overwrite
  textgym train --env NERTag-v0 --agent lm-ppo --steps 20000 --out runs/ner-lm --agent-kwargs '{"model": "minilm"}'

The run folder gets config.json (everything needed to reproduce the run), metrics.csv (one
row per training episode), eval.csv (one row per periodic evaluation), curve.png (with
matplotlib) and the checkpoint. SB3 agents save their policy weights as safetensors.

lm-ppo warm-starts on the env's supervised targets, then runs PPO. Its --agent-kwargs:
"model" (null: a tiny model, offline; "minilm", "smollm2" or a local transformers directory;
TokenGen takes null or a local LM over the env's vocabulary), "warm_start_epochs" (default 4
on TokenGen, 2 elsewhere; 0: PPO only), "warm_start_batch_size", "warm_start_learning_rate",
"warm_start_head_learning_rate", and every LMPPOConfig field. The warm start's loss goes to
warm_start.csv, its evaluation to step 0 of eval.csv; --steps 0 runs the warm start alone."""

EVAL_EPILOG = """examples:
  textgym eval runs/copy
  textgym eval runs/copy --episodes 200 --samples 0

eval never runs code from the run folder: SB3 policies load from checkpoint.safetensors.
--trust-checkpoint loads an SB3 checkpoint.zip (from model.save, or an older textgym)
with SB3's own loader, which unpickles it: only for runs you trust."""

PLAY_EPILOG = """examples:
  textgym play --env TokenGen-Copy-v0
  printf 'c\\na\\nd\\n' | textgym play --env TokenGen-Copy-v0 --env-kwargs '{"reward_mode": "dense"}'

Type one action per line: its label (a token, tag or edit such as keep or replace:the), or
# and its id (#7). A word that is a number, such as 7, is the word."""


class Parser(argparse.ArgumentParser):
    """Usage errors in one line, as every other error of the command."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see `{self.prog} --help`)\n")


def build_parser() -> argparse.ArgumentParser:
    from agents.runs import AGENTS
    from textgym import __version__

    formatter = argparse.RawDescriptionHelpFormatter
    parser = Parser(prog="textgym", description="Gymnasium environments for text tasks.", epilog=EPILOG,
                    formatter_class=formatter)
    parser.add_argument("--version", action="version", version=f"textgym {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)

    def threads_option(command: argparse.ArgumentParser) -> None:
        command.add_argument("--threads", type=positive_int, default=DEFAULT_THREADS,
                             help=f"torch threads (default: {DEFAULT_THREADS}: the default models are small, "
                                  "and more threads are slower on a busy machine)")

    demo_parser = commands.add_parser("demo", help="train a tabular Q agent on a built-in task (under a minute)",
                                      description="Train tabular Q-learning on a built-in task and print "
                                                  "episodes and scores before and after.")
    demo_parser.add_argument("--env", default="TokenGen-Keywords-v0",
                             help="env id (default: TokenGen-Keywords-v0, dense BLEU on the keywords task)")
    demo_parser.add_argument("--steps", type=positive_int, default=300_000, help="training steps (default: 300000)")
    demo_parser.add_argument("--seed", type=int, default=0, help="agent and evaluation seed (default: 0)")
    demo_parser.add_argument("--eval-episodes", type=positive_int, default=200, help="episodes per score (default: 200)")
    demo_parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    threads_option(demo_parser)
    demo_parser.set_defaults(run=demo)

    list_parser = commands.add_parser("list", help="registered envs, built-in tasks, rewards and agents",
                                      description="List the registered envs, built-in tasks, reward metrics "
                                                  "and agents, one line each.")
    list_parser.set_defaults(run=list_envs)

    train_parser = commands.add_parser("train", help="train an agent; writes checkpoint, metrics.csv, curve.png, config.json",
                                       description="Train an agent on an env and write a run folder.",
                                       epilog=TRAIN_EPILOG, formatter_class=formatter)
    train_parser.add_argument("--env", required=True, help="textgym env id, e.g. TokenGen-Copy-v0 (see `textgym list`)")
    train_parser.add_argument("--agent", required=True, choices=AGENTS, help="agent (see `textgym list`)")
    train_parser.add_argument("--steps", type=non_negative_int, default=50_000,
                              help="env steps (default: 50000; lm-ppo: 0 runs its warm start alone)")
    train_parser.add_argument("--seed", type=int, default=0,
                              help="seed of the agent; evaluations use SEED + 10000 (default: 0)")
    train_parser.add_argument("--out", type=Path, required=True,
                              help="run folder to write: a new or empty folder (or an old run, with --overwrite)")
    train_parser.add_argument("--overwrite", action="store_true", help="replace the run already in --out")
    train_parser.add_argument("--env-kwargs", type=json_object, default={},
                              help='JSON object of env arguments, e.g. \'{"reward_mode": "dense"}\'')
    train_parser.add_argument("--agent-kwargs", type=json_object, default={},
                              help='JSON object of the agent\'s hyperparameters, e.g. \'{"learning_rate": 1.0}\'')
    train_parser.add_argument("--eval-every", type=non_negative_int, default=None,
                              help="env steps between greedy evaluations (default: a tenth of --steps; 0: none)")
    train_parser.add_argument("--eval-episodes", type=positive_int, default=20,
                              help="episodes per evaluation (default: 20)")
    train_parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    threads_option(train_parser)
    train_parser.set_defaults(run=train)

    eval_parser = commands.add_parser("eval", help="evaluate a run folder written by `textgym train`",
                                      description="Score the greedy policy of a run folder and render sample episodes.",
                                      epilog=EVAL_EPILOG, formatter_class=formatter)
    eval_parser.add_argument("path", metavar="RUN", type=Path, help="run folder (or its checkpoint)")
    eval_parser.add_argument("--episodes", type=positive_int, default=100, help="episodes to score (default: 100)")
    eval_parser.add_argument("--samples", type=non_negative_int, default=3, help="episodes to render (default: 3)")
    eval_parser.add_argument("--seed", type=int, default=10_000,
                             help="seed of the first episode (default: 10000, as train's evaluations)")
    eval_parser.add_argument("--trust-checkpoint", action="store_true",
                             help="load an SB3 checkpoint.zip with SB3's loader, which can run code from it")
    threads_option(eval_parser)
    eval_parser.set_defaults(run=evaluate_run)

    play_parser = commands.add_parser("play", help="act as the agent in the terminal (reads stdin, so input can be piped)",
                                      description="Play an episode as the agent: one action per line on stdin.",
                                      epilog=PLAY_EPILOG, formatter_class=formatter)
    play_parser.add_argument("env_id", nargs="?", metavar="ENV", help="env id (or give it as --env)")
    play_parser.add_argument("--env", help="textgym env id, e.g. TokenGen-Copy-v0 (see `textgym list`)")
    play_parser.add_argument("--env-kwargs", type=json_object, default={},
                             help='JSON object of env arguments, e.g. \'{"task": "reverse"}\'')
    play_parser.add_argument("--seed", type=int, default=0, help="seed of the episode (default: 0)")
    play_parser.set_defaults(run=play)

    bench_parser = commands.add_parser("bench", help="run benchmarks/ and write the results tables and curves",
                                       description="Run the throughput and learning benchmarks of benchmarks/.")
    bench_parser.add_argument("--quick", action="store_true",
                              help=f"a short throughput run, and the learning benchmark's --quick mode for "
                                   f"{', '.join(QUICK_BENCH_AGENTS)} on {', '.join(QUICK_BENCH_CASES)}")
    bench_parser.add_argument("--out", type=Path, default=Path("runs/bench"), help="folder to write (default: runs/bench)")
    bench_parser.set_defaults(run=bench)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from gymnasium.error import Error as GymError

    args = build_parser().parse_args(argv)
    if hasattr(args, "threads"):
        import torch

        torch.set_num_threads(args.threads)
    try:
        return args.run(args)
    except (ValueError, OSError, GymError) as err:
        message = " ".join(str(err).split()) or type(err).__name__  # one line, whatever the message
        print(f"textgym {args.command}: error: {message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"\ntextgym {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
