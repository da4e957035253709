"""What the keywords benchmarks share: lesson 07's small keywords task, its warm-started
tiny GPT-2, and the sampled BLEU that scores an agent on it."""

from __future__ import annotations

import gymnasium as gym
import torch

import textgym  # noqa: F401
from agents import LMPPOAgent, evaluate
from agents.lm import pretrain_mle, tiny_causal_lm

TASK, TASK_KWARGS = "TokenGen-Keywords-v0", {"n_subjects": 5, "n_verbs": 4, "n_objects": 5}  # 60 train prompts
EVAL_REPEATS = 4


def warm_start(seed: int) -> torch.nn.Module:
    """A tiny GPT-2 (2 layers, 64 wide) over the task's word vocabulary, after 4 MLE epochs."""
    torch.manual_seed(seed)
    env = gym.make(TASK, task_kwargs=TASK_KWARGS)
    model = tiny_causal_lm(env.unwrapped.vocab, n_layer=2, n_embd=64, n_head=2)
    pretrain_mle(model, env.unwrapped.task, env.unwrapped.vocab, epochs=4, batch_size=64, learning_rate=1e-3, seed=seed)
    return model


def sampled_bleu(agent: LMPPOAgent, env: gym.Env) -> float:
    """Mean BLEU of ``EVAL_REPEATS`` sampled episodes per train prompt, on prompts drawn at random."""
    return evaluate(agent, env, n_episodes=EVAL_REPEATS * len(env.unwrapped.examples), deterministic=False)["bleu"]
