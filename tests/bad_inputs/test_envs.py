"""Bad inputs to the envs, vector envs and rewards: each is one clear error, not a traceback
from deep inside gymnasium or numpy."""

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.error import InvalidAction

import textgym  # noqa: F401  (registers the ids)
from textgym.envs.ner_tag import NERTagEnv
from textgym.envs.token_edit import TokenEditEnv
from textgym.envs.token_gen import TokenGenEnv

SINGLE = [TokenGenEnv, TokenEditEnv, NERTagEnv]
VECTOR_IDS = ["TokenGen-v0", "NERTag-v0"]


def reset_single(env_class, **kwargs):
    return lambda: env_class().reset(**kwargs)


def reset_vector(env_id, **kwargs):
    return lambda: gym.make_vec(env_id, num_envs=2).reset(**kwargs)


def step_single(env_class, action):
    def run():
        env = env_class()
        env.reset(seed=0)
        env.step(action)

    return run


def step_vector(env_id, actions):
    def run():
        envs = gym.make_vec(env_id, num_envs=2)
        envs.reset(seed=0)
        envs.step(actions)

    return run


SEED = "seed must be None or a non-negative int"
CASES = [
    # seeds
    *[pytest.param(reset_single(c, seed=-1), ValueError, f"{SEED}, got -1", id=f"{c.__name__}-seed-negative")
      for c in SINGLE],
    *[pytest.param(reset_single(c, seed=1.5), ValueError, f"{SEED}, got 1.5", id=f"{c.__name__}-seed-float")
      for c in SINGLE],
    *[pytest.param(reset_single(c, seed=True), ValueError, f"{SEED}, got True", id=f"{c.__name__}-seed-bool")
      for c in SINGLE],
    *[pytest.param(reset_single(c, seed=np.int64(-2)), ValueError, f"{SEED}, got -2", id=f"{c.__name__}-seed-np-negative")
      for c in SINGLE],
    *[pytest.param(reset_vector(e, seed=-1), ValueError, f"{SEED}, got -1", id=f"{e}-vector-seed-negative")
      for e in VECTOR_IDS],
    *[pytest.param(reset_vector(e, seed=[0, -1]), ValueError, f"{SEED}, got -1", id=f"{e}-vector-seed-list")
      for e in VECTOR_IDS],
    *[pytest.param(reset_vector(e, seed=[0, True]), ValueError, f"{SEED}, got True", id=f"{e}-vector-seed-list-bool")
      for e in VECTOR_IDS],
    *[pytest.param(reset_vector(e, seed=2.0), ValueError, r"seed must be None, a non-negative int or a list of 2",
                   id=f"{e}-vector-seed-float") for e in VECTOR_IDS],
    # reset options
    *[pytest.param(reset_single(c, options="x"), ValueError, r"options must be None or a dict with keys \['index'\]",
                   id=f"{c.__name__}-options-str") for c in SINGLE],
    *[pytest.param(reset_single(c, options={"idx": 0}), ValueError, r"unknown reset options 'idx'; valid keys: \['index'\]",
                   id=f"{c.__name__}-options-unknown-key") for c in SINGLE],
    *[pytest.param(reset_single(c, options={"index": True}), ValueError, r"options\['index'\] must be an int",
                   id=f"{c.__name__}-options-index-bool") for c in SINGLE],
    *[pytest.param(reset_vector(e, options="x"), ValueError, r"options must be None or a dict with keys \['index', 'reset_mask'\]",
                   id=f"{e}-vector-options-str") for e in VECTOR_IDS],
    # actions
    *[pytest.param(step_single(c, True), InvalidAction, r"action True is not in the action space", id=f"{c.__name__}-step-bool")
      for c in SINGLE],
    *[pytest.param(step_single(c, np.True_), InvalidAction, r"action True is not in the action space",
                   id=f"{c.__name__}-step-np-bool") for c in SINGLE],
    *[pytest.param(step_vector(e, np.array([True, False])), InvalidAction, r"are not in the action space",
                   id=f"{e}-vector-step-bool") for e in VECTOR_IDS],
    # constructor arguments
    *[pytest.param(lambda c=c: c(render_mode=1), ValueError, r"unknown render_mode 1; valid: None, 'ansi', 'human'",
                   id=f"{c.__name__}-render-mode-int") for c in SINGLE],
    pytest.param(lambda: TokenGenEnv(max_new_tokens=True), ValueError, "max_new_tokens must be a positive int, got True",
                 id="max-new-tokens-bool"),
    pytest.param(lambda: TokenGenEnv(max_new_tokens=5.0), ValueError, "max_new_tokens must be a positive int, got 5.0",
                 id="max-new-tokens-float"),
    pytest.param(lambda: TokenEditEnv(max_edits=np.int64(0)), ValueError, "max_edits must be None or a positive int, got 0",
                 id="max-edits-np-zero"),
    pytest.param(lambda: NERTagEnv(window=-1), ValueError, "window must be None or an int >= 0, got -1", id="window-negative"),
    pytest.param(lambda: NERTagEnv(min_freq=1.0), ValueError, "min_freq must be a positive int, got 1.0", id="min-freq-float"),
    pytest.param(lambda: gym.make_vec("TokenGen-v0", num_envs=np.int64(0)), ValueError, "num_envs must be a positive int, got 0",
                 id="vector-num-envs-zero"),
]


@pytest.mark.parametrize(("make_error", "error", "message"), CASES)
def test_bad_input_gives_one_clear_error(make_error, error, message):
    with pytest.raises(error, match=message):
        make_error()
