"""LMPPOAgent with LoRA adapters (peft): the reference is the trunk with its adapters off,
and checkpoints hold the adapters and heads only."""

import copy
import importlib.util
import json
import sys

import gymnasium as gym
import pytest
import torch
from safetensors.torch import load_file

import textgym  # noqa: F401
from agents import LMPPOAgent
from agents.lm import tiny_causal_lm, tiny_text_model, word_piece_tokenizer
from agents.lm_policy import task_texts

torch.set_num_threads(1)
needs_peft = pytest.mark.skipif(importlib.util.find_spec("peft") is None, reason="peft is not installed")


def base_model(env, seed=0):
    torch.manual_seed(seed)
    return tiny_causal_lm(env.unwrapped.vocab, n_layer=1, n_embd=32, n_head=2)


def lora_agent(env, model, **kwargs):
    return LMPPOAgent(env, model=model, **{"num_envs": 8, "lora_r": 4, "learning_rate": 1e-2, **kwargs})


def scramble_adapters(agent):
    """Give the adapters (which start as the identity) weights that change the policy."""
    noise = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for name, weight in agent.policy.trunk.named_parameters():
            if "lora_" in name:
                weight.copy_(torch.randn(weight.shape, generator=noise))


@needs_peft
def test_with_the_adapters_off_the_reference_gives_the_base_models_logits_exactly():
    env = gym.make("TokenGen-Keywords-v0")
    base = base_model(env)
    plain = LMPPOAgent(env, model=copy.deepcopy(base), num_envs=8)
    agent = lora_agent(env, base)
    batch = agent.rollout(list(range(8)))
    assert agent.prepare(batch)["kl"].abs().max().item() == 0.0  # the adapters start as the identity
    scramble_adapters(agent)
    reference, _ = agent.outputs(batch, policy=agent.reference, values=False)
    policy, _ = agent.outputs(batch, values=False)
    base_logits, _ = plain.outputs(batch, values=False)
    assert torch.equal(reference, base_logits)
    assert (policy - base_logits).abs().max().item() > 0.1
    # no second copy: the reference owns no trunk weights, and its trunk is the policy's with adapters off
    assert agent.reference.trunk.model is agent.policy.trunk and not list(agent.reference.trunk.parameters())
    trained = {name for name, p in agent.policy.named_parameters() if p.requires_grad}
    assert trained and all("lora_" in name or name.startswith("value_head.") for name in trained)


@needs_peft
def test_the_adapters_off_also_hold_in_the_cached_rollout():
    """The top-k mask model is the reference: it runs the rollout's KV-cached steps."""
    env = gym.make("TokenGen-v0")
    base = base_model(env)
    plain = LMPPOAgent(env, model=copy.deepcopy(base), num_envs=8, top_k=2)
    agent = lora_agent(env, base, top_k=2)
    scramble_adapters(agent)
    obs, info = env.reset(seed=5)
    reading = agent.view.read(obs, info)
    torch.testing.assert_close(agent._act_logits("mask", agent.reference, reading),
                               plain._act_logits("mask", plain.reference, reading), rtol=0, atol=0)


@needs_peft
def test_lora_checkpoints_hold_adapters_and_heads_and_round_trip_to_the_same_greedy_actions(tmp_path):
    env = gym.make("TokenGen-v0")
    agent = lora_agent(env, base_model(env)).learn(200)
    agent.save(tmp_path / "agent")
    files = {path.name: load_file(path) for path in (tmp_path / "agent").glob("*.safetensors")}
    assert set(files) == {"adapters.safetensors", "heads.safetensors", "value_head.safetensors", "reference.safetensors"}
    # peft's GPT-2 default (c_attn) and, as TokenGen's actions are the LM head's scores, the LM head
    assert agent.policy.trunk.peft_config["default"].target_modules == {"c_attn", "lm_head"}
    adapters = files["adapters.safetensors"]
    assert {name: tuple(weight.shape) for name, weight in adapters.items()} == {
        "base_model/model/transformer/h/0/attn/c_attn/lora_A/default/weight": (4, 32),
        "base_model/model/transformer/h/0/attn/c_attn/lora_B/default/weight": (96, 4),
        "base_model/model/lm_head/lora_A/default/weight": (4, 32),
        "base_model/model/lm_head/lora_B/default/weight": (len(env.unwrapped.vocab), 4)}
    assert not files["heads.safetensors"] and not files["reference.safetensors"]  # TokenGen's heads: the LM's own
    loaded = LMPPOAgent.load(tmp_path / "agent", env=env, model=base_model(env))
    seeds = list(range(100, 108))
    assert torch.equal(agent.rollout(seeds, deterministic=True).actions, loaded.rollout(seeds, deterministic=True).actions)
    assert loaded.config == agent.config and loaded.num_timesteps == agent.num_timesteps


@needs_peft
def test_loading_lora_adapters_needs_their_base_model(tmp_path):
    env = gym.make("TokenGen-v0")
    lora_agent(env, base_model(env)).save(tmp_path / "agent")
    with pytest.raises(ValueError, match=r"holds LoRA adapters only, .*load\(path, env, model=base\)"):
        LMPPOAgent.load(tmp_path / "agent", env=env)
    with pytest.raises(ValueError, match="holds LoRA adapters of another base model"):
        LMPPOAgent.load(tmp_path / "agent", env=env, model=base_model(env, seed=1))
    with pytest.raises(ValueError, match="already carries peft adapters"):
        LMPPOAgent.load(tmp_path / "agent", env=env, model=lora_agent(env, base_model(env)).policy.trunk.base_model.model)
    LMPPOAgent(env, model=base_model(env), num_envs=8).save(tmp_path / "full")
    with pytest.raises(ValueError, match="model= is the base model of a LoRA checkpoint"):
        LMPPOAgent.load(tmp_path / "full", env=env, model=base_model(env))


@needs_peft
def test_a_warm_start_folds_the_adapters_into_the_reference_and_reloads(tmp_path):
    env = gym.make("TokenGen-v0", task_kwargs={"n_train": 32})
    base = base_model(env)
    embeddings = base.get_input_embeddings().weight.detach().clone()
    assert base.get_output_embeddings().weight is base.get_input_embeddings().weight  # GPT-2 ties its LM head
    agent = lora_agent(env, base)
    agent.warm_start(epochs=1, learning_rate=1e-2)
    # the LM head's adapter is folded into a head of its own: the token embeddings stay the base's
    trunk = agent.policy.trunk
    assert torch.equal(trunk.get_input_embeddings().weight, embeddings)
    assert (trunk.get_output_embeddings().weight - embeddings).abs().max().item() > 1e-3
    losses = agent.warm_start_log.records
    batch = agent.rollout(list(range(8)))
    policy, _ = agent.outputs(batch, values=False)
    reference, _ = agent.outputs(batch, policy=agent.reference, values=False)
    torch.testing.assert_close(policy, reference, rtol=0, atol=1e-5)  # the warm-started policy is the reference
    assert len(agent.merged_adapters) == 1 and losses[0]["loss"] > 0
    agent.learn(100).save(tmp_path / "agent")
    assert json.loads((tmp_path / "agent" / "agent.json").read_text())["lora"]["merges"] == 1
    loaded = LMPPOAgent.load(tmp_path / "agent", env=env, model=base_model(env))
    seeds = list(range(100, 108))
    assert torch.equal(agent.rollout(seeds, deterministic=True).actions, loaded.rollout(seeds, deterministic=True).actions)
    again, _ = loaded.outputs(batch, policy=loaded.reference, values=False)
    assert torch.equal(again, reference)


@needs_peft
def test_lora_on_a_tagging_trunk_keeps_the_reference_heads_and_round_trips(tmp_path):
    env = gym.make("NERTag-v0", task_kwargs={"n_train": 20})
    tokenizer = word_piece_tokenizer(task_texts(env))

    def encoder():
        torch.manual_seed(0)
        return tiny_text_model(tokenizer, n_layer=1, hidden_size=32)

    agent = LMPPOAgent(env, model=encoder(), tokenizer=tokenizer, num_envs=4, lora_r=2, learning_rate=1e-2).learn(60)
    assert set(agent.policy.trunk.peft_config["default"].target_modules) == {"query", "value"}  # peft's BERT default
    agent.save(tmp_path / "agent")
    heads = {f"heads.{name}" for name in agent.policy.heads.state_dict()}
    assert set(load_file(tmp_path / "agent" / "reference.safetensors")) == heads != set()
    loaded = LMPPOAgent.load(tmp_path / "agent", env=env, model=encoder())
    obs, info = env.reset(seed=2)
    assert agent.act(obs, info) == loaded.act(obs, info)


@needs_peft
@pytest.mark.parametrize(("kwargs", "error", "match"), [
    ({"lora_r": -1}, ValueError, r"lora_r must be an int in \[0, inf\), got -1"),
    ({"lora_r": 4, "lora_alpha": 0}, ValueError, r"lora_alpha must be a finite number in \(0, inf\), got 0"),
    ({"lora_r": 4, "lora_target_modules": []}, TypeError, "lora_target_modules must be None, a regex or a non-empty list"),
    ({"lora_r": 4, "value_model": "separate"}, ValueError, "the value head reads the shared, adapted trunk"),
    ({"lora_r": 4, "ref_dtype": "bfloat16"}, ValueError, r"drop ref_dtype='bfloat16'"),
    ({"lora_r": 4, "lora_target_modules": ["q_proj"]}, ValueError,
     r"lora_target_modules=\['q_proj'\] does not fit the GPT2LMHeadModel trunk .*its linear layers: \['c_attn', 'c_fc', 'c_proj', 'lm_head'\]"),
])
def test_bad_lora_options_are_clear_errors(kwargs, error, match):
    env = gym.make("TokenGen-v0")
    with pytest.raises(error, match=match):
        LMPPOAgent(env, model=base_model(env), **kwargs)


@needs_peft
def test_lora_and_a_reference_model_are_a_clear_error():
    env = gym.make("TokenGen-v0")
    with pytest.raises(ValueError, match="ref_model= does not go with lora_r > 0"):
        LMPPOAgent(env, model=base_model(env), ref_model=base_model(env), lora_r=4)


def test_lora_without_peft_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "peft", None)
    env = gym.make("TokenGen-v0")
    with pytest.raises(ImportError, match=r"LoRA \(lora_r > 0\) needs peft: pip install 'textgym\[lora\]'"):
        LMPPOAgent(env, model=base_model(env), lora_r=4)
