"""RLlib PPO on TokenGen-Copy-v0: textgym.rllib's token module against flattened float observations.

    python benchmarks/rllib_copy.py                  # up to 20 iterations of 1,000 env steps each
    python benchmarks/rllib_copy.py --iterations 1 --flat-iterations 1   # a smoke run

Both approaches train RLlib PPO with the same hyperparameters, one env runner with 8 envs,
on copy (3 tokens of 5 symbols) with the dense reward:

- ``token module``: ``textgym.rllib.ppo_config`` (``TokenPPOModule``: token embeddings,
  action masks applied);
- ``flattened``: what ``examples/09_rllib.py`` did before ``textgym.rllib``: the Dict
  observation flattened to float32 for RLlib's default MLP, masks ignored.

After every iteration the greedy policy is scored on 200 fixed episodes (token accuracy).
The token module stops once it reaches ``--target``; the flattened one runs
``--flat-iterations`` (10: the 10,000 steps of the old lesson, which reached a return of
0.29). Wall times are training only: starting Ray and building the algorithm (about 20 s)
are left out. Needs Ray (``pip install "textgym[rllib]"``).
"""

from __future__ import annotations

import argparse
import logging
import time

import gymnasium as gym
import numpy as np
import ray
import torch
from ray.rllib.algorithms.ppo import PPOConfig
from ray.tune.registry import register_env

from agents import evaluate
from textgym.rllib import ModulePolicy, make_env, ppo_config

ENV_ID = "TokenGen-Copy-v0"
ENV_KWARGS = {"reward_mode": "dense"}
EVAL_EPISODES, EVAL_SEED = 200, 10_000
TRAINING = {"lr": 2e-3, "gamma": 0.9, "train_batch_size_per_learner": 1_000, "minibatch_size": 64, "num_epochs": 4}


def flat_env(env_config: dict | None = None) -> gym.Env:
    # "textgym:" imports textgym in the env runner's process, which has not imported it
    env = gym.wrappers.FlattenObservation(gym.make("textgym:" + ENV_ID, **dict(env_config or {})))
    return gym.wrappers.DtypeObservation(env, np.float32)


def run(name: str, config: PPOConfig, eval_env: gym.Env, iterations: int, target: float | None, seed: int) -> None:
    config = (config.env_runners(num_env_runners=1, num_envs_per_env_runner=8)
              .training(**TRAINING).debugging(seed=seed, log_level="ERROR"))
    algo = config.build_algo()
    seconds = 0.0
    for iteration in range(1, iterations + 1):
        start = time.perf_counter()
        result = algo.train()
        seconds += time.perf_counter() - start
        runners = result["env_runners"]
        accuracy = evaluate(ModulePolicy(algo.get_module()), eval_env, EVAL_EPISODES, seed=EVAL_SEED)["token_accuracy"]
        print(f"| {name} | {seed} | {iteration} | {int(runners['num_env_steps_sampled_lifetime']):,} | {seconds:.0f} "
              f"| {runners.get('episode_return_mean', float('nan')):.3f} | {accuracy:.3f} |", flush=True)
        if target is not None and accuracy >= target:
            break
    algo.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=20, help="most training iterations per approach")
    parser.add_argument("--flat-iterations", type=int, default=10, help="training iterations of the flattened approach")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0], help="PPO seeds")
    parser.add_argument("--target", type=float, default=0.95, help="greedy token accuracy that stops the token module")
    args = parser.parse_args()
    torch.set_num_threads(1)
    ray.init(num_cpus=2, include_dashboard=False, logging_level="ERROR", log_to_driver=False)
    logging.getLogger("ray.rllib").setLevel(logging.ERROR)
    print(f"RLlib PPO on {ENV_ID} (3 tokens of 5 symbols, dense reward), one env runner x 8 envs, {TRAINING}")
    print("| approach | seed | iteration | env steps | training s | episode return mean (sampling) | greedy token accuracy |")
    print("|---|---|---|---|---|---|---|")
    try:
        register_env("textgym-copy-flat", flat_env)
        for seed in args.seeds:
            run("token module", ppo_config(ENV_ID, **ENV_KWARGS), make_env(ENV_ID), args.iterations, args.target, seed)
        for seed in args.seeds if args.flat_iterations else []:
            flattened = PPOConfig().environment("textgym-copy-flat", env_config=ENV_KWARGS)
            run("flattened", flattened, flat_env(), args.flat_iterations, None, seed)
    finally:
        ray.shutdown()


if __name__ == "__main__":
    main()
