"""Random-policy steps/s of textgym envs next to CartPole-v1, all through ``gym.make``.

    python benchmarks/throughput.py [--steps 20000] [--repeats 3]

Every env is stepped with ``action_space.sample()`` (the same policy cost for all), resetting
when an episode ends; the best of ``--repeats`` runs is reported, measured in this run.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import gymnasium as gym

import textgym  # noqa: F401


def steps_per_second(make_env: Callable[[], gym.Env], n_steps: int, repeats: int) -> float:
    env = make_env()
    env.reset(seed=0)
    env.action_space.seed(0)
    best = 0.0
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(n_steps):
            _, _, terminated, truncated, _ = env.step(env.action_space.sample())
            if terminated or truncated:
                env.reset()
        best = max(best, n_steps / (time.perf_counter() - start))
    return best


CASES: dict[str, Callable[[], gym.Env]] = {
    "CartPole-v1": lambda: gym.make("CartPole-v1"),
    "TokenGen-v0 sparse (copy, token_accuracy)": lambda: gym.make("TokenGen-v0"),
    "TokenGen-v0 dense (copy, token_accuracy)": lambda: gym.make("TokenGen-v0", reward_mode="dense"),
    "TokenGen-v0 sparse (keywords, bleu)": lambda: gym.make("TokenGen-v0", task="keywords", reward="bleu"),
    "TokenGen-v0 dense (keywords, bleu)": lambda: gym.make(
        "TokenGen-v0", task="keywords", reward="bleu", reward_mode="dense"
    ),
    "TokenEdit-v0 sparse (compress, rougeL)": lambda: gym.make("TokenEdit-v0"),
    "TokenEdit-v0 dense (compress, rougeL)": lambda: gym.make("TokenEdit-v0", reward_mode="dense"),
    "NERTag-v0 f1 (sparse span F1)": lambda: gym.make("NERTag-v0", reward_mode="f1"),
    "NERTag-v0 f1_delta (dense span F1)": lambda: gym.make("NERTag-v0"),
    "NERTag-v0 token": lambda: gym.make("NERTag-v0", reward_mode="token"),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    results = {name: steps_per_second(make, args.steps, args.repeats) for name, make in CASES.items()}
    baseline = results["CartPole-v1"]
    width = max(map(len, results))
    print(f"| {'env':<{width}} | {'steps/s':>9} | {'x CartPole':>10} |")
    print(f"|{'-' * (width + 2)}|{'-' * 11}|{'-' * 12}|")
    for name, rate in results.items():
        print(f"| {name:<{width}} | {rate:>9,.0f} | {rate / baseline:>10.2f} |")


if __name__ == "__main__":
    main()
