"""PPO on a transformers LM policy (Ziegler et al., 2019; Stiennon et al., 2020) for every
textgym env, with a supervised warm start, an optional NLPO-style action mask (Ramamurthy
et al., 2023), an SCST baseline (Rennie et al., 2017), a group baseline (GRPO's, Shao et al.,
2024) and LoRA adapters (Hu et al., 2021) through peft.

The pieces, one module each: the *policy* (``agents.lm_policy``: the model, the action
heads of its env's text view, a value head), the env's *text view* (``agents.text_views``:
what the model reads, and how its outputs map to actions), the *rollout*
(``agents.lm_rollout``: batched episodes through ``env.step``) and *PPO* (``agents.ppo``).
A frozen reference pi_ref (a copy of the policy, heads included, taken when the agent is
built and again after ``warm_start``) keeps pi close to what it was:

    r_t   = r_env_t - beta * kl_t,  kl_t = log pi_L(a_t|s_t) - log pi_ref_L(a_t|s_t)      (k1)
                                  or kl_t = (rho - 1) - log rho, rho = pi_ref_L / pi_L      (k3)
    beta  <- beta * (1 + clip(KL / KL_target - 1, -0.2, 0.2) * n_episodes / horizon)     (adaptive)
    A_t   = GAE(gamma, lambda) of r_t with V from the value head,
            or G_t - R_greedy (self-critical: the greedy rollout's env return as baseline),
            or (G_0 - mean_g G_0) [/ std_g G_0] at every step (group: G episodes of one prompt, no critic)
    L     = E[max(-A ratio, -A clip(ratio, 1 - eps, 1 + eps))]
            + c_v E[max((V - R)^2, (V_old + clip(V - V_old, -eps_v, eps_v) - R)^2)] / 2 - c_e H

``kl_penalty="loss"`` moves the penalty from the rewards to the loss, as GRPO does: r_t =
r_env_t, and L gains beta E_t[KL(pi_L || pi_ref_L)(s_t)], the exact KL at each visited state.
A KL in the rewards charges every sampled token, so ending an episode early pays; in the
loss it pulls each state's distribution toward pi_ref and leaves the returns alone.

Masks: pi samples among the env's legal actions (``info["action_mask"]``), narrowed to the
top-k / top-p actions of the reference (or of a lagged copy of pi); ratio, entropy and KL
use that masked distribution pi_L(a) = pi(a) / pi(L) on the step's legal set L. The
reference is renormalised over the same L, pi_ref_L(a) = pi_ref(a) / pi_ref(L), so that
kl_t estimates KL(pi_L || pi_ref_L) >= 0 without bias, and is 0 while pi = pi_ref. (Leaving
pi_ref unnormalised would add the constant -log pi_ref(L) per step: a penalty for the mask,
not for drift.) The reward uses kl_t; the adaptive controller and ``charts/kl`` use the
exact KL at each visited state, sum_a pi_L(a) log(pi_L(a) / pi_ref_L(a)).

Episodes end when the env says so; nothing is bootstrapped after an episode's last step.

LoRA (``lora_r > 0``): the trunk's weights freeze and low-rank adapters train (by default on
peft's default modules for the model type and, on TokenGen, the LM head); the reference
is the same trunk with its adapters disabled (no second copy) and the value head reads the
adapted trunk. A checkpoint then holds the adapters and heads only; ``load`` takes the base
model again (``model=``, or the name or directory the agent was built from).
"""

from __future__ import annotations

import copy
import dataclasses
import json
import math
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from torch import nn

from agents import ppo
from agents.base import Agent, Callback, EpisodeLog, EpisodeTracker, check_range, legal_mask, space_signature
from agents.checkpoint_dirs import checkpoint_sibling, file_sha256, heal_checkpoint_dir
from agents.distributed import Ranks, rank_device, wants_distributed
from agents.dqn import resolve_device
from agents.env_batch import EnvBatch
from agents.lm_policy import LMPolicy, build_policy, trained_weights, weights_fingerprint
from agents.lm_rollout import Rollout, Sampler, collect

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16}
CHOICES = {"advantage": ("gae", "self-critical", "group"), "kl_penalty": ("reward", "loss"), "kl_estimator": ("k1", "k3"),
           "kl_controller": ("fixed", "adaptive"),
           "value_model": ("shared", "separate"), "mask_model": ("reference", "lagged"), "dtype": tuple(DTYPES)}
# field: (type, lowest, highest or None for no bound, whether the lowest value itself is excluded)
RANGES = {
    "learning_rate": (float, 0, None, True), "num_envs": (int, 1, None, False), "n_epochs": (int, 1, None, False),
    "n_minibatches": (int, 1, None, False), "gamma": (float, 0, 1, False), "gae_lambda": (float, 0, 1, False),
    "clip_coef": (float, 0, None, True), "clip_value": (float, 0, None, True), "vf_coef": (float, 0, None, False),
    "ent_coef": (float, 0, None, False), "max_grad_norm": (float, 0, None, True),
    "max_approx_kl": (float, 0, None, True), "kl_coef": (float, 0, None, False), "kl_target": (float, 0, None, True),
    "kl_horizon": (int, 1, None, False), "temperature": (float, 0, None, True), "top_k": (int, 0, None, False),
    "top_p": (float, 0, 1, True), "mask_update_interval": (int, 1, None, False), "group_size": (int, 2, None, False),
    "lora_r": (int, 0, None, False), "lora_alpha": (float, 0, None, True), "lora_dropout": (float, 0, 1, False),
}
OPTIONAL = {"clip_value", "max_approx_kl"}  # None disables them


@dataclass
class LMPPOConfig:
    learning_rate: float = 1e-4  # Adam step size
    num_envs: int = 16  # episodes per rollout, one sub-env (and one KV cache row) each
    n_epochs: int = 4  # passes over each rollout
    n_minibatches: int = 4  # minibatches (of episodes) per epoch
    gamma: float = 1.0  # discount
    gae_lambda: float = 0.95  # GAE lambda
    advantage: str = "gae"  # "gae", "self-critical" (greedy rollout's return as baseline) or "group" (GRPO's)
    group_size: int = 4  # "group": episodes per prompt (num_envs is a multiple of it)
    group_std: bool = False  # "group": also divide by the group's std of returns (GRPO; Dr. GRPO leaves it out)
    whiten_advantages: bool = True  # normalise advantages over the rollout (not "group": it normalises per group)
    clip_coef: float = 0.2  # PPO ratio clip
    clip_value: float | None = 0.2  # value clip around the old value; None to disable
    vf_coef: float = 0.5  # value loss weight
    ent_coef: float = 0.0  # entropy bonus weight
    max_grad_norm: float = 1.0  # gradient clipping
    max_approx_kl: float | None = 0.1  # stop the epochs early when approx KL(old||new) passes this
    kl_coef: float = 0.05  # beta: per-token KL penalty weight (initial value if adaptive)
    kl_penalty: str = "reward"  # "reward" (r_t - beta kl_t, Ziegler et al.) or "loss" (beta KL in the loss, GRPO's)
    kl_estimator: str = "k1"  # "k1" (log ratio) or "k3" (non-negative, lower variance)
    kl_controller: str = "fixed"  # "fixed" or "adaptive" (Ziegler et al.)
    kl_target: float = 1.0  # adaptive: target KL per episode (nats)
    kl_horizon: int = 10_000  # adaptive: episodes over which beta adapts
    temperature: float = 1.0  # sampling temperature (the policy is softmax(logits / T))
    top_k: int = 0  # NLPO mask: keep the mask model's k likeliest tokens; 0 disables
    top_p: float = 1.0  # NLPO mask: keep the mask model's nucleus of mass p; 1.0 disables
    mask_model: str = "reference"  # "reference" or "lagged" (a copy of the policy, refreshed)
    mask_update_interval: int = 10  # rollouts between refreshes of the lagged mask model
    value_model: str = "shared"  # "shared" (head on the policy trunk) or "separate" (own LM copy)
    lora_r: int = 0  # rank of LoRA adapters on the trunk (needs peft); 0: the whole trunk trains
    lora_alpha: float = 16.0  # LoRA scale alpha / r
    lora_dropout: float = 0.0  # dropout on the adapters' input
    lora_target_modules: list[str] | str | None = None  # modules (or a regex) to adapt; None: peft's default, + LM head on TokenGen
    compile_decode: bool = False  # TokenGen: torch.compile the rollout's forward passes (compiles at the first rollout)
    device: str = "auto"  # "cpu", "cuda" or "auto"
    dtype: str = "float32"  # policy dtype: "float32" or "bfloat16" (GPU)
    ref_device: str | None = None  # reference model device (default: the policy's)
    ref_dtype: str | None = None  # reference model dtype (default: the policy's)

    def __post_init__(self):
        for name, valid in CHOICES.items():
            if getattr(self, name) not in valid:
                raise ValueError(f"unknown {name} {getattr(self, name)!r}; valid: {list(valid)}")
        if self.ref_dtype is not None and self.ref_dtype not in DTYPES:
            raise ValueError(f"unknown ref_dtype {self.ref_dtype!r}; valid: {list(DTYPES)}")
        for name, (kind, low, high, low_open) in RANGES.items():
            value = getattr(self, name)
            if value is None and name in OPTIONAL:
                continue
            setattr(self, name, _check_range(name, value, kind, low, high, low_open, name in OPTIONAL))
        for name in ("whiten_advantages", "compile_decode", "group_std"):
            if not isinstance(getattr(self, name), (bool, np.bool_)):
                raise TypeError(f"{name} must be a bool, got {getattr(self, name)!r}")
            setattr(self, name, bool(getattr(self, name)))
        for name in ("device", "ref_device"):
            _check_device(name, getattr(self, name), optional=name == "ref_device")
        if self.advantage == "group" and self.num_envs % self.group_size:
            raise ValueError(f"advantage='group' runs num_envs in groups of group_size episodes: num_envs={self.num_envs} "
                             f"is not a multiple of group_size={self.group_size}")
        if self.advantage == "group" and self.value_model == "separate":
            raise ValueError("value_model='separate' builds a critic, and advantage='group' has none: use value_model='shared'")
        self.lora_target_modules = _check_target_modules(self.lora_target_modules)
        if self.lora_r:
            if self.value_model == "separate":
                raise ValueError("with lora_r > 0 the value head reads the shared, adapted trunk: use value_model='shared'")
            shared = [f"{name}={getattr(self, name)!r}" for name in ("ref_device", "ref_dtype") if getattr(self, name)]
            if shared:
                raise ValueError(f"with lora_r > 0 the reference is the policy's own trunk with its adapters off, on the "
                                 f"policy's device and dtype: drop {', '.join(shared)}")


def _check_target_modules(value: Any) -> list[str] | str | None:
    """None, a regex (str) or a non-empty list of module names, as peft takes them."""
    if value is None or (isinstance(value, str) and value):
        return value
    if isinstance(value, (list, tuple)) and value and all(isinstance(name, str) and name for name in value):
        return list(value)
    raise TypeError(f"lora_target_modules must be None, a regex or a non-empty list of module names, got {value!r}")


def _check_range(name: str, value: Any, kind: type, low: float, high: float | None, low_open: bool,
                 optional: bool) -> int | float:
    """``value`` as a plain int / float if it is one (numpy scalars included, bools not) in range,
    else an error naming the field, the value and the valid range."""
    interval = f"{'(' if low_open else '['}{low}, {'inf)' if high is None else f'{high}]'}"
    what = f"{'an int' if kind is int else 'a finite number'} in {interval}" + (" or None" if optional else "")
    numbers = (int, np.integer) if kind is int else (int, float, np.integer, np.floating)
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers):
        raise TypeError(f"{name} must be {what}, got {value!r}")
    try:
        number = kind(value)
    except OverflowError:  # an int too large for a float
        number = math.inf
    inside = math.isfinite(number) and (number > low if low_open else number >= low) and (high is None or number <= high)
    if not inside:
        raise ValueError(f"{name} must be {what}, got {value!r}")
    return number


def _check_device(name: str, value: Any, optional: bool) -> None:
    if (optional and value is None) or value == "auto":
        return
    try:
        if not isinstance(value, str):
            raise TypeError
        torch.device(value)
    except (RuntimeError, TypeError):
        raise ValueError(f"{name} must be 'auto', 'cpu', 'cuda' or 'cuda:N'{' or None' if optional else ''}, "
                         f"got {value!r}") from None




class LMPPOAgent(Agent):
    """PPO with a transformers policy on TokenGen, NERTag and TokenEdit envs.

    ``model``: None (an offline tiny model), a shortcut (``"minilm"``, ``"smollm2"``), a local
    transformers directory, or a model object; on NERTag and TokenEdit a model object comes
    with its ``tokenizer`` (see :func:`agents.lm_policy.build_policy`). ``ref_model``: a
    TokenGen reference LM other than the policy's copy. ``envs``: the rollout envs, a list or a
    Gymnasium vector env (default on TokenGen: ``gym.make_vec`` of ``env``'s spec, the native
    vector env with ``num_envs`` sub-envs; else ``num_envs`` copies of ``env``). A rollout is
    one episode per env; ``learn(total_timesteps)`` counts its env steps (the self-critical baseline's
    greedy rollouts are not counted). ``warm_start(epochs)`` fits the policy to the env's
    supervised targets first (gold tags, oracle edits, references) and makes the result the
    reference. Tested on CPU; CUDA and ``dtype="bfloat16"`` follow the same code path.

    With ``lora_r > 0`` the model object given is wrapped in place by peft's LoRA adapters.

    ``distributed``: data-parallel training under ``torchrun --nproc_per_node=N`` or
    ``accelerate launch``; None (the default) turns it on when a ``torch.distributed`` process
    group is initialised or ``WORLD_SIZE`` > 1. Every rank builds the agent with the same
    ``seed`` and config, calls the same methods, and rolls out its own envs (its own slice of
    the rollout seeds); rank 0's weights are broadcast at the start. An update then equals
    one process's update of all ranks' rollouts concatenated in rank order: advantages are
    whitened with the pooled statistics, every rank draws the same permutation of the global
    episodes, a minibatch's loss is the mean over all its valid tokens (each rank weights its
    part by its share of them) and the gradients are summed across ranks before clipping and
    Adam; the approx-KL early stop, the adaptive KL coefficient and the logged numbers use the
    pooled values. ``learn(total_timesteps)`` counts the steps of all ranks (each takes its
    share of what is left, rounded up, so up to N - 1 more in all). Rank 0 alone writes
    checkpoints (``save`` returns on every rank once it is written) and logs, and shows the
    progress bars; ``callback`` runs on every rank with that rank's episodes, and a stop on
    any rank stops all.
    """

    Config = LMPPOConfig

    def __init__(self, env: gym.Env, model: Any = None, tokenizer: Any = None, ref_model: Any = None,
                 envs: list[gym.Env] | gym.vector.VectorEnv | None = None, seed: int = 0,
                 distributed: bool | None = None, **kwargs: Any):
        super().__init__(env, seed=seed, **kwargs)
        cfg = self.config
        data_parallel = wants_distributed(distributed)
        self.device = resolve_device(cfg.device)
        if data_parallel:
            self.device = rank_device(self.device)
        self.ranks = Ranks(data_parallel, self.device)
        if not self.ranks.is_main:  # logs come from rank 0 alone
            self.log = EpisodeLog()
        self.view, policy = build_policy(env, model, tokenizer, separate_value_trunk=cfg.value_model == "separate",
                                         value_head=cfg.advantage != "group")
        if cfg.compile_decode:
            if not self.view.needs_lm_head:
                raise ValueError("compile_decode=True is for TokenGen's causal LMs, whose rollout steps are one-token passes")
            self.view.compile_decode = True
        self.policy: LMPolicy = policy.to(self.device, DTYPES[cfg.dtype])
        # LoRA: what load rebuilds the base model from (a name or directory, if it was given one), and its fingerprint
        self.base_model, self.base_fingerprint = None, None
        self.merged_adapters: list[dict[str, torch.Tensor]] = []  # LoRA: the adapters each warm start folded into the base
        if cfg.lora_r:
            if ref_model is not None:
                raise ValueError("ref_model= does not go with lora_r > 0: the reference is the policy's trunk, adapters off")
            self.base_model = os.fspath(model) if isinstance(model, (str, os.PathLike)) else None
            self.base_fingerprint = weights_fingerprint(self.policy.trunk)
            self.policy.add_lora(cfg.lora_r, cfg.lora_alpha, cfg.lora_dropout, cfg.lora_target_modules,
                                 adapt_lm_head=self.view.needs_lm_head)
        self.ref_device = resolve_device(cfg.ref_device or str(self.device))
        self.reference = self._new_reference()
        if ref_model is not None:
            if not self.view.needs_lm_head:
                raise ValueError("ref_model= is for TokenGen's causal LMs; on other envs the reference is a copy of the policy")
            self.view.check_model(ref_model)
            self.reference.trunk = ref_model.to(self.ref_device, DTYPES[cfg.ref_dtype or cfg.dtype]).eval()
            self.reference.trunk.requires_grad_(False)
        self.mask_policy = None
        if cfg.top_k or cfg.top_p < 1.0:
            self.mask_policy = self.policy.frozen() if cfg.mask_model == "lagged" else self.reference
        self.optimizer = torch.optim.Adam(self.policy.parameters(), lr=cfg.learning_rate, eps=1e-5, fused=True)
        self.kl_coef = cfg.kl_coef
        # ranks sample with their own generators; self.rng stays the same on all (the update's permutations)
        rank_seed = np.random.SeedSequence(seed, spawn_key=(self.ranks.rank,)).generate_state(1)[0]
        self.generator = torch.Generator(self.device).manual_seed(seed if self.ranks.is_main else int(rank_seed))
        if envs is not None:
            self.envs = EnvBatch(envs)
        elif self.view.needs_lm_head:  # TokenGen: through its native vector env, when its id has one
            self.envs = EnvBatch.of(env, cfg.num_envs)
        else:
            self.envs = EnvBatch([copy_env(env) for _ in range(cfg.num_envs)])
        if cfg.advantage == "group" and self.envs.n % cfg.group_size:
            raise ValueError(f"advantage='group' runs the envs in groups of group_size={cfg.group_size}, and envs= holds "
                             f"{self.envs.n}, not a multiple of it")
        self.ranks.same_everywhere("seed", self.seed)
        self.rank_envs = [int(n) for n in torch.cat(self.ranks.gather(torch.tensor([self.envs.n])))]  # envs per rank
        self.ranks.broadcast_modules([self.policy, self.reference, *([self.mask_policy] if self.mask_policy else [])])
        self.update_log = EpisodeLog()  # one record per PPO update: losses/..., charts/kl, ...
        self.warm_start_log = EpisodeLog()  # one record per warm-start epoch
        self._act_states: dict[str, Any] = {}  # the view's acting state, per scoring policy
        self.policy.eval()

    @property
    def model(self) -> nn.Module:
        """The policy's transformers model."""
        return self.policy.trunk

    def _sampler(self, deterministic: bool) -> Sampler:
        cfg = self.config
        return Sampler(cfg.temperature, deterministic, self.generator, self.mask_policy, cfg.top_k, cfg.top_p)

    # ---- acting -------------------------------------------------------------------------

    def _act_logits(self, name: str, policy: LMPolicy, reading: Any) -> torch.Tensor:
        state = self._act_states.get(name)
        if state is None or not self.view.continues(state, reading):
            state = self._act_states[name] = self.view.start(policy, [reading])
        return self.view.logits(policy, state, [reading])[0]

    @torch.no_grad()
    def act(self, obs: dict, info: dict | None = None, deterministic: bool = True) -> int:
        """Keeps the view's state of the last episode seen (a KV cache, an encoding): a call
        that continues it costs one incremental step; any other observation starts afresh."""
        reading = self.view.read(obs, info)
        logits = self._act_logits("policy", self.policy, reading)
        mask_logits = None
        if self.mask_policy is not None:
            mask_logits = self._act_logits("mask", self.mask_policy, reading).to(self.device)
        env_mask = torch.as_tensor(legal_mask(info, self.n_actions), device=self.device)
        legal = ppo.narrowed_legal(env_mask, mask_logits, self.config.top_k, self.config.top_p)
        action, _ = self._sampler(deterministic).sample(logits[None], legal[None])
        return int(action[0])

    def rollout(self, seeds: list[int], deterministic: bool = False, max_steps: int | None = None) -> Rollout:
        """One episode per rollout env, in lockstep (see :func:`agents.lm_rollout.collect`)."""
        return collect(self.envs, self.view, self.policy, seeds, self._sampler(deterministic), max_steps=max_steps)

    # ---- learning -------------------------------------------------------------------------

    def outputs(self, batch: Rollout, rows: torch.Tensor | slice = slice(None), policy: LMPolicy | None = None,
                values: bool = True) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Logits (temperature applied) and values at each step of episodes ``rows``."""
        policy = policy if policy is not None else self.policy
        index = range(len(batch.readings))[rows] if isinstance(rows, slice) else rows.tolist()
        if not index:  # data parallel: none of this minibatch's episodes (or of the rollout's) is this rank's
            shape = batch.legal[rows].shape
            return torch.zeros(shape, device=self.device), torch.zeros(shape[:2], device=self.device) if values else None
        logits, value = self.view.replay(policy, [batch.readings[i] for i in index], batch.actions[rows].to(policy.device),
                                         batch.valid[rows].to(policy.device), values)
        return logits.to(self.device) / self.config.temperature, value

    @torch.no_grad()
    def reference_logprobs(self, batch: Rollout) -> torch.Tensor:
        """(B, T, A) log-probs of pi_ref renormalised over each step's sampling mask."""
        logits, _ = self.outputs(batch, policy=self.reference, values=False)
        return ppo.masked_logprobs(logits, batch.legal.to(self.device), batch.valid.to(self.device))

    def kl_per_token(self, logprobs: torch.Tensor, ref_logprobs: torch.Tensor) -> torch.Tensor:
        return ppo.kl_per_token(logprobs, ref_logprobs, self.config.kl_estimator)

    @torch.no_grad()
    def prepare(self, batch: Rollout, baseline: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """Old log-probs and values, KL-penalised rewards, advantages and returns, the KL
        estimate per step (``kl``, in the rewards) and the exact KL at each visited state
        (``exact_kl``). ``baseline`` (a greedy return per episode) is required for
        self-critical advantages; group advantages take the rows as consecutive groups of
        ``group_size`` episodes of one prompt, and have no values (``old_values`` is None)."""
        cfg = self.config
        if cfg.advantage == "self-critical" and baseline is None:
            raise ValueError("advantage='self-critical' needs baseline=: the greedy rollout's return per episode")
        valid, legal = batch.valid.to(self.device), batch.legal.to(self.device)
        actions = batch.actions.to(self.device)[..., None]
        logits, values = self.outputs(batch, values=cfg.advantage != "group")
        masked = ppo.masked_logprobs(logits, legal, valid)
        old_logprobs = masked.gather(-1, actions).squeeze(-1)
        ref_masked = self.reference_logprobs(batch)
        kl = self.kl_per_token(old_logprobs, ref_masked.gather(-1, actions).squeeze(-1)) * valid
        exact_kl = ppo.exact_kl(masked, ref_masked, legal) * valid
        rewards = batch.env_rewards.to(self.device)
        if cfg.kl_penalty == "reward":
            rewards = rewards - self.kl_coef * kl
        values = None if values is None else values * valid
        if cfg.advantage == "group":
            advantages, returns = ppo.group_relative(rewards, valid, cfg.group_size, cfg.gamma, cfg.group_std)
        elif cfg.advantage == "gae":
            advantages, returns = ppo.gae(rewards, values, valid, cfg.gamma, cfg.gae_lambda)
        else:
            advantages, returns = ppo.self_critical(rewards, valid, baseline, cfg.gamma)
        if cfg.whiten_advantages and cfg.advantage != "group":
            moments = self.ranks.moments(advantages[valid.bool()]) if self.ranks.enabled else None
            advantages = ppo.whitened(advantages, valid, moments)
        prepared = {"old_logprobs": old_logprobs, "old_values": values, "advantages": advantages, "returns": returns,
                    "kl": kl, "exact_kl": exact_kl, "valid": valid}
        if cfg.kl_penalty == "loss":  # (B, T, A): kept through the update epochs only where the loss reads it
            prepared["ref_logprobs"] = ref_masked
        return prepared

    def loss(self, batch: Rollout, prepared: dict[str, torch.Tensor], rows: torch.Tensor | slice = slice(None)):
        """The PPO loss on episodes ``rows``, and its parts for logging."""
        cfg = self.config
        valid = prepared["valid"][rows]
        critic = cfg.advantage != "group"  # the group baseline has no value head
        logits, values = self.outputs(batch, rows, values=critic)
        masked = ppo.masked_logprobs(logits, batch.legal[rows].to(self.device), valid)
        logprobs = masked.gather(-1, batch.actions[rows].to(self.device)[..., None]).squeeze(-1)
        parts = ppo.clipped_losses(logprobs, prepared["old_logprobs"][rows], prepared["advantages"][rows], values,
                                   prepared["old_values"][rows] if critic else None, prepared["returns"][rows], valid,
                                   cfg.clip_coef, cfg.clip_value)
        entropy = ppo.entropy(masked, valid)
        total = parts["policy"] - cfg.ent_coef * entropy
        if cfg.advantage == "gae":  # self-critical training has no critic to fit
            total = total + cfg.vf_coef * parts["value"]
        logged = {}
        if cfg.kl_penalty == "loss":
            legal = batch.legal[rows].to(self.device)
            kl = (ppo.exact_kl(masked, prepared["ref_logprobs"][rows], legal) * valid).sum() / valid.sum().clamp(min=1)
            total = total + self.kl_coef * kl
            logged["losses/kl"] = kl.item()
        return total, {"losses/policy": parts["policy"].item(), "losses/entropy": entropy.item(),
                       "losses/approx_kl": parts["approx_kl"].item(),
                       **({"losses/value": parts["value"].item()} if critic else {}), **logged}

    def _optimizer_step(self, optimizer: torch.optim.Optimizer, loss: torch.Tensor, share: float = 1.0,
                        extra: torch.Tensor | None = None) -> torch.Tensor | None:
        """Descend ``share`` * ``loss``, its gradients summed over the ranks (``share``: this
        rank's part of the global loss), then clipped; returns ``extra`` summed over the ranks."""
        parameters = [p for group in optimizer.param_groups for p in group["params"]]
        optimizer.zero_grad()
        if loss.requires_grad:  # not when none of the minibatch's episodes is this rank's
            (loss * share if share != 1.0 else loss).backward()
        extra = self.ranks.sum_gradients(parameters, extra if extra is not None else torch.zeros(0))
        nn.utils.clip_grad_norm_(parameters, self.config.max_grad_norm)
        optimizer.step()
        return extra

    def update(self, batch: Rollout, prepared: dict[str, torch.Tensor]) -> dict[str, float]:
        """Minibatch epochs of clipped PPO; stops early once approx KL passes ``max_approx_kl``."""
        cfg = self.config
        self.policy.train()
        parts: dict[str, float] = {}
        # data parallel: the minibatches are drawn from every rank's episodes (rank order), the same on all ranks
        lengths = self.ranks.gather(prepared["valid"].sum(1).cpu())
        first, mine = sum(map(len, lengths[: self.ranks.rank])), len(lengths[self.ranks.rank])
        lengths = torch.cat(lengths)
        episodes, stop_early = len(lengths), False
        for _ in range(cfg.n_epochs):
            order = torch.randperm(episodes, generator=torch.Generator().manual_seed(int(self.rng.integers(2**31))))
            for rows in order.chunk(min(cfg.n_minibatches, episodes)):
                local = rows[(rows >= first) & (rows < first + mine)]
                share = (lengths[local].sum() / lengths[rows].sum()).item() if self.ranks.enabled else 1.0
                total, parts = self.loss(batch, prepared, local - first)
                pooled = self._optimizer_step(self.optimizer, total, share,
                                              torch.tensor(list(parts.values()), dtype=torch.float64) * share)
                parts = dict(zip(parts, pooled.tolist())) if self.ranks.enabled else parts
                stop_early = cfg.max_approx_kl is not None and parts["losses/approx_kl"] > cfg.max_approx_kl
                if stop_early:
                    break
            if stop_early:
                break
        self.policy.eval()
        self._act_states.clear()
        return parts

    def adapt_kl_coef(self, episode_kl: torch.Tensor) -> None:
        """Ziegler et al.'s controller on the episodes' KL (of every rank's episodes)."""
        cfg = self.config
        n_episodes, total = self.ranks.sum([len(episode_kl), episode_kl.sum().item()])
        self.kl_coef = ppo.adapted_kl_coef(self.kl_coef, total / n_episodes, int(n_episodes), cfg.kl_target,
                                           cfg.kl_horizon)

    def learn(self, total_timesteps: int, progress_bar: bool = False, callback: Callback | None = None) -> LMPPOAgent:
        self._check_timesteps(total_timesteps)
        cfg = self.config
        tracker = EpisodeTracker(self, total_timesteps, progress_bar and self.ranks.is_main, callback)
        ranks, first_env = self.ranks, sum(self.rank_envs[: self.ranks.rank])
        steps, n_updates, keep_going = 0, 0, True
        while steps < total_timesteps and keep_going:
            start = time.perf_counter()
            # a group's episodes share a seed: the same example, sampled apart by the policy
            group = cfg.group_size if cfg.advantage == "group" else 1
            seeds = np.repeat(self.rng.integers(2**31, size=sum(self.rank_envs) // group), group).tolist()
            seeds = [int(s) for s in seeds[first_env: first_env + self.envs.n]]
            batch = self.rollout(seeds, max_steps=-(-(total_timesteps - steps) // ranks.world_size))
            rollout_time = time.perf_counter() - start
            local_steps = 0
            for i in range(self.envs.n):  # replay each episode into the tracker, one after another
                length = int(batch.valid[i].sum())
                for t in range(length):
                    done = t == length - 1 and bool(batch.complete[i])
                    if keep_going:  # the callback is not asked again once it said stop
                        keep_going = tracker.step(steps + local_steps, float(batch.env_rewards[i, t]), done, batch.infos[i])
                    local_steps += 1
            complete = batch.complete
            if group > 1:  # a group is trained on whole or not at all
                complete = complete.reshape(-1, group).all(1).repeat_interleave(group)
            # data parallel: every rank must take the same branches, so these decisions are pooled
            n_steps, n_complete, n_stops = map(int, ranks.sum([batch.n_steps, int(complete.sum()), not keep_going]))
            tracker.advance(n_steps - batch.n_steps)  # the other ranks' steps
            keep_going = not n_stops
            steps += n_steps
            self.num_timesteps += n_steps
            if not n_complete:
                continue
            batch = batch.episodes(complete)  # the episodes the step budget cut are not trained on
            baseline = None
            if cfg.advantage == "self-critical":  # the same prompts again, greedily: SCST's baseline
                baseline = self.rollout(seeds, deterministic=True).env_rewards.sum(1)[complete]
            prepared = self.prepare(batch, baseline)
            parts = self.update(batch, prepared)
            episode_kl = prepared["exact_kl"].sum(1)
            if cfg.kl_controller == "adaptive":
                self.adapt_kl_coef(episode_kl)
            if cfg.mask_model == "lagged" and self.mask_policy is not None and n_updates % cfg.mask_update_interval == 0:
                self.mask_policy.load_state_dict(self.policy.state_dict(), strict=False)
            n_updates += 1
            kl_sum, return_sum = ranks.sum([episode_kl.sum().item(), batch.env_rewards.sum().item()])
            self.update_log.add({"step": self.num_timesteps, **parts, "charts/kl": kl_sum / n_complete,
                                 "charts/kl_coef": self.kl_coef, "charts/episode_return": return_sum / n_complete,
                                 "charts/rollout_steps_per_second": n_steps / max(rollout_time, 1e-9),
                                 "charts/steps_per_second": n_steps / (time.perf_counter() - start)})
            if self.log.writer is not None:
                for key, value in self.update_log.records[-1].items():
                    if key != "step":
                        self.log.writer.add_scalar(key, value, self.num_timesteps)
        tracker.close()
        return self

    # ---- warm start -----------------------------------------------------------------------

    def warm_start(self, epochs: int = 1, batch_size: int = 16, learning_rate: float = 5e-5,
                   head_learning_rate: float = 1e-3, progress_bar: bool = False) -> LMPPOAgent:
        """Supervised warm start: cross-entropy of the masked policy on the env's targets
        (NERTag: the gold tags, fed back as the previous tags; TokenEdit: the oracle's edits
        to each reference; TokenGen: each reference, then EOS), replayed through ``env.step``
        as PPO's episodes are. The trunk learns at ``learning_rate``, the new heads at
        ``head_learning_rate``. Afterwards the policy is the reference that PPO's KL penalty
        holds it to. ``warm_start_log`` gets each epoch's mean ``loss`` (nats per step)."""
        epochs = check_range("epochs", epochs, 1, integer=True)
        batch_size = check_range("batch_size", batch_size, 1, integer=True)
        learning_rate = check_range("learning_rate", learning_rate, 0, low_open=True)
        head_learning_rate = check_range("head_learning_rate", head_learning_rate, 0, low_open=True)
        if not has_references(self.env):
            raise ValueError(f"task {self.env.unwrapped.task.name!r} has no references, so there is nothing to warm-start "
                             "on; train by PPO alone on a reference-free reward (the CLI's warm_start_epochs 0)")
        targets = [(index, actions) for index in range(len(self.env.unwrapped.examples))
                   for actions in self.view.demonstration(self.env, index)]
        if not targets:
            raise ValueError("the env's task has no supervised targets this env can replay")
        trunk = [p for name, p in self.policy.named_parameters() if name.startswith("trunk.")]
        rest = [p for name, p in self.policy.named_parameters() if not name.startswith(("trunk.", "value"))]
        optimizer = torch.optim.AdamW([{"params": trunk, "lr": learning_rate}, {"params": rest, "lr": head_learning_rate}],
                                      fused=True)
        envs = EnvBatch([copy_env(self.env) for _ in range(min(batch_size, len(targets)))])
        bar = None
        if progress_bar and self.ranks.is_main:
            from tqdm.auto import tqdm

            bar = tqdm(total=epochs * math.ceil(len(targets) / batch_size), desc="warm start", unit="batch")
        self.policy.train()
        for epoch in range(epochs):
            total_nll, total_steps = 0.0, 0
            order = self.rng.permutation(len(targets)).tolist()
            for chunk in (order[i: i + batch_size] for i in range(0, len(order), batch_size)):
                batch_targets = [targets[i] for i in chunk]
                batch = collect(EnvBatch(envs.envs[: len(chunk)]), self.view, self.policy, [0] * len(chunk),
                                demonstrations=[actions for _, actions in batch_targets],
                                options=[{"index": index} for index, _ in batch_targets])
                logits, _ = self.outputs(batch, values=False)
                valid = batch.valid.to(self.device)
                masked = ppo.masked_logprobs(logits, batch.legal.to(self.device), valid)
                nll = -(masked.gather(-1, batch.actions.to(self.device)[..., None]).squeeze(-1) * valid).sum()
                # every rank fits the same batch; the sum of their gradients over the ranks keeps them in step
                self._optimizer_step(optimizer, nll / valid.sum().clamp(min=1), share=1 / self.ranks.world_size)
                total_nll, total_steps = total_nll + nll.item(), total_steps + int(valid.sum())
                if bar is not None:
                    bar.update(1)
                    bar.set_postfix(loss=f"{total_nll / total_steps:.3f}", refresh=False)
            self.warm_start_log.add({"epoch": epoch + 1, "loss": total_nll / max(total_steps, 1)})
        if bar is not None:
            bar.close()
        self.policy.eval()
        self._rebase_reference()
        return self

    def _new_reference(self) -> LMPolicy:
        """A frozen copy of the policy, or for LoRA its trunk with the adapters off."""
        cfg = self.config
        return self.policy.base() if self.policy.lora else self.policy.frozen(self.ref_device, DTYPES[cfg.ref_dtype or cfg.dtype])

    def _rebase_reference(self) -> None:
        """Make the current policy the reference (and the lagged mask model); a LoRA policy
        first folds its adapters into the trunk, which its reference sees."""
        cfg = self.config
        if self.policy.lora:
            self.merged_adapters.append(self.policy.merge_lora())
        self.reference = self._new_reference()
        if self.mask_policy is not None:
            self.mask_policy = self.policy.frozen() if cfg.mask_model == "lagged" else self.reference
        self._act_states.clear()

    # ---- checkpoints ------------------------------------------------------------------------

    def _modules(self) -> dict[str, nn.Module]:
        return {**self.policy.modules_to_save(), "reference": self.reference}

    def _state(self) -> dict:
        return {name: module.state_dict() for name, module in self._modules().items()}

    def _load_state(self, state: dict) -> None:
        for name, module in self._modules().items():
            module.load_state_dict(state[name])

    def save(self, path: str | os.PathLike) -> None:
        """A directory: ``agent.json`` (config, spaces, model configs, a SHA-256 per weights
        file), one ``.safetensors`` file per module and the model's ``tokenizer/`` (NERTag,
        TokenEdit). With LoRA the trunk's file is ``adapters.safetensors`` (the adapters only),
        and ``merged_adapters.safetensors`` holds those each warm start folded into the base. It
        is written whole into a temporary directory beside ``path`` and
        swapped in by renames, so ``path`` always holds the old or the new checkpoint; what a
        killed save leaves behind is cleaned up by the next ``save`` or ``load``. Data
        parallel: call it on every rank; rank 0 writes while the others wait."""
        self.ranks.main_writes(lambda: self._write_checkpoint(Path(path)))

    def _write_checkpoint(self, path: Path) -> None:
        from safetensors.torch import save_file, save_model

        if path.exists() and not path.is_dir():
            raise FileExistsError(f"{path} is a file; an LMPPOAgent checkpoint is a directory")
        path.parent.mkdir(parents=True, exist_ok=True)
        heal_checkpoint_dir(path)
        tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.tmp-{os.getpid()}-", dir=path.parent))
        try:
            digests = {}
            for name, module in self._modules().items():
                save_model(module, str(tmp / f"{name}.safetensors"))
                digests[f"{name}.safetensors"] = file_sha256(tmp / f"{name}.safetensors")
            if self.merged_adapters:
                save_file({f"{i}/{key}": tensor.contiguous() for i, adapters in enumerate(self.merged_adapters)
                           for key, tensor in adapters.items()}, str(tmp / MERGED_ADAPTERS))
                digests[MERGED_ADAPTERS] = file_sha256(tmp / MERGED_ADAPTERS)
            lora = None
            if self.policy.lora:
                lora = {"base_model": self.base_model, "base_fingerprint": self.base_fingerprint,
                        "merges": len(self.merged_adapters)}
            if self.policy.tokenizer is not None:
                self.policy.tokenizer.save_pretrained(tmp / "tokenizer")
            meta = {"agent": type(self).__name__, "format": CHECKPOINT_FORMAT, "config": dataclasses.asdict(self.config),
                    "seed": self.seed, "num_timesteps": self.num_timesteps, "kl_coef": self.kl_coef,
                    "spaces": space_signature(self.env), "view": type(self.view).__name__,
                    "causal_lm_head": self.view.needs_lm_head,
                    "model_config": self.policy.trunk.config.to_dict(),
                    "reference_config": self.reference.trunk.config.to_dict(), "lora": lora, "sha256": digests}
            (tmp / "agent.json").write_text(json.dumps(meta, indent=1, default=str), encoding="utf-8")
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        if path.exists():  # the old checkpoint steps aside only once the new one is complete
            old = checkpoint_sibling(path, "old")
            os.replace(path, old)
            os.replace(tmp, path)
            shutil.rmtree(old)
        else:
            os.replace(tmp, path)

    @classmethod
    def load(cls, path: str | os.PathLike, env: gym.Env | None = None, model: Any = None) -> LMPPOAgent:
        """Load a directory written by ``save`` into an agent acting in ``env`` (required,
        with the spaces the agent was trained on). Weights load as tensors only, after their
        SHA-256 is checked against ``agent.json``; the tokenizer loads from local files.
        ``model``: the base model of a LoRA checkpoint, which holds adapters only (default:
        the name or directory the agent was built from); a fresh one, not the trained agent's
        (which its adapters and warm starts changed in place)."""
        from safetensors.torch import load_file, load_model

        path = Path(path)
        heal_checkpoint_dir(path)
        if not (path / "agent.json").is_file():
            raise FileNotFoundError(f"no checkpoint at {path} (an LMPPOAgent checkpoint is a directory with agent.json)")
        try:
            meta = json.loads((path / "agent.json").read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            raise ValueError(f"checkpoint {path} is corrupted (agent.json is not valid JSON: {error})") from None
        required = ("agent", "config", "seed", "num_timesteps", "kl_coef", "spaces", "causal_lm_head", "model_config",
                    "reference_config", "sha256")
        missing = [key for key in required if not isinstance(meta, dict) or key not in meta]
        if isinstance(meta, dict) and "policy_config" in meta and "model_config" not in meta:
            raise ValueError(f"{path} is an LMPPOAgent checkpoint of textgym 0.1's first layout; "
                             "this version cannot read it: train again")
        if missing:
            raise ValueError(f"checkpoint {path} is corrupted (agent.json lacks {missing})")
        if meta["agent"] != cls.__name__:
            raise ValueError(f"{path} holds a {meta['agent']} checkpoint, not a {cls.__name__} one")
        if env is None:
            raise ValueError(f"{cls.__name__}.load needs env=: the env the agent will act in")
        if space_signature(env) != meta["spaces"]:
            raise ValueError(f"{path} was trained on different spaces:\n  checkpoint: {meta['spaces']}\n"
                             f"  env:        {space_signature(env)}")
        tokenizer = None
        if (path / "tokenizer").is_dir():
            from transformers import AutoTokenizer

            tokenizer = AutoTokenizer.from_pretrained(path / "tokenizer", local_files_only=True)
        lm_head, lora = bool(meta["causal_lm_head"]), meta.get("lora")
        ref_model = None
        if lora:
            model = model if model is not None else lora["base_model"]
            if model is None:
                raise ValueError(f"{path} holds LoRA adapters only, of a base model given as an object: pass a fresh copy "
                                 f"of it, {cls.__name__}.load(path, env, model=base)")
        elif model is not None:
            raise ValueError(f"model= is the base model of a LoRA checkpoint; {path} holds its whole model")
        else:
            model = _model_from_config(meta["model_config"], lm_head)
            ref_model = _model_from_config(meta["reference_config"], lm_head) if lm_head else None
        agent = cls(env, model=model, tokenizer=tokenizer, ref_model=ref_model, seed=meta["seed"], **meta["config"])
        view = type(agent.view).__name__
        if meta.get("view", view) != view:
            raise ValueError(f"{path} holds a policy with a {meta['view']}, and this env takes a {view}")
        digests = meta["sha256"]
        if lora:
            if agent.base_fingerprint != lora["base_fingerprint"]:
                raise ValueError(f"{path} holds LoRA adapters of another base model than {model!r} (their weights differ)")
            merged: list[dict[str, torch.Tensor]] = [{} for _ in range(lora["merges"])]
            if merged:
                for key, tensor in load_file(str(_checked_weights(path, MERGED_ADAPTERS, digests)),
                                             device=str(agent.device)).items():
                    index, name = key.split("/", 1)
                    merged[int(index)][name] = tensor
            for adapters in merged:  # each warm start again: its adapters folded into the base
                trained_weights(agent.policy.trunk).load_state_dict(adapters)
                agent._rebase_reference()
        for name, module in agent._modules().items():
            weights = _checked_weights(path, f"{name}.safetensors", digests)
            try:
                load_model(module, str(weights), device=str(agent.device if name != "reference" else agent.ref_device))
            except RuntimeError as error:  # shapes that do not fit, e.g. a checkpoint of an older view
                first = str(error).strip().splitlines()[-1].strip()
                raise ValueError(f"checkpoint {path}: {weights.name} does not fit this agent's {name} ({first})") from None
        agent.num_timesteps, agent.kl_coef = meta["num_timesteps"], meta["kl_coef"]
        return agent


CHECKPOINT_FORMAT = 2  # 1: the TokenGen-only layout (policy, value_head, reference as plain LMs)
MERGED_ADAPTERS = "merged_adapters.safetensors"


def _checked_weights(path: Path, file: str, digests: dict[str, str]) -> Path:
    """Checkpoint ``path``'s weights ``file``, there and matching its digest."""
    weights = path / file
    if not weights.is_file():
        raise FileNotFoundError(f"checkpoint {path} is incomplete: {file} is missing")
    if digests.get(file) != file_sha256(weights):
        raise ValueError(f"checkpoint {path} is corrupted (digest mismatch in {file})")
    return weights


def has_references(env: gym.Env) -> bool:
    """Whether ``env``'s task has references (or gold tags) to warm-start on; a task of
    sentences without references has none."""
    return any(getattr(example, "references", True) for example in env.unwrapped.examples)


def copy_env(env: gym.Env) -> gym.Env:
    return copy.deepcopy(env)


def _model_from_config(config: dict, lm_head: bool) -> Any:
    """An untrained model of ``config``: a causal LM with its head, or a trunk (``AutoModel``)."""
    from transformers import AutoConfig, AutoModel, AutoModelForCausalLM

    config = dict(config)
    auto = AutoModelForCausalLM if lm_head else AutoModel
    return auto.from_config(AutoConfig.for_model(config.pop("model_type"), **config))
