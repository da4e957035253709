"""Random-policy steps/s of textgym envs next to CartPole-v1, single and vectorised, in one run.

    python benchmarks/throughput.py [--steps 20000] [--repeats 3] [--num-envs 256]

Single envs come from ``gym.make`` and are stepped with ``action_space.sample()``,
resetting when an episode ends. Vector envs come from ``gym.make_vec`` (``"sync"``:
``SyncVectorEnv`` over the single env; ``"native"``: the env's batched
``vector_entry_point``), stepped with ``action_space.sample()`` under next-step
autoreset; their steps/s count sub-env steps. Every figure is the best of ``--repeats``
runs of ``--steps`` env steps, all measured in this run, so ratios compare like with like.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import gymnasium as gym

import textgym  # noqa: F401

# label -> (env id, kwargs)
CASES: dict[str, tuple[str, dict]] = {
    "TokenGen-v0 sparse (copy, token_accuracy)": ("TokenGen-v0", {}),
    "TokenGen-v0 dense (copy, token_accuracy)": ("TokenGen-v0", {"reward_mode": "dense"}),
    "TokenGen-v0 sparse (keywords, bleu)": ("TokenGen-v0", {"task": "keywords", "reward": "bleu"}),
    "TokenGen-v0 dense (keywords, bleu)": ("TokenGen-v0", {"task": "keywords", "reward": "bleu", "reward_mode": "dense"}),
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
]


def single_steps_per_second(make_env: Callable[[], gym.Env], n_steps: int, repeats: int) -> float:
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


def vector_steps_per_second(make_envs: Callable[[], gym.vector.VectorEnv], n_steps: int, repeats: int) -> float:
    envs = make_envs()
    envs.reset(seed=0)
    envs.action_space.seed(0)
    n_batches = max(1, n_steps // envs.num_envs)
    best = 0.0
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(n_batches):
            envs.step(envs.action_space.sample())
        best = max(best, n_batches * envs.num_envs / (time.perf_counter() - start))
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--num-envs", type=int, default=256)
    args = parser.parse_args()
    steps, repeats, n = args.steps, args.repeats, args.num_envs

    # rows: (env, how it runs, steps/s, native/sync)
    baseline = single_steps_per_second(lambda: gym.make("CartPole-v1"), steps, repeats)
    rows = [("CartPole-v1", "single", baseline, None)]
    for label, (env_id, kwargs) in CASES.items():
        rate = single_steps_per_second(lambda: gym.make(env_id, **kwargs), steps, repeats)
        rows.append((label, "single", rate, None))
    for label in VECTOR_CASES:
        env_id, kwargs = CASES[label]
        sync = vector_steps_per_second(
            lambda: gym.make_vec(env_id, num_envs=n, vectorization_mode="sync", **kwargs), steps, repeats
        )
        native = vector_steps_per_second(lambda: gym.make_vec(env_id, num_envs=n, **kwargs), steps, repeats)
        rows += [(label, f"SyncVectorEnv x {n}", sync, None), (label, f"native vector x {n}", native, native / sync)]

    width, how = max(len(r[0]) for r in rows), max(len(r[1]) for r in rows)
    print(f"| {'env':<{width}} | {'run as':<{how}} | {'steps/s':>10} | {'x CartPole':>10} | {'native / sync':>13} |")
    print(f"|{'-' * (width + 2)}|{'-' * (how + 2)}|{'-' * 12}|{'-' * 12}|{'-' * 15}|")
    for label, run_as, rate, speedup in rows:
        ratio = f"{speedup:.1f}" if speedup is not None else ""
        print(f"| {label:<{width}} | {run_as:<{how}} | {rate:>10,.0f} | {rate / baseline:>10.2f} | {ratio:>13} |")


if __name__ == "__main__":
    main()
