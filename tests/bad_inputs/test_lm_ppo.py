"""Bad inputs to LMPPOAgent (agents.lm_ppo): each is a clear error naming what was wrong."""

import functools
import json
import re
import shutil
import tempfile
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch

import textgym  # noqa: F401
from agents import LMPPOAgent
from agents.lm import pretrain_mle, tiny_causal_lm, tiny_text_model, word_piece_tokenizer
from agents.lm_policy import task_texts
from agents.lm_ppo import LMPPOConfig
from textgym.vocab import WordVocabulary

torch.set_num_threads(1)


def agent(env_id="TokenGen-v0", **kwargs):
    env = gym.make(env_id)
    return LMPPOAgent(env, model=tiny_causal_lm(env.unwrapped.vocab, n_layer=1, n_embd=16, n_head=2),
                      num_envs=2, **kwargs)


@functools.cache
def saved_checkpoint() -> Path:
    path = Path(tempfile.mkdtemp(prefix="textgym-lmppo-bad-")) / "agent"
    agent().save(path)
    return path


def broken_checkpoint(damage) -> Path:
    """A fresh copy of the saved checkpoint, damaged by ``damage(path)``."""
    path = Path(tempfile.mkdtemp(prefix="textgym-lmppo-bad-")) / "agent"
    shutil.copytree(saved_checkpoint(), path)
    damage(path)
    return path


def flip_a_weight_byte(path: Path) -> None:
    weights = path / "trunk.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF  # the last byte is inside the tensor data, past the header
    weights.write_bytes(bytes(data))


def edit_meta(**changes):
    def damage(path: Path) -> None:
        meta = json.loads((path / "agent.json").read_text())
        meta.update(changes)
        for key in [k for k, v in changes.items() if v is None]:
            del meta[key]
        (path / "agent.json").write_text(json.dumps(meta))
    return damage


def load(path, env_id="TokenGen-v0"):
    return LMPPOAgent.load(path, env=gym.make(env_id))


SMALL_TASKS = {"NERTag-v0": {"task_kwargs": {"n_train": 20}}, "TokenEdit-v0": {"task_kwargs": {"n_train": 20}}}


def text_env(env_id: str = "NERTag-v0", **kwargs) -> gym.Env:
    return gym.make(env_id, **{**SMALL_TASKS[env_id], **kwargs})


def text_model(env: gym.Env, **kwargs):
    """A tiny BERT over a word-piece tokenizer of the env's task, and that tokenizer."""
    tokenizer = word_piece_tokenizer(task_texts(env))
    return tiny_text_model(tokenizer, **{"n_layer": 1, "hidden_size": 16, **kwargs}), tokenizer


def text_agent(env_id: str = "NERTag-v0", model_kwargs: dict | None = None, **kwargs) -> LMPPOAgent:
    env = text_env(env_id)
    model, tokenizer = text_model(env, **(model_kwargs or {}))
    return LMPPOAgent(env, model=model, tokenizer=tokenizer, num_envs=2, **kwargs)


@functools.cache
def saved_text_checkpoint() -> Path:
    path = Path(tempfile.mkdtemp(prefix="textgym-lmppo-bad-")) / "agent"
    text_agent().save(path)
    return path


def act_without_info():
    env = text_env()
    obs, _ = env.reset(seed=0)
    text_agent().act(obs)


def no_replayable_target():
    """Compress mode only deletes, and no reference is a subsequence of its source."""
    env = gym.make("TokenEdit-v0", mode="compress", task=[{"source": "a b", "references": ["c d"]}])
    model, tokenizer = text_model(env)
    LMPPOAgent(env, model=model, tokenizer=tokenizer, num_envs=1).warm_start()


def mle(**kwargs):
    env = gym.make("TokenGen-Copy-v0")
    model = tiny_causal_lm(env.unwrapped.vocab, n_layer=1, n_embd=16, n_head=2)
    pretrain_mle(model, "copy", env.unwrapped.vocab, **kwargs)


def save_onto_a_file():
    file = Path(tempfile.mkdtemp(prefix="textgym-lmppo-bad-")) / "agent"
    file.write_text("not a checkpoint")
    agent().save(file)


range_cases = [
    ("learning_rate", 0, r"\(0, inf\)"), ("learning_rate", float("nan"), r"\(0, inf\)"),
    ("num_envs", 0, r"\[1, inf\)"), ("n_epochs", 0, r"\[1, inf\)"), ("n_minibatches", -2, r"\[1, inf\)"),
    ("gamma", 5.0, r"\[0, 1\]"), ("gae_lambda", -0.1, r"\[0, 1\]"), ("clip_coef", 0.0, r"\(0, inf\)"),
    ("clip_value", -1.0, r"\(0, inf\) or None"), ("vf_coef", -0.5, r"\[0, inf\)"), ("ent_coef", -0.01, r"\[0, inf\)"),
    ("max_grad_norm", 0.0, r"\(0, inf\)"), ("max_approx_kl", 0.0, r"\(0, inf\) or None"),
    ("kl_coef", -1, r"\[0, inf\)"), ("kl_coef", float("inf"), r"\[0, inf\)"), ("kl_target", 0.0, r"\(0, inf\)"),
    ("kl_horizon", 0, r"\[1, inf\)"), ("temperature", 0.0, r"\(0, inf\)"), ("top_k", -1, r"\[0, inf\)"),
    ("top_p", 0.0, r"\(0, 1\]"), ("top_p", 1.5, r"\(0, 1\]"), ("mask_update_interval", 0, r"\[1, inf\)"),
]
type_cases = [
    ("num_envs", 2.5, "an int"), ("num_envs", True, "an int"), ("top_k", np.float64(3.0), "an int"),
    ("kl_coef", "0.1", "a finite number"), ("gamma", None, "a finite number"), ("learning_rate", False, "a finite number"),
]
choice_cases = [
    ("advantage", "ppo", r"unknown advantage 'ppo'; valid: \['gae', 'self-critical', 'group'\]"),
    ("kl_penalty", "value", r"unknown kl_penalty 'value'; valid: \['reward', 'loss'\]"),
    ("kl_estimator", "k2", r"unknown kl_estimator 'k2'; valid: \['k1', 'k3'\]"),
    ("kl_controller", "pid", r"unknown kl_controller 'pid'; valid: \['fixed', 'adaptive'\]"),
    ("value_model", "own", r"unknown value_model 'own'; valid: \['shared', 'separate'\]"),
    ("mask_model", "policy", r"unknown mask_model 'policy'; valid: \['reference', 'lagged'\]"),
    ("dtype", "float16", r"unknown dtype 'float16'; valid: \['float32', 'bfloat16'\]"),
    ("ref_dtype", "half", r"unknown ref_dtype 'half'; valid: \['float32', 'bfloat16'\]"),
    ("device", "gpu", r"device must be 'auto', 'cpu', 'cuda' or 'cuda:N', got 'gpu'"),
    ("device", 5, r"device must be 'auto', 'cpu', 'cuda' or 'cuda:N', got 5"),
    ("ref_device", "tpu0", r"ref_device must be 'auto', 'cpu', 'cuda' or 'cuda:N' or None, got 'tpu0'"),
]

BAD_INPUTS = [
    *[pytest.param(functools.partial(LMPPOConfig, **{name: value}), ValueError,
                   rf"{name} must be an? [a-z ]+ in {interval}, got {re.escape(repr(value))}$", id=f"range-{name}={value!r}")
      for name, value, interval in range_cases],
    *[pytest.param(functools.partial(LMPPOConfig, **{name: value}), TypeError, rf"{name} must be {what}",
                   id=f"type-{name}={value!r}") for name, value, what in type_cases],
    pytest.param(lambda: LMPPOConfig(whiten_advantages="yes"), TypeError,
                 r"whiten_advantages must be a bool, got 'yes'", id="type-whiten_advantages"),
    *[pytest.param(functools.partial(LMPPOConfig, **{name: value}), ValueError, message, id=f"choice-{name}")
      for name, value, message in choice_cases],
    pytest.param(lambda: agent(n_envs=4), ValueError, r"unknown hyperparameters \['n_envs'\] .*'num_envs'",
                 id="old-name-n_envs"),
    pytest.param(lambda: LMPPOAgent(gym.make("CartPole-v1")), ValueError,
                 r"LM policies run on TokenGen, NERTag and TokenEdit envs, not CartPoleEnv", id="env-without-a-view"),
    pytest.param(lambda: text_agent(ref_model=tiny_causal_lm(WordVocabulary.build(["x y z"]), n_layer=1, n_embd=16,
                                                              n_head=2)),
                 ValueError, r"ref_model= is for TokenGen's causal LMs", id="ref_model-on-nertag"),
    *[pytest.param(lambda env_id=env_id: LMPPOAgent(text_env(env_id), model=text_model(text_env(env_id))[0]), ValueError,
                   r"a model object needs its tokenizer too: LMPPOAgent\(env, model=model, tokenizer=tokenizer\)",
                   id=f"model-without-tokenizer-{env_id}") for env_id in SMALL_TASKS],
    *[pytest.param(lambda env_id=env_id: text_agent(env_id, model_kwargs={"max_positions": 6}).rollout([0, 1]),
                   ValueError, r"a text of \d+ model tokens is longer than the model's 6", id=f"text-too-long-{env_id}")
      for env_id in SMALL_TASKS],
    pytest.param(act_without_info, ValueError, r"NERTag's LM policy reads the sentence from info\['words'\]",
                 id="nertag-act-without-info"),
    *[pytest.param(lambda kwargs=kwargs: text_agent().warm_start(**kwargs), error, message, id=f"warm_start-{kwargs}")
      for kwargs, error, message in [
          ({"epochs": 0}, ValueError, r"epochs must be a positive int, got 0"),
          ({"epochs": True}, TypeError, r"epochs must be a positive int, got True"),
          ({"batch_size": 0}, ValueError, r"batch_size must be a positive int, got 0"),
          ({"learning_rate": 0}, ValueError, r"learning_rate must be a finite number > 0, got 0"),
          ({"head_learning_rate": -1.0}, ValueError, r"head_learning_rate must be a finite number > 0, got -1.0")]],
    pytest.param(no_replayable_target, ValueError, r"the env's task has no supervised targets this env can replay",
                 id="warm_start-nothing-to-replay"),
    pytest.param(lambda: LMPPOAgent.load(saved_text_checkpoint(), env=text_env("TokenEdit-v0")), ValueError,
                 r"was trained on different spaces", id="load-nertag-into-token-edit"),
    pytest.param(lambda: LMPPOAgent(gym.make("TokenGen-v0"),
                                    model=tiny_causal_lm(WordVocabulary.build(["x y z"]), n_layer=1, n_embd=16,
                                                         n_head=2)),
                 ValueError, r"the model scores 7 tokens but the env's action space has 9 actions", id="vocab-size"),
    pytest.param(lambda: agent().learn(0), ValueError, r"total_timesteps must be a positive int, got 0",
                 id="learn-0"),
    pytest.param(lambda: agent(advantage="self-critical").prepare(agent().rollout([0, 1])), ValueError,
                 r"advantage='self-critical' needs baseline=", id="self-critical-without-baseline"),
    *[pytest.param(functools.partial(mle, **{name: value}), ValueError, rf"{name} must be {message}, got {value!r}",
                   id=f"pretrain_mle-{name}={value!r}")
      for name, value, message in [("epochs", 0, r"an int in \[1, inf\)"), ("epochs", True, r"an int in \[1, inf\)"),
                                   ("batch_size", 2.0, r"an int in \[1, inf\)"),
                                   ("learning_rate", -1e-3, r"a finite number in \(0, inf\)")]],
    pytest.param(save_onto_a_file, FileExistsError, r"is a file; an LMPPOAgent checkpoint is a directory",
                 id="save-onto-a-file"),
    pytest.param(lambda: load(Path(tempfile.mkdtemp()) / "nothing"), FileNotFoundError,
                 r"no checkpoint at .*nothing \(an LMPPOAgent checkpoint is a directory with agent.json\)",
                 id="load-missing"),
    pytest.param(lambda: LMPPOAgent.load(saved_checkpoint()), ValueError, r"LMPPOAgent.load needs env=",
                 id="load-without-env"),
    pytest.param(lambda: load(saved_checkpoint(), "TokenGen-Keywords-v0"), ValueError,
                 r"was trained on different spaces", id="load-other-spaces"),
    pytest.param(lambda: load(broken_checkpoint(flip_a_weight_byte)), ValueError,
                 r"checkpoint .*agent is corrupted \(digest mismatch in trunk.safetensors\)", id="load-flipped-byte"),
    pytest.param(lambda: load(broken_checkpoint(lambda p: (p / "value_head.safetensors").unlink())),
                 FileNotFoundError, r"checkpoint .*agent is incomplete: value_head.safetensors is missing",
                 id="load-missing-weights"),
    pytest.param(lambda: load(broken_checkpoint(lambda p: (p / "agent.json").write_text('{"agent": '))),
                 ValueError, r"checkpoint .*agent is corrupted \(agent.json is not valid JSON", id="load-bad-json"),
    pytest.param(lambda: load(broken_checkpoint(lambda p: (p / "agent.json").write_text("[1, 2]"))),
                 ValueError, r"checkpoint .*agent is corrupted \(agent.json lacks \['agent',", id="load-json-list"),
    pytest.param(lambda: load(broken_checkpoint(edit_meta(spaces=None))), ValueError,
                 r"checkpoint .*agent is corrupted \(agent.json lacks \['spaces'\]\)", id="load-missing-key"),
    pytest.param(lambda: load(broken_checkpoint(edit_meta(agent="DQNAgent"))), ValueError,
                 r"holds a DQNAgent checkpoint, not a LMPPOAgent one", id="load-other-agent"),
    pytest.param(lambda: load(broken_checkpoint(edit_meta(config={"kl_coef": -1}))), ValueError,
                 r"kl_coef must be a finite number in \[0, inf\), got -1", id="load-tampered-config"),
]


@pytest.mark.parametrize("call, error, message", BAD_INPUTS)
def test_bad_input_is_a_clear_error(call, error, message):
    with pytest.raises(error, match=message):
        call()
