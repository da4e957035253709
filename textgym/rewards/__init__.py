"""Metric rewards in [0, 1], sparse or dense; LM fluency, perplexity and similarity to the
source; the SCRL compression reward."""

from textgym.rewards.compression import CompressionScore
from textgym.rewards.lm_fluency import LMFluency, LMScorer, Perplexity
from textgym.rewards.metrics import (
    METRICS,
    Length,
    Metric,
    bleu,
    chrf,
    concept_coverage,
    coverage,
    distinct_n,
    exact_match,
    rouge1,
    rouge2,
    rouge_scores,
    rougeL,
    ter,
    token_accuracy,
    token_f1,
)
from textgym.rewards.reward import (
    REWARD_MODES,
    EpisodeReward,
    EvaluateMetric,
    Reward,
    check_reward_mode,
    make_reward,
    needs_references,
)
from textgym.rewards.scrl import scrl_reward
from textgym.rewards.similarity import SentenceEncoder, SentenceSimilarity

__all__ = [
    "METRICS", "REWARD_MODES", "CompressionScore", "EpisodeReward", "EvaluateMetric", "LMFluency", "LMScorer", "Length",
    "Metric", "Perplexity", "Reward", "SentenceEncoder", "SentenceSimilarity",
    "bleu", "check_reward_mode", "chrf", "concept_coverage", "coverage", "distinct_n", "exact_match", "make_reward",
    "needs_references", "rouge1", "rouge2", "rougeL", "rouge_scores", "scrl_reward", "ter", "token_accuracy", "token_f1",
]
