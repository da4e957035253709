"""Learning benchmark: final metric of each agent on each built-in task, over seeds.

    python benchmarks/learning.py                      # every case and agent, 5 seeds
    python benchmarks/learning.py --quick              # 2 seeds, a fifth of the budgets
    python benchmarks/learning.py --agents tabular-q dqn --cases copy entities --seeds 3

For every (case, agent, seed) the agent trains for the case's step budget, then is
evaluated greedily on ``EVAL_EPISODES`` episodes of the case's evaluation split (fixed
seeds). The table is printed as Markdown and written with learning-curve PNGs to ``--out``.

Each cell gives the case's metric over seeds: from 3 seeds on, mean ± the half-width of a
95% Student-t interval; with 1 or 2 seeds (``--quick``), the mean and each seed's score,
because a t-interval from 2 seeds (t = 12.7) is wider than the metric's whole range [0, 1]
and says nothing. The t-interval is not clipped to [0, 1]: near 0 or 1 (``0.999 ± 0.005``)
the metric's own bound is the tighter limit.
"""

from __future__ import annotations

import argparse
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch

import textgym  # noqa: F401
from agents import DQNAgent, LMPPOAgent, RandomAgent, TabularQAgent, evaluate
from agents.runs import SB3Agent

EVAL_EPISODES = 200
EVAL_SEED = 10_000
T_95 = {2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262}  # by degrees of freedom
MIN_SEEDS_FOR_CI = 3


@dataclass(frozen=True)
class Case:
    env_id: str
    metric: str  # the end metric the table reports
    steps: int  # training budget
    eval_split: str = "train"  # held-out splits only where the observation allows generalising
    env_kwargs: dict = field(default_factory=dict)
    gamma: float | None = None  # discount for every learning agent (None: each agent's own)


CASES = {
    "copy": Case("TokenGen-Copy-v0", "token_accuracy", 50_000, env_kwargs={"reward_mode": "dense"}),
    "copy-sparse": Case("TokenGen-Copy-v0", "token_accuracy", 50_000),
    "reverse": Case("TokenGen-Reverse-v0", "token_accuracy", 60_000, env_kwargs={"reward_mode": "dense"}),
    "keywords": Case("TokenGen-Keywords-v0", "bleu", 100_000),  # dense BLEU, as registered
    "keywords-sparse": Case("TokenGen-Keywords-v0", "bleu", 100_000, env_kwargs={"reward_mode": "sparse"}),
    "compress": Case("TokenEdit-Compress-v0", "rougeL", 50_000, env_kwargs={"reward_mode": "dense"}),
    "fix": Case("TokenEdit-Fix-v0", "rougeL", 50_000),
    # per-token reward: each tag is judged on its own, so tagging is a bandit at every step
    "entities": Case("NERTag-Entities-v0", "f1", 50_000, eval_split="test", gamma=0.0),
}


class SB3Policy(SB3Agent):
    """An SB3 model behind the textgym ``act(obs, info)`` interface, with its curve."""

    def __init__(self, model: Any, monitor: Any, masked: bool):
        super().__init__(model, masked)
        self.monitor = monitor

    def curve(self) -> tuple[np.ndarray, np.ndarray]:
        return np.cumsum(self.monitor.get_episode_lengths()), np.asarray(self.monitor.get_episode_rewards())


Train = Callable[[gym.Env, int, int, float | None], Any]  # (env, seed, steps, gamma) -> policy


def train_sb3(algo: str, token_features: bool = True, **hyperparameters: Any) -> Train:
    """SB3 ``algo`` with ``MultiInputPolicy``: on textgym's token features by default, or
    on SB3's own float features (``token_features=False``) for comparison."""

    def train(env: gym.Env, seed: int, steps: int, gamma: float | None) -> SB3Policy:
        import sb3_contrib
        import stable_baselines3
        from stable_baselines3.common.monitor import Monitor

        from textgym.sb3 import policy_kwargs

        cls = getattr(stable_baselines3, algo, None) or getattr(sb3_contrib, algo)
        monitor = Monitor(env)
        extra = {"policy_kwargs": policy_kwargs(env)} if token_features else {}
        discount = {} if gamma is None else {"gamma": gamma}
        model = cls("MultiInputPolicy", monitor, seed=seed, verbose=0, **extra, **{**hyperparameters, **discount})
        model.learn(steps)
        return SB3Policy(model, monitor, masked=algo == "MaskablePPO")

    return train


def train_textgym(agent_cls: type, **hyperparameters: Any) -> Train:
    def train(env: gym.Env, seed: int, steps: int, gamma: float | None) -> Any:
        takes_gamma = gamma is not None and any(f.name == "gamma" for f in fields(agent_cls.Config))
        discount = {"gamma": gamma} if takes_gamma else {}
        return agent_cls(env, seed=seed, **hyperparameters, **discount).learn(steps)

    return train


# Tuned on copy (50k steps). Short episodes (<= 27 steps) and dense rewards: a short
# horizon (gamma 0.9) and frequent, large updates; entropy is not needed to keep exploring.
SB3_PPO = {"learning_rate": 2e-3, "n_steps": 256, "batch_size": 64, "gamma": 0.9, "ent_coef": 0.0}
# SB3's DQN defaults (target update every 10k steps, 10% exploration) are sized for Atari
SB3_DQN = {"learning_rate": 5e-4, "batch_size": 64, "gamma": 0.9, "train_freq": 2, "learning_starts": 1_000,
           "target_update_interval": 500, "exploration_fraction": 0.2}

AGENTS = {
    "random": train_textgym(RandomAgent),
    # textgym envs are deterministic given the observation, so a full-step update is safe
    "tabular-q": train_textgym(TabularQAgent, learning_rate=1.0),
    "dqn": train_textgym(DQNAgent),
    # "-raw": the same algorithm and hyperparameters on SB3's float features, for comparison
    "sb3-ppo": train_sb3("PPO", **SB3_PPO),
    "sb3-ppo-raw": train_sb3("PPO", token_features=False, **SB3_PPO),
    "sb3-dqn": train_sb3("DQN", **SB3_DQN),
    "sb3-dqn-raw": train_sb3("DQN", token_features=False, **SB3_DQN),
    "maskable-ppo": train_sb3("MaskablePPO", **SB3_PPO),
    # LMPPOAgent on its offline tiny model (a GPT-2 on TokenGen, a BERT elsewhere), from
    # random init like the rest, with each of its three advantages
    "lm-ppo": train_textgym(LMPPOAgent),
    "lm-ppo-sc": train_textgym(LMPPOAgent, advantage="self-critical"),
    "lm-ppo-group": train_textgym(LMPPOAgent, advantage="group", group_size=4),
}


def learning_curve(policy: Any) -> tuple[np.ndarray, np.ndarray]:
    if isinstance(policy, SB3Policy):
        return policy.curve()
    records = policy.log.records
    return np.array([r["step"] for r in records]), np.array([r["return"] for r in records])


def summarise(scores: list[float]) -> str:
    """``mean ± 95% CI half-width`` from ``MIN_SEEDS_FOR_CI`` seeds on, else the mean and every seed's score."""
    n, mean = len(scores), float(np.mean(scores))
    if n < MIN_SEEDS_FOR_CI:
        return f"{mean:.3f} (seeds: {', '.join(f'{s:.3f}' for s in scores)})"
    half_width = T_95.get(n - 1, 1.96) * float(np.std(scores, ddof=1)) / math.sqrt(n)
    return f"{mean:.3f} ± {half_width:.3f}"


def smooth(x: np.ndarray, y: np.ndarray, points: int = 50) -> tuple[np.ndarray, np.ndarray]:
    """Mean return in ``points`` equal step bins, so seeds can be averaged on one grid."""
    edges = np.linspace(0, x.max() if x.size else 1, points + 1)
    bins = np.clip(np.digitize(x, edges) - 1, 0, points - 1)
    means = np.array([y[bins == b].mean() if np.any(bins == b) else np.nan for b in range(points)])
    return (edges[:-1] + edges[1:]) / 2, means


def plot_curves(curves: dict[str, list[tuple[np.ndarray, np.ndarray]]], title: str, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for agent, runs in curves.items():
        grid = [smooth(x, y) for x, y in runs if len(x)]
        if grid:
            ax.plot(grid[0][0], np.nanmean([g[1] for g in grid], axis=0), label=agent)
    ax.set(title=title, xlabel="env steps", ylabel="episode return (training)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agents", nargs="+", choices=list(AGENTS), default=list(AGENTS))
    parser.add_argument("--cases", nargs="+", choices=list(CASES), default=list(CASES))
    parser.add_argument("--seeds", type=int, default=None, help="seeds per cell (default 5, or 2 with --quick)")
    parser.add_argument("--quick", action="store_true", help="2 seeds and a fifth of every budget")
    parser.add_argument("--out", type=Path, default=Path("runs/learning"))
    args = parser.parse_args()
    # the networks are tiny: one thread is as fast, and runs in parallel don't oversubscribe
    torch.set_num_threads(1)
    n_seeds = args.seeds or (2 if args.quick else 5)
    args.out.mkdir(parents=True, exist_ok=True)

    rows = []
    for case_name in args.cases:
        case = CASES[case_name]
        steps = case.steps // 5 if args.quick else case.steps
        cells, curves = {}, {}
        for agent_name in args.agents:
            scores, curves[agent_name] = [], []
            start = time.perf_counter()
            for seed in range(n_seeds):
                policy = AGENTS[agent_name](gym.make(case.env_id, **case.env_kwargs), seed, steps, case.gamma)
                eval_env = gym.make(case.env_id, split=case.eval_split, **case.env_kwargs)
                scores.append(evaluate(policy, eval_env, EVAL_EPISODES, seed=EVAL_SEED)[case.metric])
                curves[agent_name].append(learning_curve(policy))
            cells[agent_name] = summarise(scores)
            per_seed = f"; seeds: {' '.join(f'{s:.3f}' for s in scores)}" if n_seeds >= MIN_SEEDS_FOR_CI else ""
            print(f"{case_name:<10} {agent_name:<13} {cells[agent_name]}  ({time.perf_counter() - start:.0f} s"
                  f"{per_seed})", flush=True)
        rows.append((case_name, case, steps, cells))
        try:
            plot_curves(curves, f"{case_name}: {case.env_id}", args.out / f"curve_{case_name}.png")
        except ImportError:
            print("matplotlib is missing: no curves (pip install 'textgym[plots]')")

    header = f"| task | env | metric (split) | steps | {' | '.join(args.agents)} |"
    lines = [header, "|" + "---|" * (4 + len(args.agents))]
    for case_name, case, steps, cells in rows:
        kwargs = "".join(f", {k}={v}" for k, v in case.env_kwargs.items())
        kwargs += f", gamma={case.gamma}" if case.gamma is not None else ""
        lines.append(f"| {case_name} | `{case.env_id}`{kwargs} | {case.metric} ({case.eval_split}) | {steps:,} | "
                     + " | ".join(cells[a] for a in args.agents) + " |")
    table = "\n".join(lines)
    summary = "mean ± 95% CI" if n_seeds >= MIN_SEEDS_FOR_CI else "mean (and each seed's score; too few for a CI)"
    print(f"\n{summary} over {n_seeds} seeds, {EVAL_EPISODES} greedy evaluation episodes each\n\n{table}")
    (args.out / "results.md").write_text(table + "\n")


if __name__ == "__main__":
    main()
