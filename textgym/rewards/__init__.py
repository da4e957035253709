"""Metric rewards in [0, 1], sparse or dense; LM fluency and perplexity."""

from textgym.rewards.compression import CompressionScore
from textgym.rewards.lm_fluency import LMFluency, LMScorer, Perplexity
from textgym.rewards.metrics import (
    METRICS,
    Length,
    Metric,
    bleu,
    chrf,
    exact_match,
    rouge1,
    rouge2,
    rougeL,
    ter,
    token_accuracy,
    token_f1,
)
from textgym.rewards.reward import REWARD_MODES, EpisodeReward, EvaluateMetric, Reward, check_reward_mode, make_reward

__all__ = [
    "METRICS", "REWARD_MODES", "CompressionScore", "EpisodeReward", "EvaluateMetric", "LMFluency", "LMScorer", "Length",
    "Metric", "Perplexity", "Reward",
    "bleu", "check_reward_mode", "chrf", "exact_match", "make_reward", "rouge1", "rouge2", "rougeL",
    "ter", "token_accuracy", "token_f1",
]
