"""textgym.rllib: every id registered for RLlib with its mask in the observation, and PPO with the
token module learning copy in one env-runner process, masked actions never taken."""

import logging
import subprocess
import sys

import gymnasium as gym
import numpy as np
import pytest

pytest.importorskip("ray")
import ray  # noqa: E402
import torch  # noqa: E402
from ray.rllib.core.columns import Columns  # noqa: E402
from ray.rllib.utils.torch_utils import FLOAT_MIN  # noqa: E402
from ray.tune.registry import ENV_CREATOR, _global_registry  # noqa: E402

from agents import RandomAgent, evaluate  # noqa: E402
from envs_registry import ENVS  # noqa: E402
from textgym.rllib import ActionMaskObservation, ModulePolicy, make_env, module_spec, ppo_config, register_envs  # noqa: E402

COPY_MASK = [0, 0, 1, 0, 1, 1, 1, 1, 1]  # copy's 9 actions: <pad>, <bos> and <unk> are never legal
TRAINING = {"lr": 2e-3, "gamma": 0.9, "train_batch_size_per_learner": 1_000, "minibatch_size": 64, "num_epochs": 4}


def copy_module(**model_config):
    env = make_env("TokenGen-Copy-v0")
    spec = module_spec(**model_config)
    spec.observation_space, spec.action_space = env.observation_space, env.action_space
    return env, spec.build()


def batch_of(obs: dict, n: int = 1) -> dict:
    return {Columns.OBS: {"observations": {k: torch.as_tensor(np.stack([v] * n)) for k, v in obs["observations"].items()},
                          "action_mask": torch.as_tensor(np.stack([obs["action_mask"]] * n))}}


def test_importing_textgym_does_not_import_ray():
    code = "import sys, textgym, textgym.sb3; print('ray' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"


def test_ppo_config_registers_the_ids_again_after_a_ray_shutdown():
    ray.init(num_cpus=1, include_dashboard=False, logging_level=logging.ERROR)
    ray.shutdown()  # this empties the driver's registry of env creators
    ppo_config("TokenGen-Copy-v0")
    assert _global_registry.contains(ENV_CREATOR, "textgym:TokenGen-Copy-v0")


def test_every_id_is_registered_with_its_mask_in_the_observation():
    register_envs()  # as at import: a ray.shutdown() earlier in this process (the README's block) emptied the registry
    for env_id in ENVS:
        assert _global_registry.contains(ENV_CREATOR, "textgym:" + env_id)
    env = _global_registry.get(ENV_CREATOR, "textgym:TokenGen-Copy-v0")({"task_kwargs": {"length": 4}})
    assert isinstance(env, ActionMaskObservation) and env.unwrapped.spec.kwargs["task_kwargs"] == {"length": 4}
    obs, info = env.reset(seed=0)
    assert env.observation_space.contains(obs)
    assert obs["action_mask"].tolist() == info["action_mask"].tolist() == COPY_MASK
    assert obs["observations"]["prompt_ids"].shape == (4,)
    # without info["action_mask"] the mask still comes, from env.action_masks()
    quiet = make_env("TokenGen-Copy-v0", {"action_mask": False})
    obs, info = quiet.reset(seed=0)
    assert "action_mask" not in info and obs["action_mask"].tolist() == COPY_MASK
    ner = make_env("NERTag-v0")  # bio_mask: the legal tags change from step to step
    obs, info = ner.reset(seed=0)
    done = False
    while not done:
        assert ner.observation_space.contains(obs) and obs["action_mask"].tolist() == info["action_mask"].tolist()
        obs, _, terminated, truncated, info = ner.step(ner.action_space.sample(mask=obs["action_mask"]))
        done = terminated or truncated


def test_masked_actions_get_no_probability():
    env, module = copy_module(embed_dim=8, head_dim=16)
    obs, _ = env.reset(seed=0)
    only = {**obs, "action_mask": np.eye(9, dtype=np.int8)[6]}  # every action but 6 forbidden
    with torch.no_grad():
        for forward in (module.forward_exploration, module.forward_inference):
            logits = forward(batch_of(only, n=500))[Columns.ACTION_DIST_INPUTS]
            assert (logits[:, [0, 1, 2, 3, 4, 5, 7, 8]] == FLOAT_MIN).all() and (logits[:, 6] > FLOAT_MIN).all()
            actions = module.get_exploration_action_dist_cls().from_logits(logits).sample()
            assert actions.tolist() == [6] * 500
        logits = module.forward_train(batch_of(obs))[Columns.ACTION_DIST_INPUTS][0]
        assert (logits == FLOAT_MIN).tolist() == [m == 0 for m in COPY_MASK]
        assert module.compute_values(batch_of(obs, n=3)).shape == (3,)
    assert ModulePolicy(module).act(only) == 6 and ModulePolicy(module).act(only, deterministic=False) == 6


@pytest.mark.parametrize("bad, call, match", [
    ("TokenGen-Nope-v0", lambda bad: ppo_config(bad), r"unknown textgym env id 'TokenGen-Nope-v0'; valid: \['TokenGen-v0'"),
    ({"reward": "blue"}, lambda bad: ppo_config("TokenGen-Copy-v0", **bad), r"unknown reward metric 'blue'; valid metrics: \['bleu'"),
    ({"embed": 8}, lambda bad: module_spec(**bad), r"unknown TokenPPOModule argument\(s\) \['embed'\]; valid: \['embed_dim'"),
    ({"head_dim": 0}, lambda bad: module_spec(**bad), "head_dim must be a positive int, got 0"),
    ({"encoder": "lstm"}, lambda bad: copy_module(**bad), r"unknown encoder 'lstm'; valid: \['concat'"),
    ("Pendulum-v1", lambda bad: ActionMaskObservation(gym.make(bad)), r"needs a Discrete action space, got Box\(-2.0, 2.0"),
])
def test_bad_arguments_raise(bad, call, match):
    with pytest.raises(ValueError, match=match):
        call(bad)


@pytest.fixture
def ray_session(monkeypatch):
    # quiet: no log deduplication notes, no worker logs, RLlib's warnings (new API stack, deprecations) held back
    monkeypatch.setenv("RAY_DEDUP_LOGS", "0")
    logger = logging.getLogger("ray")
    level = logger.level
    logger.setLevel(logging.ERROR)
    ray.init(num_cpus=2, include_dashboard=False, logging_level="ERROR", log_to_driver=False)
    yield
    ray.shutdown()
    logger.setLevel(level)


def illegal_actions(runner) -> tuple[int, int]:
    """(illegal actions, actions) in 400 env steps sampled by an env runner's own module."""
    illegal = total = 0
    for episode in runner.sample(num_timesteps=400, random_actions=False):
        masks = episode.get_observations()["action_mask"][:-1]  # the mask each action was chosen under
        actions = episode.get_actions()
        illegal += int((masks[np.arange(len(actions)), actions] == 0).sum())
        total += len(actions)
    return illegal, total


@pytest.mark.slow
def test_ppo_with_one_env_runner_obeys_the_masks_and_beats_random(ray_session):
    torch.set_num_threads(1)
    config = (ppo_config("TokenGen-Copy-v0", reward_mode="dense")
              .env_runners(num_env_runners=1, num_envs_per_env_runner=8)
              .training(**TRAINING).debugging(seed=0, log_level="ERROR"))
    algo = config.build_algo()
    try:
        # the untrained policy is near uniform: unmasked, a third of its actions would be illegal
        [(illegal, total)] = algo.env_runner_group.foreach_env_runner(illegal_actions, local_env_runner=False)
        assert illegal == 0 and total >= 400
        for _ in range(3):
            result = algo.train()
        assert result["env_runners"]["num_env_steps_sampled_lifetime"] >= 3_000
        [(illegal, total)] = algo.env_runner_group.foreach_env_runner(illegal_actions, local_env_runner=False)
        assert illegal == 0 and total >= 400
        env = make_env("TokenGen-Copy-v0")
        trained = evaluate(ModulePolicy(algo.get_module()), env, n_episodes=100, seed=10_000)["token_accuracy"]
    finally:
        algo.stop()
    random = evaluate(RandomAgent(gym.make("TokenGen-Copy-v0"), seed=0), gym.make("TokenGen-Copy-v0"),
                      n_episodes=100, seed=10_000)["token_accuracy"]
    assert random < 0.25 and trained >= 0.7, (random, trained)
