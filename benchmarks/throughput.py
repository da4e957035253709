"""Random-policy steps/s of textgym envs next to CartPole-v1, single and vectorised, in one run.

    python benchmarks/throughput.py [--steps 20000] [--repeats 3] [--num-envs 256]

Single envs come from ``gym.make`` and are stepped with ``action_space.sample()``,
resetting when an episode ends. Vector envs come from ``gym.make_vec`` (``"sync"``:
``SyncVectorEnv`` over the single env; ``"native"``: the env's batched
``vector_entry_point``), stepped with ``action_space.sample()`` under next-step
autoreset; their steps/s count sub-env steps. Each env first runs untimed until an episode
has ended (a vector env: until a sub-env's has, and its autoreset step), so that first-call
costs such as lazy imports stay out of the figures. Every figure is the best of
``--repeats`` runs of ``--steps`` env steps, all measured in this run. Each row's
"x CartPole" divides by the best of CartPole runs interleaved with that row's runs, so that
both saw the same load on a shared machine; "native / sync" compares two vector rows whose
runs were interleaved too.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from functools import partial

import gymnasium as gym
import numpy as np

import textgym  # noqa: F401

# label -> (env id, kwargs)
CASES: dict[str, tuple[str, dict]] = {
    "TokenGen-v0 sparse (copy, token_accuracy)": ("TokenGen-v0", {}),
    "TokenGen-v0 dense (copy, token_accuracy)": ("TokenGen-v0", {"reward_mode": "dense"}),
    "TokenGen-v0 sparse (keywords, bleu)": ("TokenGen-v0", {"task": "keywords", "reward": "bleu"}),
    "TokenGen-v0 dense (keywords, bleu)": ("TokenGen-v0",
                                           {"task": "keywords", "reward": "bleu", "reward_mode": "dense"}),
    "TokenEdit-v0 sparse (compress, rougeL)": ("TokenEdit-v0", {}),
    "TokenEdit-v0 dense (compress, rougeL)": ("TokenEdit-v0", {"reward_mode": "dense"}),
    "NERTag-v0 f1 (sparse span F1)": ("NERTag-v0", {"reward_mode": "f1"}),
    "NERTag-v0 f1_delta (dense span F1)": ("NERTag-v0", {}),
    "NERTag-v0 token": ("NERTag-v0", {"reward_mode": "token"}),
}
VECTOR_CASES = [
    "TokenGen-v0 sparse (copy, token_accuracy)",
    "TokenGen-v0 dense (keywords, bleu)",
    "NERTag-v0 f1_delta (dense span F1)",
    "TokenEdit-v0 sparse (compress, rougeL)",
    "TokenEdit-v0 dense (compress, rougeL)",
]


def single_steps_per_second(make_env: Callable[[], gym.Env], n_steps: int) -> Callable[[], float]:
    """A timer: each call steps the env ``n_steps`` times and returns steps/s."""
    env = make_env()
    env.reset(seed=0)
    env.action_space.seed(0)
    done = False
    while not done:  # warm-up episode, untimed
        _, _, terminated, truncated, _ = env.step(env.action_space.sample())
        done = terminated or truncated
    env.reset()

    def run() -> float:
        start = time.perf_counter()
        for _ in range(n_steps):
            _, _, terminated, truncated, _ = env.step(env.action_space.sample())
            if terminated or truncated:
                env.reset()
        return n_steps / (time.perf_counter() - start)

    return run


def vector_steps_per_second(make_envs: Callable[[], gym.vector.VectorEnv], n_steps: int) -> Callable[[], float]:
    """A timer: each call steps the vector env for ``n_steps`` sub-env steps, returns steps/s."""
    envs = make_envs()
    envs.reset(seed=0)
    envs.action_space.seed(0)
    ended = False
    while not ended:  # warm-up, untimed
        _, _, terminated, truncated, _ = envs.step(envs.action_space.sample())
        ended = bool(np.any(terminated | truncated))
    envs.step(envs.action_space.sample())  # the autoreset step
    n_batches = max(1, n_steps // envs.num_envs)

    def run() -> float:
        start = time.perf_counter()
        for _ in range(n_batches):
            envs.step(envs.action_space.sample())
        return n_batches * envs.num_envs / (time.perf_counter() - start)

    return run


def interleaved_best(timers: list[Callable[[], float]], repeats: int) -> list[float]:
    """Best steps/s of each timer, their runs interleaved so that all see the same load on
    a shared machine."""
    best = [0.0] * len(timers)
    for _ in range(repeats):
        for k, timer in enumerate(timers):
            best[k] = max(best[k], timer())
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--num-envs", type=int, default=256)
    args = parser.parse_args()
    steps, repeats, n = args.steps, args.repeats, args.num_envs

    cartpole = single_steps_per_second(lambda: gym.make("CartPole-v1"), steps)
    # rows: (env, how it runs, steps/s, x CartPole, native/sync)
    rows = []
    for label, (env_id, kwargs) in CASES.items():
        single = single_steps_per_second(partial(gym.make, env_id, **kwargs), steps)
        rate, baseline = interleaved_best([single, cartpole], repeats)
        rows.append((label, "single", rate, rate / baseline, None))
    for label in VECTOR_CASES:
        env_id, kwargs = CASES[label]
        sync, native, baseline = interleaved_best([
            vector_steps_per_second(partial(gym.make_vec, env_id, num_envs=n, vectorization_mode="sync", **kwargs),
                                    steps),
            vector_steps_per_second(partial(gym.make_vec, env_id, num_envs=n, **kwargs), steps),
            cartpole,
        ], repeats)
        rows.append((label, f"SyncVectorEnv x {n}", sync, sync / baseline, None))
        rows.append((label, f"native vector x {n}", native, native / baseline, native / sync))
    best_cartpole = max(cartpole() for _ in range(repeats))
    rows.insert(0, ("CartPole-v1", "single", best_cartpole, 1.0, None))

    width, how = max(len(r[0]) for r in rows), max(len(r[1]) for r in rows)
    print(f"| {'env':<{width}} | {'run as':<{how}} | {'steps/s':>10} | {'x CartPole':>10} | {'native / sync':>13} |")
    print(f"|{'-' * (width + 2)}|{'-' * (how + 2)}|{'-' * 12}|{'-' * 12}|{'-' * 15}|")
    for label, run_as, rate, x_cartpole, speedup in rows:
        ratio = f"{speedup:.1f}" if speedup is not None else ""
        print(f"| {label:<{width}} | {run_as:<{how}} | {rate:>10,.0f} | {x_cartpole:>10.2f} | {ratio:>13} |")


if __name__ == "__main__":
    main()
