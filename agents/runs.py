"""What ``textgym train`` and ``textgym eval`` run: one table of agent names, training that
writes a reproducible run folder, and loading a run folder back without running its code.

A run folder holds ``config.json`` (env id, env and agent kwargs, seed, steps, torch
threads), ``metrics.csv`` (one row per training episode), ``eval.csv`` (one row per
periodic evaluation; for lm-ppo, step 0 is the evaluation after its warm start),
``warm_start.csv`` (lm-ppo: one row per warm-start epoch), ``curve.png`` and the
checkpoint: ``checkpoint.pt`` (tabular-q, dqn, random), ``checkpoint/`` (lm-ppo) or
``checkpoint.safetensors`` (the SB3 agents: policy weights only; the model is rebuilt
from ``config.json``).

Run folders are shared, so loading one never unpickles. SB3's own ``.zip`` archive
cloudpickles part of its ``data`` entry, and ``load`` would run whatever code that holds;
``load_run(..., trust_checkpoint=True)`` reads such an archive anyway, for runs you made.
"""

from __future__ import annotations

import csv
import json
import os
import pickle
import shutil
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
    "lm-ppo": "textgym LMPPOAgent: PPO on a transformers policy, all envs: supervised warm start, then PPO "
              "(models: train --help)",
    "sb3-ppo": "Stable-Baselines3 PPO with textgym.sb3 token features",
    "sb3-dqn": "Stable-Baselines3 DQN with textgym.sb3 token features",
    "maskable-ppo": "sb3-contrib MaskablePPO (reads action_masks()) with token features",
}
# lm-ppo's --agent-kwargs besides LMPPOConfig's fields: the model, and its warm start's arguments
LM_PPO_OPTIONS = ("model", "warm_start_epochs", "warm_start_batch_size", "warm_start_learning_rate",
                  "warm_start_head_learning_rate")
MLE_EPOCHS = 4  # lm-ppo's default warm start on TokenGen, where the LM learns to write the task from scratch
WARM_START_EPOCHS = 2  # and on NERTag and TokenEdit; ``{"warm_start_epochs": 0}`` skips it (PPO only)
TINY_MODEL_LEARNING_RATE = 1e-3  # warm start of the offline tiny model (random init); a pretrained one keeps 5e-5
CONFIG_FIELDS = {"env": str, "env_kwargs": dict, "agent": str, "agent_kwargs": dict, "seed": int}  # what eval reads
_JSON_KINDS = {str: "string", dict: "object", int: "integer"}
RUN_FILES = ("config.json", "metrics.csv", "eval.csv", "warm_start.csv", "curve.png", "checkpoint.pt", "checkpoint",
             "checkpoint.safetensors", "checkpoint.zip")
SB3_ARCHIVE = "checkpoint.zip"  # what SB3's ``model.save`` writes; read only with trust_checkpoint


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
        self.next_step = (step // self.every + 1) * self.every
        self.run(step, policy, f"eval at {step:,} steps")

    def run(self, step: int, policy: Any, title: str) -> None:
        """Evaluate now: a row of ``eval.csv`` and a line above the progress bar."""
        from tqdm.auto import tqdm

        from agents import evaluate

        scores = evaluate(policy, self.env, self.n_episodes, seed=self.seed)
        self.log.add({"step": step, **scores})
        tqdm.write(f"{title}: {format_scores(scores)}")


def format_scores(scores: dict[str, float]) -> str:
    return ", ".join(f"{name} {value:.3f}" for name, value in scores.items())


def make_env(env_id: Any, env_kwargs: Any = None, render_mode: str | None = None,
             source: str = "env_kwargs") -> gym.Env:
    """``gym.make`` of a textgym env. A bad id, a non-textgym env or a bad kwarg is a
    ``ValueError`` naming it; ``source`` says where the kwargs came from (``--env-kwargs``, a config)."""
    from gymnasium.envs.registration import load_env_creator

    from envs_registry import ENVS
    from textgym.envs import TextEnv

    if not isinstance(env_id, str) or env_id.removeprefix("textgym:") not in gym.registry:
        raise ValueError(f"unknown env id {env_id!r}; textgym ids: {', '.join(ENVS)}")
    entry_point = gym.spec(env_id.removeprefix("textgym:")).entry_point
    creator = load_env_creator(entry_point) if isinstance(entry_point, str) else entry_point
    if not (isinstance(creator, type) and issubclass(creator, TextEnv)):
        raise ValueError(f"{env_id} is not a textgym env (its agents read token observations and action masks); "
                         f"textgym ids: {', '.join(ENVS)}")
    env_kwargs = {} if env_kwargs is None else env_kwargs
    if not isinstance(env_kwargs, dict):
        raise ValueError(f"{source} must be a JSON object like {{\"reward_mode\": \"dense\"}}, got {env_kwargs!r}")
    try:
        return gym.make(env_id, **env_kwargs, **({} if render_mode is None else {"render_mode": render_mode}))
    except (TypeError, ValueError) as err:  # an unknown key, or a value the env rejects
        raise ValueError(f"bad {source} for {env_id}: {err}") from None


def check_agent(agent: Any) -> None:
    """A ``ValueError`` naming the valid agents (every agent runs on every textgym env)."""
    if not isinstance(agent, str) or agent not in AGENTS:
        raise ValueError(f"unknown agent {agent!r}; valid: {', '.join(AGENTS)}")


def _sb3_class(name: str) -> type:
    import sb3_contrib
    import stable_baselines3

    algo = SB3_AGENTS[name]
    return getattr(stable_baselines3, algo, None) or getattr(sb3_contrib, algo)


def build_sb3_model(agent: str, env: gym.Env, seed: int, agent_kwargs: dict, source: str = "agent_kwargs",
                    **overrides: Any) -> Any:
    """The SB3 model ``train`` trains, built the same way when a run is loaded. A
    ``policy_kwargs`` entry overrides ``textgym.sb3.policy_kwargs(env)``'s (``encoder``,
    ``embed_dim``, ``net_arch``, ...) instead of dropping the token features."""
    from textgym.sb3 import policy_kwargs

    try:
        kwargs = {**agent_kwargs, "policy_kwargs": policy_kwargs(env, **agent_kwargs.get("policy_kwargs", {})),
                  **overrides}
        return _sb3_class(agent)("MultiInputPolicy", env, seed=seed, verbose=0, **kwargs)
    except (TypeError, ValueError, AssertionError) as err:  # SB3 checks its arguments with asserts
        raise ValueError(f"bad {source} {json.dumps(agent_kwargs)} for {agent}: {err or type(err).__name__}") from None


def build_textgym_agent(agent: str, env: gym.Env, seed: int, agent_kwargs: dict, log_path: Path | None,
                        source: str = "agent_kwargs") -> tuple[Any, dict | None]:
    """The agent, and for lm-ppo the arguments of its ``warm_start`` (None: no warm start)."""
    import agents

    kwargs, warm_start = dict(agent_kwargs), None
    try:
        if agent == "lm-ppo":
            kwargs, warm_start = lm_ppo_kwargs(env, kwargs)
        return getattr(agents, TEXTGYM_AGENTS[agent])(env, seed=seed, log_path=log_path, **kwargs), warm_start
    except (TypeError, ValueError, ImportError) as err:  # ImportError: a model shortcut's package is not installed
        raise ValueError(f"bad {source} {json.dumps(agent_kwargs)} for {agent}: {err}") from None


def lm_ppo_kwargs(env: gym.Env, agent_kwargs: dict) -> tuple[dict, dict | None]:
    """lm-ppo's agent kwargs split into ``LMPPOAgent``'s (``model`` and the LMPPOConfig fields)
    and its warm start's (``LMPPOAgent.warm_start``'s arguments; None for ``warm_start_epochs``
    0). ``mle_epochs`` is the old name of ``warm_start_epochs``."""
    import dataclasses

    from agents import LMPPOAgent
    from agents.base import check_range
    from agents.lm_ppo import has_references
    from textgym.envs import TokenGenEnv
    from textgym.models import MINILM_NAMES, SMOLLM2_NAMES

    kwargs = dict(agent_kwargs)
    if "mle_epochs" in kwargs:
        if "warm_start_epochs" in kwargs:
            raise ValueError("mle_epochs is the old name of warm_start_epochs: give one of them")
        kwargs["warm_start_epochs"] = kwargs.pop("mle_epochs")
    valid = [*LM_PPO_OPTIONS, *(field.name for field in dataclasses.fields(LMPPOAgent.Config))]
    unknown = [key for key in kwargs if key not in valid]
    if unknown:
        raise ValueError(f"unknown key {', '.join(map(repr, unknown))}; valid: {', '.join(valid)}")
    model, token_gen = kwargs.get("model"), isinstance(env.unwrapped, TokenGenEnv)
    if model is not None:
        shortcuts = (*MINILM_NAMES, *SMOLLM2_NAMES)
        if not isinstance(model, str) or not (model in shortcuts or Path(model).is_dir()):
            raise ValueError(f"model must be null (a tiny model, offline), {', '.join(map(repr, shortcuts))} or a "
                             f"local transformers directory, got {model!r}")
        if token_gen and model in shortcuts:
            raise ValueError(f"model {model!r} on TokenGen: its actions are the env vocabulary's tokens, so a pretrained "
                             "LM needs the env made with the LM's tokenizer as vocab, which textgym train does not do; "
                             "give model null (a tiny GPT-2 over the env's vocabulary), or use the Python API "
                             "(agents.lm.load_causal_lm, then the env with vocab=...)")
    # a reference-free task (sentences to compress, say) has nothing to warm-start on
    epochs = kwargs.pop("warm_start_epochs", (MLE_EPOCHS if token_gen else WARM_START_EPOCHS) if has_references(env) else 0)
    warm_start = {"epochs": check_range("warm_start_epochs", epochs, 0, integer=True)}
    for name, low in (("batch_size", 1), ("learning_rate", 0), ("head_learning_rate", 0)):
        if f"warm_start_{name}" in kwargs:
            value = kwargs.pop(f"warm_start_{name}")
            warm_start[name] = check_range(f"warm_start_{name}", value, low, integer=name == "batch_size",
                                           low_open=low == 0)
    if model is None:
        warm_start.setdefault("learning_rate", TINY_MODEL_LEARNING_RATE)
    return kwargs, warm_start if warm_start["epochs"] else None


def run_warm_start(policy: Any, settings: dict, out: Path, evaluation: PeriodicEvaluation | None,
                   progress_bar: bool, write: bool = True) -> None:
    """lm-ppo's supervised phase: ``warm_start``, each epoch's loss to ``warm_start.csv``,
    then (with periodic evaluation) an evaluation, step 0 of ``eval.csv``; with ``write``
    False (the other ranks of a data-parallel run), the warm start alone."""
    from tqdm.auto import tqdm

    from agents import EpisodeLog

    policy.warm_start(**settings, progress_bar=progress_bar)
    if not write:
        return
    log = EpisodeLog(out / "warm_start.csv")
    for record in policy.warm_start_log.records:
        log.add(record)
    losses = " -> ".join(f"{record['loss']:.3f}" for record in log.records)
    tqdm.write(f"warm start: {settings['epochs']} epoch{'s' * (settings['epochs'] > 1)}, loss per step {losses}")
    if evaluation is not None:
        evaluation.run(0, policy, "eval after warm start")


def sb3_steps(model: Any, steps: int) -> int:
    """The env steps ``model.learn(steps)`` really takes: SB3 finishes the rollout (on-policy)
    or the ``train_freq`` steps (off-policy) that crosses ``steps``."""
    from stable_baselines3.common.on_policy_algorithm import OnPolicyAlgorithm
    from stable_baselines3.common.type_aliases import TrainFrequencyUnit

    if isinstance(model, OnPolicyAlgorithm):
        chunk = model.n_steps * model.n_envs
    elif model.train_freq.unit == TrainFrequencyUnit.STEP:
        chunk = model.train_freq.frequency * model.n_envs
    else:  # episodes: the overshoot is unknown in advance
        chunk = 1
    return -(-steps // chunk) * chunk


def check_run_folder(out: Path, overwrite: bool) -> None:
    """``out`` must be new, empty, or (with ``overwrite``) a run folder."""
    if out.exists() and not out.is_dir():
        raise ValueError(f"{out} is a file; give a new folder to write the run to")
    if (out / "config.json").exists():
        if not overwrite:
            raise ValueError(f"{out} already holds a run (config.json); pass --overwrite to replace it, "
                             "or give another --out")
    elif out.is_dir() and any(out.iterdir()):
        raise ValueError(f"{out} is a folder of other files, not a run folder; give a new or empty folder")


def train(env_id: str, agent: str, steps: int, seed: int, out: Path, env_kwargs: dict, agent_kwargs: dict,
          eval_every: int = 0, eval_episodes: int = 20, progress_bar: bool = True, overwrite: bool = False) -> Any:
    """Train ``agent`` on ``env_id`` and write the run folder ``out``; returns the trained
    policy (anything with ``act(obs, info)``). ``eval_every=0`` skips periodic evaluation.
    ``out`` must be new or empty; ``overwrite=True`` replaces the run already in it. lm-ppo
    warm-starts first (see ``lm_ppo_kwargs``); ``steps=0`` then runs the warm start alone."""
    import torch

    from agents.base import EpisodeLog, EpisodeTracker

    if isinstance(eval_every, bool) or not isinstance(eval_every, int) or eval_every < 0:
        raise ValueError(f"eval_every must be an int >= 0 (0: no periodic evaluation), got {eval_every!r}")
    check_agent(agent)
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < (0 if agent == "lm-ppo" else 1):
        raise ValueError(f"steps must be an int >= 1 (lm-ppo: >= 0, 0 for its warm start alone), got {steps!r}")
    out = Path(out)
    check_run_folder(out, overwrite)
    env = make_env(env_id, env_kwargs, source="--env-kwargs")
    if not isinstance(agent_kwargs, dict):
        raise ValueError(f"--agent-kwargs must be a JSON object, got {agent_kwargs!r}")
    evaluation = None
    if eval_every:
        evaluation = PeriodicEvaluation(make_env(env_id, env_kwargs), eval_every, eval_episodes, seed + 10_000,
                                        out / "eval.csv")

    warm_start = None
    if agent in TEXTGYM_AGENTS:
        policy, warm_start = build_textgym_agent(agent, env, seed, agent_kwargs, out / "metrics.csv",
                                                 source="--agent-kwargs")
        if not steps and warm_start is None:
            raise ValueError("steps 0 runs lm-ppo's warm start alone, and warm_start_epochs is 0: nothing to train")
    else:
        tracked = TrackedEnv(env)
        policy = SB3Agent(build_sb3_model(agent, tracked, seed, agent_kwargs, source="--agent-kwargs"),
                          masked=agent == "maskable-ppo", log=EpisodeLog(out / "metrics.csv"))
    # lm-ppo under torchrun: every rank trains, rank 0 alone writes the run folder and evaluates
    # (every rank has checked the folder already: building the agent synchronised them)
    main = agent != "lm-ppo" or policy.ranks.is_main
    if not main:
        evaluation = None
    if main:  # the arguments are good: only now replace an old run
        for name in RUN_FILES:
            old = out / name
            if old.is_dir():
                shutil.rmtree(old)
            else:
                old.unlink(missing_ok=True)
        out.mkdir(parents=True, exist_ok=True)
        config = {"env": env_id, "env_kwargs": env_kwargs, "agent": agent, "agent_kwargs": agent_kwargs,
                  "steps": steps, "seed": seed, "threads": torch.get_num_threads()}
        _write_json(out / "config.json", config)

    if agent in TEXTGYM_AGENTS:
        if warm_start is not None:
            run_warm_start(policy, warm_start, out, evaluation, progress_bar, write=main)
        if steps:
            callback = None if evaluation is None else lambda learner, record: evaluation(record["step"], learner)
            policy.learn(steps, progress_bar=progress_bar, callback=callback)
        policy.save(checkpoint_path(out, agent))  # lm-ppo: rank 0 writes it, the others wait
        if not main:
            return policy
    else:
        from safetensors.torch import save_model

        callback = None if evaluation is None else lambda _, record: evaluation(record["step"], policy)
        tracked.tracker = tracker = EpisodeTracker(policy, sb3_steps(policy.model, steps), progress_bar, callback)
        policy.model.learn(steps)
        tracker.close()
        save_model(policy.model.policy, str(checkpoint_path(out, agent)))
    plot_curve(out / "metrics.csv", out / "curve.png", out / "eval.csv", title=f"{agent} on {env_id}")
    return policy


def checkpoint_path(out: Path, agent: str) -> Path:
    if agent in SB3_AGENTS:
        return out / "checkpoint.safetensors"
    return out / ("checkpoint" if agent == "lm-ppo" else "checkpoint.pt")


def read_config(run: Path) -> tuple[Path, dict]:
    """The run folder of ``run`` (the folder, or a file inside it) and its checked config."""
    run = Path(run)
    if not run.exists():
        raise FileNotFoundError(f"no run folder or checkpoint at {run}")
    inside_a_run = not (run / "config.json").is_file() and (run.parent / "config.json").is_file()
    folder = run.parent if run.is_file() or inside_a_run else run  # a checkpoint file, or lm-ppo's folder
    path = folder / "config.json"
    if not path.is_file():
        raise FileNotFoundError(f"{folder} is not a run folder: no config.json (`textgym train` writes one)")
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ValueError(f"{path} is not valid JSON: {err}") from None
    if not isinstance(config, dict):
        raise ValueError(f"{path} must hold a JSON object, got a {type(config).__name__}")
    for key, kind in CONFIG_FIELDS.items():
        if key not in config:
            raise ValueError(f"{path} has no {key!r}; a run's config names {', '.join(CONFIG_FIELDS)}")
        value = config[key]
        if not isinstance(value, kind) or isinstance(value, bool):
            raise ValueError(f"{path}: {key!r} must be a JSON {_JSON_KINDS[kind]}, got {value!r}")
    if config["agent"] not in AGENTS:
        raise ValueError(f"{path}: unknown agent {config['agent']!r}; valid: {', '.join(AGENTS)}")
    return folder, config


def load_run(run: Path, trust_checkpoint: bool = False) -> tuple[Any, gym.Env, dict]:
    """The trained agent, a fresh env (ansi render) and the config of a run folder
    written by ``train``, or of the checkpoint inside one. Nothing is unpickled, unless
    ``trust_checkpoint`` lets SB3 load its own archive (``checkpoint.zip``)."""
    import agents

    folder, config = read_config(run)
    source = f"env_kwargs in {folder / 'config.json'}"
    env = make_env(config["env"], config["env_kwargs"], render_mode="ansi", source=source)
    agent = config["agent"]
    if agent in SB3_AGENTS:
        return SB3Agent(_load_sb3(folder, config, env, trust_checkpoint), masked=agent == "maskable-ppo"), env, config
    path = checkpoint_path(folder, agent)
    if not path.exists():
        raise FileNotFoundError(f"no checkpoint at {path}")
    try:
        return getattr(agents, TEXTGYM_AGENTS[agent]).load(path, env=env), env, config
    except (EOFError, KeyError, RuntimeError, pickle.UnpicklingError) as err:  # torch.load on a damaged file
        first_line = next(iter(str(err).splitlines()), "")
        raise ValueError(f"{path} is not a readable {agent} checkpoint ({type(err).__name__}: {first_line})") from None


def _load_sb3(folder: Path, config: dict, env: gym.Env, trust_checkpoint: bool) -> Any:
    """The SB3 model of a run: rebuilt from the config, its policy weights read from
    safetensors (tensors only). SB3's archive is loaded by SB3 only when trusted."""
    from safetensors import SafetensorError
    from safetensors.torch import load_model

    agent, archive = config["agent"], folder / SB3_ARCHIVE
    if trust_checkpoint:
        if not archive.is_file():
            raise FileNotFoundError(f"--trust-checkpoint loads SB3's archive, and there is none at {archive}")
        try:
            return _sb3_class(agent).load(archive, env=env, device="cpu")
        except Exception as err:  # SB3's loader on a file from elsewhere: any failure is the file's
            raise ValueError(f"SB3 could not load {archive}: {type(err).__name__}: {err}") from None
    path = checkpoint_path(folder, agent)
    if not path.is_file():
        hint = (f"; {archive} is an SB3 archive, which can run code when loaded: pass --trust-checkpoint "
                "only if you trust whoever made it") if archive.is_file() else ""
        raise FileNotFoundError(f"no checkpoint at {path}{hint}")
    # acting needs no replay buffer: keep sb3-dqn's at one transition instead of a million
    buffer = {"buffer_size": 1} if agent == "sb3-dqn" else {}
    model = build_sb3_model(agent, env, config["seed"], config["agent_kwargs"],
                            source=f"agent_kwargs in {folder / 'config.json'}", **buffer)
    try:
        load_model(model.policy, str(path), device="cpu")
    except (SafetensorError, RuntimeError) as err:
        message = " ".join(str(err).split())
        raise ValueError(f"{path} does not fit the {agent} policy of {folder / 'config.json'}: {message}") from None
    return model


def can_plot() -> bool:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


def plot_curve(metrics_csv: Path, png: Path, eval_csv: Path, title: str) -> None:
    """Training return against env steps (mean of 50 episodes) and the periodic
    evaluations' mean return; skipped without matplotlib (see ``can_plot``)."""
    if not can_plot():
        return
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

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
