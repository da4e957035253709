"""PPO on a causal language model (Ziegler et al., 2019; Stiennon et al., 2020), with
an optional NLPO-style action mask (Ramamurthy et al., 2023) and an SCST baseline
(Rennie et al., 2017).

The policy pi is the LM over the env's tokens; the LM reads ``prompt, BOS, output so far``.
A frozen reference pi_ref (a copy of the initial LM) keeps pi close to what it was:

    r_t   = r_env_t - beta * kl_t,  kl_t = log pi_L(a_t|s_t) - log pi_ref_L(a_t|s_t)      (k1)
                                  or kl_t = (rho - 1) - log rho, rho = pi_ref_L / pi_L      (k3)
    beta  <- beta * (1 + clip(KL / KL_target - 1, -0.2, 0.2) * n_episodes / horizon)     (adaptive)
    A_t   = GAE(gamma, lambda) of r_t with V from a value head on the LM's last hidden state,
            or G_t - R_greedy (self-critical: the greedy rollout's env return as baseline)
    L     = E[max(-A ratio, -A clip(ratio, 1 - eps, 1 + eps))]
            + c_v E[max((V - R)^2, (V_old + clip(V - V_old, -eps_v, eps_v) - R)^2)] / 2 - c_e H

Masks: pi samples among the env's legal tokens (``info["action_mask"]``), narrowed to the
top-k / top-p tokens of the reference (or of a lagged copy of pi); ratio, entropy and KL
use that masked distribution pi_L(a) = pi(a) / pi(L) on the step's legal set L. The
reference is renormalised over the same L, pi_ref_L(a) = pi_ref(a) / pi_ref(L), so that
kl_t estimates KL(pi_L || pi_ref_L) = E_{a ~ pi_L}[log pi_L(a) - log pi_ref_L(a)] >= 0 without
bias; k3 is also >= 0 per sample. Both are 0 while pi = pi_ref. (Leaving pi_ref
unnormalised would add the constant -log pi_ref(L) per step: a penalty for the mask, not for drift.)
The reward uses kl_t; the adaptive controller and ``charts/kl`` use the same KL summed over
L at each visited state, sum_a pi_L(a) log(pi_L(a) / pi_ref_L(a)): the same expectation, and
never negative.

Episodes end at EOS or at ``max_new_tokens``; both are terminal (the length limit is part
of the task, and visible through ``position``), so nothing is bootstrapped after them.
"""

from __future__ import annotations

import copy
import dataclasses
import glob
import hashlib
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

from agents.base import Agent, Callback, EpisodeLog, EpisodeTracker, legal_mask, space_signature
from agents.dqn import resolve_device
from agents.env_batch import EnvBatch
from agents.lm import check_vocab_size, prompt_context, tiny_causal_lm

OBSERVATION_KEYS = ("prompt_ids", "prompt_mask", "output_ids", "position")
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16}
CHOICES = {"advantage": ("gae", "self-critical"), "kl_estimator": ("k1", "k3"), "kl_controller": ("fixed", "adaptive"),
           "value_model": ("shared", "separate"), "mask_model": ("reference", "lagged"), "dtype": tuple(DTYPES)}
# field: (type, lowest, highest or None for no bound, whether the lowest value itself is excluded)
RANGES = {
    "learning_rate": (float, 0, None, True), "num_envs": (int, 1, None, False), "n_epochs": (int, 1, None, False),
    "n_minibatches": (int, 1, None, False), "gamma": (float, 0, 1, False), "gae_lambda": (float, 0, 1, False),
    "clip_coef": (float, 0, None, True), "clip_value": (float, 0, None, True), "vf_coef": (float, 0, None, False),
    "ent_coef": (float, 0, None, False), "max_grad_norm": (float, 0, None, True),
    "max_approx_kl": (float, 0, None, True), "kl_coef": (float, 0, None, False), "kl_target": (float, 0, None, True),
    "kl_horizon": (int, 1, None, False), "temperature": (float, 0, None, True), "top_k": (int, 0, None, False),
    "top_p": (float, 0, 1, True), "mask_update_interval": (int, 1, None, False),
}
OPTIONAL = {"clip_value", "max_approx_kl"}  # None disables them


@dataclass
class LMPPOConfig:
    learning_rate: float = 1e-4  # Adam step size
    num_envs: int = 16  # episodes per rollout, one env copy (and one KV cache row) each
    n_epochs: int = 4  # passes over each rollout
    n_minibatches: int = 4  # minibatches (of episodes) per epoch
    gamma: float = 1.0  # discount
    gae_lambda: float = 0.95  # GAE lambda
    advantage: str = "gae"  # "gae" or "self-critical" (greedy rollout's return as baseline)
    whiten_advantages: bool = True  # normalise advantages over the rollout
    clip_coef: float = 0.2  # PPO ratio clip
    clip_value: float | None = 0.2  # value clip around the old value; None to disable
    vf_coef: float = 0.5  # value loss weight
    ent_coef: float = 0.0  # entropy bonus weight
    max_grad_norm: float = 1.0  # gradient clipping
    max_approx_kl: float | None = 0.1  # stop the epochs early when approx KL(old||new) passes this
    kl_coef: float = 0.05  # beta: per-token KL penalty weight (initial value if adaptive)
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
        if not isinstance(self.whiten_advantages, (bool, np.bool_)):
            raise TypeError(f"whiten_advantages must be a bool, got {self.whiten_advantages!r}")
        self.whiten_advantages = bool(self.whiten_advantages)
        for name in ("device", "ref_device"):
            _check_device(name, getattr(self, name), optional=name == "ref_device")


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


@dataclass
class Rollout:
    """A batch of episodes, left-padded contexts then outputs: step t of episode b is
    predicted at column ``context_len - 1 + t`` of ``input_ids``."""

    input_ids: torch.Tensor  # (B, C + T)
    attention_mask: torch.Tensor  # (B, C + T)
    context_len: int  # C
    actions: torch.Tensor  # (B, T)
    legal: torch.Tensor  # (B, T, V) bool: the sampling mask
    logprobs: torch.Tensor  # (B, T): log-prob of each action under the masked policy when sampled
    env_rewards: torch.Tensor  # (B, T)
    valid: torch.Tensor  # (B, T) bool: steps that happened
    complete: torch.Tensor  # (B,) bool: episodes that ended (not cut by the step budget)
    infos: list[dict]  # each episode's last info
    n_steps: int


def complete_episodes(batch: Rollout) -> Rollout:
    """The episodes of ``batch`` that ended; the ones the step budget cut are not trained on."""
    rows = batch.complete
    if bool(rows.all()):
        return batch
    steps = int(batch.valid[rows].sum(1).max())
    return Rollout(
        input_ids=batch.input_ids[rows, : batch.context_len + steps],
        attention_mask=batch.attention_mask[rows, : batch.context_len + steps],
        context_len=batch.context_len, actions=batch.actions[rows, :steps], legal=batch.legal[rows, :steps],
        logprobs=batch.logprobs[rows, :steps],
        env_rewards=batch.env_rewards[rows, :steps], valid=batch.valid[rows, :steps], complete=batch.complete[rows],
        infos=[info for info, keep in zip(batch.infos, rows.tolist()) if keep], n_steps=int(batch.valid[rows].sum()),
    )


def masked_logprobs(logits: torch.Tensor, legal: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """Log-probs of the sampling distribution; steps that did not happen keep all tokens,
    so no row is all -inf."""
    return logits.masked_fill(~(legal | ~valid[..., None]), -torch.inf).log_softmax(-1)


def new_cache(model: Any) -> Any:
    """An empty KV cache for ``model``, filled in place by ``model(..., cache=cache, use_cache=True)``."""
    from transformers import DynamicCache

    return DynamicCache(config=model.config)


def position_ids(attention_mask: torch.Tensor) -> torch.Tensor:
    """Positions that skip left padding, so a padded row sees the same positions as alone."""
    return (attention_mask.cumsum(-1) - 1).clamp(min=0)


class LMPPOAgent(Agent):
    """PPO with a transformers causal LM policy on TokenGen envs (observation keys
    ``prompt_ids``, ``prompt_mask``, ``output_ids``, ``position``; actions = the LM's tokens).

    ``model``: the policy LM (default: :func:`agents.lm.tiny_causal_lm` of the env vocabulary);
    ``ref_model``: the frozen reference (default: a copy of ``model`` as given); ``envs``: the
    rollout envs, a list or a Gymnasium vector env (default: ``num_envs`` copies of ``env``).
    A rollout is one episode per env; ``learn(total_timesteps)`` counts its env steps, and
    the self-critical baseline's greedy rollouts are not counted. Tested on CPU; CUDA and
    ``dtype="bfloat16"`` follow the same code path.
    """

    Config = LMPPOConfig

    def __init__(self, env: gym.Env, model: Any = None, ref_model: Any = None,
                 envs: list[gym.Env] | gym.vector.VectorEnv | None = None, seed: int = 0, **kwargs: Any):
        super().__init__(env, seed=seed, **kwargs)
        missing = [k for k in OBSERVATION_KEYS if k not in getattr(env.observation_space, "spaces", {})]
        if missing:
            raise ValueError(f"LMPPOAgent needs a TokenGen-style observation; {env.observation_space} lacks {missing}")
        cfg = self.config
        self.vocab = env.unwrapped.vocab
        self.device = resolve_device(cfg.device)
        dtype = DTYPES[cfg.dtype]
        model = model if model is not None else tiny_causal_lm(self.vocab)
        check_vocab_size(model, self.n_actions)
        self.model = model.to(self.device, dtype)
        ref_device = resolve_device(cfg.ref_device or str(self.device))
        self.ref_model = self._frozen(ref_model if ref_model is not None else model, ref_device,
                                      DTYPES[cfg.ref_dtype or cfg.dtype])
        check_vocab_size(self.ref_model, self.n_actions)
        self.value_trunk = copy.deepcopy(self.model) if cfg.value_model == "separate" else None
        self.value_head = nn.Linear(self.model.config.hidden_size, 1).to(self.device)
        nn.init.zeros_(self.value_head.weight)
        nn.init.zeros_(self.value_head.bias)
        self.mask_model = None
        if cfg.top_k or cfg.top_p < 1.0:
            lagged = cfg.mask_model == "lagged"
            self.mask_model = self._frozen(self.model, self.device, dtype) if lagged else self.ref_model
        params = [*self.model.parameters(), *self.value_head.parameters()]
        if self.value_trunk is not None:
            params += list(self.value_trunk.parameters())
        self.optimizer = torch.optim.Adam(params, lr=cfg.learning_rate, eps=1e-5)
        self.kl_coef = cfg.kl_coef
        self.generator = torch.Generator(self.device).manual_seed(seed)
        self.envs = EnvBatch(envs if envs is not None else [copy.deepcopy(env) for _ in range(cfg.num_envs)])
        self.update_log = EpisodeLog()  # one record per PPO update: losses/..., charts/kl, ...
        self._act_cache: tuple[list[int], Any, torch.Tensor] | None = None  # tokens, KV cache, next logits
        self.model.eval()

    @staticmethod
    def _frozen(model: Any, device: torch.device, dtype: torch.dtype) -> Any:
        frozen = copy.deepcopy(model).to(device, dtype).eval()
        frozen.requires_grad_(False)
        return frozen

    # ---- acting -------------------------------------------------------------------------

    def _legal(self, env_masks: torch.Tensor, mask_logits: torch.Tensor | None) -> torch.Tensor:
        """The env mask, narrowed to the k likeliest legal tokens / the legal nucleus of mass p
        under the mask model (its distribution renormalised over legal tokens)."""
        if mask_logits is None:
            return env_masks
        cfg = self.config
        mask_logits = mask_logits.float().masked_fill(~env_masks, -torch.inf)
        keep = env_masks.clone()
        if cfg.top_k:
            kth = mask_logits.topk(min(cfg.top_k, mask_logits.shape[-1]), dim=-1).values[..., -1:]
            keep &= mask_logits >= kth
        if cfg.top_p < 1.0:
            sorted_probs, order = mask_logits.softmax(-1).sort(-1, descending=True)
            # a token stays if the mass before it is < p, so the likeliest token always stays
            inside = (sorted_probs.cumsum(-1) - sorted_probs) < cfg.top_p
            keep &= torch.zeros_like(keep).scatter(-1, order, inside)
        return keep

    def _choose(self, logits: torch.Tensor, legal: torch.Tensor, deterministic: bool) -> torch.Tensor:
        masked = (logits.float() / self.config.temperature).masked_fill(~legal, -torch.inf)
        if deterministic:
            return masked.argmax(-1)
        return torch.multinomial(masked.softmax(-1), 1, generator=self.generator).squeeze(-1)

    @torch.no_grad()
    def act(self, obs: dict, info: dict | None = None, deterministic: bool = True) -> int:
        """Keeps a KV cache of the tokens seen last: a call that extends them costs one
        incremental forward pass; any other observation rebuilds the cache."""
        prompt = obs["prompt_ids"][obs["prompt_mask"] == 1]
        tokens = prompt_context(prompt, self.vocab) + [int(t) for t in obs["output_ids"][: int(obs["position"][0])]]
        cached = self._act_cache
        if cached is not None and tokens[: len(cached[0])] == cached[0]:
            new, cache, logits = tokens[len(cached[0]):], cached[1], cached[2]
        else:
            new, cache, logits = tokens, new_cache(self.model), None
        if new:
            ids = torch.tensor([new], device=self.device)
            positions = torch.arange(len(tokens) - len(new), len(tokens), device=self.device)[None]
            logits = self.model(input_ids=ids, position_ids=positions, cache=cache, use_cache=True).logits[0, -1]
        self._act_cache = (tokens, cache, logits)
        env_mask = torch.as_tensor(legal_mask(info, self.n_actions), device=self.device)
        mask_logits = None
        if self.mask_model is not None:
            mask_logits = self.mask_model(input_ids=torch.tensor([tokens], device=self.mask_model.device)).logits[0, -1]
            mask_logits = mask_logits.to(self.device)
        return int(self._choose(logits, self._legal(env_mask, mask_logits), deterministic))

    @torch.no_grad()
    def rollout(self, seeds: list[int], deterministic: bool = False, max_steps: int | None = None) -> Rollout:
        """One episode per env through ``env.step``, all envs in lockstep. Each env's row of
        the batched KV cache holds its own prompt and tokens, so a step is one incremental
        forward pass for the whole batch; finished envs stop being stepped. The rollout stops
        after ``max_steps`` env steps, leaving cut episodes marked incomplete."""
        envs, vocab, device = self.envs, self.vocab, self.device
        starts = envs.reset(seeds)
        contexts = [prompt_context(obs["prompt_ids"][obs["prompt_mask"] == 1], vocab) for obs, _ in starts]
        n, width = envs.n, max(map(len, contexts))
        context_ids = torch.full((n, width), vocab.pad_id, dtype=torch.long)
        context_mask = torch.zeros((n, width), dtype=torch.long)
        for i, context in enumerate(contexts):  # left padding: every row's next token is at the end
            context_ids[i, width - len(context):] = torch.tensor(context)
            context_mask[i, width - len(context):] = 1
        infos = [info for _, info in starts]
        active, finished = [True] * n, [False] * n
        actions, legals, rewards, logprobs = [], [], [], []
        ids, attention = context_ids.to(device), context_mask.to(device)
        positions = position_ids(attention)
        # one cache row per env; a forward pass appends each row's newest token in place
        cache = new_cache(self.model)
        mask_cache = new_cache(self.mask_model) if self.mask_model is not None else None
        n_steps = 0
        while any(active) and (max_steps is None or n_steps < max_steps):
            out = self.model(input_ids=ids, attention_mask=attention, position_ids=positions, cache=cache,
                             use_cache=True)
            mask_logits = None
            if self.mask_model is not None:
                mask_device = self.mask_model.device
                mask_logits = self.mask_model(input_ids=ids.to(mask_device), attention_mask=attention.to(mask_device),
                                              position_ids=positions.to(mask_device), cache=mask_cache,
                                              use_cache=True).logits[:, -1].to(device)
            env_masks = torch.as_tensor(np.stack([legal_mask(info, self.n_actions) for info in infos]), device=device)
            legal = self._legal(env_masks, mask_logits)
            action = self._choose(out.logits[:, -1], legal, deterministic)
            everyone = torch.ones_like(action, dtype=torch.bool)
            step_logprobs = masked_logprobs(out.logits[:, -1].float() / self.config.temperature, legal, everyone)
            if max_steps is not None and n_steps + sum(active) > max_steps:  # the budget cuts this step short
                allowed = max_steps - n_steps
                active = [on and sum(active[: i + 1]) <= allowed for i, on in enumerate(active)]
            stepping = torch.tensor(active, device=device)
            results = envs.step(action.tolist(), active)
            step_rewards = torch.zeros(n)
            for i, result in enumerate(results):
                if result is not None:
                    _, step_rewards[i], terminated, truncated, infos[i] = result
                    finished[i] = terminated or truncated
                    active[i] = not finished[i]
            n_steps += int(stepping.sum())
            actions.append(torch.where(stepping, action, vocab.pad_id))
            legals.append(legal & stepping[:, None])
            rewards.append(step_rewards)
            logprobs.append(step_logprobs.gather(-1, action[:, None]).squeeze(-1) * stepping)
            ids = actions[-1][:, None]
            attention = torch.cat([attention, stepping[:, None].long()], dim=1)
            positions = positions[:, -1:] + 1
        valid = torch.stack(legals, 1).any(-1)
        actions_t = torch.stack(actions, 1).cpu()
        return Rollout(
            input_ids=torch.cat([context_ids, actions_t], 1),
            attention_mask=torch.cat([context_mask, valid.long().cpu()], 1),
            context_len=width, actions=actions_t, legal=torch.stack(legals, 1), logprobs=torch.stack(logprobs, 1).cpu(),
            env_rewards=torch.stack(rewards, 1),
            valid=valid.cpu(), complete=torch.tensor(finished), infos=infos, n_steps=n_steps,
        )

    # ---- learning -------------------------------------------------------------------------

    def _outputs(self, batch: Rollout, rows: torch.Tensor | slice = slice(None)) -> tuple[torch.Tensor, torch.Tensor]:
        """Logits (temperature applied) and values at each step of episodes ``rows``."""
        ids, attention = batch.input_ids[rows].to(self.device), batch.attention_mask[rows].to(self.device)
        columns = slice(batch.context_len - 1, batch.context_len - 1 + batch.actions.shape[1])
        out = self.model(input_ids=ids, attention_mask=attention, position_ids=position_ids(attention),
                         output_hidden_states=self.value_trunk is None)
        trunk = out if self.value_trunk is None else self.value_trunk(
            input_ids=ids, attention_mask=attention, position_ids=position_ids(attention), output_hidden_states=True)
        values = self.value_head(trunk.hidden_states[-1][:, columns].float()).squeeze(-1)
        return out.logits[:, columns].float() / self.config.temperature, values

    @torch.no_grad()
    def reference_logprobs(self, batch: Rollout) -> torch.Tensor:
        """(B, T, V) log-probs of pi_ref renormalised over each step's sampling mask: the
        distribution the KL compares the masked policy with."""
        device = self.ref_model.device
        ids, attention = batch.input_ids.to(device), batch.attention_mask.to(device)
        logits = self.ref_model(input_ids=ids, attention_mask=attention, position_ids=position_ids(attention)).logits
        columns = slice(batch.context_len - 1, batch.context_len - 1 + batch.actions.shape[1])
        logits = logits[:, columns].float().to(self.device) / self.config.temperature
        return masked_logprobs(logits, batch.legal.to(self.device), batch.valid.to(self.device))

    def kl_per_token(self, logprobs: torch.Tensor, ref_logprobs: torch.Tensor) -> torch.Tensor:
        """The k1 or k3 estimate of KL(pi || pi_ref) from the log-probs of the sampled tokens."""
        log_ratio = ref_logprobs - logprobs  # log(pi_ref / pi) at the sampled tokens
        if self.config.kl_estimator == "k1":
            return -log_ratio
        return log_ratio.exp() - 1 - log_ratio

    @torch.no_grad()
    def prepare(self, batch: Rollout, baseline: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """Old log-probs and values, KL-penalised rewards, advantages and returns, the KL
        estimate per step (``kl``, in the rewards) and the exact KL at each visited state (``exact_kl``).
        ``baseline`` (one greedy return per episode) is required for self-critical advantages."""
        cfg = self.config
        if cfg.advantage == "self-critical" and baseline is None:
            raise ValueError("advantage='self-critical' needs baseline=: the greedy rollout's return per episode")
        valid = batch.valid.to(self.device)
        actions = batch.actions.to(self.device)[..., None]
        logits, values = self._outputs(batch)
        legal = batch.legal.to(self.device)
        masked = masked_logprobs(logits, legal, valid)
        old_logprobs = masked.gather(-1, actions).squeeze(-1)
        ref_masked = self.reference_logprobs(batch)
        kl = self.kl_per_token(old_logprobs, ref_masked.gather(-1, actions).squeeze(-1)) * valid
        # the KL at each visited state summed over its legal tokens rather than sampled: >= 0
        exact_kl = torch.where(legal, masked.exp() * (masked - ref_masked), 0.0).sum(-1) * valid
        rewards = batch.env_rewards.to(self.device) - self.kl_coef * kl
        values = values * valid
        n_steps = rewards.shape[1]
        advantages = torch.zeros_like(rewards)
        if cfg.advantage == "gae":
            last = torch.zeros(rewards.shape[0], device=self.device)
            for t in reversed(range(n_steps)):
                # valid is a prefix per row, so valid[t + 1] == 0 marks the episode's last step
                continues = valid[:, t + 1].float() if t + 1 < n_steps else torch.zeros_like(last)
                next_value = values[:, t + 1] if t + 1 < n_steps else torch.zeros_like(last)
                delta = rewards[:, t] + cfg.gamma * next_value * continues - values[:, t]
                last = delta + cfg.gamma * cfg.gae_lambda * continues * last
                advantages[:, t] = last * valid[:, t]
            returns = advantages + values
        else:
            returns = torch.zeros_like(rewards)
            running = torch.zeros(rewards.shape[0], device=self.device)
            for t in reversed(range(n_steps)):
                running = rewards[:, t] + cfg.gamma * running
                returns[:, t] = running * valid[:, t]
            advantages = (returns - baseline.to(self.device)[:, None]) * valid
        if cfg.whiten_advantages and valid.sum() > 1:
            mean, std = advantages[valid].mean(), advantages[valid].std()
            advantages = (advantages - mean) / (std + 1e-8) * valid
        return {"old_logprobs": old_logprobs, "old_values": values, "advantages": advantages, "returns": returns,
                "kl": kl, "exact_kl": exact_kl, "valid": valid}

    def loss(self, batch: Rollout, prepared: dict[str, torch.Tensor], rows: torch.Tensor | slice = slice(None)):
        """The PPO loss on episodes ``rows``, and its parts for logging."""
        cfg = self.config
        valid = prepared["valid"][rows]
        n_valid = valid.sum().clamp(min=1)
        logits, values = self._outputs(batch, rows)
        masked = masked_logprobs(logits, batch.legal[rows].to(self.device), valid)
        logprobs = masked.gather(-1, batch.actions[rows].to(self.device)[..., None]).squeeze(-1)
        log_ratio = (logprobs - prepared["old_logprobs"][rows]) * valid
        ratio = log_ratio.exp()
        advantages = prepared["advantages"][rows]
        policy_loss = torch.max(-advantages * ratio, -advantages * ratio.clamp(1 - cfg.clip_coef, 1 + cfg.clip_coef))
        policy_loss = (policy_loss * valid).sum() / n_valid
        returns, old_values = prepared["returns"][rows], prepared["old_values"][rows]
        value_error = (values - returns) ** 2
        if cfg.clip_value is not None:
            clipped = old_values + (values - old_values).clamp(-cfg.clip_value, cfg.clip_value)
            value_error = torch.max(value_error, (clipped - returns) ** 2)
        value_loss = 0.5 * (value_error * valid).sum() / n_valid
        entropy_terms = masked.exp() * masked.masked_fill(masked == -torch.inf, 0)
        entropy = (-entropy_terms.sum(-1) * valid).sum() / n_valid
        total = policy_loss - cfg.ent_coef * entropy
        if cfg.advantage == "gae":  # self-critical training has no critic to fit
            total = total + cfg.vf_coef * value_loss
        approx_kl = (((ratio - 1) - log_ratio) * valid).sum() / n_valid
        return total, {"losses/policy": policy_loss.item(), "losses/value": value_loss.item(),
                       "losses/entropy": entropy.item(), "losses/approx_kl": approx_kl.item()}

    def update(self, batch: Rollout, prepared: dict[str, torch.Tensor]) -> dict[str, float]:
        """Minibatch epochs of clipped PPO; stops early once approx KL passes ``max_approx_kl``."""
        cfg = self.config
        self.model.train()
        parts: dict[str, float] = {}
        episodes, stop_early = batch.actions.shape[0], False
        for _ in range(cfg.n_epochs):
            order = torch.randperm(episodes, generator=torch.Generator().manual_seed(int(self.rng.integers(2**31))))
            for rows in order.chunk(min(cfg.n_minibatches, episodes)):
                total, parts = self.loss(batch, prepared, rows)
                self.optimizer.zero_grad()
                total.backward()
                nn.utils.clip_grad_norm_([p for group in self.optimizer.param_groups for p in group["params"]],
                                         cfg.max_grad_norm)
                self.optimizer.step()
                stop_early = cfg.max_approx_kl is not None and parts["losses/approx_kl"] > cfg.max_approx_kl
                if stop_early:
                    break
            if stop_early:
                break
        self.model.eval()
        self._act_cache = None
        return parts

    def adapt_kl_coef(self, episode_kl: torch.Tensor) -> None:
        """Ziegler et al.'s controller: beta moves toward the value that gives ``kl_target``
        nats per episode, by at most 20% per ``kl_horizon`` episodes."""
        cfg = self.config
        error = float(np.clip(episode_kl.mean().item() / cfg.kl_target - 1, -0.2, 0.2))
        self.kl_coef *= 1 + error * len(episode_kl) / cfg.kl_horizon

    def learn(self, total_timesteps: int, progress_bar: bool = False, callback: Callback | None = None) -> LMPPOAgent:
        self._check_timesteps(total_timesteps)
        cfg = self.config
        tracker = EpisodeTracker(self, total_timesteps, progress_bar, callback)
        steps, n_updates, keep_going = 0, 0, True
        while steps < total_timesteps and keep_going:
            start = time.perf_counter()
            seeds = [int(s) for s in self.rng.integers(2**31, size=self.envs.n)]
            batch = self.rollout(seeds, max_steps=total_timesteps - steps)
            rollout_time = time.perf_counter() - start
            for i in range(self.envs.n):  # replay each episode into the tracker, one after another
                length = int(batch.valid[i].sum())
                for t in range(length):
                    done = t == length - 1 and bool(batch.complete[i])
                    if keep_going:  # the callback is not asked again once it said stop
                        keep_going = tracker.step(steps, float(batch.env_rewards[i, t]), done, batch.infos[i])
                    steps += 1
            n_steps = batch.n_steps
            self.num_timesteps += n_steps
            if not bool(batch.complete.any()):
                continue
            complete = batch.complete
            batch = complete_episodes(batch)
            baseline = None
            if cfg.advantage == "self-critical":  # the same prompts again, greedily: SCST's baseline
                baseline = self.rollout(seeds, deterministic=True).env_rewards.sum(1)[complete]
            prepared = self.prepare(batch, baseline)
            parts = self.update(batch, prepared)
            episode_kl = prepared["exact_kl"].sum(1)
            if cfg.kl_controller == "adaptive":
                self.adapt_kl_coef(episode_kl)
            if cfg.mask_model == "lagged" and self.mask_model is not None and n_updates % cfg.mask_update_interval == 0:
                self.mask_model.load_state_dict(self.model.state_dict())
            n_updates += 1
            self.update_log.add({"step": self.num_timesteps, **parts, "charts/kl": episode_kl.mean().item(),
                                 "charts/kl_coef": self.kl_coef,
                                 "charts/episode_return": batch.env_rewards.sum(1).mean().item(),
                                 "charts/rollout_tokens_per_second": n_steps / max(rollout_time, 1e-9),
                                 "charts/steps_per_second": n_steps / (time.perf_counter() - start)})
            if self.log.writer is not None:
                for key, value in self.update_log.records[-1].items():
                    if key != "step":
                        self.log.writer.add_scalar(key, value, self.num_timesteps)
        tracker.close()
        return self

    # ---- checkpoints ------------------------------------------------------------------------

    def _modules(self) -> dict[str, nn.Module]:
        modules = {"policy": self.model, "value_head": self.value_head, "reference": self.ref_model}
        if self.value_trunk is not None:
            modules["value_trunk"] = self.value_trunk
        return modules

    def _state(self) -> dict:
        return {name: module.state_dict() for name, module in self._modules().items()}

    def _load_state(self, state: dict) -> None:
        for name, module in self._modules().items():
            module.load_state_dict(state[name])

    def save(self, path: str | os.PathLike) -> None:
        """A directory: ``agent.json`` (config, spaces, model configs, a SHA-256 per weights
        file) and one ``.safetensors`` file per module. It is written whole into a temporary
        directory beside ``path`` and swapped in by renames, so ``path`` always holds the old
        or the new checkpoint; what a killed save leaves behind is cleaned up by the next
        ``save`` or ``load`` (see :func:`heal_checkpoint_dir`)."""
        from safetensors.torch import save_model

        path = Path(path)
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
            meta = {"agent": type(self).__name__, "config": dataclasses.asdict(self.config), "seed": self.seed,
                    "num_timesteps": self.num_timesteps, "kl_coef": self.kl_coef,
                    "spaces": space_signature(self.env), "policy_config": self.model.config.to_dict(),
                    "reference_config": self.ref_model.config.to_dict(), "sha256": digests}
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
    def load(cls, path: str | os.PathLike, env: gym.Env | None = None) -> LMPPOAgent:
        """Load a directory written by ``save`` into an agent acting in ``env`` (required,
        with the spaces the agent was trained on). Weights load as tensors only, after their
        SHA-256 is checked against ``agent.json``."""
        from safetensors.torch import load_model

        path = Path(path)
        heal_checkpoint_dir(path)
        if not (path / "agent.json").is_file():
            raise FileNotFoundError(f"no checkpoint at {path} (an LMPPOAgent checkpoint is a directory with agent.json)")
        try:
            meta = json.loads((path / "agent.json").read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            raise ValueError(f"checkpoint {path} is corrupted (agent.json is not valid JSON: {error})") from None
        required = ("agent", "config", "seed", "num_timesteps", "kl_coef", "spaces", "policy_config",
                    "reference_config")
        missing = [key for key in required if not isinstance(meta, dict) or key not in meta]
        if missing:
            raise ValueError(f"checkpoint {path} is corrupted (agent.json lacks {missing})")
        if meta["agent"] != cls.__name__:
            raise ValueError(f"{path} holds a {meta['agent']} checkpoint, not a {cls.__name__} one")
        if env is None:
            raise ValueError(f"{cls.__name__}.load needs env=: the env the agent will act in")
        if space_signature(env) != meta["spaces"]:
            raise ValueError(f"{path} was trained on different spaces:\n  checkpoint: {meta['spaces']}\n"
                             f"  env:        {space_signature(env)}")
        config = dict(meta["config"])
        if "n_envs" in config:  # checkpoints written before the rename to num_envs
            config["num_envs"] = config.pop("n_envs")
        agent = cls(env, model=_model_from_config(meta["policy_config"]),
                    ref_model=_model_from_config(meta["reference_config"]), seed=meta["seed"], **config)
        digests = meta.get("sha256")  # absent in checkpoints written before digests were stored
        for name, module in agent._modules().items():
            weights = path / f"{name}.safetensors"
            if not weights.is_file():
                raise FileNotFoundError(f"checkpoint {path} is incomplete: {weights.name} is missing")
            if digests is not None and digests.get(weights.name) != file_sha256(weights):
                raise ValueError(f"checkpoint {path} is corrupted (digest mismatch in {weights.name})")
            load_model(module, str(weights), device=str(next(module.parameters()).device))
        agent.num_timesteps, agent.kl_coef = meta["num_timesteps"], meta["kl_coef"]
        return agent


def file_sha256(path: Path) -> str:
    with path.open("rb") as file:
        return hashlib.file_digest(file, "sha256").hexdigest()


def checkpoint_sibling(path: Path, tag: str) -> Path:
    """``.NAME.old`` (the checkpoint being replaced) or ``.NAME.tmp-PID-XXXX`` (one being written)."""
    return path.with_name(f".{path.name}.{tag}")


def heal_checkpoint_dir(path: Path) -> None:
    """Repair what a save killed midway leaves beside checkpoint ``path``: an old checkpoint
    moved aside to ``.NAME.old`` (always complete) goes back if ``path`` is missing and is
    deleted otherwise; temporaries of saves whose process is gone are deleted."""
    old = checkpoint_sibling(path, "old")
    if old.exists():
        if path.exists():
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(old, path)
    for tmp in path.parent.glob(glob.escape(checkpoint_sibling(path, "tmp").name) + "*"):
        if not _writer_running(tmp):
            shutil.rmtree(tmp, ignore_errors=True)


def _writer_running(tmp: Path) -> bool:
    """Whether another live process is writing temporary ``tmp`` (named ``...tmp-PID-...``)."""
    pid = tmp.name.rpartition(".tmp-")[2].partition("-")[0]
    if not pid.isdigit() or int(pid) == os.getpid():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, owned by someone else
        return True
    return True


def _model_from_config(config: dict) -> Any:
    from transformers import AutoConfig, AutoModelForCausalLM

    config = dict(config)
    return AutoModelForCausalLM.from_config(AutoConfig.for_model(config.pop("model_type"), **config))
