"""The interface every textgym agent shares, and the helpers their loops use.

An agent is built on an env, learns with ``learn(total_timesteps)``, acts in the standard
``reset()/step()`` loop with ``act(obs, info)``, and round-trips through ``save``/``load``.
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import json
import math
import numbers
import os
import random
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np
import torch

Callback = Callable[["Agent", dict], "bool | None"]


def check_range(name: str, value: Any, low: float | None = None, high: float | None = None, *,
                integer: bool = False, low_open: bool = False, high_open: bool = False) -> int | float:
    """``value`` as a plain ``int`` (``integer=True``) or finite ``float``, checked against
    ``[low, high]`` (``low_open``/``high_open`` leave an end out; ``None`` is unbounded).

    For configs' ``__post_init__``: numpy numbers are accepted, bools are not. A wrong type
    is a ``TypeError`` and a value out of range a ``ValueError``; both name ``name``.
    """
    kind = "an int" if integer else "a number" if low is not None and high is not None else "a finite number"
    if integer and low == 1 and high is None and not low_open:
        kind, bounds = "a positive int", ""  # the wording textgym's envs use
    elif low is not None and high is not None:
        bounds = f" in {'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
    elif low is not None:
        bounds = f" {'>' if low_open else '>='} {low:g}"
    elif high is not None:
        bounds = f" {'<' if high_open else '<='} {high:g}"
    else:
        bounds = ""
    message = f"{name} must be {kind}{bounds}, got {value!r}"
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral if integer else numbers.Real):
        raise TypeError(message)
    try:
        number = int(value) if integer else float(value)
    except OverflowError:  # an int too big for a float
        raise ValueError(message) from None
    if (not math.isfinite(number)
            or low is not None and (number <= low if low_open else number < low)
            or high is not None and (number >= high if high_open else number > high)):
        raise ValueError(message)
    return number


def check_choice(name: str, value: Any, choices: Any) -> str:
    """``value`` if it is one of the strings ``choices``; else a ``ValueError`` naming both."""
    if isinstance(value, str) and value in choices:
        return value
    raise ValueError(f"unknown {name} {value!r}; valid: {list(choices)}")


def check_bool(name: str, value: Any) -> bool:
    """``value`` as a plain ``bool``; a ``TypeError`` for anything but True/False."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be True or False, got {value!r}")
    return bool(value)


def seed_everything(seed: int) -> np.random.Generator:
    """Seed random, numpy and torch; returns a numpy generator for the agent's own draws."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    return np.random.default_rng(seed)


def legal_mask(info: dict | None, n_actions: int) -> np.ndarray:
    """The legal actions of a step as bool, from ``info["action_mask"]`` (all legal if absent)."""
    if info is None or "action_mask" not in info:
        return np.ones(n_actions, dtype=bool)
    return np.asarray(info["action_mask"], dtype=bool)


def masked_argmax(values: np.ndarray, mask: np.ndarray, rng: np.random.Generator | None = None) -> int:
    """Argmax over legal actions; ties broken at random when ``rng`` is given, else lowest id."""
    masked = np.where(mask, values, -np.inf)
    if rng is None:
        return int(np.argmax(masked))
    best = np.flatnonzero(masked == masked.max())
    return int(best[rng.integers(best.size)]) if best.size > 1 else int(best[0])


def random_legal(mask: np.ndarray, rng: np.random.Generator) -> int:
    legal = np.flatnonzero(mask)
    return int(legal[rng.integers(legal.size)])


def linear_schedule(start: float, end: float, fraction: float, progress: float) -> float:
    """Goes from ``start`` to ``end`` over the first ``fraction`` of training, then stays."""
    if fraction <= 0:
        return end
    return start + (end - start) * min(progress / fraction, 1.0)


def exponential_schedule(start: float, end: float, fraction: float, progress: float) -> float:
    """Decays geometrically from ``start`` to ``end`` over the first ``fraction`` of training."""
    if fraction <= 0 or start <= 0 or end <= 0:
        return end
    return start * (end / start) ** min(progress / fraction, 1.0)


SCHEDULES = {"linear": linear_schedule, "exponential": exponential_schedule}


def space_signature(env: gym.Env) -> str:
    """What a checkpoint must match to be loaded into an env."""
    return f"observation={env.observation_space}; action={env.action_space}"


def payload_digest(payload: dict) -> str:
    """sha256 of a checkpoint payload's content, in order: each tensor's dtype, shape and
    bytes, and the type and repr of every other value."""
    digest = hashlib.sha256()

    def feed(value: Any) -> None:
        if isinstance(value, torch.Tensor):
            value = value.detach().cpu().contiguous()
            digest.update(f"tensor {value.dtype} {tuple(value.shape)}:".encode())
            digest.update(value.reshape(-1).view(torch.uint8).numpy().tobytes())
        elif isinstance(value, dict):
            digest.update(f"dict {len(value)}:".encode())
            for key, item in value.items():
                feed(key)
                feed(item)
        elif isinstance(value, (list, tuple)):
            digest.update(f"{type(value).__name__} {len(value)}:".encode())
            for item in value:
                feed(item)
        else:
            digest.update(f"{type(value).__name__} {value!r};".encode())

    feed(payload)
    return digest.hexdigest()


def save_checkpoint(path: str | os.PathLike, payload: dict) -> None:
    """Write ``payload`` (tensors and plain values) and its ``sha256`` digest to ``path``.

    The file is written beside ``path`` as ``.NAME.tmp``, synced and renamed over ``path``,
    so a crash mid-save leaves the old checkpoint intact. A save killed outright leaves its
    temporary behind; the temporary's name is fixed, so the next save replaces it.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        with tmp.open("wb") as out:
            torch.save({**payload, "sha256": payload_digest(payload)}, out)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def load_checkpoint(path: str | os.PathLike) -> dict:
    """The payload ``save_checkpoint`` wrote, tensors only (``weights_only``), on CPU. A
    ``ValueError`` naming ``path`` if the file is empty, unreadable or fails its digest."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}")
    if path.stat().st_size == 0:
        raise ValueError(f"checkpoint {path} is empty")
    try:
        payload = torch.load(path, weights_only=True, map_location="cpu")
    except Exception as error:
        # torch's first sentence only: the rest advises weights_only=False, which is unsafe here
        reason = (str(error).strip().splitlines() or [""])[0].split(". ")[0]
        raise ValueError(f"checkpoint {path} is corrupted or not a checkpoint "
                         f"(torch.load: {type(error).__name__}: {reason})") from error
    if not isinstance(payload, dict) or "sha256" not in payload:
        raise ValueError(f"checkpoint {path} has no sha256 digest: save_checkpoint did not write it")
    if payload.pop("sha256") != payload_digest(payload):
        raise ValueError(f"checkpoint {path} is corrupted (digest mismatch)")
    return payload


class EpisodeLog:
    """Episode records (return, length, end metrics, steps/s) for learning curves.

    Records stay in ``.records``; with ``path`` they are also appended to a ``.csv`` or
    ``.jsonl`` file, and with ``writer`` (a TensorBoard ``SummaryWriter`` or anything with
    ``add_scalar``) logged as ``charts/...`` scalars.
    """

    def __init__(self, path: str | os.PathLike | None = None, writer: Any = None):
        self.path = Path(path) if path is not None else None
        if self.path is not None and self.path.suffix not in (".csv", ".jsonl"):
            raise ValueError(f"log path must end in .csv or .jsonl, got {self.path.name!r}")
        self.writer = writer
        self.records: list[dict] = []
        self._csv_fields: list[str] | None = None

    def add(self, record: dict) -> None:
        self.records.append(record)
        if self.writer is not None:
            for key, value in record.items():
                if key != "step":
                    self.writer.add_scalar(f"charts/{key}", value, record["step"])
        if self.path is None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if self.path.suffix == ".jsonl":
            with self.path.open("a", encoding="utf-8") as out:
                out.write(json.dumps(record) + "\n")
            return
        new_file = self._csv_fields is None
        if new_file:
            self._csv_fields = list(record)
        with self.path.open("w" if new_file else "a", newline="", encoding="utf-8") as out:
            writer = csv.DictWriter(out, fieldnames=self._csv_fields, extrasaction="ignore")
            if new_file:
                writer.writeheader()
            writer.writerow(record)


class EpisodeTracker:
    """Turns the step stream of ``learn()`` into episode records, a progress bar and
    callback calls, so each agent's loop stays about the algorithm."""

    def __init__(self, agent: Agent, total_timesteps: int, progress_bar: bool, callback: Callback | None):
        self.agent, self.callback = agent, callback
        self.start_time = time.perf_counter()
        self.episode_return = 0.0
        self.episode_length = 0
        self.recent: list[tuple[float, dict]] = []  # (return, end metrics) of the last 100 episodes
        self.bar = None
        if progress_bar:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=total_timesteps, desc=type(agent).__name__, unit="step")

    def step(self, global_step: int, reward: float, done: bool, info: dict) -> bool:
        """Record one env step; returns False when the callback asks to stop."""
        self.episode_return += reward
        self.episode_length += 1
        if self.bar is not None:
            self.bar.update(1)
        if not done:
            return True
        record = {
            "step": global_step + 1,
            "return": self.episode_return,
            "length": self.episode_length,
            **{f"metric/{k}": v for k, v in info.get("metrics", {}).items()},
            "steps_per_second": (global_step + 1) / (time.perf_counter() - self.start_time),
        }
        self.agent.log.add(record)
        self.recent = [*self.recent[-99:], (self.episode_return, info.get("metrics", {}))]
        self.episode_return, self.episode_length = 0.0, 0
        if self.bar is not None:
            self.bar.set_postfix(self.running_means(), refresh=False)
        return self.callback is None or self.callback(self.agent, record) is not False

    def advance(self, n_steps: int) -> None:
        """Count ``n_steps`` taken elsewhere (by the other ranks of a data-parallel run) on the
        progress bar; no episode is recorded."""
        if self.bar is not None and n_steps:
            self.bar.update(n_steps)

    def running_means(self) -> dict[str, str]:
        """Mean return and mean main end metric (the first one the env reports) of the
        last 100 episodes, for the progress bar."""
        means = {"return": f"{np.mean([r for r, _ in self.recent]):.3f}"}
        metric = next(iter(self.recent[-1][1]), None)
        if metric is not None:
            means[metric] = f"{np.mean([m[metric] for _, m in self.recent if metric in m]):.3f}"
        return means

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


CHECKPOINT_KEYS = ("agent", "config", "seed", "num_timesteps", "spaces", "state")  # what Agent.save writes


class Agent(ABC):
    """Base class. Subclasses define ``Config`` (a dataclass of hyperparameters with
    defaults), ``learn``, ``act`` and the ``_state``/``_load_state`` pair for checkpoints."""

    Config: ClassVar[type]

    def __init__(self, env: gym.Env, seed: int = 0, log_path: str | os.PathLike | None = None,
                 writer: Any = None, **hyperparameters: Any):
        if not isinstance(env.action_space, gym.spaces.Discrete):
            raise ValueError(f"{type(self).__name__} needs a Discrete action space, got {env.action_space}")
        valid = [f.name for f in dataclasses.fields(self.Config)]
        unknown = sorted(set(hyperparameters) - set(valid))
        if unknown:
            raise ValueError(f"unknown hyperparameters {unknown} for {type(self).__name__}; valid: {valid}")
        self.env = env
        self.seed = check_range("seed", seed, 0, integer=True)
        self.config = self.Config(**hyperparameters)
        self.n_actions = int(env.action_space.n)
        self.rng = seed_everything(self.seed)
        self.log = EpisodeLog(log_path, writer)
        self.num_timesteps = 0

    @abstractmethod
    def learn(self, total_timesteps: int, progress_bar: bool = False, callback: Callback | None = None) -> Agent:
        """Train for ``total_timesteps`` env steps. ``callback(agent, episode_record)`` runs
        after every episode; returning False stops training."""

    @abstractmethod
    def act(self, obs: Any, info: dict | None = None, deterministic: bool = True) -> int:
        """The action for ``obs``, always legal under ``info["action_mask"]``."""

    @abstractmethod
    def _state(self) -> dict:
        """Learned state as tensors and plain Python values (for ``weights_only`` loading)."""

    @abstractmethod
    def _load_state(self, state: dict) -> None: ...

    def save(self, path: str | os.PathLike) -> None:
        save_checkpoint(path, {
            "agent": type(self).__name__,
            "config": dataclasses.asdict(self.config),
            "seed": self.seed,
            "num_timesteps": self.num_timesteps,
            "spaces": space_signature(self.env),
            "state": self._state(),
        })

    @classmethod
    def load(cls, path: str | os.PathLike, env: gym.Env | None = None) -> Agent:
        """Load a checkpoint written by ``save``. ``env`` is required and must have the
        spaces the agent was trained on."""
        payload = load_checkpoint(path)
        missing = [key for key in CHECKPOINT_KEYS if key not in payload]
        if missing:
            raise ValueError(f"checkpoint {path} lacks {missing}: Agent.save did not write it")
        if payload["agent"] != cls.__name__:
            raise ValueError(f"{path} holds a {payload['agent']} checkpoint, not a {cls.__name__} one")
        if env is None:
            raise ValueError(f"{cls.__name__}.load needs env=: the env the agent will act in")
        if space_signature(env) != payload["spaces"]:
            raise ValueError(
                f"{path} was trained on different spaces:\n  checkpoint: {payload['spaces']}\n"
                f"  env:        {space_signature(env)}"
            )
        try:
            agent = cls(env, seed=payload["seed"], **payload["config"])
            agent.num_timesteps = check_range("num_timesteps", payload["num_timesteps"], 0, integer=True)
            agent._load_state(payload["state"])
        except (KeyError, RuntimeError, TypeError, ValueError) as error:  # a tampered config or state
            detail = f"no {error} entry" if isinstance(error, KeyError) else str(error)
            raise ValueError(f"checkpoint {path} does not make a {cls.__name__}: {detail}") from error
        return agent

    def _check_timesteps(self, total_timesteps: int) -> int:
        return check_range("total_timesteps", total_timesteps, 1, integer=True)


def evaluate(agent: Agent, env: gym.Env, n_episodes: int = 100, seed: int = 0,
             deterministic: bool = True) -> dict[str, float]:
    """Run ``n_episodes`` (seeded ``seed``, ``seed + 1``, ...) and return ``return_mean``,
    ``return_std``, ``length_mean`` and the mean of each end metric."""
    n_episodes = check_range("n_episodes", n_episodes, 1, integer=True)
    seed = check_range("seed", seed, 0, integer=True)
    returns, lengths, metrics = [], [], []
    for episode in range(n_episodes):
        obs, info = env.reset(seed=seed + episode)
        total, length, done = 0.0, 0, False
        while not done:
            obs, reward, terminated, truncated, info = env.step(agent.act(obs, info, deterministic=deterministic))
            total += reward
            length += 1
            done = terminated or truncated
        returns.append(total)
        lengths.append(length)
        metrics.append(info.get("metrics", {}))
    result = {"return_mean": float(np.mean(returns)), "return_std": float(np.std(returns)),
              "length_mean": float(np.mean(lengths))}
    for name in metrics[0]:
        result[name] = float(np.mean([m[name] for m in metrics]))
    return result
