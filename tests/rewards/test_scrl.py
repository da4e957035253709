"""The SCRL preset and reference-free tasks: sentences without references train TokenEdit
on fluency, similarity and length, and rewards that need references fail at construction."""

import math

import gymnasium as gym
import numpy as np
import pytest
import torch

import textgym  # noqa: F401
from agents.lm import tiny_causal_lm, tiny_text_model, word_piece_tokenizer
from textgym.rewards import CompressionScore, LMFluency, LMScorer, SentenceEncoder, make_reward, scrl_reward
from textgym.tasks import load_task
from textgym.vocab import WordVocabulary

SENTENCES = ["the old cat sat quietly on the warm mat", "a small dog ran fast in the green park",
             "stocks fell sharply on monday after the report"]


@pytest.fixture(scope="module")
def tiny_scrl():
    """The SCRL reward over tiny random-init models, ratio 0.5, compression weighted 2."""
    torch.manual_seed(0)
    vocab = WordVocabulary.build(SENTENCES)
    tokenizer = word_piece_tokenizer(SENTENCES, vocab_size=200)
    return scrl_reward(ratio=0.5, weight=2.0, fluency_model=LMScorer(tiny_causal_lm(vocab, n_layer=1, n_embd=16, n_head=2), vocab),
                       similarity_model=SentenceEncoder(tiny_text_model(tokenizer, n_layer=1, hidden_size=16), tokenizer))


@pytest.fixture
def sentence_file(tmp_path):
    path = tmp_path / "sentences.txt"
    path.write_text("\n".join(SENTENCES[:2]) + "\n\n  " + SENTENCES[2] + "  \n", encoding="utf-8")
    return path


def test_the_preset_is_the_weighted_sum_of_its_parts(tiny_scrl):
    source = SENTENCES[0]
    predictions = [source, "the cat sat on the mat", "cat", ""]
    results = tiny_scrl.batch(predictions, [()] * 4, [source] * 4)
    assert tiny_scrl.names == ["fluency", "similarity", "compression"]
    for prediction, (value, metrics) in zip(predictions, results):
        assert value == pytest.approx((metrics["fluency"] + metrics["similarity"] + 2 * metrics["compression"]) / 4)
        assert metrics["compression"] == pytest.approx(CompressionScore(ratio=0.5)(prediction, (), source))
        assert 0 <= metrics["fluency"] <= 1 and 0 <= metrics["similarity"] <= 1
        one_value, one_metrics = tiny_scrl(prediction, (), source)  # batch == one at a time
        assert one_value == pytest.approx(value) and one_metrics == pytest.approx(metrics)
    assert results[0][1]["fluency"] == pytest.approx(1.0) and results[0][1]["similarity"] == pytest.approx(1.0, abs=1e-5)


def test_fluency_weight_scales_the_fluency_term(tiny_scrl):
    fluency, similarity = tiny_scrl.terms[0][1], tiny_scrl.terms[1][1]
    heavy = scrl_reward(ratio=0.5, weight=3.0, fluency_weight=2.0, fluency_model=fluency.scorer,
                        similarity_model=similarity.encoder)
    assert [(name, w) for name, _, w in heavy.terms] == [("fluency", 2 / 6), ("similarity", 1 / 6), ("compression", 3 / 6)]
    source, prediction = SENTENCES[0], "quietly the on"  # 3 words of 9, which the tiny LM scores below the source
    value, metrics = heavy(prediction, (), source)
    f, s = fluency(prediction, (), source), similarity(prediction, (), source)
    c = math.exp(-0.5 * ((3 / 9 - 0.5) / 0.125) ** 2)  # the default Gaussian, of width ratio / 4
    assert metrics == pytest.approx({"fluency": f, "similarity": s, "compression": c})
    assert 0 < f < 1 and value == pytest.approx((2 * f + s + 3 * c) / 6)


def test_relative_fluency_compares_with_the_source(tiny_scrl):
    fluency = tiny_scrl.terms[0][1]
    scorer = fluency.scorer
    source, prediction = SENTENCES[1], "dog ran park"
    m_prediction, m_source = scorer.mean_logprobs([prediction, source])
    assert fluency(prediction, (), source) == pytest.approx(float(np.clip(1 + (m_prediction - m_source) / 5.0, 0, 1)))
    assert LMFluency(scorer).__name__ == "lm_fluency" and fluency.__name__ == "fluency"


def test_a_sentence_file_is_a_reference_free_task(sentence_file):
    examples = load_task(str(sentence_file)).split("train")
    assert [example.prompt for example in examples] == SENTENCES
    assert all(example.references == () for example in examples)
    rows = load_task([{"source": SENTENCES[0]}, {"prompt": SENTENCES[1]}]).split("train")
    assert [example.references for example in rows] == [(), ()]


@pytest.mark.parametrize("env_id, kwargs", [("TokenEdit-v0", {}), ("TokenEdit-Compress-v0", {"compression": {"ratio": 0.5}}),
                                            ("TokenGen-v0", {"reward": "bleu", "max_new_tokens": 8})])
def test_a_reward_that_needs_references_fails_at_construction(sentence_file, env_id, kwargs):
    with pytest.raises(ValueError, match=r"reward metrics \['(rougeL|bleu)'\] need references, but example 0 of task "
                                         r"'.*sentences.txt' has none \(source 'the old cat .*reference-free rewards: \["):
        gym.make(env_id, task=str(sentence_file), **kwargs)


def test_tokengen_needs_an_output_length_on_a_reference_free_task(sentence_file):
    with pytest.raises(ValueError, match="a reference-free task gives no output length: set max_new_tokens"):
        gym.make("TokenGen-v0", task=str(sentence_file), reward={"metric": "length", "target": 4})


def test_scrl_needs_a_compression_target(sentence_file):
    with pytest.raises(ValueError, match="reward='scrl' needs a length target: compression="):
        gym.make("TokenEdit-Compress-v0", task=str(sentence_file), reward="scrl")


def test_compression_alone_trains_on_sentences(sentence_file):
    env = gym.make("TokenEdit-Compress-v0", task=str(sentence_file), reward=make_reward(CompressionScore(ratio=0.5)))
    env.reset(seed=0, options={"index": 0})
    delete = env.unwrapped.action_id("delete")
    for _ in range(4):
        env.step(delete)
    _, reward, terminated, _, info = env.step(env.unwrapped.action_id("stop"))
    assert terminated and info["metrics"]["compression_ratio"] == pytest.approx(5 / 9)
    assert reward == pytest.approx(info["metrics"]["compression"])
    assert "rougeL" not in info["metrics"]  # no references, no ROUGE in the end metrics


def test_copies_of_an_env_share_the_reward_models(tiny_scrl):
    import copy

    copied = copy.deepcopy(tiny_scrl)
    assert copied.terms[0][1].scorer is tiny_scrl.terms[0][1].scorer  # one LM, not one per rollout env
    assert copied.terms[1][1].encoder is tiny_scrl.terms[1][1].encoder
    assert copied.terms[2][1] is not tiny_scrl.terms[2][1]


def test_the_reward_source_is_the_decoded_source_that_no_edit_reproduces(tmp_path):
    path = tmp_path / "punctuated.txt"
    path.write_text("Paris is big.\nIt rains, often.\n", encoding="utf-8")

    def unchanged(prediction, references, source):
        return float(prediction == source)

    kwargs = {"task": str(path), "reward": unchanged}
    env = gym.make("TokenEdit-Compress-v0", **kwargs)
    env.reset(seed=0, options={"index": 0})
    *_, info = env.step(env.unwrapped.action_id("stop"))
    assert info["metrics"]["unchanged"] == 1.0 and info["text"] == "Paris is big ."
    vector = gym.make_vec("TokenEdit-Compress-v0", num_envs=2, **kwargs)
    vector.reset(seed=0)
    _, rewards, terminated, _, infos = vector.step(np.full(2, env.unwrapped.action_id("stop")))
    assert terminated.all() and rewards.tolist() == [1.0, 1.0]
