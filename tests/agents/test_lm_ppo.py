"""LMPPOAgent: cached rollouts, the PPO update, the KL penalty, masks, checkpoints, learning."""

import gymnasium as gym
import numpy as np
import pytest
import torch

import textgym  # noqa: F401
from agents import LMPPOAgent, evaluate
from agents.lm import pretrain_mle, tiny_causal_lm
from textgym.vocab import WordVocabulary

torch.set_num_threads(1)


def small_agent(env=None, **kwargs):
    env = env if env is not None else gym.make("TokenGen-v0")
    kwargs = {"n_envs": 8, **kwargs}
    return LMPPOAgent(env, model=tiny_causal_lm(env.unwrapped.vocab, n_layer=1, n_embd=32, n_head=2), **kwargs)


def test_cached_rollout_matches_a_full_forward():
    env = gym.make("TokenGen-Keywords-v0")  # prompts of different lengths exercise the left padding
    agent = small_agent(env)
    batch = agent.rollout(list(range(8)))
    prepared = agent.prepare(batch)
    assert batch.valid.sum() == batch.n_steps > 8
    torch.testing.assert_close(prepared["old_logprobs"] * prepared["valid"], batch.logprobs, atol=1e-5, rtol=0)


def test_one_update_reduces_the_loss_on_a_fixed_batch():
    agent = small_agent(n_epochs=1, n_minibatches=1, max_approx_kl=None, learning_rate=1e-3, clip_coef=10.0)
    batch = agent.rollout(list(range(8)))
    prepared = agent.prepare(batch)
    before, _ = agent.loss(batch, prepared)
    agent.update(batch, prepared)
    after, _ = agent.loss(batch, prepared)
    assert after.item() < before.item()


@pytest.mark.parametrize("estimator", ["k1", "k3"])
def test_kl_is_zero_when_policy_equals_reference(estimator):
    agent = small_agent(kl_estimator=estimator)
    prepared = agent.prepare(agent.rollout(list(range(8))))
    assert prepared["kl"].abs().max().item() < 1e-6


def test_kl_grows_after_training_and_adaptive_coefficient_moves():
    agent = small_agent(kl_controller="adaptive", kl_target=1e-4, kl_horizon=10, learning_rate=1e-2)
    agent.learn(400)
    assert agent.update_log.records[-1]["charts/kl"] > 0
    assert agent.kl_coef > agent.config.kl_coef


@pytest.mark.parametrize("masks", [{"top_k": 2}, {"top_p": 0.5}, {"top_k": 3, "mask_model": "lagged"}])
def test_masked_tokens_are_never_sampled(masks):
    env = gym.make("TokenGen-v0", allowed_tokens=["a", "b", "<eos>"])
    allowed = {env.unwrapped.vocab.token_to_id(t) for t in ("a", "b", "<eos>")}
    agent = small_agent(env, temperature=5.0, **masks)
    for seed in range(3):
        batch = agent.rollout([seed * 10 + i for i in range(8)])
        assert set(batch.actions[batch.valid].tolist()) <= allowed
        assert batch.legal.sum(-1)[batch.valid].max() <= (masks.get("top_k") or 3)
    obs, info = env.reset(seed=0)
    for _ in range(20):
        assert agent.act(obs, info, deterministic=False) in allowed


def test_act_cache_follows_the_observation():
    env = gym.make("TokenGen-Keywords-v0")
    agent, fresh = small_agent(env), small_agent(env)
    other_obs, other_info = gym.make("TokenGen-Keywords-v0").reset(seed=7)
    obs, info = env.reset(seed=0)
    for _ in range(3):  # each step extends the cached tokens; then an unrelated observation
        for state in [(obs, info), (other_obs, other_info), (obs, info)]:
            fresh._act_cache = None
            assert agent.act(*state) == fresh.act(*state)
        obs, _, _, _, info = env.step(agent.act(obs, info))


def test_save_load_round_trips_exactly(tmp_path):
    env = gym.make("TokenGen-v0")
    agent = small_agent(env, value_model="separate").learn(200)
    agent.save(tmp_path / "agent")
    agent.save(tmp_path / "agent")  # overwriting is atomic too
    loaded = LMPPOAgent.load(tmp_path / "agent", env=env)
    for name, module in agent._modules().items():
        other = loaded._modules()[name].state_dict()
        assert all(torch.equal(value, other[key]) for key, value in module.state_dict().items())
    assert loaded.config == agent.config and loaded.num_timesteps == 200 and loaded.kl_coef == agent.kl_coef
    obs, info = env.reset(seed=3)
    assert [agent.act(obs, info)] == [loaded.act(obs, info)]


def test_vocab_size_mismatch_is_a_clear_error():
    env = gym.make("TokenGen-v0")
    model = tiny_causal_lm(WordVocabulary.build(["x y z"]), n_layer=1, n_embd=32, n_head=2)
    with pytest.raises(ValueError, match="scores 7 tokens but the env's action space has 9 actions"):
        LMPPOAgent(env, model=model)


def test_bad_config_and_env_are_clear_errors():
    with pytest.raises(ValueError, match="unknown advantage 'ppo'; valid: \\['gae', 'self-critical'\\]"):
        small_agent(advantage="ppo")
    with pytest.raises(ValueError, match="TokenGen-style observation"):
        LMPPOAgent(gym.make("NERTag-v0"))


def test_runs_on_a_vector_env_and_self_critical():
    vec = gym.vector.SyncVectorEnv([lambda: gym.make("TokenGen-v0") for _ in range(4)])
    agent = small_agent(envs=vec, advantage="self-critical").learn(120)
    assert agent.num_timesteps == 120 and agent.update_log.records
    assert all(np.isfinite(v) for v in agent.update_log.records[-1].values())


def test_warm_started_run_on_copy_keeps_or_improves_reward():
    env = gym.make("TokenGen-Copy-v0", reward_mode="dense")
    model = tiny_causal_lm(env.unwrapped.vocab, n_layer=1, n_embd=64, n_head=2)
    torch.manual_seed(0)
    pretrain_mle(model, "copy", env.unwrapped.vocab, epochs=1, batch_size=64, learning_rate=3e-4)
    agent = LMPPOAgent(env, model=model, seed=0, n_envs=16, learning_rate=3e-4)
    before = evaluate(agent, env, n_episodes=40, seed=100)["token_accuracy"]
    agent.learn(1500)
    after = evaluate(agent, env, n_episodes=40, seed=100)["token_accuracy"]
    assert after >= max(before, 0.8), (before, after)  # measured: 0.38 -> 0.97


def test_callback_stops_learning_and_writer_gets_losses():
    scalars = set()

    class Writer:
        def add_scalar(self, tag, value, step):
            scalars.add(tag)

    agent = small_agent(writer=Writer())
    agent.learn(2000, callback=lambda agent, record: len(agent.log.records) < 3)
    assert len(agent.log.records) == 3 and agent.num_timesteps < 2000
    assert {"charts/return", "losses/policy", "losses/entropy", "charts/kl"} <= scalars
