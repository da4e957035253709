"""textgym.trl: textgym rewards, tasks and envs in TRL's GRPOTrainer, offline with a tiny GPT-2."""

import json
import subprocess
import sys
from types import SimpleNamespace

import pytest

pytest.importorskip("trl")
pytest.importorskip("datasets")

import gymnasium as gym  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from trl import GRPOConfig, GRPOTrainer  # noqa: E402

import textgym.trl as tt  # noqa: E402
from agents.lm import tiny_causal_lm  # noqa: E402
from textgym.rewards import bleu, coverage, rougeL  # noqa: E402

PREDICTIONS = ["the dog sees a tree .", "a cat", "tree dog the", ""]
REFERENCES = [["the dog sees the tree ."], ["a cat sleeps ."], ["the dog likes a tree ."], ["a boy runs ."]]
SOURCES = ["dog see tree", "cat sleep", "dog like tree", "boy run"]


def test_importing_textgym_does_not_import_trl():
    code = "import sys, textgym, textgym.rewards, textgym.envs; assert 'trl' not in sys.modules and 'datasets' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_reward_functions_equal_textgym_metrics():
    bleu_fn = tt.reward("bleu")
    assert bleu_fn.__name__ == "bleu"
    got = bleu_fn(prompts=SOURCES, completions=PREDICTIONS, references=REFERENCES, source=SOURCES, trainer_state=None)
    assert got == [bleu(p, r, s) for p, r, s in zip(PREDICTIONS, REFERENCES, SOURCES)]
    # coverage by hand: all of dog/see/tree (lemmas: sees), 1 of cat/sleep, 2 of dog/like/tree, none of boy/run
    assert tt.reward("coverage")(SOURCES, PREDICTIONS, references=REFERENCES, source=SOURCES) == [1.0, 0.5, 2 / 3, 0.0]
    mixed = tt.reward(["rougeL", ("coverage", 0.5)])  # weights are relative: 2/3 ROUGE-L + 1/3 coverage
    assert mixed.__name__ == "0.67*rougeL+0.33*coverage"
    expected = [2 / 3 * rougeL(p, r, s) + 1 / 3 * coverage(p, r, s) for p, r, s in zip(PREDICTIONS, REFERENCES, SOURCES)]
    assert mixed(SOURCES, PREDICTIONS, references=REFERENCES, source=SOURCES) == pytest.approx(expected, abs=1e-12)
    # conversational completions, and the prompt as the source when there is no source column
    chat = [[{"role": "assistant", "content": p}] for p in PREDICTIONS]
    assert tt.reward("coverage")(SOURCES, chat, references=REFERENCES) == [1.0, 0.5, 2 / 3, 0.0]


def test_reward_rejects_an_unknown_metric():
    with pytest.raises(ValueError, match="unknown reward metric 'blue'; valid metrics: .*'bleu'"):
        tt.reward("blue")


def test_dataset_holds_the_env_examples_and_the_tokenizer_reads_them_as_the_env():
    env = gym.make("TokenGen-Keywords-v0").unwrapped
    data = tt.dataset("TokenGen-Keywords-v0")
    assert data.column_names == ["prompt", "references", "source"]
    assert data["references"] == [list(e.references) for e in env.examples]
    assert data["source"] == [e.prompt for e in env.examples]
    tokenizer = tt.word_tokenizer(env.vocab)
    for row, example in zip(data, env.examples):
        assert tokenizer(row["prompt"])["input_ids"] == env.vocab.encode(example.prompt) + [env.vocab.bos_id]
    ids = env.vocab.encode(env.examples[0].references[0])
    assert tokenizer.decode(ids + [env.vocab.eos_id], skip_special_tokens=True) == env.vocab.decode(ids)
    assert tt.dataset("keywords", split="validation")["source"] == [e.prompt for e in env.task.split("validation")]


def test_dataset_of_a_file_keeps_concepts(tmp_path):
    path = tmp_path / "gen.jsonl"
    rows = [{"concepts": ["dog", "run"], "prompt": "dog run", "references": ["The dog runs.", "A dog is running."]},
            {"concepts": ["cat"], "prompt": "cat", "references": ["A cat sleeps."]}]
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    data = tt.dataset(str(path))
    assert data["concepts"] == [["dog", "run"], ["cat"]]
    assert data["references"] == [row["references"] for row in rows]


@pytest.mark.parametrize(("task", "message"), [
    ("NERTag-v0", "textgym.trl works on TokenGen envs .* makes a NERTagEnv"),
    ("keyword", "unknown task 'keyword'; built-in tasks: .*'keywords'"),
])
def test_dataset_rejects_what_is_not_a_token_gen_task(task, message):
    with pytest.raises(ValueError, match=message):
        tt.dataset(task)


def _config(tmp_path, **kwargs):
    return GRPOConfig(output_dir=str(tmp_path), max_steps=1, per_device_train_batch_size=4, num_generations=4,
                      max_completion_length=8, learning_rate=1e-2, report_to="none", use_cpu=True, logging_steps=1,
                      save_strategy="no", seed=0, **kwargs)


def _tiny(vocab):
    torch.manual_seed(0)
    return tiny_causal_lm(vocab, n_layer=1, n_embd=16, n_head=2)


def test_a_grpo_step_runs_offline_with_textgym_rewards(tmp_path):
    env = tt.make_env("keywords")
    model = _tiny(env.vocab)
    before = [p.detach().clone() for p in model.parameters()]
    trainer = GRPOTrainer(model=model, reward_funcs=[tt.reward("bleu")], args=_config(tmp_path),
                          train_dataset=tt.dataset("keywords"), processing_class=tt.word_tokenizer(env.vocab))
    trainer.train()
    logged = trainer.state.log_history[0]
    assert 0.0 <= logged["rewards/bleu/mean"] <= 1.0
    assert any(not torch.equal(a, b) for a, b in zip(before, model.parameters()))


def _fake_trainer(model, tokenizer, **args):
    """What EnvRollout reads of a GRPOTrainer."""
    config = SimpleNamespace(**{"temperature": 1.0, "top_k": 0, "top_p": 1.0, "max_completion_length": None, **args})
    return SimpleNamespace(model=model, processing_class=tokenizer, args=config,
                           accelerator=SimpleNamespace(unwrap_model=lambda m: m))


def test_env_rollout_pays_the_envs_dense_rewards_and_obeys_its_masks():
    env_kwargs = {"reward": "bleu", "reward_mode": "dense"}
    rollout = tt.EnvRollout("keywords", **env_kwargs)
    vocab = rollout.env.vocab
    allowed = ["the", "a", "dog", "tree", "sees", "."]
    masked = tt.EnvRollout("keywords", allowed_tokens=allowed, **env_kwargs)
    model, tokenizer = _tiny(vocab), tt.word_tokenizer(vocab)
    prompts = tt.dataset("keywords")["prompt"][:3] * 2
    out = rollout(prompts, _fake_trainer(model, tokenizer))
    replay = tt.make_env("keywords", **env_kwargs)
    for i, prompt in enumerate(prompts):
        assert out["prompt_ids"][i] == tokenizer(prompt)["input_ids"]
        assert len(out["completion_ids"][i]) == len(out["token_rewards"][i]) == len(out["logprobs"][i])
        replay.reset(options={"index": i % 3})
        rewards = [replay.step(token)[1] for token in out["completion_ids"][i]]
        assert rewards == out["token_rewards"][i]
        text = vocab.decode(out["completion_ids"][i])
        assert sum(rewards) == pytest.approx(bleu(text, replay.example.references, replay.example.prompt), abs=1e-9)
        assert all(lp <= 0.0 for lp in out["logprobs"][i])
    assert tt.episode_return(prompts, [], token_rewards=out["token_rewards"]) == [sum(r) for r in out["token_rewards"]]
    legal = {vocab.token_to_id(t) for t in allowed} | {vocab.eos_id}
    out = masked(prompts, _fake_trainer(model, tokenizer, top_k=3))
    assert {token for ids in out["completion_ids"] for token in ids} <= legal
    with pytest.raises(ValueError, match="prompt 'x y' is not a prompt of the env's 'train' split"):
        rollout(["x y"], _fake_trainer(model, tokenizer))


def test_group_token_advantages_by_hand():
    rewards = torch.tensor([[0.5, 0.5], [1.0, 0.0], [1.0, 0.0], [0.0, 0.0]])
    # group 1: rewards-to-go [[1, .5], [1, 0]], mean [1, .25]; group 2: [[1, 0], [0, 0]], mean [.5, 0]
    got = tt.group_token_advantages(rewards, 2, scale="none")
    assert got.tolist() == [[0.0, 0.25], [0.0, -0.25], [0.5, 0.0], [-0.5, 0.0]]
    scaled = tt.group_token_advantages(rewards, 2, scale="group")  # group 2's returns [1, 0] have std sqrt(1/2)
    a = 0.5 / (0.5**0.5 + 1e-4)
    assert scaled[2:].flatten().tolist() == pytest.approx([a, 0.0, -a, 0.0])
    assert np.allclose(got.view(2, 2, 2).sum(1), 0.0)  # zero-sum in each group at every position
    with pytest.raises(ValueError, match="3 completions do not make groups of 2"):
        tt.group_token_advantages(rewards[:3], 2)


def test_dense_grpo_trainer_trains_on_the_envs_token_rewards(tmp_path):
    rollout = tt.EnvRollout("keywords", reward="bleu", reward_mode="dense")
    model = _tiny(rollout.env.vocab)
    before = [p.detach().clone() for p in model.parameters()]
    trainer = tt.DenseGRPOTrainer(model=model, reward_funcs=[tt.episode_return, tt.reward("bleu")], args=_config(tmp_path),
                                  train_dataset=tt.dataset("keywords"), processing_class=tt.word_tokenizer(rollout.env.vocab),
                                  rollout_func=rollout)
    trainer.train()
    logged = trainer.state.log_history[0]
    # a dense reward sums to the sparse one: the env's return is the BLEU of the text
    assert logged["rewards/episode_return/mean"] == pytest.approx(logged["rewards/bleu/mean"], abs=1e-6)
    assert any(not torch.equal(a, b) for a, b in zip(before, model.parameters()))
