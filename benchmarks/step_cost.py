"""Step cost of the single envs, and how it grows with the length of TokenGen's output.

    python benchmarks/step_cost.py [--steps 20000]

Prints random-action steps/s of TokenGen (copy, sparse) and NERTag (sparse span F1), then
TokenGen's steps/s around 1k and 16k written tokens (``max_new_tokens=20000``, random
non-EOS actions): a step should cost the same at both lengths.
"""

from __future__ import annotations

import argparse
import time

import gymnasium as gym
import numpy as np

import textgym  # noqa: F401  (registers the ids)


def random_steps_per_second(env: gym.Env, n_steps: int, seed: int = 0) -> float:
    rng = np.random.default_rng(seed)
    env.reset(seed=seed)
    n = env.action_space.n
    actions = rng.integers(n, size=n_steps).tolist()
    start = time.perf_counter()
    for action in actions:
        _, _, terminated, truncated, _ = env.step(action)
        if terminated or truncated:
            env.reset()
    return n_steps / (time.perf_counter() - start)


def steps_per_second_at(env: gym.Env, written: int, n_steps: int, rng: np.random.Generator) -> float:
    """Steps/s of ``n_steps`` non-EOS steps after ``written`` tokens (the env is fresh)."""
    unwrapped = env.unwrapped
    legal = np.flatnonzero(unwrapped.action_masks())
    legal = legal[legal != unwrapped.vocab.eos_id]
    env.reset(seed=0)
    for action in rng.choice(legal, size=written).tolist():
        env.step(action)
    actions = rng.choice(legal, size=n_steps).tolist()
    start = time.perf_counter()
    for action in actions:
        env.step(action)
    return n_steps / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20_000, help="random steps per throughput row")
    args = parser.parse_args()
    rows = {
        "TokenGen copy sparse": gym.make("TokenGen-v0", disable_env_checker=True).unwrapped,
        "NERTag f1": gym.make("NERTag-v0", reward_mode="f1", disable_env_checker=True).unwrapped,
    }
    for name, env in rows.items():
        print(f"{name:24s} {random_steps_per_second(env, args.steps):10,.0f} steps/s")
    rng = np.random.default_rng(0)
    long = gym.make("TokenGen-v0", max_new_tokens=20_000, disable_env_checker=True).unwrapped
    for written in (1_000, 16_000):
        rate = steps_per_second_at(long, written, 1_000, rng)
        print(f"TokenGen at {written:6,d} tokens {rate:10,.0f} steps/s ({1e3 / rate:.3f} ms/step)")


if __name__ == "__main__":
    main()
