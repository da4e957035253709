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
    *[pytest.param(lambda e=e: gym.make(e).reset(seed=-3), ValueError, f"{SEED}, got -3", id=f"{e}-make-seed-negative")
      for e in ("TokenGen-v0", "TokenEdit-v0", "NERTag-v0")],
    pytest.param(lambda: gym.make_vec("TokenEdit-v0", num_envs=2).reset(seed=[1, -1]), ValueError, f"{SEED}, got -1",
                 id="TokenEdit-sync-seed-list"),
    pytest.param(lambda: gym.make_vec("TokenGen-v0", num_envs=2, vectorization_mode="sync").reset(seed=-1), ValueError,
                 f"{SEED}, got -1", id="TokenGen-sync-seed-negative"),
    # reset options
    *[pytest.param(reset_single(c, options="x"), ValueError, r"options must be None or a dict with keys \['index'\]",
                   id=f"{c.__name__}-options-str") for c in SINGLE],
    *[pytest.param(reset_single(c, options={"idx": 0}), ValueError, r"unknown reset options 'idx'; valid keys: \['index'\]",
                   id=f"{c.__name__}-options-unknown-key") for c in SINGLE],
    *[pytest.param(reset_single(c, options={"index": True}), ValueError, r"options\['index'\] must be an int",
                   id=f"{c.__name__}-options-index-bool") for c in SINGLE],
    *[pytest.param(reset_vector(e, options="x"), ValueError,
                   r"options must be None or a dict with keys \['index', 'reset_mask'\]", id=f"{e}-vector-options-str")
      for e in VECTOR_IDS],
    # actions
    *[pytest.param(step_single(c, True), InvalidAction, r"action True is not in the action space", id=f"{c.__name__}-step-bool")
      for c in SINGLE],
    *[pytest.param(step_single(c, np.True_), InvalidAction, r"action True is not in the action space",
                   id=f"{c.__name__}-step-np-bool") for c in SINGLE],
    *[pytest.param(lambda e=e: step_single(lambda: gym.make(e), True)(), InvalidAction, "action True is not in the action space",
                   id=f"{e}-make-step-bool") for e in ("TokenGen-v0", "TokenEdit-v0", "NERTag-v0")],
    *[pytest.param(step_vector(e, np.array([True, False])), InvalidAction, r"are not in the action space",
                   id=f"{e}-vector-step-bool") for e in VECTOR_IDS],
    pytest.param(lambda: TokenEditEnv().describe_action(True), ValueError, "action True is not in the action space",
                 id="describe-action-bool"),
    # constructor arguments
    *[pytest.param(lambda c=c: c(render_mode=1), ValueError, r"unknown render_mode 1; valid: None, 'ansi', 'human'",
                   id=f"{c.__name__}-render-mode-int") for c in SINGLE],
    *[pytest.param(lambda e=e: gym.make(e, render_mode=1), ValueError, r"unknown render_mode 1; valid: None, 'ansi', 'human'",
                   id=f"{e}-make-render-mode-int") for e in ("TokenGen-v0", "TokenEdit-v0", "NERTag-v0")],
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


def nan_metric(prediction, references, source):
    return float("nan")


def text_metric(prediction, references, source):
    return "0.5"


def one_argument(prediction):
    return 1.0


def raising_metric(prediction, references, source):
    raise KeyError("oops")


def short_mask(prompt_ids, output_ids):
    return np.ones(3, dtype=bool)


def empty_mask(prompt_ids, output_ids):
    return np.zeros(16, dtype=bool)


def no_mask(prompt_ids, output_ids):
    pass


def raising_mask(prompt_ids, output_ids):
    raise IndexError("bad index")


def only_eos_mask(prompt_ids, output_ids):
    mask = np.zeros(16, dtype=bool)
    mask[2] = True  # the copy task's EOS
    return mask


def one_argument_mask(prompt_ids):
    return np.ones(16, dtype=bool)


COPY_16 = {"task_kwargs": {"n_symbols": 12}}  # a vocabulary of 16 tokens
FIRST_EXAMPLE = r"\(prediction, references, source\) on the first example"
CASES += [
    # user callables are probed once at construction
    *[pytest.param(lambda c=c, m=m: c(reward=m), error, f"reward='{m.__name__}': {m.__name__}{FIRST_EXAMPLE} {message}",
                   id=f"{c.__name__}-reward-{m.__name__}")
      for c in (TokenGenEnv, TokenEditEnv)
      for m, error, message in [
          (nan_metric, ValueError, "returned nan; a metric returns a finite float"),
          (text_metric, TypeError, "returned '0.5'; a metric returns a float"),
          (one_argument, TypeError, "raised TypeError: .*positional argument"),
          (raising_metric, ValueError, "raised KeyError: 'oops'"),
      ]],
    pytest.param(lambda: TokenGenEnv(reward=[("bleu", 0.5), (nan_metric, 0.5)]), ValueError, "reward='nan_metric'",
                 id="reward-list-with-a-bad-callable"),
    *[pytest.param(lambda m=m: TokenGenEnv(mask_fn=m, **COPY_16), error,
                   f"mask_fn={m.__name__}: on the first example's prompt ids and an empty output, {message}",
                   id=f"mask-fn-{m.__name__}")
      for m, error, message in [
          (short_mask, ValueError, r"mask_fn returned shape \(3,\), expected \(16,\)"),
          (empty_mask, ValueError, "mask_fn left no legal action; keep at least EOS legal"),
          (no_mask, ValueError, r"mask_fn returned shape \(\), expected \(16,\)"),
          (raising_mask, ValueError, "raised IndexError: bad index"),
          (one_argument_mask, TypeError, "raised TypeError: .*positional argument"),
      ]],
    pytest.param(lambda: gym.make_vec("TokenGen-v0", num_envs=2, mask_fn=empty_mask, **COPY_16), ValueError,
                 "mask_fn=empty_mask: on the first example", id="vector-mask-fn-empty"),
    pytest.param(lambda: TokenGenEnv(mask_fn=only_eos_mask, min_new_tokens=1, **COPY_16), ValueError,
                 "mask_fn left no legal action; keep at least a token other than EOS before min_new_tokens=1 legal",
                 id="mask-fn-only-eos-before-min-new-tokens"),
    *[pytest.param(lambda k=k: TokenGenEnv(**k), ValueError, message, id=f"min-new-tokens-{i}")
      for i, (k, message) in enumerate([
          ({"min_new_tokens": -1}, "min_new_tokens must be an int >= 0, got -1"),
          ({"min_new_tokens": True}, "min_new_tokens must be an int >= 0, got True"),
          ({"min_new_tokens": 9, "max_new_tokens": 8}, "min_new_tokens=9 exceeds max_new_tokens=8"),
          ({"min_new_tokens": 1, "allowed_tokens": []},
           "min_new_tokens=1 makes EOS illegal at first, and allowed_tokens leaves no other token"),
      ])],
    # reward weights
    pytest.param(lambda: TokenGenEnv(reward=[("bleu", -1.0), ("rouge1", 2.0)]), ValueError,
                 r"reward weights must be finite and >= 0, with one > 0; got \{bleu: -1, rouge1: 2\}",
                 id="reward-weight-negative"),
    pytest.param(lambda: TokenGenEnv(reward={"bleu": 0, "chrf": 0.0}), ValueError,
                 r"reward weights must be finite and >= 0, with one > 0; got \{bleu: 0, chrf: 0\}",
                 id="reward-weights-all-zero"),
]

CASES += [
    pytest.param(lambda: NERTagEnv(reward="f1"), ValueError,
                 r"NERTag takes no reward= \(got 'f1'\): its reward is chosen by reward_mode, "
                 r"one of \['token', 'f1_delta', 'f1'\]", id="ner-reward"),
    pytest.param(lambda: gym.make("NERTag-v0", reward="bleu"), ValueError, "NERTag takes no reward=", id="ner-reward-make"),
    pytest.param(lambda: TokenGenEnv(reward=[("bleu", True)]), ValueError,
                 r"a weighted reward term is \(metric, weight\), got \('bleu', True\)", id="reward-weight-bool"),
    pytest.param(lambda: TokenGenEnv(reward={"metric": "bleu", "weight": True}), ValueError,
                 "reward weight must be a finite number, got True", id="reward-dict-weight-bool"),
    pytest.param(lambda: TokenGenEnv(reward={"metric": "length", "target": True}), ValueError,
                 "length target must be a positive int or None, got True", id="length-target-bool"),
    pytest.param(lambda: TokenEditEnv(compression={"ratio": np.float64("nan")}), ValueError,
                 "compression ratio must be a positive number, got", id="compression-ratio-nan"),
]


@pytest.mark.parametrize(("make_error", "error", "message"), CASES)
def test_bad_input_gives_one_clear_error(make_error, error, message):
    with pytest.raises(error, match=message):
        make_error()
