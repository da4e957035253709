"""What ``textgym train`` and ``textgym eval`` run: one table of agent names, training that
writes a reproducible run folder, and loading a run folder back.

A run folder holds ``config.json`` (env id, env and agent kwargs, seed, steps),
``metrics.csv`` (one row per training episode), ``eval.csv`` (one row per periodic
evaluation), ``curve.png`` and the checkpoint.
"""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

TEXTGYM_AGENTS = {"random": "RandomAgent", "tabular-q": "TabularQAgent", "dqn": "DQNAgent", "lm-ppo": "LMPPOAgent"}
SB3_AGENTS = {"sb3-ppo": "PPO", "sb3-dqn": "DQN", "maskable-ppo": "MaskablePPO"}
AGENTS = [*TEXTGYM_AGENTS, *SB3_AGENTS]
AGENT_DESCRIPTIONS = {
    "random": "uniformly random legal actions (the baseline)",
    "tabular-q": "textgym TabularQAgent: Q-learning with a table keyed by the observation",
    "dqn": "textgym DQNAgent: token-embedding Q-network, replay, target network, double DQN",
    "lm-ppo": "textgym LMPPOAgent: PPO on a causal LM, MLE warm start (TokenGen envs only)",
    "sb3-ppo": "Stable-Baselines3 PPO with textgym.sb3 token features",
    "sb3-dqn": "Stable-Baselines3 DQN with textgym.sb3 token features",
    "maskable-ppo": "sb3-contrib MaskablePPO (reads action_masks()) with token features",
}
MLE_EPOCHS = 4  # lm-ppo's default warm start; ``--agent-kwargs '{"mle_epochs": 0}'`` skips it


class SB3Agent:
    """An SB3 model behind textgym's ``act(obs, info)``, so ``agents.evaluate`` runs it.
    ``log`` holds its training episodes, as a textgym agent's does."""

    def __init__(self, model: Any, masked: bool, log: Any = None):
        self.model, self.masked, self.log = model, masked, log

    def act(self, obs: Any, info: dict | None = None, deterministic: bool = True) -> int:
        kwargs = {"action_masks": np.asarray(info["action_mask"], dtype=bool)} if self.masked and info else {}
        action, _ = self.model.predict(obs, deterministic=deterministic, **kwargs)
        return int(action)


class TrackedEnv(gym.Wrapper):
    """Feeds every step to an ``agents.base.EpisodeTracker``, so SB3 runs get the same
    progress bar, ``metrics.csv`` and per-episode callbacks as textgym agents."""

    def __init__(self, env: gym.Env):
        super().__init__(env)
        self.tracker: Any = None  # set once the model is built, so a bad argument shows no bar
        self.steps = 0

    def step(self, action: Any):
        obs, reward, terminated, truncated, info = self.env.step(action)
        if self.tracker is not None:
            self.tracker.step(self.steps, float(reward), terminated or truncated, info)
        self.steps += 1
        return obs, reward, terminated, truncated, info

    def action_masks(self) -> np.ndarray:
        return self.env.unwrapped.action_masks()


class PeriodicEvaluation:
    """Every ``every`` env steps, a greedy evaluation on a separate env, appended to
    ``eval.csv`` and printed above the progress bar."""

    def __init__(self, env: gym.Env, every: int, n_episodes: int, seed: int, path: Path):
        from agents import EpisodeLog

        self.env, self.every, self.n_episodes, self.seed = env, every, n_episodes, seed
        self.next_step = every
        self.log = EpisodeLog(path)

    def __call__(self, step: int, policy: Any) -> None:
        if step < self.next_step:
            return
        from tqdm.auto import tqdm

        from agents import evaluate

        self.next_step = (step // self.every + 1) * self.every
        scores = evaluate(policy, self.env, self.n_episodes, seed=self.seed)
        self.log.add({"step": step, **scores})
        tqdm.write(f"eval at {step:,} steps: {format_scores(scores)}")


def format_scores(scores: dict[str, float]) -> str:
    return ", ".join(f"{name} {value:.3f}" for name, value in scores.items())


def make_env(env_id: str, **kwargs: Any) -> gym.Env:
    """``gym.make``, with an unknown id named next to the textgym ids."""
    from envs_registry import ENVS

    if env_id.removeprefix("textgym:") not in gym.registry:
        raise ValueError(f"unknown env id {env_id!r}; textgym ids: {', '.join(ENVS)} (or any registered Gymnasium id)")
    return gym.make(env_id, **kwargs)


def _sb3_class(name: str) -> type:
    import sb3_contrib
    import stable_baselines3

    algo = SB3_AGENTS[name]
    return getattr(stable_baselines3, algo, None) or getattr(sb3_contrib, algo)


def checkpoint_path(out: Path, agent: str) -> Path:
    if agent in SB3_AGENTS:
        return out / "checkpoint.zip"
    return out / ("checkpoint" if agent == "lm-ppo" else "checkpoint.pt")


def train(env_id: str, agent: str, steps: int, seed: int, out: Path, env_kwargs: dict, agent_kwargs: dict,
          eval_every: int = 0, eval_episodes: int = 20, progress_bar: bool = True) -> Any:
    """Train ``agent`` on ``env_id`` and write the run folder ``out``; returns the trained
    policy (anything with ``act(obs, info)``). ``eval_every=0`` skips periodic evaluation."""
    import agents
    from agents.base import EpisodeLog, EpisodeTracker

    if agent not in AGENTS:
        raise ValueError(f"unknown agent {agent!r}; valid: {', '.join(AGENTS)}")
    env = make_env(env_id, **env_kwargs)
    out.mkdir(parents=True, exist_ok=True)
    for old in ("metrics.csv", "eval.csv"):
        (out / old).unlink(missing_ok=True)
    config = {"env": env_id, "env_kwargs": env_kwargs, "agent": agent, "agent_kwargs": agent_kwargs,
              "steps": steps, "seed": seed}
    _write_json(out / "config.json", config)
    evaluation = None
    if eval_every:
        evaluation = PeriodicEvaluation(make_env(env_id, **env_kwargs), eval_every, eval_episodes, seed + 10_000,
                                        out / "eval.csv")

    if agent in TEXTGYM_AGENTS:
        kwargs = dict(agent_kwargs)
        if agent == "lm-ppo":
            kwargs["model"] = warm_started_lm(env, kwargs.pop("mle_epochs", MLE_EPOCHS), seed, progress_bar)
        policy = getattr(agents, TEXTGYM_AGENTS[agent])(env, seed=seed, log_path=out / "metrics.csv", **kwargs)
        callback = None if evaluation is None else lambda learner, record: evaluation(record["step"], learner)
        policy.learn(steps, progress_bar=progress_bar, callback=callback)
        policy.save(checkpoint_path(out, agent))
    else:
        from textgym.sb3 import policy_kwargs

        policy = SB3Agent(None, masked=agent == "maskable-ppo", log=EpisodeLog(out / "metrics.csv"))
        callback = None if evaluation is None else lambda _, record: evaluation(record["step"], policy)
        kwargs = {"policy_kwargs": policy_kwargs(env), **agent_kwargs}
        tracked = TrackedEnv(env)
        try:
            policy.model = _sb3_class(agent)("MultiInputPolicy", tracked, seed=seed, verbose=0, **kwargs)
        except TypeError as err:  # an unknown or misspelt keyword
            raise ValueError(f"bad --agent-kwargs for {agent}: {err}") from None
        tracked.tracker = tracker = EpisodeTracker(policy, steps, progress_bar, callback)
        policy.model.learn(steps)
        tracker.close()
        policy.model.save(checkpoint_path(out, agent))
    plot_curve(out / "metrics.csv", out / "curve.png", out / "eval.csv", title=f"{agent} on {env_id}")
    return policy


def warm_started_lm(env: gym.Env, mle_epochs: int, seed: int, progress_bar: bool) -> Any:
    """lm-ppo's policy: a tiny GPT-2 sized to the env vocabulary, trained by MLE on the task."""
    import torch

    from agents.lm import pretrain_mle, tiny_causal_lm

    torch.manual_seed(seed)
    model = tiny_causal_lm(env.unwrapped.vocab)
    if mle_epochs:
        pretrain_mle(model, env.unwrapped.task, env.unwrapped.vocab, epochs=mle_epochs, seed=seed,
                     progress_bar=progress_bar)
    return model


def load_run(run: Path) -> tuple[Any, gym.Env, dict]:
    """The trained agent, a fresh env (ansi render) and the config of a run folder
    written by ``train``, or of the checkpoint inside one."""
    import agents

    if not run.exists():
        raise FileNotFoundError(f"no run folder or checkpoint at {run}")
    folder = run if (run / "config.json").is_file() else run.parent
    config_path = folder / "config.json"
    if not config_path.is_file():
        raise FileNotFoundError(f"no run at {run}: {config_path} is missing (train one with `textgym train`)")
    config = json.loads(config_path.read_text())
    env = make_env(config["env"], render_mode="ansi", **config["env_kwargs"])
    agent, path = config["agent"], checkpoint_path(folder, config["agent"])
    if not path.exists():
        raise FileNotFoundError(f"no checkpoint at {path}")
    if agent in SB3_AGENTS:
        return SB3Agent(_sb3_class(agent).load(path), masked=agent == "maskable-ppo"), env, config
    return getattr(agents, TEXTGYM_AGENTS[agent]).load(path, env=env), env, config


def plot_curve(metrics_csv: Path, png: Path, eval_csv: Path, title: str) -> None:
    """Training return against env steps (mean of 50 episodes) and the periodic
    evaluations' mean return; skipped without matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return
    steps, returns = _columns(metrics_csv, "step", "return")
    if not steps.size:
        return
    window = min(50, returns.size)
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(steps[window - 1:], np.convolve(returns, np.ones(window) / window, mode="valid"),
            label=f"training (mean of {window} episodes)")
    eval_steps, eval_returns = _columns(eval_csv, "step", "return_mean")
    if eval_steps.size:
        ax.plot(eval_steps, eval_returns, "o-", label="greedy evaluation")
    ax.set(title=title, xlabel="env steps", ylabel="episode return")
    ax.legend()
    fig.tight_layout()
    fig.savefig(png, dpi=100)
    plt.close(fig)


def _columns(path: Path, *names: str) -> list[np.ndarray]:
    if not path.is_file():
        return [np.array([]) for _ in names]
    with path.open(newline="", encoding="utf-8") as rows:
        records = list(csv.DictReader(rows))
    return [np.array([float(r[name]) for r in records]) for name in names]


def _write_json(path: Path, value: dict) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(value, indent=2) + "\n")
    os.replace(tmp, path)
