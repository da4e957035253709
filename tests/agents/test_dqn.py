import gymnasium as gym
import numpy as np
import pytest
import torch

import textgym  # noqa: F401
from agents import DQNAgent, RandomAgent, evaluate
from agents.replay import NStepReturns, ReplayBuffer

TINY = {"task_kwargs": {"length": 2, "n_symbols": 3}, "reward_mode": "dense"}


def test_beats_random_on_a_tiny_copy_task():
    env = gym.make("TokenGen-v0", **TINY)
    agent = DQNAgent(env, seed=0, learning_starts=200, train_frequency=2).learn(2_500)
    eval_env = gym.make("TokenGen-v0", **TINY)
    trained = evaluate(agent, eval_env, n_episodes=100)["return_mean"]
    random = evaluate(RandomAgent(eval_env, seed=0), eval_env, n_episodes=100)["return_mean"]
    assert trained >= 0.9 and random < 0.4


def test_masked_actions_are_never_chosen():
    env = gym.make("TokenGen-v0", allowed_tokens=["a"])
    agent = DQNAgent(env, seed=0)
    with torch.no_grad():  # make a forbidden action the network's favourite
        agent.q_network.head[-1].bias[env.unwrapped.vocab.token_to_id("b")] = 100.0
    obs, info = env.reset(seed=0)
    legal = set(np.flatnonzero(info["action_mask"]))
    assert legal == {env.unwrapped.vocab.eos_id, env.unwrapped.vocab.token_to_id("a")}
    assert all(agent.act(obs, info, deterministic=d) in legal for d in (True, False) for _ in range(20))


def test_target_max_ignores_masked_actions():
    env = gym.make("TokenGen-v0")
    agent = DQNAgent(env, seed=0, batch_size=4, double_q=False, gamma=0.5)
    buffer = ReplayBuffer(env.observation_space, agent.n_actions, capacity=4)
    obs, _ = env.reset(seed=0)
    only_action_1 = np.zeros(agent.n_actions, dtype=bool)
    only_action_1[1] = True
    n_step = NStepReturns(1, gamma=0.5)
    for transition in n_step.push(obs, 4, 0.25, obs, False, False, only_action_1):
        buffer.add(transition)
    with torch.no_grad():
        agent.target_network.head[-1].bias.copy_(torch.arange(agent.n_actions, dtype=torch.float32) * 10)
        next_q = agent.target_network({k: torch.as_tensor(v)[None] for k, v in obs.items()})[0]
        q = agent.q_network({k: torch.as_tensor(v)[None] for k, v in obs.items()})[0, 4]
    # the best legal next action is 1, not the unmasked maximum
    expected = torch.nn.functional.smooth_l1_loss(q, 0.25 + 0.5 * next_q[1])
    assert agent._gradient_step(buffer) == pytest.approx(float(expected), rel=1e-5)


def test_n_step_returns():
    n_step = NStepReturns(3, gamma=0.5)
    mask = np.ones(2, dtype=bool)
    obs = [{"x": np.array([i])} for i in range(5)]
    assert n_step.push(obs[0], 0, 1.0, obs[1], False, False, mask) == []
    assert n_step.push(obs[1], 1, 2.0, obs[2], False, False, mask) == []
    [first] = n_step.push(obs[2], 0, 4.0, obs[3], False, False, mask)
    assert first.obs is obs[0] and first.next_obs is obs[3]
    assert first.reward == 1.0 + 0.5 * 2.0 + 0.25 * 4.0 and first.discount == 0.125
    # the episode ends: every pending start is flushed with a shorter horizon
    rest = n_step.push(obs[3], 1, 8.0, obs[4], True, False, mask)
    assert [(t.reward, t.discount, t.terminated) for t in rest] == [
        (2.0 + 0.5 * 4.0 + 0.25 * 8.0, 0.125, True), (4.0 + 0.5 * 8.0, 0.25, True), (8.0, 0.5, True)
    ]
    with pytest.raises(ValueError, match="n_step must be a positive int"):
        NStepReturns(0, 0.9)


@pytest.mark.parametrize("encoder", ["gru", "transformer"])
def test_encoders_give_one_value_per_action(encoder):
    env = gym.make("TokenEdit-v0")
    agent = DQNAgent(env, encoder=encoder)
    obs, _ = env.reset(seed=0)
    with torch.no_grad():
        assert agent.q_network(agent._batch(obs)).shape == (1, env.action_space.n)


@pytest.mark.parametrize(
    "kwargs, message",
    [({"encoder": "lstm"}, "unknown encoder 'lstm'; valid: \\['concat', 'gru', 'transformer'\\]"),
     ({"tau": 0.0}, "tau must be a number in \\(0, 1\\], got 0.0"),
     ({"batch_size": 0}, "batch_size must be a positive int, got 0")],
)
def test_bad_hyperparameters(kwargs, message):
    with pytest.raises(ValueError, match=message):
        DQNAgent(gym.make("TokenGen-v0"), **kwargs)


def test_soft_updates_move_the_target_toward_the_online_net():
    agent = DQNAgent(gym.make("TokenGen-v0"), tau=0.5)
    with torch.no_grad():
        for p in agent.target_network.parameters():
            p.zero_()
    agent._soft_update(0.5)
    online, target = next(agent.q_network.parameters()), next(agent.target_network.parameters())
    torch.testing.assert_close(target, online / 2)
