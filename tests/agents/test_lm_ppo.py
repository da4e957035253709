"""LMPPOAgent: cached rollouts, the PPO update, the KL penalty, masks, checkpoints, learning."""

import gymnasium as gym
import numpy as np
import pytest
import torch

import textgym  # noqa: F401
from agents import LMPPOAgent, evaluate
from agents.lm import pretrain_mle, tiny_causal_lm
from agents.ppo import masked_logprobs
from textgym.vocab import WordVocabulary

torch.set_num_threads(1)


def small_agent(env=None, **kwargs):
    env = env if env is not None else gym.make("TokenGen-v0")
    kwargs = {"num_envs": 8, **kwargs}
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
@pytest.mark.parametrize("top_k", [0, 3])
def test_kl_is_zero_when_policy_equals_reference(estimator, top_k):
    agent = small_agent(kl_estimator=estimator, top_k=top_k)
    prepared = agent.prepare(agent.rollout(list(range(8))))
    assert prepared["kl"].abs().max().item() < 1e-6


def drifted_agent(**kwargs):
    """An agent whose policy has moved away from its reference (seeded weight noise), with
    a top-k mask so that renormalising over the legal tokens matters."""
    agent = small_agent(top_k=3, num_envs=16, **kwargs)
    noise = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for weight in agent.model.parameters():
            weight.add_(0.25 * torch.randn(weight.shape, generator=noise))
    return agent


def exact_and_per_token_kl(agent, batch):
    """KL(pi_L || pi_ref_L) at each step from the full masked distributions, and the agent's
    estimator evaluated at every token (B, T, V), with pi_L's log-probs."""
    logits, _ = agent.outputs(batch)
    logprobs = masked_logprobs(logits, batch.legal, batch.valid).detach()
    ref_logprobs = agent.reference_logprobs(batch)
    exact = torch.where(batch.legal, logprobs.exp() * (logprobs - ref_logprobs), 0.0).sum(-1)
    return exact, logprobs, agent.kl_per_token(logprobs, ref_logprobs)


@pytest.mark.parametrize("estimator", ["k1", "k3"])
def test_kl_estimate_has_the_masked_kl_as_its_expectation(estimator):
    agent = drifted_agent(kl_estimator=estimator)
    batch = agent.rollout(list(range(16)))
    exact, logprobs, per_token = exact_and_per_token_kl(agent, batch)
    valid = batch.valid
    assert exact[valid].min() >= -1e-6 and exact[valid].mean() > 0.05
    # the estimator's mean under the distribution that samples is the exact KL, state by state
    expectation = torch.where(batch.legal, logprobs.exp() * per_token, 0.0).sum(-1)
    torch.testing.assert_close(expectation[valid], exact[valid], atol=1e-5, rtol=1e-4)
    # the KL in the rewards is that estimator at the sampled tokens; the charts' is the exact one
    prepared = agent.prepare(batch)
    sampled = per_token.gather(-1, batch.actions[..., None]).squeeze(-1) * valid
    torch.testing.assert_close(prepared["kl"], sampled)
    torch.testing.assert_close(prepared["exact_kl"], exact * valid)
    if estimator == "k3":
        assert sampled.min() >= 0


def test_mean_k1_over_sampled_tokens_matches_the_exact_kl():
    agent = drifted_agent(kl_estimator="k1")
    errors = []
    for seed in range(4):
        batch = agent.rollout([seed * 16 + i for i in range(16)])
        exact, _, _ = exact_and_per_token_kl(agent, batch)
        errors.append((agent.prepare(batch)["kl"] - exact)[batch.valid])
    errors = torch.cat(errors)
    # E[k1 | state] = exact KL, so the mean error is within 4 standard errors of 0 (measured: 0.8)
    assert errors.mean().abs() < 4 * errors.std() / len(errors) ** 0.5, (errors.mean(), errors.std(), len(errors))


def test_kl_in_the_loss_leaves_the_rewards_alone_and_charges_each_visited_state():
    agent = drifted_agent(kl_penalty="loss", kl_coef=0.5)  # top-k masks: the KL's gradient meets -inf log-probs
    batch = agent.rollout(list(range(16)))
    prepared = agent.prepare(batch)
    total, parts = agent.loss(batch, prepared)
    mean_kl = prepared["exact_kl"].sum() / prepared["valid"].sum()
    assert parts["losses/kl"] == pytest.approx(mean_kl.item(), rel=1e-5) and mean_kl > 0.05
    agent.kl_coef = 0.0
    unpenalised = agent.prepare(batch)
    torch.testing.assert_close(prepared["advantages"], unpenalised["advantages"])  # no KL in the returns
    without_kl, _ = agent.loss(batch, unpenalised)
    assert total.item() == pytest.approx(without_kl.item() + 0.5 * mean_kl.item(), rel=1e-5)
    agent.kl_coef = 0.5
    total.backward()
    gradients = [p.grad for p in agent.policy.parameters() if p.grad is not None]
    assert gradients and all(torch.isfinite(g).all() for g in gradients)


def test_kl_in_the_rewards_changes_the_advantages():
    agent = drifted_agent(kl_coef=0.5)
    batch = agent.rollout(list(range(16)))
    penalised = agent.prepare(batch)
    agent.kl_coef = 0.0
    assert not torch.allclose(penalised["advantages"], agent.prepare(batch)["advantages"])
    assert "losses/kl" not in agent.loss(batch, penalised)[1]


@pytest.mark.parametrize("kl_target, factor", [(1e-4, 1 + 0.2 * 8 / 10), (1e4, 1 - 0.2 * 8 / 10), (2.0, 1.0)])
def test_adaptive_coefficient_moves_toward_the_target(kl_target, factor):
    agent = small_agent(kl_controller="adaptive", kl_target=kl_target, kl_horizon=10)
    episode_kl = torch.full((8,), 2.0)  # 8 episodes, 2 nats each
    agent.adapt_kl_coef(episode_kl)
    assert agent.kl_coef == pytest.approx(agent.config.kl_coef * factor)


@pytest.mark.parametrize("estimator", ["k1", "k3"])
def test_learning_moves_the_policy_from_the_reference_and_raises_beta(estimator):
    agent = small_agent(kl_estimator=estimator, kl_controller="adaptive", kl_target=1e-4, kl_horizon=10,
                        learning_rate=1e-2)
    agent.learn(400)
    kls = [record["charts/kl"] for record in agent.update_log.records]
    assert kls[0] == 0 and min(kls[1:]) > 0  # an exact KL at the visited states: > 0 once the weights moved
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
            fresh._act_states.clear()
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
    with pytest.raises(ValueError, match="unknown advantage 'ppo'; valid: \\['gae', 'self-critical', 'group'\\]"):
        small_agent(advantage="ppo")
    with pytest.raises(ValueError, match="LM policies run on TokenGen, NERTag and TokenEdit envs, not CartPoleEnv"):
        LMPPOAgent(gym.make("CartPole-v1"))



def test_numpy_numbers_are_taken_and_stored_as_python_numbers(tmp_path):
    env = gym.make("TokenGen-v0")
    agent = small_agent(env, num_envs=np.int64(2), top_k=np.int32(3), kl_coef=np.float32(0.5), gamma=1)
    assert (agent.config.num_envs, agent.config.top_k, agent.config.kl_coef, agent.config.gamma) == (2, 3, 0.5, 1.0)
    assert type(agent.config.num_envs) is int and type(agent.config.gamma) is float and agent.envs.n == 2
    agent.save(tmp_path / "agent")
    assert LMPPOAgent.load(tmp_path / "agent", env=env).config == agent.config


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
    agent = LMPPOAgent(env, model=model, seed=0, num_envs=16, learning_rate=3e-4)
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


def checkpoint_leftovers(path):
    return sorted(p.name for p in path.parent.iterdir() if p.name.startswith(f".{path.name}."))


def save_forever(agent, path, saved):
    while True:
        agent.num_timesteps += 1
        agent.save(path)
        saved.set()


def test_a_save_killed_at_any_moment_leaves_a_loadable_checkpoint_and_saving_works(tmp_path):
    import multiprocessing
    import os
    import signal
    import time

    env = gym.make("TokenGen-v0")
    agent = small_agent(env)
    path = tmp_path / "agent"
    agent.save(path)
    start = time.perf_counter()
    agent.save(path)
    save_seconds = time.perf_counter() - start
    rng = np.random.default_rng(0)
    fork = multiprocessing.get_context("fork")  # the child inherits the built agent: no imports to wait for
    for _ in range(8):  # measured: most kills land mid-write, some before .old is deleted
        saved = fork.Event()
        child = fork.Process(target=save_forever, args=(agent, path, saved), daemon=True)
        child.start()
        assert saved.wait(30)
        time.sleep(rng.uniform(0, 3 * save_seconds))  # somewhere inside one of the next saves
        os.kill(child.pid, signal.SIGKILL)
        child.join()
        loaded = LMPPOAgent.load(path, env=env)  # the old or the new checkpoint, intact
        assert loaded.num_timesteps >= agent.num_timesteps
        assert checkpoint_leftovers(path) == []
    loaded.save(path)
    assert checkpoint_leftovers(path) == [] and LMPPOAgent.load(path, env=env).num_timesteps == loaded.num_timesteps


def fail_on_call(function, n):
    """``function``, except that its ``n``-th call raises: a save killed at that moment."""
    calls = []

    def wrapped(*args, **kwargs):
        calls.append(args)
        if len(calls) == n:
            raise KeyboardInterrupt
        return function(*args, **kwargs)
    return wrapped


@pytest.mark.parametrize("crash", ["old moved aside", "old not yet deleted", "stale temporaries"])
def test_the_next_save_or_load_heals_what_a_killed_save_left(tmp_path, monkeypatch, crash):
    import os
    import shutil

    from agents import lm_ppo

    env = gym.make("TokenGen-v0")
    agent = small_agent(env)
    path = tmp_path / "agent"
    agent.save(path)
    agent.num_timesteps = 7
    if crash == "stale temporaries":  # a dead writer's temp dir, and the old code's fixed-name one
        (tmp_path / ".agent.tmp-999999999-abc").mkdir()
        (tmp_path / ".agent.tmp").mkdir()
        (tmp_path / ".agent.tmp" / "policy.safetensors").write_bytes(b"half")
    else:
        with monkeypatch.context() as patch:
            if crash == "old moved aside":  # killed between the two renames: no checkpoint at path
                patch.setattr(lm_ppo.os, "replace", fail_on_call(os.replace, 2))
            else:
                patch.setattr(lm_ppo.shutil, "rmtree", fail_on_call(shutil.rmtree, 1))
            with pytest.raises(KeyboardInterrupt):
                agent.save(path)
        assert checkpoint_leftovers(path)
    assert LMPPOAgent.load(path, env=env).num_timesteps == (0 if crash == "old moved aside" else
                                                             7 if crash == "old not yet deleted" else 0)
    assert checkpoint_leftovers(path) == []
    agent.num_timesteps = 8
    agent.save(path)
    assert LMPPOAgent.load(path, env=env).num_timesteps == 8 and checkpoint_leftovers(path) == []


def test_a_flipped_weight_byte_is_reported(tmp_path):
    agent = small_agent()
    agent.save(tmp_path / "agent")
    weights = tmp_path / "agent" / "value_head.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 1
    weights.write_bytes(bytes(data))
    with pytest.raises(ValueError, match=r"agent is corrupted \(digest mismatch in value_head.safetensors\)"):
        LMPPOAgent.load(tmp_path / "agent", env=gym.make("TokenGen-v0"))


def test_rollout_and_act_use_the_current_cache_api():
    """No deprecation warnings from transformers (``past_key_values=`` goes in 5.40), as
    warnings or as its once-only log messages."""
    import logging
    import warnings

    from transformers.utils import logging as hf_logging

    env = gym.make("TokenGen-Keywords-v0")
    agent = small_agent(env, top_k=3)  # the mask model keeps its own cache
    hf_logging.warning_once.cache_clear()
    messages = []
    handler = logging.Handler()
    handler.emit = lambda record: messages.append(record.getMessage())
    logging.getLogger("transformers").addHandler(handler)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", FutureWarning)
            warnings.simplefilter("error", DeprecationWarning)
            batch = agent.rollout(list(range(8)))
            obs, info = env.reset(seed=0)
            for _ in range(3):
                obs, _, _, _, info = env.step(agent.act(obs, info))
    finally:
        logging.getLogger("transformers").removeHandler(handler)
    assert batch.n_steps > 8
    assert not [m for m in messages if "deprecated" in m], messages
