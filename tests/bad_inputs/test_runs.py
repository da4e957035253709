"""Bad inputs to the ``textgym`` command and its run folders: each is exit code 2 and one
line on stderr, ``textgym CMD: error: ...``, naming what was wrong (never a traceback)."""

import contextlib
import io
import json
import sys
import tempfile
from pathlib import Path

import pytest

from textgym.cli import main

SCRATCH = tempfile.TemporaryDirectory(prefix="textgym-bad-runs-")  # removed when the test process exits
GOOD_CONFIG = {"env": "TokenGen-Copy-v0", "env_kwargs": {}, "agent": "tabular-q", "agent_kwargs": {},
               "steps": 100, "seed": 0}


class CLIError(Exception):
    """What ``cli`` raises for a clean failure: exit code 2 and a one-line ``error:`` on stderr."""


def cli(*args: str, stdin: str = "") -> None:
    """Run ``textgym ARGS`` in this process; raise ``CLIError(stderr)`` if it failed cleanly
    (``--trust-checkpoint``'s warning line aside)."""
    stdout, stderr = io.StringIO(), io.StringIO()
    old_stdin, sys.stdin = sys.stdin, io.StringIO(stdin)
    try:
        with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
            try:
                code = main(list(args))
            except SystemExit as exit_:  # argparse
                code = exit_.code
    finally:
        sys.stdin = old_stdin
    lines = [line for line in stderr.getvalue().splitlines() if not line.startswith(f"textgym {args[0]}: warning: ")]
    assert code == 2, f"exit code {code}, stderr {stderr.getvalue()!r}"
    assert len(lines) == 1 and lines[0].startswith(f"textgym {args[0]}: error: "), lines
    assert "Traceback" not in stderr.getvalue()
    raise CLIError(lines[0])


def folder(name: str, config=None, files: dict | None = None) -> str:
    """A run folder under SCRATCH with ``config`` as config.json (a str is written as is)."""
    path = Path(SCRATCH.name) / name
    path.mkdir(parents=True, exist_ok=True)
    if config is not None:
        (path / "config.json").write_text(config if isinstance(config, str) else json.dumps(config))
    for file_name, content in (files or {}).items():
        (path / file_name).write_bytes(content)
    return str(path)


def tampered(name: str, **changes) -> str:
    """A run folder whose config is GOOD_CONFIG with ``changes`` (a value of ... removes the key)."""
    config = {k: v for k, v in {**GOOD_CONFIG, **changes}.items() if v is not ...}
    return folder(name, config)


def train(*args: str) -> None:
    cli("train", "--env", "TokenGen-Copy-v0", "--agent", "tabular-q", "--steps", "10", "--no-progress", *args)


def out(name: str) -> str:
    return str(Path(SCRATCH.name) / "out" / name)


BAD_INPUTS = [
    # eval of tampered or odd run folders
    pytest.param(lambda: cli("eval", folder("list", [1, 2])), CLIError,
                 r"config.json must hold a JSON object, got a list", id="eval-config-list"),
    pytest.param(lambda: cli("eval", folder("invalid-json", "{bad")), CLIError,
                 r"config.json is not valid JSON", id="eval-config-invalid-json"),
    pytest.param(lambda: cli("eval", folder("not-utf8", files={"config.json": b'{"env": "\xff"}'})),
                 CLIError, r"config.json is not valid JSON", id="eval-config-not-json"),
    pytest.param(lambda: cli("eval", tampered("no-env", env=...)), CLIError,
                 r"config.json has no 'env'; a run's config names env, env_kwargs, agent", id="eval-no-env"),
    pytest.param(lambda: cli("eval", tampered("no-env-kwargs", env_kwargs=...)), CLIError,
                 r"has no 'env_kwargs'", id="eval-no-env-kwargs"),
    pytest.param(lambda: cli("eval", tampered("no-agent", agent=...)), CLIError,
                 r"has no 'agent'", id="eval-no-agent"),
    pytest.param(lambda: cli("eval", tampered("env-int", env=5)), CLIError,
                 r"'env' must be a JSON string, got 5", id="eval-env-int"),
    pytest.param(lambda: cli("eval", tampered("env-cartpole", env="CartPole-v1")), CLIError,
                 r"CartPole-v1 is not a textgym env .*textgym ids: TokenGen-v0", id="eval-env-cartpole"),
    pytest.param(lambda: cli("eval", tampered("env-unknown", env="TokenGen-v9")), CLIError,
                 r"unknown env id 'TokenGen-v9'; textgym ids:", id="eval-env-unknown"),
    pytest.param(lambda: cli("eval", tampered("env-kwargs-str", env_kwargs="x")), CLIError,
                 r"'env_kwargs' must be a JSON object, got 'x'", id="eval-env-kwargs-string"),
    pytest.param(lambda: cli("eval", tampered("env-kwargs-key", env_kwargs={"nope": 1})), CLIError,
                 r"bad env_kwargs in .*config.json for TokenGen-Copy-v0: .*'nope'", id="eval-env-kwargs-unknown-key"),
    pytest.param(lambda: cli("eval", tampered("agent-bogus", agent="bogus")), CLIError,
                 r"unknown agent 'bogus'; valid: random, tabular-q, dqn, lm-ppo, sb3-ppo", id="eval-agent-bogus"),
    pytest.param(lambda: cli("eval", tampered("agent-path", agent="../../x")), CLIError,
                 r"unknown agent '\.\./\.\./x'; valid:", id="eval-agent-path"),
    pytest.param(lambda: cli("eval", tampered("agent-int", agent=3)), CLIError,
                 r"'agent' must be a JSON string, got 3", id="eval-agent-int"),
    pytest.param(lambda: cli("eval", tampered("seed-bool", seed=True)), CLIError,
                 r"'seed' must be a JSON integer, got True", id="eval-seed-bool"),
    pytest.param(lambda: cli("eval", tampered("no-checkpoint")), CLIError,
                 r"no checkpoint at .*no-checkpoint/checkpoint.pt", id="eval-no-checkpoint"),
    pytest.param(lambda: cli("eval", folder("empty-checkpoint", GOOD_CONFIG, {"checkpoint.pt": b""})), CLIError,
                 r"checkpoint .*checkpoint.pt is empty", id="eval-empty-checkpoint"),
    pytest.param(lambda: cli("eval", folder("garbage-checkpoint", GOOD_CONFIG, {"checkpoint.pt": b"garbage"})),
                 CLIError, r"checkpoint .*checkpoint.pt is corrupted or not a checkpoint \(torch.load: UnpicklingError: Weights only load failed\)",
                 id="eval-garbage-checkpoint"),
    pytest.param(lambda: cli("eval", tampered("sb3-no-checkpoint", agent="sb3-ppo")), CLIError,
                 r"no checkpoint at .*checkpoint.safetensors$", id="eval-sb3-no-checkpoint"),
    pytest.param(lambda: cli("eval", folder("sb3-zip-only", {**GOOD_CONFIG, "agent": "sb3-ppo"},
                                            {"checkpoint.zip": b"PK"})), CLIError,
                 r"checkpoint.zip is an SB3 archive, which can run code when loaded: pass --trust-checkpoint",
                 id="eval-sb3-zip-only"),
    pytest.param(lambda: cli("eval", folder("sb3-bad-weights", {**GOOD_CONFIG, "agent": "sb3-ppo"},
                                            {"checkpoint.safetensors": b"not tensors"})), CLIError,
                 r"checkpoint.safetensors does not fit the sb3-ppo policy", id="eval-sb3-bad-weights"),
    pytest.param(lambda: cli("eval", folder("sb3-bad-agent-kwargs",
                                            {**GOOD_CONFIG, "agent": "sb3-ppo", "agent_kwargs": {"nope": 1}},
                                            {"checkpoint.safetensors": b""})), CLIError,
                 r"bad agent_kwargs in .*config.json \{\"nope\": 1\} for sb3-ppo", id="eval-sb3-bad-agent-kwargs"),
    pytest.param(lambda: cli("eval", "--trust-checkpoint", tampered("trust-no-zip", agent="sb3-ppo")), CLIError,
                 r"--trust-checkpoint loads SB3's archive, and there is none at", id="eval-trust-without-zip"),
    pytest.param(lambda: cli("eval", "--trust-checkpoint", folder("trust-bad-zip", {**GOOD_CONFIG, "agent": "sb3-ppo"},
                                                                  {"checkpoint.zip": b"PK"})), CLIError,
                 r"SB3 could not load .*checkpoint.zip", id="eval-trust-bad-zip"),
    pytest.param(lambda: cli("eval", folder("empty-folder")), CLIError,
                 r"empty-folder is not a run folder: no config.json", id="eval-not-a-run-folder"),
    pytest.param(lambda: cli("eval", out("no/such/run")), CLIError,
                 r"no run folder or checkpoint at .*no/such/run", id="eval-missing"),
    pytest.param(lambda: cli("eval", tampered("samples"), "--samples", "-1"), CLIError,
                 r"argument --samples: must be an integer >= 0, got -1", id="eval-negative-samples"),
    # train
    pytest.param(lambda: train("--out", folder("out-file-parent", files={"file": b""}) + "/file"), CLIError,
                 r"out-file-parent/file is a file; give a new folder", id="train-out-is-a-file"),
    pytest.param(lambda: train("--out", tampered("existing-run")), CLIError,
                 r"existing-run already holds a run \(config.json\); pass --overwrite", id="train-onto-a-run"),
    pytest.param(lambda: train("--out", folder("other-files", files={"notes.txt": b"mine"})), CLIError,
                 r"other-files is a folder of other files, not a run folder", id="train-onto-other-files"),
    pytest.param(lambda: train("--out", out("eval-every"), "--eval-every", "-5"), CLIError,
                 r"argument --eval-every: must be an integer >= 0, got -5", id="train-negative-eval-every"),
    pytest.param(lambda: train("--out", out("threads"), "--threads", "0"), CLIError,
                 r"argument --threads: must be a positive integer, got 0", id="train-zero-threads"),
    pytest.param(lambda: cli("train", "--env", "CartPole-v1", "--agent", "dqn", "--out", out("cartpole")), CLIError,
                 r"CartPole-v1 is not a textgym env", id="train-env-cartpole"),
    pytest.param(lambda: train("--out", out("env-kwargs-key"), "--env-kwargs", '{"rewards": "bleu"}'), CLIError,
                 r"bad --env-kwargs for TokenGen-Copy-v0: .*unexpected keyword argument 'rewards'",
                 id="train-env-kwargs-unknown-key"),
    pytest.param(lambda: train("--out", out("env-kwargs-list"), "--env-kwargs", "[1]"), CLIError,
                 r"argument --env-kwargs: must be a JSON object", id="train-env-kwargs-list"),
    pytest.param(lambda: cli("train", "--env", "TokenGen-Copy-v0", "--agent", "dqn", "--steps", "10", "--out",
                             out("dqn-lr"), "--agent-kwargs", '{"learning_rate": "fast"}'), CLIError,
                 r"bad --agent-kwargs \{\"learning_rate\": \"fast\"\} for dqn", id="train-dqn-learning-rate-string"),
    pytest.param(lambda: cli("train", "--env", "TokenGen-Copy-v0", "--agent", "sb3-ppo", "--steps", "10", "--out",
                             out("ppo-lr"), "--agent-kwargs", '{"learning_rate": "fast"}'), CLIError,
                 r"bad --agent-kwargs \{\"learning_rate\": \"fast\"\} for sb3-ppo: .*learning rate",
                 id="train-sb3-learning-rate-string"),
    pytest.param(lambda: cli("train", "--env", "TokenGen-Copy-v0", "--agent", "sb3-ppo", "--steps", "10", "--out",
                             out("ppo-key"), "--agent-kwargs", '{"nope": 1}'), CLIError,
                 r"bad --agent-kwargs \{\"nope\": 1\} for sb3-ppo: .*'nope'", id="train-sb3-unknown-key"),
    pytest.param(lambda: cli("train", "--env", "TokenGen-Copy-v0", "--agent", "sb3-ppo", "--steps", "10", "--out",
                             out("ppo-encoder"), "--agent-kwargs", '{"policy_kwargs": {"encoder": "lstm"}}'), CLIError,
                 r"bad --agent-kwargs .* for sb3-ppo: unknown encoder 'lstm'; valid:", id="train-sb3-bad-encoder"),
    pytest.param(lambda: cli("train", "--env", "TokenGen-Copy-v0", "--agent", "sb3-ppo", "--steps", "10", "--out",
                             out("ppo-policy-kwargs"), "--agent-kwargs", '{"policy_kwargs": [1]}'), CLIError,
                 r"bad --agent-kwargs \{\"policy_kwargs\": \[1\]\} for sb3-ppo", id="train-sb3-policy-kwargs-list"),
    pytest.param(lambda: cli("train", "--env", "NERTag-v0", "--agent", "lm-ppo", "--out", out("lm-key"),
                             "--agent-kwargs", '{"mle_epoch": 1}'), CLIError,
                 r"bad --agent-kwargs \{\"mle_epoch\": 1\} for lm-ppo: unknown key 'mle_epoch'; valid: model, "
                 r"warm_start_epochs, warm_start_batch_size, .*, learning_rate, num_envs", id="train-lm-ppo-unknown-key"),
    pytest.param(lambda: cli("train", "--env", "NERTag-v0", "--agent", "lm-ppo", "--out", out("lm-model"),
                             "--agent-kwargs", '{"model": 3}'), CLIError,
                 r"model must be null \(a tiny model, offline\), 'minilm', .* or a local transformers directory, got 3",
                 id="train-lm-ppo-bad-model"),
    pytest.param(lambda: cli("train", "--env", "TokenGen-v0", "--agent", "lm-ppo", "--out", out("lm-smollm2"),
                             "--agent-kwargs", '{"model": "smollm2"}'), CLIError,
                 r"model 'smollm2' on TokenGen: .* needs the env made with the LM's tokenizer as vocab",
                 id="train-lm-ppo-pretrained-on-token-gen"),
    pytest.param(lambda: cli("train", "--env", "TokenEdit-v0", "--agent", "lm-ppo", "--out", out("lm-lr"),
                             "--agent-kwargs", '{"warm_start_learning_rate": 0}'), CLIError,
                 r"for lm-ppo: warm_start_learning_rate must be a finite number > 0, got 0", id="train-lm-ppo-bad-lr"),
    pytest.param(lambda: cli("train", "--env", "TokenEdit-v0", "--agent", "lm-ppo", "--out", out("lm-nothing"),
                             "--steps", "0", "--agent-kwargs", '{"warm_start_epochs": 0}'), CLIError,
                 r"steps 0 runs lm-ppo's warm start alone, and warm_start_epochs is 0: nothing to train",
                 id="train-lm-ppo-nothing-to-train"),
    pytest.param(lambda: cli("train", "--env", "TokenGen-v0", "--agent", "dqn", "--out", out("dqn-0"), "--steps", "0"),
                 CLIError, r"steps must be an int >= 1 \(lm-ppo: >= 0, 0 for its warm start alone\), got 0",
                 id="train-steps-0-without-warm-start"),
    pytest.param(lambda: cli("train", "--env", "TokenGen-Copy-v0", "--agent", "bogus", "--out", out("bogus")),
                 CLIError, r"argument --agent: invalid choice: 'bogus'", id="train-agent-bogus"),
    # play and demo
    pytest.param(lambda: cli("play"), CLIError, r"give an env id: `textgym play --env TokenGen-Copy-v0`",
                 id="play-no-env"),
    pytest.param(lambda: cli("play", "TokenGen-Copy-v0", "--env", "NERTag-v0"), CLIError,
                 r"two env ids, 'TokenGen-Copy-v0' and --env 'NERTag-v0': give one", id="play-two-envs"),
    pytest.param(lambda: cli("play", "--env", "CartPole-v1"), CLIError, r"CartPole-v1 is not a textgym env",
                 id="play-env-cartpole"),
    pytest.param(lambda: cli("play", "--env", "TokenGen-Copy-v0", "--env-kwargs", '{"task": "nope"}'), CLIError,
                 r"bad --env-kwargs for TokenGen-Copy-v0: .*nope", id="play-bad-task"),
    pytest.param(lambda: cli("demo", "--env", "CartPole-v1"), CLIError, r"CartPole-v1 is not a textgym env",
                 id="demo-env-cartpole"),
]


@pytest.mark.parametrize("make_bad_input, error, message", BAD_INPUTS)
def test_bad_input_is_a_one_line_error(make_bad_input, error, message):
    with pytest.raises(error, match=message):
        make_bad_input()
