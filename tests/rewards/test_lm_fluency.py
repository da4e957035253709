"""LM rewards: fluency in [0, 1] and perplexity, batched and usable as env rewards."""

import math
import subprocess
import sys

import gymnasium as gym
import pytest
import torch

import textgym  # noqa: F401
from agents.lm import pretrain_mle, tiny_causal_lm
from textgym.rewards import LMFluency, LMScorer, Perplexity

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def copy_lm():
    vocab = gym.make("TokenGen-Copy-v0").unwrapped.vocab
    torch.manual_seed(0)
    model = tiny_causal_lm(vocab, n_layer=1, n_embd=32, n_head=2)
    pretrain_mle(model, "copy", vocab, epochs=1, batch_size=64, learning_rate=3e-3)
    return model, vocab


def test_fluency_is_exp_mean_logprob_and_perplexity_its_inverse(copy_lm):
    model, vocab = copy_lm
    scorer = LMScorer(model, vocab)
    fluency, perplexity = LMFluency(scorer), Perplexity(scorer)
    texts = ["a b c", "c", "", "e e e e e e"]
    scores = fluency.batch(texts)
    assert all(0 < s <= 1 for s in scores)
    assert scores == [fluency(t, ["x"], "") for t in texts]  # cached, and the same one at a time
    ids = torch.tensor([[vocab.bos_id, *vocab.encode("a b c"), vocab.eos_id]])
    with torch.no_grad():
        logprobs = model(input_ids=ids).logits[0, :-1].log_softmax(-1).gather(-1, ids[0, 1:, None])
    assert scores[0] == pytest.approx(math.exp(logprobs.mean().item()), rel=1e-5)
    assert perplexity("a b c", [], "") == pytest.approx(1 / scores[0], rel=1e-5)


def test_fluency_as_an_env_reward(copy_lm):
    model, vocab = copy_lm
    env = gym.make("TokenGen-Copy-v0", vocab=vocab,
                   reward=[("token_accuracy", 0.5), (LMFluency(model, vocab), 0.5), (Perplexity(model, vocab), 0.0)])
    obs, info = env.reset(seed=0)
    done = False
    while not done:
        obs, reward, terminated, truncated, info = env.step(env.action_space.sample(mask=info["action_mask"]))
        done = terminated or truncated
    assert set(info["metrics"]) == {"token_accuracy", "lm_fluency", "perplexity"}
    assert info["metrics"]["perplexity"] >= 1 and 0 < info["metrics"]["lm_fluency"] <= 1


def test_mismatched_vocabulary_is_a_clear_error(copy_lm):
    model, _ = copy_lm
    other = gym.make("TokenGen-Keywords-v0").unwrapped.vocab
    with pytest.raises(ValueError, match="the model scores 9 tokens but the vocabulary has"):
        LMFluency(model, other)


def test_importing_textgym_does_not_import_transformers():
    code = "import sys, textgym, textgym.rewards; print('transformers' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout.strip() == "False"
