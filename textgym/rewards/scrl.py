"""The SCRL reward for unsupervised sentence compression (Ghalandari et al., ACL 2022):
fluency, similarity to the source and a length target, with no reference compressions."""

from __future__ import annotations

from typing import Any

from textgym.rewards.compression import CompressionScore
from textgym.rewards.lm_fluency import LMFluency
from textgym.rewards.reward import Reward
from textgym.rewards.similarity import SentenceSimilarity


def scrl_reward(ratio: float | None = None, length: int | None = None, shape: str = "gaussian",
                width: float | None = None, weight: float = 1.0, fluency_weight: float = 1.0,
                fluency_model: Any = "smollm2", similarity_model: Any = None) -> Reward:
    """``fluency_weight * fluency + similarity + weight * compression``, normalised to [0, 1].

    - ``fluency``: :class:`LMFluency` relative to the source, clip(1 + (m(output) -
      m(source)) / 5, 0, 1) with m the mean token log-probability under ``fluency_model``
      (default SmolLM2-135M, offline): 1 when the compression reads as well as the sentence.
    - ``similarity``: :class:`SentenceSimilarity`, the cosine of the output's and the
      source's sentence embeddings under ``similarity_model`` (default all-MiniLM-L6-v2).
    - ``compression``: :class:`CompressionScore` of ``ratio`` or ``length``, ``shape`` and
      ``width``; ``weight`` is relative to similarity's (1: equal thirds).

    ``fluency_weight`` trades similarity for fluency, and steeply: a causal LM pays as much
    for any first word, so deleting a sentence's opening words costs it next to nothing,
    while deleting its function words keeps the embedding close but reads as broken. On
    CommonGen sentences (``benchmarks/scrl_compression.py``) a policy trained at weight 1
    leaned to the function words, and at 1.1 to 2 it learned to delete the opening words
    (similarity 0.72 to 0.82).

    TokenEdit builds it for ``reward="scrl", compression={"ratio": 0.4}``; each part shows
    in ``info["metrics"]``.
    """
    return Reward([
        ("fluency", LMFluency(fluency_model, relative=True), fluency_weight),
        ("similarity", SentenceSimilarity(similarity_model), 1.0),
        ("compression", CompressionScore(ratio, length, shape, width), weight),
    ])
