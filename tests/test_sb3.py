import subprocess
import sys

import gymnasium as gym
import numpy as np
import pytest
import torch
from sb3_contrib import MaskablePPO
from stable_baselines3 import A2C, DQN, PPO
from stable_baselines3.common.env_util import make_vec_env

import textgym  # noqa: F401
from agents import evaluate
from envs_registry import ENVS
from textgym.sb3 import EXTRACTOR_ENCODERS, TokenFeaturesExtractor, policy_kwargs

TINY_COPY = {"task_kwargs": {"length": 3, "n_symbols": 5}, "reward_mode": "dense"}
STEPS, MIN_ACCURACY = 6_000, 0.9


def observation_batch(env: gym.Env, n: int = 3) -> dict[str, torch.Tensor]:
    """``n`` observations from random play, as SB3 hands them to an extractor (float)."""
    observations = []
    obs, info = env.reset(seed=0)
    for _ in range(n):
        observations.append(obs)
        obs, _, terminated, truncated, info = env.step(env.action_space.sample(mask=info["action_mask"]))
        if terminated or truncated:
            obs, info = env.reset()
    return {k: torch.as_tensor(np.stack([o[k] for o in observations]), dtype=torch.float32) for k in obs}


def test_importing_textgym_does_not_import_sb3():
    code = "import sys, textgym; print('stable_baselines3' in sys.modules or 'sb3_contrib' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"


@pytest.mark.parametrize("encoder", EXTRACTOR_ENCODERS)
@pytest.mark.parametrize("env_id", list(ENVS))
def test_features_have_the_declared_shape(env_id, encoder):
    env = gym.make(env_id)
    extractor = TokenFeaturesExtractor(env.observation_space, encoder=encoder, embed_dim=8, hidden_dim=16, n_heads=2)
    features = extractor(observation_batch(env))
    assert features.shape == (3, extractor.features_dim)
    assert torch.isfinite(features).all()


@pytest.mark.parametrize("encoder", EXTRACTOR_ENCODERS)
def test_gradients_reach_the_embeddings(encoder):
    env = gym.make("TokenGen-v0")
    extractor = TokenFeaturesExtractor(env.observation_space, encoder=encoder)
    extractor(observation_batch(env)).square().sum().backward()
    for table in (extractor.token_embedding, extractor.slot_embedding, extractor.counter_embedding):
        assert table.weight.grad is not None and table.weight.grad.abs().sum() > 0


def test_padding_and_masked_ids_do_not_change_the_features():
    env = gym.make("TokenGen-v0")
    extractor = TokenFeaturesExtractor(env.observation_space)
    obs = observation_batch(env, n=1)  # reset: the output is all padding
    assert obs["output_mask"].sum() == 0
    changed = {**obs, "output_ids": torch.full_like(obs["output_ids"], 5.0)}
    assert torch.equal(extractor(obs), extractor(changed))


def test_prompt_and_output_share_token_embeddings_but_tags_do_not():
    gen = TokenFeaturesExtractor(gym.make("TokenGen-v0").observation_space)
    assert gen.id_offsets == {"output_ids": 0, "prompt_ids": 0}
    ner = TokenFeaturesExtractor(gym.make("NERTag-v0").observation_space)
    assert len(set(ner.id_offsets.values())) == 3  # words, shapes and tags have their own rows
    assert ner.token_embedding.num_embeddings == sum(ner.id_sizes[k] for k in ("shape_ids", "tag_ids", "token_ids"))


def test_pointed_tokens_are_the_tokens_under_the_pointers():
    env = gym.make("TokenGen-v0")
    extractor = TokenFeaturesExtractor(env.observation_space)
    assert extractor.pointers == [("output_ids", "position"), ("prompt_ids", "position")]
    edit = TokenFeaturesExtractor(gym.make("TokenEdit-v0").observation_space)
    assert edit.pointers == [("current_ids", "cursor")]  # "edits" counts, it does not point
    obs = observation_batch(env, n=2)  # position 0, then 1
    prompt_token = extractor(obs)[:, -extractor.token_embedding.embedding_dim:]
    expected = extractor.token_embedding(obs["prompt_ids"].long().gather(1, obs["position"].long()))[:, 0]
    assert torch.equal(prompt_token, expected)
    unpointed = TokenFeaturesExtractor(env.observation_space, pointed_tokens=False)
    assert unpointed.pointers == [] and unpointed.features_dim == extractor.features_dim - 2 * 32


@pytest.mark.parametrize("algo", [PPO, A2C, DQN, MaskablePPO])
@pytest.mark.parametrize("env_id", list(ENVS))
def test_policy_kwargs_build_every_algorithm_on_every_env(env_id, algo):
    env = gym.make(env_id)
    extra = {"buffer_size": 100} if algo is DQN else {}
    model = algo("MultiInputPolicy", env, policy_kwargs=policy_kwargs(env), seed=0, **extra)
    obs, info = env.reset(seed=0)
    action, _ = model.predict(obs, deterministic=True)
    assert env.action_space.contains(int(action))
    extractors = [m for m in model.policy.modules() if isinstance(m, TokenFeaturesExtractor)]
    assert extractors


def test_policy_kwargs_take_wrapped_and_vector_envs():
    vec_env = make_vec_env("TokenGen-v0", n_envs=2, env_kwargs={"render_mode": None})
    wrapped = gym.wrappers.RecordEpisodeStatistics(gym.make("TokenGen-v0"))
    gymnasium_vector_env = gym.make_vec("TokenGen-v0", num_envs=3)
    assert policy_kwargs(vec_env) == policy_kwargs(wrapped) == policy_kwargs(gymnasium_vector_env)
    PPO("MultiInputPolicy", vec_env, policy_kwargs=policy_kwargs(vec_env), n_steps=8, batch_size=16).learn(16)


def test_policy_kwargs_route_overrides():
    kwargs = policy_kwargs(gym.make("TokenGen-v0"), encoder="gru", embed_dim=16, net_arch=[32, 32])
    assert kwargs["features_extractor_kwargs"] == {"encoder": "gru", "embed_dim": 16}
    assert kwargs["net_arch"] == [32, 32]


@pytest.mark.parametrize("bad, match", [
    ({"encoder": "lstm"}, r"unknown encoder 'lstm'; valid: \['concat', 'mean', 'gru', 'transformer'\]"),
    ({"embed_dim": 0}, "embed_dim must be a positive int, got 0"),
    ({"encoder": "transformer", "embed_dim": 10, "n_heads": 4}, "divisible by n_heads"),
    ({"pointed_tokens": "yes"}, "pointed_tokens must be True or False, got 'yes'"),
])
def test_bad_extractor_arguments_raise(bad, match):
    with pytest.raises(ValueError, match=match):
        TokenFeaturesExtractor(gym.make("TokenGen-v0").observation_space, **bad)


def test_numpy_ints_are_accepted_as_sizes():
    space = gym.make("TokenGen-v0").observation_space
    extractor = TokenFeaturesExtractor(space, embed_dim=np.int64(8), hidden_dim=np.int32(16), pointed_tokens=np.True_)
    assert extractor.token_embedding.embedding_dim == 8 and extractor.features_dim > 0
    assert extractor.features_dim == TokenFeaturesExtractor(space, embed_dim=8, hidden_dim=16).features_dim


def test_non_textgym_spaces_are_refused():
    with pytest.raises(ValueError, match="Dict of 1-D integer Boxes"):
        policy_kwargs(gym.make("CartPole-v1"))
    with pytest.raises(ValueError, match="unknown encoder 'lstm'"):
        policy_kwargs(gym.make("TokenGen-v0"), encoder="lstm")
    with pytest.raises(ValueError, match="observation_space"):
        policy_kwargs("TokenGen-v0")


def test_ppo_learns_a_tiny_copy_task():
    torch.set_num_threads(1)
    env = gym.make("TokenGen-v0", **TINY_COPY)
    model = PPO("MultiInputPolicy", env, policy_kwargs=policy_kwargs(env), seed=0, learning_rate=2e-3,
                n_steps=256, batch_size=64, gamma=0.9, ent_coef=0.0).learn(STEPS)

    class Greedy:
        def act(self, obs, info=None, deterministic=True):
            return int(model.predict(obs, deterministic=True)[0])

    eval_env = gym.make("TokenGen-v0", **TINY_COPY)
    accuracy = evaluate(Greedy(), eval_env, n_episodes=100, seed=1)["token_accuracy"]
    assert accuracy >= MIN_ACCURACY  # random legal tokens score about 0.15
