"""Run folders (agents.runs): SB3 runs load without unpickling, and load back the policy
that was trained; the env library does not import the agents."""

import base64
import csv
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from agents import evaluate
from agents.runs import format_scores, load_run, make_env, sb3_steps, train
from textgym.cli import main

REPO = Path(__file__).resolve().parents[1]

SB3_KWARGS = {
    "sb3-ppo": {"n_steps": 32, "batch_size": 16},
    "maskable-ppo": {"n_steps": 32, "batch_size": 16},
    "sb3-dqn": {"learning_starts": 20, "buffer_size": 500},
}


class Payload:
    """Unpickling this creates ``path``: the stand-in for any code a shared file could run."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return open, (self.path, "w")


def malicious_archive(path, marker):
    """An SB3-style checkpoint.zip whose ``data`` entry holds a pickled Payload."""
    import pickle

    data = {"policy_class": {":serialized:": base64.b64encode(pickle.dumps(Payload(marker))).decode()}}
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("data", json.dumps(data))


def sb3_run(tmp_path, agent, steps=64):
    out = tmp_path / agent
    policy = train("TokenGen-Copy-v0", agent, steps, 0, out, {"reward_mode": "dense"}, SB3_KWARGS[agent],
                   progress_bar=False)
    return out, policy


def test_eval_never_runs_the_pickle_in_an_sb3_archive(tmp_path, capsys):
    marker = tmp_path / "marker"
    run = tmp_path / "shared-run"
    run.mkdir()
    (run / "config.json").write_text(json.dumps({"env": "TokenGen-Copy-v0", "env_kwargs": {}, "agent": "sb3-ppo",
                                                 "agent_kwargs": {}, "steps": 100, "seed": 0}))
    malicious_archive(run / "checkpoint.zip", marker)

    assert main(["eval", str(run)]) == 2
    error = capsys.readouterr().err.splitlines()
    assert error == [(f"textgym eval: error: no checkpoint at {run}/checkpoint.safetensors; {run}/checkpoint.zip is an "
                      "SB3 archive, which can run code when loaded: pass --trust-checkpoint only if you trust "
                      "whoever made it")]
    assert not marker.exists()

    # the payload is real: SB3's own loader, opted in to, runs it
    assert main(["eval", "--trust-checkpoint", str(run)]) == 2
    warning, error = capsys.readouterr().err.splitlines()
    assert warning.startswith("textgym eval: warning: --trust-checkpoint: SB3 unpickles checkpoint.zip")
    assert error.startswith(f"textgym eval: error: SB3 could not load {run}/checkpoint.zip")
    assert marker.exists()


def test_a_trained_run_loads_from_its_weights_and_ignores_a_planted_archive(tmp_path, capsys):
    out, _ = sb3_run(tmp_path, "sb3-ppo")
    marker = tmp_path / "marker"
    malicious_archive(out / "checkpoint.zip", marker)
    assert main(["eval", str(out), "--episodes", "3", "--samples", "0"]) == 0
    assert "sb3-ppo on TokenGen-Copy-v0, 3 episodes" in capsys.readouterr().out
    assert not marker.exists()


@pytest.mark.parametrize("agent", SB3_KWARGS)
def test_an_sb3_run_loads_back_the_policy_it_trained(tmp_path, agent):
    out, trained = sb3_run(tmp_path, agent)
    assert sorted(p.name for p in out.iterdir()) == ["checkpoint.safetensors", "config.json", "curve.png",
                                                      "metrics.csv"]
    loaded, env, config = load_run(out)
    assert config["agent"] == agent and config["threads"] >= 1
    eval_env = make_env("TokenGen-Copy-v0")
    assert evaluate(loaded, eval_env, 10, seed=5) == evaluate(trained, eval_env, 10, seed=5)
    obs, info = env.reset(seed=3)
    assert loaded.act(obs, info) == trained.act(obs, info)


def test_policy_kwargs_in_agent_kwargs_keep_the_token_features(tmp_path):
    out = tmp_path / "run"
    trained = train("TokenGen-Copy-v0", "sb3-ppo", 32, 0, out, {}, {"n_steps": 32, "batch_size": 16, "policy_kwargs":
                    {"encoder": "mean", "embed_dim": 8, "net_arch": [16]}}, progress_bar=False)
    extractor = trained.model.policy.features_extractor
    assert type(extractor).__name__ == "TokenFeaturesExtractor" and extractor.encoder_name == "mean"
    loaded, env, _ = load_run(out)
    obs, info = env.reset(seed=0)
    assert loaded.act(obs, info) == trained.act(obs, info)


def test_an_sb3_archive_loads_when_trusted(tmp_path, capsys):
    out, trained = sb3_run(tmp_path, "sb3-ppo")
    trained.model.save(out / "checkpoint.zip")
    (out / "checkpoint.safetensors").unlink()
    loaded, _, _ = load_run(out, trust_checkpoint=True)
    env = make_env("TokenGen-Copy-v0")
    assert evaluate(loaded, env, 5, seed=1) == evaluate(trained, env, 5, seed=1)


@pytest.mark.parametrize("agent, steps, expected", [
    ("sb3-ppo", 64, 64), ("sb3-ppo", 65, 96), ("sb3-dqn", 65, 68),  # train_freq 4
])
def test_the_progress_bar_total_is_the_steps_sb3_takes(tmp_path, agent, steps, expected):
    _, policy = sb3_run(tmp_path, agent, steps)
    assert sb3_steps(policy.model, steps) == expected == policy.model.num_timesteps


def test_an_lm_ppo_warm_start_alone_is_a_run_that_loads_back(tmp_path, capsys):
    out = tmp_path / "run"
    agent_kwargs = {"num_envs": 2, "warm_start_epochs": 2, "warm_start_batch_size": 64}
    trained = train("TokenEdit-v0", "lm-ppo", 0, 0, out, {"mode": "compress"}, agent_kwargs, eval_every=10,
                    eval_episodes=3, progress_bar=False)
    assert sorted(p.name for p in out.iterdir()) == ["checkpoint", "config.json", "eval.csv", "warm_start.csv"]
    warm_start = list(csv.DictReader((out / "warm_start.csv").open()))
    assert [row["epoch"] for row in warm_start] == ["1", "2"] and float(warm_start[1]["loss"]) > 0
    # the evaluation after the warm start is step 0 of eval.csv, and what the user is shown
    scores = evaluate(trained, make_env("TokenEdit-v0", {"mode": "compress"}), 3, seed=10_000)
    (row,) = csv.DictReader((out / "eval.csv").open())
    assert row["step"] == "0" and float(row["rougeL"]) == pytest.approx(scores["rougeL"])
    printed = capsys.readouterr().out.splitlines()
    assert printed[0].startswith("warm start: 2 epochs, loss per step ")
    assert printed[1] == f"eval after warm start: {format_scores(scores)}"
    loaded, env, config = load_run(out)
    assert config["steps"] == 0 and config["agent_kwargs"] == agent_kwargs
    assert evaluate(loaded, env, 3, seed=10_000) == scores


def test_train_replaces_a_run_only_with_overwrite(tmp_path):
    out = tmp_path / "run"
    train("TokenGen-Copy-v0", "tabular-q", 50, 0, out, {}, {}, progress_bar=False)
    (out / "eval.csv").write_text("stale")
    with pytest.raises(ValueError, match="already holds a run"):
        train("TokenGen-Copy-v0", "random", 50, 1, out, {}, {}, progress_bar=False)
    train("TokenGen-Copy-v0", "random", 50, 1, out, {}, {}, progress_bar=False, overwrite=True)
    assert json.loads((out / "config.json").read_text())["agent"] == "random"
    assert not (out / "eval.csv").exists()
    assert load_run(out)[2]["seed"] == 1
    assert load_run(out / "checkpoint.pt")[2]["seed"] == 1  # a checkpoint names its run folder


def test_a_failed_start_leaves_no_run_behind(tmp_path):
    out = tmp_path / "run"
    with pytest.raises(ValueError, match="bad --agent-kwargs"):
        train("TokenGen-Copy-v0", "dqn", 50, 0, out, {}, {"nope": 1}, progress_bar=False)
    train("TokenGen-Copy-v0", "dqn", 50, 0, out, {}, {"learning_starts": 10}, progress_bar=False)  # no --overwrite


def test_the_env_library_does_not_import_the_agents():
    code = """
import importlib, pkgutil, sys
import textgym
for module in pkgutil.walk_packages(textgym.__path__, "textgym."):
    if module.name not in ("textgym.cli", "textgym.__main__"):
        importlib.import_module(module.name)
print(sorted(name for name in sys.modules if name == "agents" or name.startswith("agents.")))
"""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                            env={**os.environ, "PYTHONPATH": str(REPO)})
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_train_says_once_that_curve_png_needs_matplotlib(tmp_path):
    code = f"""
import sys
sys.modules["matplotlib"] = None  # as if not installed
from textgym.cli import main
sys.exit(main(["train", "--env", "TokenGen-Copy-v0", "--agent", "random", "--steps", "30", "--no-progress",
               "--out", {str(tmp_path / "run")!r}]))
"""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                            env={**os.environ, "PYTHONPATH": str(REPO)})
    assert result.returncode == 0, result.stderr
    assert result.stderr.splitlines() == [("textgym train: note: matplotlib is not installed, so the run gets no "
                                           "curve.png (pip install matplotlib)")]
    assert (tmp_path / "run" / "metrics.csv").is_file() and not (tmp_path / "run" / "curve.png").exists()
