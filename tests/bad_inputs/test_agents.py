"""Bad inputs to the agents (configs, learn/evaluate arguments, checkpoints) and to
textgym.sb3: each is a one-line error naming the argument or the file."""

import functools
import pickle
import tempfile
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch

import textgym  # noqa: F401
from agents import DQNAgent, RandomAgent, TabularQAgent, evaluate
from agents.base import load_checkpoint, save_checkpoint
from agents.networks import TokenQNetwork
from textgym.sb3 import TokenFeaturesExtractor, policy_kwargs


def make(agent_cls, **kwargs):
    return lambda: agent_cls(gym.make("TokenGen-v0"), **kwargs)


@functools.cache
def tabular_checkpoint() -> bytes:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "checkpoint.pt"
        TabularQAgent(gym.make("TokenGen-v0"), seed=0).learn(50).save(path)
        return path.read_bytes()


def load_written(write, agent_cls=TabularQAgent, env_id="TokenGen-v0"):
    """A callable that loads a checkpoint.pt written by ``write(path)`` into ``agent_cls``."""
    def load():
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / "checkpoint.pt"
            write(path)
            agent_cls.load(path, gym.make(env_id) if env_id else None)
    return load


def tampered(change):
    """Writes the tabular checkpoint's payload after ``change(payload)``, with a valid digest."""
    def write(path):
        path.write_bytes(tabular_checkpoint())
        payload = load_checkpoint(path)
        change(payload)
        save_checkpoint(path, payload)
    return write


def flip_a_weight_byte(path):
    path.write_bytes(tabular_checkpoint())
    row = next(iter(load_checkpoint(path)["state"]["tables"][0].values()))
    data = bytearray(path.read_bytes())
    data[data.find(row.numpy().tobytes())] ^= 0x01
    path.write_bytes(bytes(data))


class Executes:
    def __reduce__(self):
        return (print, ("never run",))


CASES = [
    # DQN hyperparameters
    pytest.param(make(DQNAgent, gamma=5.0), ValueError, r"^gamma must be a number in \[0, 1\], got 5.0$", id="dqn-gamma"),
    pytest.param(make(DQNAgent, epsilon_start=3.0), ValueError, r"^epsilon_start must be a number in \[0, 1\], got 3.0$",
                 id="dqn-epsilon-start"),
    pytest.param(make(DQNAgent, epsilon_end=-0.1), ValueError, r"^epsilon_end must be a number in \[0, 1\]", id="dqn-epsilon-end"),
    pytest.param(make(DQNAgent, exploration_fraction=2), ValueError, r"^exploration_fraction must be a number in \[0, 1\]",
                 id="dqn-exploration-fraction"),
    pytest.param(make(DQNAgent, learning_starts=-5), ValueError, r"^learning_starts must be an int >= 0, got -5$",
                 id="dqn-learning-starts"),
    pytest.param(make(DQNAgent, learning_rate=0), ValueError, r"^learning_rate must be a finite number > 0, got 0$",
                 id="dqn-learning-rate-zero"),
    pytest.param(make(DQNAgent, learning_rate=float("nan")), ValueError, r"^learning_rate must be a finite number > 0, got nan$",
                 id="dqn-learning-rate-nan"),
    pytest.param(make(DQNAgent, learning_rate="fast"), TypeError, r"^learning_rate must be a finite number > 0, got 'fast'$",
                 id="dqn-learning-rate-string"),
    pytest.param(make(DQNAgent, max_grad_norm=-1.0), ValueError, r"^max_grad_norm must be a finite number > 0", id="dqn-grad-norm"),
    pytest.param(make(DQNAgent, tau=0.0), ValueError, r"^tau must be a number in \(0, 1\], got 0.0$", id="dqn-tau"),
    pytest.param(make(DQNAgent, batch_size=0), ValueError, r"^batch_size must be a positive int, got 0$", id="dqn-batch-size"),
    pytest.param(make(DQNAgent, batch_size=1.5), TypeError, r"^batch_size must be a positive int, got 1.5$",
                 id="dqn-batch-size-float"),
    pytest.param(make(DQNAgent, buffer_size=True), TypeError, r"^buffer_size must be a positive int, got True$",
                 id="dqn-buffer-size-bool"),
    pytest.param(make(DQNAgent, n_step=np.int64(0)), ValueError, r"^n_step must be a positive int", id="dqn-n-step"),
    pytest.param(make(DQNAgent, embed_dim=0), ValueError, r"^embed_dim must be a positive int, got 0$", id="dqn-embed-dim"),
    pytest.param(make(DQNAgent, double_q="yes"), TypeError, r"^double_q must be True or False, got 'yes'$", id="dqn-double-q"),
    pytest.param(make(DQNAgent, encoder="mean"), ValueError,
                 r"^unknown encoder 'mean'; valid: \['concat', 'gru', 'transformer'\]$", id="dqn-encoder"),
    pytest.param(make(DQNAgent, encoder="transformer", embed_dim=30), ValueError,
                 r"^embed_dim \(30\) must be divisible by n_heads \(4\)", id="dqn-transformer-heads"),
    pytest.param(make(DQNAgent, epsilon_schedule="cosine"), ValueError,
                 r"^unknown epsilon_schedule 'cosine'; valid: \['linear', 'exponential'\]$", id="dqn-schedule"),
    pytest.param(make(DQNAgent, device="bogus"), ValueError, r"^device must be 'auto' or a torch device name .*got 'bogus'$",
                 id="dqn-device"),
    pytest.param(lambda: DQNAgent(gym.make("CartPole-v1")), ValueError, r"^TokenQNetwork needs a Dict of 1-D integer Boxes",
                 id="dqn-non-textgym-env"),
    pytest.param(lambda: TokenQNetwork(gym.make("TokenGen-v0").observation_space, 4, encoder="lstm"), ValueError,
                 r"^unknown encoder 'lstm'", id="q-network-encoder"),
    # tabular Q hyperparameters
    pytest.param(make(TabularQAgent, q_init=float("nan")), ValueError, r"^q_init must be a finite number, got nan$",
                 id="tabular-q-init-nan"),
    pytest.param(make(TabularQAgent, q_init=float("inf")), ValueError, r"^q_init must be a finite number, got inf$",
                 id="tabular-q-init-inf"),
    pytest.param(make(TabularQAgent, learning_rate=0.0), ValueError, r"^learning_rate must be a number in \(0, 1\], got 0.0$",
                 id="tabular-learning-rate"),
    pytest.param(make(TabularQAgent, learning_rate_end=2.0), ValueError, r"^learning_rate_end must be a number in \[0, 1\]",
                 id="tabular-learning-rate-end"),
    pytest.param(make(TabularQAgent, gamma=1.5), ValueError, r"^gamma must be a number in \[0, 1\], got 1.5$", id="tabular-gamma"),
    pytest.param(make(TabularQAgent, gamma=True), TypeError, r"^gamma must be a number in \[0, 1\], got True$",
                 id="tabular-gamma-bool"),
    pytest.param(make(TabularQAgent, double_q=1), TypeError, r"^double_q must be True or False, got 1$", id="tabular-double-q"),
    # every agent
    pytest.param(make(RandomAgent, seed=-1), ValueError, r"^seed must be an int >= 0, got -1$", id="seed-negative"),
    pytest.param(make(RandomAgent, seed=1.5), TypeError, r"^seed must be an int >= 0, got 1.5$", id="seed-float"),
    pytest.param(make(RandomAgent, seed=True), TypeError, r"^seed must be an int >= 0, got True$", id="seed-bool"),
    pytest.param(make(RandomAgent, gamma=0.9), ValueError, r"^unknown hyperparameters \['gamma'\] for RandomAgent; valid: \[\]$",
                 id="random-hyperparameter"),
    pytest.param(make(DQNAgent, gama=0.9), ValueError, r"^unknown hyperparameters \['gama'\] for DQNAgent; valid: \[",
                 id="unknown-hyperparameter"),
    pytest.param(lambda: RandomAgent(gym.make("MountainCarContinuous-v0")), ValueError,
                 r"^RandomAgent needs a Discrete action space", id="continuous-actions"),
    pytest.param(lambda: RandomAgent(gym.make("TokenGen-v0")).learn(0), ValueError,
                 r"^total_timesteps must be a positive int, got 0$", id="learn-zero"),
    pytest.param(lambda: TabularQAgent(gym.make("TokenGen-v0")).learn("100"), TypeError,
                 r"^total_timesteps must be a positive int, got '100'$", id="learn-string"),
    pytest.param(lambda: DQNAgent(gym.make("TokenGen-v0")).learn(True), TypeError,
                 r"^total_timesteps must be a positive int, got True$", id="learn-bool"),
    pytest.param(lambda: evaluate(RandomAgent(gym.make("TokenGen-v0")), gym.make("TokenGen-v0"), n_episodes=0), ValueError,
                 r"^n_episodes must be a positive int, got 0$", id="evaluate-episodes"),
    pytest.param(lambda: evaluate(RandomAgent(gym.make("TokenGen-v0")), gym.make("TokenGen-v0"), seed=-1), ValueError,
                 r"^seed must be an int >= 0, got -1$", id="evaluate-seed"),
    # checkpoints
    pytest.param(load_written(lambda path: None), FileNotFoundError, r"^no checkpoint at .*checkpoint\.pt$", id="ckpt-missing"),
    pytest.param(load_written(lambda path: path.write_bytes(b"")), ValueError, r"^checkpoint .*checkpoint\.pt is empty$",
                 id="ckpt-empty"),
    pytest.param(load_written(lambda path: path.write_bytes(b"not a checkpoint\n")), ValueError,
                 r"^checkpoint .*checkpoint\.pt is corrupted or not a checkpoint \(torch\.load: ", id="ckpt-garbage"),
    pytest.param(load_written(lambda path: path.write_bytes(tabular_checkpoint()[:-100])), ValueError,
                 r"^checkpoint .*checkpoint\.pt is corrupted or not a checkpoint \(torch\.load: ", id="ckpt-truncated"),
    pytest.param(load_written(flip_a_weight_byte), ValueError,
                 r"^checkpoint .*checkpoint\.pt is corrupted \(digest mismatch\)$", id="ckpt-flipped-weight-byte"),
    pytest.param(load_written(lambda path: path.write_bytes(pickle.dumps(Executes(), protocol=2))), ValueError,
                 r"^checkpoint .*checkpoint\.pt is corrupted or not a checkpoint \(torch\.load: UnpicklingError: ",
                 id="ckpt-pickle-payload"),
    pytest.param(load_written(lambda path: torch.save({"agent": "TabularQAgent", "state": {}}, path)), ValueError,
                 r"^checkpoint .*checkpoint\.pt has no sha256 digest: save_checkpoint did not write it$", id="ckpt-no-digest"),
    pytest.param(load_written(tampered(lambda payload: payload.pop("state"))), ValueError,
                 r"^checkpoint .*checkpoint\.pt lacks \['state'\]: Agent\.save did not write it$", id="ckpt-no-state"),
    pytest.param(load_written(tampered(lambda payload: payload["config"].update(gamma=5.0))), ValueError,
                 r"^checkpoint .*checkpoint\.pt does not make a TabularQAgent: gamma must be a number in \[0, 1\], got 5.0$",
                 id="ckpt-bad-config"),
    pytest.param(load_written(tampered(lambda payload: payload.update(state={}))), ValueError,
                 r"^checkpoint .*checkpoint\.pt does not make a TabularQAgent: no 'tables' entry$", id="ckpt-bad-state"),
    pytest.param(load_written(tampered(lambda payload: payload.update(num_timesteps=-3))), ValueError,
                 r"^checkpoint .*checkpoint\.pt does not make a TabularQAgent: num_timesteps must be an int >= 0, got -3$",
                 id="ckpt-bad-timesteps"),
    pytest.param(load_written(lambda path: path.write_bytes(tabular_checkpoint()), agent_cls=DQNAgent), ValueError,
                 r"checkpoint\.pt holds a TabularQAgent checkpoint, not a DQNAgent one$", id="ckpt-other-agent"),
    pytest.param(load_written(lambda path: path.write_bytes(tabular_checkpoint()), env_id=None), ValueError,
                 r"^TabularQAgent\.load needs env=", id="ckpt-no-env"),
    pytest.param(load_written(lambda path: path.write_bytes(tabular_checkpoint()), env_id="NERTag-v0"), ValueError,
                 r"checkpoint\.pt was trained on different spaces", id="ckpt-other-spaces"),
    # textgym.sb3
    pytest.param(lambda: TokenFeaturesExtractor(gym.make("TokenGen-v0").observation_space, encoder="lstm"), ValueError,
                 r"^unknown encoder 'lstm'; valid: \['concat', 'mean', 'gru', 'transformer'\]$", id="sb3-encoder"),
    pytest.param(lambda: TokenFeaturesExtractor(gym.make("TokenGen-v0").observation_space, embed_dim=0), ValueError,
                 r"^embed_dim must be a positive int, got 0$", id="sb3-embed-dim"),
    pytest.param(lambda: TokenFeaturesExtractor(gym.make("TokenGen-v0").observation_space, n_layers=True), ValueError,
                 r"^n_layers must be a positive int, got True$", id="sb3-layers-bool"),
    pytest.param(lambda: TokenFeaturesExtractor(gym.make("TokenGen-v0").observation_space, pointed_tokens=1), ValueError,
                 r"^pointed_tokens must be True or False, got 1$", id="sb3-pointed-tokens"),
    pytest.param(lambda: policy_kwargs(gym.make("CartPole-v1")), ValueError,
                 r"^TokenFeaturesExtractor needs a Dict of 1-D integer Boxes", id="sb3-non-textgym-env"),
    pytest.param(lambda: policy_kwargs("TokenGen-v0"), ValueError, r"^expected a gym\.Env or VecEnv with an observation_space",
                 id="sb3-not-an-env"),
]


@pytest.mark.parametrize("call, error, message", CASES)
def test_bad_input_is_a_clear_error(call, error, message):
    with pytest.raises(error, match=message):
        call()
