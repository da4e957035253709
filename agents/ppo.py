"""PPO for LM policies, as pure functions on (B, T) tensors of episodes: masked
log-probs, the KL to a reference, GAE, self-critical and group advantages, the clipped losses
and Ziegler et al.'s adaptive KL controller.

Every step has a legal set L (the env's action mask, maybe narrowed to a top-k / top-p
nucleus). The policy samples from pi_L(a) = pi(a) / pi(L), and the reference is
renormalised over the same L, so the per-token estimate of KL(pi_L || pi_ref_L) is 0 while
pi = pi_ref and never biased by the mask itself (see ``agents.lm_ppo``).
"""

from __future__ import annotations

import torch


def masked_logprobs(logits: torch.Tensor, legal: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """Log-probs of the sampling distribution over each step's legal set; steps that did
    not happen keep every action, so that no row is all -inf."""
    return logits.masked_fill(~(legal | ~valid[..., None]), -torch.inf).log_softmax(-1)


def narrowed_legal(env_masks: torch.Tensor, mask_logits: torch.Tensor | None, top_k: int, top_p: float) -> torch.Tensor:
    """The env mask narrowed to the k likeliest legal actions and / or the legal nucleus of
    mass p under ``mask_logits`` (renormalised over the legal actions) — NLPO's mask."""
    if mask_logits is None or (not top_k and top_p >= 1.0):
        return env_masks
    mask_logits = mask_logits.float().masked_fill(~env_masks, -torch.inf)
    keep = env_masks.clone()
    if top_k:
        kth = mask_logits.topk(min(top_k, mask_logits.shape[-1]), dim=-1).values[..., -1:]
        keep &= mask_logits >= kth
    if top_p < 1.0:
        sorted_probs, order = mask_logits.softmax(-1).sort(-1, descending=True)
        # an action stays if the mass before it is < p, so the likeliest one always stays
        inside = (sorted_probs.cumsum(-1) - sorted_probs) < top_p
        keep &= torch.zeros_like(keep).scatter(-1, order, inside)
    return keep


def kl_per_token(logprobs: torch.Tensor, ref_logprobs: torch.Tensor, estimator: str) -> torch.Tensor:
    """The k1 (log ratio) or k3 ((rho - 1) - log rho, >= 0) estimate of KL(pi || pi_ref)
    from the log-probs of the sampled actions."""
    log_ratio = ref_logprobs - logprobs  # log rho = log(pi_ref / pi)
    if estimator == "k1":
        return -log_ratio
    return log_ratio.exp() - 1 - log_ratio


def exact_kl(logprobs: torch.Tensor, ref_logprobs: torch.Tensor, legal: torch.Tensor) -> torch.Tensor:
    """KL(pi_L || pi_ref_L) at each visited state, summed over its legal actions: >= 0.
    Differentiable: the illegal actions' -inf log-probs are zeroed first (their terms are then
    1 * 0), where a mask after the product would pass back NaN from 0 * (-inf - -inf)."""
    logprobs, ref_logprobs = logprobs.masked_fill(~legal, 0.0), ref_logprobs.masked_fill(~legal, 0.0)
    return (logprobs.exp() * (logprobs - ref_logprobs)).sum(-1)


def gae(rewards: torch.Tensor, values: torch.Tensor, valid: torch.Tensor, gamma: float,
        gae_lambda: float) -> tuple[torch.Tensor, torch.Tensor]:
    """GAE(gamma, lambda) advantages and returns. Each row's valid steps are a prefix and its
    last step is terminal, so nothing is bootstrapped past it."""
    advantages = torch.zeros_like(rewards)
    last = torch.zeros(rewards.shape[0], device=rewards.device)
    n_steps = rewards.shape[1]
    for t in reversed(range(n_steps)):
        # valid[t + 1] == 0 marks the episode's last step
        continues = valid[:, t + 1].float() if t + 1 < n_steps else torch.zeros_like(last)
        next_value = values[:, t + 1] if t + 1 < n_steps else torch.zeros_like(last)
        delta = rewards[:, t] + gamma * next_value * continues - values[:, t]
        last = delta + gamma * gae_lambda * continues * last
        advantages[:, t] = last * valid[:, t]
    return advantages, advantages + values


def returns_to_go(rewards: torch.Tensor, valid: torch.Tensor, gamma: float) -> torch.Tensor:
    """The discounted return from each step to the episode's end."""
    returns = torch.zeros_like(rewards)
    running = torch.zeros(rewards.shape[0], device=rewards.device)
    for t in reversed(range(rewards.shape[1])):
        running = rewards[:, t] + gamma * running
        returns[:, t] = running * valid[:, t]
    return returns


def self_critical(rewards: torch.Tensor, valid: torch.Tensor, baseline: torch.Tensor,
                  gamma: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Rennie et al.'s advantages: the return to go minus the greedy rollout's return."""
    returns = returns_to_go(rewards, valid, gamma)
    return (returns - baseline.to(rewards.device)[:, None]) * valid, returns


def group_relative(rewards: torch.Tensor, valid: torch.Tensor, group_size: int, gamma: float,
                   scale: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """GRPO's advantages (Shao et al., 2024): rows come in groups of ``group_size`` episodes of
    one prompt, and each episode's return minus its group's mean return (divided by the
    group's std with ``scale``) is the advantage of every one of its steps."""
    returns = returns_to_go(rewards, valid, gamma)
    groups = returns[:, 0].reshape(-1, group_size)
    relative = groups - groups.mean(1, keepdim=True)
    if scale:
        relative = relative / (groups.std(1, keepdim=True) + 1e-8)
    return relative.reshape(-1, 1) * valid, returns


def whitened(advantages: torch.Tensor, valid: torch.Tensor,
             moments: tuple[float, float] | None = None) -> torch.Tensor:
    """Advantages less their mean over valid steps, over their std; ``moments`` (mean, std)
    replaces the batch's own (data-parallel training passes those of every rank's batch)."""
    if moments is None:
        if valid.sum() <= 1:
            return advantages
        moments = advantages[valid].mean(), advantages[valid].std()
    mean, std = moments
    return (advantages - mean) / (std + 1e-8) * valid


def clipped_losses(logprobs: torch.Tensor, old_logprobs: torch.Tensor, advantages: torch.Tensor,
                   values: torch.Tensor | None, old_values: torch.Tensor | None, returns: torch.Tensor, valid: torch.Tensor,
                   clip_coef: float, clip_value: float | None) -> dict[str, torch.Tensor]:
    """PPO's clipped policy loss, the (clipped) value loss (none without ``values``: a
    policy without a critic) and approx KL(old || new), as means over valid steps."""
    n_valid = valid.sum().clamp(min=1)
    log_ratio = (logprobs - old_logprobs) * valid
    ratio = log_ratio.exp()
    policy = torch.max(-advantages * ratio, -advantages * ratio.clamp(1 - clip_coef, 1 + clip_coef))
    losses = {"policy": (policy * valid).sum() / n_valid, "approx_kl": (((ratio - 1) - log_ratio) * valid).sum() / n_valid}
    if values is not None:
        value_error = (values - returns) ** 2
        if clip_value is not None:
            clipped = old_values + (values - old_values).clamp(-clip_value, clip_value)
            value_error = torch.max(value_error, (clipped - returns) ** 2)
        losses["value"] = 0.5 * (value_error * valid).sum() / n_valid
    return losses


def entropy(masked: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """Mean entropy of the masked distributions over valid steps."""
    terms = masked.exp() * masked.masked_fill(masked == -torch.inf, 0)
    return (-terms.sum(-1) * valid).sum() / valid.sum().clamp(min=1)


def adapted_kl_coef(kl_coef: float, mean_episode_kl: float, n_episodes: int, kl_target: float,
                    kl_horizon: int) -> float:
    """Ziegler et al.'s controller: beta moves toward the value that gives ``kl_target`` nats
    per episode, by at most 20% per ``kl_horizon`` episodes."""
    error = min(max(mean_episode_kl / kl_target - 1, -0.2), 0.2)
    return kl_coef * (1 + error * n_episodes / kl_horizon)
