"""LMPPOAgent's group baseline (advantage="group", GRPO's): G episodes of one prompt, each
episode's return minus its group's mean at every step, no value head."""

import gymnasium as gym
import pytest
import torch

import textgym  # noqa: F401
from agents import LMPPOAgent, evaluate
from agents.lm import pretrain_mle, tiny_causal_lm
from agents.ppo import group_relative

torch.set_num_threads(1)


def group_agent(env=None, **kwargs):
    env = env if env is not None else gym.make("TokenGen-v0")
    torch.manual_seed(0)
    model = tiny_causal_lm(env.unwrapped.vocab, n_layer=1, n_embd=32, n_head=2)
    return LMPPOAgent(env, model=model, **{"num_envs": 8, "advantage": "group", "group_size": 4, **kwargs})


def test_group_advantages_by_hand():
    # two groups of two episodes; episode 1 is 1 step long, the others 2
    rewards = torch.tensor([[1.0, 2.0], [0.5, 0.0], [0.0, 1.0], [3.0, 1.0]])
    valid = torch.tensor([[True, True], [True, False], [True, True], [True, True]])
    advantages, returns = group_relative(rewards, valid, group_size=2, gamma=1.0, scale=False)
    # returns 3, 0.5 (mean 1.75) and 1, 4 (mean 2.5)
    assert torch.equal(advantages, torch.tensor([[1.25, 1.25], [-1.25, 0.0], [-1.5, -1.5], [1.5, 1.5]]))
    assert torch.equal(returns, torch.tensor([[3.0, 2.0], [0.5, 0.0], [1.0, 1.0], [4.0, 1.0]]))
    scaled, _ = group_relative(rewards, valid, group_size=2, gamma=1.0, scale=True)
    # the std (n - 1) of two returns a, b is |a - b| / sqrt(2)
    torch.testing.assert_close(scaled[:, 0], torch.tensor([1.0, -1.0, -1.0, 1.0]) / 2**0.5)
    discounted, _ = group_relative(rewards, valid, group_size=2, gamma=0.5, scale=False)
    assert torch.equal(discounted[:, 0], torch.tensor([0.75, -0.75, -1.5, 1.5]))  # returns 2, 0.5 and 0.5, 3.5


def test_group_advantages_sum_to_zero_in_each_group_and_fill_each_episode():
    agent = group_agent(num_envs=12, group_size=3)
    batch = agent.rollout([7, 7, 7, 8, 8, 8, 9, 9, 9, 10, 10, 10])
    prepared = agent.prepare(batch)
    advantages, valid = prepared["advantages"], prepared["valid"]
    first = advantages[:, 0]
    torch.testing.assert_close(first.reshape(4, 3).sum(1), torch.zeros(4), atol=1e-6, rtol=0)
    assert first.abs().max() > 0  # the KL penalty and the rewards differ across the samples
    assert torch.equal(advantages, first[:, None] * valid)  # every step of an episode gets its advantage
    assert prepared["old_values"] is None and agent.policy.value_head is None
    _, parts = agent.loss(batch, prepared)
    assert "losses/value" not in parts and set(parts) == {"losses/policy", "losses/entropy", "losses/approx_kl"}


def test_each_group_resets_to_one_example():
    agent = group_agent(env=gym.make("TokenGen-Keywords-v0"))
    seen = []
    rollout = agent.rollout
    agent.rollout = lambda seeds, **kwargs: seen.append(batch := rollout(seeds, **kwargs)) or batch
    agent.learn(16)
    contexts = [steps[0].context for steps in seen[0].readings]
    assert contexts[:4] == [contexts[0]] * 4 and contexts[4:] == [contexts[4]] * 4 and contexts[0] != contexts[4]


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"num_envs": 6, "group_size": 4}, r"num_envs=6 is not a multiple of group_size=4"),
    ({"group_size": 1}, r"group_size must be an int in \[2, inf\), got 1"),
    ({"value_model": "separate"}, r"value_model='separate' builds a critic, and advantage='group' has none"),
])
def test_bad_group_options_are_clear_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        group_agent(**kwargs)


def test_envs_not_in_whole_groups_are_a_clear_error():
    envs = [gym.make("TokenGen-v0") for _ in range(6)]
    with pytest.raises(ValueError, match=r"groups of group_size=4, and envs= holds 6, not a multiple of it"):
        group_agent(envs=envs)


def test_group_baseline_learns_copy():
    env = gym.make("TokenGen-Copy-v0", reward_mode="dense")
    torch.manual_seed(0)
    model = tiny_causal_lm(env.unwrapped.vocab, n_layer=1, n_embd=64, n_head=2)
    pretrain_mle(model, "copy", env.unwrapped.vocab, epochs=1, batch_size=64, learning_rate=3e-4)
    agent = LMPPOAgent(env, model=model, seed=0, num_envs=16, group_size=4, advantage="group", learning_rate=3e-4)
    before = evaluate(agent, env, n_episodes=40, seed=100)["token_accuracy"]
    agent.learn(1500)
    after = evaluate(agent, env, n_episodes=40, seed=100)["token_accuracy"]
    assert after > before + 0.2, (before, after)  # measured: 0.38 -> 0.73
