"""The LM rollout: its sampler, TokenGen's static KV cache against full forwards (GPT-2 and
Llama, SmolLM2's architecture), the compiled decode step, and the rollout over the native
vector env against the rollout over a list of envs."""

import copy

import gymnasium as gym
import numpy as np
import pytest
import torch

import textgym  # noqa: F401
from agents import LMPPOAgent
from agents.env_batch import EnvBatch
from agents.lm import tiny_causal_lm
from agents.lm_policy import build_policy
from agents.lm_rollout import Sampler
from textgym.envs.token_gen import TokenGenEnv

torch.set_num_threads(1)

# prompts of 1, 3 and 5 words: the cache's rows are left-padded by 4, 2 and 0 columns
TASK = [{"prompt": "a", "references": ["x y z"]}, {"prompt": "a b c", "references": ["y"]},
        {"prompt": "a b c d e", "references": ["z x"]}]


def tiny_model(vocab, kind="gpt2", n_layer=2):
    if kind == "gpt2":
        return tiny_causal_lm(vocab, n_layer=n_layer, n_embd=32, n_head=2)
    from transformers import LlamaConfig, LlamaForCausalLM

    # rotary positions and grouped-query attention (4 query heads share 2 KV heads), as in SmolLM2
    return LlamaForCausalLM(LlamaConfig(
        vocab_size=len(vocab), hidden_size=32, intermediate_size=64, num_hidden_layers=n_layer, num_attention_heads=4,
        num_key_value_heads=2, max_position_embeddings=64, bos_token_id=vocab.bos_id, eos_token_id=vocab.eos_id,
        pad_token_id=vocab.pad_id))


def test_the_sampler_draws_from_the_tempered_softmax_over_the_legal_tokens():
    logits = torch.tensor([1.0, 2.0, 5.0, 0.5, 3.0]).expand(40_000, 5)
    legal = torch.tensor([True, True, False, True, True]).expand(40_000, 5)
    expected = torch.softmax(torch.tensor([1.0, 2.0, -torch.inf, 0.5, 3.0]) / 2.0, -1)
    sampler = Sampler(temperature=2.0, generator=torch.Generator().manual_seed(0))
    actions, logprobs = sampler.sample(logits, legal)
    frequencies = torch.bincount(actions, minlength=5) / len(actions)
    assert frequencies[2] == 0
    torch.testing.assert_close(frequencies, expected, atol=0.01, rtol=0)  # 4 standard errors
    torch.testing.assert_close(logprobs, expected.log()[actions])
    greedy, _ = Sampler(deterministic=True).sample(logits[:2], legal[:2])
    assert greedy.tolist() == [4, 4]  # the likeliest legal token


@pytest.mark.parametrize("kind", ["gpt2", "llama"])
def test_static_cache_logits_equal_a_full_forward_per_row(kind):
    """Rows of different prompt lengths; row 1 ends after one token and row 0 after two, and
    sit out the steps after (a pad fed and never attended); each row's logits at each step
    equal the model's on that row's tokens alone."""
    env = gym.make("TokenGen-v0", task=TASK, max_new_tokens=4)
    vocab = env.unwrapped.vocab
    view, policy = build_policy(env, tiny_model(vocab, kind))
    policy.eval()
    x, y, z = (vocab.encode(word)[0] for word in "xyz")
    plans = [[x, vocab.eos_id], [vocab.eos_id], [y, z, x, y]]
    envs = EnvBatch.of(env, 3)
    assert type(envs.envs).__name__ == "TokenGenVectorEnv"
    step = envs.reset([0, 0, 0], options=[{"index": i} for i in range(3)])
    readings = view.read_rows(step, range(3))
    assert [len(r.context) for r in readings] == [2, 4, 6]  # the prompt, then BOS
    state = view.start(policy, readings)
    active = np.ones(3, dtype=bool)
    checked = 0
    with torch.no_grad():
        for t in range(4):
            logits = view.logits(policy, state, readings)
            for i in np.flatnonzero(active):
                alone = policy.trunk(input_ids=torch.tensor([readings[i].tokens()])).logits[0, -1]
                torch.testing.assert_close(logits[i], alone, atol=1e-5, rtol=1e-5)
                checked += 1
            actions = np.array([plan[t] if t < len(plan) else 0 for plan in plans])
            step = envs.step(actions, active)
            active &= ~(step.terminated | step.truncated)
            for i, reading in zip(np.flatnonzero(active), view.read_rows(step, np.flatnonzero(active))):
                readings[i] = reading
    assert checked == 2 + 1 + 4 and not active.any()
    assert state.filled == 6 + 3  # the longest context, then one column per later step


def test_rollout_logprobs_equal_the_replay_over_rows_that_end_early():
    """The rollout's cached log-probs equal the full forward (replay) of whole episodes of
    different lengths (EOS allowed) and prompt lengths."""
    env = gym.make("TokenGen-v0", task=TASK, max_new_tokens=4)
    agent = LMPPOAgent(env, model=tiny_model(env.unwrapped.vocab), num_envs=6, temperature=3.0)
    batch = agent.rollout(list(range(6)))
    lengths = batch.valid.sum(1)
    assert len(set(lengths.tolist())) > 1 and len({len(steps[0].context) for steps in batch.readings}) > 1
    logits, _ = agent.outputs(batch, values=False)
    replayed = torch.log_softmax(logits.masked_fill(~batch.legal, -torch.inf), -1)
    replayed = replayed.gather(-1, batch.actions[..., None]).squeeze(-1).where(batch.valid, 0.0)
    torch.testing.assert_close(replayed, batch.logprobs, atol=1e-5, rtol=0)


@pytest.mark.parametrize("top_k", [0, 3])
def test_rollout_over_the_native_vector_env_equals_the_list_rollout(top_k):
    """The agent's default envs are the native vector env; the same seeds and sampling
    generator give the same episodes as a list of envs (dense BLEU rewards, EOS allowed)."""
    env = gym.make("TokenGen-Keywords-v0")
    agent = LMPPOAgent(env, model=tiny_model(env.unwrapped.vocab), num_envs=4, temperature=2.0, top_k=top_k)
    assert type(agent.envs.envs).__name__ == "TokenGenVectorEnv"
    rollouts = {}
    for kind, envs in (("vector", agent.envs), ("list", EnvBatch([copy.deepcopy(env) for _ in range(4)]))):
        agent.envs = envs
        agent.generator.manual_seed(0)
        rollouts[kind] = [agent.rollout([10, 11, 12, 13]), agent.rollout([20, 21, 22, 23], max_steps=9)]
    for vectored, listed in zip(rollouts["vector"], rollouts["list"]):
        assert torch.equal(vectored.actions, listed.actions) and torch.equal(vectored.valid, listed.valid)
        assert torch.equal(vectored.legal, listed.legal) and torch.equal(vectored.complete, listed.complete)
        assert torch.equal(vectored.env_rewards, listed.env_rewards)
        torch.testing.assert_close(vectored.logprobs, listed.logprobs, atol=1e-6, rtol=0)
        assert [info.get("metrics") for info in vectored.infos] == [info.get("metrics") for info in listed.infos]
        assert [info["text"] for info in vectored.infos] == [info["text"] for info in listed.infos]
    first, cut = rollouts["vector"]
    assert bool(first.complete.all()) and first.env_rewards.sum() > 0
    assert cut.n_steps == 9 and not bool(cut.complete.all())


def test_a_rollout_over_the_vector_env_scores_each_episode_once():
    """Finished sub-envs wait for the others (``step_active``): no filler episode is played
    and scored, so a sparse reward is called once per episode."""
    texts = []

    def recorded(prediction, references, source):
        texts.append(prediction)
        return 0.0

    env = gym.make("TokenGen-v0", task=TASK, reward=recorded, max_new_tokens=6)
    agent = LMPPOAgent(env, model=tiny_model(env.unwrapped.vocab), num_envs=4, temperature=2.0)
    texts.clear()  # construction checks the reward once
    batch = agent.rollout([0, 1, 2, 3])
    assert len(set(batch.valid.sum(1).tolist())) > 1  # episodes of different lengths
    assert sorted(texts) == sorted(info["text"] for info in batch.infos)


def test_a_wrapped_vector_env_steps_through_its_wrapper():
    """step_active is only taken from an unwrapped native vector env: a wrapper's step runs."""
    native = gym.make_vec("TokenGen-v0", num_envs=2, task=TASK, reward=lambda prediction, references, source: 1.0)
    batch = EnvBatch(gym.wrappers.vector.TransformReward(native, lambda rewards: 2 * rewards))
    batch.reset([0, 1])
    eos = native.vocab.eos_id
    step = batch.step(np.array([eos, eos]), np.array([True, False]))
    assert step.rewards.tolist() == [2.0, 0.0] and step.terminated.tolist() == [True, False]


def test_per_env_reset_options_on_a_vector_env_equal_the_list_resets():
    env = gym.make("TokenGen-v0", task=TASK, max_new_tokens=4)
    options = [{"index": 2}, None, {"index": 0}, {"index": 2}]
    vector, listed = EnvBatch.of(env, 4), EnvBatch([copy.deepcopy(env) for _ in range(4)])
    resets = [batch.reset([5, 6, 7, 8], options) for batch in (vector, listed)]
    for key in resets[0].obs:
        assert np.array_equal(resets[0].obs[key], resets[1].obs[key]), key
    assert [resets[0].info(i)["prompt"] for i in range(4)] == [resets[1].info(i)["prompt"] for i in range(4)]
    assert [resets[0].info(i)["prompt"] for i in (0, 2, 3)] == ["a b c d e", "a", "a b c d e"]
    assert np.array_equal(resets[0].masks, resets[1].masks) and resets[0].masks.dtype == bool
    with pytest.raises(ValueError, match="one seed .and option. per env: 4, got 3 seeds"):
        vector.reset([1, 2, 3])


def test_envs_without_a_vector_entry_point_are_copied():
    env = gym.make("TokenGen-v0", task=TASK)
    wrapped = gym.wrappers.TransformReward(env, lambda r: 2 * r)  # a wrapper the vector env would not apply
    assert isinstance(EnvBatch.of(wrapped, 2).envs, list)
    assert isinstance(EnvBatch.of(TokenGenEnv(task=TASK), 2).envs, list)  # made without gym.make: no spec
    assert type(EnvBatch.of(env, 2).envs).__name__ == "TokenGenVectorEnv"


def test_a_rendering_env_gets_a_native_vector_env_that_does_not_render():
    env = gym.make("TokenGen-Copy-v0", render_mode="ansi")  # as `textgym eval --samples` makes it
    batch = EnvBatch.of(env, 3)
    assert batch.vector and batch.envs.render_mode is None and env.spec.kwargs["render_mode"] == "ansi"
    batch.reset([0, 1, 2])


@pytest.mark.parametrize("kind", ["gpt2", "llama"])
def test_the_compiled_rollout_is_two_graphs_and_gives_the_eager_rollout(kind):
    """Compiled, the prompts' pass (padded to the longest context) and the one-token step
    are a graph each, with no graph break, and nothing compiles again at later steps or in a
    later rollout (a new cache, other prompts)."""
    from torch._dynamo.utils import counters

    env = gym.make("TokenGen-Keywords-v0")
    model = tiny_model(env.unwrapped.vocab, kind, n_layer=1)
    rollouts = []
    torch._dynamo.reset()
    counters.clear()
    for compile_decode in (False, True):
        agent = LMPPOAgent(env, model=copy.deepcopy(model), num_envs=3, compile_decode=compile_decode)
        agent.generator.manual_seed(0)
        rollouts.append(agent.rollout([0, 1, 2]))
    agent.rollout([3, 4, 5])
    assert counters["stats"]["unique_graphs"] == 2 and not counters["graph_break"]
    assert counters["frames"]["total"] == 2  # a recompile would be a third frame
    eager, compiled = rollouts
    assert torch.equal(eager.actions, compiled.actions)
    torch.testing.assert_close(eager.logprobs, compiled.logprobs, atol=1e-5, rtol=0)


def test_compile_decode_is_for_token_gen():
    with pytest.raises(ValueError, match="compile_decode=True is for TokenGen"):
        LMPPOAgent(gym.make("NERTag-v0"), compile_decode=True)
