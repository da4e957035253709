"""Data-parallel LM-PPO: episodes/s of ``learn`` at 1 and N processes (gloo, CPU, one torch
thread each), every process with its own ``--num-envs`` envs and ``--steps`` env steps, so
N processes do N times the work of one. Also N *independent* single processes at once (no
gradient all-reduce), the machine's own ceiling for N processes: the gap between it and N
data-parallel ones is the cost of communication.

    python benchmarks/lm_ppo_distributed.py                 # 1 vs 2 processes, 3 interleaved rounds
    python benchmarks/lm_ppo_distributed.py --steps 200 --rounds 1
    python benchmarks/lm_ppo_distributed.py --n-minibatches 1   # 4x fewer all-reduces per rollout

Each configuration runs under ``torchrun --standalone``; the modes alternate round by round,
so a machine whose load changes shares the change out, and each cell is the median round.
The tiny offline model (``model=None``) on TokenGen-Copy-v0.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MODES = ("one process", "data parallel", "independent")


def worker(args: argparse.Namespace) -> None:
    import gymnasium as gym
    import torch
    import torch.distributed as dist

    import textgym  # noqa: F401
    from agents import LMPPOAgent

    torch.set_num_threads(1)
    world = int(os.environ["WORLD_SIZE"])
    if world > 1:
        dist.init_process_group("gloo")
    agent = LMPPOAgent(gym.make("TokenGen-Copy-v0"), num_envs=args.num_envs, seed=0,
                       n_minibatches=args.n_minibatches, distributed=args.mode == "data parallel")
    together = world if agent.ranks.enabled else 1  # learn counts the steps of all ranks
    agent.learn(max(args.steps // 4, 1) * together)  # warm-up: the first rollouts and updates
    warm_up_episodes = len(agent.log.records)
    if world > 1:
        dist.barrier()
    start = time.perf_counter()
    agent.learn(args.steps * together)
    elapsed = time.perf_counter() - start
    totals = torch.tensor([len(agent.log.records) - warm_up_episodes, elapsed], dtype=torch.float64)
    if world > 1:
        gathered = [torch.zeros(2, dtype=torch.float64) for _ in range(world)]
        dist.all_gather(gathered, totals)
    else:
        gathered = [totals]
    if int(os.environ["RANK"]) == 0:
        episodes = sum(int(row[0]) for row in gathered)
        seconds = max(float(row[1]) for row in gathered)
        print("RESULT " + json.dumps({"episodes": episodes, "seconds": seconds}))
    if world > 1:
        # garbage collected and the group destroyed before exit, as the agent does for a group
        # it starts: otherwise the interpreter's teardown aborts (SIGABRT, "terminate called
        # without an active exception") about one run in three, after the results are printed
        gc.collect()
        dist.destroy_process_group()


def run(mode: str, processes: int, args: argparse.Namespace) -> dict:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1",
           "TRANSFORMERS_OFFLINE": "1"}
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={processes}", __file__,
               "--worker", "--mode", mode, "--steps", str(args.steps), "--num-envs", str(args.num_envs),
               "--n-minibatches", str(args.n_minibatches)]
    result = subprocess.run(command, capture_output=True, text=True, env=env, cwd=ROOT)
    if result.returncode != 0:
        raise RuntimeError(f"{mode} x {processes} failed:\n{result.stderr[-3000:]}")
    line = next(line for line in result.stdout.splitlines() if line.startswith("RESULT "))
    return json.loads(line.removeprefix("RESULT "))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--processes", type=int, default=2, help="N")
    parser.add_argument("--steps", type=int, default=800, help="env steps per process")
    parser.add_argument("--num-envs", type=int, default=16, help="envs (episodes per rollout) per process")
    parser.add_argument("--n-minibatches", type=int, default=4, help="LMPPOAgent's minibatches per epoch")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds of all modes")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--mode", choices=MODES, default="one process", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args)
        return
    layout = {"one process": 1, "data parallel": args.processes, "independent": args.processes}
    rates: dict[str, list[float]] = {mode: [] for mode in MODES}
    for _ in range(args.rounds):
        for mode in MODES:
            result = run(mode, layout[mode], args)
            rates[mode].append(result["episodes"] / result["seconds"])
    base = statistics.median(rates["one process"])
    print(f"TokenGen-Copy-v0, tiny model, {args.num_envs} envs and {args.steps} steps per process, "
          f"1 torch thread each, {os.cpu_count()} CPUs, median of {args.rounds} interleaved rounds\n")
    print("| mode | processes | episodes/s (rounds) | vs one process |")
    print("|---|---|---|---|")
    for mode in MODES:
        median = statistics.median(rates[mode])
        rounds = ", ".join(f"{rate:.1f}" for rate in rates[mode])
        print(f"| {mode} | {layout[mode]} | {median:.1f} ({rounds}) | {median / base:.2f}x |")


if __name__ == "__main__":
    main()
